//! Snapshots: the whole store as a sequence of checksummed records (see
//! [`super::record`]), one per series, written atomically and reloaded at start.
//!
//! Layout: a magic line, a header record (the last write-ahead-log segment the snapshot
//! covers), one record per series (id, labels, chunks), one per metadata entry, and an end
//! record with the counts. A record that fails its checksum loses only that series; the rest
//! is kept, the damage reported and the file renamed aside (never overwritten).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{self, Reader, Writer};
use super::series::SeriesView;
use super::{Ingest, Metadata, Store, shard_of_id};
use crate::chunk::Chunk;
use crate::labels::Labels;
use strata_core::sync::{lock, write};

const MAGIC: &[u8; 16] = b"STRATA-TSDB-SN2\n";
const HEADER: u8 = b'H';
const SERIES: u8 = b'S';
const METADATA: u8 = b'M';
const END: u8 = b'E';

/// The store's content, detached from its locks.
pub(super) struct Captured {
    pub(super) series: Vec<(u32, SeriesView)>,
    pub(super) metadata: Vec<(String, Metadata)>,
}

/// What loading a snapshot found.
#[derive(Default)]
pub(super) struct Loaded {
    /// The last log segment the snapshot covers (0 without a snapshot or log).
    pub(super) covered: u32,
    /// Series loaded.
    pub(super) series: usize,
    /// Records dropped because they failed their checksum or did not decode.
    pub(super) dropped: usize,
    /// What went wrong, naming the file and where it was set aside.
    pub(super) warnings: Vec<String>,
}

pub(super) fn encode(c: &Captured, covered: u32) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let mut w = Writer::default();
    w.u8(HEADER);
    w.uvarint(u64::from(covered));
    record::frame(&mut out, &w.0);
    for (id, s) in &c.series {
        let mut w = Writer::default();
        w.u8(SERIES);
        w.uvarint(u64::from(*id));
        w.labels(&s.labels);
        w.uvarint(s.chunks().len() as u64);
        for chunk in s.chunks() {
            let (count, bits, bytes) = chunk.encoded();
            w.uvarint(u64::from(count));
            w.uvarint(bits as u64);
            w.bytes(bytes);
        }
        record::frame(&mut out, &w.0);
    }
    for (name, m) in &c.metadata {
        let mut w = Writer::default();
        w.u8(METADATA);
        for s in [name, &m.kind, &m.help, &m.unit] {
            w.str(s);
        }
        record::frame(&mut out, &w.0);
    }
    let mut w = Writer::default();
    w.u8(END);
    w.uvarint(u64::from(covered));
    w.uvarint(c.series.len() as u64);
    w.uvarint(c.metadata.len() as u64);
    record::frame(&mut out, &w.0);
    out
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename must be durable before a checkpoint deletes the log segments it covers.
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

