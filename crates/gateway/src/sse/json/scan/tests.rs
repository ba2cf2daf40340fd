use super::super::{Dialect, Parsed, read};
use super::*;

/// Events and bodies as the engines send them (shapes from their sources: vLLM's and
/// SGLang's OpenAI chunks, llama.cpp's with `timings`, TGI's `/generate_stream` events and
/// `/generate` bodies), plus the odd ones the reader must leave to serde.
const CORPUS: &[&str] = &[
    // vLLM chat chunk: role first, then content, then finish and usage.
    r#"{"id":"chatcmpl-9f2","object":"chat.completion.chunk","created":1733000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-9f2","object":"chat.completion.chunk","created":1733000000,"model":"m","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-9f2","object":"chat.completion.chunk","created":1733000000,"model":"m","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}"#,
    r#"{"id":"chatcmpl-9f2","object":"chat.completion.chunk","created":1733000000,"model":"m","choices":[],"usage":{"prompt_tokens":17,"total_tokens":81,"completion_tokens":64,"prompt_tokens_details":null}}"#,
    // SGLang: usage null on every chunk, matched_stop.
    r#"{"id":"1b6c","object":"chat.completion.chunk","created":1733000001,"model":"qwen","choices":[{"index":0,"delta":{"role":null,"content":"Hi","reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
    r#"{"id":"1b6c","object":"chat.completion.chunk","created":1733000001,"model":"qwen","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":"think","tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
    r#"{"id":"1b6c","choices":[{"index":0,"delta":{"tool_calls":[{"id":"call_1","index":0,"type":"function","function":{"name":"get","arguments":"{}"}}]},"finish_reason":"tool_calls","matched_stop":null}]}"#,
    // llama.cpp: timings on the last chunk, floats among them.
    r#"{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1733000002,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b4500","object":"chat.completion.chunk","usage":{"completion_tokens":3,"prompt_tokens":458,"total_tokens":461},"timings":{"cache_n":457,"prompt_n":1,"prompt_ms":12.5,"prompt_per_token_ms":12.5,"prompt_per_second":80.0,"predicted_n":3,"predicted_ms":30.1,"predicted_per_token_ms":10.03,"predicted_per_second":99.67}}"#,
    r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"ok"}}],"created":1733000002,"id":"chatcmpl-x","model":"gpt-3.5-turbo","system_fingerprint":"b4500","object":"chat.completion.chunk"}"#,
    // Completions.
    r#"{"id":"cmpl-1","object":"text_completion","created":1733000003,"model":"m","choices":[{"index":0,"text":" world","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
    // TGI stream events and a /generate body.
    r#"{"index":1,"token":{"id":1,"text":"Hi","logprob":-0.5,"special":false},"generated_text":null,"details":null}"#,
    r#"{"index":2,"token":{"id":2,"text":"!","logprob":-1.25e-3,"special":false},"generated_text":"Hi!","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null,"input_length":5}}"#,
    r#"{"generated_text":"Hello","details":{"finish_reason":"length","generated_tokens":16,"seed":42,"prefill":[],"tokens":[{"id":1,"text":"He","logprob":-0.1,"special":false}]}}"#,
    // Non-streamed chat body.
    r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello there","tool_calls":[]},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
    // Left to serde: escapes, an error object, unusual shapes.
    r#"{"choices":[{"index":0,"delta":{"content":"line\nbreak"},"finish_reason":null}]}"#,
    r#"{"choices":[{"index":0,"delta":{"content":"caf\u00e9"},"finish_reason":null}]}"#,
    r#"{"error":{"message":"engine died","code":500}}"#,
    r#"{"error":"plain"}"#,
    r#"{"choices":{"index":0}}"#,
    r#"{"choices":[[null,null,"t","stop"]]}"#,
    r#"[{"choices":[]}]"#,
    r#"{"choices":[],"usage":{"prompt_tokens":1.0,"completion_tokens":-1}}"#,
    r#"{"choices":[],"choices":[]}"#,
    r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
    "  {\"choices\" : [ {\"delta\" : {\"content\" : \"spaced\"} , \"finish_reason\" : \"stop\" } ] }\r\n",
    r#"{"choices":[{"delta":{"content":"日本語のテキスト"},"finish_reason":null}]}"#,
];

/// Events the fast reader must take itself (else it would silently never run).
const FAST: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 24, 25];

fn via(data: &[u8], fast: bool, dialect: Dialect, streamed: bool) -> Option<Parsed<'_>> {
    let b = if fast {
        body(data)?
    } else {
        serde_json::from_slice(data).ok()?
    };
    let mut out = Parsed::default();
    read(dialect, b, streamed, &mut out);
    Some(out)
}

/// Whatever the fast reader accepts, serde accepts and reads the same way.
fn agrees(data: &[u8]) {
    for dialect in [Dialect::Chat, Dialect::Completion, Dialect::Tgi] {
        for streamed in [true, false] {
            if let Some(fast) = via(data, true, dialect, streamed) {
                let slow = via(data, false, dialect, streamed);
                assert_eq!(
                    Some(&fast),
                    slow.as_ref(),
                    "{dialect:?} streamed={streamed}: {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
    }
}

#[test]
fn engine_events_take_the_fast_path_and_read_as_serde_does() {
    for (i, e) in CORPUS.iter().enumerate() {
        assert_eq!(
            body(e.as_bytes()).is_some(),
            FAST.contains(&i),
            "event {i}: {e}"
        );
        agrees(e.as_bytes());
    }
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that change JSON's structure or meaning where they land.
const TRICKY: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"0",
    b"01",
    b"-",
    b"-0",
    b"1e",
    b".5",
    b"e9",
    b"null",
    b"nul",
    b"true",
    b"tru",
    b" ",
    b"\t",
    b"\x0c",
    b"\x01",
    b"\xff",
    b"\xc3",
    b"\"choices\":[]",
    b"\"usage\":null",
    b"\"content\":\"x\"",
    b"\"finish_reason\":\"stop\"",
    b"\"error\":null",
    b"\"delta\":{}",
    b"\"text\":null",
    b"{\"a\":[1,{\"b\":2}]}",
];

#[test]
fn mutated_events_never_read_differently_from_serde() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for e in CORPUS {
        let e = e.as_bytes();
        // Every prefix.
        for n in 0..e.len() {
            agrees(&e[..n]);
        }
        // Random edits: replace, insert or delete a few spans.
        for _ in 0..2_000 {
            let mut m = e.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(m.len() + 1);
                let t = TRICKY[rng.below(TRICKY.len())];
                match rng.below(3) {
                    0 => {
                        let end = (at + 1 + rng.below(4)).min(m.len());
                        m.splice(at..end, t.iter().copied());
                    }
                    1 => {
                        m.splice(at..at, t.iter().copied());
                    }
                    _ => {
                        let end = (at + 1 + rng.below(8)).min(m.len());
                        m.drain(at..end);
                    }
                }
            }
            agrees(&m);
        }
    }
}

#[test]
fn deep_nesting_goes_to_serde() {
    let deep = format!(
        "{{\"choices\":[],\"x\":{}1{}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(body(deep.as_bytes()).is_none());
    assert!(via(deep.as_bytes(), false, Dialect::Chat, true).is_some());
    let shallow = format!(
        "{{\"choices\":[],\"x\":{}1{}}}",
        "[".repeat(8),
        "]".repeat(8)
    );
    assert!(body(shallow.as_bytes()).is_some());
}
