//! The generated canonical recording rules, evaluated by Strata's PromQL engine on every
//! engine fixture (`crates/expo/tests/samples`, one per engine version), give exactly the
//! series and values of the canonical view (`sources::dialect::canonical_view`, whose values
//! `crates/sources/tests/fixtures.rs` checks by hand): same label sets, same numbers, and
//! nothing for a signal the view says the engine does not give.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rules::Query;
use sources::dialect::{Layer, SeriesValue, SignalStatus, canonical, canonical_view, detect};
use sources::{LabelSet, Point};
use testkit::db::Db;

const T: i64 = 1_000_000;

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../expo/tests/samples")
}

fn load(file: &str) -> Vec<Point> {
    let body = std::fs::read_to_string(samples_dir().join(file)).expect("fixture");
    let exp = expo::parse(&body, expo::Format::Prometheus);
    assert!(exp.errors.is_empty(), "{file}: {:?}", exp.errors.first());
    sources::scrape::to_points(&exp, &LabelSet::new(), T)
}

/// What each canonical rule records at `T`, by record name, labels without the dialect
/// label of the GPU layer (`exporter`, which the view does not add) and without `__name__`
/// (the rule engine names the result after the record).
fn recorded(db: &Db) -> BTreeMap<String, Vec<(LabelSet, f64)>> {
    rules::canonical::groups()
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| {
            let name = r.record.clone().expect("recording rule");
            let mut out: Vec<(LabelSet, f64)> = db
                .instant(&r.expr, T)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .into_iter()
                .map(|(labels, v)| {
                    let mut l: LabelSet = labels
                        .into_iter()
                        .filter(|(k, _)| k != "exporter" && k != "__name__")
                        .collect();
                    l.sort_unstable();
                    (l, v)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            (name, out)
        })
        .collect()
}

#[test]
fn canonical_rules_agree_with_the_canonical_view_on_every_fixture() {
    let mut files: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("samples")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".prom"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    for file in &files {
        let points = load(file);
        let d = detect(points.iter().map(|p| p.name.as_str())).expect("dialect");
        let view = canonical_view(d, &points);
        let db = Db::new();
        db.write(file, &points);
        let got = recorded(&db);
        let layer = d.table.layer;
        for (signal, status) in &view.signals {
            let s = canonical().signal(signal).expect("canonical");
            let (record, want): (String, Vec<(LabelSet, f64)>) = match status {
                SignalStatus::Exposed { series, .. } => {
                    let hist = matches!(series[0].value, SeriesValue::Histogram { .. });
                    let record = if hist {
                        format!("{signal}_count")
                    } else {
                        signal.clone()
                    };
                    let mut want: Vec<(LabelSet, f64)> = series
                        .iter()
                        .map(|x| match x.value {
                            SeriesValue::Scalar { value } => (x.labels.clone(), value),
                            SeriesValue::Histogram { count, .. } => (x.labels.clone(), count),
                        })
                        .collect();
                    want.sort_by(|a, b| a.0.cmp(&b.0));
                    (record, want)
                }
                _ => (
                    if s.signal_type == sources::dialect::SignalType::Histogram {
                        format!("{signal}_count")
                    } else {
                        signal.clone()
                    },
                    Vec::new(),
                ),
            };
            let have = got.get(&record).cloned().unwrap_or_default();
            assert_eq!(
                have.len(),
                want.len(),
                "{file} {record}: rule {have:?}\nview {want:?}"
            );
            for ((hl, hv), (wl, wv)) in have.iter().zip(&want) {
                assert_eq!(hl, wl, "{file} {record}");
                assert!(
                    (hv - wv).abs() <= 1e-9 * wv.abs().max(1.0),
                    "{file} {record}: rule {hv} != view {wv}"
                );
            }
        }
        // Nothing recorded for the other layer's signals from this body.
        for s in canonical().signals.iter().filter(|s| s.layer != layer) {
            assert!(
                got.get(&s.name).is_none_or(|v| v.is_empty()),
                "{file}: {} from another layer",
                s.name
            );
        }
        assert!(matches!(layer, Layer::Engine | Layer::Gpu));
    }
}
