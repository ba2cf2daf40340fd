//! What the gateway reads from a request body: model, stream, max_tokens, temperature,
//! top_p — and, for a streaming OpenAI request that did not ask for usage, the body with
//! `stream_options.include_usage` added (the client's bytes are otherwise kept as sent).

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

use crate::record::{Endpoint, Params};

#[derive(Deserialize)]
struct Req<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    parameters: Option<TgiParams>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct TgiParams {
    #[serde(default)]
    max_new_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
}

/// A request body, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    /// Parameters.
    pub params: Params,
    /// `model`, when the body names one.
    pub model: Option<String>,
    /// The body to send upstream.
    pub body: Bytes,
    /// A streaming OpenAI request that did not ask for usage.
    pub may_inject: bool,
    has_stream_options: bool,
}

/// Reads `body` of an LLM endpoint. A body that is not JSON is forwarded unchanged (the
/// engine answers it).
pub fn inspect(endpoint: Endpoint, body: Bytes) -> Inspected {
    let mut out = Inspected {
        params: Params {
            stream: endpoint == Endpoint::TgiGenerateStream,
            ..Params::default()
        },
        model: None,
        body: body.clone(),
        may_inject: false,
        has_stream_options: false,
    };
    let Ok(r) = serde_json::from_slice::<Req<'_>>(&body) else {
        return out;
    };
    out.model = r.model.map(Cow::into_owned);
    let p = &mut out.params;
    match endpoint {
        Endpoint::TgiGenerate | Endpoint::TgiGenerateStream => {
            if let Some(t) = r.parameters {
                p.max_tokens = t.max_new_tokens;
                p.temperature = t.temperature;
                p.top_p = t.top_p;
            }
        }
        _ => {
            p.stream = r.stream.unwrap_or(false);
            p.max_tokens = r.max_completion_tokens.or(r.max_tokens);
            p.temperature = r.temperature;
            p.top_p = r.top_p;
        }
    }
    let wants_usage = r
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let openai = matches!(endpoint, Endpoint::Chat | Endpoint::Completion);
    out.may_inject = openai && out.params.stream && !wants_usage;
    out.has_stream_options = r.stream_options.is_some();
    out
}

impl Inspected {
    /// Adds `stream_options.include_usage: true` when the client did not ask for usage
    /// (no-op otherwise, or when the body cannot take it).
    pub fn inject_usage(&mut self) {
        if !self.may_inject || self.params.usage_injected {
            return;
        }
        let injected = if self.has_stream_options {
            set_include_usage(&self.body)
        } else {
            insert_first(&self.body, br#""stream_options":{"include_usage":true},"#)
        };
        if let Some(b) = injected {
            self.body = b;
            self.params.usage_injected = true;
        }
    }
}

/// Inserts `field` right after the object's opening brace.
fn insert_first(body: &[u8], field: &[u8]) -> Option<Bytes> {
    let at = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[at] != b'{' {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + field.len());
    out.extend_from_slice(&body[..=at]);
    out.extend_from_slice(field);
    out.extend_from_slice(&body[at + 1..]);
    Some(Bytes::from(out))
}

/// `stream_options` exists without `include_usage: true`: set it (re-serialises the body).
fn set_include_usage(body: &[u8]) -> Option<Bytes> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let so = v.get_mut("stream_options")?;
    if !so.is_object() {
        return None;
    }
    so["include_usage"] = serde_json::Value::Bool(true);
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_usage_only_for_streaming_openai_requests_without_it() {
        let inspect = |e, b, inject: bool| {
            let mut i = super::inspect(e, b);
            if inject {
                i.inject_usage();
            }
            i
        };
        let body = Bytes::from_static(
            br#" {"model":"m","stream":true,"max_tokens":5,"temperature":0.5,"messages":[]}"#,
        );
        let i = inspect(Endpoint::Chat, body, true);
        assert!(i.params.usage_injected);
        assert_eq!(i.model.as_deref(), Some("m"));
        assert_eq!(i.params.max_tokens, Some(5));
        let v: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["messages"], serde_json::json!([]));

        let asked = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let i = inspect(Endpoint::Chat, asked.clone(), true);
        assert!(!i.params.usage_injected);
        assert_eq!(i.body, asked, "the client's bytes are kept");

        let off = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#,
        );
        let i = inspect(Endpoint::Completion, off, true);
        assert!(i.params.usage_injected);
        let v: serde_json::Value = serde_json::from_slice(&i.body).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);

        let plain = Bytes::from_static(br#"{"model":"m","stream":false}"#);
        assert!(!inspect(Endpoint::Chat, plain, true).params.usage_injected);
        let s = Bytes::from_static(br#"{"model":"m","stream":true}"#);
        assert!(!inspect(Endpoint::Chat, s, false).params.usage_injected);
        let junk = Bytes::from_static(b"not json");
        assert_eq!(inspect(Endpoint::Chat, junk.clone(), true).body, junk);
    }

    #[test]
    fn tgi_parameters() {
        let b =
            Bytes::from_static(br#"{"inputs":"hi","parameters":{"max_new_tokens":9,"top_p":0.9}}"#);
        let mut i = inspect(Endpoint::TgiGenerateStream, b);
        i.inject_usage();
        assert!(i.params.stream && !i.params.usage_injected);
        assert_eq!((i.params.max_tokens, i.params.top_p), (Some(9), Some(0.9)));
    }
}
