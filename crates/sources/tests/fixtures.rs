//! Every engine fixture (`crates/expo/tests/samples`, one per engine version, built from that
//! version's metric registration code) through detection and the canonical view, against
//! values checked by hand from the traffic each fixture's header describes.

use std::path::Path;

use sources::dialect::{CanonicalView, SeriesValue, SignalStatus, canonical_view, detect};
use sources::{LabelSet, Point};

/// A canonical value to find: the sum over the signal's series (histograms: of their
/// counts) and how many series carry it.
type Value = (&'static str, f64, usize);

struct Case {
    file: &'static str,
    dialect: &'static str,
    version: &'static str,
    values: &'static [Value],
    /// Signals the engine cannot give in this version (shown with the table's reason).
    not_exposed: &'static [&'static str],
    /// Signals mapped for this version but absent from this body.
    not_in_scrape: &'static [&'static str],
    /// Signals whose value comes with a caveat, and a word the caveat must contain.
    caveats: &'static [(&'static str, &'static str)],
}

const MIB: f64 = 1048576.0;

const CASES: &[Case] = &[
    Case {
        file: "vllm-0.8.5-v0.prom",
        dialect: "vllm",
        version: "V0",
        values: &[
            ("llm:requests_running", 12.0, 1),
            ("llm:kv_cache_usage_ratio", 0.42, 1),
            ("llm:preemptions_total", 5.0, 1),
            ("llm:prompt_tokens_total", 120000.0, 1),
            ("llm:requests_finished_total", 993.0, 3),
            ("llm:ttft_seconds", 1000.0, 1),
            ("llm:itl_seconds", 45000.0, 1),
            ("llm:queue_seconds", 1000.0, 1),
        ],
        not_exposed: &[
            "llm:requests_failed_total",
            "llm:tpot_seconds",
            "llm:admission_rejections_total",
        ],
        // hidden by default in 0.8 (--show-hidden-metrics-for-version)
        not_in_scrape: &["llm:requests_swapped", "llm:prefix_cache_hit_ratio"],
        caveats: &[],
    },
    Case {
        file: "vllm-0.8.5-v1.prom",
        dialect: "vllm",
        version: "0.8-0.9 V1",
        values: &[
            ("llm:kv_cache_usage_ratio", 0.42, 1),
            ("llm:prefix_cache_queries_total", 6250.0, 1),
            ("llm:prefix_cache_hits_total", 3750.0, 1),
            ("llm:itl_seconds", 45000.0, 1),
            ("llm:requests_finished_total", 993.0, 3),
        ],
        not_exposed: &["llm:requests_swapped", "llm:requests_failed_total"],
        not_in_scrape: &[],
        caveats: &[
            ("llm:prefix_cache_queries_total", "blocks"),
            ("llm:prefix_cache_hits_total", "blocks"),
        ],
    },
    Case {
        file: "vllm-0.10.2.prom",
        dialect: "vllm",
        version: "0.10-0.11",
        values: &[
            ("llm:kv_cache_usage_ratio", 0.42, 1),
            ("llm:prefix_cache_queries_total", 100000.0, 1),
            ("llm:prefix_cache_hits_total", 60000.0, 1),
            ("llm:itl_seconds", 45000.0, 1),
            ("llm:requests_finished_total", 993.0, 3),
        ],
        not_exposed: &["llm:requests_failed_total", "llm:tpot_seconds"],
        not_in_scrape: &[],
        caveats: &[],
    },
    Case {
        file: "vllm-0.14.0.prom",
        dialect: "vllm",
        version: "0.12-0.32",
        values: &[
            ("llm:requests_finished_total", 993.0, 3),
            ("llm:requests_failed_total", 7.0, 1),
            ("llm:tpot_seconds", 1000.0, 1),
            ("llm:itl_seconds", 45000.0, 1),
        ],
        not_exposed: &["llm:admission_rejections_total", "llm:requests_deferred"],
        not_in_scrape: &[],
        caveats: &[],
    },
    Case {
        file: "vllm-0.33.0.prom",
        dialect: "vllm",
        version: "0.33+",
        values: &[
            ("llm:requests_waiting", 3.0, 1),
            ("llm:requests_deferred", 1.0, 1),
            ("llm:requests_finished_total", 995.0, 4),
            ("llm:requests_failed_total", 7.0, 1),
            ("llm:admission_rejections_total", 5.0, 2),
            ("llm:ttft_seconds", 1000.0, 1),
            ("llm:itl_seconds", 45000.0, 1),
        ],
        not_exposed: &["llm:requests_swapped", "llm:prefix_cache_hit_ratio"],
        not_in_scrape: &[],
        caveats: &[],
    },
    Case {
        file: "sglang-0.4.10.prom",
        dialect: "sglang",
        version: "0.4.10-0.5.2",
        values: &[
            ("llm:requests_running", 22.0, 1),
            ("llm:kv_cache_usage_ratio", 0.81, 1),
            ("llm:preemptions_total", 17.0, 1),
            ("llm:prompt_tokens_total", 50000.0, 1),
            ("llm:prefix_cache_queries_total", 50000.0, 1),
            ("llm:prefix_cache_hits_total", 30000.0, 1),
            ("llm:requests_finished_total", 400.0, 1),
            ("llm:ttft_seconds", 400.0, 1),
        ],
        not_exposed: &["llm:queue_seconds", "llm:preemptions_recent"],
        not_in_scrape: &[],
        caveats: &[
            ("llm:preemptions_total", "gauge"),
            ("llm:requests_finished_total", "finish_reason"),
            ("llm:ttft_seconds", "0.1 s"),
            ("llm:prefix_cache_queries_total", "prompt tokens"),
            ("llm:prefix_cache_hit_ratio", "last prefill batch"),
        ],
    },
    Case {
        file: "sglang-0.5.4.prom",
        dialect: "sglang",
        version: "0.5.3-0.5.9",
        // Two TP ranks report one batch: 22 running, not 44.
        values: &[
            ("llm:requests_running", 22.0, 1),
            ("llm:requests_waiting", 4.0, 1),
            ("llm:kv_cache_usage_ratio", 0.81, 1),
            ("llm:preemptions_recent", 3.0, 1),
            ("llm:queue_seconds", 400.0, 1),
        ],
        not_exposed: &["llm:preemptions_total"],
        not_in_scrape: &[],
        caveats: &[
            ("llm:requests_finished_total", "finish_reason"),
            ("llm:ttft_seconds", "0.1 s"),
            ("llm:prefix_cache_queries_total", "prompt tokens"),
            ("llm:prefix_cache_hit_ratio", "last prefill batch"),
        ],
    },
    Case {
        file: "sglang-0.5.23.prom",
        dialect: "sglang",
        version: "0.5.10+",
        // Two DP ranks: counts add up, the KV ratio is the fuller rank's.
        values: &[
            ("llm:requests_running", 22.0, 1),
            ("llm:requests_waiting", 4.0, 1),
            ("llm:kv_cache_usage_ratio", 0.9, 1),
            ("llm:preemptions_total", 17.0, 1),
            ("llm:preemptions_recent", 2.0, 1),
            ("llm:prompt_tokens_total", 50000.0, 1),
            ("llm:generation_tokens_total", 20000.0, 1),
            ("llm:prefix_cache_hits_total", 30000.0, 1),
            ("llm:requests_finished_total", 400.0, 1),
            ("llm:ttft_seconds", 400.0, 1),
            ("llm:tpot_seconds", 400.0, 1),
            ("llm:queue_seconds", 400.0, 1),
        ],
        not_exposed: &["llm:requests_failed_total"],
        not_in_scrape: &[],
        caveats: &[
            ("llm:requests_finished_total", "finish_reason"),
            ("llm:ttft_seconds", "0.1 s"),
            ("llm:prefix_cache_queries_total", "prompt tokens"),
            ("llm:prefix_cache_hit_ratio", "last prefill batch"),
        ],
    },
    Case {
        file: "tgi-3.3.7.prom",
        dialect: "tgi",
        version: "v2+",
        values: &[
            ("llm:requests_running", 24.0, 1),
            ("llm:requests_waiting", 6.0, 1),
            ("llm:kv_cache_usage_ratio", 0.25, 1),
            ("llm:prompt_tokens_total", 300000.0, 1),
            ("llm:generation_tokens_total", 198000.0, 1),
            ("llm:requests_finished_total", 990.0, 1),
            ("llm:requests_failed_total", 8.0, 2),
            ("llm:admission_rejections_total", 12.0, 1),
            ("llm:requests_received_total", 1010.0, 1),
            ("llm:request_mean_time_per_token_seconds", 990.0, 1),
            ("llm:e2e_seconds", 990.0, 1),
            ("llm:batch_size", 5000.0, 1),
        ],
        not_exposed: &["llm:itl_seconds", "llm:ttft_seconds", "llm:tpot_seconds"],
        not_in_scrape: &[],
        caveats: &[
            ("llm:kv_cache_usage_ratio", "budget"),
            ("llm:prompt_tokens_total", "input-length"),
            ("llm:generation_tokens_total", "generated-tokens"),
        ],
    },
    Case {
        file: "llamacpp-server-captured.prom",
        dialect: "llamacpp",
        version: "current",
        values: &[
            ("llm:prompt_tokens_total", 990.0, 1),
            ("llm:prefix_cache_queries_total", 990.0, 1),
            ("llm:prefix_cache_hits_total", 653.0, 1),
            ("llm:generation_tokens_total", 10300.0, 1),
        ],
        not_exposed: &["llm:ttft_seconds", "llm:kv_cache_usage_ratio"],
        not_in_scrape: &[],
        caveats: &[],
    },
    Case {
        file: "llamacpp-before-26920.prom",
        dialect: "llamacpp",
        version: "before #26920",
        values: &[("llm:prompt_tokens_total", 337.0, 1)],
        not_exposed: &[
            "llm:prefix_cache_hits_total",
            "llm:prefix_cache_queries_total",
        ],
        not_in_scrape: &[],
        caveats: &[("llm:prompt_tokens_total", "left out")],
    },
    Case {
        file: "dcgm-4.5.3-default.prom",
        dialect: "dcgm",
        version: "3.x+",
        values: &[
            ("gpu:util_ratio", 1.0, 2),
            ("gpu:fb_used_bytes", 79420.0 * MIB, 2),
            ("gpu:nvlink_traffic_total", 8734512.0, 2),
            ("gpu:remapped_rows_uncorrectable_total", 1.0, 2),
            ("gpu:sm_clock_hz", (1980.0 + 1275.0) * 1e6, 2),
        ],
        not_exposed: &[],
        not_in_scrape: &[
            "gpu:sm_active_ratio",
            "gpu:throttle_reasons",
            "gpu:nvlink_rx_bytes_per_second",
            "gpu:nvlink_tx_bytes_per_second",
            "gpu:ecc_uncorrected_errors_total",
        ],
        caveats: &[],
    },
    Case {
        file: "dcgm-main-dcp-k8s.prom",
        dialect: "dcgm",
        version: "3.x+",
        values: &[
            ("gpu:util_ratio", 1.0, 2),
            ("gpu:tensor_active_ratio", 0.412345, 2),
        ],
        not_exposed: &[],
        not_in_scrape: &["gpu:sm_active_ratio", "gpu:throttle_reasons"],
        caveats: &[],
    },
    Case {
        file: "dcgm-strata-counters.prom",
        dialect: "dcgm",
        version: "3.x+",
        values: &[
            ("gpu:sm_active_ratio", 0.912345, 2),
            ("gpu:throttle_reasons", 5.0, 2),
            ("gpu:nvlink_tx_bytes_per_second", 21474836480.0, 2),
            ("gpu:ecc_uncorrected_errors_total", 0.0, 2),
        ],
        not_exposed: &[],
        not_in_scrape: &[],
        caveats: &[],
    },
    Case {
        file: "dcgm-4.5.3-mig-old-namespace.prom",
        dialect: "dcgm",
        version: "3.x+",
        // GPU 1 whole (GPU_UTIL 0), GPU 0 as two slices from GR_ENGINE_ACTIVE (0.95, 0.25).
        values: &[
            ("gpu:util_ratio", 1.2, 3),
            ("gpu:fb_used_bytes", 51000.0 * MIB, 3),
            ("gpu:power_watts", 612.348 + 118.905, 2),
        ],
        not_exposed: &[],
        not_in_scrape: &["gpu:sm_active_ratio"],
        caveats: &[("gpu:util_ratio", "MIG")],
    },
];

