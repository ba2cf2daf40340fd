//! The write-ahead log: numbered segment files (`wal/00000001`, …) of checksummed records
//! (see [`super::record`]). Three record kinds, all compact binary:
//! - series created: id, label set;
//! - samples: a batch of (series id, timestamp, value), timestamps as deltas from the first,
//!   integral values (counters, queue lengths, temperatures) as varints, others as 8 bytes;
//! - metadata: metric name, type, help, unit (written only when they change).
//!
//! A record is never split across segments; a new segment starts once the current one would
//! pass the size limit, at every checkpoint and at every open.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Metadata;
use super::record::{self, Reader, Writer};
use crate::labels::Labels;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const METADATA: u8 = 3;

/// Buffer in front of the segment file; a full buffer is written out at once.
const BUFFER_BYTES: usize = 256 << 10;

/// What one append logs: the series it created, then the samples it stored.
#[derive(Default)]
pub(crate) struct Batch {
    series: Vec<u8>,
    samples: Vec<(u32, i64, f64)>,
}

impl Batch {
    pub(crate) fn series(&mut self, id: u32, labels: &Labels) {
        let mut w = Writer::default();
        w.u8(SERIES);
        w.uvarint(u64::from(id));
        w.labels(labels);
        record::frame(&mut self.series, &w.0);
    }

    pub(crate) fn sample(&mut self, id: u32, t: i64, v: f64) {
        self.samples.push((id, t, v));
    }

    /// The framed records, series first so a replay knows every id before its samples.
    pub(crate) fn encode(self) -> Vec<u8> {
        let mut out = self.series;
        if let Some(&(_, base, _)) = self.samples.first() {
            let mut w = Writer(Vec::with_capacity(16 + self.samples.len() * 12));
            w.u8(SAMPLES);
            w.uvarint(self.samples.len() as u64);
            w.varint(base);
            for (id, t, v) in &self.samples {
                let int = as_int(*v);
                w.uvarint(u64::from(*id) << 1 | u64::from(int.is_some()));
                w.varint(t.wrapping_sub(base));
                match int {
                    Some(i) => w.varint(i),
                    None => w.f64(*v),
                }
            }
            record::frame(&mut out, &w.0);
        }
        out
    }
}

/// `v` as an integer when that is exact (not -0.0, NaN or beyond 2^53).
fn as_int(v: f64) -> Option<i64> {
    const EXACT: f64 = (1u64 << 53) as f64;
    (v.fract() == 0.0 && v.abs() < EXACT && !(v == 0.0 && v.is_sign_negative())).then_some(v as i64)
}

/// The framed record for a metadata change.
pub(crate) fn metadata_record(metric: &str, m: &Metadata) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(METADATA);
    for s in [metric, &m.kind, &m.help, &m.unit] {
        w.str(s);
    }
    let mut out = Vec::new();
    record::frame(&mut out, &w.0);
    out
}

/// One decoded record.
pub(crate) enum Entry {
    Series(u32, Vec<(String, String)>),
    Samples(Vec<(u32, i64, f64)>),
    Metadata(String, Metadata),
}

/// Decodes a payload that passed its checksum.
pub(crate) fn decode(payload: &[u8]) -> Result<Entry, String> {
    let mut r = Reader(payload);
    let entry = match r.u8()? {
        SERIES => Entry::Series(r.u32()?, r.labels()?),
        SAMPLES => {
            let n = r.len()?;
            let base = r.varint()?;
            let mut samples = Vec::with_capacity(n.min(payload.len() / 10));
            for _ in 0..n {
                let tagged = r.uvarint()?;
                let id = u32::try_from(tagged >> 1).map_err(|_| "series id out of range")?;
                let t = base.wrapping_add(r.varint()?);
                let v = if tagged & 1 == 1 {
                    r.varint()? as f64
                } else {
                    r.f64()?
                };
                samples.push((id, t, v));
            }
            Entry::Samples(samples)
        }
        METADATA => Entry::Metadata(
            r.str()?,
            Metadata {
                kind: r.str()?,
                help: r.str()?,
                unit: r.str()?,
            },
        ),
        k => return Err(format!("unknown record kind {k}")),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes in record".into());
    }
    Ok(entry)
}

/// Path of segment `seq` in `dir`.
pub(crate) fn segment_path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:08}"))
}

/// The segments in `dir`, oldest first (files named by eight digits; others are ignored).
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(seq) = name.parse::<u32>()
        {
            out.push((seq, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The segment being written.
pub(crate) struct Log {
    dir: PathBuf,
    seq: u32,
    out: BufWriter<File>,
    /// A second handle on the same file, so a flusher can fsync without holding the log lock.
    sync: Arc<File>,
    in_segment: u64,
    segment_bytes: u64,
    pub(crate) bytes_written: u64,
}

impl Log {
    /// Starts segment `seq` in `dir` (which must not exist yet).
    pub(crate) fn create(dir: &Path, seq: u32, segment_bytes: u64) -> io::Result<Log> {
        let (out, sync) = open_segment(dir, seq)?;
        Ok(Log {
            dir: dir.to_path_buf(),
            seq,
            out,
            sync,
            in_segment: 0,
            segment_bytes,
            bytes_written: 0,
        })
    }

    /// Buffers framed records, moving to a new segment first when they would not fit.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.in_segment > 0 && self.in_segment + bytes.len() as u64 > self.segment_bytes {
            self.rotate()?;
        }
        self.out.write_all(bytes)?;
        self.in_segment += bytes.len() as u64;
        self.bytes_written += bytes.len() as u64;
        Ok(())
    }

    /// Writes out and fsyncs the current segment and starts the next; returns the number of
    /// the segment just finished.
    pub(crate) fn rotate(&mut self) -> io::Result<u32> {
        self.out.flush()?;
        self.sync.sync_data()?;
        let (out, sync) = open_segment(&self.dir, self.seq + 1)?;
        let done = self.seq;
        (self.out, self.sync, self.seq, self.in_segment) = (out, sync, self.seq + 1, 0);
        Ok(done)
    }

    /// Hands buffered records to the OS (enough to survive `kill -9`); returns the handle to
    /// fsync for surviving power loss.
    pub(crate) fn flush(&mut self) -> io::Result<Arc<File>> {
        self.out.flush()?;
        Ok(self.sync.clone())
    }
}

fn open_segment(dir: &Path, seq: u32) -> io::Result<(BufWriter<File>, Arc<File>)> {
    let path = segment_path(dir, seq);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("create WAL segment {}: {e}", path.display()),
            )
        })?;
    let sync = Arc::new(file.try_clone()?);
    // Make the new directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok((BufWriter::with_capacity(BUFFER_BYTES, file), sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_bit_for_bit() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -7.0,
            0.25,
            1e300,
            9_007_199_254_740_992.0,
            f64::NAN,
            f64::from_bits(super::super::STALE_NAN_BITS),
            f64::INFINITY,
        ];
        let mut b = Batch::default();
        for (i, v) in values.iter().enumerate() {
            b.sample(i as u32 * 1000, 1_700_000_000_000 - i as i64 * 7, *v);
        }
        let bytes = b.encode();
        let (payload, _) = record::read_at(&bytes, 0).expect("valid").expect("record");
        let Ok(Entry::Samples(got)) = decode(payload) else {
            panic!("not a samples record")
        };
        for (i, (v, (id, t, g))) in values.iter().zip(got).enumerate() {
            assert_eq!((id, t), (i as u32 * 1000, 1_700_000_000_000 - i as i64 * 7));
            assert_eq!(v.to_bits(), g.to_bits(), "{v} came back as {g}");
        }
    }
}
