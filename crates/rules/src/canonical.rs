//! Canonical recording rules, generated from the dialect tables (`sources::dialect`): one
//! rule per canonical signal (per `_bucket`/`_sum`/`_count` for histograms) that reads every
//! dialect's native names, `or`-ed in the tables' preference order, with labels renamed by
//! `label_replace` and the native label dropped, and an `engine` label naming the dialect.
//! Dashboards, alerts and SLOs then read only `llm:*` and `gpu:*`.
//!
//! NVML emits the `gpu:*` names itself (`sources::gpu::nvml`), so it needs no rule here.

use sources::dialect::{
    CanonicalSignal, DialectTable, Layer, MapRow, SignalType, canonical, tables,
};

use crate::yaml::{Group, Rule, render};

/// Evaluation interval of the engine group (engines are scraped every 10 s).
const ENGINE_INTERVAL: &str = "10s";
/// Evaluation interval of the GPU group (GPUs are scraped every 5 s).
const GPU_INTERVAL: &str = "5s";

/// One table row turned into canonical form: the row's arithmetic over its filtered native
/// selectors, rank labels collapsed as the table says, labels renamed by `label_replace` and
/// the native label dropped, and the dialect label added.
fn native_expr(t: &DialectTable, row: &MapRow, suffix: &str, s: &CanonicalSignal) -> String {
    let selector = |name: &str| format!("{name}{suffix}{}", row.matchers());
    let mut e = selector(&row.native);
    for p in &row.plus {
        e = format!("{e} + {}", selector(p));
    }
    if let Some(per) = &row.per {
        e = format!("{e} / {}", selector(per));
    }
    if row.scale != 1.0 {
        e = if row.plus.is_empty() && row.per.is_none() {
            format!("{e} * {}", row.scale)
        } else {
            format!("({e}) * {}", row.scale)
        };
    }
    if !t.aggregate.replicated.is_empty() {
        e = format!("max without ({}) ({e})", t.aggregate.replicated.join(", "));
    }
    if !t.aggregate.split.is_empty() {
        let agg = if s.signal_type == SignalType::Gauge && s.unit == "ratio" {
            "max"
        } else {
            "sum"
        };
        e = format!("{agg} without ({}) ({e})", t.aggregate.split.join(", "));
    }
    let renamed: Vec<&str> = t.labels.keys().map(String::as_str).collect();
    for (from, to) in &t.labels {
        e = format!("label_replace({e}, \"{to}\", \"$1\", \"{from}\", \"(.+)\")");
    }
    if !renamed.is_empty() {
        let agg = if s.signal_type == SignalType::Gauge {
            "max"
        } else {
            "sum"
        };
        e = format!("{agg} without ({}) ({e})", renamed.join(", "));
    }
    format!(
        "label_replace({e}, \"{}\", \"{}\", \"\", \"\")",
        label_of(t.layer),
        t.name
    )
}

/// The label naming the source dialect: `engine` for engines, `exporter` for GPU exporters.
fn label_of(layer: Layer) -> &'static str {
    match layer {
        Layer::Engine => "engine",
        Layer::Gpu => "exporter",
        Layer::Host => "source",
    }
}

