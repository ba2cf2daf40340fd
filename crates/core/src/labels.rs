//! Label names: which are valid, and which are refused everywhere because they are per
//! request (they belong to traces and logs; on a metric they make one series per request).

/// Labels that never go on a metric, in their canonical spelling.
pub const FORBIDDEN: [&str; 3] = ["request_id", "user_id", "session_id"];

/// Whether `s` is a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Whether `s` is a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// The forbidden label `name` spells, if any: matched without regard to case, separators
/// (`_`, `-`, `.`) and the `exported_` prefix a scraper adds on clashes, so `Request_ID`,
/// `requestid`, `request-id` and `exported_request_id` are all caught.
pub fn forbidden(name: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let mut n = squash(name);
    while let Some(rest) = n.strip_prefix("exported") {
        n = rest.to_string();
    }
    FORBIDDEN.iter().copied().find(|f| squash(f) == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus() {
        for ok in ["a", "_a", "model", "gpu_uuid", "A9"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a:b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_metric_name("llm:ttft_seconds") && !valid_metric_name("1x"));
    }

    #[test]
    fn per_request_labels_are_caught_in_every_spelling() {
        for (spelling, canonical) in [
            ("request_id", "request_id"),
            ("Request_ID", "request_id"),
            ("requestid", "request_id"),
            ("request-id", "request_id"),
            ("exported_request_id", "request_id"),
            ("exported_exported_user_id", "user_id"),
            ("SessionId", "session_id"),
        ] {
            assert_eq!(forbidden(spelling), Some(canonical), "{spelling}");
        }
        for fine in ["model", "request", "user", "requests_total", "tenant", "id"] {
            assert_eq!(forbidden(fine), None, "{fine}");
        }
    }
}
