//! Reads one [`Snapshot`] from a running Strata: canonical `llm:*` / `gpu:*` queries on its
//! Prometheus API, `/api/v1/findings` and `/api/v1/alerts`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::model::{Alert, Engine, Finding, Gpu, Snapshot};

/// The labels a GPU row is grouped by.
const GPU_BY: &str = "instance, gpu, gpu_uuid, Hostname, modelName";

type Labels = BTreeMap<String, String>;

/// Where a query's value goes in a row.
type Field<T> = fn(&mut T) -> &mut Option<f64>;

/// One sample of an instant vector.
#[derive(Deserialize)]
struct Sample {
    metric: Labels,
    value: (f64, String),
}

#[derive(Deserialize)]
struct Vector {
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Open {
    open: Vec<FindingJson>,
}

#[derive(Deserialize)]
struct FindingJson {
    name: String,
    severity: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    affected: Labels,
    started_ms: i64,
}

#[derive(Deserialize)]
struct Alerts {
    alerts: Vec<AlertJson>,
}

#[derive(Deserialize)]
struct AlertJson {
    labels: Labels,
    #[serde(default)]
    annotations: Labels,
    state: String,
    #[serde(rename = "activeAt")]
    active_at: Option<String>,
}

/// A running Strata's HTTP API.
pub struct Source {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: reqwest::Url,
}

impl Source {
    /// A reader of the Strata at `base`, each request bounded by `timeout`.
    pub fn new(base: reqwest::Url, timeout: Duration) -> Result<Source, String> {
        sources::scrape::install_crypto_provider();
        Ok(Source {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?,
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            base,
        })
    }

    /// Reads everything `strata top` shows, or says why it could not.
    pub fn fetch(&self) -> Result<Snapshot, String> {
        self.runtime.block_on(self.snapshot())
    }

