//! HAR bodies (`request.postData`, `response.content`) and WebSocket frames
//! (`_webSocketMessages[]`), read the way the HAR describes them:
//! - a base64 body (`"encoding": "base64"`, a binary frame) is decoded
//!   first; one that does not decode, or is not text, is replaced whole;
//! - JSON (by mime type, or text that parses as JSON) is redacted by name at
//!   any depth, `application/x-www-form-urlencoded` by field name, anything
//!   else with the text rules;
//! - `postData.params[]` values by parameter name.
//!
//! The object is rewritten in place: the HAR keeps its keys and their
//! order, and the object its bytes apart from the values replaced.

use crate::domain::redact::{REDACTED, Redactor, Rule, Tally, param_rule};
use base64::Engine;
use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::domain::redact::json::{Kind, Step, rewrite};

/// Redacts a `postData` or `content` object (its raw JSON text).
pub(super) fn redact_body<'a>(raw: &'a [u8], red: &Redactor) -> (Cow<'a, [u8]>, Tally) {
    let mut tally = Tally::default();
    let Ok(obj) = serde_json::from_slice::<Map<String, Value>>(raw) else {
        // Cut short or not an object: the text rules see it later.
        return (Cow::Borrowed(raw), tally);
    };
    let mime = mime_of(&obj);
    let base64 = obj
        .get("encoding")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
    let text = obj
        .get("text")
        .and_then(Value::as_str)
        .and_then(|t| redact_payload(t, base64, &mime, red, &mut tally));
    // `params[i].value` where `params[i].name` is secret.
    let secret_params: Vec<(usize, Rule)> = obj
        .get("params")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let rule = param_rule(p.get("name")?.as_str()?)?;
                    let v = p.get("value")?.as_str()?;
                    (!v.is_empty() && v != REDACTED).then_some((i, rule))
                })
                .collect()
        })
        .unwrap_or_default();
    if text.is_none() && secret_params.is_empty() {
        return (Cow::Borrowed(raw), tally);
    }
    let edited = rewrite(raw, |path, scalar| match path {
        [Step::Key(k)] if k == "text" && scalar.kind == Kind::String => {
            text.as_ref().and_then(|t| serde_json::to_vec(t).ok())
        }
        [Step::Key(p), Step::Index(i), Step::Key(v)]
            if p == "params" && v == "value" && scalar.kind == Kind::String =>
        {
            let (_, rule) = secret_params.iter().find(|(j, _)| j == i)?;
            tally.add_rule(*rule, 1);
            Some(format!("\"{REDACTED}\"").into_bytes())
        }
        _ => None,
    });
    match edited {
        Ok(Some(out)) => (Cow::Owned(out), tally),
        _ => (Cow::Borrowed(raw), Tally::default()),
    }
}

/// Redacts a `_webSocketMessages` element: its `data` is text (opcode 1)
/// or base64 (opcode 2, a binary frame).
pub(super) fn redact_ws_message<'a>(raw: &'a [u8], red: &Redactor) -> (Cow<'a, [u8]>, Tally) {
    let mut tally = Tally::default();
    let Ok(obj) = serde_json::from_slice::<Map<String, Value>>(raw) else {
        return (Cow::Borrowed(raw), tally);
    };
    let binary = obj.get("opcode").and_then(Value::as_u64) == Some(2);
    let Some(data) = obj
        .get("data")
        .and_then(Value::as_str)
        .and_then(|d| redact_payload(d, binary, "", red, &mut tally))
    else {
        return (Cow::Borrowed(raw), tally);
    };
    let edited = rewrite(raw, |path, scalar| match path {
        [Step::Key(k)] if k == "data" && scalar.kind == Kind::String => {
            serde_json::to_vec(&data).ok()
        }
        _ => None,
    });
    match edited {
        Ok(Some(out)) => (Cow::Owned(out), tally),
        _ => (Cow::Borrowed(raw), Tally::default()),
    }
}

