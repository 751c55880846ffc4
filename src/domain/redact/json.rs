//! JSON redacted by name: the value of a secret name, at any depth, becomes
//! `"<redacted>"`; every other string gets the text rules (decoded first, so
//! a JSON document or a log line held in a string is read as itself). The
//! text is rewritten in place: a replaced value changes, every other byte
//! (spacing, key order, escapes) stays.

use super::{REDACTED, Redactor, Tally, name_rule};
use std::borrow::Cow;

/// The text is not one JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Nesting deeper than this is not walked (hostile input must not
/// overflow the stack): the text is then treated as not JSON.
const MAX_DEPTH: usize = 128;

/// A step from a JSON value to one inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A scalar as written: its whole token (a string with its quotes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar<'a> {
    pub raw: &'a [u8],
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    /// `true`, `false`, `null`.
    Word,
}

/// Walks `text` (one JSON value, with whitespace around it), calling `edit`
/// for every scalar with the path to it; a returned token replaces the
/// scalar's. Returns the rewritten text when anything was replaced.
pub(crate) fn rewrite(
    text: &[u8],
    mut edit: impl FnMut(&[Step], Scalar<'_>) -> Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, NotJson> {
    let mut w = Walk {
        s: text,
        i: 0,
        path: Vec::new(),
        edits: Vec::new(),
    };
    w.value(0, &mut edit)?;
    w.ws();
    if w.i != text.len() {
        return Err(NotJson);
    }
    if w.edits.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for (start, end, with) in w.edits {
        out.extend_from_slice(&text[last..start]);
        out.extend_from_slice(&with);
        last = end;
    }
    out.extend_from_slice(&text[last..]);
    Ok(Some(out))
}

type Edit<'e> = dyn FnMut(&[Step], Scalar<'_>) -> Option<Vec<u8>> + 'e;

struct Walk<'a> {
    s: &'a [u8],
    i: usize,
    path: Vec<Step>,
    edits: Vec<(usize, usize, Vec<u8>)>,
}

impl Walk<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize, edit: &mut Edit<'_>) -> Result<(), NotJson> {
        if depth > MAX_DEPTH {
            return Err(NotJson);
        }
        self.ws();
        let start = self.i;
        let kind = match *self.s.get(self.i).ok_or(NotJson)? {
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(NotJson);
                    }
                    let key = self.string()?;
                    let key = decode(&self.s[key.0..key.1]);
                    if !self.eat(b':') {
                        return Err(NotJson);
                    }
                    self.path.push(Step::Key(key));
                    self.value(depth + 1, edit)?;
                    self.path.pop();
                    if self.eat(b',') {
                        continue;
                    }
                    return if self.eat(b'}') { Ok(()) } else { Err(NotJson) };
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']') {
                    return Ok(());
                }
                let mut index = 0;
                loop {
                    self.path.push(Step::Index(index));
                    self.value(depth + 1, edit)?;
                    self.path.pop();
                    index += 1;
                    if self.eat(b',') {
                        continue;
                    }
                    return if self.eat(b']') { Ok(()) } else { Err(NotJson) };
                }
            }
            b'"' => {
                self.string()?;
                Kind::String
            }
            b'-' | b'0'..=b'9' => {
                while matches!(
                    self.s.get(self.i),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.i += 1;
                }
                Kind::Number
            }
            _ => {
                let rest = &self.s[self.i..];
                let word = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|w| rest.starts_with(w))
                    .ok_or(NotJson)?;
                self.i += word.len();
                Kind::Word
            }
        };
        let raw = &self.s[start..self.i];
        if let Some(with) = edit(&self.path, Scalar { raw, kind }) {
            self.edits.push((start, self.i, with));
        }
        Ok(())
    }

    /// A string at `self.i` (its opening quote): returns the span of its
    /// content and moves past the closing quote.
    fn string(&mut self) -> Result<(usize, usize), NotJson> {
        let start = self.i + 1;
        let mut i = start;
        loop {
            match *self.s.get(i).ok_or(NotJson)? {
                b'\\' => i += 2,
                b'"' => break,
                b if b < 0x20 => return Err(NotJson),
                _ => i += 1,
            }
        }
        self.i = i + 1;
        Ok((start, i))
    }
}

/// A string's content decoded (lossily for anything odd).
fn decode(content: &[u8]) -> String {
    if !content.contains(&b'\\') {
        return String::from_utf8_lossy(content).into_owned();
    }
    let mut quoted = Vec::with_capacity(content.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(content);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(content).into_owned())
}

/// A string token (with quotes) decoded.
fn decode_token(raw: &[u8]) -> String {
    decode(&raw[1..raw.len().saturating_sub(1).max(1)])
}

