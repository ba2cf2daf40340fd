//! The CRI container log format kubelet writes under `/var/log/pods`: one line per chunk,
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`, where `P` marks a partial line the
//! runtime split (it continues on the next `P`/`F` line of the file) and `F` a full one.

/// A line as read from a log file: CRI-framed or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A CRI chunk; `partial` when the line continues on the next chunk.
    Cri {
        /// The runtime split the line here (`P` tag).
        partial: bool,
        /// The content after the tag.
        content: &'a str,
    },
    /// Not CRI-framed: the whole line is the content.
    Plain(&'a str),
}

/// Splits the CRI framing off `line` when it has one.
pub fn unframe(line: &str) -> Framed<'_> {
    let mut parts = line.splitn(4, ' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Framed::Plain(line);
    };
    let looks_like_time = time.len() >= 20
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b'T'
        && time.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    if !looks_like_time || !matches!(stream, "stdout" | "stderr") {
        return Framed::Plain(line);
    }
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Framed::Plain(line),
    };
    Framed::Cri {
        partial,
        content: parts.next().unwrap_or(""),
    }
}

/// Joins CRI partial chunks back into lines; plain lines pass through.
#[derive(Debug, Default)]
pub struct Joiner {
    pending: String,
}

/// A joined line longer than this is cut, so one runaway writer cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

impl Joiner {
    /// Feeds one raw line; returns the complete line once it is whole.
    pub fn push(&mut self, raw: &str) -> Option<String> {
        match unframe(raw) {
            Framed::Plain(line) => {
                if self.pending.is_empty() {
                    Some(line.to_string())
                } else {
                    // A plain line ends a dangling partial chunk: emit what was gathered.
                    let mut out = std::mem::take(&mut self.pending);
                    out.push_str(line);
                    Some(out)
                }
            }
            Framed::Cri { partial, content } => {
                if self.pending.len() + content.len() <= MAX_LINE {
                    self.pending.push_str(content);
                }
                (!partial).then(|| std::mem::take(&mut self.pending))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframes_full_and_partial_chunks() {
        assert_eq!(
            unframe("2025-03-04T10:11:12.123456789Z stderr F node:1:2 [0] NCCL WARN x"),
            Framed::Cri {
                partial: false,
                content: "node:1:2 [0] NCCL WARN x"
            }
        );
        assert_eq!(
            unframe("2025-03-04T10:11:12.1+00:00 stdout P abc"),
            Framed::Cri {
                partial: true,
                content: "abc"
            }
        );
        assert_eq!(
            unframe("node:1:2 [0] NCCL WARN x"),
            Framed::Plain("node:1:2 [0] NCCL WARN x")
        );
        assert_eq!(unframe("2025 stdout F"), Framed::Plain("2025 stdout F"));
    }

    #[test]
    fn joins_partial_chunks_into_one_line() {
        let mut j = Joiner::default();
        assert_eq!(
            j.push("2025-03-04T10:11:12.1Z stdout P node:1:2 [0] NCCL "),
            None
        );
        assert_eq!(
            j.push("2025-03-04T10:11:12.2Z stdout F WARN oops")
                .as_deref(),
            Some("node:1:2 [0] NCCL WARN oops")
        );
        assert_eq!(j.push("plain").as_deref(), Some("plain"));
    }
}
