//! The durable store: write-ahead-log replay after a crash, repair of torn and corrupt logs,
//! checkpoints, the data-directory lock and damaged snapshots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use tsdb::{Metadata, OpenReport, SampleRef, Store, StoreConfig, WalOptions};

/// A fresh directory per test (removed at the end of a passing test).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tsdb-durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every append is written before it returns; each append gets its own segment when
/// `segment_bytes` is 1.
fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        flush_interval: Duration::ZERO,
        fsync: false,
    }
}

fn open(dir: &Path, o: WalOptions) -> (Store, OpenReport) {
    match Store::open_durable(StoreConfig::default(), dir, o) {
        Ok(x) => x,
        Err(e) => panic!("open {}: {e}", dir.display()),
    }
}

fn labels(gpu: usize) -> Vec<(String, String)> {
    vec![("gpu".to_string(), gpu.to_string())]
}

/// One scrape of `gpus` series at `t_ms` (value = t in seconds plus the gpu number).
fn scrape(store: &Store, gpus: usize, t_ms: i64) {
    let ls: Vec<_> = (0..gpus).map(labels).collect();
    let r = store.append(
        "dcgm",
        ls.iter().enumerate().map(|(g, l)| SampleRef {
            name: "temp",
            labels: l,
            t_ms,
            value: (t_ms / 1000) as f64 + g as f64,
        }),
    );
    assert_eq!(r.appended, gpus, "{r:?}");
}

/// Every sample held, by series, in label order.
fn dump(store: &Store) -> Vec<(String, Vec<(i64, f64)>)> {
    let m = Matcher::new(MatchOp::Equal, "__name__", "temp");
    store
        .select(&[m], i64::MIN, i64::MAX)
        .into_iter()
        .map(|(l, s)| (l.to_string(), s))
        .collect()
}

fn times(store: &Store) -> Vec<i64> {
    let mut t: Vec<i64> = dump(store)
        .into_iter()
        .flat_map(|(_, s)| s.into_iter().map(|x| x.0))
        .collect();
    t.sort();
    t.dedup();
    t
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// A crash image: the directory's files as they are on disk now (the lock is not copied).
fn crash_copy(dir: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("wal")).expect("mkdir");
    for sub in ["", "wal"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_file() {
                std::fs::copy(&p, to.join(sub).join(p.file_name().expect("name"))).expect("copy");
            }
        }
    }
}

#[test]
fn crash_keeps_what_was_flushed_and_replays_it_exactly() {
    let dir = temp_dir("crash");
    let image = temp_dir("crash-image");
    let slow = WalOptions {
        flush_interval: Duration::from_secs(3600),
        ..WalOptions::default()
    };
    let (store, report) = open(&dir, slow);
    assert_eq!(report, OpenReport::default());
    for k in 0..5 {
        scrape(&store, 3, 1_000 + k * 1000);
    }
    store.set_metadata(
        "temp",
        Metadata {
            kind: "gauge".into(),
            help: "GPU temperature".into(),
            unit: "celsius".into(),
        },
    );
    store.flush().expect("flush");
    scrape(&store, 3, 10_000); // buffered, not yet flushed: lost in the crash
    crash_copy(&dir, &image);
    let expected: Vec<_> = dump(&store)
        .into_iter()
        .map(|(l, s)| (l, s[..5].to_vec()))
        .collect();
    drop(store);

    let (back, report) = open(&image, WalOptions::default());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!((report.wal_samples, report.wal_duplicates), (15, 0));
    assert_eq!(dump(&back), expected);
    assert_eq!(back.metadata()[0].1.unit, "celsius");
    // Appends continue after the replayed data, in a new segment.
    scrape(&back, 3, 10_000);
    assert_eq!(back.stats().samples, 18);
    back.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
    std::fs::remove_dir_all(&image).expect("cleanup");
}

