//! livekit-server's zap lines (JSON and console) and the participant
//! states they report.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One livekit-server log line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct SfuLine {
    pub at: Option<DateTime<Utc>>,
    pub level: String,
    pub logger: Option<String>,
    pub msg: String,
    pub fields: Map<String, Value>,
}

/// zap's production JSON encoder: `level`, `ts` (epoch seconds as a
/// float), `logger`, `caller`, `msg`, then the fields (a duplicate key
/// keeps its last value).
fn parse_json(line: &str) -> Option<SfuLine> {
    let Value::Object(mut m) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let Some(Value::String(msg)) = m.remove("msg") else {
        return None;
    };
    let Some(Value::String(level)) = m.remove("level") else {
        return None;
    };
    let at = match m.remove("ts") {
        Some(Value::Number(n)) => n
            .as_f64()
            .and_then(|s| DateTime::from_timestamp_micros((s * 1e6).round() as i64)),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    };
    let logger = match m.remove("logger") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    m.remove("caller");
    m.remove("stacktrace");
    Some(SfuLine {
        at,
        level,
        logger,
        msg,
        fields: m,
    })
}

/// zap's console encoder (ISO 8601 time, capital level): `time\tLEVEL\t
/// logger\tcaller\tmsg\t{fields}`; the logger and caller may be absent.
fn parse_console(line: &str) -> Option<SfuLine> {
    let mut parts = line.split('\t');
    let time = parts.next()?;
    let at = DateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(time))
        .ok()?
        .with_timezone(&Utc);
    let level = parts.next()?;
    if !matches!(
        level,
        "DEBUG" | "INFO" | "WARN" | "ERROR" | "DPANIC" | "PANIC" | "FATAL"
    ) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    // The fields are the last part when it is a JSON object.
    let (fields, texts) = match rest.last() {
        Some(last) if last.starts_with('{') => match serde_json::from_str::<Value>(last) {
            Ok(Value::Object(m)) => (m, &rest[..rest.len() - 1]),
            _ => (Map::new(), &rest[..]),
        },
        _ => (Map::new(), &rest[..]),
    };
    let msg = texts.last()?.to_string();
    let logger = texts
        .first()
        .filter(|_| texts.len() >= 2)
        .filter(|l| !l.contains(".go:"))
        .map(|l| l.to_string());
    Some(SfuLine {
        at: Some(at),
        level: level.to_ascii_lowercase(),
        logger,
        msg,
        fields,
    })
}

/// Reads a livekit-server line in either of zap's encodings.
pub fn parse_livekit(line: &str) -> Option<SfuLine> {
    let line = line.trim_end_matches('\r');
    if line.starts_with('{') {
        parse_json(line)
    } else {
        parse_console(line)
    }
}

/// What the SFU said of a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SfuState {
    /// `starting RTC session`.
    Joining,
    /// `participant active`.
    Active,
    /// `mediaTrack published`.
    Publishing,
    /// `track has been subscribed` (debug).
    Subscribed,
    /// `failed to subscribe, triggering error handler`, `track not bound
    /// after timeout`, `issuing full reconnect on subscription error`.
    SubscribeFailed,
    /// `connect timeout after ICE connected`, `TCP ICE connect timeout`.
    ConnectTimeout,
    /// `stream allocator: state change` to `DEFICIENT`.
    Deficient,
    /// `participant closing` (with `reason`).
    Closing,
    /// `removing participant without connection`.
    Removed,
    /// `error handling request` (e.g. 404 `requested room does not exist`).
    RequestError,
}

impl SfuState {
    pub fn name(self) -> &'static str {
        match self {
            SfuState::Joining => "joining",
            SfuState::Active => "active",
            SfuState::Publishing => "publishing",
            SfuState::Subscribed => "subscribed",
            SfuState::SubscribeFailed => "subscribe failed",
            SfuState::ConnectTimeout => "connect timeout",
            SfuState::Deficient => "bandwidth deficient",
            SfuState::Closing => "closing",
            SfuState::Removed => "removed",
            SfuState::RequestError => "request error",
        }
    }

    /// A state that says the SFU did not deliver to the participant.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            SfuState::SubscribeFailed
                | SfuState::ConnectTimeout
                | SfuState::Deficient
                | SfuState::Closing
                | SfuState::Removed
                | SfuState::RequestError
        )
    }
}

