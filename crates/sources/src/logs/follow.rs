//! Following a log file like `tail -F`: new complete lines on each poll, across rotation by
//! rename (the path gets a new inode: the old file is read to its end first) and by
//! truncation (the file shrinks: reading restarts at its beginning).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// At most this many bytes are read from one file per poll, so a burst cannot stall a
/// collection; the rest is read on the next polls.
const MAX_READ_PER_POLL: u64 = 4 * 1024 * 1024;

/// A line without a newline longer than this is emitted cut (and counted), so a writer that
/// never ends its line cannot exhaust memory.
const MAX_PENDING: usize = 64 * 1024;

/// Where a newly seen file is first read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From its beginning (a one-shot read, a file created after following began).
    Beginning,
    /// From its current end: only lines written from now on.
    End,
}

/// One followed file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    open: Option<Open>,
    start: Start,
    pending: Vec<u8>,
    /// Lines cut at 64 KiB (`MAX_PENDING`): a line longer than that is split.
    pub cut_lines: u64,
}

#[derive(Debug)]
struct Open {
    file: File,
    inode: u64,
    offset: u64,
}

impl Follower {
    /// Follows `path`, first reading from `start`; the file may not exist yet.
    pub fn new(path: PathBuf, start: Start) -> Follower {
        Follower {
            path,
            open: None,
            start,
            pending: Vec::new(),
            cut_lines: 0,
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last poll; complete lines go to `out`.
    /// A missing file is not an error (it may appear later).
    pub fn poll(&mut self, out: &mut Vec<String>) -> io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let rotated = match (&self.open, &meta) {
            (Some(o), Some(m)) => o.inode != m.ino(),
            (Some(_), None) => true,
            _ => false,
        };
        if rotated {
            // Renamed away (or deleted): finish the old file, then take the new one whole.
            if let Some(mut old) = self.open.take() {
                self.read_open(&mut old, out)?;
            }
            self.flush_pending(out);
            self.start = Start::Beginning;
        }
        let Some(meta) = meta else {
            // Whatever the path holds once it appears is new.
            self.start = Start::Beginning;
            return Ok(());
        };
        if self.open.is_none() {
            let mut file = File::open(&self.path)?;
            let offset = match self.start {
                Start::Beginning => 0,
                Start::End => meta.len(),
            };
            file.seek(SeekFrom::Start(offset))?;
            self.open = Some(Open {
                file,
                inode: meta.ino(),
                offset,
            });
            self.start = Start::Beginning;
        }
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        if meta.len() < open.offset {
            // Truncated in place (copytruncate): start over.
            open.file.seek(SeekFrom::Start(0))?;
            open.offset = 0;
            self.pending.clear();
        }
        let read = self.read_open(&mut open, out);
        self.open = Some(open);
        read
    }

    /// Reads `open` from its offset to its end (bounded), splitting lines.
    fn read_open(&mut self, open: &mut Open, out: &mut Vec<String>) -> io::Result<()> {
        let mut buf = Vec::new();
        (&mut open.file)
            .take(MAX_READ_PER_POLL)
            .read_to_end(&mut buf)?;
        open.offset += buf.len() as u64;
        for chunk in buf.split_inclusive(|&b| b == b'\n') {
            match chunk.strip_suffix(b"\n") {
                Some(body) => {
                    self.pending.extend_from_slice(body);
                    self.flush_pending(out);
                }
                None => {
                    self.pending.extend_from_slice(chunk);
                    if self.pending.len() > MAX_PENDING {
                        self.pending.truncate(MAX_PENDING);
                        self.cut_lines += 1;
                        self.flush_pending(out);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush_pending(&mut self, out: &mut Vec<String>) {
        if self.pending.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.pending);
        out.push(line.trim_end_matches('\r').to_string());
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(text.as_bytes()).expect("write");
    }

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(&mut out).expect("poll");
        out
    }

    #[test]
    fn follows_appends_partial_lines_rename_and_truncate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("engine.log");
        append(&path, "old line before following\n");
        let mut f = Follower::new(path.clone(), Start::End);
        assert!(poll(&mut f).is_empty());
        append(&path, "one\ntw");
        assert_eq!(poll(&mut f), ["one"]);
        append(&path, "o\n");
        assert_eq!(poll(&mut f), ["two"]);
        // Rotation by rename: the tail of the old file, then the new file from its start.
        append(&path, "last of old\n");
        std::fs::rename(&path, dir.path().join("engine.log.1")).expect("rename");
        append(&path, "first of new\n");
        assert_eq!(poll(&mut f), ["last of old", "first of new"]);
        // Truncation in place.
        std::fs::write(&path, "").expect("truncate");
        assert!(poll(&mut f).is_empty());
        append(&path, "after truncate\n");
        assert_eq!(poll(&mut f), ["after truncate"]);
    }

    #[test]
    fn missing_file_waits_and_endless_line_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("later.log");
        let mut f = Follower::new(path.clone(), Start::End);
        assert!(poll(&mut f).is_empty());
        append(&path, "created later\n");
        // A file that appears after following began is read from its start.
        assert_eq!(poll(&mut f), ["created later"]);
        append(&path, &"x".repeat(MAX_PENDING + 10));
        let got = poll(&mut f);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_PENDING);
        assert_eq!(f.cut_lines, 1);
    }
}
