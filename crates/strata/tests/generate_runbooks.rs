//! Every alert and diagnosis `strata generate rules` writes has its runbook in
//! `docs/runbooks/<alertname>.md` (the default `runbook_url`), and every runbook there belongs
//! to an alert. And the repository's `Dockerfile` builds the image the generated Kubernetes
//! manifests name: only linted here (no container runtime in CI), by checking the binary
//! path and the run-stage user the manifests rely on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use testkit::live;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generate(what: &str, dir: &Path) -> Vec<(String, String)> {
    let out = live::strata()
        .args(["generate", what, "--out"])
        .arg(dir)
        .output()
        .expect("run strata generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("generated folder")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_alert_has_a_runbook_and_every_runbook_an_alert() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut urls = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    for (_, text) in generate("rules", dir.path()) {
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("- alert: ") {
                alerts.insert(name.trim_matches('\'').to_string());
            } else if let Some(url) = line.strip_prefix("runbook_url: ") {
                urls.insert(url.trim_matches('\'').to_string());
            }
        }
    }
    assert!(alerts.len() >= 30, "{} alerts", alerts.len());
    let expected: BTreeSet<String> = alerts
        .iter()
        .map(|a| format!("docs/runbooks/{a}.md"))
        .collect();
    assert_eq!(
        urls, expected,
        "each alert's runbook_url is docs/runbooks/<alertname>.md"
    );

    let books: BTreeSet<String> = std::fs::read_dir(repo().join("docs/runbooks"))
        .expect("docs/runbooks")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .map(|n| n.trim_end_matches(".md").to_string())
        .collect();
    let missing: Vec<_> = alerts.difference(&books).collect();
    let orphans: Vec<_> = books.difference(&alerts).collect();
    assert!(
        missing.is_empty(),
        "alerts without a runbook in docs/runbooks: {missing:?}"
    );
    assert!(
        orphans.is_empty(),
        "runbooks without an alert (renamed or removed?): {orphans:?}"
    );
    for a in &alerts {
        let text =
            std::fs::read_to_string(repo().join(format!("docs/runbooks/{a}.md"))).expect("runbook");
        assert!(text.starts_with(&format!("# {a}\n")), "{a}.md: title");
        for section in ["## What it means", "## How to confirm", "## What to do"] {
            assert!(text.contains(section), "{a}.md lacks {section:?}");
        }
    }
}

#[test]
fn runbook_base_flag_sets_every_url() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = live::strata()
        .args([
            "generate",
            "rules",
            "--runbook-base",
            "https://example.org/rb/",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .expect("run strata generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("alerts.yml")).expect("alerts.yml");
    assert!(text.contains("runbook_url: 'https://example.org/rb/GPUXidError.md'"));
    assert!(!text.contains("docs/runbooks/"));
}

#[test]
fn dockerfile_builds_the_binary_the_manifests_run_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let dir = tempfile::tempdir().expect("tmp");
    let manifests: String = generate("k8s", dir.path())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    // The manifests name ghcr.io/<org>/strata:<tag> and run /usr/local/bin/strata.
    assert!(
        manifests.contains("ghcr.io/strata-observability/strata:"),
        "generated manifests no longer name the image the Dockerfile documents"
    );
    assert!(dockerfile.contains("ghcr.io/strata-observability/strata:latest"));
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        stages.len(),
        2,
        "multi-stage: builder then runtime: {stages:?}"
    );
    assert!(stages[0].starts_with("FROM rust:") && stages[0].ends_with(" AS builder"));
    assert!(stages[1].starts_with("FROM debian:") && stages[1].contains("-slim"));
    // What the build stage compiles exists here: the workspace and the strata binary target.
    assert!(dockerfile.contains("-p strata --bin strata"));
    let cargo = std::fs::read_to_string(repo().join("crates/strata/Cargo.toml")).expect("toml");
    assert!(cargo.contains("name = \"strata\"\npath = \"src/main.rs\""));
    for copied in ["Cargo.toml", "Cargo.lock", "crates"] {
        assert!(
            repo().join(copied).exists(),
            "{copied} copied by the Dockerfile is missing"
        );
    }
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/strata\"]"));
    // The containers pass `args` only, so the image's ENTRYPOINT must be the strata binary.
    assert!(manifests.contains("args:") && !manifests.contains("command:"));
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "runs as {user}"
    );
}
