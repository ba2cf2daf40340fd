//! Text without a tokenizer: prompt lengths counted from the text by a fixed rule, and
//! output tokens drawn from a small vocabulary, both deterministic.
//!
//! Counting rule: a token is a run of up to 4 letters or digits (with the whitespace
//! before it), or one other character. So "The cat sat." is 4 tokens (` cat`, …, `.`) and
//! "Hello" is 2 (`Hell`, `o`) — close to what a BPE tokenizer gives for English. Chat messages add 4
//! tokens each for the template, plus 3 to prime the reply (OpenAI's rule of thumb).

/// Tokens in `text` by the counting rule.
pub fn count_tokens(text: &str) -> u32 {
    let mut n = 0u32;
    let mut run = 0u32;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if run == 0 || run == 4 {
                n += 1;
                run = 0;
            }
            run += 1;
        } else {
            run = 0;
            if !c.is_whitespace() {
                n += 1;
            }
        }
    }
    n
}

/// Prompt tokens of a chat request: each message's content plus template overhead.
pub fn count_chat(contents: &[&str]) -> u32 {
    contents.iter().map(|c| count_tokens(c) + 4).sum::<u32>() + 3
}

const WORDS: [&str; 64] = [
    " the", " model", " token", " cache", " batch", " latency", " signal", " layer", " engine",
    " request", " stream", " queue", " memory", " tensor", " kernel", " clock", " power", " link",
    " and", " of", " to", " in", " is", " for", " with", " on", " that", " by", " as", " at",
    " this", " from", " it", " each", " every", " when", " while", " then", " so", " more",
    " less", " fast", " slow", " warm", " cold", " high", " low", " first", " last", " next",
    " time", " step", " block", " prefix", " prompt", " reply", " user", " node", " GPU", " rate",
    " load", " trace", " span", ".",
];

/// The first output tokens of a refusal (as many as `engine::REFUSAL_TOKENS`).
const REFUSAL: [&str; 8] = [
    "I", " can't", " help", " with", " that", " request", ".", " Sorry",
];

/// The text of output token `index` of request `seq` (deterministic); a refusal starts
/// with "I can't help with that request."
pub fn token_text(seed: u64, seq: u64, index: u32, refusal: bool) -> &'static str {
    match REFUSAL.get(index as usize) {
        Some(w) if refusal => w,
        _ => WORDS[(mix(seed, seq, index) % WORDS.len() as u64) as usize],
    }
}

/// A vocabulary id for output token `index` of request `seq`.
pub fn token_id(seed: u64, seq: u64, index: u32) -> u32 {
    (mix(seed, seq, index) % 128_000) as u32
}

fn mix(seed: u64, seq: u64, index: u32) -> u64 {
    let mut z = seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((index as u64) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_rule() {
        assert_eq!(count_tokens("The cat sat."), 4);
        assert_eq!(count_tokens("Hello, world!"), 6);
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("abcdefgh"), 2);
        assert_eq!(count_tokens("abcdefghi"), 3);
        assert_eq!(count_tokens("a b c"), 3);
        assert_eq!(count_chat(&["Hi"]), 8);
        assert_eq!(token_text(1, 2, 3, false), token_text(1, 2, 3, false));
    }

    #[test]
    fn a_refusal_reads_as_one_for_the_gateway_and_counts_its_tokens() {
        let text: String = (0..crate::engine::REFUSAL_TOKENS)
            .map(|i| token_text(1, 2, i, true))
            .collect();
        assert!(text.to_lowercase().starts_with("i can't help"), "{text}");
        assert_eq!(REFUSAL.len() as u32, crate::engine::REFUSAL_TOKENS);
        assert_ne!(token_text(1, 2, 0, false), "I");
    }
}
