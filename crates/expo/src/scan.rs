//! Byte-level helpers shared by the parser and the label iterator: character classes (one
//! table lookup each), whitespace skipping and fast number parsing.

const METRIC_START: u8 = 1;
const METRIC_CONT: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CONT: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || b == b':' {
            v |= METRIC_START | METRIC_CONT;
        }
        if digit {
            v |= METRIC_CONT | LABEL_CONT;
        }
        if alpha {
            v |= LABEL_START | LABEL_CONT;
        }
        t[c] = v;
        c += 1;
    }
    t
};

#[inline(always)]
pub(crate) fn is_metric_start(b: u8) -> bool {
    CLASS[b as usize] & METRIC_START != 0
}
#[inline(always)]
pub(crate) fn is_metric_cont(b: u8) -> bool {
    CLASS[b as usize] & METRIC_CONT != 0
}
#[inline(always)]
pub(crate) fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & LABEL_START != 0
}
#[inline(always)]
pub(crate) fn is_label_cont(b: u8) -> bool {
    CLASS[b as usize] & LABEL_CONT != 0
}

#[inline(always)]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// End of the token starting at `i` (first space/tab or end of slice).
#[inline(always)]
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
        i += 1;
    }
    i
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a sample value: any float syntax `str::parse::<f64>` accepts (which covers Go's
/// `ParseFloat` spellings `NaN`, `+Inf`, `-Inf`, `Inf`, `1e-3`, `-0`, `+5`, apart from hex
/// floats). Plain decimals with at most 2^53 as mantissa and at most 22 fraction digits take an
/// exact fast path (Clinger): both operands are exact, so one IEEE division rounds correctly.
/// A leading `-` or `+` and the rest.
#[inline(always)]
fn split_sign(tok: &[u8]) -> (bool, &[u8]) {
    match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    }
}

#[inline]
pub(crate) fn parse_f64(tok: &[u8]) -> Option<f64> {
    let (neg, digits) = split_sign(tok);
    let n = digits.len();
    let mut i = 0;
    let mut mant: u64 = 0;
    while i < n && digits[i].is_ascii_digit() && i < 19 {
        mant = mant * 10 + (digits[i] - b'0') as u64;
        i += 1;
    }
    let int_digits = i;
    let mut frac_digits = 0usize;
    if i < n && digits[i] == b'.' {
        i += 1;
        while i < n && digits[i].is_ascii_digit() && int_digits + frac_digits < 19 {
            mant = mant * 10 + (digits[i] - b'0') as u64;
            i += 1;
            frac_digits += 1;
        }
    }
    if i == n && int_digits + frac_digits > 0 && mant <= (1u64 << 53) && frac_digits < POW10.len() {
        let v = mant as f64 / POW10[frac_digits];
        return Some(if neg { -v } else { v });
    }
    slow_f64(tok)
}

#[cold]
fn slow_f64(tok: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(tok).ok()?;
    // Rust accepts "infinity"/"inf"/"nan" in any case, as Go does; reject '_' digit
    // separators and anything else std would not take anyway.
    s.parse::<f64>().ok()
}

/// Parses a 0.0.4 timestamp: a base-10 integer of milliseconds (sign allowed).
#[inline]
pub(crate) fn parse_i64(tok: &[u8]) -> Option<i64> {
    let (neg, digits) = split_sign(tok);
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// Parses an OpenMetrics timestamp (seconds, possibly fractional) into milliseconds.
/// Plain decimals convert exactly (rounding half away from zero on the fourth fraction
/// digit); other float spellings go through `f64`. Non-finite or out-of-range: `None`.
pub(crate) fn parse_seconds_to_ms(tok: &[u8]) -> Option<i64> {
    let (neg, digits) = split_sign(tok);
    let n = digits.len();
    let mut i = 0;
    let mut int: i128 = 0;
    while i < n && digits[i].is_ascii_digit() && i < 30 {
        int = int * 10 + (digits[i] - b'0') as i128;
        i += 1;
    }
    let int_digits = i;
    let mut frac: i128 = 0;
    let mut frac_seen = 0;
    let mut round_up = false;
    if i < n && digits[i] == b'.' {
        i += 1;
        while i < n && digits[i].is_ascii_digit() {
            let d = digits[i] - b'0';
            if frac_seen < 3 {
                frac = frac * 10 + d as i128;
            } else if frac_seen == 3 {
                round_up = d >= 5;
            }
            frac_seen += 1;
            i += 1;
        }
    }
    if i == n && int_digits + frac_seen > 0 && int_digits < 30 {
        while frac_seen < 3 {
            frac *= 10;
            frac_seen += 1;
        }
        let mut ms = int * 1000 + frac + round_up as i128;
        if neg {
            ms = -ms;
        }
        return i64::try_from(ms).ok();
    }
    let s = std::str::from_utf8(tok).ok()?;
    let f = s.parse::<f64>().ok()?;
    let ms = (f * 1000.0).round();
    if !ms.is_finite() || ms < i64::MIN as f64 || ms >= i64::MAX as f64 {
        return None;
    }
    Some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        for s in [
            "0",
            "-0",
            "+5",
            "1e-3",
            "1.5",
            "22.0",
            "0.95",
            "1.7e+09",
            "123456789012345678901",
            "0.1",
            "3.14159",
            ".5",
            "5.",
            "1E3",
            "-1.25e-300",
            "4.9e-324",
            "1.7976931348623157e308",
            "9007199254740993",
            "0.30000000000000004",
        ] {
            let want: f64 = s.parse().unwrap();
            let got = parse_f64(s.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
        }
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"Inf"), Some(f64::INFINITY));
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        for bad in [
            "", "-", "+", ".", "1x", "1_000", "0x10", "1..2", "--1", "e5",
        ] {
            assert_eq!(parse_f64(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn ints_and_seconds() {
        assert_eq!(parse_i64(b"1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"+5"), Some(5));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"1.5"), None);
        assert_eq!(
            parse_seconds_to_ms(b"1700000000.123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_seconds_to_ms(b"1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_seconds_to_ms(b"-1.5"), Some(-1500));
        assert_eq!(parse_seconds_to_ms(b"1.0005"), Some(1001));
        assert_eq!(parse_seconds_to_ms(b"1.7e9"), Some(1_700_000_000_000));
        assert_eq!(
            parse_seconds_to_ms(b"-9223372036854775.808"),
            Some(i64::MIN)
        );
        assert_eq!(parse_seconds_to_ms(b"NaN"), None);
        assert_eq!(parse_seconds_to_ms(b"+Inf"), None);
        assert_eq!(parse_seconds_to_ms(b"1e300"), None);
    }
}
