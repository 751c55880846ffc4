//! HAR files (DevTools "Save all as HAR"), read as a stream: `keys/upload`
//! exchanges and the offending one-time key of a 400 (the Q1 smoking gun).

mod body;
mod pyrepr;
mod structural;
mod token;

use super::redact::{Redactor, Tally};
use base64::Engine;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::sync::Arc;

/// `One time key <alg>:<id> already exists. Old key: {…}; new key: {…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OffendingKey {
    pub algorithm: String,
    pub key_id: String,
    /// Stored canonical JSON (double quotes) if parsable.
    pub old_key: Option<Value>,
    /// The Python repr of the new key, converted to JSON if parsable.
    pub new_key: Option<Value>,
}

/// Parses the OTK conflict text out of any message (server error line,
/// client entry, response body).
pub fn parse_otk_conflict(text: &str) -> Option<OffendingKey> {
    // A JSON response body: the text is in its `error`.
    let trimmed = text.trim();
    if trimmed.starts_with('{')
        && let Ok(Value::Object(body)) = serde_json::from_str::<Value>(trimmed)
        && let Some(Value::String(error)) = body.get("error")
        && let Some(k) = parse_otk_conflict(error)
    {
        return Some(k);
    }
    const HEAD: &str = "One time key ";
    let at = text.find(HEAD)?;
    let rest = &text[at + HEAD.len()..];
    let end = rest.find(" already exists")?;
    let id = &rest[..end];
    let (algorithm, key_id) = id.split_once(':')?;
    if algorithm.is_empty() || key_id.is_empty() || id.contains(char::is_whitespace) {
        return None;
    }
    let after = &rest[end..];
    let old_key = key_after(after, "Old key: ", |t| {
        serde_json::from_str::<Value>(t).ok()
    });
    let new_key = key_after(after, "new key: ", pyrepr::to_json);
    Some(OffendingKey {
        algorithm: algorithm.to_string(),
        key_id: key_id.to_string(),
        old_key,
        new_key,
    })
}

/// Parses OTK conflicts, remembering the last one. A client that keeps
/// retrying the same upload makes Synapse log the same conflict again and
/// again, and parsing its two keys is the costliest step of a KE-1 line;
/// the result is shared, not copied.
#[derive(Debug, Default)]
pub struct ConflictMemo {
    /// The conflict text from `One time key ` on, and what it parsed to.
    last: Option<(String, Option<Arc<OffendingKey>>)>,
}

impl ConflictMemo {
    /// [`parse_otk_conflict`], shared.
    pub fn parse(&mut self, text: &str) -> Option<Arc<OffendingKey>> {
        if text.trim_start().starts_with('{') {
            return parse_otk_conflict(text).map(Arc::new);
        }
        // Otherwise the result depends only on the text from the head on.
        // (A searcher built once: this runs on every KE-1 line.)
        static HEAD: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new("One time key "));
        let at = HEAD.find(text.as_bytes())?;
        let tail = &text[at..];
        if let Some((last, parsed)) = &self.last
            && last == tail
        {
            return parsed.clone();
        }
        let parsed = parse_otk_conflict(tail).map(Arc::new);
        self.last = Some((tail.to_string(), parsed.clone()));
        parsed
    }
}

/// The value after `marker`, parsed; the text may have been JSON-escaped
/// once more (`{\"key\": …}` inside a client message).
fn key_after(text: &str, marker: &str, parse: impl Fn(&str) -> Option<Value>) -> Option<Value> {
    let at = text.find(marker)? + marker.len();
    balanced(&text[at..]).and_then(&parse).or_else(|| {
        let unescaped = unescape_quotes(&text[at..]);
        balanced(&unescaped).and_then(&parse)
    })
}

/// The leading object, list or quoted string of `s` (quotes of both kinds
/// and backslash escapes respected), or `None` if it is cut short.
fn balanced(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let bytes = s.as_bytes();
    let first = *bytes.first()?;
    if first == b'"' || first == b'\'' {
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b if b == first => return Some(&s[..=i]),
                _ => i += 1,
            }
        }
        return None;
    }
    if first != b'{' && first != b'[' {
        return None;
    }
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'{' | b'[' | b'(' => depth += 1,
                b'}' | b']' | b')' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(&s[..=i]);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// `{\"key\": …}` as it appears when the text was itself JSON-escaped.