impl Redactor {
    /// Redacts a JSON document by name (see the module). `Ok(None)` when
    /// nothing changed; `Err` when `text` is not JSON.
    pub fn redact_json(&self, text: &[u8]) -> Result<(Option<Vec<u8>>, Tally), NotJson> {
        self.redact_json_at(text, 0)
    }

    fn redact_json_at(
        &self,
        text: &[u8],
        depth: usize,
    ) -> Result<(Option<Vec<u8>>, Tally), NotJson> {
        let mut tally = Tally::default();
        let out = rewrite(text, |path, scalar| {
            if let Some(Step::Key(k)) = path.last()
                && let Some(rule) = name_rule(k)
            {
                let empty = match scalar.kind {
                    Kind::Word => true,
                    Kind::Number => false,
                    Kind::String => {
                        let content = &scalar.raw[1..scalar.raw.len() - 1];
                        content.is_empty() || content == REDACTED.as_bytes()
                    }
                };
                if empty {
                    return None;
                }
                tally.add_rule(rule, 1);
                return Some(format!("\"{REDACTED}\"").into_bytes());
            }
            if scalar.kind != Kind::String || !self.might_hold(scalar.raw) {
                return None;
            }
            let (text, n) = self.redact_decoded(&decode_token(scalar.raw), depth)?;
            tally.add(&n);
            serde_json::to_vec(&text).ok()
        })?;
        Ok((out, tally))
    }

    /// The text rules on a decoded string, or the JSON rules when it holds a
    /// JSON document; `None` when nothing changed.
    fn redact_decoded(&self, s: &str, depth: usize) -> Option<(String, Tally)> {
        let t = s.trim_start();
        if depth < 8
            && (t.starts_with('{') || t.starts_with('['))
            && let Ok((out, n)) = self.redact_json_at(s.as_bytes(), depth + 1)
        {
            return out.and_then(|o| String::from_utf8(o).ok()).map(|o| (o, n));
        }
        match self.redact_text(s) {
            (Cow::Owned(o), n) => Some((o, n)),
            (Cow::Borrowed(_), _) => None,
        }
    }

    /// Whether the raw bytes may hold a secret (a cheap look before
    /// decoding a string).
    pub(crate) fn might_hold(&self, raw: &[u8]) -> bool {
        !self.candidates(raw).is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn red(text: &str) -> (String, u64) {
        let (out, n) = Redactor::new().redact_json(text.as_bytes()).unwrap();
        (
            out.map(|o| String::from_utf8(o).unwrap())
                .unwrap_or_else(|| text.to_string()),
            n.total(),
        )
    }

    #[test]
    fn secret_names_are_redacted_at_any_depth_and_nothing_else_moves() {
        let text = "{\n  \"user\": \"@a:hs\",\n  \"auth\": {\"type\": \"m.login.password\", \"Password\": \"hunter 2\",\n   \"session\": \"S\"},\n  \"list\": [1, {\"deep\": [{\"access_token\": \"opaque\", \"key\": \"K+/pub\"}]}],\n  \"pin\": {\"passwd\": 1234, \"token\": null, \"secret\": \"\"}\n}";
        let (out, n) = red(text);
        assert_eq!(n, 3, "{out}");
        assert_eq!(
            out,
            text.replace("\"hunter 2\"", "\"<redacted>\"")
                .replace("\"opaque\"", "\"<redacted>\"")
                .replace("1234", "\"<redacted>\"")
        );
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn strings_get_the_text_rules_decoded_and_nested_json_by_name() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let text = format!(
            r#"{{"log": "GET /?loginToken=abc\u0026x=1 {jwt}", "inner": "{{\"refresh_token\": 7, \"k\": \"v\"}}", "plain": "café"}}"#
        );
        let (out, n) = red(&text);
        assert_eq!(n, 3, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["log"], "GET /?loginToken=<redacted>&x=1 <redacted>");
        assert_eq!(v["inner"], r#"{"refresh_token": "<redacted>", "k": "v"}"#);
        // An untouched string keeps its escapes.
        assert!(out.contains(r#""plain": "café""#));
    }

    #[test]
    fn what_is_not_json_is_said_so() {
        for bad in [
            "",
            "a=b&password=x",
            "{\"a\": 1",
            "{\"a\" 1}",
            "[1,]x",
            "{'a': 1}",
        ] {
            assert_eq!(
                Redactor::new().redact_json(bad.as_bytes()).err(),
                Some(NotJson),
                "{bad}"
            );
        }
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(Redactor::new().redact_json(deep.as_bytes()).is_err());
        assert_eq!(red("  \"x\"  "), ("  \"x\"  ".to_string(), 0));
    }
}
