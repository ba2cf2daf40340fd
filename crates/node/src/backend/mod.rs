//! A Prometheus-compatible query API (Prometheus, VictoriaMetrics, Mimir, Thanos) as the
//! store of a node: `strata up --backend URL`. The node evaluates its rules against it
//! ([`BackendQuery`], the [`rules::Query`] the rule engine reads through) and writes the
//! recording and alert results back through remote_write, as vmalert does; the Prometheus
//! API it serves is proxied there ([`proxy`]).

pub mod proxy;

use std::time::Duration;

use serde_json::Value;
use strata_core::query::{Labels, Query};

/// How to reach the backend: plain data, filled from `[backend]` and `--backend`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Base URL of the query API (`http://vm:8428`, `http://prometheus:9090`, a Mimir
    /// `…/prometheus` prefix): `/api/v1/query` is appended.
    pub url: reqwest::Url,
    /// Credentials sent with every request.
    pub auth: Auth,
    /// Extra headers sent with every request (`X-Scope-OrgID` for Mimir tenants).
    pub headers: Vec<(String, String)>,
    /// Longest one backend request may take.
    pub timeout: Duration,
    /// How far behind now rules are evaluated; `None`: what the backend hides (detected:
    /// VictoriaMetrics' `-search.latencyOffset`, 30 s unless set; 0 elsewhere).
    pub eval_delay: Option<Duration>,
}

/// Credentials for the backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl BackendConfig {
    /// `url` with no credentials, a 30 s timeout and the detected evaluation delay.
    pub fn new(url: reqwest::Url) -> BackendConfig {
        BackendConfig {
            url,
            auth: Auth::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            eval_delay: None,
        }
    }
}

/// VictoriaMetrics' default `-search.latencyOffset`: the newest 30 s are hidden from queries.
const VM_DEFAULT_LATENCY_OFFSET: Duration = Duration::from_secs(30);

/// A client of the backend's query API.
pub struct Backend {
    cfg: BackendConfig,
    client: reqwest::Client,
}

impl Backend {
    /// A client for `cfg`.
    pub fn new(cfg: BackendConfig) -> Result<Backend, String> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| format!("cannot build the backend HTTP client: {e}"))?;
        Ok(Backend { cfg, client })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &BackendConfig {
        &self.cfg
    }

    /// `path` (no leading slash) under the base URL.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.cfg.url.as_str().trim_end_matches('/'))
    }

    /// A request to `path` with the credentials and headers.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_to(method, &self.url(path))
    }

    /// A request to the full `url` (under the base URL) with the credentials and headers.
    pub(crate) fn request_to(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, url);
        r = match &self.cfg.auth {
            Auth::None => r,
            Auth::Bearer(t) => r.bearer_auth(t),
            Auth::Basic { user, password } => r.basic_auth(user, Some(password)),
        };
        for (k, v) in &self.cfg.headers {
            r = r.header(k, v);
        }
        r
    }

    /// The `data` of a successful Prometheus API answer to `GET path?params`, or an error
    /// that names the backend, what failed and what to check.
    pub async fn data(&self, path: &str, params: &[(&str, String)]) -> Result<Value, String> {
        let url = self.url(path);
        let full = reqwest::Url::parse_with_params(&url, params)
            .map_err(|e| format!("backend URL {url}: {e} (check --backend / [backend] url)"))?;
        let resp = self
            .request_to(reqwest::Method::GET, full.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    format!(
                        "backend {url} did not answer within {:?} (a heavy query or an overloaded backend: raise [backend] timeout or narrow the query)",
                        self.cfg.timeout
                    )
                } else {
                    format!("backend {url} unreachable: {e} (check --backend / [backend] url)")
                }
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("backend {url}: cannot read the answer: {e}"))?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            let text = String::from_utf8_lossy(&body);
            format!(
                "backend {url} answered {status} with no Prometheus API JSON ({}): is this a Prometheus-compatible query API?{}",
                text.chars().take(200).collect::<String>().trim(),
                if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
                    " (set [backend] bearer_token_file or basic auth)"
                } else {
                    ""
                }
            )
        })?;
        if v["status"] != "success" {
            return Err(format!(
                "backend {url} answered {status}: {} {}",
                v["errorType"].as_str().unwrap_or("error"),
                v["error"].as_str().unwrap_or("(no message)")
            ));
        }
        Ok(v["data"].clone())
    }

    /// Evaluates `expr` at `t_ms`: each series' labels (`__name__` included) and value; a
    /// scalar is one series with no labels.
    pub async fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let data = self
            .data(
                "api/v1/query",
                &[("query", expr.to_string()), ("time", secs(t_ms))],
            )
            .await?;
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Ok((labels(&s["metric"]), value(&s["value"])?)))
                .collect(),
            Some("scalar") => Ok(vec![(Vec::new(), value(&data["result"])?)]),
            other => Err(format!(
                "rule expressions must return a vector or scalar, the backend answered {other:?} for {expr}"
            )),
        }
    }

    /// Evaluates `expr` from `start_ms` to `end_ms` every `step`: each series' labels and
    /// points.
    pub async fn range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step: Duration,
    ) -> Result<Vec<(Labels, Vec<(i64, f64)>)>, String> {
        let data = self
            .data(
                "api/v1/query_range",
                &[
                    ("query", expr.to_string()),
                    ("start", secs(start_ms)),
                    ("end", secs(end_ms)),
                    ("step", format!("{}", step.as_secs_f64())),
                ],
            )
            .await?;
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let points = s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Ok(((p[0].as_f64().unwrap_or(0.0) * 1000.0) as i64, value(p)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok((labels(&s["metric"]), points))
            })
            .collect()
    }

    /// How far behind now rules should be evaluated: the configured delay, else what the
    /// backend hides. VictoriaMetrics (it serves `/flags`) hides the newest
    /// `-search.latencyOffset` (30 s unless set) from queries; Prometheus, Mimir and Thanos
    /// hide nothing.
    pub async fn eval_delay(&self) -> Duration {
        if let Some(d) = self.cfg.eval_delay {
            return d;
        }
        let Ok(resp) = self.request(reqwest::Method::GET, "flags").send().await else {
            return Duration::ZERO;
        };
        if !resp.status().is_success() {
            return Duration::ZERO;
        }
        let text = resp.text().await.unwrap_or_default();
        vm_latency_offset(&text).unwrap_or(Duration::ZERO)
    }
}

