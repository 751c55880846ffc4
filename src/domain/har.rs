//! HAR files (DevTools "Save all as HAR"), read as a stream: `keys/upload`
//! exchanges and the offending one-time key of a 400 (the Q1 smoking gun),
//! and a redacted copy written entry by entry. Only one entry is in memory
//! at a time, whatever the file's size.

use super::redact::{REDACTED, Redactor};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::io::{BufReader, Read, Write};

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

/// The balanced `{…}` starting at the first `{` of `s`.
fn object_at(s: &str) -> Option<&str> {
    let start = s.find('{')?;
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s[start..].char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// A Python dict repr as JSON (what matrix-rust-sdk does with it, too).
fn python_repr_to_json(s: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(s) {
        return Some(v);
    }
    let t = s
        .replace('\'', "\"")
        .replace("True", "true")
        .replace("False", "false")
        .replace("None", "null");
    serde_json::from_str(&t).ok()
}

/// Parses the OTK conflict text out of any message (server error line,
/// client entry, response body).
pub fn parse_otk_conflict(text: &str) -> Option<OffendingKey> {
    // A JSON response body carries the message in its `error` field.
    if text.trim_start().starts_with('{')
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text.trim())
        && let Some(e) = o.get("error").and_then(|e| e.as_str())
    {
        return parse_otk_conflict(e);
    }
    let i = text.find("One time key ")?;
    let rest = &text[i + "One time key ".len()..];
    let j = rest.find(" already exists")?;
    let (algorithm, key_id) = rest[..j].split_once(':')?;
    if algorithm.is_empty() || key_id.is_empty() || algorithm.contains(' ') || key_id.contains(' ')
    {
        return None;
    }
    let after = &rest[j..];
    let old_key = after
        .find("Old key:")
        .and_then(|k| object_at(&after[k..]))
        .and_then(|o| {
            serde_json::from_str(&o.replace("\\\"", "\""))
                .ok()
                .or_else(|| python_repr_to_json(o))
        });
    let new_key = after
        .find("new key:")
        .and_then(|k| object_at(&after[k..]))
        .and_then(python_repr_to_json);
    Some(OffendingKey {
        algorithm: algorithm.to_string(),
        key_id: key_id.to_string(),
        old_key,
        new_key,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeysUploadExchange {
    /// Index in `log.entries`.
    pub entry_index: usize,
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
}

#[derive(Debug, thiserror::Error)]
pub enum HarError {
    #[error("HAR is not valid JSON: {0}")]
    Json(String),
    #[error("reading HAR: {0}")]
    Io(#[from] std::io::Error),
}

/// Structure events of a HAR, in file order.
enum Ev {
    /// A top-level field other than `log`, or a `log` field other than `entries`.
    Field {
        in_log: bool,
        key: String,
        value: Value,
    },
    LogOpen,
    EntriesOpen,
    Entry(Value),
    EntriesClose,
    LogClose,
}

struct Top<'f>(&'f mut dyn FnMut(Ev) -> Result<(), String>);
struct Log<'f>(&'f mut dyn FnMut(Ev) -> Result<(), String>);
struct Entries<'f>(&'f mut dyn FnMut(Ev) -> Result<(), String>);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}
impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                (self.0)(Ev::LogOpen).map_err(serde::de::Error::custom)?;
                map.next_value_seed(Log(&mut *self.0))?;
                (self.0)(Ev::LogClose).map_err(serde::de::Error::custom)?;
            } else {
                let value: Value = map.next_value()?;
                (self.0)(Ev::Field {
                    in_log: false,
                    key,
                    value,
                })
                .map_err(serde::de::Error::custom)?;
            }
        }
        Ok(())
    }
}
impl<'de> DeserializeSeed<'de> for Log<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}
impl<'de> Visitor<'de> for Log<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the HAR's log object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                (self.0)(Ev::EntriesOpen).map_err(serde::de::Error::custom)?;
                map.next_value_seed(Entries(&mut *self.0))?;
                (self.0)(Ev::EntriesClose).map_err(serde::de::Error::custom)?;
            } else {
                let value: Value = map.next_value()?;
                (self.0)(Ev::Field {
                    in_log: true,
                    key,
                    value,
                })
                .map_err(serde::de::Error::custom)?;
            }
        }
        Ok(())
    }
}
impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}
impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the HAR's entries array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            (self.0)(Ev::Entry(v)).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

