//! Strata's built-in rule packs (`crates/rules/packs/`): the canonical recording rules, the
//! seeds' alerts, the diagnoses, one SLO file per built-in profile, and the inhibition rules
//! that go with the alerts. The files are the data; this module compiles them in.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::check::{GroupSpec, RuleError, load};
use crate::inhibit::InhibitRule;

/// `(file name, text)` of every built-in rule file, in evaluation order.
pub const FILES: [(&str, &str); 7] = [
    ("canonical.yml", include_str!("../packs/canonical.yml")),
    ("alerts.yml", include_str!("../packs/alerts.yml")),
    ("diagnoses.yml", include_str!("../packs/diagnoses.yml")),
    ("runtime.yml", include_str!("../packs/runtime.yml")),
    ("slo-chat.yml", include_str!("../packs/slo-chat.yml")),
    ("slo-rag.yml", include_str!("../packs/slo-rag.yml")),
    ("slo-code.yml", include_str!("../packs/slo-code.yml")),
];

/// The inhibition rules file (Alertmanager's `inhibit_rules` format).
pub const INHIBIT: &str = include_str!("../packs/inhibit.yml");

/// The packs every profile shares: canonical, alerts and diagnoses.
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

/// Parses `name="value"` equality matchers (the only kind the packs use).
fn matchers(list: &[String]) -> Result<BTreeMap<String, String>, String> {
    list.iter()
        .map(|m| {
            let (k, v) = m
                .split_once('=')
                .ok_or_else(|| format!("matcher {m:?}: expected name=\"value\""))?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("matcher {m:?}: quote the value"))?;
            Ok((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Reads an `inhibit_rules` file (equality matchers only).
pub fn inhibit_rules(text: &str) -> Result<Vec<InhibitRule>, String> {
    let raw: RawInhibit =
        serde_saphyr::from_str(text).map_err(|e| format!("inhibit rules: {e}"))?;
    raw.inhibit_rules
        .iter()
        .map(|r| {
            Ok(InhibitRule {
                source_match: matchers(&r.source_matchers)?,
                target_match: matchers(&r.target_matchers)?,
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
        assert_eq!(rules.len(), 2);
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