/// The latency offset a VictoriaMetrics `/flags` page says (only flags set away from their
/// defaults are listed: absent means 30 s); `None` when the page is not VictoriaMetrics'.
fn vm_latency_offset(flags: &str) -> Option<Duration> {
    let lines: Vec<&str> = flags.lines().map(str::trim).collect();
    if lines.is_empty() || !lines.iter().all(|l| l.is_empty() || l.starts_with('-')) {
        return None;
    }
    for l in &lines {
        if let Some(v) = l.strip_prefix("-search.latencyOffset=") {
            return humantime::parse_duration(v.trim_matches('"')).ok();
        }
    }
    Some(VM_DEFAULT_LATENCY_OFFSET)
}

/// Milliseconds as the API's seconds.
fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn labels(metric: &Value) -> Labels {
    let mut out: Labels = metric
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    out.sort();
    out
}

/// The value of a `[t, "v"]` pair.
fn value(pair: &Value) -> Result<f64, String> {
    let text = pair[1]
        .as_str()
        .ok_or_else(|| format!("backend answered a sample without a value: {pair}"))?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t => t
            .parse()
            .map_err(|_| format!("backend answered a value that is not a number: {t:?}")),
    }
}

/// The rule engine's [`Query`] over a backend: each instant query is one HTTP request, made
/// from the blocking thread the rule engine runs on. Its client runs on a runtime of its own:
/// the rule engine holds its locks while it queries, and async handlers of the node take the
/// same locks, so a request driven by the node's workers could wait on a worker that waits on
/// it.
pub struct BackendQuery {
    backend: Backend,
    /// `Some` until dropped (shut down in the background: it may be dropped in async code).
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackendQuery {
    /// A client of `cfg` with its own one-thread runtime.
    pub fn new(cfg: BackendConfig) -> Result<BackendQuery, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("strata-backend")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the backend client's runtime: {e}"))?;
        Ok(BackendQuery {
            backend: Backend::new(cfg)?,
            runtime: Some(runtime),
        })
    }
}

impl Query for BackendQuery {
    fn instant(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match &self.runtime {
            Some(rt) => rt.block_on(self.backend.instant(expr, t_ms)),
            None => Err("the backend client is shut down".to_string()),
        }
    }
}

impl Drop for BackendQuery {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn victoria_metrics_flags_give_the_hidden_window() {
        assert_eq!(
            vm_latency_offset("-httpListenAddr=\"127.0.0.1:8428\"\n"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            vm_latency_offset("-search.latencyOffset=\"0s\"\n-x=\"y\"\n"),
            Some(Duration::ZERO)
        );
        assert_eq!(vm_latency_offset("<html>404 page not found</html>"), None);
    }

    #[test]
    fn api_values_and_times() {
        assert_eq!(secs(1_500), "1.500");
        assert_eq!(value(&serde_json::json!([1, "2.5"])), Ok(2.5));
        assert!(value(&serde_json::json!([1, "x"])).is_err());
        assert!(value(&serde_json::json!([1, "NaN"])).is_ok_and(f64::is_nan));
    }
}
