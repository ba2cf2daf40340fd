//! The few JSON fields the gateway reads from chunks and bodies, borrowed from the input:
//! the common event through a fast reader of its own ([`scan`]), the rest through serde.

mod scan;

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// Which wire shape a response has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/v1/chat/completions` (also TGI's Messages API).
    Chat,
    /// `/v1/completions`.
    Completion,
    /// TGI's `/generate` and `/generate_stream`.
    Tgi,
}

/// What one event or body said.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Parsed<'a> {
    pub texts: Few<Cow<'a, str>>,
    pub token_events: u64,
    pub finish: Option<Cow<'a, str>>,
    /// From `usage` (or TGI's `details`): exact, preferred over timings.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// From llama.cpp's `timings`: used only when no usage was reported.
    pub timings_prompt: Option<u64>,
    pub timings_completion: Option<u64>,
    pub usage_only: bool,
    pub error: Option<String>,
    pub done: bool,
    pub malformed: bool,
}

/// A list of which the first item is kept inline: events almost always carry one choice
/// and one piece of text, so reading them allocates nothing (per forwarded token).
#[derive(Debug, PartialEq)]
pub(crate) struct Few<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Few<T> {
        Few {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> Few<T> {
    fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push(item);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Few<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Few<T>, D::Error> {
        struct Seq<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Seq<T> {
            type Value = Few<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Few<T>, A::Error> {
                let mut few = Few::default();
                while let Some(item) = seq.next_element()? {
                    few.push(item);
                }
                Ok(few)
            }
        }
        d.deserialize_seq(Seq(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    choices: Option<Few<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default, borrow)]
    token: Option<TgiToken<'a>>,
    #[serde(default, borrow)]
    generated_text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    details: Option<TgiDetails<'a>>,
    #[serde(default)]
    timings: Option<Timings>,
}

/// llama.cpp's per-request `timings`: `prompt_n` counts only the prompt tokens evaluated,
/// `cache_n` those reused from the prompt cache; the prompt is their sum.
#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    prompt_n: Option<u64>,
    #[serde(default)]
    cache_n: Option<u64>,
    #[serde(default)]
    predicted_n: Option<u64>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Message<'a>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct TgiToken<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TgiDetails<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    generated_tokens: Option<u64>,
}

fn error_message(v: &serde_json::Value) -> String {
    let m = v
        .get("message")
        .and_then(|m| m.as_str())
        .or_else(|| v.as_str());
    match m {
        Some(m) => m.to_string(),
        None => v.to_string(),
    }
}

fn read<'a>(dialect: Dialect, b: Body<'a>, streamed: bool, out: &mut Parsed<'a>) {
    if let Some(e) = &b.error
        && !e.is_null()
    {
        out.error = Some(error_message(e));
    }
    let had_usage = b.usage.is_some();
    if let Some(t) = b.timings {
        out.timings_prompt = t.prompt_n.map(|n| n.saturating_add(t.cache_n.unwrap_or(0)));
        out.timings_completion = t.predicted_n;
    }
    if let Some(u) = b.usage {
        out.prompt_tokens = u.prompt_tokens;
        out.completion_tokens = u.completion_tokens;
    }
    match dialect {
        Dialect::Chat | Dialect::Completion => {
            let choices = b.choices.unwrap_or_default();
            if choices.is_empty() && had_usage {
                out.usage_only = true;
            }
            let mut with_text = 0;
            for c in choices {
                let msg = if streamed { c.delta } else { c.message };
                let mut any = false;
                if let Some(m) = msg {
                    for t in [m.content, m.reasoning_content].into_iter().flatten() {
                        if !t.is_empty() {
                            out.texts.push(t);
                            any = true;
                        }
                    }
                    any |= m.tool_calls.is_some();
                }
                if let Some(t) = c.text
                    && !t.is_empty()
                {
                    out.texts.push(t);
                    any = true;
                }
                if any {
                    with_text += 1;
                }
                if let Some(f) = c.finish_reason
                    && out.finish.is_none()
                {
                    out.finish = Some(f);
                }
            }
            out.token_events = with_text.min(1);
        }
        Dialect::Tgi => {
            if let Some(t) = b.token {
                out.token_events = 1;
                if let Some(text) = t.text {
                    out.texts.push(text);
                }
            } else if !streamed && let Some(t) = b.generated_text {
                out.token_events = u64::from(!t.is_empty());
                out.texts.push(t);
            }
            if let Some(d) = b.details {
                out.done = true;
                out.finish = d.finish_reason;
                out.completion_tokens = d.generated_tokens.or(out.completion_tokens);
            }
        }
    }
}

/// One SSE event's data.
pub(crate) fn parse_event(dialect: Dialect, data: &[u8]) -> Parsed<'_> {
    let mut out = Parsed::default();
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        out.done = true;
        return out;
    }
    match decode(trimmed) {
        Some(b) => read(dialect, b, true, &mut out),
        None => out.malformed = true,
    }
    out
}

/// The fast reader when it can, serde otherwise; `None`: not the JSON expected.
fn decode(data: &[u8]) -> Option<Body<'_>> {
    scan::body(data).or_else(|| serde_json::from_slice(data).ok())
}

/// A whole JSON body (non-streamed response).
pub(crate) fn parse_whole(dialect: Dialect, body: &[u8]) -> Parsed<'_> {
    let mut out = Parsed::default();
    match decode(body) {
        Some(b) => {
            read(dialect, b, false, &mut out);
            out.done = true;
            out.usage_only = false;
        }
        None => out.malformed = true,
    }
    out
}