    /// The `data` of the API answer at `path` (with `query` parameters).
    async fn data(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| format!("bad --url {}: {e}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let resp = self.client.get(url).send().await.map_err(|e| {
            // The cause (connection refused, timed out...) without the long query URL.
            let mut causes = Vec::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                causes.push(s.to_string());
                source = s.source();
            }
            causes.insert(0, e.without_url().to_string());
            let cause = causes.join(": ");
            format!(
                "cannot reach Strata at {}: {cause}\n  fix: start `strata up` or `strata demo` (they serve the API on 127.0.0.1:9464 by default), or point --url at a running one",
                self.base
            )
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("{}{path}: reading the answer: {e}", self.base))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{}{path}: HTTP {status}, not a Strata API answer ({e})\n  fix: point --url at `strata up` or `strata demo`",
                self.base
            )
        })?;
        if !status.is_success() || v["status"] != "success" {
            return Err(format!(
                "{}{path}: HTTP {status}: {}",
                self.base,
                v["error"].as_str().unwrap_or("no error message")
            ));
        }
        Ok(v["data"].clone())
    }

    /// An instant query's samples, NaN and infinite values dropped.
    async fn vector(&self, expr: &str) -> Result<Vec<(Labels, f64)>, String> {
        let data = self.data("api/v1/query", &[("query", expr)]).await?;
        let v: Vector = serde_json::from_value(data)
            .map_err(|e| format!("`{expr}`: not an instant vector ({e})"))?;
        Ok(v.result
            .into_iter()
            .filter_map(|s| {
                let x: f64 = s.value.1.parse().ok()?;
                x.is_finite().then_some((s.metric, x))
            })
            .collect())
    }

    async fn snapshot(&self) -> Result<Snapshot, String> {
        let p95 = |m: &str| {
            format!("histogram_quantile(0.95, sum by (le, instance) (rate({m}_bucket[1m])))")
        };
        let gpu = |m: &str| format!("max by ({GPU_BY}) ({m})");
        let (ttft, itl) = (p95("llm:ttft_seconds"), p95("llm:itl_seconds"));
        let gpu_q = [
            "gpu:tensor_active_ratio",
            "gpu:sm_clock_hz",
            "gpu:power_watts",
            "gpu:temp_celsius",
            "gpu:fb_used_bytes",
            // The frame buffer's size: used + free as last seen within the hour (the
            // incident profile reads no free bytes, and the size does not change).
            "last_over_time(gpu:fb_used_bytes[1h]) + last_over_time(gpu:fb_free_bytes[1h])",
        ]
        .map(gpu);
        let (
            running,
            waiting,
            kv,
            preempt,
            ttft,
            itl,
            tokens,
            g0,
            g1,
            g2,
            g3,
            g4,
            g5,
            findings,
            alerts,
        ) = tokio::try_join!(
            self.vector("sum by (instance, engine, model) (llm:requests_running)"),
            self.vector("sum by (instance) (llm:requests_waiting)"),
            self.vector("max by (instance) (llm:kv_cache_usage_ratio)"),
            self.vector("sum by (instance) (rate(llm:preemptions_total[1m]))"),
            self.vector(&ttft),
            self.vector(&itl),
            self.vector("sum by (instance) (rate(llm:generation_tokens_total[1m]))"),
            self.vector(&gpu_q[0]),
            self.vector(&gpu_q[1]),
            self.vector(&gpu_q[2]),
            self.vector(&gpu_q[3]),
            self.vector(&gpu_q[4]),
            self.vector(&gpu_q[5]),
            self.data("api/v1/findings", &[]),
            self.data("api/v1/alerts", &[]),
        )?;

        let mut engines: BTreeMap<String, Engine> = BTreeMap::new();
        let fields: [(_, Field<Engine>); 7] = [
            (running, |e| &mut e.running),
            (waiting, |e| &mut e.waiting),
            (kv, |e| &mut e.kv_ratio),
            (preempt, |e| &mut e.preemptions_per_s),
            (ttft, |e| &mut e.ttft_p95_s),
            (itl, |e| &mut e.itl_p95_s),
            (tokens, |e| &mut e.tokens_per_s),
        ];
        for (samples, field) in fields {
            for (labels, v) in samples {
                let Some(instance) = labels.get("instance") else {
                    continue;
                };
                let e = engines.entry(instance.clone()).or_insert_with(|| Engine {
                    instance: instance.clone(),
                    ..Engine::default()
                });
                if let Some(engine) = labels.get("engine") {
                    e.engine.clone_from(engine);
                }
                if let Some(model) = labels.get("model") {
                    e.model.clone_from(model);
                }
                *field(e) = Some(v);
            }
        }

        let mut gpus: BTreeMap<Labels, Gpu> = BTreeMap::new();
        let gpu_fields: [(_, Field<Gpu>); 5] = [
            (g0, |g| &mut g.tensor_ratio),
            (g1, |g| &mut g.sm_clock_hz),
            (g2, |g| &mut g.power_w),
            (g3, |g| &mut g.temp_c),
            (g4, |g| &mut g.fb_used_ratio),
        ];
        for (samples, field) in gpu_fields {
            for (labels, v) in samples {
                let g = gpus.entry(labels.clone()).or_insert_with(|| {
                    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
                    Gpu {
                        gpu: get("gpu"),
                        node: labels
                            .get("Hostname")
                            .cloned()
                            .unwrap_or_else(|| get("instance")),
                        model: get("modelName"),
                        ..Gpu::default()
                    }
                });
                *field(g) = Some(v);
            }
        }
        let fb_size: BTreeMap<Labels, f64> = g5.into_iter().collect();
        for (labels, g) in &mut gpus {
            // Holds used bytes so far: make it the share of the frame buffer.
            g.fb_used_ratio = match (g.fb_used_ratio, fb_size.get(labels)) {
                (Some(used), Some(size)) if *size > 0.0 => Some(used / size),
                _ => None,
            };
        }

        let open: Open = serde_json::from_value(findings)
            .map_err(|e| format!("{}api/v1/findings: unexpected shape ({e})", self.base))?;
        let alerts: Alerts = serde_json::from_value(alerts)
            .map_err(|e| format!("{}api/v1/alerts: unexpected shape ({e})", self.base))?;
        Ok(Snapshot {
            engines: engines.into_values().collect(),
            gpus: gpus.into_values().collect(),
            findings: open
                .open
                .into_iter()
                .map(|f| Finding {
                    name: f.name,
                    severity: f.severity,
                    affected: f
                        .affected
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    started_ms: f.started_ms,
                    action: f.action,
                })
                .collect(),
            alerts: alerts
                .alerts
                .into_iter()
                .filter(|a| a.state == "firing")
                .map(|a| {
                    let label = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
                    Alert {
                        name: label("alertname"),
                        severity: label("severity"),
                        instance: label("instance"),
                        summary: a.annotations.get("summary").cloned().unwrap_or_default(),
                        active_ms: a
                            .active_at
                            .as_deref()
                            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_millis() as i64),
                    }
                })
                .collect(),
        })
    }
}
