//! Reading a request body within the size and time limits.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit.
    TooLarge(usize),
    /// Not complete within the body timeout.
    Timeout(Duration),
    /// The client's connection failed while sending it.
    Io(String),
}

/// Reads the whole body, refusing more than `max` bytes or more than `timeout`.
pub async fn read_body(body: Incoming, max: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(BodyError::Timeout(timeout)),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(BodyError::TooLarge(max))
            } else {
                Err(BodyError::Io(e.to_string()))
            }
        }
    }
}

/// `30 s`, `250 ms`: a duration as a person reads it in an error message.
pub fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