/// The rules for one canonical signal across `dialects`, with comments for the dialects
/// that cannot give it and for rows whose value carries a caveat.
///
/// Alternatives are `or`-ed, which keeps the first one present per label set. Within one
/// dialect, a later histogram alternative also drops the series an earlier one has
/// (`unless ignoring(le)`), so two histograms with different buckets never mix.
fn signal_rules(s: &CanonicalSignal, dialects: &[&DialectTable]) -> Vec<Rule> {
    let suffixes: &[&str] = match s.signal_type {
        SignalType::Histogram => &["_bucket", "_sum", "_count"],
        _ => &[""],
    };
    let mut comment = vec![format!("{}: {}", s.name, s.help)];
    for t in dialects {
        if t.maps.iter().all(|m| m.canonical != s.name)
            && let Some(a) = t.absent.iter().find(|a| a.canonical == s.name)
        {
            comment.push(format!("{}: not exposed: {}", t.name, a.why));
        }
        for m in t.maps.iter().filter(|m| m.canonical == s.name) {
            if let Some(note) = &m.note {
                comment.push(format!("{}: {}: {note}", t.name, m.describe()));
            }
        }
    }
    suffixes
        .iter()
        .enumerate()
        .filter_map(|(i, suffix)| {
            let alternatives: Vec<String> = dialects
                .iter()
                .flat_map(|t| {
                    let rows: Vec<String> = t
                        .maps
                        .iter()
                        .filter(|m| m.canonical == s.name)
                        .map(|m| native_expr(t, m, suffix, s))
                        .collect();
                    rows.iter()
                        .enumerate()
                        .map(|(j, e)| {
                            if j == 0 || s.signal_type != SignalType::Histogram {
                                e.clone()
                            } else {
                                format!("({e} unless ignoring(le) ({}))", rows[..j].join(" or "))
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            (!alternatives.is_empty()).then(|| Rule {
                comment: if i == 0 { comment.clone() } else { Vec::new() },
                record: Some(format!("{}{suffix}", s.name)),
                expr: alternatives.join("\nor\n"),
                ..Rule::default()
            })
        })
        .collect()
}

/// The canonical recording-rule groups: `canonical-engine` and `canonical-gpu`.
pub fn groups() -> Vec<Group> {
    [
        (Layer::Engine, "canonical-engine", ENGINE_INTERVAL),
        (Layer::Gpu, "canonical-gpu", GPU_INTERVAL),
    ]
    .into_iter()
    .map(|(layer, name, interval)| {
        let dialects: Vec<&DialectTable> = tables().iter().filter(|t| t.layer == layer).collect();
        let names: Vec<&str> = dialects.iter().map(|t| t.title.as_str()).collect();
        Group {
            name: name.to_string(),
            interval: Some(interval.to_string()),
            comment: vec![format!("From the {} tables.", names.join(", "))],
            rules: canonical()
                .layer(layer)
                .flat_map(|s| signal_rules(s, &dialects))
                .collect(),
        }
    })
    .collect()
}

/// The generated rule file (`packs/canonical.yml`).
pub fn file() -> String {
    render(
        &[
            "GENERATED from crates/sources/dialects/*.toml by rules::canonical: do not edit."
                .into(),
            "Regenerate: STRATA_REGENERATE=1 cargo test -p rules --test packs".into(),
            "Each rule reads every dialect's native name for one canonical signal; `or` keeps the"
                .into(),
            "first alternative present per series. NVML writes gpu:* itself and needs no rule."
                .into(),
        ],
        &groups(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule<'a>(groups: &'a [Group], name: &str) -> &'a Rule {
        groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| r.record.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no rule {name}"))
    }

    #[test]
    fn alternatives_are_ored_in_table_order_and_labels_renamed() {
        let g = groups();
        let waiting = &rule(&g, "llm:requests_waiting").expr;
        let order: Vec<usize> = [
            "vllm:num_requests_waiting",
            "tgi_queue_size",
            "sglang:",
            "llamacpp:",
        ]
        .iter()
        .map(|n| {
            waiting
                .find(n)
                .unwrap_or_else(|| panic!("{n} in {waiting}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{waiting}");
        assert_eq!(waiting.matches("\nor\n").count(), 3);
        let kv = &rule(&g, "llm:kv_cache_usage_ratio").expr;
        assert!(kv.find("vllm:kv_cache_usage_perc") < kv.find("vllm:gpu_cache_usage_perc"));
        assert!(
            kv.contains(
                r#"label_replace(vllm:kv_cache_usage_perc, "model", "$1", "model_name", "(.+)")"#
            ) || kv.contains("\"model\", \"$1\", \"model_name\""),
            "{kv}"
        );
        assert!(kv.contains("max without ("), "{kv}");
        let fb = &rule(&g, "gpu:fb_used_bytes").expr;
        assert!(fb.contains("DCGM_FI_DEV_FB_USED * 1048576"), "{fb}");
        assert!(fb.contains(r#""gpu_uuid", "$1", "UUID""#), "{fb}");
        assert!(fb.contains(r#""exporter", "dcgm", "", """#), "{fb}");
    }

    #[test]
    fn histograms_get_bucket_sum_and_count_and_absent_signals_a_comment() {
        let g = groups();
        for suffix in ["_bucket", "_sum", "_count"] {
            let r = rule(&g, &format!("llm:ttft_seconds{suffix}"));
            assert!(
                r.expr
                    .contains(&format!("vllm:time_to_first_token_seconds{suffix}"))
            );
            assert!(!r.expr.contains("tgi_"), "TGI has no TTFT histogram");
        }
        let c = rule(&g, "llm:ttft_seconds_bucket").comment.join("\n");
        assert!(
            c.contains("tgi: not exposed: TGI has no TTFT histogram"),
            "{c}"
        );
    }

    #[test]
    fn every_mapped_canonical_signal_has_a_rule_and_the_file_loads() {
        let g = groups();
        for t in tables() {
            for m in &t.maps {
                let s = canonical().signal(&m.canonical).map(|s| s.signal_type);
                let name = match s {
                    Some(SignalType::Histogram) => format!("{}_count", m.canonical),
                    _ => m.canonical.clone(),
                };
                assert!(rule(&g, &name).expr.contains(&m.native), "{}", m.native);
            }
        }
        let loaded = crate::load("canonical.yml", &file()).expect("generated file is valid");
        assert_eq!(loaded.len(), 2);
    }
}
