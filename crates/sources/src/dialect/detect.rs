//! Which dialect (and version) a set of metric names comes from.

use super::table::{DialectTable, tables};

/// A detected dialect and version.
#[derive(Debug, Clone, Copy)]
pub struct Detected {
    /// The dialect's table.
    pub table: &'static DialectTable,
    /// The matched version name (the newest known one when no version marker is present).
    pub version: &'static str,
}

/// Detects the dialect of a body from its metric names: the table whose prefix the most
/// names carry wins; `None` when no known prefix appears at all.
pub fn detect<'n>(names: impl IntoIterator<Item = &'n str> + Clone) -> Option<Detected> {
    let mut best: Option<(&'static DialectTable, usize)> = None;
    for t in tables() {
        let n = names
            .clone()
            .into_iter()
            .filter(|name| name.starts_with(t.prefix.as_str()))
            .count();
        if n > 0 && best.is_none_or(|(_, b)| n > b) {
            best = Some((t, n));
        }
    }
    let (table, _) = best?;
    Some(Detected {
        table,
        version: version_of(table, names),
    })
}

/// The version of `table` that `names` show, or the table's newest version.
pub fn version_of<'n>(
    table: &'static DialectTable,
    names: impl IntoIterator<Item = &'n str> + Clone,
) -> &'static str {
    table
        .versions
        .iter()
        .find(|v| {
            names
                .clone()
                .into_iter()
                .any(|n| v.detect.iter().any(|d| family_of(n) == d))
        })
        .or(table.versions.first())
        .map_or("unknown", |v| v.name.as_str())
}

/// A sample name without its histogram suffix (`x_bucket` -> `x`).
fn family_of(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of(body: &str) -> Vec<&str> {
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(['{', ' ']).next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn detects_each_dialect_and_vllm_version() {
        let cases = [
            (
                "vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.5",
                "vllm",
                "0.10-0.11",
            ),
            (
                "vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.5",
                "vllm",
                "V0",
            ),
            (
                "vllm:gpu_cache_usage_perc 0.5\nvllm:gpu_prefix_cache_queries_total 8",
                "vllm",
                "0.8-0.9 V1",
            ),
            (
                "vllm:kv_cache_usage_perc 0.5\nvllm:admission_rejections_total{reason=\"x\"} 0",
                "vllm",
                "0.33+",
            ),
            ("tgi_queue_size 3\ntgi_batch_current_size 2", "tgi", "v2+"),
            (
                "sglang:num_queue_reqs 1\nsglang:time_per_output_token_seconds_count 3",
                "sglang",
                "0.4.0-0.4.9",
            ),
            (
                "sglang:num_queue_reqs 1\nsglang:num_retracted_reqs 0",
                "sglang",
                "0.5.3-0.5.9",
            ),
            (
                "llamacpp:requests_deferred 0\nllamacpp:prompt_tokens_total 3",
                "llamacpp",
                "before #26920",
            ),
            (
                "llamacpp:prompt_tokens_total 3\nllamacpp:prompt_tokens_cached_total 1",
                "llamacpp",
                "current",
            ),
            ("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 99", "dcgm", "3.x+"),
        ];
        for (body, dialect, version) in cases {
            let d = detect(names_of(body)).expect(body);
            assert_eq!(
                (d.table.name.as_str(), d.version),
                (dialect, version),
                "{body}"
            );
        }
    }

    #[test]
    fn unknown_names_detect_nothing_and_majority_wins() {
        assert!(detect(["node_cpu_seconds_total", "up"]).is_none());
        let d = detect(["tgi_queue_size", "vllm:a", "vllm:b"]).expect("detected");
        assert_eq!(d.table.name, "vllm");
    }
}
