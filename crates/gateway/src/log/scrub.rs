//! The PII scrubber for opt-in capture: e-mail addresses, IBANs (mod-97 checked), card
//! numbers (Luhn checked), national-ID-like numbers (US SSN, French NIR, UK NINO), IPv4 and
//! IPv6 addresses, phone numbers (9–15 digits), and configured extra patterns.

use regex::{Captures, Regex};

/// Replaces personal data with placeholders (`[EMAIL]`, `[IBAN]`, `[CARD]`,
/// `[NATIONAL_ID]`, `[IP]`, `[PHONE]`, `[REDACTED]`).
#[derive(Debug, Clone)]
pub struct Scrubber {
    rules: Vec<(Regex, &'static str, Check)>,
    extra: Vec<Regex>,
}

#[derive(Debug, Clone, Copy)]
enum Check {
    None,
    Luhn,
    Iban,
    PhoneDigits,
}

impl Scrubber {
    /// The built-in rules plus `extra` patterns; a bad extra pattern is an error naming it.
    pub fn new(extra: &[String]) -> Result<Scrubber, String> {
        let r = |p: &str| Regex::new(p).expect("built-in pattern");
        let rules = vec![
            (
                r(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"),
                "[EMAIL]",
                Check::None,
            ),
            (
                r(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b"),
                "[IBAN]",
                Check::Iban,
            ),
            (r(r"\b(?:\d[ -]?){12,18}\d\b"), "[CARD]", Check::Luhn),
            (
                r(
                    r"\b\d{3}-\d{2}-\d{4}\b|\b[12][ ]?\d{2}[ ]?(?:0[1-9]|1[0-2])[ ]?\d{2}[ ]?\d{3}[ ]?\d{3}[ ]?\d{2}\b|\b[A-CEGHJ-PR-TW-Z]{2}[ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]\b",
                ),
                "[NATIONAL_ID]",
                Check::None,
            ),
            (
                r(
                    r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b|(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5}\b",
                ),
                "[IP]",
                Check::None,
            ),
            (
                r(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,5}"),
                "[PHONE]",
                Check::PhoneDigits,
            ),
        ];
        let extra = extra
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("capture pattern {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Scrubber { rules, extra })
    }

    /// `text` with every match replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (re, with, check) in &self.rules {
            let out = re.replace_all(&s, |c: &Captures<'_>| {
                let m = &c[0];
                let ok = match check {
                    Check::None => true,
                    Check::Luhn => luhn(m),
                    Check::Iban => iban(m),
                    Check::PhoneDigits => {
                        let n = m.bytes().filter(u8::is_ascii_digit).count();
                        (9..=15).contains(&n)
                    }
                };
                if ok { with.to_string() } else { m.to_string() }
            });
            s = out.into_owned();
        }
        for re in &self.extra {
            s = re.replace_all(&s, "[REDACTED]").into_owned();
        }
        s
    }
}

/// Luhn checksum over the digits of `s` (13–19 digits).
fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616 mod-97 check.
fn iban(s: &str) -> bool {
    let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() < 15 || c.len() > 34 {
        return false;
    }
    let rearranged = c[4..].iter().chain(&c[..4]);
    let mut rem: u32 = 0;
    for ch in rearranged {
        let v = match ch.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_each_kind_and_keeps_look_alikes() {
        let s = Scrubber::new(&["secret-\\w+".to_string()]).unwrap();
        let cases = [
            ("mail jane.doe+x@example.co.uk now", "mail [EMAIL] now"),
            ("iban DE89 3704 0044 0532 0130 00 ok", "iban [IBAN] ok"),
            ("iban GB82WEST12345698765432", "iban [IBAN]"),
            ("card 4111 1111 1111 1111.", "card [CARD]."),
            (
                "card 4111-1111-1111-1112 fails luhn",
                "card 4111-1111-1111-1112 fails luhn",
            ),
            ("ssn 123-45-6789", "ssn [NATIONAL_ID]"),
            ("nir 1 84 12 76 451 089 46", "nir [NATIONAL_ID]"),
            ("nino AB 12 34 56 C", "nino [NATIONAL_ID]"),
            (
                "from 192.168.1.20 and fe80::1ff:fe23:4567:890a",
                "from [IP] and [IP]",
            ),
            (
                "call +33 6 12 34 56 78 or (555) 123-4567",
                "call [PHONE] or [PHONE]",
            ),
            (
                "on 2026-11-22 at 12:30:45, std::vector, v1.2.3",
                "on 2026-11-22 at 12:30:45, std::vector, v1.2.3",
            ),
            ("token secret-abc123 here", "token [REDACTED] here"),
        ];
        for (input, want) in cases {
            assert_eq!(s.scrub(input), want, "{input}");
        }
        assert!(Scrubber::new(&["(".to_string()]).is_err());
    }
}
