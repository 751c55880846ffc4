//! Synapse's default log format:
//! `asctime - name - lineno - levelname - request - message`
//! (`- ` after the request id is accepted too), and the "Processed request"
//! access line in both its >= 1.150 and older forms.

use chrono::{DateTime, NaiveDateTime, Utc};

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

/// Parses one physical line (without its newline; a trailing `\r` is allowed).
pub fn parse_record(_line: &[u8]) -> Option<RecordHead<'_>> {
    None
}

/// Fast path: the leading `YYYY-MM-DD HH:MM:SS,mmm` of a record, if any.
pub fn parse_timestamp_prefix(_line: &[u8]) -> Option<NaiveDateTime> {
    None
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

/// Parses the message part of an access line.
pub fn parse_access(_message: &str) -> Option<AccessLine> {
    None
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
