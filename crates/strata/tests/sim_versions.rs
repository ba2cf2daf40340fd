//! `strata sim --engine-version`: for every release the simulator can impersonate, its
//! `/metrics` after a minute of virtual traffic goes through Strata's own dialect code
//! (detection, canonical view) and must come out like the fixture of that release
//! (`crates/expo/tests/samples`, built from the release's metric registration code): the same
//! detected version, every canonical signal in the same state (exposed, mapped but absent,
//! not exposed), and the same label names on every family both carry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sim::{EngineKind, EngineVersion, SimConfig, VirtualRun};
use sources::LabelSet;
use sources::dialect::{CanonicalView, SignalStatus, canonical_view, detect};

/// `(engine, --engine-version, fixture)`.
const CASES: &[(EngineKind, &str, &str)] = &[
    (EngineKind::Vllm, "0.8.5-v0", "vllm-0.8.5-v0.prom"),
    (EngineKind::Vllm, "0.8.5", "vllm-0.8.5-v1.prom"),
    (EngineKind::Vllm, "0.10.2", "vllm-0.10.2.prom"),
    (EngineKind::Vllm, "0.14.0", "vllm-0.14.0.prom"),
    (EngineKind::Vllm, "0.33.0", "vllm-0.33.0.prom"),
    (EngineKind::Sglang, "0.4.10", "sglang-0.4.10.prom"),
    (EngineKind::Sglang, "0.5.4", "sglang-0.5.4.prom"),
    (EngineKind::Sglang, "0.5.23", "sglang-0.5.23.prom"),
    (EngineKind::Tgi, "3.3.7", "tgi-3.3.7.prom"),
    (EngineKind::Llamacpp, "before-26920", "llamacpp-before-26920.prom"),
    (EngineKind::Llamacpp, "0.3.36", "llamacpp-server-captured.prom"),
];

fn points(body: &str) -> Vec<sources::Point> {
    let exp = expo::parse(body, expo::Format::Prometheus);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors.first());
    sources::scrape::to_points(&exp, &LabelSet::new(), 0)
}

fn view(body: &str) -> CanonicalView {
    let p = points(body);
    let d = detect(p.iter().map(|p| p.name.as_str())).expect("a known dialect");
    canonical_view(d, &p)
}

/// Each signal's state, as a word.
fn states(v: &CanonicalView) -> BTreeMap<String, &'static str> {
    v.signals
        .iter()
        .map(|(name, s)| {
            let state = match s {
                SignalStatus::Exposed { .. } => "exposed",
                SignalStatus::NotInScrape { .. } => "not in scrape",
                _ => "not exposed",
            };
            (name.clone(), state)
        })
        .collect()
}

/// Label names per family (series name less its histogram suffix; `le`, `quantile` left out).
fn label_names(body: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in points(body) {
        let name = ["_bucket", "_sum", "_count", "_created"]
            .iter()
            .find_map(|s| p.name.strip_suffix(s))
            .unwrap_or(&p.name)
            .to_string();
        let keys = p
            .labels
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| k != "le" && k != "quantile");
        out.entry(name).or_default().extend(keys);
    }
    out
}

/// The engine body after a minute of the healthy scenario's own traffic, in virtual time.
fn simulated(engine: EngineKind, version: Option<EngineVersion>) -> String {
    let mut cfg = SimConfig::new(engine);
    cfg.version = version;
    VirtualRun::new(&cfg, 60.0, 60.0)
        .last()
        .expect("one scrape")
        .engine_body
}

#[test]
fn every_engine_version_scrapes_like_its_fixture() {
    for &(engine, name, file) in CASES {
        let version = EngineVersion::parse(engine, name)
            .unwrap_or_else(|e| panic!("{} {name}: {e}", engine.name()));
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../expo/tests/samples")
            .join(file);
        let fixture = std::fs::read_to_string(&path).expect("fixture");
        let body = simulated(engine, Some(version));
        let (want, got) = (view(&fixture), view(&body));
        assert_eq!(
            (got.dialect.as_str(), got.version.as_str()),
            (want.dialect.as_str(), want.version.as_str()),
            "{name}: detected as another release than {file}"
        );
        let (ws, gs) = (states(&want), states(&got));
        let differ: Vec<_> = ws
            .iter()
            .filter(|(k, v)| gs.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: fixture {v}, sim {:?}", gs.get(k)))
            .collect();
        assert!(differ.is_empty(), "{name} vs {file}: {differ:#?}");
        let (wl, gl) = (label_names(&fixture), label_names(&body));
        for (family, labels) in &gl {
            let fixture_labels = wl
                .get(family)
                .unwrap_or_else(|| panic!("{name}: {family} is not in {file}"));
            assert_eq!(labels, fixture_labels, "{name}: labels of {family}");
        }
    }
}

#[test]
fn the_default_output_is_unchanged_and_unknown_versions_name_the_known_ones() {
    for engine in EngineKind::ALL {
        let cfg = SimConfig::new(engine);
        assert_eq!(cfg.version, None);
    }
    let err = EngineVersion::parse(EngineKind::Vllm, "0.9.9").unwrap_err();
    assert!(err.contains("0.33.0") && err.contains("0.8.5-v0"), "{err}");
    // A version of another engine is refused too.
    assert!(EngineVersion::parse(EngineKind::Tgi, "0.33.0").is_err());
}
