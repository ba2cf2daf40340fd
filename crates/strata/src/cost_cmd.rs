//! `strata cost`: what a running Strata's window cost — per tenant, per model, per GPU, the
//! effective cost per token, useful vs billed tokens and the idle share — read from the
//! cost series of its Prometheus API (`[cost]` must be configured there).

use std::fmt::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rules::Query;
use rules::alert::Labels;
use rules::cost::{Report, report};
use serde_json::Value;

/// `strata cost`
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  strata cost                                   the last 24 h of the Strata on 127.0.0.1:9464
  strata cost --since 1h --url http://host:9464
  strata cost --json                            the same report for machines

Exit status: 0 with a report, 1 when Strata cannot be reached or holds no cost series
(add a [cost] section to its strata.toml), 2 for usage errors.")]
pub struct CostArgs {
    /// How far back the report reaches.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::cli::parse_duration)]
    pub since: Duration,
    /// A running Strata (`strata up`): its Prometheus API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9464")]
    pub url: reqwest::Url,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Timeout of each query.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// The query API of a running Strata, as a [`Query`].
struct Api {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Api {
    async fn query(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let mut url = self
            .url
            .join("api/v1/query")
            .map_err(|e| format!("bad --url {}: {e}", self.url))?;
        url.query_pairs_mut()
            .append_pair("query", expr)
            .append_pair("time", &format!("{:.3}", t_ms as f64 / 1000.0));
        let resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot reach Strata at {}: {e}\n  fix: start `strata up` (it serves the API on 127.0.0.1:9464 by default), or point --url at it",
                    self.url
                )
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("{url}: reading the answer: {e}"))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            format!("{url}: not a Prometheus API answer ({e}); is --url a Strata or Prometheus?")
        })?;
        if !status.is_success() || v["status"] != "success" {
            return Err(format!("HTTP {status}: {}", v["error"]));
        }
        rows(&v["data"])
    }
}

/// The series of an instant query's `data` (a scalar is one series without labels).
fn rows(data: &Value) -> Result<Vec<(Labels, f64)>, String> {
    let value = |v: &Value| -> Result<f64, String> {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("a sample without a number: {v}"))
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((labels, value(&s["value"])?))
            })
            .collect(),
        Some("scalar") => Ok(vec![(Vec::new(), value(&data["result"])?)]),
        other => Err(format!("unexpected result type {other:?}")),
    }
}

impl Query for Api {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        self.runtime.block_on(self.query(expr, t_ms))
    }
}

/// `1234567.8` → `1,234,568`.
fn count(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1} %", 100.0 * part / whole)
    } else {
        "-".into()
    }
}

/// A table: header and rows, columns padded to their widest cell.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
}

/// The report in plain words and tables.
fn render(r: &Report, url: &reqwest::Url, since: Duration) -> String {
    let cur = &r.currency;
    let money = |v: f64| format!("{v:.4}");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Cost over the last {} ({cur}), from {url}\n",
        humantime::format_duration(since)
    );
    if r.gpus.is_empty() {
        let _ = writeln!(
            out,
            "GPUs: none priced (no GPU series, or no [[cost.gpu]] entry or gpu_default_per_hour matches their modelName)."
        );
    } else {
        let _ = writeln!(
            out,
            "GPUs: {:.2} GPU hours cost {} {cur}, of which idle {} {cur} ({})",
            r.gpu_hours,
            money(r.gpu_cost),
            money(r.gpu_idle_cost),
            pct(r.gpu_idle_cost, r.gpu_cost)
        );
    }
    if r.not_via_gateway_tokens > 0.0 {
        let _ = writeln!(
            out,
            "Not via gateway: {} tokens the engines produced for clients that bypass the gateway, {} {cur} of GPU cost (no tenant to charge)",
            count(r.not_via_gateway_tokens),
            money(r.not_via_gateway_gpu_cost)
        );
    }
    match r.effective_cost_per_token {
        Some(e) => {
            let _ = writeln!(
                out,
                "Effective cost per token (the full GPU cost, idle included, over {} tokens produced): {} {cur} per 1M tokens",
                count(r.tokens_produced),
                money(e * 1e6)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Effective cost per token: unknown ({} GPU cost, {} tokens produced).",
                money(r.gpu_cost),
                count(r.tokens_produced)
            );
        }
    }
    let _ = writeln!(
        out,
        "Billed: {} {cur} for {} tokens; useful tokens {} ({} of billed)\n",
        money(r.billed_cost),
        count(r.billed_tokens),
        count(r.useful_tokens),
        pct(r.useful_tokens, r.billed_tokens)
    );
    for (title, list, gpu_share) in [("TENANT", &r.tenants, true), ("MODEL", &r.models, false)] {
        if list.is_empty() {
            let _ = writeln!(out, "{title}: no gateway traffic in the window.\n");
            continue;
        }
        let mut rows = vec![vec![
            title.to_string(),
            format!("BILLED {cur}"),
            "PROMPT TOK".into(),
            "GEN TOK".into(),
            "USEFUL".into(),
        ]];
        if gpu_share {
            rows[0].push(format!("GPU SHARE {cur}"));
            rows[0].push(format!("OF WHICH IDLE {cur}"));
        }
        for u in list {
            let mut row = vec![
                u.name.clone(),
                money(u.billed_cost),
                count(u.prompt_tokens),
                count(u.generation_tokens),
                pct(u.useful_tokens, u.prompt_tokens + u.generation_tokens),
            ];
            if gpu_share {
                row.push(money(u.gpu_cost));
                row.push(money(u.gpu_idle_cost));
            }
            rows.push(row);
        }
        table(&mut out, &rows);
        out.push('\n');
    }
    if !r.gpus.is_empty() {
        let mut rows = vec![vec![
            "NODE".to_string(),
            "GPU".into(),
            "MODEL".into(),
            "HOURS".into(),
            format!("COST {cur}"),
            "IDLE".into(),
        ]];
        for g in &r.gpus {
            rows.push(vec![
                g.node.clone(),
                g.gpu.clone(),
                g.model_name.clone(),
                format!("{:.2}", g.hours),
                money(g.cost),
                pct(g.idle_cost, g.cost),
            ]);
        }
        table(&mut out, &rows);
    }
    out
}

