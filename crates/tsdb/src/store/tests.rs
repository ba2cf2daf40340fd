use super::*;
use promql_parser::label::MatchOp;

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn s<'a>(name: &'a str, labels: &'a [(String, String)], t_ms: i64, value: f64) -> SampleRef<'a> {
    SampleRef {
        name,
        labels,
        t_ms,
        value,
    }
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value)
}

#[test]
fn appends_selects_and_rejects_out_of_order() {
    let (store, warn) = Store::open(StoreConfig::default());
    assert!(warn.is_none());
    let a = l(&[("model", "m1"), ("instance", "x")]);
    let b = l(&[("instance", "x"), ("model", "m1")]); // same set, other order
    let r = store.append(
        "t",
        [
            s("up", &a, 1000, 1.0),
            s("up", &b, 2000, 2.0),
            s("up", &a, 2000, 3.0),
            s("up", &a, 1500, 3.0),
        ],
    );
    assert_eq!((r.appended, r.out_of_order), (2, 2));
    let got = store.select(&[eq("__name__", "up"), eq("model", "m1")], 0, 10_000);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(1000, 1.0), (2000, 2.0)]);
    assert_eq!(store.stats().drops.out_of_order, 2);
    assert_eq!(store.stats().series, 1);
}

#[test]
fn forbidden_labels_and_limits_name_metric_and_source() {
    let cfg = StoreConfig {
        max_series_per_metric: 2,
        max_series: 3,
        forbidden_labels: vec!["trace_id".into()],
        ..StoreConfig::default()
    };
    let (store, _) = Store::open(cfg);
    let bad = l(&[("request_id", "42")]);
    let custom = l(&[("trace_id", "abc")]);
    let r = store.append(
        "vllm-0",
        [s("vllm:x", &bad, 1, 1.0), s("vllm:x", &custom, 1, 1.0)],
    );
    assert_eq!(r.appended, 0);
    assert_eq!(r.refused.len(), 2);
    assert!(
        r.refused[0].reason.contains("request_id")
            && r.refused[0].source == "vllm-0"
            && r.refused[0].metric == "vllm:x"
    );
    // Per-request ids are refused in every spelling a scraper or a relabel could produce.
    for spelling in ["Request_ID", "requestid", "exported_request_id", "userId"] {
        let odd = l(&[(spelling, "7")]);
        let r = store.append("vllm-0", [s("vllm:y", &odd, 1, 1.0)]);
        assert_eq!((r.appended, r.refused.len()), (0, 1), "{spelling}");
    }
    let series: Vec<Vec<(String, String)>> =
        (0..4).map(|i| l(&[("gpu", &i.to_string())])).collect();
    let r = store.append("dcgm", series.iter().map(|ls| s("temp", ls, 1, 1.0)));
    assert_eq!(r.appended, 2);
    // Admission follows the samples' order, whatever shards the series fall in.
    let admitted: Vec<String> = store
        .series_labels(&[eq("__name__", "temp")], 0, 10)
        .iter()
        .filter_map(|l| l.get("gpu").map(str::to_string))
        .collect();
    assert_eq!(admitted, ["0", "1"]);
    assert!(
        r.refused[0].reason.contains("max_series_per_metric"),
        "{:?}",
        r.refused
    );
    let r = store.append("dcgm", series.iter().map(|ls| s("power", ls, 1, 1.0)));
    assert_eq!(r.appended, 1);
    assert!(r.refused.iter().any(|x| x.reason.contains("(max_series)")));
    let d = store.stats().drops;
    assert_eq!(
        (d.forbidden_label, d.metric_series_limit, d.series_limit),
        (2 + 4, 2, 3)
    );
}

