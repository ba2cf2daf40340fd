//! The rule groups `strata up` evaluates.

use std::time::Duration;

use rules::inhibit::InhibitRule;
use rules::{GroupSpec, RuleSpec};

use ::config::Config;
use node::Settings;

fn load_file(path: &std::path::Path) -> Result<Vec<GroupSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read rule file {}: {e}", path.display()))?;
    rules::load(&path.display().to_string(), &text).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        format!(
            "rule file {} is invalid:\n  {}",
            path.display(),
            lines.join("\n  ")
        )
    })
}

/// Every rule group `strata up` evaluates, in evaluation order: the built-in packs
/// (canonical, alerts, diagnoses and the SLOs of the chosen profile) unless switched off,
/// then the rule files of `[rules] files` and `--rules`, then the cost pack. The SLO
/// profile is a built-in one or an `[[slo]]` of `config`.
pub(crate) fn rule_groups(config: &Config, settings: &Settings) -> Result<Vec<GroupSpec>, String> {
    let mut groups = Vec::new();
    if settings.packs {
        groups.extend(rules::packs::shared().map_err(|e| {
            let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
            format!("built-in packs are invalid: {}", lines.join("; "))
        })?);
        // A built-in profile or an [[slo]] of the config.
        let profile = settings.slo_profile.as_str();
        groups.extend(
            config
                .slo_rule_groups(profile)
                .map_err(|e| format!("{e} (--slo-profile or [rules] slo_profile)"))?,
        );
    }
    for file in &settings.rule_files {
        groups.extend(load_file(file)?);
    }
    if let Some(every) = settings.rule_interval {
        fast(&mut groups, every);
    }
    // After `fast`: the cost group turns its samples into money at its own 30 s interval.
    // An agent leaves cost to the brain (it would be counted twice).
    if !settings.agent {
        groups.extend(config.cost_rule_groups()?);
    }
    for line in duplicate_groups(&groups) {
        eprintln!("warning: {line}");
    }
    Ok(groups)
}

/// One line per rule group name loaded more than once (a rule file that repeats a built-in
/// pack: every rule of it evaluated, recorded and alerted twice), naming the fix.
fn duplicate_groups(groups: &[GroupSpec]) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for g in groups {
        *seen.entry(g.name.as_str()).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, n)| {
            format!(
                "rule group {name:?} is loaded {n} times: its rules are evaluated {n} times and its alerts sent {n} times (drop the rule file that repeats a built-in pack, or pass --no-packs)"
            )
        })
        .collect()
}

/// Tests: every group on `every`, `for:` waived.
fn fast(groups: &mut [GroupSpec], every: Duration) {
    for g in groups {
        g.interval = Some(every);
        for r in &mut g.rules {
            if let RuleSpec::Alerting(a) = r {
                a.for_ = Duration::ZERO;
            }
        }
    }
}

/// The inhibition rules that go with the built-in packs (none without them).
pub(crate) fn inhibitions(settings: &Settings) -> Result<Vec<InhibitRule>, String> {
    if !settings.packs {
        return Ok(Vec::new());
    }
    rules::packs::inhibit_rules(rules::packs::INHIBIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_loaded_twice_is_named() {
        let mut groups = rules::packs::shared().expect("packs");
        assert!(duplicate_groups(&groups).is_empty());
        let again = groups[0].clone();
        groups.push(again);
        let lines = duplicate_groups(&groups);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(&groups[0].name) && lines[0].contains("2 times"),
            "{lines:?}"
        );
    }
}
