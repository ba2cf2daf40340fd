//! Request parameters from the query string and, for POST, the form body; times as RFC 3339
//! or Unix seconds, steps as durations or seconds, as Prometheus parses them.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use super::ApiError;

/// Decoded `name=value` pairs of one request.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Query string pairs, then form body pairs when the body is form-encoded.
    pub fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        } else if !body.is_empty() {
            return Err(ApiError::bad(
                "POST bodies must be application/x-www-form-urlencoded",
            ));
        }
        Ok(Params(pairs))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `name`, or Prometheus's error for a missing parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad(format!("invalid parameter \"{name}\": missing")))
    }

    /// `name` as a time in ms, if given.
    pub fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_time(v)
                    .map_err(|e| ApiError::bad(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }

    /// `start`/`end` for metadata endpoints; the whole time range when absent.
    pub fn window(&self) -> Result<(i64, i64), ApiError> {
        Ok((
            self.time("start")?.unwrap_or(i64::MIN / 2),
            self.time("end")?.unwrap_or(i64::MAX / 2),
        ))
    }

    /// `step` in ms (a duration like `15s` or seconds like `15` / `0.5`), positive.
    pub fn step(&self) -> Result<i64, ApiError> {
        let ms = self.duration(self.required("step")?, "step")?;
        if ms <= 0 {
            return Err(ApiError::bad(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        Ok(ms)
    }

    /// `timeout` in ms, if given. The engine's own limit still applies; like Prometheus,
    /// a malformed value is refused.
    pub fn timeout(&self) -> Result<Option<i64>, ApiError> {
        self.get("timeout")
            .filter(|v| !v.is_empty())
            .map(|v| self.duration(v, "timeout"))
            .transpose()
    }

    /// A duration parameter as Prometheus's API parses it: float seconds, or a PromQL
    /// duration (`1h30m`, `15s`, `500ms`; whole numbers only, units in order).
    fn duration(&self, raw: &str, name: &str) -> Result<i64, ApiError> {
        let bad = || {
            ApiError::bad(format!(
                "invalid parameter \"{name}\": cannot parse {raw:?} to a valid duration"
            ))
        };
        match raw.parse::<f64>() {
            Ok(s) if s.is_finite() && (s * 1000.0).abs() < i64::MAX as f64 => {
                Ok((s * 1000.0).round() as i64)
            }
            Ok(_) => Err(bad()),
            Err(_) => promql_duration_ms(raw).ok_or_else(bad),
        }
    }
}

/// A PromQL duration (`[0-9]+` followed by `y w d h m s ms`, each unit at most once, in that
/// order) in ms, as Prometheus's `model.ParseDuration` reads it.
fn promql_duration_ms(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s == "0" {
        return Some(0);
    }
    let (mut rest, mut total, mut next) = (s, 0i64, 0);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let (i, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .skip(next)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        total = total.checked_add(n.checked_mul(*ms)?)?;
        rest = &rest[unit.len()..];
        next = i + 1;
    }
    Some(total)
}

/// Unix seconds (with fraction) or RFC 3339.
fn parse_time(v: &str) -> Result<i64, String> {
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    humantime::parse_rfc3339_weak(v)
        .map_err(|_| format!("cannot parse {v:?} to a valid timestamp"))
        .and_then(|t| match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).map_err(|_| "timestamp out of range".to_string()),
            Err(e) => Ok(-(e.duration().as_millis() as i64)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_steps_parse_like_prometheus() {
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert!(parse_time("yesterday").is_err());
        let p = Params(vec![("step".into(), "15s".into())]);
        assert_eq!(p.step().ok(), Some(15_000));
        let p = Params(vec![("step".into(), "0.5".into())]);
        assert_eq!(p.step().ok(), Some(500));
        let p = Params(vec![("step".into(), "0".into())]);
        assert!(p.step().is_err());
        assert_eq!(promql_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(promql_duration_ms("1m500ms"), Some(60_500));
        assert_eq!(promql_duration_ms("2w"), Some(14 * 86_400_000));
        // Prometheus refuses fractions, spaces and units out of order.
        for bad in ["0.5m", "1m 30s", "30s1m", "1mm", "", "s", "1x"] {
            assert_eq!(promql_duration_ms(bad), None, "{bad}");
        }
        let p = Params(vec![("timeout".into(), "soon".into())]);
        assert!(p.timeout().is_err());
    }
}
