//! MIG slices stay apart through the canonical recording rules: DCGM labels each slice's
//! `DCGM_FI_PROF_GR_ENGINE_ACTIVE` with `GPU_I_ID` / `GPU_I_PROFILE` on the parent's UUID,
//! and `gpu:gr_engine_active_ratio` must keep one series per slice (per-slice activity), not
//! merge them into the parent GPU.

use sources::Point;
use testkit::db::Db;

const T0: i64 = 1_700_000_000_000;

#[test]
fn per_slice_activity_keeps_one_series_per_gpu_instance() {
    let mut triage = testkit::db::triage_of(&["canonical.yml"]);
    let db = Db::new();
    let slice = |gi: &str, profile: &str, value: f64, t: i64| {
        let labels = [
            ("GPU_I_ID", gi),
            ("GPU_I_PROFILE", profile),
            ("Hostname", "node-a"),
            ("UUID", "GPU-7de7a1b2-0000-1111-2222-333344445555"),
            ("device", "nvidia0"),
            ("gpu", "0"),
            ("instance", "node-a:9400"),
            ("job", "dcgm"),
            ("modelName", "NVIDIA H100 80GB HBM3"),
        ];
        Point::new(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            t,
        )
    };
    let mut t = T0;
    for step in 0..4 {
        t = T0 + step * 15_000;
        db.write(
            "dcgm",
            &[slice("1", "3g.40gb", 0.8, t), slice("2", "1g.10gb", 0.1, t)],
        );
        triage.step(t, &db, &db);
    }
    let mut got: Vec<(String, String, f64)> =
        rules::Query::instant(&db, "gpu:gr_engine_active_ratio", t)
            .expect("query")
            .into_iter()
            .map(|(labels, v)| {
                let get = |k: &str| testkit::db::label(&labels, k);
                assert_eq!(get("gpu_uuid"), "GPU-7de7a1b2-0000-1111-2222-333344445555");
                (get("GPU_I_ID"), get("GPU_I_PROFILE"), v)
            })
            .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("1".to_string(), "3g.40gb".to_string(), 0.8),
            ("2".to_string(), "1g.10gb".to_string(), 0.1)
        ]
    );
}
