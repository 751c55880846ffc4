//! Synapse's default log format:
//! `asctime - name - lineno - levelname - request - message`
//! (`- ` after the request id is accepted too), and the "Processed request"
//! access line in both its >= 1.150 and older forms.

use chrono::{DateTime, NaiveDateTime, Utc};
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

impl<'a> RecordHead<'a> {
    /// A complete record inside the message (Twisted re-logging a line that
    /// a console handler wrote to stderr), if there is one.
    pub fn nested(&self) -> Option<RecordHead<'a>> {
        parse_record(self.message)
    }
}

/// Parses one physical line (without its newline; a trailing `\r` is allowed).
pub fn parse_record(line: &[u8]) -> Option<RecordHead<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let at = parse_timestamp_prefix(line)?;
    let rest = line.get(TS_LEN..)?.strip_prefix(b" - ")?;
    let (logger, rest) = field(rest)?;
    let (lineno, rest) = field(rest)?;
    let (level, rest) = field(rest)?;
    if logger.is_empty() || logger.contains(&b' ') {
        return None;
    }
    if lineno.is_empty() || !lineno.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if level.is_empty() || !level.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    // The request id ends at `- ` (default format: ` - `; contrib example
    // config: `- ` right after the id, as in `PUT-1000- 192.168…`).
    let sep = memchr::memchr_iter(b'-', rest).find(|&i| rest.get(i + 1) == Some(&b' '))?;
    let request = &rest[..sep];
    let request = request.strip_suffix(b" ").unwrap_or(request);
    let message = &rest[sep + 2..];
    Some(RecordHead {
        at,
        logger: std::str::from_utf8(logger).ok()?,
        level: std::str::from_utf8(level).ok()?,
        request: std::str::from_utf8(request).ok()?,
        message,
    })
}

/// Length of `YYYY-MM-DD HH:MM:SS,mmm`.
const TS_LEN: usize = 23;

/// The text up to the next ` - ` and what follows it.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = find_spaced_dash(s)?;
    Some((&s[..i], &s[i + 3..]))
}

/// Where the first ` - ` starts. Fields are short: looking for the dash
/// costs less than building a substring searcher per call.
fn find_spaced_dash(s: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'-', s)
        .find(|&i| i > 0 && s[i - 1] == b' ' && s.get(i + 1) == Some(&b' '))
        .map(|i| i - 1)
}

/// Where the last ` - ` starts.
fn rfind_spaced_dash(s: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'-', s)
        .find(|&i| i > 0 && s[i - 1] == b' ' && s.get(i + 1) == Some(&b' '))
        .map(|i| i - 1)
}

/// Fast path: the leading `YYYY-MM-DD HH:MM:SS,mmm` of a record, if any.
pub fn parse_timestamp_prefix(line: &[u8]) -> Option<NaiveDateTime> {
    let b = line.get(..TS_LEN)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b','
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let date = chrono::NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..23)?,
    )?;
    Some(NaiveDateTime::new(date, time))
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

/// The fields of an access line, borrowed from the message: what the
/// capture reads of every access line, without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessFields<'a> {
    pub client_ip: &'a str,
    pub site: &'a str,
    /// `None` for `{None}`.
    pub requester: Option<&'a str>,
    pub processing_s: f64,
    pub send_s: f64,
    pub status: u16,
    pub dropped: bool,
    pub method: &'a str,
    pub path: &'a str,
    pub bytes: u64,
    /// What follows the request's closing quote, its opening quote off:
    /// the user agent is cut from it only when asked for (the capture
    /// reads every access line and never needs it).
    agent: &'a str,
}

impl<'a> AccessFields<'a> {
    /// The client's user agent.
    pub fn user_agent(&self) -> &'a str {
        static AGENT_END: LazyLock<memchr::memmem::FinderRev<'static>> =
            LazyLock::new(|| memchr::memmem::FinderRev::new("\" ["));
        let agent = self.agent;
        match AGENT_END.rfind(agent.as_bytes()) {
            Some(i) => &agent[..i],
            None => agent.strip_suffix('"').unwrap_or(agent),
        }
    }

    pub fn to_owned_line(&self) -> AccessLine {
        AccessLine {
            client_ip: self.client_ip.to_string(),
            site: self.site.to_string(),
            requester: self.requester.map(str::to_string),
            processing_s: self.processing_s,
            send_s: self.send_s,
            status: self.status,
            dropped: self.dropped,
            method: self.method.to_string(),
            path: self.path.to_string(),
            bytes: self.bytes,
            user_agent: self.user_agent().to_string(),
        }
    }
}

