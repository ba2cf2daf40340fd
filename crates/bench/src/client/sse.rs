//! Server-sent events over raw bytes: lines are cut where they lie in each network read,
//! `data:` lines of one event are joined, and an event is handed over on its blank line.
//! Two reused buffers, so the steady state allocates nothing.

/// An incremental `text/event-stream` parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The unfinished line carried over from the previous read.
    partial: Vec<u8>,
    /// The data of the event being assembled.
    data: Vec<u8>,
    /// Whether the event being assembled has a `data` field (it may be empty).
    has_data: bool,
}

impl SseParser {
    /// Feeds one network read; `on_event` gets the data of every event it completes.
    pub fn feed(&mut self, mut chunk: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&chunk[..i]);
                    self.line(&line, on_event);
                    line.clear();
                    self.partial = line;
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(chunk);
                    return;
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            self.line(&chunk[..i], on_event);
            chunk = &chunk[i + 1..];
        }
        self.partial.extend_from_slice(chunk);
    }

    /// Ends the stream: an event not closed by a blank line is still handed over (some
    /// servers end the body right after the last `data:` line).
    pub fn finish(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, on_event);
        }
        self.line(b"", on_event);
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(&self.data);
                self.data.clear();
                self.has_data = false;
            }
            return;
        }
        if let Some(v) = line.strip_prefix(b"data:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(v);
            self.has_data = true;
        }
        // Comments (`:`), `event:`, `id:` and `retry:` carry nothing a latency needs.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(reads: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        let mut f = |e: &[u8]| out.push(String::from_utf8_lossy(e).into_owned());
        for r in reads {
            p.feed(r, &mut f);
        }
        p.finish(&mut f);
        out
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body = b"data: {\"a\":1}\n\n: keep-alive\n\ndata:{\"b\":2}\r\n\r\nevent: x\ndata: l1\ndata: l2\n\ndata: [DONE]\n\n";
        let whole = events(&[body]);
        assert_eq!(whole, ["{\"a\":1}", "{\"b\":2}", "l1\nl2", "[DONE]"]);
        for cut in 1..body.len() {
            for cut2 in cut..body.len() {
                let parts = [&body[..cut], &body[cut..cut2], &body[cut2..]];
                assert_eq!(events(&parts), whole, "cut at {cut},{cut2}");
            }
        }
    }

    #[test]
    fn unterminated_last_event_is_kept_and_empty_events_dropped() {
        assert_eq!(events(&[b"\n\ndata: x"]), ["x"]);
        assert_eq!(events(&[b"data:\n\n"]), [""]);
        assert!(events(&[b"\n\n: only a comment\n\n"]).is_empty());
    }
}
