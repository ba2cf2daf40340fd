//! `[gateway]`: the streaming proxy's settings (`strata gateway`, and the gateway inside
//! `strata up`). Every key is optional; unset keys keep the gateway's defaults, and
//! `strata gateway` flags override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway::{CaptureConfig, GatewayConfig, LogOutput, OtlpProtocol, UpstreamConfig};
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::schema::duration;

/// `[gateway]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Client address (`127.0.0.1:8080`).
    pub listen: Option<Spanned<String>>,
    /// Admin address for `/metrics` and `/health` (`127.0.0.1:9465`).
    pub admin: Option<Spanned<String>>,
    /// Ask streaming requests for usage on the client's behalf (removed again).
    pub inject_usage: Option<bool>,
    /// Most (model, tenant, upstream) label sets.
    pub max_series: Option<usize>,
    /// Most tenants with their own series.
    pub max_tenants: Option<usize>,
    /// `[gateway.tenant]`
    #[serde(default)]
    pub tenant: TenantSection,
    /// `[gateway.limits]`
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[gateway.quality]`
    #[serde(default)]
    pub quality: QualitySection,
    /// `[gateway.tracing]`
    #[serde(default)]
    pub tracing: TracingSection,
    /// `[gateway.sampling]`
    #[serde(default)]
    pub sampling: SamplingSection,
    /// `[gateway.log]`
    #[serde(default)]
    pub log: LogSection,
    /// `[gateway.capture]`
    #[serde(default)]
    pub capture: CaptureSection,
    /// `[[gateway.upstream]]`
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamSection>,
}

/// `[gateway.tenant]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    /// Header naming the tenant.
    pub header: Option<String>,
    /// Tenant of requests that name none.
    pub default: Option<String>,
    /// API key → tenant.
    #[serde(default)]
    pub api_keys: BTreeMap<String, String>,
}

/// `[gateway.limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body.
    pub max_body_bytes: Option<usize>,
    /// Client header read timeout.
    #[serde(default, deserialize_with = "duration")]
    pub header_timeout: Option<Spanned<Duration>>,
    /// Client body read timeout.
    #[serde(default, deserialize_with = "duration")]
    pub body_timeout: Option<Spanned<Duration>>,
    /// Upstream connect timeout.
    #[serde(default, deserialize_with = "duration")]
    pub connect_timeout: Option<Spanned<Duration>>,
    /// Upstream first-byte timeout (streaming).
    #[serde(default, deserialize_with = "duration")]
    pub first_byte_timeout: Option<Spanned<Duration>>,
    /// Upstream whole-response timeout (non-streaming).
    #[serde(default, deserialize_with = "duration")]
    pub response_timeout: Option<Spanned<Duration>>,
    /// Upstream silence allowed mid-stream.
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Spanned<Duration>>,
    /// Most client connections open at once.
    pub max_connections: Option<usize>,
    /// Listen backlog of the client address.
    pub listen_backlog: Option<u32>,
    /// Idle time of pooled upstream connections.
    #[serde(default, deserialize_with = "duration")]
    pub upstream_pool_idle_timeout: Option<Spanned<Duration>>,
}

/// `[gateway.quality]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySection {
    /// Refusal phrases.
    pub refusal_phrases: Option<Vec<String>>,
    /// Short-response threshold in characters.
    pub short_response_chars: Option<usize>,
}

/// `[gateway.tracing]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSection {
    /// OTLP endpoint.
    pub endpoint: Option<Spanned<String>>,
    /// `http` (HTTP/protobuf) or `grpc`.
    pub protocol: Option<ProtocolName>,
    /// `service.name`.
    pub service_name: Option<String>,
    /// Export queue bound, in traces.
    pub queue_traces: Option<usize>,
    /// Timeout of one export call.
    #[serde(default, deserialize_with = "duration")]
    pub export_timeout: Option<Spanned<Duration>>,
}

/// `protocol = "http" | "grpc"`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    /// HTTP/protobuf.
    Http,
    /// gRPC (h2c).
    Grpc,
}

/// `[gateway.sampling]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    /// Keep every error.
    pub errors: Option<bool>,
    /// Keep TTFT at or above this; `"off"` disables.
    pub slow_ttft: Option<Spanned<String>>,
    /// Keep every request of these tenants.
    pub tenants: Option<Vec<String>>,
    /// Baseline percentage.
    pub baseline_percent: Option<Spanned<f64>>,
}

/// `[gateway.log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `stdout`, `off` or a file path.
    pub output: Option<String>,
    /// Rotate the file at this size.
    pub max_bytes: Option<u64>,
    /// Rotated files kept.
    pub keep: Option<usize>,
}

/// `[gateway.capture]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSection {
    /// Capture prompts and completions (scrubbed).
    #[serde(default)]
    pub enabled: bool,
    /// Folder of capture files.
    pub dir: Option<PathBuf>,
    /// Delete capture files older than this.
    #[serde(default, deserialize_with = "duration")]
    pub retention: Option<Spanned<Duration>>,
    /// Extra regular expressions to redact.
    #[serde(default)]
    pub extra_patterns: Vec<Spanned<String>>,
    /// Bytes kept of prompt and of completion.
    pub max_bytes: Option<usize>,
}

