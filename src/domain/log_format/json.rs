//! The JSON shapes: Synapse's JSON formatters (`synapse/logging/_terse_json.py`:
//! compact objects, `ensure_ascii=False`, the record's extras as further
//! keys) and `journalctl -o json` records.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// One record of Synapse's `JsonFormatter` (`log`, `namespace`, `level`
/// and the extras: `request`, `server_name`, `exc_type`, `exc_value` …),
/// `TerseJsonFormatter` (the same with `time`) or `GcpJsonFormatter`
/// (`severity`, `message`, `logger`, `time`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRecord {
    /// `log` (`message` for the Gcp formatter): what `record.getMessage()`
    /// gave.
    pub message: String,
    pub namespace: Option<String>,
    pub level: Option<String>,
    /// The logcontext (`POST-5688811`, `sentinel`), when the record has one.
    pub request: Option<String>,
    pub time: Option<DateTime<Utc>>,
    /// `exc_type: exc_value` of a record logged with an exception.
    pub exception: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    log: Option<Value>,
    message: Option<Value>,
    namespace: Option<Value>,
    logger: Option<Value>,
    level: Option<Value>,
    severity: Option<Value>,
    request: Option<Value>,
    time: Option<Value>,
    exc_type: Option<Value>,
    exc_value: Option<Value>,
}

fn text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl JsonRecord {
    /// A Synapse JSON record, or `None` when `line` is not one (not JSON,
    /// or an object without `log`, nor `message` with `logger`).
    pub fn parse(line: &[u8]) -> Option<JsonRecord> {
        let raw: Raw = serde_json::from_slice(line).ok()?;
        let (message, namespace) = match (raw.log, raw.message) {
            (Some(Value::String(log)), _) => (log, text(raw.namespace)),
            (_, Some(Value::String(m))) if raw.logger.is_some() => (m, text(raw.logger)),
            _ => return None,
        };
        let time = match raw.time {
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64)),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        };
        let exception = match (text(raw.exc_type), text(raw.exc_value)) {
            (Some(t), Some(v)) => Some(format!("{t}: {v}")),
            (t, v) => t.or(v),
        };
        Some(JsonRecord {
            message,
            namespace,
            level: text(raw.level).or(text(raw.severity)),
            request: text(raw.request),
            time,
            exception,
        })
    }

    /// The record as a line of Synapse's text format, without the line
    /// number JSON does not carry: `time - namespace - level - request -
    /// message` (the time in UTC, left out when the record has none), then
    /// `[exc_type: exc_value]`.
    pub fn render(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        if let Some(t) = self.time {
            let _ = write!(out, "{} - ", t.format("%Y-%m-%d %H:%M:%S,%3f"));
        }
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let _ = write!(
            out,
            "{} - {} - {} - ",
            field(&self.namespace),
            field(&self.level),
            field(&self.request)
        );
        super::one_line(self.message.as_bytes(), out);
        if let Some(e) = &self.exception {
            out.extend_from_slice(b" [");
            super::one_line(e.as_bytes(), out);
            out.push(b']');
        }
    }
}

/// One `journalctl -o json` record: what the capture reads of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JournalRecord {
    /// `MESSAGE`: a string, or an array of bytes (not UTF-8, or control
    /// characters); several values joined by line breaks.
    pub message: Vec<u8>,
    pub realtime: Option<DateTime<Utc>>,
    pub priority: Option<u8>,
}

#[derive(Deserialize)]
struct RawJournal {
    #[serde(rename = "MESSAGE")]
    message: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Value>,
    #[serde(rename = "PRIORITY")]
    priority: Option<Value>,
    #[serde(rename = "__CURSOR")]
    cursor: Option<Value>,
}

/// A journald field's value as bytes.
fn field_bytes(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            out.extend(items.iter().filter_map(Value::as_u64).map(|b| b as u8));
        }
        // The field appears several times: each value, one a line.
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                field_bytes(item, out);
            }
        }
        // `null`: longer than journalctl shows without `--all`.
        _ => {}
    }
}

pub(super) fn journal_record(line: &[u8]) -> Option<JournalRecord> {
    let raw: RawJournal = serde_json::from_slice(line).ok()?;
    if raw.cursor.is_none() && raw.realtime.is_none() {
        return None;
    }
    let mut message = Vec::new();
    if let Some(m) = &raw.message {
        field_bytes(m, &mut message);
    }
    let number = |v: Option<Value>| -> Option<i64> {
        match v? {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    Some(JournalRecord {
        message,
        realtime: number(raw.realtime).and_then(DateTime::from_timestamp_micros),
        priority: number(raw.priority).and_then(|p| u8::try_from(p).ok()),
    })
}

/// Whether a line is a `journalctl -o json` record (it has a `__CURSOR`
/// or a `__REALTIME_TIMESTAMP`).
pub(super) fn is_journal_record(line: &[u8]) -> bool {
    (memchr::memmem::find(line, b"\"__CURSOR\"").is_some()
        || memchr::memmem::find(line, b"\"__REALTIME_TIMESTAMP\"").is_some())
        && journal_record(line).is_some()
}

/// A journald record's `__CURSOR` (read without parsing the record when
/// journalctl wrote it compact, as `-o json` does).
pub fn journal_cursor(line: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    const KEY: &[u8] = b"\"__CURSOR\":\"";
    if let Some(at) = memchr::memmem::find(line, KEY).map(|i| i + KEY.len())
        && let Some(end) = memchr::memchr(b'"', &line[at..])
        && let Ok(cursor) = std::str::from_utf8(&line[at..at + end])
        && !cursor.contains('\\')
        && !cursor.is_empty()
    {
        return Some(std::borrow::Cow::Borrowed(cursor));
    }
    let raw: RawJournal = serde_json::from_slice(line).ok()?;
    match raw.cursor? {
        Value::String(s) if !s.is_empty() => Some(std::borrow::Cow::Owned(s)),
        _ => None,
    }
}
