//! The client's `lotus-crypto-diag-<ts>.json` report (runbook §5).
//! Field spelling is not pinned: camelCase and snake_case are accepted, `ts`
//! may be epoch milliseconds or ISO-8601, unknown fields are kept, and an
//! entry's KE is re-derived from its message when `ke` is missing.

use super::ke::Ke;
use super::signatures::Matcher;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiagReport {
    pub sdk_version: Option<String>,
    pub device_id: Option<String>,
    pub user_id: Option<String>,
    pub sync_state: Option<String>,
    pub crypto_ready: Option<bool>,
    /// Per-KE counts as the report states them.
    pub counts: Vec<(Ke, u64)>,
    pub entries: Vec<DiagEntry>,
    /// Top-level fields not understood above.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiagEntry {
    /// Position in the report's `entries` array (for `#entries[N]` references).
    pub index: usize,
    pub ts: Option<DateTime<Utc>>,
    pub level: Option<String>,
    pub ke: Option<Ke>,
    /// `ke` was derived from the message, not given.
    pub ke_derived: bool,
    pub signature: Option<String>,
    pub message: String,
    pub extra: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a diag report: {0}")]
    NotAReport(String),
}

/// Parses a diag report: an object with the report's fields, or a bare
/// array of entries. Entries without a usable `ke` get one from
/// `matcher.classify_client(message)` (and `ke_derived`).
///
/// The report is read as a stream: each entry becomes a [`DiagEntry`] as
/// soon as it is read, so a report of tens of MiB never stands in memory
/// as a whole JSON tree beside its entries.
pub fn parse_diag(bytes: &[u8], matcher: &Matcher) -> Result<DiagReport, DiagError> {
    parse_from(serde_json::Deserializer::from_slice(bytes), matcher)
}

/// [`parse_diag`] from a reader (buffer it): the report's bytes are never
/// all in memory at once.
pub fn parse_diag_reader<R: std::io::Read>(
    reader: R,
    matcher: &Matcher,
) -> Result<DiagReport, DiagError> {
    parse_from(serde_json::Deserializer::from_reader(reader), matcher)
}

fn parse_from<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    matcher: &Matcher,
) -> Result<DiagReport, DiagError> {
    let top = serde::de::DeserializeSeed::deserialize(Top { matcher }, &mut de)
        .and_then(|top| de.end().map(|()| top))
        .map_err(|e| DiagError::NotJson(e.to_string()))?;
    match top {
        Read::Report(report, true) => Ok(*report),
        Read::Report(_, false) => Err(DiagError::NotAReport(
            "no report fields (entries, sdkVersion, deviceId, userId, counts …)".into(),
        )),
        Read::Other(kind) => Err(DiagError::NotAReport(format!(
            "the top level is {kind}, not an object or an array of entries"
        ))),
    }
}

/// What the top level held: a report (and whether any field was a
/// report's), or something else (named as [`kind`] names it).
enum Read {
    Report(Box<DiagReport>, bool),
    Other(&'static str),
}

/// The top level of a report, read as a stream.
struct Top<'m> {
    matcher: &'m Matcher,
}