/// Parses the message part of an access line, in the >= 1.150 form
/// (`ru=(..) db=(..)`) or the older unlabelled one (`(..) (..)`).
pub fn parse_access(message: &str) -> Option<AccessLine> {
    parse_access_fields(message).map(|f| f.to_owned_line())
}

/// [`parse_access`] without copying the fields out of `message`.
pub fn parse_access_fields(message: &str) -> Option<AccessFields<'_>> {
    const MARK: &str = " Processed request: ";
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(MARK));
    let mark = FINDER.find(message.as_bytes())?;
    let head = message[..mark].strip_suffix('}')?;
    let hb = head.as_bytes();
    let open = memchr::memchr_iter(b'-', hb)
        .find(|&i| i > 0 && hb[i - 1] == b' ' && hb.get(i + 1..i + 3) == Some(b" {"))?
        - 1;
    let requester = &head[open + 4..];
    // The last two ` - ` fields before `{`, so the whole line works too.
    let before = &head[..open];
    let last = rfind_spaced_dash(before.as_bytes())?;
    let site = &before[last + 3..];
    let before = &before[..last];
    let client_ip = match rfind_spaced_dash(before.as_bytes()) {
        Some(i) => &before[i + 3..],
        None => before,
    };
    let rest = &message[mark + MARK.len()..];

    // `0.006sec/0.000sec`
    let (times, rest) = split_byte(rest, b' ')?;
    let (processing, send) = split_byte(times, b'/')?;
    let processing_s = secs(processing)?;
    let send_s = secs(send)?;
    // `ru=(…)` / `(…)`, then `db=(…)` / `(…)`.
    let rest = skip_group(rest, "ru=")?;
    let rest = skip_group(rest, "db=")?;
    // `528B 400 "POST /path HTTP/1.0" "agent" [0 dbevts]`
    let (bytes, rest) = split_byte(rest, b' ')?;
    let bytes = bytes.strip_suffix('B')?.parse().ok()?;
    let (code, rest) = split_byte(rest, b' ')?;
    let (code, dropped) = match code.strip_suffix('!') {
        Some(c) => (c, true),
        None => (code, false),
    };
    let status = code.parse().ok()?;
    let rest = rest.strip_prefix('"')?;
    let (request, rest) = split_byte(rest, b'"')?;
    let (method, path) = split_byte(request, b' ').unwrap_or((request, ""));
    // The protocol is the last word; an oddly written URI keeps its spaces.
    let path = match memchr::memrchr(b' ', path.as_bytes()) {
        Some(i) => &path[..i],
        None => path,
    };
    let agent = rest.trim_start().strip_prefix('"').unwrap_or("");
    Some(AccessFields {
        client_ip,
        site,
        requester: (requester != "None").then_some(requester),
        processing_s,
        send_s,
        status,
        dropped,
        method,
        path,
        bytes,
        agent,
    })
}

/// `s.split_once(b)` for an ASCII byte (always a character boundary), with
/// a vectorised search: these run on nearly every access line.
fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = memchr::memchr(b, s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// `0.006sec` → 0.006 (may be negative).
fn secs(s: &str) -> Option<f64> {
    let s = s.strip_suffix("sec")?;
    decimal(s).or_else(|| s.parse().ok())
}

/// A plain decimal (`-0.006`) of at most 15 digits, as `str::parse` reads
/// it: both integers are exact in an `f64`, so their quotient is the
/// correctly rounded value that `parse` gives. Anything else is `None`
/// (then `parse` decides). Two of these run on every access line.
fn decimal(s: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let (mut mantissa, mut count, mut fraction) = (0u64, 0usize, None::<usize>);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
        if count > 15 {
            return None;
        }
    }
    let places = fraction.unwrap_or(0);
    if count == 0 || fraction == Some(0) {
        return None;
    }
    let value = mantissa as f64 / POW10[places];
    Some(if negative { -value } else { value })
}