impl Store {
    /// Loads the snapshot at `path` into this (empty) store, keeping every record that
    /// verifies. A damaged file is renamed aside and reported.
    pub(super) fn restore_snapshot(&self, path: &Path) -> Loaded {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::default(),
            Err(e) => {
                return Loaded {
                    warnings: vec![format!(
                        "cannot read snapshot {}: {e}; starting without it",
                        path.display()
                    )],
                    ..Loaded::default()
                };
            }
        };
        let mut ing = lock(&self.ingest);
        let mut loaded = Loaded::default();
        let problem = if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            Some("not a Strata snapshot (bad header); the store starts empty".to_string())
        } else {
            self.load_records(&bytes, &mut ing, &mut loaded)
        };
        if let Some(why) = problem {
            let aside = aside_path(path);
            let moved = match std::fs::rename(path, &aside) {
                Ok(()) => format!("set aside as {}", aside.display()),
                Err(e) => format!("could not be moved aside ({e})"),
            };
            loaded.warnings.push(format!(
                "snapshot {} is corrupt: {why}; it was {moved}",
                path.display()
            ));
        }
        loaded
    }

    /// Applies every record that verifies; returns what was lost, if anything.
    fn load_records(&self, bytes: &[u8], ing: &mut Ingest, loaded: &mut Loaded) -> Option<String> {
        let mut at = MAGIC.len();
        let mut end: Option<(u64, u64)> = None;
        let (mut header, mut metadata) = (false, 0u64);
        let mut first_error: Option<String> = None;
        loop {
            let payload = match record::read_at(bytes, at) {
                Ok(Some((payload, next))) => {
                    at = next;
                    payload
                }
                Ok(None) => break,
                Err(why) => {
                    loaded.dropped += 1;
                    first_error.get_or_insert_with(|| format!("{why} at byte {at}"));
                    match record::resync(bytes, at) {
                        Some(next) => {
                            at = next;
                            continue;
                        }
                        None => break,
                    }
                }
            };
            let mut r = Reader(payload);
            let applied = r.u8().and_then(|kind| match kind {
                HEADER => {
                    loaded.covered = r.u32()?;
                    header = true;
                    Ok(())
                }
                SERIES => self.load_series(&mut r, ing).map(|()| loaded.series += 1),
                METADATA => {
                    let name = r.str()?;
                    let m = Metadata {
                        kind: r.str()?,
                        help: r.str()?,
                        unit: r.str()?,
                    };
                    write(&self.metadata).insert(name, m);
                    metadata += 1;
                    Ok(())
                }
                END => {
                    let covered = r.u32()?;
                    if !header {
                        loaded.covered = covered;
                    }
                    end = Some((r.uvarint()?, r.uvarint()?));
                    Ok(())
                }
                k => Err(format!("unknown record kind {k}")),
            });
            if let Err(why) = applied {
                loaded.dropped += 1;
                first_error
                    .get_or_insert_with(|| format!("{why} in the record ending at byte {at}"));
            }
        }
        let expected = end.map(|(s, m)| s + m);
        let missing = match expected {
            Some(n) => n.saturating_sub(loaded.series as u64 + metadata),
            None => 0,
        };
        if first_error.is_none() && missing == 0 && end.is_some() {
            return None;
        }
        Some(format!(
            "{} ({} damaged record(s); {} series and {metadata} metadata entries kept{})",
            first_error.unwrap_or_else(|| "the end record is missing (truncated file)".into()),
            loaded.dropped,
            loaded.series,
            match expected {
                Some(_) => format!(", {missing} lost"),
                None => String::new(),
            }
        ))
    }

    /// One series record: placed at its id, chunks as written.
    fn load_series(&self, r: &mut Reader<'_>, ing: &mut Ingest) -> Result<(), String> {
        let id = r.u32()?;
        let labels = Labels::new(r.labels()?);
        let n = r.len()?;
        let mut chunks = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let count =
                u16::try_from(r.uvarint()?).map_err(|_| "chunk sample count out of range")?;
            let bits = r.len()?;
            let chunk = Chunk::from_encoded(count, bits, r.bytes()?)
                .filter(|c| !c.is_empty())
                .ok_or("undecodable chunk")?;
            if chunks
                .last()
                .is_some_and(|c: &Chunk| chunk.min_t() <= c.max_t())
            {
                return Err(format!("chunks of {labels} overlap"));
            }
            chunks.push(chunk);
        }
        if !r.0.is_empty() {
            return Err("trailing bytes in a series record".into());
        }
        self.place(ing, id, labels)?;
        let mut shard = write(&self.shards[shard_of_id(id)]);
        let s = shard.get_mut(id).ok_or("series vanished while loading")?;
        let last = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            ing.bytes += chunk.bytes();
            ing.samples += chunk.len() as u64;
            ing.max_t = ing.max_t.max(chunk.max_t());
            // Only a chunk that can still take samples becomes the head: a packed one (a
            // damaged snapshot could hold one with fewer samples than a full chunk) stays
            // closed, and appends start a new head after it.
            if i + 1 == last && !chunk.is_full() && !chunk.is_packed() {
                s.head = chunk;
            } else {
                s.closed.push(std::sync::Arc::new(chunk));
            }
        }
        Ok(())
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
