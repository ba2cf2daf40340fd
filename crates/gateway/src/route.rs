//! Which upstream serves a request: the request's `model` picks the upstreams configured
//! for it (or the catch-all ones); among several, the one with the fewest requests in
//! flight wins (ties rotate).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::{Authority, Scheme};

use crate::config::UpstreamConfig;

/// One engine behind the gateway.
#[derive(Debug)]
pub struct Upstream {
    /// Name for labels, logs and messages.
    pub name: String,
    /// Engine kind (`gen_ai.provider.name`).
    pub engine: String,
    /// GPUs it runs on.
    pub gpus: Vec<String>,
    /// `http`.
    pub scheme: Scheme,
    /// `host:port`.
    pub authority: Authority,
    /// Path prefix of the base URL, without a trailing `/`.
    pub base_path: String,
    /// The base URL as configured.
    pub url: String,
    in_flight: AtomicUsize,
}

impl Upstream {
    /// Requests now in flight to this upstream.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The URI of `path_and_query` on this upstream.
    pub fn uri(&self, path_and_query: &str) -> Result<http::Uri, http::Error> {
        let pq = if self.base_path.is_empty() {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.base_path)
        };
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

/// Counts a request in flight on an upstream until dropped.
#[derive(Debug)]
pub struct InFlight(pub Arc<Upstream>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why no upstream was picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoute {
    /// The model asked for.
    pub model: String,
    /// The models that are served.
    pub served: Vec<String>,
}

/// The routing table.
#[derive(Debug)]
pub struct Routes {
    upstreams: Vec<Arc<Upstream>>,
    by_model: HashMap<String, Vec<usize>>,
    catch_all: Vec<usize>,
    rotate: AtomicUsize,
}

impl Routes {
    /// Builds the table; bad URLs and duplicate names are errors naming the upstream.
    pub fn new(cfgs: &[UpstreamConfig]) -> Result<Routes, String> {
        if cfgs.is_empty() {
            return Err("no upstream: give at least one engine URL".into());
        }
        let mut upstreams = Vec::new();
        let mut by_model: HashMap<String, Vec<usize>> = HashMap::new();
        let mut catch_all = Vec::new();
        for (i, c) in cfgs.iter().enumerate() {
            if cfgs[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("upstream name {:?} is used twice", c.name));
            }
            let uri: http::Uri = c
                .url
                .parse()
                .map_err(|e| format!("upstream {}: URL {:?}: {e}", c.name, c.url))?;
            let scheme = uri.scheme().cloned().ok_or_else(|| {
                format!(
                    "upstream {}: URL {:?} has no scheme (write http://host:port)",
                    c.name, c.url
                )
            })?;
            if scheme != Scheme::HTTP {
                return Err(format!(
                    "upstream {}: only http:// upstreams are supported (got {:?}); keep engines on a private network or terminate TLS in front of them",
                    c.name, c.url
                ));
            }
            let authority = uri
                .authority()
                .cloned()
                .ok_or_else(|| format!("upstream {}: URL {:?} has no host", c.name, c.url))?;
            let base_path = uri.path().trim_end_matches('/').to_string();
            for m in &c.models {
                by_model.entry(m.clone()).or_default().push(i);
            }
            if c.models.is_empty() {
                catch_all.push(i);
            }
            upstreams.push(Arc::new(Upstream {
                name: c.name.clone(),
                engine: c.engine.clone(),
                gpus: c.gpus.clone(),
                scheme,
                authority,
                base_path,
                url: c.url.clone(),
                in_flight: AtomicUsize::new(0),
            }));
        }
        Ok(Routes {
            upstreams,
            by_model,
            catch_all,
            rotate: AtomicUsize::new(0),
        })
    }

    /// All upstreams, in configuration order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Picks the upstream for `model` (none: the request names no model, e.g. TGI's
    /// `/generate`) and counts the request in flight on it.
    pub fn pick(&self, model: Option<&str>) -> Result<InFlight, NoRoute> {
        let candidates: &[usize] = match model.and_then(|m| self.by_model.get(m)) {
            Some(c) => c,
            None if !self.catch_all.is_empty() => &self.catch_all,
            None if model.is_none() => &[],
            None => {
                let mut served: Vec<String> = self.by_model.keys().cloned().collect();
                served.sort();
                return Err(NoRoute {
                    model: model.unwrap_or_default().to_string(),
                    served,
                });
            }
        };
        let all: Vec<usize>;
        let candidates = if candidates.is_empty() {
            all = (0..self.upstreams.len()).collect();
            &all[..]
        } else {
            candidates
        };
        let start = self.rotate.fetch_add(1, Ordering::Relaxed);
        let n = candidates.len();
        let mut best = candidates[start % n];
        let mut best_load = self.upstreams[best].in_flight();
        for k in 1..n {
            let i = candidates[(start + k) % n];
            let load = self.upstreams[i].in_flight();
            if load < best_load {
                best = i;
                best_load = load;
            }
        }
        let u = self.upstreams[best].clone();
        u.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, models: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            models: models.iter().map(|m| m.to_string()).collect(),
            ..UpstreamConfig::new(name, "http://127.0.0.1:1/base/")
        }
    }

    #[test]
    fn models_route_and_least_in_flight_balances() {
        let r = Routes::new(&[up("a", &["m1"]), up("b", &["m1"]), up("c", &["m2"])]).unwrap();
        let x = r.pick(Some("m1")).unwrap();
        let y = r.pick(Some("m1")).unwrap();
        assert_ne!(
            x.0.name, y.0.name,
            "second request goes to the idle upstream"
        );
        drop(y);
        let z = r.pick(Some("m1")).unwrap();
        assert_ne!(z.0.name, x.0.name);
        assert_eq!(r.pick(Some("m2")).unwrap().0.name, "c");
        let e = r.pick(Some("m3")).unwrap_err();
        assert_eq!(e.served, vec!["m1".to_string(), "m2".to_string()]);
        assert_eq!(
            x.0.uri("/v1/chat/completions?x=1").unwrap().to_string(),
            "http://127.0.0.1:1/base/v1/chat/completions?x=1"
        );
    }

    #[test]
    fn catch_all_takes_unknown_models_and_bad_urls_are_named() {
        let r = Routes::new(&[up("a", &["m1"]), up("any", &[])]).unwrap();
        assert_eq!(r.pick(Some("zz")).unwrap().0.name, "any");
        assert_eq!(r.pick(None).unwrap().0.name, "any");
        let e = Routes::new(&[UpstreamConfig::new("s", "https://x:1")]).unwrap_err();
        assert!(e.contains("only http://"), "{e}");
        let e = Routes::new(&[UpstreamConfig::new("s", "x:1")]).unwrap_err();
        assert!(e.contains("upstream s"), "{e}");
    }
}