/// Skips `label(…) ` or `(…) ` at the start of `s`.
fn skip_group<'s>(s: &'s str, label: &str) -> Option<&'s str> {
    let s = s.strip_prefix(label).unwrap_or(s).strip_prefix('(')?;
    let close = memchr::memchr(b')', s.as_bytes())?;
    Some(s[close + 1..].trim_start_matches(' '))
}

/// Converts the log's local time to UTC using the configured zone.
#[derive(Debug, Clone)]
pub struct LogClock {
    tz: chrono_tz::Tz,
    /// Remote clock minus local clock, measured over SSH: subtracted so
    /// server lines sit on the operator's time axis.
    offset_ms: i64,
}

impl LogClock {
    /// `UTC`, an IANA name (`Europe/Berlin`); errors name the bad value.
    pub fn new(zone: &str) -> Result<Self, String> {
        zone.parse::<chrono_tz::Tz>()
            .map(|tz| LogClock { tz, offset_ms: 0 })
            .map_err(|_| {
                format!(
                    "unknown time zone '{zone}' (use UTC or an IANA name such as Europe/Berlin)"
                )
            })
    }

    pub fn utc() -> Self {
        LogClock {
            tz: chrono_tz::UTC,
            offset_ms: 0,
        }
    }

    /// The same zone, without a measured offset.
    pub fn zone_only(&self) -> LogClock {
        LogClock {
            tz: self.tz,
            offset_ms: 0,
        }
    }

    /// UTC, with this clock's measured offset: for times already in UTC
    /// (journald's, docker's, JSON records') read on the same server clock.
    pub fn utc_with_offset(&self) -> LogClock {
        LogClock {
            tz: chrono_tz::UTC,
            offset_ms: self.offset_ms,
        }
    }

    /// Uses a measured remote clock offset for the lines that follow.
    pub fn set_offset_ms(&mut self, offset_ms: i64) {
        self.offset_ms = offset_ms;
    }

