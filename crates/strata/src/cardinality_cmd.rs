//! `strata cardinality`: the seeds' design-time arithmetic (tenants × models × quantiles ×
//! buckets × instances per histogram), what to drop, and, against a running Strata, the
//! series it actually holds: metric names by series count and the labels with most values.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

/// `strata cardinality`
#[derive(Debug, Args)]
#[command(after_help = "\
Every label multiplies the series of a histogram: a series per combination of label values
and per bucket. Label metrics by tenant and model; never by user_id, session_id or
request_id (those belong to traces and logs).

Examples:
  strata cardinality                                        the seeds' example: 10 tenants, 5 models, ...
  strata cardinality --tenants 40 --instances 8 --buckets 20
  strata cardinality --url http://127.0.0.1:9464 --top 15   what a running Strata holds")]
pub struct CardinalityArgs {
    /// Tenants (values of the `tenant` label).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub tenants: u64,
    /// Models served.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub models: u64,
    /// Precomputed quantiles per histogram (summaries or recorded p50/p90/p99...).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub quantiles: u64,
    /// Buckets per histogram (`le` values).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub buckets: u64,
    /// Scraped instances (engine replicas, pods).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub instances: u64,
    /// Latency histograms (TTFT, ITL, end-to-end: 3).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub histograms: u64,
    /// A running Strata (`strata up --listen`): list its top series producers.
    #[arg(long, value_name = "URL")]
    pub url: Option<reqwest::Url>,
    /// How many metric names and labels to list with --url.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
}

/// `12345678` → `12,345,678`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The arithmetic and the advice.
fn estimate(a: &CardinalityArgs) -> String {
    let dims = [
        ("tenants", a.tenants),
        ("models", a.models),
        ("quantiles", a.quantiles),
        ("buckets", a.buckets),
        ("instances", a.instances),
    ];
    let one = dims.iter().fold(1u64, |acc, (_, n)| acc.saturating_mul(*n));
    let all = one.saturating_mul(a.histograms);
    let factors: Vec<String> = dims.iter().map(|(_, n)| n.to_string()).collect();
    let mut out = format!(
        "One histogram metric: tenants × models × quantiles × buckets × instances\n  = {} = {} series\n",
        factors.join(" × "),
        thousands(one)
    );
    let scale = match all {
        n if n >= 1_000_000 => format!("≈ {:.1} million", n as f64 / 1e6),
        n if (400_000..=600_000).contains(&n) => "≈ half a million".to_string(),
        n => format!("≈ {}", thousands(n)),
    };
    out += &format!(
        "× {} histograms = {} series ({scale}) before counters and gauges.\n\nWhat each dimension costs (series saved by aggregating it away before storage):\n",
        a.histograms,
        thousands(all)
    );
    let mut ranked: Vec<(&str, u64)> = dims.to_vec();
    ranked.sort_by_key(|d| std::cmp::Reverse(d.1));
    for (name, n) in &ranked {
        let left = all / (*n).max(1);
        let how = match *name {
            "instances" => "sum without (instance): per-replica detail stays in traces",
            "quantiles" => {
                "record no quantiles: histogram_quantile() computes any of them at query time from the buckets"
            }
            "buckets" => "fewer buckets, placed on the SLO thresholds only",
            "tenants" => {
                "keep tenant only on counters (tokens, requests) for cost, not on histograms"
            }
            _ => "keep model: latency differs by model more than by anything else",
        };
        out += &format!(
            "  {name:<10} ×{n:<6} drop it: {:>12} series left  ({how})\n",
            thousands(left)
        );
    }
    out += "\nStream aggregation: pre-roll histograms at ingest to (tenant, model, le) with vmagent\n\
            stream aggregation (`without: [instance]`, `outputs: [total]`) or a recording rule\n\
            (sum without (instance) (rate(..._bucket[1m]))), and keep the raw series short-lived.\n";
    out
}

/// The `data` of a query API answer; `query` is sent as the `query` parameter when given.
async fn get(
    client: &reqwest::Client,
    base: &reqwest::Url,
    path: &str,
    query: Option<&str>,
) -> Result<Value, String> {
    let mut url = base
        .join(path)
        .map_err(|e| format!("bad --url {base}: {e}"))?;
    if let Some(q) = query {
        url.query_pairs_mut().append_pair("query", q);
    }
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e} (is `strata up` running there?)"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{url}: not a Prometheus API answer: {e}"))?;
    if !status.is_success() || v["status"] != "success" {
        return Err(format!("{url}: HTTP {status}: {}", v["error"]));
    }
    Ok(v["data"].clone())
}

/// Metric names by series count and labels by value count, from the query API.
async fn top(a: &CardinalityArgs, base: &reqwest::Url) -> Result<String, String> {
    sources::scrape::install_crypto_provider();
    let client = reqwest::Client::new();
    let q = format!(
        "topk({}, count by (__name__) ({{__name__=~\".+\"}}))",
        a.top
    );
    let mut names: Vec<(String, u64)> = get(&client, base, "api/v1/query", Some(&q))
        .await?
        .get("result")
        .and_then(Value::as_array)
        .ok_or("the query API answered without a result list")?
        .iter()
        .filter_map(|r| {
            let n = r["metric"]["__name__"].as_str()?.to_string();
            let c = r["value"][1].as_str()?.parse::<f64>().ok()?;
            Some((n, c as u64))
        })
        .collect();
    names.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    let total: u64 = get(
        &client,
        base,
        "api/v1/query",
        Some("count({__name__=~\".+\"})"),
    )
    .await?["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |v| v as u64);
    let mut out = format!(
        "{base}: {} series\n\nMetric names by series count:\n",
        thousands(total)
    );
    for (n, c) in &names {
        out += &format!("  {:>10}  {n}\n", thousands(*c));
    }
    let labels = get(&client, base, "api/v1/labels", None).await?;
    let mut counts = Vec::new();
    for l in labels
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if l == "__name__" {
            continue;
        }
        let vals = get(&client, base, &format!("api/v1/label/{l}/values"), None).await?;
        counts.push((l.to_string(), vals.as_array().map_or(0, Vec::len)));
    }
    counts.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out += "\nLabels with the most values:\n";
    for (l, c) in counts.iter().take(a.top) {
        out += &format!("  {:>10}  {l}\n", thousands(*c as u64));
    }
    Ok(out)
}

/// Prints the estimate, then (with --url) the top producers of a running Strata.
pub fn run(args: CardinalityArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    print!("{}", estimate(&args));
    if let Some(base) = &args.url {
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        println!();
        print!("{}", runtime.block_on(top(&args, base))?);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CardinalityArgs,
    }

    #[test]
    fn the_seeds_arithmetic_and_advice() {
        let t = T::parse_from(["t"]);
        let s = estimate(&t.a);
        assert!(s.contains("= 10 × 5 × 6 × 10 × 50 = 150,000 series"), "{s}");
        assert!(
            s.contains("× 3 histograms = 450,000 series (≈ half a million)"),
            "{s}"
        );
        // Instances (×50) are the first thing to drop: 450,000 / 50.
        let first = s
            .lines()
            .find(|l| l.contains("drop it"))
            .unwrap_or_default();
        assert!(
            first.contains("instances") && first.contains("9,000 series left"),
            "{s}"
        );
        assert!(s.contains("stream aggregation"), "{s}");
        let t = T::parse_from(["t", "--tenants", "1000", "--histograms", "1"]);
        assert!(estimate(&t.a).contains("= 15,000,000 series (≈ 15.0 million)"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(150_000), "150,000");
    }
}