fn walk(reader: impl Read, f: &mut dyn FnMut(Ev) -> Result<(), String>) -> Result<(), HarError> {
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, reader));
    Top(f)
        .deserialize(&mut de)
        .map_err(|e| HarError::Json(e.to_string()))?;
    // Trailing garbage after the object is an error too.
    match IgnoredAny::deserialize(&mut de) {
        Err(e) if e.is_eof() => Ok(()),
        Err(e) => Err(HarError::Json(e.to_string())),
        Ok(_) => Err(HarError::Json("trailing data after the HAR object".into())),
    }
}

use serde::Deserialize;

fn body_text(content: &Value) -> Option<String> {
    let text = content.get("text")?.as_str()?;
    if content.get("encoding").and_then(|e| e.as_str()) == Some("base64") {
        use data_encoding::BASE64;
        return BASE64
            .decode(text.as_bytes())
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    Some(text.to_string())
}

fn keys_upload(index: usize, e: &Value) -> Option<KeysUploadExchange> {
    let url = e.pointer("/request/url")?.as_str()?;
    if !url.contains("/keys/upload") {
        return None;
    }
    let status = e
        .pointer("/response/status")
        .and_then(|s| s.as_u64())
        .unwrap_or(0) as u16;
    let started = e
        .get("startedDateTime")
        .and_then(|s| s.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let mut request_keys = Vec::new();
    if let Some(body) = e.pointer("/request/postData/text").and_then(|t| t.as_str())
        && let Ok(Value::Object(o)) = serde_json::from_str::<Value>(body)
        && let Some(Value::Object(otks)) = o.get("one_time_keys")
    {
        for (k, v) in otks {
            request_keys.push((k.clone(), v.clone()));
        }
    }
    let response_body = e.pointer("/response/content").and_then(body_text);
    let offending = if status == 400 {
        response_body.as_deref().and_then(parse_otk_conflict)
    } else {
        None
    };
    Some(KeysUploadExchange {
        entry_index: index,
        started,
        status,
        request_keys,
        response_body,
        offending,
    })
}

/// Streams through a HAR, keeping only what matters; memory stays flat.
pub fn scan_har(reader: impl Read) -> Result<HarSummary, HarError> {
    let mut sum = HarSummary::default();
    walk(reader, &mut |ev| {
        if let Ev::Entry(e) = ev {
            if let Some(x) = keys_upload(sum.entries, &e) {
                sum.keys_upload.push(x);
            }
            sum.entries += 1;
        }
        Ok(())
    })?;
    Ok(sum)
}

const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// Redacts one value in place: secret headers, cookies, tokens in strings.
fn redact_value(v: &mut Value, redactor: &Redactor, n: &mut usize) {
    match v {
        Value::String(s) => {
            let (r, c) = redactor.redact_str(s);
            if c > 0 {
                *n += c;
                *s = r.into_owned();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, redactor, n)),
        Value::Object(o) => {
            let secret_header = o
                .get("name")
                .and_then(|x| x.as_str())
                .is_some_and(|name| SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()));
            for (k, x) in o.iter_mut() {
                if secret_header && k == "value" {
                    if x.as_str() != Some(REDACTED) {
                        *x = Value::String(REDACTED.into());
                        *n += 1;
                    }
                } else if k == "cookies" {
                    // HAR's parsed cookie lists: every value is a secret.
                    if let Value::Array(cs) = x {
                        for c in cs.iter_mut() {
                            if let Some(val) = c.get_mut("value")
                                && val.as_str() != Some(REDACTED)
                            {
                                *val = Value::String(REDACTED.into());
                                *n += 1;
                            }
                        }
                    }
                } else {
                    redact_value(x, redactor, n);
                }
            }
        }
        _ => {}
    }
}

/// Writes a redacted copy (headers `Authorization`, `Cookie`, `Set-Cookie`
/// and tokens anywhere), streaming. Returns the number of redactions. Input
/// that is not valid JSON is copied with the text redactor applied.
pub fn redact_har(
    reader: impl Read,
    mut writer: impl Write,
    redactor: &Redactor,
) -> Result<usize, HarError> {
    // Keep the raw input only until it is known to be JSON: spool to a
    // temporary file, so a huge broken file still costs no memory.
    let mut spool = tempfile::tempfile()?;
    let mut tee = TeeReader {
        inner: reader,
        copy: &mut spool,
    };
    let mut out: Vec<u8> = Vec::new();
    let mut n = 0usize;
    let mut first = [true; 3]; // top, log, entries
    let result = walk(&mut tee, &mut |ev| {
        let mut piece = |out: &mut Vec<u8>, level: usize, key: Option<&str>| {
            if first[level] {
                first[level] = false;
            } else {
                out.push(b',');
            }
            if let Some(k) = key {
                out.extend_from_slice(Value::String(k.to_string()).to_string().as_bytes());
                out.push(b':');
            }
        };
        if out.is_empty() {
            out.push(b'{');
        }
        match ev {
            Ev::Field {
                in_log,
                key,
                mut value,
            } => {
                redact_value(&mut value, redactor, &mut n);
                piece(&mut out, usize::from(in_log), Some(&key));
                out.extend_from_slice(value.to_string().as_bytes());
            }
            Ev::LogOpen => {
                piece(&mut out, 0, Some("log"));
                out.push(b'{');
            }
            Ev::EntriesOpen => {
                piece(&mut out, 1, Some("entries"));
                out.push(b'[');
            }
            Ev::Entry(mut e) => {
                redact_value(&mut e, redactor, &mut n);
                piece(&mut out, 2, None);
                out.extend_from_slice(e.to_string().as_bytes());
            }
            Ev::EntriesClose => out.push(b']'),
            Ev::LogClose => out.push(b'}'),
        }
        if out.len() > 1 << 20 {
            writer.write_all(&out).map_err(|e| e.to_string())?;
            out.clear();
            out.push(b' ');
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            if out.is_empty() {
                out.push(b'{');
            }
            out.push(b'}');
            out.push(b'\n');
            writer.write_all(&out)?;
            Ok(n)
        }
        Err(HarError::Json(_)) => {
            // Not JSON (truncated, HTML…): a verbatim copy, text-redacted.
            drop(tee);
            use std::io::{Seek, SeekFrom};
            spool.seek(SeekFrom::Start(0))?;
            copy_redacted(spool, writer, redactor)
        }
        Err(e) => Err(e),
    }
}

/// Copies line-aligned chunks through the text redactor.
pub fn copy_redacted(
    mut reader: impl Read,
    mut writer: impl Write,
    redactor: &Redactor,
) -> Result<usize, HarError> {
    let mut n = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = reader.read(&mut buf)?;
        if k == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..k]);
        if let Some(i) = memchr::memrchr(b'\n', &pending) {
            let rest = pending.split_off(i + 1);
            let (r, c) = redactor.redact_bytes(&pending);
            writer.write_all(&r)?;
            n += c;
            pending = rest;
        }
    }
    let (r, c) = redactor.redact_bytes(&pending);
    writer.write_all(&r)?;
    Ok(n + c)
}

