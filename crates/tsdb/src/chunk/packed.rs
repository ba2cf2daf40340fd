//! The encoding of a closed chunk whose values are decimals: each value as an integer
//! mantissa under one power-of-ten exponent for the chunk (`0.57` → 57 × 10⁻²), then the
//! timestamps' delta-of-deltas and the mantissas' deltas (or delta-of-deltas) bit-packed
//! against their minimum (frame of reference), with a sparse form for sequences that are
//! mostly zero (a value that rarely changes, a scrape interval that rarely jitters).
//!
//! Gorilla's XOR of the float bits spends most of a 64-bit word on any change of a decimal
//! value (`0.57` → `0.58` flips mantissa bits all the way down); the integer deltas of the
//! same values take a few bits. A chunk is packed only when every value converts exactly —
//! decoding gives back the same bits, `-0.0`, NaN and staleness markers never do — and the
//! packed form is smaller; otherwise it stays Gorilla.

use super::bits::{BitReader, BitWriter};

/// 10⁰ … 10¹⁸: exact in `f64`.
const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// Mantissas are kept below this magnitude so they fit an `i64` with room to spare.
const MAX_MANTISSA: f64 = 9.0e18;

/// The mantissa of `v` under exponent `e`, if decoding it gives back exactly `v`.
fn mantissa(v: f64, e: usize) -> Option<i64> {
    let scaled = (v * POW10[e]).round();
    if !scaled.is_finite() || scaled.abs() >= MAX_MANTISSA {
        return None;
    }
    let m = scaled as i64;
    (value_of(m, e).to_bits() == v.to_bits()).then_some(m)
}

/// The value a mantissa stands for (the decoder's formula, used to check the encoder).
/// Integers (exponent 0, every counter) skip the division: `x / 1.0` is `x`, bit for bit.
#[inline]
fn value_of(m: i64, e: usize) -> f64 {
    let v = m as f64;
    if e == 0 { v } else { v / POW10[e] }
}

