//! What one streamed event means for the measurements, found by scanning its bytes for
//! keys (a JSON key pattern such as `"content"` cannot occur inside a string value, where
//! quotes are escaped). Only an event carrying `usage` or a TGI `details` object is parsed
//! with serde, once per request.

use serde::Deserialize;

use super::Api;

/// The meaning of one event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Carries output text (a non-empty `content`, `reasoning_content` or `text`).
    pub content: bool,
    /// The stream terminator (`[DONE]`, or TGI's event with `details`).
    pub done: bool,
    /// The server's count of output tokens (`usage.completion_tokens`, TGI
    /// `details.generated_tokens`).
    pub usage_tokens: Option<u32>,
    /// The server reported an error inside the stream.
    pub error: bool,
}

/// Reads the event `data` of a stream of `api`.
pub fn classify(api: Api, data: &[u8]) -> Event {
    let data = data.trim_ascii();
    if data == b"[DONE]" {
        return Event {
            done: true,
            ..Event::default()
        };
    }
    let mut ev = Event {
        error: value_start(data, b"\"error\"").is_some_and(|b| b != b'n')
            || data.starts_with(b"{\"object\":\"error\""),
        ..Event::default()
    };
    ev.content = [&b"\"content\""[..], b"\"text\"", b"\"reasoning_content\""]
        .iter()
        .any(|k| non_empty_string(data, k));
    match api {
        Api::OpenAiChat | Api::OpenAiCompletions => {
            if value_start(data, b"\"usage\"") == Some(b'{') {
                ev.usage_tokens = serde_json::from_slice::<WithUsage>(data)
                    .ok()
                    .and_then(|w| w.usage)
                    .map(|u| u.completion_tokens);
            }
        }
        Api::Tgi => {
            if value_start(data, b"\"details\"") == Some(b'{') {
                ev.done = true;
                ev.usage_tokens = serde_json::from_slice::<WithDetails>(data)
                    .ok()
                    .and_then(|w| w.details)
                    .and_then(|d| d.generated_tokens);
            }
        }
    }
    ev
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct WithDetails {
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    generated_tokens: Option<u32>,
}

/// The first byte of the value of the first occurrence of `key` (followed by `:`).
fn value_start(data: &[u8], key: &[u8]) -> Option<u8> {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&data[from..], key) {
        let rest = data[from + i + key.len()..].trim_ascii_start();
        if let Some(v) = rest.strip_prefix(b":") {
            return v.trim_ascii_start().first().copied();
        }
        from += i + key.len();
    }
    None
}

/// Whether some occurrence of `key` has a non-empty string value.
fn non_empty_string(data: &[u8], key: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&data[from..], key) {
        let rest = data[from + i + key.len()..].trim_ascii_start();
        if let Some(v) = rest.strip_prefix(b":")
            && let Some(s) = v.trim_ascii_start().strip_prefix(b"\"")
            && s.first().is_some_and(|&c| c != b'"')
        {
            return true;
        }
        from += i + key.len();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chat_chunks() {
        let role = br#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(classify(Api::OpenAiChat, role), Event::default());
        let tok = br#"{"id":"x","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}"#;
        assert!(classify(Api::OpenAiChat, tok).content);
        let spaced = br#"{"choices": [{"delta": {"content" : "a \"content\": \"\""}}]}"#;
        assert!(classify(Api::OpenAiChat, spaced).content);
        let reasoning = br#"{"choices":[{"delta":{"reasoning_content":"hm","content":null}}]}"#;
        assert!(classify(Api::OpenAiChat, reasoning).content);
        let usage = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":1,"total_tokens":101,"completion_tokens":100}}"#;
        let e = classify(Api::OpenAiChat, usage);
        assert_eq!((e.content, e.usage_tokens), (false, Some(100)));
        let no_usage = br#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#;
        assert_eq!(classify(Api::OpenAiChat, no_usage).usage_tokens, None);
        assert!(classify(Api::OpenAiChat, b"[DONE]").done);
    }

    #[test]
    fn completions_tgi_and_errors() {
        assert!(classify(Api::OpenAiCompletions, br#"{"choices":[{"text":" a"}]}"#).content);
        assert!(!classify(Api::OpenAiCompletions, br#"{"choices":[{"text":""}]}"#).content);
        let tok = br#"{"index":1,"token":{"id":5,"text":" the","logprob":-0.1,"special":false},"generated_text":null,"details":null}"#;
        let e = classify(Api::Tgi, tok);
        assert!(e.content && !e.done);
        let last = br#"{"index":2,"token":{"id":5,"text":".","special":false},"generated_text":" the.","details":{"finish_reason":"length","generated_tokens":2}}"#;
        let e = classify(Api::Tgi, last);
        assert_eq!((e.content, e.done, e.usage_tokens), (true, true, Some(2)));
        assert!(
            classify(
                Api::Tgi,
                br#"{"error":"overloaded","error_type":"overloaded"}"#
            )
            .error
        );
        assert!(
            classify(
                Api::OpenAiChat,
                br#"{"object":"error","message":"m","code":400}"#
            )
            .error
        );
        assert!(!classify(Api::OpenAiChat, br#"{"choices":[],"error":null}"#).error);
    }
}
