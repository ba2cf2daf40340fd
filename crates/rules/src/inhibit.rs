//! Inhibition for direct notification (the webhook): a firing source alert mutes target
//! alerts that share its `equal` labels, as Alertmanager's `inhibit_rules` do. Alertmanager
//! itself applies its own inhibition, so this is not used for it.

use std::collections::BTreeMap;

use crate::alert::Labels;

/// One inhibition rule (equality matchers, as Alertmanager's `source_match`/`target_match`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InhibitRule {
    /// Labels a source alert must have.
    pub source_match: BTreeMap<String, String>,
    /// Labels a target alert must have.
    pub target_match: BTreeMap<String, String>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

fn matches(labels: &Labels, want: &BTreeMap<String, String>) -> bool {
    want.iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

fn value<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

impl InhibitRule {
    /// Whether `target` is muted by one of the `firing` alerts. An alert never inhibits
    /// itself (a source that also matches the target side).
    pub fn inhibits(&self, target: &Labels, firing: &[Labels]) -> bool {
        matches(target, &self.target_match)
            && firing.iter().any(|src| {
                src != target
                    && matches(src, &self.source_match)
                    && self.equal.iter().all(|l| value(src, l) == value(target, l))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn critical_on_same_instance_mutes_warning() {
        let rule = InhibitRule {
            source_match: [("severity".to_string(), "critical".to_string())].into(),
            target_match: [("severity".to_string(), "warning".to_string())].into(),
            equal: vec!["instance".into()],
        };
        let src = l(&[
            ("alertname", "EngineDown"),
            ("instance", "a"),
            ("severity", "critical"),
        ]);
        let same = l(&[
            ("alertname", "QueueHigh"),
            ("instance", "a"),
            ("severity", "warning"),
        ]);
        let other = l(&[
            ("alertname", "QueueHigh"),
            ("instance", "b"),
            ("severity", "warning"),
        ]);
        assert!(rule.inhibits(&same, std::slice::from_ref(&src)));
        assert!(!rule.inhibits(&other, std::slice::from_ref(&src)));
        assert!(!rule.inhibits(&src, std::slice::from_ref(&src)));
        assert!(!rule.inhibits(&same, &[]));
    }
}
