//! The reference scrape samples parse cleanly, with the expected sample counts, and survive a
//! parse → write → parse round trip in both formats.

use std::path::{Path, PathBuf};

use expo::{Format, OwnedFamily, Writer, parse};

const EXPECTED: &[(&str, usize)] = &[
    ("dcgm-exporter-constructed.prom", 46),
    ("dcgm-exporter-mig-constructed.prom", 92),
    ("llamacpp-server-captured.prom", 15),
    ("sglang-constructed.prom", 60),
    ("tgi-constructed.prom", 161),
    ("vllm-v0-constructed.prom", 112),
    ("vllm-v1-constructed.prom", 207),
];

/// The copies checked into this crate (what CI sees).
fn local_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples")
}

/// The shared reference directory, when this checkout sits next to it.
fn shared_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/samples"
    ))
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
fn local_copies_match_shared_reference() {
    let shared = shared_dir();
    if !shared.exists() {
        return; // fresh CI checkout without ../shared
    }
    check_dir(&shared);
    for (file, _) in EXPECTED {
        let a = std::fs::read(shared.join(file)).unwrap();
        let b = std::fs::read(local_dir().join(file)).unwrap();
        assert_eq!(a, b, "{file}: local copy differs from the shared reference");
    }
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
