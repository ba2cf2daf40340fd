//! Which of the two text formats a body is in, and content negotiation.

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Prometheus,
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for a body written in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format of a response body from its `Content-Type` (missing or unknown = 0.0.4 text,
    /// as Prometheus assumes).
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type {
            Some(ct) if ct.trim_start().starts_with("application/openmetrics-text") => {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    /// The format to serve to a scraper that sent this `Accept` header: OpenMetrics (with
    /// exemplars) only when the client asks for it with a non-zero quality that is not lower
    /// than what it gives plain text; classic text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut best_om = 0.0f32;
        let mut best_text = 0.0f32;
        for part in accept.split(',') {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            for p in params {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            match media {
                "application/openmetrics-text" => best_om = best_om.max(q),
                "text/plain" | "*/*" | "text/*" => best_text = best_text.max(q),
                _ => {}
            }
        }
        if best_om > 0.0 && best_om >= best_text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_serves_openmetrics_only_when_asked() {
        // Prometheus' own scrape Accept header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        let prefers_text = "application/openmetrics-text;q=0.2,text/plain;q=0.9";
        assert_eq!(Format::negotiate(Some(prefers_text)), Format::Prometheus);
        let refuses = "application/openmetrics-text;q=0,text/plain";
        assert_eq!(Format::negotiate(Some(refuses)), Format::Prometheus);
    }

    #[test]
    fn content_type_round_trips() {
        for f in [Format::Prometheus, Format::OpenMetrics] {
            assert_eq!(Format::from_content_type(Some(f.content_type())), f);
        }
        assert_eq!(Format::from_content_type(None), Format::Prometheus);
    }
}