struct TeeReader<'a, R> {
    inner: R,
    copy: &'a mut std::fs::File,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BODY: &str = r#"{"errcode":"M_UNKNOWN","error":"One time key signed_curve25519:AAAAAAAAAJ4 already exists. Old key: {\"key\":\"old\",\"signatures\":{\"@a:hs\":{\"ed25519:D\":\"s\"}}}; new key: {'key': 'new', 'signatures': {'@a:hs': {'ed25519:D': 't'}}}"}"#;

    #[test]
    fn parses_the_conflict_from_a_response_body_and_a_log_line() {
        let k = parse_otk_conflict(BODY).unwrap();
        assert_eq!(
            (k.algorithm.as_str(), k.key_id.as_str()),
            ("signed_curve25519", "AAAAAAAAAJ4")
        );
        assert_eq!(k.old_key.unwrap()["key"], "old");
        assert_eq!(k.new_key.unwrap()["key"], "new");
        let line = "SynapseError: 400 - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\":\"a\"}; new key: {'key': 'b', 'fallback': True}";
        let k = parse_otk_conflict(line).unwrap();
        assert_eq!(k.key_id, "AAAAAAAAAFA");
        assert_eq!(k.new_key.unwrap()["fallback"], true);
        assert!(parse_otk_conflict("POST /keys/upload 200").is_none());
    }

    fn har(entries: &str) -> String {
        format!(r#"{{"log":{{"version":"1.2","creator":{{"name":"x"}},"entries":[{entries}]}}}}"#)
    }

    #[test]
    fn scans_keys_upload_exchanges_and_their_conflicts() {
        let body = serde_json::to_string(BODY).unwrap();
        let e1 = format!(
            r#"{{"startedDateTime":"2026-06-30T18:00:01.000Z","request":{{"method":"POST","url":"https://hs/_matrix/client/v3/keys/upload","headers":[],"postData":{{"text":"{{\"one_time_keys\":{{\"signed_curve25519:AAAAAAAAAJ4\":{{\"key\":\"new\"}}}}}}"}}}},"response":{{"status":400,"content":{{"text":{body}}}}}}}"#
        );
        let e0 = r#"{"request":{"method":"GET","url":"https://hs/_matrix/client/v3/sync"},"response":{"status":200,"content":{"text":"{}"}}}"#;
        let s = scan_har(har(&format!("{e0},{e1}")).as_bytes()).unwrap();
        assert_eq!(s.entries, 2);
        assert_eq!(s.keys_upload.len(), 1);
        let x = &s.keys_upload[0];
        assert_eq!((x.entry_index, x.status), (1, 400));
        assert_eq!(x.request_keys[0].0, "signed_curve25519:AAAAAAAAAJ4");
        assert_eq!(x.offending.as_ref().unwrap().key_id, "AAAAAAAAAJ4");
    }

    #[test]
    fn redacted_copy_is_json_without_secrets() {
        let e = r#"{"request":{"url":"https://hs/x?access_token=syt_abc_defghij_k","headers":[{"name":"Authorization","value":"Bearer opaque"},{"name":"Accept","value":"*/*"}],"cookies":[{"name":"s","value":"c00kie"}]},"response":{"status":200,"headers":[{"name":"set-cookie","value":"s=c00kie"}],"content":{"text":"ok"}}}"#;
        let mut out = Vec::new();
        let n = redact_har(har(e).as_bytes(), &mut out, &Redactor::new()).unwrap();
        let text = String::from_utf8(out).unwrap();
        for secret in ["syt_abc", "opaque", "c00kie"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(n >= 4);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["log"]["entries"][0]["request"]["headers"][1]["value"],
            "*/*"
        );
        assert_eq!(v["log"]["version"], "1.2");
    }

    #[test]
    fn truncated_har_is_copied_verbatim_but_redacted() {
        let t = r#"{"log":{"entries":[{"request":{"url":"https://hs/x?access_token=secretvalue"#;
        let mut out = Vec::new();
        let n = redact_har(t.as_bytes(), &mut out, &Redactor::new()).unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            t.replace("secretvalue", "<redacted>")
        );
        assert!(scan_har(t.as_bytes()).is_err());
    }
}
