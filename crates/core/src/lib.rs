//! What every Strata crate shares, so each concept exists once:
//!
//! - [`Point`]: the one sample type every source produces (scraper, NVML, gateway, rules);
//! - [`stale`]: Prometheus' staleness marker;
//! - [`labels`]: label-name validity and the per-request labels that never go on a metric;
//! - [`now_ms`], [`civil_from_days`]: wall-clock milliseconds and calendar dates;
//! - [`redact_url`]: URLs as they may be printed (no passwords);
//! - [`sync`]: locks that survive a panicked holder;
//! - [`Histogram`]: one cumulative histogram with an exemplar slot per bucket;
//! - [`Query`] / [`Append`]: how the rule engine reads and writes a store without knowing it;
//! - [`rng`]: a small seeded generator, so simulations and workloads replay exactly;
//! - [`Throttle`]: warnings logged at most once per interval per key.
//!
//! No I/O, no dependencies: every crate can use it.
//!
//! ```
//! use strata_core::{Point, labels};
//!
//! let p = Point::new("llm:requests_waiting", vec![("model".into(), "m".into())], 3.0, 0);
//! assert_eq!(p.label("model"), Some("m"));
//! assert!(labels::valid_name("model") && !labels::valid_name("9lives"));
//! assert_eq!(labels::forbidden("Request-ID"), Some("request_id"));
//! assert_eq!(strata_core::redact_url("http://u:pw@h:8000/metrics"), "http://u:***@h:8000/metrics");
//! ```

mod histogram;
pub mod labels;
#[cfg(feature = "net")]
pub mod net;
mod point;
pub mod query;
pub mod rng;
pub mod stale;
pub mod sync;
mod throttle;

pub use histogram::{Bucket, Exemplar, Histogram};
pub use point::{LabelSet, Point};
pub use query::{Append, Query};
pub use throttle::Throttle;

/// `(year, month 1-12, day 1-31)` of the day `days` after 1970-01-01 in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`): the date arithmetic the PromQL
/// date functions and the log timestamps need, without a date crate.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `url` with the password of its user-info replaced by `***` (`http://u:***@host/...`), for
/// every place a URL is printed or logged: config checks, reload answers, scrape errors.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    let password = rest[..at].contains(':');
    format!(
        "{}{user}{}{}",
        &url[..scheme_end],
        if password { ":***" } else { "" },
        &rest[at..]
    )
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        for (given, shown) in [
            (
                "http://u:secret@h:8000/metrics",
                "http://u:***@h:8000/metrics",
            ),
            ("https://u:p@ss@h/", "https://u:***@h/"),
            ("http://token@h/x", "http://token@h/x"),
            ("http://h:8000/a@b", "http://h:8000/a@b"),
            ("http://h:8000/metrics", "http://h:8000/metrics"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
