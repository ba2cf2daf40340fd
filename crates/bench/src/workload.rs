//! What each request asks for: a prompt (synthetic of a drawn length, or from a JSONL
//! file) and an output length drawn from a distribution. Request `i` of a seeded workload
//! is the same whatever the load shape and the order requests finish in.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_core::rng::Rng;

/// A length distribution (tokens).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LengthDist {
    /// Always `n`.
    Fixed {
        /// The length.
        n: u32,
    },
    /// Uniform in `[lo, hi]`.
    Uniform {
        /// Smallest.
        lo: u32,
        /// Largest.
        hi: u32,
    },
    /// Normal, rounded and clamped to at least 1.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        sd: f64,
    },
}

impl LengthDist {
    /// Draws one length (≥ 1).
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        let v = match *self {
            LengthDist::Fixed { n } => n,
            LengthDist::Uniform { lo, hi } => {
                let span = u64::from(hi - lo) + 1;
                lo + (rng.next_u64() % span) as u32
            }
            LengthDist::Normal { mean, sd } => (mean + sd * rng.normal())
                .round()
                .clamp(1.0, u32::MAX as f64) as u32,
        };
        v.max(1)
    }
}

impl FromStr for LengthDist {
    type Err = String;

    /// `128`, `uniform:64-256` or `normal:200,50`.
    fn from_str(s: &str) -> Result<Self, String> {
        let help =
            "write N, uniform:LO-HI or normal:MEAN,SD (e.g. 128, uniform:64-256, normal:200,50)";
        let num = |x: &str| -> Result<u32, String> {
            match x.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("`{x}` is not a length ≥ 1; {help}")),
            }
        };
        if let Some(r) = s.strip_prefix("uniform:") {
            let (lo, hi) = r.split_once('-').ok_or_else(|| format!("`{s}`: {help}"))?;
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo > hi {
                return Err(format!("`{s}`: LO is above HI; {help}"));
            }
            Ok(LengthDist::Uniform { lo, hi })
        } else if let Some(r) = s.strip_prefix("normal:") {
            let (m, sd) = r.split_once(',').ok_or_else(|| format!("`{s}`: {help}"))?;
            let f = |x: &str| {
                x.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            match (f(m), f(sd)) {
                (Some(mean), Some(sd)) if mean >= 1.0 => Ok(LengthDist::Normal { mean, sd }),
                _ => Err(format!("`{s}`: MEAN must be ≥ 1 and SD ≥ 0; {help}")),
            }
        } else {
            Ok(LengthDist::Fixed { n: num(s)? })
        }
    }
}

impl fmt::Display for LengthDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthDist::Fixed { n } => write!(f, "{n}"),
            LengthDist::Uniform { lo, hi } => write!(f, "uniform:{lo}-{hi}"),
            LengthDist::Normal { mean, sd } => write!(f, "normal:{mean},{sd}"),
        }
    }
}

/// One request's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The prompt text (the user message for chat).
    pub text: String,
    /// Output tokens asked for (`max_tokens`, TGI `max_new_tokens`).
    pub max_tokens: u32,
}

/// One line of a prompts file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FilePrompt {
    /// The prompt text.
    pub prompt: String,
    /// Output tokens for this prompt (else drawn from the output distribution).
    #[serde(default, alias = "output_tokens")]
    pub max_tokens: Option<u32>,
}

/// Reads a JSONL prompts file: one `{"prompt": "...", "max_tokens": N}` object per line
/// (`max_tokens` optional, alias `output_tokens`); blank lines are skipped.
pub fn parse_prompts(text: &str, name: &str) -> Result<Vec<FilePrompt>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: FilePrompt = serde_json::from_str(line).map_err(|e| {
            format!(
                "{name}:{}: {e} (each line must be {{\"prompt\": \"...\", \"max_tokens\": N}}, max_tokens optional)",
                i + 1
            )
        })?;
        out.push(p);
    }
    if out.is_empty() {
        return Err(format!("{name}: no prompts (one JSON object per line)"));
    }
    Ok(out)
}

/// Where prompts come from.
#[derive(Debug, Clone)]
pub enum Prompts {
    /// Synthetic text of a drawn number of tokens: common 4-letter words, one token each
    /// for typical tokenizers (and exactly one for the simulator), from a random offset of
    /// a seeded word pool so that prompts do not share a cacheable prefix.
    Synthetic(LengthDist),
    /// Prompts from a file, in order, cycling.
    File(Arc<Vec<FilePrompt>>),
}