/// A participant state read from a line.
#[derive(Debug, Clone, PartialEq)]
pub struct SfuEvent {
    pub at: Option<DateTime<Utc>>,
    /// The participant's identity, when the line names it.
    pub identity: Option<String>,
    /// Its sid (`participantID`, or `pID` before v1.10).
    pub sid: Option<String>,
    pub room: Option<String>,
    pub state: SfuState,
    /// `reason` (closing), `error`, the stream allocator's new state.
    pub reason: Option<String>,
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::String(_) | Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The state a line reports; `None` for a message not recognised (the
/// line is kept all the same).
pub fn sfu_event(line: &SfuLine) -> Option<SfuEvent> {
    let f = &line.fields;
    let msg = line.msg.as_str();
    let (state, reason) = match msg {
        "starting RTC session" => (SfuState::Joining, None),
        "participant active" => (SfuState::Active, text(f, "connectionType")),
        "mediaTrack published" => (SfuState::Publishing, text(f, "kind")),
        "track has been subscribed" => (SfuState::Subscribed, text(f, "trackID")),
        "failed to subscribe, triggering error handler"
        | "issuing full reconnect on subscription error" => {
            (SfuState::SubscribeFailed, text(f, "error"))
        }
        "track not bound after timeout" => (
            SfuState::SubscribeFailed,
            Some("track not bound after timeout".into()),
        ),
        "connect timeout after ICE connected" | "TCP ICE connect timeout" => {
            (SfuState::ConnectTimeout, Some(msg.to_string()))
        }
        "stream allocator: state change" if text(f, "to").as_deref() == Some("DEFICIENT") => {
            (SfuState::Deficient, Some("DEFICIENT".into()))
        }
        "participant closing" => (SfuState::Closing, text(f, "reason")),
        "removing participant without connection" => (SfuState::Removed, text(f, "reason")),
        "error handling request" => (
            SfuState::RequestError,
            text(f, "error").or_else(|| text(f, "status")),
        ),
        _ => return None,
    };
    Some(SfuEvent {
        at: line.at,
        identity: text(f, "participant"),
        sid: text(f, "participantID").or_else(|| text(f, "pID")),
        room: text(f, "room"),
        state,
        reason,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn zap_json_with_either_sid_key_and_the_duplicate_room() {
        let l = r#"{"level":"info","ts":1782842592.3456,"logger":"livekit","caller":"service/roommanager.go:434","msg":"starting RTC session","room":"!r","roomID":"RM_x","participant":"@a:hs:DEV","pID":"PA_1","remote":false,"room":"!r","nodeID":"ND_1"}"#;
        let e = sfu_event(&parse_livekit(l).unwrap()).unwrap();
        assert_eq!(e.state, SfuState::Joining);
        assert_eq!(e.identity.as_deref(), Some("@a:hs:DEV"));
        assert_eq!(e.sid.as_deref(), Some("PA_1"));
        assert_eq!(e.room.as_deref(), Some("!r"));
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1_782_842_592_345));
        let l = r#"{"level":"info","ts":1782842592.5,"logger":"livekit.transport","caller":"rtc/participant.go:1494","msg":"participant closing","room":"!r","participant":"@a:hs:DEV","participantID":"PA_2","reason":"SUBSCRIPTION_ERROR"}"#;
        let e = sfu_event(&parse_livekit(l).unwrap()).unwrap();
        assert_eq!(
            (e.state, e.reason.as_deref()),
            (SfuState::Closing, Some("SUBSCRIPTION_ERROR"))
        );
        assert_eq!(e.sid.as_deref(), Some("PA_2"));
    }

    #[test]
    fn zap_console_lines() {
        let l = "2026-06-30T18:03:12.345Z\tINFO\tlivekit.rtc\trtc/participant.go:1494\tparticipant closing\t{\"room\": \"!r\", \"participant\": \"@a:hs:DEV\", \"participantID\": \"PA_2\", \"reason\": \"SUBSCRIPTION_ERROR\"}";
        let s = parse_livekit(l).unwrap();
        assert_eq!(s.logger.as_deref(), Some("livekit.rtc"));
        let e = sfu_event(&s).unwrap();
        assert_eq!(e.state, SfuState::Closing);
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1_782_842_592_345));
        let l = "2026-06-30T20:03:12.345+0200\tWARN\trtc/subscriptionmanager.go:584\ttrack not bound after timeout\t{\"participant\": \"x\"}";
        let e = sfu_event(&parse_livekit(l).unwrap()).unwrap();
        assert_eq!(e.state, SfuState::SubscribeFailed);
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1_782_842_592_345));
        // Unknown messages read, but report nothing.
        let l = "2026-06-30T18:03:12.345Z\tINFO\tlivekit\tx.go:1\tsomething else";
        assert!(sfu_event(&parse_livekit(l).unwrap()).is_none());
        assert!(parse_livekit("2026-06-30 18:00:00,000 - synapse - 1 - INFO - x").is_none());
        assert!(parse_livekit("{\"log\":\"synapse json\"}").is_none());
    }
}