impl<'de> serde::de::DeserializeSeed<'de> for Top<'_> {
    type Value = Read;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Top<'_> {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a diag report")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Read, A::Error> {
        let report = DiagReport {
            entries: read_entries(seq, self.matcher)?,
            ..DiagReport::default()
        };
        Ok(Read::Report(Box::new(report), true))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let mut report = DiagReport::default();
        let mut recognised = false;
        while let Some(key) = map.next_key::<String>()? {
            if norm(&key) == "entries" {
                match map.next_value_seed(Entries {
                    matcher: self.matcher,
                })? {
                    Ok(entries) => {
                        report.entries = entries;
                        recognised = true;
                    }
                    Err(other) => {
                        report.extra.insert(key, other);
                    }
                }
            } else {
                let v: Value = map.next_value()?;
                recognised |= report_field(&mut report, &key, v);
            }
        }
        Ok(Read::Report(Box::new(report), recognised))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Read, E> {
        Ok(Read::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Read, E> {
        Ok(Read::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Read, E> {
        Ok(Read::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Read, E> {
        Ok(Read::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Read, E> {
        Ok(Read::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Read, E> {
        Ok(Read::Other("null"))
    }
}

/// Each entry of a sequence, made a [`DiagEntry`] as it is read.
fn read_entries<'de, A: serde::de::SeqAccess<'de>>(
    mut seq: A,
    matcher: &Matcher,
) -> Result<Vec<DiagEntry>, A::Error> {
    let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
    while let Some(v) = seq.next_element::<Value>()? {
        entries.push(parse_entry(entries.len(), v, matcher));
    }
    Ok(entries)
}

/// The value of a report's `entries`: the entries when it is an array,
/// else the value itself (kept in `extra`).
struct Entries<'m> {
    matcher: &'m Matcher,
}

impl<'de> serde::de::DeserializeSeed<'de> for Entries<'_> {
    type Value = Result<Vec<DiagEntry>, Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Entries<'_> {
    type Value = Result<Vec<DiagEntry>, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a report's entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        read_entries(seq, self.matcher).map(Ok)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Err)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Err(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Err(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Err(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Err(Value::from(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Err(Value::String(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Err(Value::String(s)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(Value::Null))
    }
}

/// Applies one top-level field other than `entries` (read as a stream);
/// false when it went to `extra`.
fn report_field(report: &mut DiagReport, key: &str, v: Value) -> bool {
    match norm(key).as_str() {
        "sdkversion" | "sdk" | "matrixjssdkversion" => report.sdk_version = text(&v),
        "deviceid" => report.device_id = text(&v),
        "userid" => report.user_id = text(&v),
        "syncstate" => report.sync_state = text(&v),
        "cryptoready" => report.crypto_ready = boolean(&v),
        "counts" | "perke" | "kecounts" | "countsperke" => report.counts = counts(&v),
        _ => {
            report.extra.insert(key.to_string(), v);
            return false;
        }
    }
    true
}

fn parse_entry(index: usize, v: Value, matcher: &Matcher) -> DiagEntry {
    let mut e = DiagEntry {
        index,
        ts: None,
        level: None,
        ke: None,
        ke_derived: false,
        signature: None,
        message: String::new(),
        extra: Map::new(),
    };
    match v {
        Value::Object(map) => {
            for (key, v) in map {
                match norm(&key).as_str() {
                    "ts" | "timestamp" | "time" => match timestamp(&v) {
                        Some(t) => e.ts = Some(t),
                        None => {
                            e.extra.insert(key, v);
                        }
                    },
                    "level" => e.level = text(&v),
                    "ke" => match ke_value(&v) {
                        Some(k) => e.ke = Some(k),
                        // Unusable (null, "KE-9"): derived below; the odd value is kept.
                        None if v.is_null() => {}
                        None => {
                            e.extra.insert(key, v);
                        }
                    },
                    "signature" => e.signature = text(&v),
                    "message" | "msg" => {
                        e.message = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }
                    }
                    _ => {
                        e.extra.insert(key, v);
                    }
                }
            }
        }
        Value::String(s) => e.message = s,
        other => e.message = other.to_string(),
    }
    if e.ke.is_none()
        && let Some(m) = matcher.classify_client(&e.message)
    {
        e.ke = Some(m.ke);
        e.ke_derived = true;
        if e.signature.is_none() {
            e.signature = Some(m.signature);
        }
    }
    e
}

/// `sdkVersion`, `sdk_version`, `SDK-Version` → `sdkversion`.
fn norm(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn ke_value(v: &Value) -> Option<Ke> {
    match v {
        Value::String(s) => Ke::parse(s),
        Value::Number(n) => n.as_u64().and_then(|i| Ke::parse(&i.to_string())),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `{"KE-1": 3, …}`, `{"perKe": {…}}` or `[{"ke": "KE-1", "count": 3}, …]`,
/// in KE order, first value wins.
fn counts(v: &Value) -> Vec<(Ke, u64)> {
    let mut found: [Option<u64>; 4] = [None; 4];
    let mut put = |ke: Ke, n: u64| {
        found[ke.index()].get_or_insert(n);
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (Ke::parse(k), number(v)) {
                    (Some(ke), Some(n)) => put(ke, n),
                    _ => {
                        if let Value::Object(inner) = v {
                            for (k, v) in inner {
                                if let (Some(ke), Some(n)) = (Ke::parse(k), number(v)) {
                                    put(ke, n);
                                }
                            }
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let Value::Object(m) = item else { continue };
                let ke = m
                    .iter()
                    .find(|(k, _)| norm(k) == "ke")
                    .and_then(|(_, v)| ke_value(v));
                let n = m
                    .iter()
                    .find(|(k, _)| norm(k) == "count")
                    .and_then(|(_, v)| number(v));
                if let (Some(ke), Some(n)) = (ke, n) {
                    put(ke, n);
                }
            }
        }
        _ => {}
    }
    Ke::ALL
        .iter()
        .filter_map(|ke| found[ke.index()].map(|n| (*ke, n)))
        .collect()
}

/// Epoch milliseconds (number or numeric string; values below 1e11 are read
/// as seconds, since 1e11 ms is in 1973) or ISO-8601 (a zone-less time is UTC).
fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let from_number = |f: f64| -> Option<DateTime<Utc>> {
        if !f.is_finite() {
            return None;
        }
        let ms = if f.abs() < 1e11 { f * 1000.0 } else { f };
        DateTime::from_timestamp_millis(ms.round() as i64)
    };
    match v {
        Value::Number(n) => from_number(n.as_f64()?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(f) = s.parse::<f64>() {
                return from_number(f);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S,%3f",
            ]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
            .map(|t| t.and_utc())
        }
        _ => None,
    }
}

/// KE-3 event ids from `Error decrypting event (id=$… …)` messages: the
/// `$…` after `id=`, up to a space, `)` or `,`.
pub fn ke3_event_id(message: &str) -> Option<String> {
    let at = message.find("id=$")?;
    let rest = &message[at + 3..];
    let end = rest.find([' ', ')', ',', '\t', '"']).unwrap_or(rest.len());
    let id = &rest[..end];
    (id.len() > 1).then(|| id.to_string())
}

#[cfg(test)]
mod tests;
