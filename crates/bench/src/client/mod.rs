//! The streaming HTTP client, one request shape per API: OpenAI chat completions, OpenAI
//! completions and TGI's `/generate_stream`. `http://` goes over raw hyper HTTP/1.1
//! connections (module `plain`), `https://` through reqwest. Bodies are read as they
//! arrive, cut into SSE events on raw bytes ([`sse`]) and classified by key scans
//! ([`event`]); per chunk the client takes one `Instant` and touches no allocator.

pub mod event;
mod plain;
pub mod sse;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::measure::{ErrorClass, Failure, Timer, Timing};
use crate::workload::Prompt;

/// The wire API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Api {
    /// `POST /v1/chat/completions` (vLLM, SGLang, llama.cpp, TGI's Messages API).
    #[serde(rename = "openai-chat")]
    OpenAiChat,
    /// `POST /v1/completions`.
    #[serde(rename = "openai-completions")]
    OpenAiCompletions,
    /// TGI's native `POST /generate_stream`.
    #[serde(rename = "tgi")]
    Tgi,
}

impl Api {
    /// The endpoint path of this API.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiCompletions => "/v1/completions",
            Api::Tgi => "/generate_stream",
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's base URL (`http://host:8000`), or the full endpoint URL.
    pub url: String,
    /// The wire API.
    pub api: Api,
    /// The model to ask for (OpenAI APIs). `None`: the first of `GET /v1/models`.
    pub model: Option<String>,
    /// Extra headers on every request (tenant, authorization…).
    pub headers: Vec<(String, String)>,
    /// Per-request limit, from sending to the end of the body.
    pub timeout: Duration,
    /// Ask the server to ignore end-of-sequence tokens so that every request produces its
    /// requested output length (vLLM and SGLang `ignore_eos`).
    pub ignore_eos: bool,
}

