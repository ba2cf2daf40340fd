//! Query results and errors, and their Prometheus JSON shapes.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::labels::Labels;

/// The result of a query, in Prometheus' four shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number at a time.
    Scalar {
        /// Evaluation time (ms).
        t_ms: i64,
        /// The number.
        v: f64,
    },
    /// A string literal's value.
    String {
        /// Evaluation time (ms).
        t_ms: i64,
        /// The string.
        v: String,
    },
    /// One sample per series (instant query).
    Vector(Vec<InstantSample>),
    /// Points per series (range query, or an instant query of a range selector).
    Matrix(Vec<Series>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// Series labels.
    pub labels: Labels,
    /// Evaluation time (ms).
    pub t_ms: i64,
    /// Value.
    pub v: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: Labels,
    /// `(t_ms, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// Why a query failed, mapped to Prometheus' `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The query does not parse or is not valid for this call (HTTP 400).
    BadData,
    /// Evaluation failed (e.g. many-to-many matching; HTTP 422).
    Execution,
    /// The query ran past the engine's timeout (HTTP 503).
    Timeout,
    /// The caller canceled the query through its [`super::Cancel`] token (client went away,
    /// shutdown; HTTP 499 like Prometheus).
    Canceled,
    /// The query would hold more samples in memory at once than `max_samples` allows
    /// (HTTP 422, `errorType` "execution" like Prometheus).
    TooManySamples,
}

/// A query error with a message that says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Category (selects the HTTP status and `errorType`).
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
}

impl QueryError {
    pub(crate) fn bad(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }

    pub(crate) fn exec(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorKind::Execution,
            message: message.into(),
        }
    }

    pub(crate) fn timeout(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorKind::Timeout,
            message: message.into(),
        }
    }

    pub(crate) fn canceled(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorKind::Canceled,
            message: message.into(),
        }
    }

    pub(crate) fn too_many_samples(message: impl Into<String>) -> QueryError {
        QueryError {
            kind: ErrorKind::TooManySamples,
            message: message.into(),
        }
    }

    /// Prometheus' `errorType` string.
    pub fn error_type(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution | ErrorKind::TooManySamples => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
        }
    }

    /// The HTTP status Prometheus answers this error with (400, 422, 503, or 499 for a
    /// query canceled because the client went away), so API layers need no match of their own.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            ErrorKind::BadData => 400,
            ErrorKind::Execution | ErrorKind::TooManySamples => 422,
            ErrorKind::Timeout => 503,
            ErrorKind::Canceled => 499,
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message)
    }
}

impl std::error::Error for QueryError {}

impl Serialize for QueryError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("status", "error")?;
        m.serialize_entry("errorType", self.error_type())?;
        m.serialize_entry("error", &self.message)?;
        m.end()
    }
}

/// Formats a float the way Prometheus does (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// A sample value as the query API writes it (Prometheus's `jsonutil.MarshalValue`): like
/// [`format_float`], but in exponent form (`1e+21`, `3e-07`) below 1e-6 and from 1e21 up,
/// where Go switches from `'f'` to `'e'`.
fn json_float(v: f64) -> String {
    let abs = v.abs();
    if v.is_finite() && abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format_float(v)
    }
}

/// `[<unix seconds>, "<value>"]`, seconds written without a fraction when whole.
struct Point<'a>(i64, &'a str);

impl Serialize for Point<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        if self.0 % 1000 == 0 {
            seq.serialize_element(&(self.0 / 1000))?;
        } else {
            seq.serialize_element(&(self.0 as f64 / 1000.0))?;
        }
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

struct VectorElem<'a>(&'a InstantSample);

impl Serialize for VectorElem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("metric", &self.0.labels)?;
        m.serialize_entry("value", &Point(self.0.t_ms, &json_float(self.0.v)))?;
        m.end()
    }
}

struct MatrixElem<'a>(&'a Series);

impl Serialize for MatrixElem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("metric", &self.0.labels)?;
        let values: Vec<(i64, String)> = self
            .0
            .points
            .iter()
            .map(|(t, v)| (*t, json_float(*v)))
            .collect();
        let points: Vec<Point> = values.iter().map(|(t, v)| Point(*t, v)).collect();
        m.serialize_entry("values", &points)?;
        m.end()
    }
}

/// Serialises as the `data` object of a Prometheus query response.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self {
            Value::Scalar { t_ms, v } => {
                m.serialize_entry("resultType", "scalar")?;
                m.serialize_entry("result", &Point(*t_ms, &json_float(*v)))?;
            }
            Value::String { t_ms, v } => {
                m.serialize_entry("resultType", "string")?;
                m.serialize_entry("result", &Point(*t_ms, v))?;
            }
            Value::Vector(samples) => {
                m.serialize_entry("resultType", "vector")?;
                m.serialize_entry(
                    "result",
                    &samples.iter().map(VectorElem).collect::<Vec<_>>(),
                )?;
            }
            Value::Matrix(series) => {
                m.serialize_entry("resultType", "matrix")?;
                m.serialize_entry("result", &series.iter().map(MatrixElem).collect::<Vec<_>>())?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_match_prometheus() {
        let v = Value::Vector(vec![InstantSample {
            labels: Labels::from_pairs(&[("__name__", "up"), ("job", "x")]),
            t_ms: 1_700_000_000_123,
            v: 1.5,
        }]);
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"x"},"value":[1700000000.123,"1.5"]}]}"#
        );
        let m = Value::Matrix(vec![Series {
            labels: Labels::default(),
            points: vec![(1000, f64::NAN), (2000, f64::NEG_INFINITY), (3000, 1e-7)],
        }]);
        assert_eq!(
            serde_json::to_string(&m).unwrap_or_default(),
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"NaN"],[2,"-Inf"],[3,"1e-07"]]}]}"#
        );
        let e = QueryError::bad("parse error");
        assert_eq!(
            serde_json::to_string(&e).unwrap_or_default(),
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#
        );
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
        // What Prometheus 2.42 answers for the same values (api_parity test in strata).
        assert_eq!(json_float(1e21 + 7.0), "1e+21");
        assert_eq!(json_float(-1.5e300), "-1.5e+300");
        assert_eq!(json_float(3e-7), "3e-07");
        assert_eq!(json_float(1e-6), "0.000001");
        assert_eq!(json_float(123456789.5), "123456789.5");
        assert_eq!(json_float(0.0), "0");
        assert_eq!(
            format_float(1e21),
            "1000000000000000000000",
            "count_values keeps 'f'"
        );
    }
}