fn unescape_quotes(s: &str) -> String {
    s.replace("\\\\", "\u{0}")
        .replace("\\\"", "\"")
        .replace('\u{0}', "\\")
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeysUploadExchange {
    /// Index in `log.entries`.
    pub entry_index: usize,
    /// The request URL as recorded (it may carry a redacted token).
    pub url: String,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    pub status: u16,
    /// `one_time_keys` of the request body: `alg:id` → key object.
    pub request_keys: Vec<(String, Value)>,
    pub response_body: Option<String>,
    pub offending: Option<OffendingKey>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HarSummary {
    pub entries: usize,
    pub keys_upload: Vec<KeysUploadExchange>,
    /// The localparts the requests' access tokens name, each once, in the
    /// order seen (a Synapse token encodes its user; the token is not kept).
    pub users: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HarError {
    #[error("HAR is not valid JSON: {0}")]
    Json(String),
    #[error("reading HAR: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams through a HAR, keeping only what matters; memory stays flat.
pub fn scan_har(reader: impl Read) -> Result<HarSummary, HarError> {
    match scan_har_partial(reader) {
        (summary, None) => Ok(summary),
        (_, Some(e)) => Err(e),
    }
}

/// Like [`scan_har`], but keeps what was found before an error (a HAR cut
/// short still holds the exchanges before the cut).
pub fn scan_har_partial(reader: impl Read) -> (HarSummary, Option<HarError>) {
    let mut summary = HarSummary::default();
    let mut input = BufReader::with_capacity(1 << 16, reader);
    if let Err(e) = skip_bom(&mut input) {
        return (summary, Some(HarError::Io(e)));
    }
    let mut de = serde_json::Deserializer::from_reader(input);
    let result = HarSeed { out: &mut summary }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    let error = result.err().map(|e| {
        if e.is_io() {
            HarError::Io(std::io::Error::other(e.to_string()))
        } else {
            HarError::Json(e.to_string())
        }
    });
    (summary, error)
}

fn skip_bom(input: &mut impl BufRead) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    Ok(())
}

/// The top level: only `log` is read.
struct HarSeed<'a> {
    out: &'a mut HarSummary,
}

impl<'de> DeserializeSeed<'de> for HarSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(Fields {
            out: self.out,
            level: Level::Top,
        })
    }
}

#[derive(Clone, Copy)]
enum Level {
    Top,
    Log,
}

/// An object of which one member matters: `log` at the top, `entries` in it.
struct Fields<'a> {
    out: &'a mut HarSummary,
    level: Level,
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match (self.level, key.as_str()) {
                (Level::Top, "log") => map.next_value_seed(LogSeed { out: self.out })?,
                (Level::Log, "entries") => map.next_value_seed(EntriesSeed { out: self.out })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct LogSeed<'a> {
    out: &'a mut HarSummary,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(Fields {
            out: self.out,
            level: Level::Log,
        })
    }
}

struct EntriesSeed<'a> {
    out: &'a mut HarSummary,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of HAR entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // One entry at a time: it is dropped before the next is read.
        while let Some(entry) = seq.next_element::<Value>()? {
            let index = self.out.entries;
            self.out.entries += 1;
            if let Some(x) = keys_upload(index, &entry) {
                self.out.keys_upload.push(x);
            }
            if let Some(u) = token::entry_localpart(&entry)
                && !self.out.users.contains(&u)
            {
                self.out.users.push(u);
            }
        }
        Ok(())
    }
}

/// The exchange if `entry` is a `keys/upload` request.
fn keys_upload(entry_index: usize, entry: &Value) -> Option<KeysUploadExchange> {
    let request = entry.get("request")?;
    let url = request.get("url")?.as_str()?;
    if !url.contains("/keys/upload") {
        return None;
    }
    let response = entry.get("response");
    let status = response
        .and_then(|r| r.get("status"))
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|t| t.trim().parse().ok()))
        })
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let started = entry
        .get("startedDateTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let request_keys = request
        .get("postData")
        .and_then(|p| p.get("text"))
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|body| match body.get("one_time_keys") {
            Some(Value::Object(keys)) => {
                Some(keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            _ => None,
        })
        .unwrap_or_default();
    let response_body = response.and_then(|r| r.get("content")).and_then(|c| {
        let text = c.get("text")?.as_str()?;
        if c.get("encoding").and_then(Value::as_str) == Some("base64") {
            match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => Some(text.to_string()),
            }
        } else {
            Some(text.to_string())
        }
    });
    let offending = response_body.as_deref().and_then(parse_otk_conflict);
    Some(KeysUploadExchange {
        entry_index,
        url: url.to_string(),
        started,
        status,
        request_keys,
        response_body,
        offending,
    })
}

/// Writes a redacted copy, streaming: what the HAR's structure says is
/// secret (header values by name, every cookie, query and form parameters
/// by name, bodies by mime type and encoding, WebSocket frames; see
/// `structural` and `body`), then the text rules over everything (tokens in
/// URLs, `Location` and `Referer` values …). Returns what each rule
/// replaced. The copy is the input apart from the redacted values, so input
/// that is not valid JSON (cut short, garbage) is copied the same way, with
/// the text rules applied.
pub fn redact_har(
    reader: impl Read,
    writer: impl Write,
    redactor: &Redactor,
) -> Result<Tally, HarError> {
    let mut input = BufReader::with_capacity(1 << 16, reader);
    let mut text = redactor.writer(BufWriter::with_capacity(1 << 16, writer));
    let mut tally = structural::copy_redacting_pairs(&mut input, &mut text, redactor)?;
    let (mut inner, tokens) = text.finish()?;
    inner.flush()?;
    tally.add(&tokens);
    Ok(tally)
}

/// The `key` field of a one-time key object (signatures do not count, as in
/// Synapse's own comparison); a bare string is the key itself.
pub fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => o.get("key").and_then(|k| k.as_str()).map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
