use super::*;

fn chat_chunk(content: &str, finish: Option<&str>) -> String {
    let f = finish.map_or("null".to_string(), |f| format!("\"{f}\""));
    format!(
        "data: {{\"id\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":{f}}}]}}\n\n",
        serde_json::to_string(content).unwrap()
    )
}

const USAGE: &str = "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn stream() -> String {
    let role = "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
    format!(
        "{role}{}{}{}{USAGE}{DONE}",
        chat_chunk("I cannot", None),
        chat_chunk(" do", None),
        chat_chunk(" that", Some("length"))
    )
}

/// Feeds `body` split at every `step` bytes; returns what the client receives.
fn run(tap: &mut SseTap, body: &str, step: usize) -> (String, u64) {
    let mut out = Vec::new();
    let mut tokens = 0;
    for piece in body.as_bytes().chunks(step) {
        let b = Bytes::copy_from_slice(piece);
        let fed = tap.feed(&b);
        tokens += fed.tokens;
        out.extend_from_slice(fed.replace.as_ref().unwrap_or(&b));
    }
    if let Some(h) = tap.take_held() {
        out.extend_from_slice(&h);
    }
    (String::from_utf8(out).unwrap(), tokens)
}

#[test]
fn reads_tokens_usage_finish_without_changing_bytes() {
    let body = stream();
    for step in [1, 3, 7, 64, body.len()] {
        let mut tap = SseTap::new(Dialect::Chat, false, 0);
        let (out, tokens) = run(&mut tap, &body, step);
        assert_eq!(out, body, "step {step}");
        assert_eq!(tokens, 3);
        let s = &tap.summary;
        assert_eq!(s.finish_reason.as_deref(), Some("length"));
        assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(7), Some(3)));
        assert_eq!(s.head, "I cannot do that");
        assert!(s.done);
        assert_eq!(s.malformed, 0);
    }
}

#[test]
fn removes_exactly_the_usage_chunk_at_any_split() {
    let body = stream();
    let expected = body.replace(USAGE, "");
    for step in [1, 2, 5, 13, 64, body.len()] {
        let mut tap = SseTap::new(Dialect::Chat, true, 0);
        let (out, _) = run(&mut tap, &body, step);
        assert_eq!(out, expected, "step {step}");
        assert_eq!(tap.summary.completion_tokens, Some(3));
    }
}

