//! lk-jwt-service's lines: Go's `log.Printf` (tagged releases) and slog
//! through slogcolor (main), and the Matrix device each grant names.

use chrono::{DateTime, NaiveDateTime, Utc};

/// What an lk-jwt-service line says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LkJwtLine {
    /// Go's `log` writes local time without a zone (taken as UTC: the
    /// service runs in UTC in its container image); slogcolor's
    /// `time.DateTime` likewise.
    pub at: Option<DateTime<Utc>>,
    pub matrix_id: Option<String>,
    pub device_id: Option<String>,
    /// The LiveKit identity granted.
    pub lk_id: Option<String>,
    /// A failure the line reports (`Failed to look up user info: …`).
    pub failure: Option<String>,
    pub message: String,
}

/// `2025/05/10 17:09:54 ` (Go's `log` default flags).
fn go_log_time(line: &str) -> Option<(NaiveDateTime, &str)> {
    if line.as_bytes().get(19) != Some(&b' ') {
        return None;
    }
    let t = line.get(..19)?;
    let at = NaiveDateTime::parse_from_str(t, "%Y/%m/%d %H:%M:%S").ok()?;
    Some((at, line.get(20..)?))
}

/// `2025-05-10 17:09:54 ` (slogcolor's default time format), then the
/// level tag, the source file, `| ` and the message.
fn slog_time(line: &str) -> Option<(NaiveDateTime, &str)> {
    if line.as_bytes().get(19) != Some(&b' ') {
        return None;
    }
    let t = line.get(..19)?;
    let at = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok()?;
    Some((at, line.get(20..)?))
}

/// Removes ANSI colour sequences (slogcolor on a terminal).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `key=value` of an slog text line.
fn attr(text: &str, key: &str) -> Option<String> {
    let needle = format!(" {key}=");
    let i = text.find(&needle)? + needle.len();
    let v = text[i..].split(' ').next()?;
    (!v.is_empty()).then(|| v.trim_matches('"').to_string())
}

/// Reads an lk-jwt-service line of either form; `None` when it is
/// neither.
pub fn parse_lkjwt(line: &str) -> Option<LkJwtLine> {
    let line = strip_ansi(line.trim_end_matches('\r'));
    if let Some((at, msg)) = go_log_time(&line) {
        let mut l = LkJwtLine {
            at: Some(at.and_utc()),
            message: msg.to_string(),
            ..Default::default()
        };
        if let Some(rest) = msg.strip_prefix("Got Matrix user info for ") {
            l.matrix_id = rest.split(' ').next().map(str::to_string);
        } else if let Some(i) = msg.find("for full-access Matrix user ") {
            let rest = &msg[i + "for full-access Matrix user ".len()..];
            l.matrix_id = rest.split(' ').next().map(str::to_string);
            l.lk_id = msg
                .rsplit_once("(LiveKit identity: ")
                .map(|(_, id)| id.trim_end_matches(')').to_string());
        } else if msg.starts_with("Failed to look up user info")
            || msg.starts_with("Error ")
            || msg.starts_with("Claimed user ID")
        {
            l.failure = Some(msg.to_string());
        }
        return Some(l);
    }
    let (at, rest) = slog_time(&line)?;
    // The level tag (`INFO `, `DEBUG`, …), then the message.
    let (level, rest) = rest.trim_start().split_once(' ')?;
    if !["DEBUG", "INFO", "WARN", "ERROR", "DBG", "INF", "WRN", "ERR"].contains(&level.trim()) {
        return None;
    }
    let msg = match rest.find("| ") {
        Some(i) => &rest[i + 2..],
        None => rest.trim_start(),
    };
    let mut l = LkJwtLine {
        at: Some(at.and_utc()),
        message: msg.to_string(),
        ..Default::default()
    };
    let spaced = format!(" {msg}");
    l.matrix_id = attr(&spaced, "matrixId");
    l.device_id = attr(&spaced, "claimedDeviceId");
    l.lk_id = attr(&spaced, "lkId");
    if level.starts_with('E') {
        l.failure = Some(msg.to_string());
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_three_forms() {
        let l = parse_lkjwt("2025/05/10 17:09:54 Got Matrix user info for @u:hs (full access)")
            .unwrap();
        assert_eq!(l.matrix_id.as_deref(), Some("@u:hs"));
        assert_eq!(
            l.at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-05-10T17:09:54+00:00")
        );
        let l = parse_lkjwt("2025/05/10 17:09:54 Created LiveKit room sid: RM_abc (alias: QUxJQVM) for full-access Matrix user @u:hs (LiveKit identity: @u:hs:DEV)").unwrap();
        assert_eq!(
            (l.matrix_id.as_deref(), l.lk_id.as_deref()),
            (Some("@u:hs"), Some("@u:hs:DEV"))
        );
        let l = parse_lkjwt("2025/05/10 17:09:54 Failed to look up user info: 401").unwrap();
        assert!(l.failure.is_some());
        let l = parse_lkjwt("2026-06-30 18:00:01 INFO  handler.go:671 | Handler: generated SFU access token matrixId=@u:hs claimedDeviceId=DEV access=full matrixRoom=!r:hs MatrixRTCSlot=m.call#ROOM lkId=abc room=def RemoteAddr=127.0.0.1:5 Origin=").unwrap();
        assert_eq!(
            l.message.split(" matrixId").next(),
            Some("Handler: generated SFU access token")
        );
        assert_eq!(
            (
                l.matrix_id.as_deref(),
                l.device_id.as_deref(),
                l.lk_id.as_deref()
            ),
            (Some("@u:hs"), Some("DEV"), Some("abc"))
        );
        // On a terminal: colours.
        let l = parse_lkjwt("\u{1b}[2m2026-06-30 18:00:01\u{1b}[0m \u{1b}[42mINFO \u{1b}[0m handler.go:671 \u{1b}[97m| \u{1b}[0mHandler: generated SFU access token \u{1b}[36mmatrixId=\u{1b}[0m@u:hs \u{1b}[36mclaimedDeviceId=\u{1b}[0mDEV \u{1b}[36mlkId=\u{1b}[0mabc").unwrap();
        assert_eq!(l.device_id.as_deref(), Some("DEV"));
        assert!(parse_lkjwt("something else").is_none());
        assert!(parse_lkjwt("2026-06-30 18:00:01,123 - synapse - 1 - INFO - x").is_none());
    }
}