/// A URL's query and fragment parameters: secret names' values replaced,
/// every other value decoded and given the text rules. `None` when nothing
/// changed or it is not a URL.
pub(super) fn redact_url(url: &str, red: &Redactor) -> Option<(String, Tally)> {
    if !url.contains("://") && !url.starts_with('/') {
        return None;
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let mut tally = Tally::default();
    let mut out = path.to_string();
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_form(q, red, &mut tally));
    }
    if let Some(f) = fragment {
        out.push('#');
        // OAuth's implicit flow puts tokens there (`#access_token=…`).
        if f.contains('=') {
            out.push_str(&redact_form(f, red, &mut tally));
        } else {
            out.push_str(f);
        }
    }
    (!tally.is_empty()).then_some((out, tally))
}

/// A `url`/`redirectURL` string token (with its quotes) redacted.
pub(super) fn redact_url_token<'a>(raw: &'a [u8], red: &Redactor) -> (Cow<'a, [u8]>, Tally) {
    let Ok(url) = serde_json::from_slice::<String>(raw) else {
        return (Cow::Borrowed(raw), Tally::default());
    };
    match redact_url(&url, red).and_then(|(u, n)| Some((serde_json::to_vec(&u).ok()?, n))) {
        Some((out, n)) => (Cow::Owned(out), n),
        None => (Cow::Borrowed(raw), Tally::default()),
    }
}

/// `mimeType`, lower case, without parameters (`; charset=…`).
fn mime_of(obj: &Map<String, Value>) -> String {
    obj.get("mimeType")
        .and_then(Value::as_str)
        .map(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// A body's text redacted; `None` when nothing changed.
fn redact_payload(
    text: &str,
    base64: bool,
    mime: &str,
    red: &Redactor,
    tally: &mut Tally,
) -> Option<String> {
    if text.is_empty() || text == REDACTED {
        return None;
    }
    if !base64 {
        let (out, n) = redact_text_body(text, mime, red)?;
        tally.add(&n);
        return Some(out);
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = engine
        .decode(compact.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(plain) => {
            let (out, n) = redact_text_body(&plain, mime, red)?;
            tally.add(&n);
            Some(engine.encode(out))
        }
        // Binary, or not base64 at all: nothing can be read in it, so
        // nothing in it can be vouched for.
        None => {
            tally.add_rule(Rule::Body, 1);
            Some(REDACTED.to_string())
        }
    }
}

/// A decoded body by its mime type; `None` when nothing changed.
fn redact_text_body(text: &str, mime: &str, red: &Redactor) -> Option<(String, Tally)> {
    let t = text.trim_start();
    if (mime.contains("json") || t.starts_with('{') || t.starts_with('['))
        && let Ok((out, n)) = red.redact_json(text.as_bytes())
    {
        return out.and_then(|o| String::from_utf8(o).ok()).map(|o| (o, n));
    }
    if mime.contains("x-www-form-urlencoded") {
        let mut tally = Tally::default();
        let out = redact_form(text, red, &mut tally);
        return (!tally.is_empty()).then_some((out, tally));
    }
    match red.redact_text(text) {
        (Cow::Owned(o), n) => Some((o, n)),
        (Cow::Borrowed(_), _) => None,
    }
}

/// `a=1&password=…`: values of secret field names replaced; every other
/// value decoded and given the text rules (a token, `Bearer%20…`).
fn redact_form(text: &str, red: &Redactor, tally: &mut Tally) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && v != REDACTED => {
                if let Some(rule) = param_rule(&form_decode(k)) {
                    tally.add_rule(rule, 1);
                    return format!("{k}={REDACTED}");
                }
                match red.redact_text(&form_decode(v)) {
                    (Cow::Owned(o), n) => {
                        tally.add(&n);
                        format!("{k}={}", form_encode(&o))
                    }
                    (Cow::Borrowed(_), _) => pair.to_string(),
                }
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A form value encoded (`<redacted>` is left readable).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'<' | b'>' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form field name decoded (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
