//! The gateway's own HTTP/1.1 upstream client against scripted upstreams on loopback: every
//! body framing of RFC 9112 (length, chunked with extensions and trailers, read until
//! close), interim `1xx` responses, and upstreams that answer with something that is not
//! HTTP/1.1 or stop in the middle of the head.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn chat(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "max_tokens": 16,
           "messages": [{"role": "user", "content": "hi"}]})
}

const TOKEN: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n";
const STOP: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// A whole chat completion body with usage.
const WHOLE: &str = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}";

/// Sends one chat request through a gateway in front of `script`; returns the status, the
/// body the client received, and the request's log line (status 0 and the error's text
/// when the client got no response head).
async fn through(script: Vec<Step>, stream: bool) -> (u16, String, Value) {
    let (_d, log) = temp_log();
    let up = fake(script).await;
    let gw = gateway(config(&[("a", url(up.addr, ""), "vllm")], &log)).await;
    let sent = client()
        .post(url(gw.addr, "/v1/chat/completions"))
        .json(&chat(stream))
        .send()
        .await;
    let (status, body) = match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = tokio::time::timeout(Duration::from_secs(5), r.text())
                .await
                .expect("the body ends");
            (status, body.unwrap_or_else(|e| format!("body error: {e}")))
        }
        Err(e) => (0, format!("request error: {e}")),
    };
    let line = log_lines(&log, 1).await.remove(0);
    gw.shutdown(Duration::from_secs(1)).await;
    (status, body, line)
}

/// A response head announcing `len` body bytes, followed by `body`.
fn with_length(len: usize, body: &str) -> Step {
    Step::Write(format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n{body}").into_bytes())
}

fn no_error(line: &Value) {
    assert!(line.get("error_class").is_none_or(Value::is_null), "{line}");
}

#[tokio::test]
async fn a_length_delimited_body_split_over_writes_arrives_whole_and_is_counted() {
    let (a, b) = WHOLE.split_at(40);
    let (status, body, line) = through(
        vec![
            with_length(WHOLE.len(), a),
            Step::Sleep(Duration::from_millis(30)),
            Step::Write(b.as_bytes().to_vec()),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, WHOLE);
    no_error(&line);
    assert_eq!(line["prompt_tokens"], 7);
    assert_eq!(line["generation_tokens"], 3);
    assert_eq!(line["finish_reason"], "stop");
}

#[tokio::test]
async fn interim_1xx_responses_are_skipped() {
    let (status, body, line) = through(
        vec![
            Step::Write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
            Step::Sleep(Duration::from_millis(20)),
            with_length(WHOLE.len(), WHOLE),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, WHOLE);
    assert_eq!(line["generation_tokens"], 3);
}

#[tokio::test]
async fn a_close_delimited_stream_ends_when_the_upstream_closes() {
    let (status, body, line) = through(
        vec![
            Step::Write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            ),
            Step::Write(TOKEN.as_bytes().to_vec()),
            Step::Sleep(Duration::from_millis(30)),
            Step::Write(STOP.as_bytes().to_vec()),
            Step::Close,
        ],
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("{TOKEN}{STOP}"));
    no_error(&line);
    assert_eq!(line["generation_tokens"], 2);
    assert_eq!(line["finish_reason"], "stop");
}

#[tokio::test]
async fn chunk_extensions_split_sizes_and_trailers_are_decoded() {
    // One event over three chunks, the size line itself split across writes, an
    // extension on one chunk and a trailer after the last.
    let (e1, rest) = TOKEN.split_at(10);
    let (e2, e3) = rest.split_at(20);
    let (status, body, line) = through(
        vec![
            sse_head(),
            Step::Write(format!("{:x}", e1.len()).into_bytes()),
            Step::Sleep(Duration::from_millis(10)),
            Step::Write(format!("\r\n{e1}\r\n{:x};ext=\"v\"\r\n{e2}\r\n", e2.len()).into_bytes()),
            chunk(e3),
            chunk(STOP),
            Step::Write(b"0\r\nx-trailer: 1\r\n\r\n".to_vec()),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("{TOKEN}{STOP}"));
    no_error(&line);
    assert_eq!(line["generation_tokens"], 2);
}

#[tokio::test]
async fn a_response_head_that_is_not_http_or_cut_short_gets_a_named_502() {
    for (sent, says) in [
        (
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            "upstream a sent a response that is not HTTP/1.1",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-ty",
            "closed in the middle of the response head",
        ),
    ] {
        let (status, body, line) =
            through(vec![Step::Write(sent.to_vec()), Step::Close], true).await;
        assert_eq!(status, 502, "{body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        let m = e["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{m}");
        assert_eq!(line["status"], 502);
        assert_eq!(line["error_class"], "upstream_reset");
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_upstream_break() {
    let (status, body, line) = through(
        vec![with_length(WHOLE.len() + 50, WHOLE), Step::Close],
        false,
    )
    .await;
    // The client never takes it for a whole body (hyper closes the connection; whether
    // the head got out first depends on timing); the log says what happened.
    assert!(
        status == 0 || body.starts_with("body error"),
        "{status} {body}"
    );
    assert_eq!(line["error_class"], "upstream_reset", "{line}");
    let e = line["error"].as_str().unwrap();
    assert!(e.starts_with("upstream a broke the response after"), "{e}");
}
