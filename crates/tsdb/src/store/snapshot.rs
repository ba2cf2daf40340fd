//! Snapshots: the whole store in one checksummed file, written atomically and reloaded at
//! start. A file that fails to parse is renamed aside (never fatal, never overwritten).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::index::Fnv;
use super::series::MemSeries;
use super::{Inner, Metadata};
use crate::chunk::Chunk;
use crate::labels::Labels;

const MAGIC: &[u8; 16] = b"STRATA-TSDB-SN1\n";

pub(super) fn encode(inner: &Inner) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let live: Vec<&MemSeries> = inner.series.iter().flatten().collect();
    put_u64(&mut out, live.len() as u64);
    for s in live {
        put_u64(&mut out, s.labels.len() as u64);
        for (n, v) in s.labels.iter() {
            put_str(&mut out, n);
            put_str(&mut out, v);
        }
        put_u64(&mut out, s.chunks().count() as u64);
        for c in s.chunks() {
            let (count, bits, bytes) = c.encoded();
            put_u64(&mut out, u64::from(count));
            put_u64(&mut out, bits as u64);
            put_u64(&mut out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
    }
    put_u64(&mut out, inner.metadata.len() as u64);
    for (name, m) in &inner.metadata {
        for s in [name, &m.kind, &m.help, &m.unit] {
            put_str(&mut out, s);
        }
    }
    let mut h = Fnv::default();
    h.write(&out);
    put_u64(&mut out, h.0);
    out
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Loads the snapshot at `path` into an empty `inner`; returns a warning when it was corrupt.
pub(super) fn load(path: &Path, inner: &mut Inner) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            return Some(format!(
                "cannot read snapshot {}: {e}; starting with an empty store",
                path.display()
            ));
        }
    };
    let mut staged = Inner {
        max_t: i64::MIN,
        retention_checked_at: i64::MIN,
        ..Inner::default()
    };
    match decode(&bytes, &mut staged) {
        Ok(()) => {
            *inner = staged;
            None
        }
        Err(why) => {
            let aside = aside_path(path);
            let moved = match std::fs::rename(path, &aside) {
                Ok(()) => format!("set aside as {}", aside.display()),
                Err(e) => format!("could not be moved aside ({e})"),
            };
            Some(format!(
                "snapshot {} is corrupt ({why}); it was {moved} and the store starts empty",
                path.display()
            ))
        }
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{secs}"));
    PathBuf::from(name)
}

fn decode(bytes: &[u8], inner: &mut Inner) -> Result<(), String> {
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a Strata snapshot (bad header)".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut h = Fnv::default();
    h.write(body);
    if sum != h.0.to_le_bytes() {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader {
        b: &body[MAGIC.len()..],
    };
    for _ in 0..r.u64()? {
        let mut pairs = Vec::new();
        for _ in 0..r.u64()? {
            pairs.push((r.str()?, r.str()?));
        }
        let id = inner.insert(Labels::new(pairs));
        let nchunks = r.u64()?;
        for i in 0..nchunks {
            let count = u16::try_from(r.u64()?).map_err(|_| "chunk sample count out of range")?;
            let bits = usize::try_from(r.u64()?).map_err(|_| "chunk bit length out of range")?;
            let len = usize::try_from(r.u64()?).map_err(|_| "chunk length out of range")?;
            let chunk =
                Chunk::from_encoded(count, bits, r.take(len)?).ok_or("undecodable chunk")?;
            let Some(s) = inner.series[id as usize].as_mut() else {
                return Err("series vanished while loading".into());
            };
            if s.last_t().is_some_and(|t| chunk.min_t() <= t) {
                return Err(format!("chunks of {} overlap", s.labels));
            }
            inner.bytes += chunk.bytes();
            inner.samples += chunk.len() as u64;
            inner.max_t = inner.max_t.max(chunk.max_t());
            if i + 1 == nchunks && !chunk.is_full() {
                s.head = chunk;
            } else {
                s.closed.push(chunk);
            }
        }
    }
    for _ in 0..r.u64()? {
        let name = r.str()?;
        let m = Metadata {
            kind: r.str()?,
            help: r.str()?,
            unit: r.str()?,
        };
        inner.metadata.insert(name, m);
    }
    if !r.b.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(())
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.b.len() {
            return Err("truncated".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "string length out of range")?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| "label or metadata is not UTF-8".into())
    }
}
