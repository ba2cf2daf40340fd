//! The remote_write 1.0 messages (`prometheus/prompb/{remote,types}.proto`), declared with
//! `prost` derives so no `protoc` is needed, and the snappy-compressed request body.

use std::collections::BTreeMap;

use prost::Message;
use strata_core::Point;

/// `prometheus.WriteRequest`: the body of one remote_write POST.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series of this request, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: one label set and its samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value (staleness markers are the special NaN and are sent as such).
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A series in a batch: metric name and its sorted labels.
type SeriesKey<'a> = (&'a str, &'a [(String, String)]);

/// Groups `points` into series (label sets sorted, `__name__` first by sort order) with
/// samples in time order, as receivers expect.
pub fn write_request(points: &[Point]) -> WriteRequest {
    let mut series: BTreeMap<SeriesKey<'_>, Vec<Sample>> = BTreeMap::new();
    for p in points {
        series
            .entry((p.name.as_str(), p.labels.as_slice()))
            .or_default()
            .push(Sample {
                value: p.value,
                timestamp: p.timestamp_ms,
            });
    }
    let timeseries = series
        .into_iter()
        .map(|((name, labels), mut samples)| {
            samples.sort_by_key(|s| s.timestamp);
            let mut all: Vec<Label> = labels
                .iter()
                .filter(|(k, _)| k != "__name__")
                .map(|(k, v)| Label {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect();
            all.push(Label {
                name: "__name__".into(),
                value: name.into(),
            });
            all.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels: all,
                samples,
            }
        })
        .collect();
    WriteRequest { timeseries }
}

/// The HTTP body for `points`: the protobuf `WriteRequest`, snappy block-compressed.
pub fn encode_body(points: &[Point]) -> Vec<u8> {
    let raw = write_request(points).encode_to_vec();
    // Block compression of an in-memory buffer only fails for inputs over ~4 GiB, which a
    // batch (bounded by `max_samples_per_send`) never reaches; an empty body would be
    // rejected by the receiver with a 400 and counted, never silently lost.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Decodes a body made by [`encode_body`] (used by tests and by the queue's integrity
/// check).
pub fn decode_body(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("not snappy: {e}"))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| format!("not a WriteRequest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_points_into_sorted_series_and_round_trips() {
        let points = vec![
            Point::new("b", vec![("job".into(), "x".into())], 2.0, 2000),
            Point::new("a", vec![], 1.0, 1000),
            Point::new("b", vec![("job".into(), "x".into())], 1.0, 1000),
        ];
        let req = decode_body(&encode_body(&points)).expect("round trip");
        assert_eq!(req.timeseries.len(), 2);
        let b = &req.timeseries[1];
        let names: Vec<_> = b.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(b.labels[0].value, "b");
        let ts: Vec<_> = b.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(ts, [1000, 2000]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_body(b"\xff\x00garbage").is_err());
    }
}
