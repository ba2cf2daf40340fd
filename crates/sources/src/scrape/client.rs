//! One HTTP fetch of a metrics endpoint: TLS, bearer auth, gzip, content negotiation and a
//! bounded body.

use std::time::Duration;

use expo::Format;

use super::target::TargetSpec;

/// The `Accept` header Prometheus itself sends: OpenMetrics preferred, 0.0.4 text accepted.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Why a scrape failed. Each variant says what to check.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (bad CA file...).
    #[error("cannot set up the HTTP client for {url}: {reason}")]
    Client {
        /// Target URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Connection refused, DNS, TLS handshake...
    #[error("cannot reach {url}: {reason}")]
    Connect {
        /// Target URL.
        url: String,
        /// Error chain.
        reason: String,
    },
    /// No answer within the profile's timeout.
    #[error(
        "{url} did not answer within {timeout:?} (raise the target's timeout or check the engine's load)"
    )]
    Timeout {
        /// Target URL.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A non-2xx status.
    #[error("{url} answered HTTP {status}{hint}")]
    Status {
        /// Target URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// A hint for common codes (401/403: token; 404: path).
        hint: &'static str,
    },
    /// The body grew past `max_body_bytes`.
    #[error(
        "{url} sent more than {limit} bytes; raise max_body_bytes for this target if that is expected"
    )]
    TooLarge {
        /// Target URL.
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// A fetched body and the format its `Content-Type` declared.
#[derive(Debug)]
pub struct Body {
    /// The text (invalid UTF-8 replaced; see `lossy`).
    pub text: String,
    /// Declared format.
    pub format: Format,
    /// True when the body was not valid UTF-8 and was repaired.
    pub lossy: bool,
}

/// A reusable client for one target.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

/// Installs the `ring` rustls crypto provider once per process (reqwest is built without a
/// default provider to avoid the aws-lc C build).
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// Builds the client for `target` (its CA, TLS verification and gzip settings).
    pub fn new(target: &TargetSpec) -> Result<Client, FetchError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .tls_danger_accept_invalid_certs(target.insecure_skip_verify);
        if let Some(pem) = &target.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| FetchError::Client {
                    url: strata_core::redact_url(target.url.as_str()),
                    reason: format!("CA bundle is not valid PEM: {e}"),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| FetchError::Client {
            url: strata_core::redact_url(target.url.as_str()),
            reason: error_chain(&e, &target.url),
        })?;
        Ok(Client { http })
    }

    /// The underlying HTTP client (with the target's TLS settings), for the engine's API.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Fetches the target once within `timeout`.
    pub async fn fetch(&self, target: &TargetSpec, timeout: Duration) -> Result<Body, FetchError> {
        let url = strata_core::redact_url(target.url.as_str());
        let attempt = async {
            let mut request = self
                .http
                .get(target.url.clone())
                .header(reqwest::header::ACCEPT, ACCEPT)
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    format!("{}", timeout.as_secs_f64()),
                );
            if let Some(token) = &target.bearer_token {
                request = request.bearer_auth(token);
            }
            let mut response = request.send().await.map_err(|e| FetchError::Connect {
                url: url.clone(),
                reason: error_chain(&e, &target.url),
            })?;
            let status = response.status();
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                    hint: match status.as_u16() {
                        401 | 403 => " (check the target's bearer_token)",
                        404 => {
                            " (check the metrics path; vLLM, TGI and SGLang serve /metrics, llama.cpp needs --metrics)"
                        }
                        _ => "",
                    },
                });
            }
            let format = Format::from_content_type(
                response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
            );
            // Sized once from the announced length (bounded by the limit), not grown by
            // doubling chunk after chunk.
            let announced = response.content_length().unwrap_or(0);
            let mut bytes = Vec::with_capacity(
                usize::try_from(announced).map_or(0, |n| n.min(target.max_body_bytes)),
            );
            while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Connect {
                url: url.clone(),
                reason: error_chain(&e, &target.url),
            })? {
                if bytes.len() + chunk.len() > target.max_body_bytes {
                    return Err(FetchError::TooLarge {
                        url: url.clone(),
                        limit: target.max_body_bytes,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            let (text, lossy) = match String::from_utf8(bytes) {
                Ok(text) => (text, false),
                Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
            };
            Ok(Body {
                text,
                format,
                lossy,
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(FetchError::Timeout { url, timeout }))
    }
}

/// An error and its sources on one line (reqwest hides the useful part in `source()`), with
/// `url`'s password masked wherever the chain repeats the URL.
fn error_chain(e: &dyn std::error::Error, url: &reqwest::Url) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    if url.password().is_some() {
        out = out.replace(url.as_str(), &strata_core::redact_url(url.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_masked_where_errors_repeat_the_url() {
        let url = reqwest::Url::parse("http://scraper:pw123@127.0.0.1:1/metrics").unwrap();
        let e = std::io::Error::other(format!("error sending request for url ({url})"));
        let shown = super::error_chain(&e, &url);
        assert!(!shown.contains("pw123"), "{shown}");
        assert!(
            shown.contains("http://scraper:***@127.0.0.1:1/metrics"),
            "{shown}"
        );
    }
}
