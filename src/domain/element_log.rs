//! Element Web's and Element Call's console logs (their rageshake logs),
//! and the metadata that comes with them.
//!
//! Element Web's `ConsoleLogger.log` (element-hq/element-web,
//! `src/rageshake/rageshake.ts`) writes one entry per console call as
//! `` `${new Date().toISOString()} ${level} ${args.join(" ")}\n` `` with
//! `level` `I` (log, info), `W` (warn), `E` (error) or `D` (debug); objects
//! are `JSON.stringify`ed and an error's stack follows its message on the
//! next lines, so an entry spans every line up to the next timestamp
//! prefix. Element Call writes `<ISO>Z <0-4> <logger name> <message>`
//! (loglevel's numeric levels: 0 trace … 4 error).
//!
//! `Download logs` saves `rageshake.tar` with `log-0.log`, `log-1.log`, …
//! and `issue.txt` (`key = value` lines); a rageshake server stores a
//! report as a folder with `details.log.gz` (`key: value` lines: `user_id`,
//! `device_id`, `device_keys`, `app`, `Version`, …) and `logs-0000.log.gz`,
//! … (0000 newest).

use chrono::{DateTime, NaiveDateTime, Utc};

/// One console entry: its first line's number (1-based) and its text with
/// the continuation lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleEntry {
    pub line: u64,
    pub at: Option<DateTime<Utc>>,
    /// `info`, `warn`, `error`, `debug`, `trace`; `None` on lines before
    /// the first timestamp.
    pub level: Option<&'static str>,
    /// Element Call's logger name.
    pub logger: Option<String>,
    pub message: String,
}

/// A console log read into entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsoleLog {
    pub entries: Vec<ConsoleEntry>,
    /// Entries that begin with a timestamp.
    pub timed: usize,
    pub lines: u64,
}

/// The timestamp prefix: `2026-06-30T18:00:01.234Z` and a space.
const TS_LEN: usize = 24;

fn timestamp(line: &str) -> Option<DateTime<Utc>> {
    let ts = line.get(..TS_LEN)?;
    if line.as_bytes().get(TS_LEN) != Some(&b' ') || !ts.ends_with('Z') {
        return None;
    }
    NaiveDateTime::parse_from_str(&ts[..TS_LEN - 1], "%Y-%m-%dT%H:%M:%S%.3f")
        .ok()
        .map(|t| t.and_utc())
}

/// The level and logger after the timestamp, and the message.
fn level_of(rest: &str) -> (Option<&'static str>, Option<String>, &str) {
    let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let web = match word {
        "I" => Some("info"),
        "W" => Some("warn"),
        "E" => Some("error"),
        "D" => Some("debug"),
        _ => None,
    };
    if web.is_some() {
        return (web, None, tail);
    }
    let call = match word {
        "0" => Some("trace"),
        "1" => Some("debug"),
        "2" => Some("info"),
        "3" => Some("warn"),
        "4" => Some("error"),
        _ => None,
    };
    if call.is_some() {
        let (logger, msg) = tail.split_once(' ').unwrap_or((tail, ""));
        return (call, Some(logger.to_string()), msg);
    }
    (None, None, rest)
}

/// Splits a console log into entries on the timestamp prefix. Lines before
/// the first timestamp form one entry without a time; nothing is dropped.
pub fn parse_console(text: &str) -> ConsoleLog {
    let mut log = ConsoleLog::default();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        log.lines = n;
        match timestamp(line) {
            Some(at) => {
                let (level, logger, msg) = level_of(&line[TS_LEN + 1..]);
                log.timed += 1;
                log.entries.push(ConsoleEntry {
                    line: n,
                    at: Some(at),
                    level,
                    logger,
                    message: msg.to_string(),
                });
            }
            None => match log.entries.last_mut() {
                Some(e) => {
                    e.message.push('\n');
                    e.message.push_str(line);
                }
                None => log.entries.push(ConsoleEntry {
                    line: n,
                    at: None,
                    level: None,
                    logger: None,
                    message: line.to_string(),
                }),
            },
        }
    }
    log
}

/// What `issue.txt` (`key = value`) or `details.log` (`key: value`) says
/// about the reporting client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientMetadata {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub device_keys: Option<String>,
    pub app: Option<String>,
    pub version: Option<String>,
}

