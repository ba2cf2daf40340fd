//! Strata's built-in rule packs (`crates/rules/packs/`): the canonical recording rules, the
//! seeds' alerts, the diagnoses, the fabric (InfiniBand/RoCE) alerts, one SLO file per built-in profile, and the inhibition rules
//! that go with the alerts. The files are the data; this module compiles them in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::check::{GroupSpec, RuleError, load};
use crate::inhibit::{InhibitRule, Pattern};

/// `(file name, text)` of every built-in rule file, in evaluation order.
pub const FILES: [(&str, &str); 8] = [
    ("canonical.yml", include_str!("../packs/canonical.yml")),
    ("alerts.yml", include_str!("../packs/alerts.yml")),
    ("diagnoses.yml", include_str!("../packs/diagnoses.yml")),
    ("fabric.yml", include_str!("../packs/fabric.yml")),
    ("runtime.yml", include_str!("../packs/runtime.yml")),
    ("slo-chat.yml", include_str!("../packs/slo-chat.yml")),
    ("slo-rag.yml", include_str!("../packs/slo-rag.yml")),
    ("slo-code.yml", include_str!("../packs/slo-code.yml")),
];

/// The inhibition rules file (Alertmanager's `inhibit_rules` format).
pub const INHIBIT: &str = include_str!("../packs/inhibit.yml");

/// The packs every profile shares: canonical, alerts, diagnoses and fabric.
pub fn shared() -> Result<Vec<GroupSpec>, Vec<RuleError>> {
    let mut out = Vec::new();
    for (name, text) in FILES.iter().filter(|(n, _)| !n.starts_with("slo-")) {
        out.extend(load(name, text)?);
    }
    Ok(out)
}

/// The packs a single-node Strata runs: canonical, alerts, diagnoses and the SLOs of
/// `profile` (`chat`, `rag` or `code`).
pub fn groups(profile: &str) -> Result<Vec<GroupSpec>, Vec<RuleError>> {
    let slo = format!("slo-{profile}.yml");
    let mut out = Vec::new();
    for (name, text) in FILES
        .iter()
        .filter(|(n, _)| !n.starts_with("slo-") || *n == slo)
    {
        out.extend(load(name, text)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibit {
    inhibit_rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    #[serde(default)]
    equal: Vec<String>,
}

/// Equality (`name="value"`) and regular-expression (`name=~"re"`) matchers.
type Matchers = (BTreeMap<String, String>, Vec<(String, Pattern)>);

/// Parses `name="value"` and `name=~"re"` matchers (the kinds the packs use).
fn matchers(list: &[String]) -> Result<Matchers, String> {
    let mut eq = BTreeMap::new();
    let mut re = Vec::new();
    for m in list {
        let (k, v) = m
            .split_once('=')
            .ok_or_else(|| format!("matcher {m:?}: expected name=\"value\" or name=~\"re\""))?;
        let (regex, v) = match v.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, v),
        };
        let v = v
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("matcher {m:?}: quote the value"))?;
        let k = k.trim().to_string();
        if regex {
            re.push((k, Pattern::new(v)?));
        } else {
            eq.insert(k, v.to_string());
        }
    }
    Ok((eq, re))
}

/// Reads an `inhibit_rules` file (equality and regular-expression matchers).
pub fn inhibit_rules(text: &str) -> Result<Vec<InhibitRule>, String> {
    let raw: RawInhibit =
        serde_saphyr::from_str(text).map_err(|e| format!("inhibit rules: {e}"))?;
    raw.inhibit_rules
        .iter()
        .map(|r| {
            let (source_match, source_regex) = matchers(&r.source_matchers)?;
            let (target_match, target_regex) = matchers(&r.target_matchers)?;
            Ok(InhibitRule {
                source_match,
                target_match,
                source_regex,
                target_regex,
                equal: r.equal.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn critical_kv_exhaustion_mutes_queue_backup_of_its_instance_only() {
        let rules = inhibit_rules(INHIBIT).expect("valid");
        assert!(rules.len() > 2, "the seeds' two and the diagnoses'");
        let critical = l(&[
            ("alertname", "LLMKVCacheExhaustion"),
            ("instance", "a"),
            ("model", "m"),
            ("tier", "critical"),
        ]);
        let queue = |i: &str| {
            l(&[
                ("alertname", "LLMRequestQueueBackup"),
                ("instance", i),
                ("model", "m"),
            ])
        };
        let muted = |t: &Vec<(String, String)>| {
            rules
                .iter()
                .any(|r| r.inhibits(t, std::slice::from_ref(&critical)))
        };
        assert!(muted(&queue("a")));
        assert!(!muted(&queue("b")));
        assert!(!muted(&critical));
    }

    #[test]
    fn bad_matchers_are_refused_with_the_fix() {
        let e = inhibit_rules(
            "inhibit_rules:\n- source_matchers: ['a=~\"x\"', 'b']\n  target_matchers: []\n",
        );
        assert!(e.is_err_and(|e| e.contains("quote the value") || e.contains("expected name")));
    }

    #[test]
    fn every_profile_loads_with_the_shared_packs() {
        for p in ["chat", "rag", "code"] {
            let g = groups(p).expect("valid");
            assert!(g.iter().any(|g| g.name == format!("slo-{p}-alerts")));
            assert!(
                !g.iter().any(
                    |g| g.name.starts_with("slo-") && !g.name.starts_with(&format!("slo-{p}-"))
                )
            );
        }
    }
}