#[test]
fn retention_by_time_and_bytes_drops_oldest_and_counts() {
    let cfg = StoreConfig {
        retention: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let (store, _) = Store::open(cfg);
    let ls = l(&[("a", "1")]);
    store.append("t", (0..2000).map(|i| s("m", &ls, i * 5000, i as f64)));
    let got = store.select(&[eq("__name__", "m")], i64::MIN, i64::MAX);
    let first = got[0].1[0].0;
    let last = got[0].1.last().map(|x| x.0).unwrap_or(0);
    assert!(
        last - first <= 3_600_000 + 120 * 5000 + 60_000,
        "kept {first}..{last}"
    );
    assert!(store.stats().drops.retention_time_chunks > 0);

    let (store, _) = Store::open(StoreConfig {
        max_bytes: 2000,
        ..StoreConfig::default()
    });
    let others = l(&[("a", "2")]);
    store.append(
        "t",
        (0..1000).map(|i| s("m", &ls, i * 5000, (i * 7919 % 1000) as f64 / 3.0)),
    );
    store.append(
        "t",
        (1000..2000).map(|i| s("m", &others, i * 5000, (i * 7919 % 1000) as f64 / 3.0)),
    );
    let st = store.stats();
    assert!(st.bytes <= 2000, "{st:?}");
    assert!(st.drops.retention_bytes_chunks > 0);
    // The oldest series lost its chunks first; the newest still has data.
    assert_eq!(store.select(&[eq("a", "2")], i64::MIN, i64::MAX).len(), 1);
}

#[test]
fn snapshot_round_trips_and_corrupt_snapshot_is_set_aside() {
    let dir = std::env::temp_dir().join(format!("tsdb-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("store.snap");
    let cfg = StoreConfig {
        snapshot_path: Some(path.clone()),
        ..StoreConfig::default()
    };
    let (store, _) = Store::open(cfg.clone());
    let ls = l(&[("gpu", "0")]);
    store.append(
        "t",
        (0..300).map(|i| s("DCGM_FI_DEV_GPU_TEMP", &ls, i * 1000, 40.0 + (i % 7) as f64)),
    );
    store.append(
        "t",
        [s(
            "DCGM_FI_DEV_GPU_TEMP",
            &ls,
            300_000,
            f64::from_bits(STALE_NAN_BITS),
        )],
    );
    store.set_metadata(
        "DCGM_FI_DEV_GPU_TEMP",
        Metadata {
            kind: "gauge".into(),
            help: "temp".into(),
            unit: String::new(),
        },
    );
    store.snapshot().expect("snapshot");
    let (back, warn) = Store::open(cfg.clone());
    assert!(warn.is_none());
    assert_eq!(back.select(&[eq("gpu", "0")], 0, i64::MAX)[0].1.len(), 301);
    assert!(is_stale(
        back.select(&[eq("gpu", "0")], 300_000, 300_000)[0].1[0].1
    ));
    assert_eq!(back.metadata().len(), 1);
    // Appending continues after the reloaded head chunk.
    assert_eq!(
        back.append("t", [s("DCGM_FI_DEV_GPU_TEMP", &ls, 301_000, 1.0)])
            .appended,
        1
    );

    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).expect("write");
    let (empty, warn) = Store::open(cfg);
    let warn = warn.expect("corruption is reported");
    assert!(
        warn.contains("corrupt") && warn.contains("set aside"),
        "{warn}"
    );
    assert_eq!(empty.stats().series, 0);
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn regex_and_negative_matchers_use_empty_value_semantics() {
    let (store, _) = Store::open(StoreConfig::default());
    let a = l(&[("tenant", "acme")]);
    let none: Vec<(String, String)> = vec![];
    store.append("t", [s("m", &a, 1, 1.0), s("m", &none, 1, 1.0)]);
    let re = |v: &str| {
        Matcher::new(
            MatchOp::Re(regex::Regex::new(&format!("^(?:{v})$")).expect("re")),
            "tenant",
            v,
        )
    };
    assert_eq!(
        store.select(&[eq("__name__", "m"), re(".+")], 0, 10).len(),
        1
    );
    assert_eq!(
        store.select(&[eq("__name__", "m"), re(".*")], 0, 10).len(),
        2
    );
    assert_eq!(
        store
            .select(&[eq("__name__", "m"), eq("tenant", "")], 0, 10)
            .len(),
        1
    );
    assert_eq!(
        store
            .select(
                &[
                    eq("__name__", "m"),
                    Matcher::new(MatchOp::NotEqual, "tenant", "acme")
                ],
                0,
                10
            )
            .len(),
        1
    );
}

#[test]
fn replay_follows_a_series_id_reused_after_retention() {
    let dir = std::env::temp_dir().join(format!("tsdb-reuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Two label sets in the same shard: the second reuses the first's slot once it is gone.
    let shard = |v: &str| shard_of(series_hash("m", [("k", v)].into_iter()));
    let first = "0".to_string();
    let second = (1..)
        .map(|i: u32| i.to_string())
        .find(|v| shard(v) == shard(&first))
        .unwrap_or_default();
    let other = (1..)
        .map(|i: u32| format!("o{i}"))
        .find(|v| shard(v) != shard(&first))
        .unwrap_or_default();
    let cfg = StoreConfig {
        retention: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let wal = WalOptions {
        flush_interval: Duration::ZERO,
        fsync: false,
        ..WalOptions::default()
    };
    let (store, _) = Store::open_durable(cfg.clone(), &dir, wal.clone()).expect("open");
    let (x, y, z) = (
        l(&[("k", &first)]),
        l(&[("k", &other)]),
        l(&[("k", &second)]),
    );
    let id_of = |st: &Store, v: &str| {
        let hash = series_hash("m", [("k", v)].into_iter());
        read(&st.shards[shard_of(hash)]).find(hash, "m", &[("k", v)])
    };
    store.append("t", [s("m", &x, 1_000, 1.0)]);
    let x_id = id_of(&store, &first);
    store.append("t", [s("m", &y, 7_300_000, 2.0)]); // retention removes x
    assert_eq!(id_of(&store, &first), None);
    store.append("t", [s("m", &z, 7_301_000, 3.0)]); // z takes x's id
    assert_eq!(id_of(&store, &second), x_id);
    let all = |st: &Store| st.select(&[eq("__name__", "m")], i64::MIN, i64::MAX);
    let expected = all(&store);
    assert_eq!(expected.len(), 2);
    drop(store); // no close: a crash

    let (back, report) = Store::open_durable(cfg, &dir, wal).expect("reopen");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(all(&back), expected);
    assert_eq!(back.stats().series, 2);
    back.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repeated_appends_reuse_series_until_the_store_removes_any() {
    // x and z share a shard: z takes x's slot (and id) once retention removed x.
    let shard = |v: &str| shard_of(series_hash("m", [("k", v)].into_iter()));
    let first = "0".to_string();
    let second = (1..)
        .map(|i: u32| i.to_string())
        .find(|v| shard(v) == shard(&first))
        .unwrap_or_default();
    let cfg = StoreConfig {
        retention: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    let (store, _) = Store::open(cfg);
    let (x, y, z) = (
        l(&[("k", &first)]),
        l(&[("k", "other")]),
        l(&[("k", &second)]),
    );
    let mut refs = SeriesRefs::default();
    let batch = |t: i64, v: f64| [s("m", &x, t, v), s("n", &x, t, v)];
    let r = store.append_repeated("t", batch(1_000, 1.0), &mut refs, true);
    assert_eq!(r.appended, 2, "nothing remembered yet: found as usual");
    let r = store.append_repeated("t", batch(2_000, 2.0), &mut refs, true);
    assert_eq!(r.appended, 2);
    assert_eq!(store.stats().series, 2);

    store.append("u", [s("m", &y, 7_300_000, 3.0)]); // retention removes both x series
    store.append("u", [s("m", &z, 7_301_000, 4.0)]); // z takes m{x}'s id
    // The caller still vouches for the same series: the store knows its ids are stale.
    let r = store.append_repeated("t", batch(7_302_000, 5.0), &mut refs, true);
    assert_eq!(r.appended, 2);
    assert_eq!(store.stats().series, 4);
    let values = |k: &str| {
        store
            .select(&[eq("__name__", "m"), eq("k", k)], i64::MIN, i64::MAX)
            .into_iter()
            .flat_map(|(_, samples)| samples)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values(&second),
        [(7_301_000, 4.0)],
        "z kept only its own sample"
    );
    assert_eq!(values(&first), [(7_302_000, 5.0)]);
    let r = store.append_repeated("t", batch(7_303_000, 6.0), &mut refs, false);
    assert_eq!(r.appended, 2, "not vouched for: found as usual");
}

#[test]
fn queries_run_while_appends_continue() {
    let store = std::sync::Arc::new(Store::open(StoreConfig::default()).0);
    let series: Vec<Vec<(String, String)>> = (0..50).map(|i| l(&[("i", &i.to_string())])).collect();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut last = 0;
            for _ in 0..200 {
                let got = store.select(&[eq("__name__", "m")], i64::MIN, i64::MAX);
                let n: usize = got.iter().map(|(_, s)| s.len()).sum();
                // Appends land whole series by whole series; a reader never sees data vanish.
                assert!(n >= last, "{n} < {last}");
                last = n;
            }
        })
    };
    for t in 0..200 {
        let r = store.append("t", series.iter().map(|ls| s("m", ls, t * 1000, t as f64)));
        assert_eq!(r.appended, 50);
    }
    assert!(reader.join().is_ok());
    assert_eq!(store.stats().samples, 200 * 50);
}

#[test]
fn select_latest_is_the_last_sample_select_finds() {
    let (store, _) = Store::open(StoreConfig::default());
    let a = l(&[("k", "a")]);
    let b = l(&[("k", "b")]);
    // Series a: 300 samples 1 s apart (two closed chunks and a head), the last one a
    // staleness marker; series b: a gap between two runs of samples.
    let mut batch = Vec::new();
    for i in 0..300i64 {
        let v = if i == 299 {
            f64::from_bits(STALE_NAN_BITS)
        } else {
            i as f64
        };
        batch.push(s("m", &a, 1_000 * i, v));
    }
    for i in (0..50i64).chain(200..260) {
        batch.push(s("m", &b, 1_000 * i + 500, -(i as f64)));
    }
    store.append("t", batch);
    let bits = |v: &[(Labels, Vec<(i64, f64)>)]| -> Vec<(Labels, Vec<(i64, u64)>)> {
        v.iter()
            .map(|(l, pts)| {
                (
                    l.clone(),
                    pts.iter().map(|p| (p.0, p.1.to_bits())).collect(),
                )
            })
            .collect()
    };
    let mut checked = 0;
    for maxt in (-2_000..310_000).step_by(500) {
        for back in [0, 999, 1_000, 30_000, 300_000] {
            let mint = maxt - back;
            let m = [eq("__name__", "m")];
            let want: Vec<(Labels, Vec<(i64, f64)>)> = store
                .select(&m, mint, maxt)
                .into_iter()
                .map(|(l, pts)| (l, pts.last().copied().into_iter().collect()))
                .collect();
            assert_eq!(
                bits(&store.select_latest(&m, mint, maxt)),
                bits(&want),
                "[{mint}, {maxt}]"
            );
            checked += want.len();
        }
    }
    assert!(checked > 1_000, "the windows found samples ({checked})");
}
