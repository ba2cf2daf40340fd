//! Turning what an operator types (`http://gpu-node:8000`, `gpu-node:9400`) into the URL
//! to scrape, the way Prometheus builds it from a target and its `metrics_path`.

/// Why a target URL cannot be scraped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsUrlError {
    /// The text is not a URL, even after adding `http://`.
    #[error(
        "`{input}` is not a URL ({reason}); write it as http://host:port or http://host:port/metrics"
    )]
    Invalid {
        /// What was given.
        input: String,
        /// The parser's reason.
        reason: String,
    },
    /// A scheme other than http or https.
    #[error("`{input}` uses {scheme}://; metrics are scraped over http:// or https://")]
    Scheme {
        /// What was given.
        input: String,
        /// The scheme found.
        scheme: String,
    },
}

/// The URL to scrape for `input`: a URL without a path (or with `/`) gets `/metrics`, as
/// Prometheus' default `metrics_path` does; a bare `host:port` gets `http://` first, as
/// Prometheus' default scheme does. Any other path, and the query (llama.cpp's router mode
/// needs `?model=`), are kept as given.
pub fn metrics_url(input: &str) -> Result<reqwest::Url, MetricsUrlError> {
    let input = input.trim();
    let with_scheme = if input.contains("://") {
        input.to_string()
    } else {
        format!("http://{input}")
    };
    let mut url = reqwest::Url::parse(&with_scheme).map_err(|e| MetricsUrlError::Invalid {
        input: input.to_string(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(MetricsUrlError::Scheme {
            input: input.to_string(),
            scheme: url.scheme().to_string(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MetricsUrlError::Invalid {
            input: input.to_string(),
            reason: "no host".to_string(),
        });
    }
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/metrics");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        metrics_url(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .to_string()
    }

    #[test]
    fn a_url_without_a_path_gets_slash_metrics_like_prometheus() {
        assert_eq!(ok("http://gpu-node:8000"), "http://gpu-node:8000/metrics");
        assert_eq!(ok("http://gpu-node:8000/"), "http://gpu-node:8000/metrics");
        assert_eq!(ok("https://10.0.0.7:9400"), "https://10.0.0.7:9400/metrics");
        assert_eq!(ok("gpu-node:9400"), "http://gpu-node:9400/metrics");
        assert_eq!(ok(" http://[::1]:8080 "), "http://[::1]:8080/metrics");
        assert_eq!(
            ok("http://h:8080?model=qwen"),
            "http://h:8080/metrics?model=qwen"
        );
    }

    #[test]
    fn an_explicit_path_is_kept() {
        assert_eq!(ok("http://h:8000/metrics"), "http://h:8000/metrics");
        assert_eq!(ok("http://h:8000/custom/prom"), "http://h:8000/custom/prom");
    }

    #[test]
    fn bad_input_is_an_error_that_names_the_fix() {
        let e = metrics_url("ftp://h:21").expect_err("ftp");
        assert!(matches!(e, MetricsUrlError::Scheme { .. }), "{e}");
        let e = metrics_url("http://").expect_err("no host");
        assert!(e.to_string().contains("http://host:port"), "{e}");
        assert!(metrics_url("http://h:99999").is_err(), "port out of range");
    }
}