/// `[[gateway.upstream]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// Name.
    pub name: Spanned<String>,
    /// Base URL.
    pub url: Spanned<String>,
    /// Models served (empty: catch-all).
    #[serde(default)]
    pub models: Vec<String>,
    /// Engine kind.
    pub engine: Option<String>,
    /// GPUs it runs on.
    #[serde(default)]
    pub gpus: Vec<String>,
}

/// Where the admin address is by default.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9465";
/// Where clients connect by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn at<T>(path: &Path, text: &str, s: &Spanned<T>, message: String, fix: &str) -> ConfigError {
    ConfigError::at(path, text, Some(s.span()), message, fix.to_string())
}

impl GatewaySection {
    /// The gateway settings this section describes (upstreams may be empty: the command
    /// line adds them).
    pub fn resolve(&self, path: &Path, text: &str) -> Result<GatewayConfig, ConfigError> {
        let addr = |v: &Option<Spanned<String>>, default: &str| match v {
            Some(s) => s.get_ref().parse().map_err(|e| {
                at(
                    path,
                    text,
                    s,
                    format!("invalid address {:?}: {e}", s.get_ref()),
                    "write host:port, e.g. \"127.0.0.1:8080\"",
                )
            }),
            None => Ok(default.parse().expect("default address")),
        };
        let mut ups = Vec::new();
        for u in &self.upstreams {
            let c = UpstreamConfig {
                name: u.name.get_ref().clone(),
                url: u.url.get_ref().clone(),
                models: u.models.clone(),
                engine: u
                    .engine
                    .clone()
                    .unwrap_or_else(|| "openai_compatible".to_string()),
                gpus: u.gpus.clone(),
            };
            if let Err(e) = gateway::route::Routes::new(std::slice::from_ref(&c)) {
                return Err(at(
                    path,
                    text,
                    &u.url,
                    e,
                    "give an http://host:port base URL",
                ));
            }
            if ups.iter().any(|o: &UpstreamConfig| o.name == c.name) {
                return Err(at(
                    path,
                    text,
                    &u.name,
                    format!("upstream name {:?} is used twice", c.name),
                    "give every [[gateway.upstream]] its own name",
                ));
            }
            ups.push(c);
        }
        let mut c = GatewayConfig::new(addr(&self.listen, DEFAULT_LISTEN)?, ups);
        c.admin = Some(addr(&self.admin, DEFAULT_ADMIN)?);
        if let Some(v) = self.inject_usage {
            c.inject_usage = v;
        }
        if let Some(v) = self.max_series {
            c.max_series = v;
        }
        if let Some(v) = self.max_tenants {
            c.max_tenants = v;
        }
        let t = &self.tenant;
        c.tenant.header = t.header.clone();
        if let Some(d) = &t.default {
            c.tenant.default = d.clone();
        }
        c.tenant.api_keys = t.api_keys.clone().into_iter().collect();

        let l = &self.limits;
        let d = |v: &Option<Spanned<Duration>>, default: Duration| {
            v.as_ref().map_or(default, |s| *s.get_ref())
        };
        let lim = &mut c.limits;
        if let Some(v) = l.max_body_bytes {
            lim.max_body_bytes = v;
        }
        lim.header_timeout = d(&l.header_timeout, lim.header_timeout);
        lim.body_timeout = d(&l.body_timeout, lim.body_timeout);
        lim.connect_timeout = d(&l.connect_timeout, lim.connect_timeout);
        lim.first_byte_timeout = d(&l.first_byte_timeout, lim.first_byte_timeout);
        lim.response_timeout = d(&l.response_timeout, lim.response_timeout);
        lim.idle_timeout = d(&l.idle_timeout, lim.idle_timeout);
        lim.upstream_pool_idle_timeout = d(
            &l.upstream_pool_idle_timeout,
            lim.upstream_pool_idle_timeout,
        );
        if let Some(v) = l.max_connections {
            lim.max_connections = v;
        }
        if let Some(v) = l.listen_backlog {
            lim.listen_backlog = v;
        }

        if let Some(p) = &self.quality.refusal_phrases {
            c.quality.refusal_phrases = p.clone();
        }
        if let Some(n) = self.quality.short_response_chars {
            c.quality.short_response_chars = n;
        }

        let tr = &self.tracing;
        if let Some(e) = &tr.endpoint {
            if !(e.get_ref().starts_with("http://") || e.get_ref().starts_with("https://")) {
                return Err(at(
                    path,
                    text,
                    e,
                    format!("OTLP endpoint {:?} is not an http(s) URL", e.get_ref()),
                    "write e.g. \"http://127.0.0.1:4318/v1/traces\" (http) or \"http://127.0.0.1:4317\" (grpc)",
                ));
            }
            c.tracing.endpoint = Some(e.get_ref().clone());
        }
        if let Some(p) = tr.protocol {
            c.tracing.protocol = match p {
                ProtocolName::Http => OtlpProtocol::HttpProtobuf,
                ProtocolName::Grpc => OtlpProtocol::Grpc,
            };
        }
        if let Some(s) = &tr.service_name {
            c.tracing.service_name = s.clone();
        }
        if let Some(q) = tr.queue_traces {
            c.tracing.queue_traces = q;
        }
        c.tracing.export_timeout = d(&tr.export_timeout, c.tracing.export_timeout);

        let s = &self.sampling;
        let sp = &mut c.tracing.sampling;
        if let Some(e) = s.errors {
            sp.errors = e;
        }
        if let Some(t) = &s.slow_ttft {
            sp.slow_ttft = if t.get_ref() == "off" {
                None
            } else {
                Some(humantime::parse_duration(t.get_ref()).map_err(|e| {
                    at(
                        path,
                        text,
                        t,
                        format!("invalid duration {:?}: {e}", t.get_ref()),
                        "write a duration like \"2s\", or \"off\"",
                    )
                })?)
            };
        }
        if let Some(t) = &s.tenants {
            sp.tenants = t.clone();
        }
        if let Some(p) = &s.baseline_percent {
            let v = *p.get_ref();
            if !(0.0..=100.0).contains(&v) {
                return Err(at(
                    path,
                    text,
                    p,
                    format!("baseline_percent {v} is outside 0..100"),
                    "give a percentage between 0 and 100",
                ));
            }
            sp.baseline_percent = v;
        }

        c.log.output = match self.log.output.as_deref() {
            None | Some("stdout") => LogOutput::Stdout,
            Some("off") => LogOutput::Off,
            Some(file) => LogOutput::File {
                path: PathBuf::from(file),
                max_bytes: self.log.max_bytes.unwrap_or(100 << 20),
                keep: self.log.keep.unwrap_or(5),
            },
        };

        let cap = &self.capture;
        if cap.enabled {
            for p in &cap.extra_patterns {
                if let Err(e) =
                    gateway::log::scrub::Scrubber::new(std::slice::from_ref(p.get_ref()))
                {
                    return Err(at(
                        path,
                        text,
                        p,
                        e,
                        "write a Rust regex (https://docs.rs/regex syntax)",
                    ));
                }
            }
            c.capture = Some(CaptureConfig {
                dir: cap
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("strata-capture")),
                retention: d(&cap.retention, Duration::from_secs(24 * 3600)),
                extra_patterns: cap
                    .extra_patterns
                    .iter()
                    .map(|p| p.get_ref().clone())
                    .collect(),
                max_bytes: cap.max_bytes.unwrap_or(64 << 10),
            });
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EXAMPLE, parse};
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn the_example_gateway_section_resolves() {
        let c = parse(Path::new("strata.example.toml"), EXAMPLE).expect("example is valid");
        let g = c
            .gateway
            .resolve(Path::new("strata.example.toml"), EXAMPLE)
            .unwrap();
        assert_eq!(g.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(g.upstreams.len(), 2);
        assert_eq!(g.upstreams[0].models, ["meta-llama/Llama-3.1-8B-Instruct"]);
        assert_eq!(g.limits.response_timeout, Duration::from_secs(600));
        assert_eq!(g.tracing.sampling.slow_ttft, Some(Duration::from_secs(2)));
        assert_eq!(g.tracing.sampling.tenants, ["enterprise_a", "enterprise_b"]);
        assert!(g.capture.is_none(), "capture is off by default");
        assert_eq!(g.tenant.header.as_deref(), Some("x-tenant"));
    }

    #[test]
    fn gateway_mistakes_are_located() {
        let cases = [
            (
                "[gateway]\nlisten_addr = \"x\"\n",
                "s.toml:2:1",
                "unknown field `listen_addr`",
            ),
            (
                "[gateway.limits]\nidle_timeout = \"soon\"\n",
                "s.toml:2:16",
                "duration",
            ),
            (
                "[gateway]\nlisten = \"nowhere\"\n",
                "s.toml:2:10",
                "invalid address",
            ),
            (
                "[[gateway.upstream]]\nname = \"a\"\nurl = \"https://x:1\"\n",
                "s.toml:3:7",
                "only http://",
            ),
            (
                "[gateway.sampling]\nbaseline_percent = 150.0\n",
                "s.toml:2:20",
                "outside 0..100",
            ),
            (
                "[gateway.sampling]\nslow_ttft = \"fast\"\n",
                "s.toml:2:13",
                "invalid duration",
            ),
            (
                "[gateway.capture]\nenabled = true\nextra_patterns = [\"(\"]\n",
                "s.toml:3:19",
                "capture pattern",
            ),
            (
                "[gateway.tracing]\nprotocol = \"thrift\"\n",
                "s.toml:2:12",
                "unknown variant",
            ),
        ];
        super::super::assert_located_errors(&cases);
    }
}
