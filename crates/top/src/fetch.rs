//! Reads one [`Snapshot`] from a running Strata: canonical `llm:*` / `gpu:*` queries and
//! `strata_engine_info` (engine names) on its Prometheus API, `/api/v1/findings` and
//! `/api/v1/alerts`. Older nodes lack engine names and the newer findings fields; both
//! shapes read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::model::{
    Alert, Engine, EngineInfo, EngineRef, Evidence, EvidenceSeries, Finding, Gpu, Labels, Snapshot,
    Symptom,
};

/// The labels a GPU row is grouped by.
const GPU_BY: &str = "instance, gpu, gpu_uuid, Hostname, modelName";

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
    summary: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    affected: Labels,
    started_ms: i64,
    #[serde(default)]
    engines: Vec<EngineJson>,
    #[serde(default)]
    symptoms: Vec<SymptomJson>,
    #[serde(default)]
    evidence: Vec<EvidenceJson>,
}

/// `engines[]` of a newer node's finding.
#[derive(Deserialize)]
struct EngineJson {
    #[serde(default)]
    instance: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    node: Option<String>,
}

/// `symptoms[]` of a newer node's finding.
#[derive(Deserialize)]
struct SymptomJson {
    #[serde(default)]
    alert: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    summary: String,
}

/// `evidence[]`: the expression and its series; `title`, `unit` and `threshold` on newer
/// nodes. A point whose value the node wrote as `null` (NaN) is left out.
#[derive(Deserialize)]
struct EvidenceJson {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    series: Vec<SeriesJson>,
}

#[derive(Deserialize)]
struct SeriesJson {
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    points: Vec<(i64, Option<f64>)>,
}

