//! Feeds arbitrary bytes through the gateway's SSE tee parser, whole and cut into pieces at
//! arbitrary points, in every dialect, with and without removing the usage chunk: it must
//! never panic, must forward the upstream's bytes unchanged when not removing, and what it
//! forwards and what it reads must not depend on how the bytes were cut.
#![no_main]

use bytes::Bytes;
use gateway::sse::{Dialect, SseTap, Summary, parse_whole};
use libfuzzer_sys::fuzz_target;

/// Feeds `pieces`; returns the bytes the client would get, token events and the summary.
fn run(dialect: Dialect, strip: bool, pieces: &[&[u8]]) -> (Vec<u8>, u64, Summary) {
    let mut tap = SseTap::new(dialect, strip, 256);
    let mut out = Vec::new();
    let mut tokens = 0;
    for p in pieces {
        let b = Bytes::copy_from_slice(p);
        let fed = tap.feed(&b);
        tokens += fed.tokens;
        if !strip {
            assert!(fed.replace.is_none(), "bytes rewritten without removal on");
        }
        out.extend_from_slice(fed.replace.as_ref().unwrap_or(&b));
    }
    if let Some(h) = tap.take_held() {
        out.extend_from_slice(&h);
    }
    (out, tokens, std::mem::take(&mut tap.summary))
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    // Cut points from the seed: every `step` bytes, `step` in 1..=16.
    let step = usize::from(seed % 16) + 1;
    let pieces: Vec<&[u8]> = body.chunks(step).collect();
    for dialect in [Dialect::Chat, Dialect::Completion, Dialect::Tgi] {
        for strip in [false, true] {
            let whole = run(dialect, strip, &[body]);
            let cut = run(dialect, strip, &pieces);
            if !strip {
                assert_eq!(whole.0, body, "forwarded bytes changed");
            }
            assert_eq!(whole.0, cut.0, "output depends on the cut points (step {step})");
            assert_eq!(whole.1, cut.1, "token events depend on the cut points");
            assert_eq!(whole.2, cut.2, "summary depends on the cut points");
            assert_eq!(whole.1, whole.2.token_events);
        }
        let _ = parse_whole(dialect, body, 256);
    }
});
