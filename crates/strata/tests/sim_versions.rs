//! `strata sim --engine-version`: for every release the simulator can impersonate, its
//! `/metrics` after a minute of virtual traffic goes through Strata's own dialect code
//! (detection, canonical view) and must come out like the fixture of that release
//! (`crates/expo/tests/samples`, built from the release's metric registration code): the same
//! detected version, every canonical signal in the same state (exposed, mapped but absent,
//! not exposed), and the same label names on every family both carry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sim::{DcgmVersion, EngineKind, EngineVersion, SimConfig, VirtualRun};
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
    (
        EngineKind::Llamacpp,
        "before-26920",
        "llamacpp-before-26920.prom",
    ),
    (
        EngineKind::Llamacpp,
        "0.3.36",
        "llamacpp-server-captured.prom",
    ),
];

/// `(--dcgm-version, fixture)`.
const DCGM_CASES: &[(&str, &str)] = &[
    ("4.5.3", "dcgm-4.5.3-default.prom"),
    ("main", "dcgm-main-dcp-k8s.prom"),
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
                SignalStatus::NotExposed { .. } => "not exposed",
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

/// The engine and GPU bodies after a minute of the healthy scenario's own traffic, in
/// virtual time.
fn simulated(cfg: &SimConfig) -> (String, String) {
    let s = VirtualRun::new(cfg, 60.0, 60.0).last().expect("one scrape");
    (s.engine_body, s.gpu_body)
}

fn fixture(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../expo/tests/samples")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// How `body` (the simulator as `name`) differs from `file` through detection and the
/// canonical view, and the families or labels it writes that the real one does not.
fn unlike(name: &str, body: &str, file: &str) -> Vec<String> {
    let fixture = fixture(file);
    let (want, got) = (view(&fixture), view(body));
    let mut out = Vec::new();
    if (got.dialect.as_str(), got.version.as_str())
        != (want.dialect.as_str(), want.version.as_str())
    {
        out.push(format!(
            "{name}: detected as {} {}, {file} as {} {}",
            got.dialect, got.version, want.dialect, want.version
        ));
    }
    let gs = states(&got);
    for (k, v) in states(&want) {
        if gs.get(&k) != Some(&v) {
            out.push(format!("{name}: {k} is {:?}, {v} in {file}", gs.get(&k)));
        }
    }
    if got.incident_gaps != want.incident_gaps {
        out.push(format!(
            "{name}: incident gaps {:?}, {:?} in {file}",
            got.incident_gaps, want.incident_gaps
        ));
    }
    let wl = label_names(&fixture);
    for (family, labels) in label_names(body) {
        match wl.get(&family) {
            None => out.push(format!("{name}: {family} is not in {file}")),
            Some(l) if *l != labels => out.push(format!(
                "{name}: {family} has labels {labels:?}, {l:?} in {file}"
            )),
            Some(_) => {}
        }
    }
    out
}

#[test]
fn every_engine_version_scrapes_like_its_fixture() {
    let mut problems = Vec::new();
    for &(engine, name, file) in CASES {
        let mut cfg = SimConfig::new(engine);
        cfg.version = Some(
            EngineVersion::parse(engine, name)
                .unwrap_or_else(|e| panic!("{} {name}: {e}", engine.name())),
        );
        let (body, _) = simulated(&cfg);
        problems.extend(unlike(name, &body, file));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_dcgm_version_scrapes_like_its_fixture() {
    let mut problems = Vec::new();
    for &(name, file) in DCGM_CASES {
        let mut cfg = SimConfig::new(EngineKind::Vllm);
        cfg.dcgm = Some(DcgmVersion::parse(name).expect("known"));
        let (_, body) = simulated(&cfg);
        problems.extend(unlike(name, &body, file));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Old Kubernetes label names on a stock exporter.
    let mut cfg = SimConfig::new(EngineKind::Vllm);
    cfg.dcgm = Some(DcgmVersion::Stock453OldK8s);
    let (_, body) = simulated(&cfg);
    let labels = &label_names(&body)["DCGM_FI_DEV_FB_USED"];
    for l in [
        "pod_name",
        "pod_namespace",
        "container_name",
        "pod_uid",
        "Hostname",
    ] {
        assert!(labels.contains(l), "{labels:?}");
    }
    assert!(!labels.contains("pod"), "{labels:?}");
}

#[test]
fn unknown_versions_name_the_known_ones() {
    let err = EngineVersion::parse(EngineKind::Vllm, "0.9.9").unwrap_err();
    assert!(err.contains("0.33.0") && err.contains("0.8.5-v0"), "{err}");
    // A version of another engine is refused too.
    assert!(EngineVersion::parse(EngineKind::Tgi, "0.33.0").is_err());
    let err = DcgmVersion::parse("3.0").unwrap_err();
    assert!(err.contains("4.5.3-old-k8s"), "{err}");
}
