//! Who a request is for: an API key mapped to a tenant (unknown key → 401 when keys are
//! configured), else a configured header, else the default tenant.

use std::collections::HashMap;

use http::HeaderMap;

use crate::config::TenantConfig;

/// Longest tenant name taken from a header; longer values are cut.
const MAX_TENANT_LEN: usize = 64;

/// Resolves tenants from request headers.
#[derive(Debug, Clone)]
pub struct Tenants {
    header: Option<http::HeaderName>,
    keys: HashMap<String, String>,
    default: String,
}

/// Why a request has no tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantError {
    /// API keys are configured and the request sent none.
    MissingKey,
    /// API keys are configured and the request's key is not one of them.
    UnknownKey,
}

impl Tenants {
    /// From the config; an unusable header name is an error naming it.
    pub fn new(cfg: &TenantConfig) -> Result<Tenants, String> {
        let header = match &cfg.header {
            Some(h) => Some(
                http::HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| format!("tenant header {h:?} is not a valid header name"))?,
            ),
            None => None,
        };
        Ok(Tenants {
            header,
            keys: cfg.api_keys.clone(),
            default: cfg.default.clone(),
        })
    }

    /// The tenant of a request.
    pub fn resolve(&self, headers: &HeaderMap) -> Result<String, TenantError> {
        if !self.keys.is_empty() {
            let key = api_key(headers).ok_or(TenantError::MissingKey)?;
            return self.keys.get(key).cloned().ok_or(TenantError::UnknownKey);
        }
        if let Some(h) = &self.header
            && let Some(v) = headers.get(h).and_then(|v| v.to_str().ok())
        {
            let v = v.trim();
            if !v.is_empty() {
                let end = v
                    .char_indices()
                    .nth(MAX_TENANT_LEN)
                    .map_or(v.len(), |(i, _)| i);
                return Ok(v[..end].to_string());
            }
        }
        Ok(self.default.clone())
    }
}

/// The API key: `Authorization: Bearer KEY`, else `api-key` / `x-api-key`.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(a) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let a = a.trim();
        if a.len() > 7 && a[..7].eq_ignore_ascii_case("bearer ") {
            return Some(a[7..].trim());
        }
    }
    ["api-key", "x-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn keys_win_and_unknown_keys_are_refused() {
        let mut cfg = TenantConfig {
            header: Some("x-tenant".into()),
            ..TenantConfig::default()
        };
        let t = Tenants::new(&cfg).unwrap();
        assert_eq!(
            t.resolve(&headers(&[("x-tenant", "acme")])),
            Ok("acme".into())
        );
        assert_eq!(t.resolve(&headers(&[])), Ok("default".into()));
        cfg.api_keys.insert("sk-1".into(), "enterprise_a".into());
        let t = Tenants::new(&cfg).unwrap();
        assert_eq!(
            t.resolve(&headers(&[
                ("authorization", "Bearer sk-1"),
                ("x-tenant", "x")
            ])),
            Ok("enterprise_a".into())
        );
        assert_eq!(
            t.resolve(&headers(&[("x-api-key", "sk-1")])),
            Ok("enterprise_a".into())
        );
        assert_eq!(
            t.resolve(&headers(&[("authorization", "Bearer nope")])),
            Err(TenantError::UnknownKey)
        );
        assert_eq!(t.resolve(&headers(&[])), Err(TenantError::MissingKey));
    }
}
