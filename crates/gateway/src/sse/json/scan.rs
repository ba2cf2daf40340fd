//! A fast reader for the common event: it fills the same [`Body`] that serde would, from
//! plain JSON (no escapes in the strings it keeps or skips, no error object), and gives up
//! (`None`) on anything else, which then goes through `serde_json`. Written by hand because
//! reading every forwarded token's event with `serde_json` was a fifth of the gateway's
//! user-space CPU per token; this reader skips what it does not need in one pass, with
//! `memchr` over strings.
//!
//! It is strict on purpose: whatever it accepts, serde accepts and reads the same way
//! (checked against serde on engine events and their mutations in `tests`); whatever it is
//! unsure of, it leaves to serde.

use std::borrow::Cow;

use super::{Body, Choice, Message, TgiDetails, TgiToken, Timings, Usage};

/// Deepest nesting skipped (serde allows 128; deeper events go to serde).
const MAX_DEPTH: u32 = 32;

/// Reads `data` as a [`Body`], or `None` when serde must decide.
pub(super) fn body(data: &[u8]) -> Option<Body<'_>> {
    let mut c = Cur { b: data, i: 0 };
    c.ws();
    let body = c.body()?;
    c.ws();
    (c.i == data.len()).then_some(body)
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters, valid UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        let (s, _) = self.raw_string()?;
        std::str::from_utf8(s).ok()
    }

    /// The bytes of a string without escapes or control characters, and whether they are
    /// all ASCII. One scalar pass: the strings of an event are short.
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut ascii = true;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                0x80.. => ascii = false,
                _ => {}
            }
            self.i += 1;
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some((s, ascii))
    }

    /// A key: the known names are ASCII, so others are checked for UTF-8 only when they
    /// are not (serde rejects a key that is not UTF-8, while skipped strings are not
    /// checked by serde at all).
    fn key(&mut self) -> Option<&'a [u8]> {
        let (k, ascii) = self.raw_string()?;
        if !ascii {
            std::str::from_utf8(k).ok()?;
        }
        Some(k)
    }

    /// `null`: consumed, `true`.
    fn null(&mut self) -> bool {
        let is = self.b[self.i..].starts_with(b"null");
        if is {
            self.i += 4;
        }
        is
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// A JSON number (grammar checked, as serde does when skipping one); returns whether
    /// it was a plain non-negative integer.
    fn number(&mut self) -> Option<bool> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut plain = !neg;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
            plain = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
            plain = false;
        }
        // "01" and "1x" are errors in serde.
        match self.peek() {
            Some(b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'.' | b'-' | b'+') => None,
            _ => Some(plain),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let at = self.i;
        self.digits();
        (self.i > at).then_some(())
    }

    /// Skips any value.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.object(|c, _| c.skip(depth + 1)),
            b'[' => self.array(|c| c.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// An object, `field` called with each key, the cursor on its value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.list(b'{', b'}', |c| {
            let key = c.key()?;
            c.ws();
            c.eat(b':')?;
            c.ws();
            field(c, key)
        })
    }

    /// An array, `item` called with the cursor on each item.
    fn array(&mut self, item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.list(b'[', b']', item)
    }

    /// `open`, items separated by commas, `close`.
    fn list(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.ws();
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b if b == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `Option<T>` with `T` an object read by `read`: `null` is `None`.
    fn opt_object<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        if self.peek()? != b'{' {
            return None;
        }
        read(self).map(Some)
    }

    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(|s| Some(Cow::Borrowed(s)))
    }

    /// `Option<u64>`: only a plain integer that fits; anything else goes to serde.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        if !self.number()? {
            return None;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        text.parse().ok().map(Some)
    }

    /// An object with the known fields `names`: `read` gets each one's index, the cursor
    /// on its value; other keys are skipped. A known field twice is serde's "duplicate
    /// field" error: given up.
    fn fields<const N: usize>(
        &mut self,
        names: [&[u8]; N],
        depth: u32,
        mut read: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        let mut seen = [false; N];
        self.object(|c, key| match names.iter().position(|n| *n == key) {
            Some(i) if !std::mem::replace(&mut seen[i], true) => read(c, i),
            Some(_) => None,
            None => c.skip(depth),
        })
    }

    fn body(&mut self) -> Option<Body<'a>> {
        let mut b = Body {
            choices: None,
            usage: None,
            error: None,
            token: None,
            generated_text: None,
            details: None,
            timings: None,
        };
        let names = [
            &b"choices"[..],
            b"usage",
            b"error",
            b"token",
            b"generated_text",
            b"details",
            b"timings",
        ];
        self.fields(names, 1, |c, i| {
            match i {
                0 if c.null() => {}
                0 => {
                    let mut few = super::Few::default();
                    c.array(|c| {
                        few.push(c.choice()?);
                        Some(())
                    })?;
                    b.choices = Some(few);
                }
                1 => b.usage = c.opt_object(Cur::usage)?,
                // An error event is rare and its message is any JSON: serde reads it.
                2 => return c.null().then_some(()),
                3 => b.token = c.opt_object(Cur::tgi_token)?,
                4 => b.generated_text = c.opt_str()?,
                5 => b.details = c.opt_object(Cur::tgi_details)?,
                _ => b.timings = c.opt_object(Cur::timings)?,
            }
            Some(())
        })?;
        Some(b)
    }

    fn choice(&mut self) -> Option<Choice<'a>> {
        let mut ch = Choice {
            delta: None,
            message: None,
            text: None,
            finish_reason: None,
        };
        let names = [&b"delta"[..], b"message", b"text", b"finish_reason"];
        self.fields(names, 3, |c, i| {
            match i {
                0 => ch.delta = c.opt_object(Cur::message)?,
                1 => ch.message = c.opt_object(Cur::message)?,
                2 => ch.text = c.opt_str()?,
                _ => ch.finish_reason = c.opt_str()?,
            }
            Some(())
        })?;
        Some(ch)
    }

    fn message(&mut self) -> Option<Message<'a>> {
        let mut m = Message {
            content: None,
            reasoning_content: None,
            tool_calls: None,
        };
        let names = [&b"content"[..], b"reasoning_content", b"tool_calls"];
        self.fields(names, 5, |c, i| {
            match i {
                0 => m.content = c.opt_str()?,
                1 => m.reasoning_content = c.opt_str()?,
                _ if c.null() => {}
                _ => {
                    c.skip(5)?;
                    m.tool_calls = Some(serde::de::IgnoredAny);
                }
            }
            Some(())
        })?;
        Some(m)
    }

    fn usage(&mut self) -> Option<Usage> {
        let mut u = Usage {
            prompt_tokens: None,
            completion_tokens: None,
        };
        self.fields([&b"prompt_tokens"[..], b"completion_tokens"], 3, |c, i| {
            let n = c.opt_u64()?;
            match i {
                0 => u.prompt_tokens = n,
                _ => u.completion_tokens = n,
            }
            Some(())
        })?;
        Some(u)
    }

    fn timings(&mut self) -> Option<Timings> {
        let mut t = Timings {
            prompt_n: None,
            cache_n: None,
            predicted_n: None,
        };
        let names = [&b"prompt_n"[..], b"cache_n", b"predicted_n"];
        self.fields(names, 3, |c, i| {
            let n = c.opt_u64()?;
            match i {
                0 => t.prompt_n = n,
                1 => t.cache_n = n,
                _ => t.predicted_n = n,
            }
            Some(())
        })?;
        Some(t)
    }

    fn tgi_token(&mut self) -> Option<TgiToken<'a>> {
        let mut t = TgiToken { text: None };
        self.fields([&b"text"[..]], 3, |c, _| {
            t.text = c.opt_str()?;
            Some(())
        })?;
        Some(t)
    }

    fn tgi_details(&mut self) -> Option<TgiDetails<'a>> {
        let mut d = TgiDetails {
            finish_reason: None,
            generated_tokens: None,
        };
        self.fields([&b"finish_reason"[..], b"generated_tokens"], 3, |c, i| {
            match i {
                0 => d.finish_reason = c.opt_str()?,
                _ => d.generated_tokens = c.opt_u64()?,
            }
            Some(())
        })?;
        Some(d)
    }
}

#[cfg(test)]
mod tests;