/// An error that stops a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL cannot be used.
    #[error("bad --url `{url}`: {reason} (write e.g. http://127.0.0.1:8000)")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A header cannot be sent.
    #[error("bad header `{name}`: {reason} (write e.g. --header 'authorization: Bearer KEY')")]
    Header {
        /// The header name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The model could not be discovered.
    #[error("no --model given and {url} did not list one: {reason} (pass --model NAME)")]
    Model {
        /// The models URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// A streaming client for one server and API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    base: reqwest::Url,
    api: Api,
    model: Option<String>,
    ignore_eos: bool,
    timeout: Duration,
    /// Raw HTTP/1.1 connections for `http://` endpoints (reqwest serves `https://`).
    plain: Option<Arc<plain::Plain>>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct OpenAiBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<[Message<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    max_tokens: u32,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ignore_eos: bool,
}

#[derive(Serialize)]
struct TgiParams {
    max_new_tokens: u32,
}

#[derive(Serialize)]
struct TgiBody<'a> {
    inputs: &'a str,
    parameters: TgiParams,
}

impl Client {
    /// Builds the client (installs the `ring` TLS provider once per process).
    pub fn new(cfg: &ClientConfig) -> Result<Client, SetupError> {
        // Err only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (endpoint, base) = endpoint(&cfg.url, cfg.api)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            let bad = |reason: String| SetupError::Header {
                name: name.clone(),
                reason,
            };
            let n =
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
            let v = HeaderValue::from_str(value.trim()).map_err(|e| bad(e.to_string()))?;
            headers.append(n, v);
        }
        let mut plain_headers = headers.clone();
        plain_headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("strata-bench/", env!("CARGO_PKG_VERSION"))),
        );
        let plain = plain::Plain::new(&endpoint, plain_headers).map(Arc::new);
        let http = reqwest::Client::builder()
            .user_agent(concat!("strata-bench/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(cfg.timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Client {
            http,
            endpoint,
            base,
            api: cfg.api,
            model: cfg.model.clone(),
            ignore_eos: cfg.ignore_eos,
            timeout: cfg.timeout,
            plain,
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The model requests ask for (`None` for TGI's native API without `--model`).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Asks `GET /v1/models` for the model when none was given (OpenAI APIs only).
    pub async fn resolve_model(&mut self) -> Result<(), SetupError> {
        if self.model.is_some() || self.api == Api::Tgi {
            return Ok(());
        }
        let url = self.base.join("v1/models").map_err(|e| SetupError::Url {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        let err = |reason: String| SetupError::Model {
            url: url.to_string(),
            reason,
        };
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| err(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| err(error_chain(&e)))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| err(format!("not JSON: {e}")))?;
        let id = v
            .pointer("/data/0/id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| err("the list is empty".into()))?;
        self.model = Some(id.to_string());
        Ok(())
    }

    fn body(&self, p: &Prompt) -> Vec<u8> {
        let model = self.model.as_deref().unwrap_or("default");
        let r = match self.api {
            Api::OpenAiChat | Api::OpenAiCompletions => {
                let chat = self.api == Api::OpenAiChat;
                serde_json::to_vec(&OpenAiBody {
                    model,
                    messages: chat.then_some([Message {
                        role: "user",
                        content: &p.text,
                    }]),
                    prompt: (!chat).then_some(&*p.text),
                    max_tokens: p.max_tokens,
                    stream: true,
                    stream_options: StreamOptions {
                        include_usage: true,
                    },
                    ignore_eos: self.ignore_eos,
                })
            }
            Api::Tgi => serde_json::to_vec(&TgiBody {
                inputs: &p.text,
                parameters: TgiParams {
                    max_new_tokens: p.max_tokens,
                },
            }),
        };
        // Serialising plain strings and numbers into a Vec cannot fail.
        r.unwrap_or_default()
    }

    /// Sends one streaming request with `x-request-id: request_id` and times it.
    pub async fn send(&self, prompt: &Prompt, request_id: &str) -> Result<Timing, Failure> {
        let body = self.body(prompt);
        let Some(p) = &self.plain else {
            return self.send_reqwest(body, request_id).await;
        };
        let plain = async {
            let start = Instant::now();
            let (resp, lease) = p.post(body, request_id).await?;
            let status = resp.status();
            let mut incoming = resp.into_body();
            if !status.is_success() {
                let text = http_body_util::BodyExt::collect(incoming)
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                return Err(Failure {
                    class: ErrorClass::of_status(status.as_u16()),
                    detail: format!("HTTP {status}: {}", excerpt(&text)),
                });
            }
            let timing = self.read_stream(start, Body::Plain(&mut incoming)).await;
            if timing.is_ok() {
                p.put_back(lease);
            }
            timing
        };
        tokio::time::timeout(self.timeout, plain)
            .await
            .unwrap_or_else(|_| {
                Err(Failure {
                    class: ErrorClass::Timeout,
                    detail: format!("no complete response within {:?}", self.timeout),
                })
            })
    }

    async fn send_reqwest(&self, body: Vec<u8>, request_id: &str) -> Result<Timing, Failure> {
        let req = self
            .http
            .post(self.endpoint.clone())
            .header("x-request-id", request_id)
            .body(body);
        let start = Instant::now();
        let mut resp = req.send().await.map_err(|e| failure_of(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(Failure {
                class: ErrorClass::of_status(status.as_u16()),
                detail: format!("HTTP {status}: {}", excerpt(text.as_bytes())),
            });
        }
        self.read_stream(start, Body::Reqwest(&mut resp)).await
    }

    /// Reads a 200 stream chunk by chunk from `next` and times it from `start`.
    async fn read_stream(&self, start: Instant, mut body: Body<'_>) -> Result<Timing, Failure> {
        let mut timer = Timer::new(start);
        let mut parser = sse::SseParser::default();
        let (mut done, mut usage, mut error) = (false, None, None::<String>);
        let api = self.api;
        let mut on_event = |now: Instant, data: &[u8]| {
            let ev = event::classify(api, data);
            if ev.error && error.is_none() {
                error = Some(excerpt(data));
            }
            if ev.content {
                timer.content(now);
            }
            usage = ev.usage_tokens.or(usage);
            done |= ev.done;
        };
        loop {
            match body.chunk().await {
                Ok(Some(bytes)) => {
                    let now = Instant::now();
                    parser.feed(&bytes, &mut |d| on_event(now, d));
                }
                Ok(None) => {
                    let now = Instant::now();
                    parser.finish(&mut |d| on_event(now, d));
                    break;
                }
                Err(mut f) => {
                    f.detail = format!("after {} chunks: {}", timer.chunks(), f.detail);
                    return Err(f);
                }
            }
        }
        let end = Instant::now();
        if let Some(detail) = error {
            return Err(Failure {
                class: ErrorClass::StreamError,
                detail,
            });
        }
        if !done {
            return Err(Failure {
                class: ErrorClass::Incomplete,
                detail: format!(
                    "the body ended after {} chunks without the end of the stream",
                    timer.chunks()
                ),
            });
        }
        timer.finish(end, usage).ok_or_else(|| Failure {
            class: ErrorClass::Empty,
            detail: "the stream carried no output text".into(),
        })
    }
}

/// A 200 response body being read.
enum Body<'a> {
    Plain(&'a mut hyper::body::Incoming),
    Reqwest(&'a mut reqwest::Response),
}

impl Body<'_> {
    /// The next chunk, `None` at the end; a break is [`ErrorClass::Incomplete`] (or a timeout).
    async fn chunk(&mut self) -> Result<Option<hyper::body::Bytes>, Failure> {
        match self {
            Body::Plain(b) => plain::chunk(b).await.map_err(|e| Failure {
                class: ErrorClass::Incomplete,
                detail: error_chain(&e),
            }),
            Body::Reqwest(r) => r.chunk().await.map_err(|e| {
                let mut f = failure_of(&e);
                if f.class == ErrorClass::Connect {
                    f.class = ErrorClass::Incomplete;
                }
                f
            }),
        }
    }
}

/// The endpoint URL for `url` and the base URL (scheme, host, port and any prefix).
fn endpoint(url: &str, api: Api) -> Result<(reqwest::Url, reqwest::Url), SetupError> {
    let bad = |reason: String| SetupError::Url {
        url: url.to_string(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https".into()));
    }
    let path = parsed.path().trim_end_matches('/').to_string();
    let full = api.path();
    let prefix = if let Some(p) = path.strip_suffix(full) {
        p
    } else if api != Api::Tgi
        && let Some(p) = path.strip_suffix("/v1")
    {
        p
    } else {
        &path
    };
    let mut base = parsed.clone();
    base.set_path(&format!("{prefix}/"));
    base.set_query(None);
    let mut ep = parsed;
    ep.set_path(&format!("{prefix}{full}"));
    Ok((ep, base))
}

fn failure_of(e: &reqwest::Error) -> Failure {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_connect() || e.is_request() {
        ErrorClass::Connect
    } else {
        ErrorClass::Incomplete
    };
    Failure {
        class,
        detail: error_chain(e),
    }
}

/// The error and its sources, joined (reqwest's own message omits the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]);
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_base_v1_or_full_urls() {
        let ep = |u, a| {
            let (e, b) = endpoint(u, a).unwrap();
            (e.to_string(), b.to_string())
        };
        assert_eq!(
            ep("http://h:8000", Api::OpenAiChat),
            (
                "http://h:8000/v1/chat/completions".into(),
                "http://h:8000/".into()
            )
        );
        assert_eq!(
            ep("http://h:8000/v1/", Api::OpenAiCompletions).0,
            "http://h:8000/v1/completions"
        );
        assert_eq!(
            ep("http://h/proxy/v1/chat/completions", Api::OpenAiChat),
            (
                "http://h/proxy/v1/chat/completions".into(),
                "http://h/proxy/".into()
            )
        );
        assert_eq!(
            ep("http://h:3000/", Api::Tgi).0,
            "http://h:3000/generate_stream"
        );
        assert!(endpoint("h:8000", Api::Tgi).is_err());
        assert!(endpoint("ftp://h/", Api::Tgi).is_err());
    }
}
