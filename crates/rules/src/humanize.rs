//! Prometheus's `humanize*` template functions, byte for byte (Go's `%.4g` included), so
//! annotations read the same as under Prometheus.

/// Go's `fmt.Sprintf("%.<prec>g", v)`: shortest of fixed and exponent form, trailing zeros
/// removed, exponent at least two digits.
pub fn go_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// Scales `v` below 1 by 1000s: (scaled, SI prefix).
fn small_prefix(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// `humanize`: SI prefixes, 4 significant digits (`1234567` → `1.235M`).
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in BIG {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", go_g(v, 4));
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}", go_g(v, 4))
}

/// `humanize1024`: binary prefixes (`1048576` → `1Mi`).
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

/// `humanizePercentage`: a ratio as a percentage (`0.1234` → `12.34%`).
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", go_g(v * 100.0, 4))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with SI prefixes below a second.
pub fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}s", go_g(v, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go() {
        // Expected values from Go's fmt.Sprintf("%.4g", v).
        let cases = [
            (1234.5678, "1235"),
            (12345.678, "1.235e+04"),
            (0.000012345, "1.234e-05"),
            (0.5, "0.5"),
            (100.0, "100"),
            (9999.5, "1e+04"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(go_g(v, 4), want, "{v}");
        }
    }

    #[test]
    fn humanize_family_matches_prometheus() {
        // Expected values from Prometheus's template tests (template_test.go).
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1.0), "1");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.001234), "1.234m");
        assert_eq!(humanize(1.5e-7), "150n");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1.0), "1");
        assert_eq!(humanize1024(2048.0 * 1024.0 * 1024.0), "2Gi");
        assert_eq!(humanize_percentage(0.1234567), "12.35%");
        assert_eq!(humanize_percentage(0.0), "0%");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86400.0), "1d 0h 0m 0s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.1), "100ms");
        assert_eq!(humanize_duration(0.0001), "100us");
        assert_eq!(humanize_duration(-60.0), "-1m 0s");
        assert_eq!(humanize(f64::NAN), "NaN");
    }
}