/// The smallest exponent under which every value converts exactly, with the mantissas.
fn decimals(values: impl Iterator<Item = f64> + Clone) -> Option<(usize, Vec<i64>)> {
    let mut e = 0;
    for v in values.clone() {
        while mantissa(v, e).is_none() {
            e += 1;
            if e >= POW10.len() {
                return None;
            }
        }
    }
    let m: Option<Vec<i64>> = values.map(|v| mantissa(v, e)).collect();
    Some((e, m?))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn write_varint(w: &mut BitWriter, mut u: u64) {
    loop {
        let group = u & 0x7f;
        u >>= 7;
        w.write(group | if u == 0 { 0 } else { 0x80 }, 8);
        if u == 0 {
            return;
        }
    }
}

fn read_varint(r: &mut BitReader<'_>) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let group = r.read(8)?;
        out |= (group & 0x7f) << shift;
        if group & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// Bits needed for `span` (0 for 0).
fn width(span: u64) -> u32 {
    64 - span.leading_zeros()
}

/// Frame of reference over `xs`: the minimum and the width of the largest offset from it.
fn frame(xs: impl Iterator<Item = i64>) -> (i64, u32) {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for x in xs {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if lo > hi {
        return (0, 0);
    }
    (lo, width(hi.wrapping_sub(lo) as u64))
}

/// Writes an integer sequence (deltas or delta-of-deltas) in whichever of the two forms is
/// smaller: every element packed against the minimum, or one flag bit per element with only
/// the non-zero ones packed.
fn write_ints(w: &mut BitWriter, xs: &[i64]) {
    let (lo, bits) = frame(xs.iter().copied());
    let (nz_lo, nz_bits) = frame(xs.iter().copied().filter(|x| *x != 0));
    let nonzero = xs.iter().filter(|x| **x != 0).count() as u64;
    let dense = xs.len() as u64 * u64::from(bits);
    let sparse = xs.len() as u64 + nonzero * u64::from(nz_bits);
    if sparse < dense {
        w.bit(true);
        write_varint(w, zigzag(nz_lo));
        w.write(u64::from(nz_bits), 7);
        for &x in xs {
            w.bit(x != 0);
            if x != 0 {
                w.write(x.wrapping_sub(nz_lo) as u64, nz_bits);
            }
        }
    } else {
        w.bit(false);
        write_varint(w, zigzag(lo));
        w.write(u64::from(bits), 7);
        for &x in xs {
            w.write(x.wrapping_sub(lo) as u64, bits);
        }
    }
}

/// Reads `n` integers written by [`write_ints`], handing each to `each` in order.
fn read_ints(r: &mut BitReader<'_>, n: usize, mut each: impl FnMut(i64)) -> Option<()> {
    let sparse = r.bit()?;
    let lo = unzigzag(read_varint(r)?);
    let bits = r.read(7)? as u32;
    if bits > 64 {
        return None;
    }
    for _ in 0..n {
        let x = if !sparse || r.bit()? {
            lo.wrapping_add(r.read(bits)? as i64)
        } else {
            0
        };
        each(x);
    }
    Some(())
}

/// Differences of consecutive elements (wrapping, so decoding inverts it exactly).
fn deltas(xs: &[i64]) -> Vec<i64> {
    xs.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect()
}

/// The packed form of `samples` (strictly increasing timestamps, at least one), or `None`
/// when a value is not an exact decimal.
pub(super) fn encode(samples: &[(i64, f64)]) -> Option<BitWriter> {
    let (&(t0, _), rest) = samples.split_first()?;
    let (e, m) = decimals(samples.iter().map(|s| s.1))?;
    let mut w = BitWriter::default();
    write_varint(&mut w, zigzag(t0));
    if !rest.is_empty() {
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let dt = deltas(&ts);
        write_varint(&mut w, zigzag(dt[0]));
        write_ints(&mut w, &deltas(&dt));
    }
    w.write(e as u64, 5);
    write_varint(&mut w, zigzag(m[0]));
    if !rest.is_empty() {
        // Gauges pack best as deltas, steady counters as delta-of-deltas: write the smaller.
        let dm = deltas(&m);
        let mut by_delta = BitWriter::default();
        write_ints(&mut by_delta, &dm);
        let mut by_dod = BitWriter::default();
        write_varint(&mut by_dod, zigzag(dm[0]));
        write_ints(&mut by_dod, &deltas(&dm));
        let (dod, body) = if by_dod.len < by_delta.len {
            (true, by_dod)
        } else {
            (false, by_delta)
        };
        w.bit(dod);
        append(&mut w, &body);
    }
    Some(w)
}

/// Appends the bits of `other` to `w`.
fn append(w: &mut BitWriter, other: &BitWriter) {
    let mut r = BitReader::new(&other.bytes, other.len);
    let mut left = other.len;
    while left > 0 {
        let n = left.min(64) as u32;
        if let Some(v) = r.read(n) {
            w.write(v, n);
        }
        left -= n as usize;
    }
}

/// Decodes `count` samples; `None` on a truncated or corrupt encoding.
pub(super) fn decode(bytes: &[u8], count: usize) -> Option<Vec<(i64, f64)>> {
    let mut out = Vec::new();
    decode_into(bytes, count, &mut out)?;
    Some(out)
}

/// Appends `count` decoded samples to `out` (nothing on a truncated or corrupt encoding,
/// `None` then). One reservation: the timestamps are summed into `out` as they are read,
/// then the values filled in.
pub(super) fn decode_into(bytes: &[u8], count: usize, out: &mut Vec<(i64, f64)>) -> Option<()> {
    let base = out.len();
    let done = fill(bytes, count, base, out);
    if done.is_none() {
        out.truncate(base);
    }
    done
}

fn fill(bytes: &[u8], count: usize, base: usize, out: &mut Vec<(i64, f64)>) -> Option<()> {
    out.reserve(count.min(usize::from(u16::MAX)));
    if count == 0 {
        return Some(());
    }
    let mut r = BitReader::new(bytes, bytes.len() * 8);
    let mut t = unzigzag(read_varint(&mut r)?);
    out.push((t, 0.0));
    if count > 1 {
        let mut d = unzigzag(read_varint(&mut r)?);
        t = t.wrapping_add(d);
        out.push((t, 0.0));
        read_ints(&mut r, count - 2, |dod| {
            d = d.wrapping_add(dod);
            t = t.wrapping_add(d);
            out.push((t, 0.0));
        })?;
    }
    let e = r.read(5)? as usize;
    if e >= POW10.len() {
        return None;
    }
    let values = out.get_mut(base..)?;
    let mut m = unzigzag(read_varint(&mut r)?);
    values[0].1 = value_of(m, e);
    if count > 1 {
        let mut i = 1;
        let mut put = |m: i64| {
            values[i].1 = value_of(m, e);
            i += 1;
        };
        if r.bit()? {
            let mut d = unzigzag(read_varint(&mut r)?);
            m = m.wrapping_add(d);
            put(m);
            read_ints(&mut r, count - 2, |dod| {
                d = d.wrapping_add(dod);
                m = m.wrapping_add(d);
                put(m);
            })?;
        } else {
            read_ints(&mut r, count - 1, |d| {
                m = m.wrapping_add(d);
                put(m);
            })?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) -> Option<usize> {
        let w = encode(samples)?;
        let back = decode(&w.bytes, samples.len()).expect("decodes");
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
        Some(w.bytes.len())
    }

    #[test]
    fn decimals_find_the_smallest_exact_exponent() {
        assert_eq!(decimals([3.0, 4.0].into_iter()), Some((0, vec![3, 4])));
        assert_eq!(
            decimals([0.57, 0.5, 12.125].into_iter()),
            Some((3, vec![570, 500, 12125]))
        );
        // 0.1 + 0.2 is 0.30000000000000004 exactly: 17 decimals, a large mantissa (which the
        // size comparison then turns down). Not decimals at all: never packed.
        assert_eq!(
            decimals([0.1 + 0.2].into_iter()),
            Some((17, vec![30_000_000_000_000_004]))
        );
        for v in [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            1e300,
            f64::MIN_POSITIVE,
            1e-19,
        ] {
            assert_eq!(decimals([1.0, v].into_iter()), None, "{v}");
        }
    }

    #[test]
    fn a_two_decimal_random_walk_takes_a_few_bits_a_sample() {
        let mut v = 50i64;
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                v += [-1, 0, 1][(i * 7 % 3) as usize];
                (1_700_000_001_234 + i * 5000, v as f64 / 100.0)
            })
            .collect();
        let bytes = round_trip(&samples).expect("packs");
        // 2 bits per value and none per regular timestamp, plus the header.
        assert!(bytes <= 50, "{bytes} bytes");
    }

    #[test]
    fn steady_counters_and_sparse_changes_pack_small() {
        let counter: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000, 1_000_000.0 + i as f64 * 42.0))
            .collect();
        assert!(round_trip(&counter).expect("packs") <= 20);
        let sparse: Vec<(i64, f64)> = (0..120)
            .map(|i| (i * 15_000, if i % 40 == 39 { 61.0 } else { 60.0 }))
            .collect();
        assert!(round_trip(&sparse).expect("packs") <= 30);
    }

    #[test]
    fn single_samples_and_extremes_round_trip() {
        round_trip(&[(-5, 0.0)]);
        round_trip(&[(i64::MIN / 2, -8.0e18), (i64::MAX / 2, 8.0e18)]);
        round_trip(&[(0, 1e-18), (1, 123_456.789)]);
    }

    #[test]
    fn corrupt_input_ends_in_none_not_a_panic() {
        let samples: Vec<(i64, f64)> = (0..120).map(|i| (i * 1000, i as f64 * 0.5)).collect();
        let w = encode(&samples).expect("packs");
        for cut in 0..w.bytes.len() {
            let _ = decode(&w.bytes[..cut], 120);
        }
        assert!(decode(&w.bytes[..w.bytes.len() / 2], 120).is_none());
        let _ = decode(&[0xff; 64], 120);
    }

    proptest! {
        #[test]
        fn decimal_samples_round_trip_exactly(
            start in -(1i64 << 50)..(1i64 << 50),
            steps in prop::collection::vec((1i64..1_000_000, -1_000_000i64..1_000_000, 0usize..7), 1..120),
        ) {
            let mut t = start;
            let mut samples = vec![];
            for (dt, m, e) in steps {
                samples.push((t, m as f64 / POW10[e]));
                t += dt;
            }
            prop_assert!(round_trip(&samples).is_some());
        }

        #[test]
        fn arbitrary_floats_pack_exactly_or_not_at_all(
            bits in prop::collection::vec(any::<u64>(), 1..120),
        ) {
            let samples: Vec<(i64, f64)> = bits
                .iter()
                .enumerate()
                .map(|(i, b)| (i as i64 * 1000, f64::from_bits(*b)))
                .collect();
            round_trip(&samples);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), n in 0usize..130) {
            let _ = decode(&bytes, n);
        }
    }
}