#[test]
fn torn_final_record_is_cut_off_and_the_rest_kept() {
    let dir = temp_dir("torn");
    let (store, _) = open(&dir, opts(32 << 20));
    for k in 0..4 {
        scrape(&store, 2, 1_000 + k * 1000);
    }
    store.close().expect("close");
    let seg = wal_segments(&dir).pop().expect("a segment");
    let len = std::fs::metadata(&seg).expect("stat").len();
    let f = std::fs::File::options()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(len - 3).expect("truncate");
    drop(f);

    let (store, report) = open(&dir, opts(32 << 20));
    assert_eq!(report.corruptions, 1);
    assert!(
        report.warnings[0].contains("damaged") && report.warnings[0].contains("torn"),
        "{:?}",
        report.warnings
    );
    assert_eq!(times(&store), vec![1_000, 2_000, 3_000]);
    store.close().expect("close");
    // The repair is on disk: the next open finds a clean log.
    let (store, report) = open(&dir, opts(32 << 20));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(times(&store), vec![1_000, 2_000, 3_000]);
    store.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn flipped_byte_mid_log_keeps_everything_before_it() {
    let dir = temp_dir("flip");
    let (store, _) = open(&dir, opts(1)); // one segment per append
    for k in 0..4 {
        scrape(&store, 2, 1_000 + k * 1000);
    }
    store.close().expect("close");
    let segs = wal_segments(&dir);
    assert_eq!(segs.len(), 4, "{segs:?}");
    let mut bytes = std::fs::read(&segs[1]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&segs[1], &bytes).expect("write");

    let (store, report) = open(&dir, opts(1));
    assert_eq!(report.corruptions, 1);
    let w = &report.warnings[0];
    assert!(
        w.contains("checksum") && w.contains("deleted 2 later segment"),
        "{w}"
    );
    assert_eq!(times(&store), vec![1_000]);
    assert_eq!(std::fs::metadata(&segs[1]).expect("kept").len(), 0);
    assert!(!segs[2].exists() && !segs[3].exists());
    store.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn checkpoint_deletes_covered_segments_and_replay_is_exact() {
    let dir = temp_dir("checkpoint");
    let (store, _) = open(&dir, opts(1));
    for k in 0..3 {
        scrape(&store, 4, 1_000 + k * 1000);
    }
    let before = wal_segments(&dir);
    let saved: Vec<(PathBuf, Vec<u8>)> = before
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).expect("read")))
        .collect();
    store.snapshot().expect("checkpoint");
    let after = wal_segments(&dir);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    for k in 3..6 {
        scrape(&store, 4, 1_000 + k * 1000);
    }
    let expected = dump(&store);
    store.close().expect("close");

    let (back, report) = open(&dir, opts(1));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.checkpoint_series, 4);
    assert_eq!((report.wal_samples, report.wal_duplicates), (12, 0));
    assert_eq!(dump(&back), expected);
    back.close().expect("close");

    // A crash between the snapshot and the deletion leaves covered segments behind: they are
    // skipped (their data is in the checkpoint), not counted as errors.
    for (p, b) in &saved {
        std::fs::write(p, b).expect("restore");
    }
    let (back, report) = open(&dir, opts(1));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(dump(&back), expected);
    assert_eq!(back.stats().drops.out_of_order, 0);
    assert!(saved.iter().all(|(p, _)| !p.exists()));
    back.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn second_open_of_a_locked_dir_is_refused_with_the_holder() {
    let dir = temp_dir("lock");
    let (store, _) = open(&dir, opts(32 << 20));
    let err = match Store::open_durable(StoreConfig::default(), &dir, opts(32 << 20)) {
        Ok(_) => panic!("a second open must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&dir.display().to_string())
            && err.contains(&format!("pid {}", std::process::id()))
            && err.contains("stop that process"),
        "{err}"
    );
    store.close().expect("close");
    let (store, _) = open(&dir, opts(32 << 20));
    store.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn damaged_snapshot_record_loses_only_its_series() {
    let dir = temp_dir("snapshot");
    let (store, _) = open(&dir, opts(32 << 20));
    let (big, small) = (labels(0), labels(1));
    store.append(
        "dcgm",
        (0..1000).map(|k| SampleRef {
            name: "temp",
            labels: &big,
            t_ms: k * 1000,
            value: (k % 13) as f64,
        }),
    );
    store.append(
        "dcgm",
        (0..10).map(|k| SampleRef {
            name: "temp",
            labels: &small,
            t_ms: k * 1000,
            value: k as f64,
        }),
    );
    store.snapshot().expect("checkpoint");
    store.close().expect("close");
    let path = dir.join("snapshot");
    let mut bytes = std::fs::read(&path).expect("read");
    // The big series' chunks follow its label value "0"; damage a byte well inside them.
    let at = bytes
        .windows(5)
        .position(|w| w == b"gpu\x010")
        .expect("big series");
    bytes[at + 200] ^= 0x08;
    std::fs::write(&path, &bytes).expect("write");

    let (store, report) = open(&dir, opts(32 << 20));
    assert!(report.corruptions >= 1, "{report:?}");
    let w = report.warnings.join("\n");
    assert!(
        w.contains("corrupt") && w.contains("set aside") && w.contains("1 series"),
        "{w}"
    );
    let kept = dump(&store);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1.len(), 10);
    assert!(!path.exists());
    store.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Any flipped bytes or truncation: the open succeeds, never panics, and everything it keeps
/// was written.
#[test]
fn damaged_files_open_and_keep_only_written_samples() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeMap;

    // A checkpoint and two log segments after it.
    let src = temp_dir("damage-original");
    let (store, _) = open(&src, opts(1));
    for k in 0..130 {
        scrape(&store, 3, 1_000 + k * 1000);
    }
    store.snapshot().expect("checkpoint");
    scrape(&store, 4, 200_000);
    scrape(&store, 4, 201_000);
    let written: BTreeMap<String, Vec<(i64, f64)>> = dump(&store).into_iter().collect();
    store.close().expect("close");

    let flips =
        proptest::collection::vec((0usize..3, any::<prop::sample::Index>(), 1u8..=255), 1..4);
    let cut = proptest::option::of((0usize..3, any::<prop::sample::Index>()));
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    let dir = temp_dir("damage-case");
    let outcome = runner.run(&(flips, cut), |(flips, cut)| {
        let _ = std::fs::remove_dir_all(&dir);
        crash_copy(&src, &dir);
        let mut files = vec![dir.join("snapshot")];
        files.extend(wal_segments(&dir));
        for (f, at, x) in flips {
            let path = &files[f % files.len()];
            let mut b = std::fs::read(path).expect("read");
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] ^= x;
                std::fs::write(path, &b).expect("write");
            }
        }
        if let Some((f, at)) = cut {
            let path = &files[f % files.len()];
            let len = std::fs::metadata(path).expect("stat").len() as usize;
            let f = std::fs::File::options()
                .write(true)
                .open(path)
                .expect("open");
            f.set_len(at.index(len + 1) as u64).expect("truncate");
        }
        let (store, report) = open(&dir, opts(1));
        for (series, samples) in dump(&store) {
            let orig = written.get(&series);
            prop_assert!(orig.is_some(), "{series} was never written; {report:?}");
            for s in &samples {
                prop_assert!(
                    orig.is_some_and(|o| o
                        .iter()
                        .any(|o| o.0 == s.0 && o.1.to_bits() == s.1.to_bits())),
                    "{series} {s:?} was never written"
                );
            }
        }
        store.close().expect("close");
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::remove_dir_all(&src).expect("cleanup");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// Closed chunks of decimal values are stored packed and others stay Gorilla; both survive
/// a checkpoint and a reopen sample for sample, and the packed ones take less memory.
#[test]
fn packed_and_gorilla_chunks_survive_a_checkpoint() {
    let dir = temp_dir("packed");
    let (store, _) = open(&dir, opts(1 << 20));
    let ls: Vec<_> = (0..2).map(labels).collect();
    let mut walk = 5_000i64;
    let mut bits = 0x9e37_79b9_7f4a_7c15u64;
    for k in 0..300i64 {
        walk += [-2, 0, 1, 3][(k % 4) as usize];
        bits = bits.rotate_left(7) ^ 0x2545_f491_4f6c_dd1d;
        // GPU 0: a two-decimal gauge (packs); GPU 1: arbitrary finite floats (stays Gorilla).
        let noise = f64::from_bits(bits & 0x3fef_ffff_ffff_ffff);
        let values = [walk as f64 / 100.0, noise];
        let r = store.append(
            "dcgm",
            ls.iter().zip(values).map(|(l, value)| SampleRef {
                name: "temp",
                labels: l,
                t_ms: 1_000 + k * 5_000,
                value,
            }),
        );
        assert_eq!(r.appended, 2);
    }
    let expected = dump(&store);
    let bytes = store.stats().bytes;
    store.snapshot().expect("checkpoint");
    store.close().expect("close");

    let (back, report) = open(&dir, opts(1 << 20));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let got = dump(&back);
    assert_eq!(got.len(), expected.len());
    for ((l1, a), (l2, b)) in got.iter().zip(&expected) {
        assert_eq!(l1, l2);
        assert_eq!(a.len(), 300);
        assert!(
            a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits()),
            "{l1} differs after reopen"
        );
    }
    assert_eq!(back.stats().bytes, bytes, "the same encodings come back");
    // The decimal series alone: its two closed chunks packed at a few bits a sample, the
    // 60-sample head still Gorilla. As Gorilla throughout the walk takes 2-3 bytes a sample.
    let (walk_only, _) = Store::open(StoreConfig::default());
    let one = &ls[..1];
    for (k, (t, v)) in expected[0].1.iter().enumerate() {
        let r = walk_only.append(
            "dcgm",
            one.iter().map(|l| SampleRef {
                name: "temp",
                labels: l,
                t_ms: *t,
                value: *v,
            }),
        );
        assert_eq!(r.appended, 1, "sample {k}");
    }
    let walk_bytes = walk_only.stats().bytes;
    let gorilla: usize = expected[0]
        .1
        .chunks(usize::from(tsdb::chunk::MAX_SAMPLES))
        .map(|part| {
            let mut c = tsdb::chunk::Chunk::default();
            part.iter().for_each(|(t, v)| c.push(*t, *v));
            c.bytes()
        })
        .sum();
    assert!(
        walk_bytes * 2 < gorilla,
        "{walk_bytes} bytes held for 300 two-decimal samples, {gorilla} as Gorilla"
    );
    back.close().expect("close");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
