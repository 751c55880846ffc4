//! The shapes Synapse's log reaches us in, and one record of each read
//! back into the parts the capture needs.
//!
//! | format | one line is | the record's time |
//! |---|---|---|
//! | [`Format::Text`] | Synapse's text format (`asctime - name - lineno - level - request - message`), or a continuation line | its own `asctime`, in the log's time zone |
//! | [`Format::SynapseJson`] | one object from `synapse.logging.JsonFormatter`, `TerseJsonFormatter` or `GcpJsonFormatter` | `time` (TerseJson: epoch seconds, 2 decimals; Gcp: RFC 3339); JsonFormatter writes none |
//! | [`Format::Journal`] | one record of `journalctl -o json` | `__REALTIME_TIMESTAMP` |
//! | [`Format::Docker`] | one line of `docker logs --timestamps` (`RFC3339Nano message`) | docker's timestamp |
//!
//! A journald `MESSAGE` and a docker line hold what Synapse wrote: a text
//! line, or a JSON object of one of its formatters ([`Body`]). The text a
//! KE pattern is matched against ([`Record::body`]) is what `grep` on the
//! records' messages would see: the text line, or a JSON record's `log`.

mod json;

pub use json::{JsonRecord, journal_cursor};

use crate::domain::synapse_log::{RecordHead, parse_record, parse_timestamp_prefix};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::borrow::Cow;

/// How a log's lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    SynapseJson,
    Journal,
    Docker,
}

impl Format {
    /// The name the manifest and the notes use.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::SynapseJson => "synapse-json",
            Format::Journal => "journald-json",
            Format::Docker => "docker",
        }
    }

    /// The format a [`Format::name`] names.
    pub fn from_name(name: &str) -> Option<Format> {
        [
            Format::Text,
            Format::SynapseJson,
            Format::Journal,
            Format::Docker,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// Lines that are read record by record (every format but text).
    pub fn is_decoded(self) -> bool {
        self != Format::Text
    }
}

/// Which format the start of a log is in: its first lines that say (up to
/// 50; blank lines and lines that fit every format say nothing). Text when
/// nothing else fits.
pub fn sniff(sample: &[u8]) -> Format {
    for line in sample.split(|b| *b == b'\n').take(50) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if parse_timestamp_prefix(line).is_some() {
            return Format::Text;
        }
        if docker_time(line).is_some() {
            return Format::Docker;
        }
        if line.first() == Some(&b'{') {
            if json::is_journal_record(line) {
                return Format::Journal;
            }
            if JsonRecord::parse(line).is_some() {
                return Format::SynapseJson;
            }
        }
        // A continuation line or something else: the next line may say.
    }
    Format::Text
}

/// What Synapse wrote: a text line or one of its JSON records.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    Text(Cow<'a, [u8]>),
    Json(Box<JsonRecord>),
}

/// One line of a log, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    pub body: Body<'a>,
    /// journald's `__REALTIME_TIMESTAMP` or docker's `--timestamps` time:
    /// the record's time when there is one.
    pub wrapper_at: Option<DateTime<Utc>>,
    /// journald's `PRIORITY` (syslog levels, 0 emergency … 7 debug).
    pub priority: Option<u8>,
    /// The line is not a record of the format (journalctl or docker
    /// complaining, a torn line): kept as text.
    pub foreign: bool,
}

/// Reads one line (without its newline) of a log in `format`.
pub fn decode(format: Format, line: &[u8]) -> Record<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let plain = |foreign| Record {
        body: Body::Text(Cow::Borrowed(line)),
        wrapper_at: None,
        priority: None,
        foreign,
    };
    match format {
        Format::Text => plain(false),
        Format::SynapseJson => Record {
            body: inner(Cow::Borrowed(line)),
            wrapper_at: None,
            priority: None,
            foreign: false,
        },
        Format::Docker => match docker_time(line) {
            Some((at, rest)) => Record {
                body: inner(Cow::Borrowed(rest)),
                wrapper_at: Some(at),
                priority: None,
                foreign: false,
            },
            None => plain(true),
        },
        Format::Journal => match json::journal_record(line) {
            Some(j) => Record {
                body: inner(Cow::Owned(j.message)),
                wrapper_at: j.realtime,
                priority: j.priority,
                foreign: false,
            },
            None => plain(true),
        },
    }
}

