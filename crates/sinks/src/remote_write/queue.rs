//! The bounded on-disk queue between batching and sending: one segment file per batch, so a
//! receiver outage or a restart loses nothing that fits in the bound.
//!
//! Layout: `DIR/<seq>.rwb`, each `b"SRW2"`, sample count (u32 LE), body length (u32 LE),
//! CRC32 of the body (u32 LE), then the snappy-compressed `WriteRequest` exactly as it is
//! POSTed. A segment is written to `<seq>.tmp` and renamed into place, so a crash mid-write
//! leaves no half segment; a segment damaged on disk fails its checksum and is dropped,
//! counted and logged instead of being sent (and rejected). `SRW1` segments of earlier
//! versions (no checksum) are still read.
//!
//! Fsync policy ([`Fsync`]): `Always` fsyncs each segment and the directory before the
//! rename is considered done (survives power loss); `Never` leaves it to the OS (survives a
//! process crash or restart, not a power cut). When the queue would exceed its byte bound
//! the oldest segments are deleted and their samples counted as dropped.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"SRW2";
/// Segments written before checksums (read, never written).
const MAGIC_V1: &[u8; 4] = b"SRW1";
const HEADER: u64 = 16;
const HEADER_V1: u64 = 12;
const EXT: &str = "rwb";

/// When segment files are flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// fsync every segment and its directory: a power cut loses nothing acknowledged.
    Always,
    /// Let the OS write back: survives process crashes and restarts, not power loss.
    Never,
}

/// One queued batch, oldest first.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Segment sequence number (for [`DiskQueue::ack`]).
    pub seq: u64,
    /// Samples in the batch.
    pub samples: u32,
    /// The request body, ready to POST.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u64,
    bytes: u64,
    samples: u32,
}

/// A directory of batch segments with a byte bound.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    max_bytes: u64,
    fsync: Fsync,
    segments: VecDeque<Segment>,
    next_seq: u64,
    bytes: u64,
    dropped_samples: u64,
}

/// What [`DiskQueue::open`] found in the directory besides good segments.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Segments found and kept, with their samples.
    pub segments: usize,
    /// Samples in the kept segments.
    pub samples: u64,
    /// Segments that were truncated or not ours, deleted (each named with why).
    pub discarded: Vec<String>,
}