fn load(file: &str) -> Vec<Point> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../expo/tests/samples")
        .join(file);
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let exp = expo::parse(&body, expo::Format::Prometheus);
    assert!(exp.errors.is_empty(), "{file}: {:?}", exp.errors.first());
    sources::scrape::to_points(&exp, &LabelSet::new(), 0)
}

fn view_of(file: &str) -> CanonicalView {
    let points = load(file);
    let d = detect(points.iter().map(|p| p.name.as_str()))
        .unwrap_or_else(|| panic!("{file}: no dialect"));
    canonical_view(d, &points)
}

fn total(view: &CanonicalView, signal: &str) -> (f64, usize, Vec<LabelSet>) {
    match view.status(signal) {
        Some(SignalStatus::Exposed { series, .. }) => (
            series
                .iter()
                .map(|s| match s.value {
                    SeriesValue::Scalar { value } => value,
                    SeriesValue::Histogram { count, .. } => count,
                })
                .sum(),
            series.len(),
            series.iter().map(|s| s.labels.clone()).collect(),
        ),
        other => panic!("{} {signal}: {other:?}", view.dialect),
    }
}

#[test]
fn every_fixture_is_detected_and_mapped_as_checked_by_hand() {
    for c in CASES {
        let v = view_of(c.file);
        assert_eq!(
            (v.dialect.as_str(), v.version.as_str()),
            (c.dialect, c.version),
            "{}",
            c.file
        );
        for &(signal, want, n) in c.values {
            let (got, series, labels) = total(&v, signal);
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{} {signal}: {got} != {want} ({labels:?})",
                c.file
            );
            assert_eq!(series, n, "{} {signal}: {labels:?}", c.file);
        }
        for s in c.not_exposed {
            assert!(
                matches!(v.status(s), Some(SignalStatus::NotExposed { why }) if !why.is_empty()),
                "{} {s}: {:?}",
                c.file,
                v.status(s)
            );
        }
        for s in c.not_in_scrape {
            assert!(
                matches!(v.status(s), Some(SignalStatus::NotInScrape { .. })),
                "{} {s}: {:?}",
                c.file,
                v.status(s)
            );
        }
        for (s, word) in c.caveats {
            assert!(
                v.caveat(s).is_some_and(|t| t.contains(word)),
                "{} {s}: caveat {:?}",
                c.file,
                v.caveat(s)
            );
        }
        // Rows without a note never produce a caveat.
        assert_eq!(
            v.caveats.len(),
            c.caveats.len(),
            "{}: {:?}",
            c.file,
            v.caveats
        );
    }
}

