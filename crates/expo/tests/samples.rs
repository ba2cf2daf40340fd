//! The engine fixtures (one per engine version) parse cleanly, with the expected sample counts, and survive a
//! parse → write → parse round trip in both formats.

use std::path::{Path, PathBuf};

use expo::{Format, OwnedFamily, Writer, parse};

/// Each fixture and its sample count (non-comment lines). The files are built from each
/// engine version's metric registration code; the header of each names what was read.
const EXPECTED: &[(&str, usize)] = &[
    ("dcgm-4.5.3-default.prom", 50),
    ("dcgm-4.5.3-mig-old-namespace.prom", 46),
    ("dcgm-main-dcp-k8s.prom", 50),
    ("dcgm-strata-counters.prom", 62),
    ("llamacpp-before-26920.prom", 14),
    ("llamacpp-server-captured.prom", 15),
    ("sglang-0.4.10.prom", 91),
    ("sglang-0.5.23.prom", 916),
    ("sglang-0.5.4.prom", 420),
    ("tgi-3.3.7.prom", 1930),
    ("vllm-0.10.2.prom", 311),
    ("vllm-0.14.0.prom", 407),
    ("vllm-0.33.0.prom", 428),
    ("vllm-0.8.5-v0.prom", 279),
    ("vllm-0.8.5-v1.prom", 283),
];

/// The fixtures checked into this crate.
fn local_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples")
}

fn check_dir(dir: &Path) {
    for (file, want) in EXPECTED {
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        let exp = parse(&body, Format::Prometheus);
        assert!(exp.errors.is_empty(), "{file}: {:?}", exp.errors);
        assert_eq!(exp.sample_count(), *want, "{file}");
        let streamed = expo::Parser::new(&body, Format::Prometheus)
            .filter(|e| matches!(e, Ok(expo::Event::Sample(_))))
            .count();
        assert_eq!(streamed, *want, "{file}");
        // Every sample joined a declared family (no stray untyped families).
        assert!(
            exp.families
                .iter()
                .all(|f| f.metric_type != expo::MetricType::Unknown),
            "{file}: untyped family"
        );
    }
}

#[test]
fn local_samples_parse() {
    check_dir(&local_dir());
}

#[test]
fn samples_round_trip() {
    for (file, want) in EXPECTED {
        let body = std::fs::read_to_string(local_dir().join(file)).unwrap();
        let exp = parse(&body, Format::Prometheus);
        let owned: Vec<OwnedFamily> = exp.to_owned_families();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = Writer::render(format, &owned);
            let back = parse(&text, format);
            assert!(
                back.errors.is_empty(),
                "{file} {format:?}: {:?}",
                back.errors
            );
            assert_eq!(back.sample_count(), *want, "{file} {format:?}");
            let a: Vec<_> = exp.samples().map(|s| s.to_owned_sample()).collect();
            let b: Vec<_> = back.samples().map(|s| s.to_owned_sample()).collect();
            assert_eq!(a, b, "{file} {format:?}");
        }
    }
}