const WORDS: [&str; 32] = [
    "time", "year", "work", "life", "hand", "part", "case", "week", "fact", "area", "book", "word",
    "side", "kind", "head", "home", "room", "city", "name", "team", "idea", "body", "face", "door",
    "line", "game", "food", "land", "road", "tree", "fire", "rain",
];
/// Words in the synthetic pool; synthetic prompts are at most this long.
const POOL_WORDS: usize = 1 << 16;

/// The whole input side of a run.
#[derive(Debug, Clone)]
pub struct Workload {
    prompts: Prompts,
    output: LengthDist,
    seed: u64,
    pool: Arc<str>,
}

impl Workload {
    /// A workload drawing prompts from `prompts` and output lengths from `output`.
    pub fn new(prompts: Prompts, output: LengthDist, seed: u64) -> Workload {
        let pool = match prompts {
            Prompts::Synthetic(_) => {
                let mut r = Rng::fork(seed, 1);
                let mut s = String::with_capacity(POOL_WORDS * 5);
                for _ in 0..POOL_WORDS {
                    s.push_str(WORDS[(r.next_u64() % WORDS.len() as u64) as usize]);
                    s.push(' ');
                }
                s
            }
            Prompts::File(_) => String::new(),
        };
        Workload {
            prompts,
            output,
            seed,
            pool: pool.into(),
        }
    }

    /// The prompt of request `i`.
    pub fn prompt(&self, i: u64) -> Prompt {
        let mut rng = Rng::fork(self.seed, i.wrapping_add(2));
        match &self.prompts {
            Prompts::Synthetic(d) => {
                let n = (d.draw(&mut rng) as usize).min(POOL_WORDS);
                let start = (rng.next_u64() % (POOL_WORDS - n + 1) as u64) as usize;
                let text = self.pool[start * 5..(start + n) * 5 - 1].to_string();
                Prompt {
                    text,
                    max_tokens: self.output.draw(&mut rng),
                }
            }
            Prompts::File(ps) => {
                let p = &ps[(i % ps.len() as u64) as usize];
                Prompt {
                    text: p.prompt.clone(),
                    max_tokens: p.max_tokens.unwrap_or_else(|| self.output.draw(&mut rng)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse_and_draw_in_range() {
        assert_eq!("128".parse(), Ok(LengthDist::Fixed { n: 128 }));
        let u: LengthDist = "uniform:10-20".parse().unwrap();
        let n: LengthDist = "normal:200,50".parse().unwrap();
        for bad in [
            "0",
            "x",
            "uniform:20-10",
            "uniform:5",
            "normal:-1,2",
            "normal:5",
        ] {
            assert!(bad.parse::<LengthDist>().is_err(), "{bad}");
        }
        let mut r = Rng::new(3);
        let draws: Vec<u32> = (0..2000).map(|_| u.draw(&mut r)).collect();
        assert!(draws.iter().all(|&d| (10..=20).contains(&d)));
        assert!(draws.contains(&10) && draws.contains(&20));
        let mean = (0..4000).map(|_| n.draw(&mut r) as f64).sum::<f64>() / 4000.0;
        assert!((mean - 200.0).abs() < 5.0, "{mean}");
        assert_eq!(u.to_string().parse(), Ok(u));
    }

    #[test]
    fn synthetic_prompts_have_the_drawn_length_and_repeat_by_seed() {
        let w = Workload::new(
            Prompts::Synthetic(LengthDist::Fixed { n: 50 }),
            "uniform:1-9".parse().unwrap(),
            7,
        );
        let p = w.prompt(3);
        assert_eq!(p.text.split(' ').count(), 50);
        assert_eq!(sim::server::text::count_tokens(&p.text), 50);
        assert!((1..=9).contains(&p.max_tokens));
        assert_eq!(p, w.prompt(3));
        assert_ne!(p.text, w.prompt(4).text);
    }

    #[test]
    fn prompt_files_cycle_and_bad_lines_name_their_line() {
        let ps = parse_prompts(
            "{\"prompt\":\"a\"}\n\n{\"prompt\":\"b\",\"output_tokens\":5}\n",
            "p.jsonl",
        )
        .unwrap();
        let w = Workload::new(Prompts::File(Arc::new(ps)), LengthDist::Fixed { n: 9 }, 1);
        assert_eq!(
            w.prompt(0),
            Prompt {
                text: "a".into(),
                max_tokens: 9
            }
        );
        assert_eq!(
            w.prompt(3),
            Prompt {
                text: "b".into(),
                max_tokens: 5
            }
        );
        let e = parse_prompts("{\"prompt\":\"a\"}\n{\"text\":1}\n", "p.jsonl").unwrap_err();
        assert!(e.starts_with("p.jsonl:2:"), "{e}");
        assert!(parse_prompts("\n", "p.jsonl").is_err());
    }
}
