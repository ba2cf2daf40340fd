//! Inhibition: a firing source alert mutes target alerts that share its `equal` labels, as
//! Alertmanager's `inhibit_rules` do. Strata applies it to direct notification (the
//! webhook; Alertmanager applies its own) and to findings, whose muted symptoms nest under
//! the cause that explains them.

use std::collections::BTreeMap;

use crate::alert::Labels;

/// One inhibition rule (equality matchers, as Alertmanager's `source_match`/`target_match`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InhibitRule {
    /// Labels a source alert must have.
    pub source_match: BTreeMap<String, String>,
    /// Labels a target alert must have.
    pub target_match: BTreeMap<String, String>,
    /// Regular-expression matchers (`name=~"re"`, anchored) a source alert must satisfy.
    pub source_regex: Vec<(String, Pattern)>,
    /// Regular-expression matchers a target alert must satisfy.
    pub target_regex: Vec<(String, Pattern)>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

/// An anchored regular expression of a `=~` matcher (compared by its text).
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles `re` anchored at both ends, as Alertmanager's matchers are.
    pub fn new(re: &str) -> Result<Pattern, String> {
        regex::Regex::new(&format!("^(?:{re})$"))
            .map(Pattern)
            .map_err(|e| format!("matcher regex {re:?}: {e}"))
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

fn matches_regex(labels: &Labels, want: &[(String, Pattern)]) -> bool {
    want.iter().all(|(k, re)| re.0.is_match(value(labels, k)))
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
        firing.iter().any(|src| self.mutes(src, target))
    }

    /// Whether the firing alert `source` mutes `target` by this rule.
    pub fn mutes(&self, source: &Labels, target: &Labels) -> bool {
        source != target
            && matches(target, &self.target_match)
            && matches_regex(target, &self.target_regex)
            && matches(source, &self.source_match)
            && matches_regex(source, &self.source_regex)
            && self
                .equal
                .iter()
                .all(|l| value(source, l) == value(target, l))
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
            ..InhibitRule::default()
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

    #[test]
    fn regex_matchers_are_anchored() {
        let rule = InhibitRule {
            source_regex: vec![("diagnosis".into(), Pattern::new("cache_thrash").unwrap())],
            target_regex: vec![(
                "alertname".into(),
                Pattern::new("LLMRequestQueueBackup|LLMSLOBurnRate.*").unwrap(),
            )],
            equal: vec!["instance".into()],
            ..InhibitRule::default()
        };
        let src = l(&[("diagnosis", "cache_thrash"), ("instance", "a")]);
        let queue = l(&[("alertname", "LLMRequestQueueBackup"), ("instance", "a")]);
        let slo = l(&[("alertname", "LLMSLOBurnRateTtft"), ("instance", "a")]);
        let longer = l(&[("alertname", "XLLMRequestQueueBackup"), ("instance", "a")]);
        assert!(rule.mutes(&src, &queue) && rule.mutes(&src, &slo));
        assert!(!rule.mutes(&src, &longer), "anchored");
        assert!(!rule.mutes(&queue, &slo), "the source must match");
    }
}