impl From<FindingJson> for Finding {
    fn from(f: FindingJson) -> Finding {
        Finding {
            name: f.name,
            severity: f.severity,
            summary: f.summary,
            affected: f.affected,
            started_ms: f.started_ms,
            action: f.action,
            engines: f
                .engines
                .into_iter()
                .map(|e| EngineRef {
                    instance: e.instance,
                    name: e.name.unwrap_or_default(),
                    model: e.model.unwrap_or_default(),
                    node: e.node.unwrap_or_default(),
                })
                .collect(),
            symptoms: f
                .symptoms
                .into_iter()
                .map(|s| Symptom {
                    alert: s.alert,
                    severity: s.severity,
                    summary: s.summary,
                })
                .collect(),
            evidence: f
                .evidence
                .into_iter()
                .map(|e| Evidence {
                    title: e.title.filter(|t| !t.is_empty()).unwrap_or(e.expr),
                    unit: e.unit.unwrap_or_default(),
                    threshold: e.threshold.filter(|t| t.is_finite()),
                    series: e
                        .series
                        .into_iter()
                        .map(|s| EvidenceSeries {
                            labels: s.labels,
                            points: s
                                .points
                                .into_iter()
                                .filter_map(|(t, v)| v.filter(|v| v.is_finite()).map(|v| (t, v)))
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
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

/// `strata_engine_info` samples by instance (a sample without one is left out).
fn engine_names(info: Vec<(Labels, f64)>) -> BTreeMap<String, EngineInfo> {
    info.into_iter()
        .filter_map(|(l, _)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            let instance = l.get("instance")?.clone();
            Some((
                instance,
                EngineInfo {
                    name: get("name"),
                    engine: get("engine"),
                    model: get("model"),
                    node: get("node"),
                },
            ))
        })
        .collect()
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
            info,
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
            // Empty on nodes without it: rows then show the instance address.
            self.vector("max by (instance, engine, name, model, node) (strata_engine_info)"),
        )?;
        let names = engine_names(info);

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
                let e = engines.entry(instance.clone()).or_insert_with(|| {
                    let info = names.get(instance).cloned().unwrap_or_default();
                    Engine {
                        instance: instance.clone(),
                        name: info.name,
                        engine: info.engine,
                        model: info.model,
                        node: info.node,
                        ..Engine::default()
                    }
                });
                if let Some(engine) = labels.get("engine").filter(|v| !v.is_empty()) {
                    e.engine.clone_from(engine);
                }
                if let Some(model) = labels.get("model").filter(|v| !v.is_empty()) {
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
            findings: open.open.into_iter().map(Finding::from).collect(),
            names,
            alerts: alerts
                .alerts
                .into_iter()
                .filter(|a| a.state == "firing")
                .map(|a| {
                    let label = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
                    let summary = a.annotations.get("summary").cloned().unwrap_or_default();
                    Alert {
                        name: label("alertname"),
                        severity: label("severity"),
                        instance: label("instance"),
                        summary,
                        active_ms: a
                            .active_at
                            .as_deref()
                            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map(|d| d.as_millis() as i64),
                        labels: a.labels,
                        annotations: a.annotations,
                    }
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(json: Value) -> Vec<Finding> {
        let o: Open = serde_json::from_value(json).expect("findings");
        o.open.into_iter().map(Finding::from).collect()
    }

    #[test]
    fn findings_of_older_nodes_read() {
        let f = open(serde_json::json!({"open": [{
            "name": "cache_thrash", "alert": "LLMCacheThrash", "severity": "page",
            "summary": "s", "action": "a", "affected": {"instance": "h:1"},
            "started_ms": 5, "ended_ms": null,
            "evidence": [{"expr": "llm:kv_cache_usage_ratio",
                          "series": [{"labels": {"instance": "h:1"}, "points": [[1, 0.5]]}]}]
        }], "history": []}));
        assert_eq!(f.len(), 1);
        assert!(f[0].engines.is_empty() && f[0].symptoms.is_empty());
        let e = &f[0].evidence[0];
        assert_eq!(
            (e.title.as_str(), e.unit.as_str()),
            ("llm:kv_cache_usage_ratio", "")
        );
        assert_eq!(e.series[0].points, [(1, 0.5)]);
        assert_eq!(f[0].affected["instance"], "h:1");
    }

    #[test]
    fn findings_of_newer_nodes_read_with_every_field() {
        let f = open(serde_json::json!({"open": [{
            "name": "cache_thrash", "severity": "page", "started_ms": 5,
            "engines": [{"instance": "h:1", "name": "vllm-a", "model": "m", "node": "n"},
                        {"instance": "h:2"}],
            "symptoms": [{"alert": "LLMPreemptions", "severity": "ticket", "summary": "x",
                          "labels": {"instance": "h:1"}}],
            "evidence": [{"expr": "e", "title": "KV cache usage", "unit": "percent",
                          "threshold": 0.9,
                          "series": [{"labels": {}, "points": [[1, null], [2, 0.95]]}]},
                         {"expr": "e2", "threshold": null, "series": []}]
        }]}));
        let f = &f[0];
        assert_eq!(f.engines[0].name, "vllm-a");
        assert_eq!(
            (f.engines[1].instance.as_str(), f.engines[1].name.as_str()),
            ("h:2", "")
        );
        assert_eq!(f.symptoms[0].alert, "LLMPreemptions");
        let e = &f.evidence[0];
        assert_eq!(
            (e.title.as_str(), e.unit.as_str(), e.threshold),
            ("KV cache usage", "percent", Some(0.9))
        );
        assert_eq!(e.series[0].points, [(2, 0.95)], "a null value is left out");
        assert_eq!(
            (f.evidence[1].title.as_str(), f.evidence[1].threshold),
            ("e2", None)
        );
    }

    /// A stand-in for a newer node on loopback: canned answers by path and query.
    fn newer_node() -> reqwest::Url {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let vector =
                    |result: Value| serde_json::json!({"resultType": "vector", "result": result});
                let data = if path.contains("strata_engine_info") {
                    vector(
                        serde_json::json!([{"metric": {"instance": "h:1", "name": "vllm-a",
                        "engine": "vllm", "model": "m", "node": "n1"}, "value": [1, "1"]}]),
                    )
                } else if path.contains("requests_running") {
                    vector(
                        serde_json::json!([{"metric": {"instance": "h:1", "engine": "vllm",
                        "model": "m"}, "value": [1, "3"]}]),
                    )
                } else if path.starts_with("/api/v1/query") {
                    vector(serde_json::json!([]))
                } else if path.starts_with("/api/v1/findings") {
                    serde_json::json!({"open": [{"name": "cache_thrash", "severity": "page",
                        "started_ms": 5, "engines": [{"instance": "h:1", "name": "vllm-a"}],
                        "evidence": [{"expr": "e", "title": "KV", "unit": "percent",
                            "threshold": 0.9, "series": []}]}], "history": []})
                } else {
                    serde_json::json!({"alerts": [{"labels": {"alertname": "A",
                        "instance": "h:1", "severity": "ticket"}, "annotations": {},
                        "state": "firing", "activeAt": "2026-01-01T00:00:00Z"}]})
                };
                let body = serde_json::json!({"status": "success", "data": data}).to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        reqwest::Url::parse(&url).expect("url")
    }

    #[test]
    fn a_newer_node_gives_names_engines_and_evidence() {
        let source = Source::new(newer_node(), Duration::from_secs(5)).expect("source");
        let s = source.fetch().expect("snapshot");
        assert_eq!(s.engines.len(), 1);
        let e = &s.engines[0];
        assert_eq!(
            (
                e.name.as_str(),
                e.node.as_str(),
                e.engine.as_str(),
                e.running
            ),
            ("vllm-a", "n1", "vllm", Some(3.0))
        );
        assert_eq!(s.findings[0].engines[0].name, "vllm-a");
        assert_eq!(s.findings[0].evidence[0].threshold, Some(0.9));
        assert_eq!(s.subject(&s.alerts[0]), "vllm-a");
        assert_eq!(s.alerts[0].active_ms, Some(1_767_225_600_000));
        assert_eq!(s.alerts[0].labels["severity"], "ticket");
    }

    #[test]
    fn engine_names_key_by_instance() {
        let l = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let names = engine_names(vec![
            (
                l(&[("instance", "h:1"), ("name", "vllm-a"), ("node", "n1")]),
                1.0,
            ),
            (l(&[("name", "orphan")]), 1.0),
        ]);
        assert_eq!(names.len(), 1);
        assert_eq!(
            (names["h:1"].name.as_str(), names["h:1"].node.as_str()),
            ("vllm-a", "n1")
        );
        assert_eq!(names["h:1"].model, "");
    }
}