impl DiskQueue {
    /// Opens (creating) `dir`, keeping every intact segment from a previous run.
    pub fn open(dir: &Path, max_bytes: u64, fsync: Fsync) -> io::Result<(DiskQueue, Recovery)> {
        fs::create_dir_all(dir).map_err(|e| ctx(e, "create queue directory", dir))?;
        let mut recovery = Recovery::default();
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| ctx(e, "list queue directory", dir))? {
            let path = entry?.path();
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            match (path.extension().and_then(|e| e.to_str()), seq) {
                (Some(EXT), Some(seq)) => match read_header(&path) {
                    Ok((samples, bytes)) => segments.push(Segment {
                        seq,
                        bytes,
                        samples,
                    }),
                    Err(why) => {
                        recovery
                            .discarded
                            .push(format!("{}: {why}", path.display()));
                        let _ = fs::remove_file(&path);
                    }
                },
                (Some("tmp"), _) => {
                    recovery
                        .discarded
                        .push(format!("{}: unfinished write", path.display()));
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        segments.sort_by_key(|s| s.seq);
        recovery.segments = segments.len();
        recovery.samples = segments.iter().map(|s| u64::from(s.samples)).sum();
        let next_seq = segments.last().map_or(0, |s| s.seq + 1);
        let bytes = segments.iter().map(|s| s.bytes).sum();
        let queue = DiskQueue {
            dir: dir.to_path_buf(),
            max_bytes,
            fsync,
            segments: segments.into(),
            next_seq,
            bytes,
            dropped_samples: 0,
        };
        Ok((queue, recovery))
    }

    /// Appends a batch; deletes the oldest segments while the bound would be exceeded and
    /// returns how many samples that dropped (the new batch itself when it alone is larger
    /// than the bound).
    pub fn push(&mut self, samples: u32, body: &[u8]) -> io::Result<u64> {
        let size = HEADER + body.len() as u64;
        if size > self.max_bytes {
            self.dropped_samples += u64::from(samples);
            return Ok(u64::from(samples));
        }
        let mut dropped = 0;
        while self.bytes + size > self.max_bytes {
            match self.segments.pop_front() {
                Some(old) => {
                    self.remove(old);
                    dropped += u64::from(old.samples);
                }
                None => break,
            }
        }
        self.dropped_samples += dropped;
        let seq = self.next_seq;
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(|e| ctx(e, "create segment", &tmp))?;
        let body_len = u32::try_from(body.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "batch body over 4 GiB"))?;
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&samples.to_le_bytes());
        header.extend_from_slice(&body_len.to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        file.write_all(&header)
            .and_then(|()| file.write_all(body))
            .map_err(|e| ctx(e, "write segment", &tmp))?;
        if self.fsync == Fsync::Always {
            file.sync_all().map_err(|e| ctx(e, "fsync segment", &tmp))?;
        }
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| ctx(e, "rename segment", &path))?;
        if self.fsync == Fsync::Always {
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ctx(e, "fsync queue directory", &self.dir))?;
        }
        self.next_seq += 1;
        self.bytes += size;
        self.segments.push_back(Segment {
            seq,
            bytes: size,
            samples,
        });
        Ok(dropped)
    }

    /// The oldest batch, read from disk. A segment that cannot be read any more is deleted,
    /// its samples counted as dropped, and the next one is tried.
    pub fn peek(&mut self) -> Option<Batch> {
        while let Some(&seg) = self.segments.front() {
            match read_segment(&self.path(seg.seq)) {
                Ok((samples, body)) => {
                    return Some(Batch {
                        seq: seg.seq,
                        samples,
                        body,
                    });
                }
                Err(why) => {
                    tracing::warn!(
                        seq = seg.seq,
                        "remote_write queue segment unreadable, dropped: {why}"
                    );
                    self.segments.pop_front();
                    self.remove(seg);
                    self.dropped_samples += u64::from(seg.samples);
                }
            }
        }
        None
    }

    /// Deletes the segment `seq` once the receiver has it (or refused it for good).
    pub fn ack(&mut self, seq: u64) {
        if let Some(i) = self.segments.iter().position(|s| s.seq == seq)
            && let Some(seg) = self.segments.remove(i)
        {
            self.remove(seg);
        }
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Samples waiting.
    pub fn samples(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.samples)).sum()
    }

    /// Samples dropped because the queue was full or a segment was unreadable.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.{EXT}"))
    }

    fn remove(&mut self, seg: Segment) {
        self.bytes = self.bytes.saturating_sub(seg.bytes);
        if let Err(e) = fs::remove_file(self.path(seg.seq))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(
                seq = seg.seq,
                "cannot delete remote_write queue segment: {e}"
            );
        }
    }
}

fn ctx(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

/// A segment's header: its samples, body length, body checksum (none in `SRW1` segments)
/// and header size.
struct Header {
    samples: u32,
    len: u32,
    crc: Option<u32>,
    size: u64,
}

fn read_header(path: &Path) -> Result<(u32, u64), String> {
    let mut file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut header = [0u8; HEADER as usize];
    let n = file.read(&mut header).map_err(|e| e.to_string())?;
    let h = parse_header(&header[..n])?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size != h.size + u64::from(h.len) {
        return Err(format!(
            "{size} bytes on disk, header says {}",
            h.size + u64::from(h.len)
        ));
    }
    Ok((h.samples, size))
}

fn parse_header(header: &[u8]) -> Result<Header, String> {
    let word = |i: usize| -> Result<u32, String> {
        header
            .get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| "shorter than its header".to_string())
    };
    match header.get(..4) {
        Some(m) if m == MAGIC => Ok(Header {
            samples: word(4)?,
            len: word(8)?,
            crc: Some(word(12)?),
            size: HEADER,
        }),
        Some(m) if m == MAGIC_V1 => Ok(Header {
            samples: word(4)?,
            len: word(8)?,
            crc: None,
            size: HEADER_V1,
        }),
        Some(_) => Err("not a remote_write queue segment (bad magic)".into()),
        None => Err("shorter than its header".into()),
    }
}