/// Prints the report, or says why there is none.
pub fn run(args: CostArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?,
        client: reqwest::Client::builder()
            .timeout(args.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
        url: args.url.clone(),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    match report(&api, now_ms, args.since.as_secs().max(1)) {
        Ok(r) if args.json => {
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            print!("{}", render(&r, &args.url, args.since));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::cost::{GpuUsage, Usage};

    #[test]
    fn counts_and_shares_read_well() {
        assert_eq!(count(3_600_000.0), "3,600,000");
        assert_eq!(count(999.6), "1,000");
        assert_eq!(pct(1.0, 3.0), "33.3 %");
        assert_eq!(pct(1.0, 0.0), "-");
    }

    #[test]
    fn query_answers_become_rows() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"vector","result":[{"metric":{"tenant":"a"},"value":[1,"1.5"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            rows(&v).unwrap(),
            vec![(vec![("tenant".to_string(), "a".to_string())], 1.5)]
        );
        let s: Value = serde_json::from_str(r#"{"resultType":"scalar","result":[1,"2"]}"#).unwrap();
        assert_eq!(rows(&s).unwrap(), vec![(Vec::new(), 2.0)]);
        let bad: Value = serde_json::from_str(r#"{"resultType":"matrix","result":[]}"#).unwrap();
        assert!(rows(&bad).is_err());
    }

    #[test]
    fn the_report_names_tenants_models_gpus_and_the_effective_cost() {
        let r = Report {
            window_s: 3600.0,
            currency: "USD".into(),
            tenants: vec![Usage {
                name: "a".into(),
                billed_cost: 4.65,
                prompt_tokens: 1.2e6,
                generation_tokens: 2.7e6,
                useful_tokens: 3.9e6,
                gpu_cost: 1.5,
                gpu_idle_cost: 0.5,
            }],
            models: vec![Usage {
                name: "m1".into(),
                billed_cost: 4.65,
                ..Usage::default()
            }],
            gpus: vec![GpuUsage {
                node: "node-a".into(),
                gpu: "0".into(),
                model_name: "NVIDIA H100 80GB HBM3".into(),
                hours: 1.0,
                cost: 2.0,
                idle_cost: 2.0 / 3.0,
                ..GpuUsage::default()
            }],
            gpu_hours: 1.0,
            gpu_cost: 2.0,
            gpu_idle_cost: 2.0 / 3.0,
            idle_share: Some(1.0 / 3.0),
            tokens_produced: 3.6e6,
            effective_cost_per_token: Some(2.0 / 3.6e6),
            billed_cost: 4.65,
            billed_tokens: 3.9e6,
            useful_tokens: 3.9e6,
            not_via_gateway_tokens: 0.4e6,
            not_via_gateway_gpu_cost: 0.2,
        };
        let text = render(
            &r,
            &"http://127.0.0.1:9464".parse().unwrap(),
            Duration::from_secs(3600),
        );
        assert!(
            text.contains("1.00 GPU hours cost 2.0000 USD, of which idle 0.6667 USD (33.3 %)"),
            "{text}"
        );
        assert!(
            text.contains("over 3,600,000 tokens produced): 0.5556 USD per 1M tokens"),
            "{text}"
        );
        let words = |first: &str| -> Vec<String> {
            text.lines()
                .find(|l| l.starts_with(first))
                .unwrap_or_else(|| panic!("no line {first:?} in {text}"))
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            words("a "),
            [
                "a",
                "4.6500",
                "1,200,000",
                "2,700,000",
                "100.0",
                "%",
                "1.5000",
                "0.5000"
            ],
            "{text}"
        );
        assert_eq!(
            words("node-a"),
            [
                "node-a", "0", "NVIDIA", "H100", "80GB", "HBM3", "1.00", "2.0000", "33.3", "%"
            ],
            "{text}"
        );
    }
}
