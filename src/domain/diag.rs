//! The client's `lotus-crypto-diag-<ts>.json` report (runbook §5).
//! Field spelling is not pinned: camelCase and snake_case are accepted, `ts`
//! may be epoch milliseconds or ISO-8601, unknown fields are kept, and an
//! entry's KE is re-derived from its message when `ke` is missing.

use super::ke::Ke;
use super::signatures::Matcher;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

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

/// `sdkVersion`, `sdk_version`, `SDK-Version` → `sdkversion`.
fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Epoch milliseconds (number or numeric string; seconds if small) or ISO-8601.
pub fn parse_ts(v: &Value) -> Option<DateTime<Utc>> {
    let from_num = |n: f64| -> Option<DateTime<Utc>> {
        // Values below 1e11 are epoch seconds, not milliseconds.
        let ms = if n.abs() < 1e11 { n * 1000.0 } else { n };
        DateTime::from_timestamp_millis(ms as i64)
    };
    match v {
        Value::Number(n) => n.as_f64().and_then(from_num),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<f64>() {
                return from_num(n);
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .ok()
                        .map(|t| t.and_utc())
                })
        }
        _ => None,
    }
}

fn parse_ke(v: &Value) -> Option<Ke> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| Ke::from_index((i as usize).checked_sub(1)?)),
        Value::String(s) => Ke::parse(s),
        _ => None,
    }
}

pub fn parse_diag(bytes: &[u8], matcher: &Matcher) -> Result<DiagReport, DiagError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| DiagError::NotJson(e.to_string()))?;
    let mut report = DiagReport::default();
    let entries = match v {
        Value::Array(a) => a,
        Value::Object(top) => {
            let mut entries = None;
            for (k, val) in top {
                match norm(&k).as_str() {
                    "sdkversion" | "sdk" | "version" => report.sdk_version = as_string(&val),
                    "deviceid" | "device" => report.device_id = as_string(&val),
                    "userid" | "user" => report.user_id = as_string(&val),
                    "syncstate" => report.sync_state = as_string(&val),
                    "cryptoready" => report.crypto_ready = val.as_bool(),
                    "counts" | "perke" | "kecounts" | "countsbyke" => {
                        if let Value::Object(m) = &val {
                            for (ke, n) in m {
                                if let (Some(ke), Some(n)) = (Ke::parse(ke), n.as_u64()) {
                                    report.counts.push((ke, n));
                                }
                            }
                        }
                        report.extra.insert(k, val);
                    }
                    "entries" | "entry" | "log" | "logs" => match val {
                        Value::Array(a) => entries = Some(a),
                        other => {
                            report.extra.insert(k, other);
                        }
                    },
                    _ => {
                        report.extra.insert(k, val);
                    }
                }
            }
            entries.ok_or_else(|| DiagError::NotAReport("no `entries` array".into()))?
        }
        _ => {
            return Err(DiagError::NotAReport(
                "neither an object nor an array".into(),
            ));
        }
    };
    for (index, e) in entries.into_iter().enumerate() {
        let Value::Object(obj) = e else {
            // A bare string entry is a message.
            if let Value::String(message) = e {
                report
                    .entries
                    .push(entry_from(index, Map::new(), message, matcher));
            }
            continue;
        };
        let mut message = String::new();
        let mut rest = Map::new();
        for (k, val) in obj {
            if matches!(norm(&k).as_str(), "message" | "msg" | "text" | "line")
                && message.is_empty()
            {
                message = as_string(&val).unwrap_or_default();
            } else {
                rest.insert(k, val);
            }
        }
        report
            .entries
            .push(entry_from(index, rest, message, matcher));
    }
    Ok(report)
}

