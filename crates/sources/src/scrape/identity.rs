//! Engine identity: the name people use for an engine and the model it serves, recorded as
//! `strata_engine_info{instance, engine, name, model, node} 1` next to every engine's
//! samples so the UI, findings and `strata scrape` show `vllm-a` instead of `127.0.0.1:8000`.

use std::time::Duration;

use serde::Deserialize;

use super::ingest::Series;
use super::target::TargetSpec;
use crate::point::LabelSet;

/// The info series' name.
pub const ENGINE_INFO: &str = "strata_engine_info";
/// How long to wait before asking an engine's API for its model again after a failure.
const MODEL_RETRY_MS: i64 = 300_000;

/// The display name of an engine: its config `name`, else `ENGINE@host:port`.
pub fn display_name(configured: Option<&str>, engine: &str, instance: &str) -> String {
    match configured {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("{engine}@{instance}"),
    }
}

/// The served model named by the engine's own series (`model_name` on vLLM and SGLang),
/// given each series' labels.
pub fn model_from_labels<'a>(series: impl IntoIterator<Item = &'a LabelSet>) -> Option<String> {
    series.into_iter().find_map(|labels| {
        labels
            .iter()
            .find(|(n, v)| n == "model_name" && !v.is_empty())
            .map(|(_, v)| v.clone())
    })
}

/// The info series of one engine (its value is always 1).
pub fn info_series(
    job: &str,
    instance: &str,
    engine: &str,
    name: &str,
    model: &str,
    node: &str,
) -> Series {
    let mut labels = vec![
        ("job".to_string(), job.to_string()),
        ("instance".to_string(), instance.to_string()),
        ("engine".to_string(), engine.to_string()),
        ("name".to_string(), name.to_string()),
        ("model".to_string(), model.to_string()),
        ("node".to_string(), node.to_string()),
    ];
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Series {
        name: ENGINE_INFO.to_string(),
        labels,
    }
}

/// `GET /v1/models` (vLLM, SGLang, llama.cpp).
#[derive(Deserialize)]
struct Models {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// `GET /info` (TGI).
#[derive(Deserialize)]
struct TgiInfo {
    model_id: String,
}

/// The model named in an API answer: `/info`'s `model_id` for TGI, else the first entry of
/// `/v1/models`.
pub fn model_from_api(engine: &str, body: &str) -> Option<String> {
    let m = if engine == "tgi" {
        serde_json::from_str::<TgiInfo>(body).ok()?.model_id
    } else {
        serde_json::from_str::<Models>(body)
            .ok()?
            .data
            .into_iter()
            .next()?
            .id
    };
    (!m.is_empty()).then_some(m)
}

/// The served model of one target, asked of its API once (again after failures, at most
/// every five minutes) when its series do not name it.
#[derive(Debug, Default)]
pub(super) struct ModelLookup {
    found: Option<String>,
    next_try_ms: i64,
}

impl ModelLookup {
    /// The model: from the labels of the engine's series if they name it, else from the
    /// engine's API.
    pub(super) async fn model<'a>(
        &mut self,
        http: &reqwest::Client,
        spec: &TargetSpec,
        engine: &str,
        series: impl IntoIterator<Item = &'a LabelSet>,
        timeout: Duration,
        now_ms: i64,
    ) -> String {
        if let Some(m) = model_from_labels(series) {
            return m;
        }
        if self.found.is_none() && now_ms >= self.next_try_ms {
            self.next_try_ms = now_ms + MODEL_RETRY_MS;
            self.found = ask(http, spec, engine, timeout).await;
        }
        self.found.clone().unwrap_or_default()
    }
}

async fn ask(
    http: &reqwest::Client,
    spec: &TargetSpec,
    engine: &str,
    timeout: Duration,
) -> Option<String> {
    let mut url = spec.url.clone();
    url.set_path(if engine == "tgi" {
        "/info"
    } else {
        "/v1/models"
    });
    url.set_query(None);
    let mut request = http.get(url).timeout(timeout);
    if let Some(token) = &spec.bearer_token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.text().await.ok()?;
    model_from_api(engine, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::Point;

    #[test]
    fn names() {
        assert_eq!(display_name(Some("vllm-a"), "vllm", "h:1"), "vllm-a");
        assert_eq!(display_name(None, "vllm", "h:1"), "vllm@h:1");
        assert_eq!(display_name(Some(""), "tgi", "h:2"), "tgi@h:2");
    }

    #[test]
    fn models_from_each_api() {
        let tgi = r#"{"model_id":"Qwen/Qwen2.5-7B-Instruct","model_sha":null}"#;
        assert_eq!(
            model_from_api("tgi", tgi).as_deref(),
            Some("Qwen/Qwen2.5-7B-Instruct")
        );
        let v1 = r#"{"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B","object":"model"}]}"#;
        assert_eq!(
            model_from_api("vllm", v1).as_deref(),
            Some("meta-llama/Llama-3.1-8B")
        );
        assert_eq!(model_from_api("llamacpp", r#"{"data":[]}"#), None);
        assert_eq!(model_from_api("tgi", "not json"), None);
    }

    #[test]
    fn model_label_wins() {
        let p = Point::new(
            "vllm:num_requests_running",
            vec![("model_name".into(), "m1".into())],
            1.0,
            0,
        );
        assert_eq!(model_from_labels([&p.labels]).as_deref(), Some("m1"));
        let q = Point::new("x", vec![("model_name".into(), String::new())], 1.0, 0);
        assert_eq!(
            model_from_labels([&q.labels, &p.labels]).as_deref(),
            Some("m1")
        );
        assert_eq!(model_from_labels([&q.labels]), None);
    }
}