#[test]
fn a_stock_dcgm_exporter_names_its_four_missing_incident_signals_and_the_fix() {
    for file in ["dcgm-4.5.3-default.prom", "dcgm-main-dcp-k8s.prom"] {
        let v = view_of(file);
        assert_eq!(
            v.incident_gaps,
            [
                "gpu:sm_active_ratio",
                "gpu:throttle_reasons",
                "gpu:nvlink_rx_bytes_per_second",
                "gpu:nvlink_tx_bytes_per_second"
            ],
            "{file}"
        );
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("strata generate dcgm-counters")),
            "{file}: {:?}",
            v.notes
        );
    }
    let v = view_of("dcgm-strata-counters.prom");
    assert!(
        v.incident_gaps.is_empty() && v.notes.is_empty(),
        "{:?}",
        v.notes
    );
}

#[test]
fn dcgm_label_dialects_land_on_one_canonical_label_set() {
    let has =
        |labels: &LabelSet, k: &str, val: &str| labels.iter().any(|(a, b)| a == k && b == val);
    // `hostname` (main) and `Hostname` (4.5.x) both become Hostname.
    for file in ["dcgm-4.5.3-default.prom", "dcgm-main-dcp-k8s.prom"] {
        let (_, _, labels) = total(&view_of(file), "gpu:fb_used_bytes");
        assert!(
            labels.iter().all(
                |l| has(l, "Hostname", "gpu-node-3") && !l.iter().any(|(k, _)| k == "hostname")
            ),
            "{file}"
        );
        assert!(
            labels
                .iter()
                .all(|l| l.iter().any(|(k, _)| k == "gpu_uuid")),
            "{file}"
        );
    }
    let (_, _, labels) = total(&view_of("dcgm-main-dcp-k8s.prom"), "gpu:fb_used_bytes");
    assert!(
        labels
            .iter()
            .any(|l| has(l, "pod", "vllm-llama-8b-7d9f8c6b5-x2k4q")
                && has(l, "namespace", "inference")
                && l.iter().any(|(k, _)| k == "pod_uid"))
    );
    // --use-old-namespace: uuid -> gpu_uuid, pod_name/pod_namespace/container_name -> pod/namespace/container.
    let (_, _, labels) = total(
        &view_of("dcgm-4.5.3-mig-old-namespace.prom"),
        "gpu:fb_used_bytes",
    );
    assert!(
        labels.iter().any(|l| has(l, "pod", "vllm-a-0")
            && has(l, "namespace", "inference")
            && has(l, "container", "vllm")
            && has(l, "GPU_I_ID", "1")),
        "{labels:?}"
    );
    assert!(
        labels.iter().all(|l| l.iter().any(|(k, _)| k == "gpu_uuid")
            && !l.iter().any(|(k, _)| k.starts_with("pod_n") || k == "uuid")),
        "{labels:?}"
    );
}
