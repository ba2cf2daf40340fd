//! The built-in rule packs: generated files are up to date with their generators (set
//! `STRATA_REGENERATE=1` to rewrite them), and every pack passes both Strata's validator and
//! the real `promtool check rules`.

use testkit::peer;

use std::path::PathBuf;

use rules::slo::SloProfile;

fn packs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packs")
}

fn generated() -> Vec<(String, String)> {
    let mut out = vec![("canonical.yml".to_string(), rules::canonical::file())];
    for p in SloProfile::builtin() {
        out.push((format!("slo-{}.yml", p.name), rules::slo::file(&p)));
    }
    out
}

#[test]
fn generated_packs_are_up_to_date() {
    let regenerate = std::env::var("STRATA_REGENERATE").is_ok_and(|v| v == "1");
    for (name, text) in generated() {
        let path = packs_dir().join(&name);
        if regenerate {
            std::fs::write(&path, &text).expect("write pack");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "packs/{name} is stale: run STRATA_REGENERATE=1 cargo test -p rules --test packs"
        );
    }
}

#[test]
fn every_pack_passes_strata_and_promtool() {
    for (name, text) in rules::packs::FILES {
        let groups = rules::load(name, text).unwrap_or_else(|e| panic!("{name}: {}", e[0]));
        assert!(!groups.is_empty(), "{name}");
    }
    let Some(promtool) = peer::find("promtool", "prometheus") else {
        return;
    };
    let files: Vec<PathBuf> = rules::packs::FILES
        .iter()
        .map(|(n, _)| packs_dir().join(n))
        .collect();
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .args(&files)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_custom_profile_generates_a_valid_file_with_its_targets() {
    let mut p = SloProfile::custom("batch", 10.0, 0.2);
    p.models = "llama-.*".into();
    let text = rules::slo::file(&p);
    let groups = rules::load("slo-batch.yml", &text).expect("valid");
    assert_eq!(groups.len(), 2);
    assert!(
        text.contains("le=~\"10|10.0\", model=~\"llama-.*\""),
        "{text}"
    );
    assert!(text.contains("llm:itl_seconds_bucket{le=~\"0.2\""));
}