#[test]
fn crlf_multiline_and_malformed_events() {
    let body = "data: {\"choices\":[{\"text\":\"a\",\r\ndata: \"finish_reason\":\"stop\"}]}\r\n\r\ndata: {not json\n\n: comment\n\ndata: [DONE]\n\n";
    let mut tap = SseTap::new(Dialect::Completion, false, 0);
    let (out, tokens) = run(&mut tap, body, 4);
    assert_eq!(out, body);
    assert_eq!(tokens, 1);
    assert_eq!(tap.summary.malformed, 1);
    assert_eq!(tap.summary.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn tgi_stream_and_error_events() {
    let body = "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"Hi\",\"special\":false},\"generated_text\":null,\"details\":null}\n\ndata:{\"index\":2,\"token\":{\"id\":2,\"text\":\"!\",\"special\":false},\"generated_text\":\"Hi!\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2,\"seed\":null}}\n\n";
    let mut tap = SseTap::new(Dialect::Tgi, false, 100);
    let (_, tokens) = run(&mut tap, body, 10);
    assert_eq!(tokens, 2);
    assert_eq!(tap.summary.finish_reason.as_deref(), Some("stop"));
    assert_eq!(tap.summary.completion_tokens, Some(2));
    assert_eq!(tap.summary.capture.as_deref(), Some("Hi!"));
    let mut tap = SseTap::new(Dialect::Chat, false, 0);
    run(
        &mut tap,
        "data: {\"error\":{\"message\":\"engine died\",\"code\":500}}\n\n",
        100,
    );
    assert_eq!(tap.summary.error.as_deref(), Some("engine died"));
}

#[test]
fn whole_bodies() {
    let s = parse_whole(
        Dialect::Chat,
        br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok then"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
        0,
    );
    assert_eq!(s.head, "ok then");
    assert_eq!(s.completion_tokens, Some(2));
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    let s = parse_whole(Dialect::Tgi, br#"{"generated_text":"yes"}"#, 0);
    assert_eq!((s.head.as_str(), s.token_events), ("yes", 1));
    assert_eq!(parse_whole(Dialect::Chat, b"<html>", 0).malformed, 1);
}

#[test]
fn head_is_capped_on_a_char_boundary() {
    let mut s = Summary::new(5);
    s.text("ééé");
    assert_eq!(s.capture.as_deref(), Some("éé"));
    assert_eq!(s.chars, 3);
}

#[test]
fn lines_that_are_not_sse_fields_are_counted_malformed_and_forwarded() {
    let body = format!(
        "foo\n{}event: message\nid: 7\nretry: 100\n: keep-alive\nbar: baz\n{}{DONE}",
        chat_chunk("a", None),
        chat_chunk("b", Some("stop"))
    );
    for step in [1, 5, body.len()] {
        let mut tap = SseTap::new(Dialect::Chat, false, 0);
        let (out, tokens) = run(&mut tap, &body, step);
        assert_eq!(out, body, "step {step}");
        assert_eq!(tokens, 2, "the stream is read on");
        assert_eq!(
            tap.summary.malformed, 2,
            "`foo` and `bar: baz`, step {step}"
        );
        assert!(tap.summary.done);
    }
}

/// llama.cpp's last chunk: `timings.prompt_n` counts only the prompt tokens evaluated,
/// `cache_n` those taken from the prompt cache.
fn llamacpp_final(usage: bool) -> String {
    let usage = if usage {
        ",\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":458,\"total_tokens\":461}"
    } else {
        ""
    };
    format!(
        "data: {{\"choices\":[{{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{{}}}}]{usage},\"timings\":{{\"cache_n\":457,\"prompt_n\":1,\"prompt_ms\":12.5,\"predicted_n\":3,\"predicted_ms\":30.1}}}}\n\n"
    )
}

#[test]
fn llamacpp_prompt_tokens_include_the_cached_prefix_with_or_without_usage() {
    for usage in [false, true] {
        let body = format!(
            "{}{}{}{DONE}",
            chat_chunk("a", None),
            chat_chunk("b", None),
            llamacpp_final(usage)
        );
        let mut tap = SseTap::new(Dialect::Chat, false, 0);
        run(&mut tap, &body, 9);
        let s = &tap.summary;
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens),
            (Some(458), Some(3)),
            "usage: {usage}"
        );
    }
    // Usage wins over timings, also when timings come in a later event.
    let body = format!(
        "{}{}data: {{\"choices\":[],\"timings\":{{\"prompt_n\":1,\"predicted_n\":9}}}}\n\n{DONE}",
        chat_chunk("a", Some("stop")),
        USAGE
    );
    let mut tap = SseTap::new(Dialect::Chat, false, 0);
    run(&mut tap, &body, body.len());
    let s = &tap.summary;
    assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(7), Some(3)));
    // Without cache_n, prompt_n is the prompt.
    let body = "{\"choices\":[{\"message\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"timings\":{\"prompt_n\":12,\"predicted_n\":2}}";
    let s = parse_whole(Dialect::Chat, body.as_bytes(), 0);
    assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(12), Some(2)));
}

#[test]
fn every_choice_and_text_of_an_event_is_read_in_order() {
    // n > 1 (several choices), content and reasoning in one delta, choices null.
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"a\",\"content\":\"b\"}},{\"index\":1,\"text\":\"c\",\"finish_reason\":\"stop\"},{\"index\":2,\"delta\":{\"content\":\"d\"},\"finish_reason\":\"length\"}]}\n\ndata: {\"choices\":null}\n\n";
    let mut tap = SseTap::new(Dialect::Chat, false, 0);
    let (_, tokens) = run(&mut tap, body, body.len());
    assert_eq!(tokens, 1, "one event with text: one token event");
    let s = &tap.summary;
    assert_eq!(
        s.head, "bacd",
        "content, then reasoning, then the next choices"
    );
    assert_eq!(
        s.finish_reason.as_deref(),
        Some("stop"),
        "the first finish reason"
    );
    assert_eq!(s.malformed, 0);
    let body = "data: {\"choices\":{\"index\":0}}\n\n";
    let mut tap = SseTap::new(Dialect::Chat, false, 0);
    run(&mut tap, body, body.len());
    assert_eq!(tap.summary.malformed, 1, "choices that are not an array");
}