fn entry_from(
    index: usize,
    obj: Map<String, Value>,
    message: String,
    matcher: &Matcher,
) -> DiagEntry {
    let mut e = DiagEntry {
        index,
        ts: None,
        level: None,
        ke: None,
        ke_derived: false,
        signature: None,
        message,
        extra: Map::new(),
    };
    for (k, val) in obj {
        match norm(&k).as_str() {
            "ts" | "timestamp" | "time" | "at" => e.ts = parse_ts(&val),
            "level" | "severity" => e.level = as_string(&val),
            "ke" | "kind" | "class" => e.ke = parse_ke(&val),
            "signature" | "sig" | "match" => e.signature = as_string(&val),
            _ => {
                e.extra.insert(k, val);
            }
        }
    }
    if e.ke.is_none()
        && let Some(c) = matcher.classify_client(&e.message)
    {
        e.ke = Some(c.ke);
        e.ke_derived = true;
        if e.signature.is_none() {
            e.signature = Some(c.signature);
        }
    }
    e
}

static EVENT_ID: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"Error decrypting event \((?:[^)]*?\b)?id=(\$[^\s),]+)").ok());

/// KE-3 event ids from `Error decrypting event (id=$… …)` messages.
pub fn ke3_event_id(message: &str) -> Option<String> {
    EVENT_ID
        .as_ref()?
        .captures(message)
        .map(|c| c[1].to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::signatures::Signatures;

    fn m() -> Matcher {
        Matcher::new(&Signatures::embedded(), &[]).unwrap()
    }

    #[test]
    fn accepts_camel_and_snake_case_and_both_timestamp_forms() {
        let camel = br#"{"sdkVersion":"41.6.0-rc.0","deviceId":"DEV","userId":"@a:hs","syncState":"SYNCING","cryptoReady":true,
            "counts":{"KE-1":2},"entries":[{"ts":1782842410000,"level":"error","ke":"KE-1","signature":"already exists","message":"x already exists","extraField":7}]}"#;
        let snake = br#"{"sdk_version":"41.6.0-rc.0","device_id":"DEV","user_id":"@a:hs","crypto_ready":false,
            "entries":[{"ts":"2026-06-30T18:00:10Z","level":"warn","message":"MissingKey: missing key at index 2 for participant @b:hs"}]}"#;
        let a = parse_diag(camel, &m()).unwrap();
        let b = parse_diag(snake, &m()).unwrap();
        assert_eq!(a.device_id.as_deref(), Some("DEV"));
        assert_eq!(b.device_id.as_deref(), Some("DEV"));
        assert_eq!(a.crypto_ready, Some(true));
        assert_eq!(a.counts, vec![(Ke::Ke1, 2)]);
        assert_eq!(a.entries[0].ts.unwrap().timestamp_millis(), 1782842410000);
        assert_eq!(a.entries[0].extra["extraField"], 7);
        assert_eq!(
            b.entries[0].ts.unwrap().to_rfc3339(),
            "2026-06-30T18:00:10+00:00"
        );
        assert_eq!(b.entries[0].ke, Some(Ke::Ke2), "derived from the message");
        assert!(b.entries[0].ke_derived);
    }

    #[test]
    fn truncated_or_foreign_json_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_diag(b"{\"entries\": [", &m()),
            Err(DiagError::NotJson(_))
        ));
        assert!(matches!(
            parse_diag(b"{\"foo\": 1}", &m()),
            Err(DiagError::NotAReport(_))
        ));
        assert!(matches!(
            parse_diag(b"\xff\xfe", &m()),
            Err(DiagError::NotJson(_))
        ));
    }

    #[test]
    fn harvests_ke3_event_ids() {
        let msg = "Error decrypting event (id=$SASBBzoqjAbc:lotus.org type=m.room.encrypted sender=@b:hs room=!r:hs ts=1): DecryptionError[msg: missing field `algorithm` at line 1 column 138]";
        assert_eq!(
            ke3_event_id(msg).as_deref(),
            Some("$SASBBzoqjAbc:lotus.org")
        );
        assert_eq!(
            ke3_event_id("Error decrypting event (id=$x)").as_deref(),
            Some("$x")
        );
        assert_eq!(ke3_event_id("nothing"), None);
    }
}