    pub fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        use chrono::TimeZone;
        // UTC (the default) needs no zone lookup: this runs for every line
        // a capture keeps.
        let t = if self.tz == chrono_tz::Tz::UTC {
            DateTime::from_naive_utc_and_offset(local, Utc)
        } else {
            self.tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| DateTime::from_naive_utc_and_offset(local, Utc))
        };
        if self.offset_ms == 0 {
            return t;
        }
        t - chrono::Duration::milliseconds(self.offset_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ADDING: &str = "2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0', ...]) for device 'RWDSUMBAID' for user '[user_redacted]' at 1768822491032";
    const OLD_ACCESS: &str = r#"2026-01-11 00:02:01,294 - synapse.access.http.8008 - 521 - INFO - POST-9160055 - [client_ip] - 8008 - {[user_redacted]} Processed request: 0.006sec/0.000sec (0.002sec, 0.000sec) (0.000sec/0.004sec/3) 528B 400 "POST /_matrix/client/v3/keys/upload HTTP/1.0" "Mozilla/5.0 (...) Element/1.12.7 ..." [0 dbevts]"#;
    const TO_DEVICE: &str = r#"2023-06-14 08:50:55,553 - synapse.access.http.8008 - 461 - INFO - PUT-9496 - 183.82.43.178 - 8008 - {@naresh.mm:chat-server.intellaire.com} Processed request: 0.013sec/0.004sec (0.002sec, 0.000sec) (0.001sec/0.007sec/3) 2B 200 "PUT /_matrix/client/r0/sendToDevice/m.room_key_request/m1686732654881.3 HTTP/1.0" "Mozilla/5.0 (Windows NT 10.0; W..."#;
    const NEW_ACCESS: &str = r#"2026-06-30 14:02:11,123 - synapse.access.http.8008 - 643 - INFO - POST-3 - 192.168.122.50 - 8008 - {None} Processed request: 0.003sec/0.001sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.000sec/1) 64B 403 "POST /_matrix/client/v3/login HTTP/1.1" "curl/8.5.0" [0 dbevts]"#;

    #[test]
    fn a_measured_offset_moves_server_times_onto_the_local_axis() {
        let mut c = LogClock::utc();
        let t = ts("2026-06-30 18:00:02.500");
        c.set_offset_ms(2500); // the server's clock runs 2.5 s ahead
        assert_eq!(c.to_utc(t).to_rfc3339(), "2026-06-30T18:00:00+00:00");
    }

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.3f").unwrap()
    }

    #[test]
    fn parses_a_default_format_record() {
        let r = parse_record(ADDING.as_bytes()).unwrap();
        assert_eq!(r.at, ts("2026-01-19 12:34:51.034"));
        assert_eq!(r.logger, "synapse.handlers.e2e_keys");
        assert_eq!(r.level, "INFO");
        assert_eq!(r.request, "POST-5688811");
        assert!(r.message.starts_with(b"Adding one_time_keys dict_keys(["));
        assert!(r.message.ends_with(b"at 1768822491032"));
    }

    #[test]
    fn accepts_dash_space_right_after_the_request_id() {
        let line = b"2019-02-05 17:06:39,478 - synapse.access.http.8008 - 302 - INFO - PUT-1000- 192.168.1.2 - 8008 - {@a:hs} Processed request";
        let r = parse_record(line).unwrap();
        assert_eq!(r.request, "PUT-1000");
        assert!(r.message.starts_with(b"192.168.1.2 - 8008"));
    }

    #[test]
    fn strips_a_trailing_carriage_return() {
        let line = format!("{ADDING}\r");
        let r = parse_record(line.as_bytes()).unwrap();
        assert!(r.message.ends_with(b"1768822491032"));
    }

    #[test]
    fn keeps_invalid_utf8_in_the_message_as_bytes() {
        let mut line =
            b"2026-06-30 14:00:00,001 - synapse.x - 12 - WARNING - sentinel - bad \xff\xfe bytes"
                .to_vec();
        line.extend_from_slice(b"\r");
        let r = parse_record(&line).unwrap();
        assert_eq!(r.message, b"bad \xff\xfe bytes");
        assert_eq!(r.request, "sentinel");
        assert_eq!(r.level, "WARNING");
    }

    #[test]
    fn continuation_lines_are_not_records() {
        for l in [
            "Traceback (most recent call last):",
            "  File \"/usr/lib/python3/dist-packages/twisted/internet/defer.py\", line 1697, in _inlineCallbacks",
            "synapse.api.errors.SynapseError: 400: One time key already exists",
            "",
            "2026-06-30 14:00:00,001",
            "2026-13-30 14:00:00,001 - synapse.x - 12 - INFO - sentinel - month 13",
            "2026-06-30 14:00:00,001 - synapse.x - twelve - INFO - sentinel - bad lineno",
            "2026-06-30 14:00:00,001 - synapse.x - 12 - info - sentinel - lowercase level",
        ] {
            assert!(parse_record(l.as_bytes()).is_none(), "{l}");
        }
    }

    #[test]
    fn twisted_nested_line_parses_as_the_outer_record() {
        let line = "2026-01-19 12:34:50,990 - twisted - 273 - INFO - POST-5688811 - 2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys";
        let r = parse_record(line.as_bytes()).unwrap();
        assert_eq!(r.logger, "twisted");
        assert_eq!(r.at, ts("2026-01-19 12:34:50.990"));
        assert!(
            r.message
                .starts_with(b"2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys")
        );
        let inner = r.nested().unwrap();
        assert_eq!(inner.logger, "synapse.handlers.e2e_keys");
        assert_eq!(inner.message, b"Adding one_time_keys");
    }

    #[test]
    fn timestamp_prefix_checks_every_byte() {
        assert_eq!(
            parse_timestamp_prefix(ADDING.as_bytes()),
            Some(ts("2026-01-19 12:34:51.034"))
        );
        assert!(parse_timestamp_prefix(b"2026-01-19T12:34:51,034 - x").is_none());
        assert!(parse_timestamp_prefix(b"2026-01-19 12:34:51.034 - x").is_none());
        assert!(parse_timestamp_prefix(b"2026-02-30 12:34:51,034").is_none());
        assert!(parse_timestamp_prefix(b"2026-01-19 12:3").is_none());
        assert!(parse_timestamp_prefix(b"+026-01-19 12:34:51,034").is_none());
    }

    #[test]
    fn parses_the_older_unlabelled_access_line() {
        let r = parse_record(OLD_ACCESS.as_bytes()).unwrap();
        let a = parse_access(&String::from_utf8_lossy(r.message)).unwrap();
        assert_eq!(a.client_ip, "[client_ip]");
        assert_eq!(a.site, "8008");
        assert_eq!(a.requester.as_deref(), Some("[user_redacted]"));
        assert_eq!((a.processing_s, a.send_s), (0.006, 0.0));
        assert_eq!((a.status, a.dropped, a.bytes), (400, false, 528));
        assert_eq!(
            (a.method.as_str(), a.path.as_str()),
            ("POST", "/_matrix/client/v3/keys/upload")
        );
        assert_eq!(a.user_agent, "Mozilla/5.0 (...) Element/1.12.7 ...");
    }

    #[test]
    fn parses_the_1_150_access_line_with_none_requester() {
        let r = parse_record(NEW_ACCESS.as_bytes()).unwrap();
        let a = parse_access(&String::from_utf8_lossy(r.message)).unwrap();
        assert_eq!(a.requester, None);
        assert_eq!(a.client_ip, "192.168.122.50");
        assert_eq!((a.processing_s, a.send_s), (0.003, 0.001));
        assert_eq!((a.status, a.bytes), (403, 64));
        assert_eq!(a.path, "/_matrix/client/v3/login");
        assert_eq!(a.user_agent, "curl/8.5.0");
        // The whole line parses the same.
        assert_eq!(parse_access(NEW_ACCESS), Some(a));
    }

    #[test]
    fn parses_a_cut_short_user_agent_and_a_dropped_status() {
        let a = parse_access(TO_DEVICE).unwrap();
        assert_eq!(
            a.requester.as_deref(),
            Some("@naresh.mm:chat-server.intellaire.com")
        );
        assert_eq!(a.method, "PUT");
        assert_eq!(
            a.path,
            "/_matrix/client/r0/sendToDevice/m.room_key_request/m1686732654881.3"
        );
        assert_eq!(a.user_agent, "Mozilla/5.0 (Windows NT 10.0; W...");

        let dropped = NEW_ACCESS
            .replace(" 403 ", " 499! ")
            .replace("0.003sec/0.001sec", "30.003sec/-0.001sec");
        let a = parse_access(&dropped).unwrap();
        assert_eq!((a.status, a.dropped), (499, true));
        assert_eq!((a.processing_s, a.send_s), (30.003, -0.001));
    }

    #[test]
    fn admin_puppet_requester_and_non_access_messages() {
        let line = NEW_ACCESS.replace("{None}", "{@admin:hs|@puppet:hs}");
        assert_eq!(
            parse_access(&line).unwrap().requester.as_deref(),
            Some("@admin:hs|@puppet:hs")
        );
        assert!(parse_access("Adding one_time_keys").is_none());
        assert!(parse_access("x - 8008 - {None} Processed request: garbage").is_none());
    }

    #[test]
    fn log_clock_converts_local_time() {
        let c = LogClock::new("Europe/Berlin").unwrap();
        assert_eq!(
            c.to_utc(ts("2026-06-30 14:00:00.000")).to_rfc3339(),
            "2026-06-30T12:00:00+00:00"
        );
        assert!(
            LogClock::new("Mars/Olympus")
                .unwrap_err()
                .contains("Mars/Olympus")
        );
    }

    #[test]
    fn durations_read_as_parse_reads_them() {
        let mut cases: Vec<String> = [
            "0.006",
            "-0.000",
            "0.000",
            "12.345",
            "1",
            "1.",
            ".5",
            "-",
            "",
            "1e3",
            "0.1234567890123",
            "1234567890.123456",
            "99999999999999.9",
            "3.14159",
            "-2.5",
            "00.010",
            "1.2.3",
            "+1.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let int = x % 100_000;
            let places = (x >> 20) % 8;
            let frac = (x >> 32) % 10u64.pow(places as u32).max(1);
            let sign = if x & 1 == 0 { "" } else { "-" };
            cases.push(if places == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac:0width$}", width = places as usize)
            });
        }
        for c in cases {
            let want: Option<f64> = c.parse().ok();
            let got = secs(&format!("{c}sec"));
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{c}");
        }
    }
}
