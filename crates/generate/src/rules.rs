//! Prometheus rule files: the built-in packs as Strata compiles them in (canonical recording
//! rules from the dialect tables, the alert pack, the diagnoses as alerts) and one SLO file
//! per profile (SLI error ratios, error budget, multi-window burn-rate alerts), and the
//! cost rules of `[cost]`. The same text `strata up` evaluates (`rules::packs`,
//! `rules::slo::file`, `rules::cost::file`), so Prometheus, vmalert and Strata evaluate
//! identical rules; the one addition is a `runbook_url` annotation on every alert and
//! diagnosis, `<runbook base><alertname>.md` (`docs/runbooks/` of the repository unless
//! `--runbook-base` names where the operator publishes them).

use super::{File, Spec};

/// The rule files, in evaluation order (recording rules before the alerts that read them),
/// every alert with its `runbook_url`.
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
    for (_, text) in &mut out {
        *text = with_runbooks(text, &spec.runbook_base);
    }
    out
}

/// `text` with `runbook_url: '<base><alertname>.md'` as the first annotation of every
/// alerting rule (the packs' and the SLO generator's layout: `- alert:` then an
/// `annotations:` block two spaces deeper). A rule without annotations gets the block.
pub(super) fn with_runbooks(text: &str, base: &str) -> String {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let url = |name: &str, at: usize| {
        format!(
            "{}runbook_url: '{}{}.md'\n",
            " ".repeat(at),
            base.replace('\'', "''"),
            name
        )
    };
    let mut out = String::with_capacity(text.len() + 1024);
    // The alert being copied: its name, the indentation of its keys, annotations seen.
    let mut open: Option<(String, usize, bool)> = None;
    let close = |open: &mut Option<(String, usize, bool)>, out: &mut String| {
        if let Some((name, keys, false)) = open.take() {
            out.push_str(&format!("{}annotations:\n", " ".repeat(keys)));
            out.push_str(&url(&name, keys + 2));
        }
    };
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let at = indent(line);
        if let Some((_, keys, _)) = &open
            && !trimmed.is_empty()
            && at < *keys
        {
            close(&mut open, &mut out);
        }
        out.push_str(line);
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            let name = name.trim().trim_matches(|c| c == '\'' || c == '"');
            open = Some((name.to_string(), at + 2, false));
        } else if let Some((name, keys, seen)) = &mut open
            && trimmed == "annotations:"
            && at == *keys
        {
            out.push_str(&url(name, *keys + 2));
            *seen = true;
        }
    }
    close(&mut open, &mut out);
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
            let without: String = generated
                .1
                .lines()
                .filter(|l| !l.trim_start().starts_with("runbook_url: "))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(without, *text, "{name} differs from the embedded pack");
        }
    }

    #[test]
    fn every_alert_gets_its_runbook_url_once() {
        let mut spec = Spec::load(None).expect("defaults");
        spec.runbook_base = "https://example.org/rb/".into();
        let mut alerts = 0;
        for (name, text) in files(&spec).expect("valid (each loads in Strata's rule loader)") {
            // Each alert's block: from its `- alert:` line to the next rule.
            for block in text.split("\n  - ").filter(|b| b.starts_with("alert:")) {
                let alert = block["alert:".len()..].lines().next().unwrap_or("").trim();
                let urls: Vec<&str> = block
                    .lines()
                    .filter(|l| l.trim_start().starts_with("runbook_url:"))
                    .collect();
                assert_eq!(
                    urls,
                    [format!(
                        "      runbook_url: 'https://example.org/rb/{alert}.md'"
                    )],
                    "{name}: {alert}"
                );
                alerts += 1;
            }
        }
        assert!(alerts >= 30, "{alerts} alerts");
    }

    #[test]
    fn a_rule_without_annotations_gets_the_block() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n  - alert: B\n    expr: up == 0\n    annotations:\n      summary: 'x'\n";
        let out = with_runbooks(text, "docs/runbooks/");
        assert_eq!(
            out,
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      runbook_url: 'docs/runbooks/A.md'\n  - alert: B\n    expr: up == 0\n    annotations:\n      runbook_url: 'docs/runbooks/B.md'\n      summary: 'x'\n"
        );
    }
}