/// A message as Synapse wrote it: one of its JSON records, else text.
fn inner(message: Cow<'_, [u8]>) -> Body<'_> {
    let start = message.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| message[i] == b'{')
        && let Some(j) = JsonRecord::parse(&message)
    {
        return Body::Json(Box::new(j));
    }
    Body::Text(message)
}

/// `2026-06-30T18:00:00.123456789Z rest` → the time and `rest` (docker,
/// podman: RFC 3339 with any fraction and offset, then one space).
pub fn docker_time(line: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    // Cheap checks first: most lines of other formats fail here.
    if line.len() < 21 || line[4] != b'-' || line[10] != b'T' || !line[0].is_ascii_digit() {
        return None;
    }
    let space = memchr::memchr(b' ', &line[..line.len().min(40)])?;
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    let at = DateTime::parse_from_rfc3339(stamp)
        .ok()?
        .with_timezone(&Utc);
    Some((at, &line[space + 1..]))
}

/// The text a KE pattern is matched against, one line: a line break inside
/// a message (a traceback in one journald record, a JSON `log` with `\n`)
/// is written as `\n`, as JSON writes it.
pub fn one_line(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// The head of a text line inside a wrapper: Synapse's default format (also
/// behind docker's `worker | ` prefix), or the journald format of
/// `contrib/systemd/log_config.yaml`, `name: [request] message`, which
/// carries no time of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerHead<'a> {
    /// The line's own time (server local time), when it has one.
    pub at: Option<NaiveDateTime>,
    pub logger: &'a str,
    /// `None` when the line does not say (the journald format).
    pub level: Option<&'a str>,
    pub request: &'a str,
    pub message: &'a [u8],
}

/// Reads the head of a text line that may be wrapped; `None` for a
/// continuation line.
pub fn inner_head(line: &[u8]) -> Option<InnerHead<'_>> {
    if let Some(h) = parse_record(line).or_else(|| after_worker_prefix(line)) {
        return Some(from_record(h));
    }
    journald_format(line)
}

fn from_record(h: RecordHead<'_>) -> InnerHead<'_> {
    InnerHead {
        at: Some(h.at),
        logger: h.logger,
        level: Some(h.level),
        request: h.request,
        message: h.message,
    }
}

/// `worker1 | 2026-… - …` (Synapse's docker image with
/// `include_worker_name_in_log_line`).
fn after_worker_prefix(line: &[u8]) -> Option<RecordHead<'_>> {
    let bar = memchr::memmem::find(&line[..line.len().min(80)], b" | ")?;
    let name = &line[..bar];
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    parse_record(&line[bar + 3..])
}

/// `synapse.handlers.e2e_keys: [POST-5] message`.
fn journald_format(line: &[u8]) -> Option<InnerHead<'_>> {
    let colon = memchr::memmem::find(line, b": [")?;
    let logger = std::str::from_utf8(&line[..colon]).ok()?;
    if logger.is_empty()
        || !logger
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return None;
    }
    let rest = &line[colon + 3..];
    let close = memchr::memmem::find(rest, b"] ")
        .or_else(|| (rest.last() == Some(&b']')).then(|| rest.len() - 1))?;
    let request = std::str::from_utf8(&rest[..close]).ok()?;
    let message = rest.get(close + 2..).unwrap_or_default();
    Some(InnerHead {
        at: None,
        logger,
        level: None,
        request,
        message,
    })
}

/// Python's level name of a syslog priority (what journald's `PRIORITY`
/// holds for a record Python logged).
pub fn level_of_priority(p: u8) -> &'static str {
    match p {
        0..=2 => "CRITICAL",
        3 => "ERROR",
        4 => "WARNING",
        5 | 6 => "INFO",
        _ => "DEBUG",
    }
}

#[cfg(test)]
mod tests;