/// Reads `key = value` and `key: value` lines; unknown keys are ignored.
pub fn parse_metadata(text: &str) -> ClientMetadata {
    let mut m = ClientMetadata::default();
    for line in text.lines() {
        let split = match (line.find(" = "), line.find(": ")) {
            (Some(a), Some(b)) if b < a => Some((b, 2)),
            (Some(a), _) => Some((a, 3)),
            (None, Some(b)) => Some((b, 2)),
            (None, None) => None,
        };
        let Some((at, len)) = split else { continue };
        let key = line[..at].trim().to_ascii_lowercase();
        let value = line[at + len..].trim();
        if value.is_empty() {
            continue;
        }
        let slot = match key.as_str() {
            "user_id" | "userid" => &mut m.user_id,
            "device_id" | "deviceid" => &mut m.device_id,
            "device_keys" => &mut m.device_keys,
            "app" => &mut m.app,
            "version" => &mut m.version,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_string());
        }
    }
    m
}

/// Whether a file name is one of Element Web's / Element Call's logs or
/// their metadata: `rageshake*.tar`, `*.log`, `*.log.gz`, `issue.txt`.
pub fn is_element_log_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    (lower.starts_with("rageshake") && lower.ends_with(".tar"))
        || lower.ends_with(".log")
        || lower.ends_with(".log.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_on_the_timestamp_and_keep_their_stack() {
        let text = "Thu Jun 30 2026 18:00:00 GMT ::: Log database was created.\n\
            2026-06-30T18:00:01.234Z I Starting load of AsyncWrapper for modal\n\
            2026-06-30T18:00:02.000Z E Failed to decrypt to-device event: MissingKey\n\
            Error: MissingKey\n    at decrypt (crypto.js:1:2)\n\
            2026-06-30T18:00:03.500Z 3 MatrixRTCSession Network local timeout error while sending event\n\
            2026-06-30T18:00:04.000Z W {\"a\":1}";
        let log = parse_console(text);
        assert_eq!((log.entries.len(), log.timed, log.lines), (5, 4, 7));
        assert_eq!(log.entries[0].at, None);
        assert_eq!(log.entries[1].level, Some("info"));
        let e = &log.entries[2];
        assert_eq!((e.line, e.level), (3, Some("error")));
        assert!(
            e.message.ends_with("at decrypt (crypto.js:1:2)"),
            "{}",
            e.message
        );
        assert_eq!(e.at.map(|t| t.timestamp_millis()), Some(1_782_842_402_000));
        let c = &log.entries[3];
        assert_eq!(c.level, Some("warn"));
        assert_eq!(c.logger.as_deref(), Some("MatrixRTCSession"));
        assert_eq!(c.message, "Network local timeout error while sending event");
        assert_eq!(log.entries[4].message, "{\"a\":1}");
    }

    #[test]
    fn a_log_without_timestamps_is_one_untimed_entry() {
        let log = parse_console("just\nsome\ntext");
        assert_eq!((log.entries.len(), log.timed), (1, 0));
        assert_eq!(log.entries[0].message, "just\nsome\ntext");
        // A prefix that only looks like one.
        assert_eq!(parse_console("2026-06-30T18:00:01.234 I x").timed, 0);
        assert_eq!(parse_console("2026-13-30T18:00:01.234Z I x").timed, 0);
    }

    #[test]
    fn metadata_from_issue_txt_and_details_log() {
        let issue = "user_id = @alice:lotus.example\ndevice_id = RWDSUMBAID\ndevice_keys = curve25519:abc, ed25519:def\napp = element-web\n";
        let m = parse_metadata(issue);
        assert_eq!(m.user_id.as_deref(), Some("@alice:lotus.example"));
        assert_eq!(m.device_id.as_deref(), Some("RWDSUMBAID"));
        assert_eq!(
            m.device_keys.as_deref(),
            Some("curve25519:abc, ed25519:def")
        );
        let details =
            "Application: element-web\nuser_id: @bob:hs\ndevice_id: BDEV\nVersion: 1.11.100\n";
        let m = parse_metadata(details);
        assert_eq!(
            (m.user_id.as_deref(), m.device_id.as_deref()),
            (Some("@bob:hs"), Some("BDEV"))
        );
        assert_eq!(m.version.as_deref(), Some("1.11.100"));
        assert_eq!(parse_metadata("no pairs here"), ClientMetadata::default());
    }

    #[test]
    fn names_of_element_logs() {
        for n in [
            "rageshake.tar",
            "rageshake (1).tar",
            "log-0.log",
            "logs-0000.log.gz",
            "console.log",
        ] {
            assert!(is_element_log_name(n), "{n}");
        }
        for n in ["rageshake.tar.crdownload", "call.har", "notes.txt", "x.tar"] {
            assert!(!is_element_log_name(n), "{n}");
        }
    }
}
