//! Synapse's default log format:
//! `asctime - name - lineno - levelname - request - message`
//! (`- ` after the request id is accepted too), and the "Processed request"
//! access line in both its >= 1.150 and older forms.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// The head of a log record. A line that is not a record (traceback, wrapped
/// text) yields `None` and is attached to the previous record's time.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHead<'a> {
    /// Server local time, as written.
    pub at: NaiveDateTime,
    pub logger: &'a str,
    pub level: &'a str,
    pub request: &'a str,
    /// Everything after the request id's separator.
    pub message: &'a [u8],
}

const LEVELS: [&str; 6] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET"];

/// Parses one physical line (without its newline; a trailing `\r` is allowed).
pub fn parse_record(line: &[u8]) -> Option<RecordHead<'_>> {
    let at = parse_timestamp_prefix(line)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.get(23..)?.strip_prefix(b" - ")?;
    // logger - lineno - LEVEL - request - message
    let (logger, rest) = split_field(rest)?;
    let (lineno, rest) = split_field(rest)?;
    if lineno.is_empty() || !lineno.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (level, rest) = split_field(rest)?;
    let level = std::str::from_utf8(level).ok()?;
    if !LEVELS.contains(&level) {
        return None;
    }
    // The request id ends at ` - ` or at `- ` (the contrib example config).
    let i = memchr::memmem::find(rest, b"- ")?;
    let (request, message) = (&rest[..i], &rest[i + 2..]);
    let request = request.strip_suffix(b" ").unwrap_or(request);
    Some(RecordHead {
        at,
        logger: std::str::from_utf8(logger).ok()?,
        level,
        request: std::str::from_utf8(request).ok()?,
        message,
    })
}

fn split_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memmem::find(s, b" - ")?;
    Some((&s[..i], &s[i + 3..]))
}

fn digits<const N: usize>(b: &[u8]) -> Option<u32> {
    if b.len() != N {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Fast path: the leading `YYYY-MM-DD HH:MM:SS,mmm` of a record, if any.
pub fn parse_timestamp_prefix(line: &[u8]) -> Option<NaiveDateTime> {
    let b = line.get(..23)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b',' && b[19] != b'.' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits::<4>(&b[0..4])? as i32,
        digits::<2>(&b[5..7])?,
        digits::<2>(&b[8..10])?,
    )?;
    date.and_hms_milli_opt(
        digits::<2>(&b[11..13])?,
        digits::<2>(&b[14..16])?,
        digits::<2>(&b[17..19])?,
        digits::<3>(&b[20..23])?,
    )
}

/// A parsed "Processed request" access line.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLine {
    pub client_ip: String,
    pub site: String,
    /// `None` for `{None}`.
    pub requester: Option<String>,
    pub processing_s: f64,
    pub send_s: f64,
    pub status: u16,
    /// The `!` suffix: the connection dropped before the response completed.
    pub dropped: bool,
    pub method: String,
    pub path: String,
    pub bytes: u64,
    pub user_agent: String,
}

static ACCESS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // Both forms: `ru=(a, b) db=(c/d/n)` (>= 1.150) and `(a, b) (c/d/n)`.
    Regex::new(concat!(
        r"^(?P<ip>\S+) - (?P<site>\S+) - \{(?P<req>[^}]*)\} Processed request: ",
        r"(?P<proc>-?[0-9.]+)sec/(?P<send>-?[0-9.]+)sec ",
        r"(?:ru=)?\([^)]*\) (?:db=)?\([^)]*\) ",
        r"(?P<bytes>\d+|-)B (?P<status>!?\d{3}!?|-) ",
        r#""(?P<method>\S+) (?P<path>\S*) [^"]*" "(?P<ua>[^"]*)""#,
    ))
    .ok()
});

/// Parses the message part of an access line.
pub fn parse_access(message: &str) -> Option<AccessLine> {
    let message = message.trim_end_matches('\r');
    let c = ACCESS.as_ref()?.captures(message)?;
    let status_raw = &c["status"];
    let dropped = status_raw.contains('!');
    let status: u16 = status_raw.trim_matches('!').parse().unwrap_or(0);
    let req = &c["req"];
    Some(AccessLine {
        client_ip: c["ip"].to_string(),
        site: c["site"].to_string(),
        requester: (req != "None" && !req.is_empty()).then(|| req.to_string()),
        processing_s: c["proc"].parse().ok()?,
        send_s: c["send"].parse().unwrap_or(0.0),
        status,
        dropped,
        method: c["method"].to_string(),
        path: c["path"].to_string(),
        bytes: c["bytes"].parse().unwrap_or(0),
        user_agent: c["ua"].to_string(),
    })
}

/// Converts the log's local time to UTC using the configured zone.
#[derive(Debug, Clone)]
pub struct LogClock {
    tz: chrono_tz::Tz,
}

impl LogClock {
    /// `UTC`, an IANA name (`Europe/Berlin`); errors name the bad value.
    pub fn new(zone: &str) -> Result<Self, String> {
        zone.parse::<chrono_tz::Tz>()
            .map(|tz| LogClock { tz })
            .map_err(|_| {
                format!(
                    "unknown time zone '{zone}' (use UTC or an IANA name such as Europe/Berlin)"
                )
            })
    }

