//! The last NCCL events with their log lines, kept in memory as evidence: the UI and the
//! findings show the lines that made a counter move, not only the count.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::nccl::Event;
use crate::point::LabelSet;

/// One kept event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoggedEvent {
    /// When the collector read it (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Where it was read: `namespace`/`pod`/`container`, or `source` (a path, `-`).
    pub labels: LabelSet,
    /// The parsed event.
    pub event: Event,
    /// The log line as read (CRI framing removed).
    pub line: String,
}

/// A bounded ring of the latest events, shared between the collector (writer) and readers.
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Mutex<VecDeque<LoggedEvent>>>,
    capacity: usize,
}

impl EventLog {
    /// Keeps at most `capacity` events (at least one).
    pub fn new(capacity: usize) -> EventLog {
        let capacity = capacity.max(1);
        EventLog {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
            capacity,
        }
    }

    /// Adds an event, dropping the oldest when full.
    pub fn push(&self, event: LoggedEvent) {
        let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The kept events, oldest first.
    pub fn recent(&self) -> Vec<LoggedEvent> {
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::nccl::{Kind, Level};

    fn logged(i: i64) -> LoggedEvent {
        LoggedEvent {
            timestamp_ms: i,
            labels: Vec::new(),
            event: Event {
                level: Level::Warn,
                kind: Kind::Other,
                host: None,
                pid: None,
                cuda_dev: None,
                rank: None,
                message: format!("m{i}"),
            },
            line: format!("l{i}"),
        }
    }

    #[test]
    fn keeps_the_latest_events_in_order() {
        let log = EventLog::new(3);
        let reader = log.clone();
        for i in 0..5 {
            log.push(logged(i));
        }
        let got: Vec<i64> = reader.recent().iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(got, [2, 3, 4]);
    }
}