fn read_segment(path: &Path) -> Result<(u32, Vec<u8>), String> {
    let data = fs::read(path).map_err(|e| e.to_string())?;
    let h = parse_header(&data)?;
    let body = data.get(h.size as usize..).unwrap_or_default();
    if body.len() as u64 != u64::from(h.len) {
        return Err(format!(
            "body is {} bytes, header says {}",
            body.len(),
            h.len
        ));
    }
    if let Some(crc) = h.crc
        && crc32fast::hash(body) != crc
    {
        return Err("checksum mismatch: the segment was damaged on disk".into());
    }
    Ok((h.samples, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_batches_across_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut q, _) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Always).expect("open");
        q.push(3, b"one").expect("push");
        q.push(4, b"two").expect("push");
        drop(q);
        let (mut q, rec) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Never).expect("reopen");
        assert_eq!((rec.segments, rec.samples), (2, 7));
        let first = q.peek().expect("first");
        assert_eq!((first.samples, first.body.as_slice()), (3, &b"one"[..]));
        q.ack(first.seq);
        assert_eq!(q.peek().expect("second").body, b"two");
        q.push(1, b"three").expect("push after reopen");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn full_queue_drops_oldest_and_counts_samples() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Each segment is 16 + 10 bytes; room for two.
        let (mut q, _) = DiskQueue::open(dir.path(), 60, Fsync::Never).expect("open");
        assert_eq!(q.push(5, b"aaaaaaaaaa").expect("push"), 0);
        assert_eq!(q.push(6, b"bbbbbbbbbb").expect("push"), 0);
        assert_eq!(q.push(7, b"cccccccccc").expect("push"), 5);
        assert_eq!(q.dropped_samples(), 5);
        assert_eq!(q.peek().expect("oldest kept").body, b"bbbbbbbbbb");
        assert_eq!(q.push(9, &[0u8; 100]).expect("oversized"), 9);
        assert_eq!(q.dropped_samples(), 14);
        assert_eq!(q.bytes(), 52);
    }

    #[test]
    fn truncated_and_foreign_files_are_discarded_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut q, _) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Never).expect("open");
        q.push(2, b"good").expect("push");
        fs::write(
            dir.path().join("0000000000000007.rwb"),
            b"SRW2\x01\0\0\0\x09\0\0\0\0\0\0\0abc",
        )
        .expect("write truncated");
        fs::write(dir.path().join("0000000000000008.rwb"), b"hello").expect("write foreign");
        fs::write(dir.path().join("0000000000000009.tmp"), b"SRW1").expect("write tmp");
        let (mut q, rec) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Never).expect("reopen");
        assert_eq!(rec.segments, 1);
        assert_eq!(rec.discarded.len(), 3, "{:?}", rec.discarded);
        assert_eq!(q.peek().expect("good one").body, b"good");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_damaged_segment_fails_its_checksum_and_is_dropped_not_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut q, _) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Never).expect("open");
        q.push(3, b"first batch").expect("push");
        q.push(4, b"second batch").expect("push");
        let first = dir.path().join("0000000000000000.rwb");
        let mut bytes = fs::read(&first).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40; // one flipped bit in the body, same length
        fs::write(&first, bytes).expect("write");
        let second = q.peek().expect("the intact one");
        assert_eq!(second.body, b"second batch");
        assert_eq!(q.dropped_samples(), 3);
    }

    #[test]
    fn segments_of_the_previous_format_are_still_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("0000000000000003.rwb"),
            b"SRW1\x02\0\0\0\x03\0\0\0old",
        )
        .expect("write v1");
        let (mut q, rec) = DiskQueue::open(dir.path(), 1 << 20, Fsync::Never).expect("open");
        assert_eq!((rec.segments, rec.samples), (1, 2));
        assert_eq!(q.peek().expect("v1 segment").body, b"old");
        q.push(1, b"new").expect("push");
        assert_eq!(q.len(), 2);
    }
}
