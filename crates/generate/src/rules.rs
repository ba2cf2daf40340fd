//! Prometheus rule files: the built-in packs as Strata compiles them in (canonical recording
//! rules from the dialect tables, the alert pack, the diagnoses as alerts) and one SLO file
//! per profile (SLI error ratios, error budget, multi-window burn-rate alerts), and the
//! cost rules of `[cost]`. The same text `strata up` evaluates (`rules::packs`,
//! `rules::slo::file`, `rules::cost::file`), so Prometheus, vmalert and Strata evaluate
//! identical rules.

use super::{File, Spec};

/// The rule files, in evaluation order (recording rules before the alerts that read them).
pub(super) fn rule_files(spec: &Spec) -> Vec<File> {
    let mut out: Vec<File> = ::rules::packs::FILES
        .iter()
        .filter(|(name, _)| !name.starts_with("slo-"))
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    for p in &spec.profiles {
        out.push((format!("slo-{}.yml", p.name), ::rules::slo::file(p)));
    }
    if let Some(cost) = &spec.cost {
        out.push(("cost.yml".into(), ::rules::cost::file(cost)));
    }
    out
}

/// `rules/*.yml`, each checked by Strata's own loader (what `promtool check rules` checks).
pub(super) fn files(spec: &Spec) -> Result<Vec<File>, String> {
    let files = rule_files(spec);
    for (name, text) in &files {
        ::rules::load(name, text).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            format!("generated rule file is invalid:\n  {}", lines.join("\n  "))
        })?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_match_the_packs_strata_embeds() {
        let spec = Spec::load(Some(std::path::Path::new("/nonexistent/strata.toml")));
        assert!(spec.is_err(), "a missing --config file is an error");
        let mut spec = Spec::load(None).expect("defaults");
        spec.profiles = ::rules::slo::SloProfile::builtin();
        let files = files(&spec).expect("valid");
        for (name, text) in ::rules::packs::FILES {
            let generated = files.iter().find(|(n, _)| n == name).expect(name);
            assert_eq!(generated.1, text, "{name} differs from the embedded pack");
        }
    }
}
