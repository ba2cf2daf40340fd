//! `docs/engine-signals.md`, written from the dialect tables so the page cannot drift from
//! what the canonical view and the recording rules do.

use std::fmt::Write;

use super::table::{DialectTable, tables};
use super::vocabulary::canonical;

/// What one dialect does for one canonical signal in one version: the rows that supply it
/// (with their notes), or the reason it is absent.
fn cell(t: &DialectTable, signal: &str, version: &str) -> (String, String) {
    let rows: Vec<_> = t.maps_for(signal, version).collect();
    if rows.is_empty() {
        let why = t
            .absent_for(signal, version)
            .map_or("not mapped", |a| a.why.as_str());
        return ("—".to_string(), why.to_string());
    }
    let natives: Vec<String> = rows.iter().map(|r| format!("`{}`", r.describe())).collect();
    let notes: Vec<&str> = rows.iter().filter_map(|r| r.note.as_deref()).collect();
    let meaning = if notes.is_empty() {
        "the canonical meaning".to_string()
    } else {
        notes.join("; ")
    };
    (natives.join(", else "), meaning)
}

/// The page: the canonical vocabulary, then one table per engine or exporter with, for every
/// canonical signal, the versions that expose it, the native source and what it means there,
/// or why it is absent and what to use instead.
pub fn signals_doc() -> String {
    let mut out = String::from(
        "# Engine signals: what each engine version exposes\n\n\
         GENERATED from `crates/sources/dialects/*.toml` by `sources::dialect::signals_doc`: do not edit.\n\
         Regenerate: `STRATA_REGENERATE=1 cargo test -p sources --lib signals_doc`.\n\n\
         Strata maps every engine's native metrics onto one canonical vocabulary (`llm:*`, `gpu:*`).\n\
         The same table rows drive `strata scrape` (the canonical view) and the generated recording\n\
         rules (`crates/rules/packs/canonical.yml`). Where a signal has several native sources, they\n\
         combine series by series (PromQL `or`): the first that has a label set wins. A native name\n\
         with `{label=...}` reads only those series; `a + b` and `a / b` combine two metrics series\n\
         by series. Per-rank series collapse as each table's `[aggregate]` says (SGLang: tensor,\n\
         pipeline and expert ranks and the writer pid are copies of one state, `max`; data-parallel\n\
         ranks, `is_streaming`, `cache_source` and `priority` split the work, `sum`, ratios `max`).\n\
         Versions are detected from the metric names a scrape carries.\n\n\
         ## Canonical signals\n\n\
         | signal | type | unit | meaning |\n|---|---|---|---|\n",
    );
    for s in &canonical().signals {
        let _ = writeln!(
            out,
            "| `{}` | {:?} | {} | {}{} |",
            s.name,
            s.signal_type,
            s.unit,
            s.help,
            if s.incident {
                " (incident profile)"
            } else {
                ""
            }
        );
    }
    for t in tables() {
        let versions: Vec<&str> = t.versions.iter().map(|v| v.name.as_str()).collect();
        let _ = write!(
            out,
            "\n## {} (`{}`)\n\nVersions, newest first, and the names that mark them:\n\n",
            t.title, t.name
        );
        for v in &t.versions {
            let marks: Vec<String> = v.detect.iter().map(|d| format!("`{d}`")).collect();
            let _ = writeln!(out, "- **{}**: {}", v.name, marks.join(", "));
        }
        if let Some(fix) = &t.incident_fix {
            let _ = writeln!(
                out,
                "\nWhen incident signals are missing, the view says: {fix}."
            );
        }
        out.push_str("\n| signal | versions | native source | meaning there, or what Strata uses instead |\n|---|---|---|---|\n");
        for s in canonical().layer(t.layer) {
            // Group the versions that behave alike.
            let mut groups: Vec<((String, String), Vec<&str>)> = Vec::new();
            for v in &versions {
                let c = cell(t, &s.name, v);
                match groups.iter_mut().find(|(k, _)| *k == c) {
                    Some((_, vs)) => vs.push(v),
                    None => groups.push((c, vec![v])),
                }
            }
            for ((native, meaning), vs) in groups {
                let when = if vs.len() == versions.len() {
                    "all".to_string()
                } else {
                    vs.join(", ")
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {when} | {native} | {} |",
                    s.name,
                    meaning.replace('|', "\\|")
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_doc_is_up_to_date() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/engine-signals.md");
        let text = signals_doc();
        if std::env::var("STRATA_REGENERATE").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &text).expect("write docs/engine-signals.md");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "docs/engine-signals.md is stale: run STRATA_REGENERATE=1 cargo test -p sources --lib signals_doc"
        );
        assert!(
            text.contains("| `llm:itl_seconds` | all | — |"),
            "TGI ITL absent row"
        );
        assert!(!text.contains("shared/"));
    }
}