    pub fn utc() -> Self {
        LogClock { tz: chrono_tz::UTC }
    }

    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        use chrono::TimeZone;
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| DateTime::from_naive_utc_and_offset(local, Utc))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const E2E: &str = "2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0']) for device 'RWDSUMBAID' for user '[user_redacted]' at 1768822491032";
    const OLD_ACCESS: &str = "2026-01-11 00:02:01,294 - synapse.access.http.8008 - 521 - INFO - POST-9160055 - [client_ip] - 8008 - {[user_redacted]} Processed request: 0.006sec/0.000sec (0.002sec, 0.000sec) (0.000sec/0.004sec/3) 528B 400 \"POST /_matrix/client/v3/keys/upload HTTP/1.0\" \"Mozilla/5.0 (...) Element/1.12.7 ...\" [0 dbevts]";
    const NEW_ACCESS: &str = "2026-06-30 18:00:00,000 - synapse.access.http.8008 - 643 - INFO - POST-3 - 192.168.122.50 - 8008 - {None} Processed request: 0.003sec/0.001sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/1) 64B 403 \"POST /_matrix/client/v3/login HTTP/1.1\" \"curl/8.5.0\" [0 dbevts]";

    #[test]
    fn parses_the_default_format() {
        let r = parse_record(E2E.as_bytes()).unwrap();
        assert_eq!(r.logger, "synapse.handlers.e2e_keys");
        assert_eq!(r.level, "INFO");
        assert_eq!(r.request, "POST-5688811");
        assert!(r.message.starts_with(b"Adding one_time_keys"));
        assert_eq!(r.at.to_string(), "2026-01-19 12:34:51.034");
    }

    #[test]
    fn accepts_the_contrib_separator_and_crlf() {
        let l = b"2016-06-20 10:00:00,123 - synapse.access.http.8008 - 59 - INFO - PUT-1000- 192.168.1.2 - 8008 - hello\r";
        let r = parse_record(l).unwrap();
        assert_eq!(r.request, "PUT-1000");
        assert_eq!(r.message, b"192.168.1.2 - 8008 - hello");
    }

    #[test]
    fn continuation_lines_are_not_records() {
        for l in [
            "Traceback (most recent call last):",
            "  File \"x.py\", line 1, in f",
            "",
            "2026-01-19 12:34",
        ] {
            assert!(parse_record(l.as_bytes()).is_none(), "{l}");
        }
        assert!(parse_timestamp_prefix(b"2026-13-45 99:00:00,000 - x").is_none());
    }

    #[test]
    fn twisted_nested_lines_parse_as_the_outer_record() {
        let l = "2026-01-19 12:34:51,000 - twisted - 273 - INFO - POST-5688811 - 2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding";
        let r = parse_record(l.as_bytes()).unwrap();
        assert_eq!(r.logger, "twisted");
        assert!(
            r.message
                .starts_with(b"2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys")
        );
    }

    #[test]
    fn invalid_utf8_in_the_message_is_kept() {
        let mut l =
            b"2026-01-19 12:34:51,034 - synapse.x - 1 - WARNING - sentinel - bad \xff\xfe bytes"
                .to_vec();
        l.push(b'!');
        let r = parse_record(&l).unwrap();
        assert_eq!(r.level, "WARNING");
        assert!(r.message.contains(&0xff));
    }

    #[test]
    fn parses_both_access_line_forms() {
        for (l, status, path, req) in [
            (
                OLD_ACCESS,
                400,
                "/_matrix/client/v3/keys/upload",
                Some("[user_redacted]"),
            ),
            (NEW_ACCESS, 403, "/_matrix/client/v3/login", None),
        ] {
            let r = parse_record(l.as_bytes()).unwrap();
            let a = parse_access(&String::from_utf8_lossy(r.message)).unwrap();
            assert_eq!(a.status, status);
            assert_eq!(a.path, path);
            assert_eq!(a.method, "POST");
            assert_eq!(a.requester.as_deref(), req);
            assert!(!a.dropped);
        }
        let a = parse_access("1.2.3.4 - 8008 - {@a:hs} Processed request: 30.001sec/-0.000sec (0.0sec, 0.0sec) (0.0sec/0.0sec/0) 0B 499! \"GET /_matrix/client/v3/sync?timeout=30000 HTTP/1.1\" \"-\" [0 dbevts]").unwrap();
        assert_eq!(a.status, 499);
        assert!(a.dropped);
        assert!((a.processing_s - 30.001).abs() < 1e-9);
        assert_eq!(a.user_agent, "-");
    }

    #[test]
    fn log_clock_converts_local_time() {
        let t = parse_timestamp_prefix(b"2026-06-30 20:00:00,000").unwrap();
        let berlin = LogClock::new("Europe/Berlin").unwrap();
        assert_eq!(berlin.to_utc(t).to_rfc3339(), "2026-06-30T18:00:00+00:00");
        assert!(LogClock::new("Mars/Olympus").is_err());
    }
}
