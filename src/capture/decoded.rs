//! Logs read record by record (Synapse JSON, journald records, docker
//! lines): each raw line becomes one line of a body buffer, which the scan
//! matches (the record's message, or the text line Synapse wrote, as
//! `grep` on the records' messages sees them), and a head with the record's
//! time, logger, level and request id, which the scan reads instead of the
//! line's own. The log's file keeps the raw lines (redacted); a KE log
//! gets each record's display line: the wrapper's own time (journald's,
//! docker's) beside what Synapse wrote.
//!
//! Times are made UTC here: a journald or docker time is UTC, a JSON
//! record's too, and a text line's own time is read in the log's zone.
//! A record's time is its wrapper's when it has one (journald's
//! `__REALTIME_TIMESTAMP`, docker's timestamp), else its own.

use super::scan::Heads;
use super::{Capture, LogWrite};
use crate::app::event::ServerBatch;
use crate::domain::log_format::{self, Body, Format, inner_head, level_of_priority, one_line};
use crate::domain::stall::for_each_line;
use crate::domain::synapse_log::{LogClock, RecordHead};
use chrono::{NaiveDateTime, SecondsFormat};
use std::ops::Range;

/// A buffer of a decoded log's complete lines.
pub(super) struct Decoded {
    /// One line per raw line: what the KE patterns are matched against.
    pub body: Vec<u8>,
    heads: Vec<Head>,
    /// JSON records' loggers, levels and request ids.
    texts: String,
    /// Display lines, one after another.
    display: Vec<u8>,
}

struct Head {
    /// The record's own time (UTC); `None` on a line that is not a record.
    at: Option<NaiveDateTime>,
    /// The time the line belongs to: its own, its wrapper's, or the last
    /// record's before it.
    carried: Option<NaiveDateTime>,
    kind: Kind,
    display: Range<usize>,
}

enum Kind {
    /// A text line with a head (read again from the body when needed);
    /// the level from journald's priority when the line has none.
    Text { level: Option<&'static str> },
    Json {
        logger: Range<usize>,
        level: Range<usize>,
        request: Range<usize>,
    },
    /// Not a record: a traceback line, a line of something else.
    Continuation,
}

/// Decodes complete raw lines of a log in `format` (the last may lack its
/// newline). `zone` reads text lines' own times; `carried` is the last
/// record's time, kept across buffers.
pub(super) fn decode(
    raw: &[u8],
    format: Format,
    zone: &LogClock,
    carried: &mut Option<NaiveDateTime>,
) -> Decoded {
    let mut d = Decoded {
        body: Vec::with_capacity(raw.len()),
        heads: Vec::with_capacity(raw.len() / 200),
        texts: String::new(),
        display: Vec::with_capacity(raw.len()),
    };
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    for line in raw.split(|b| *b == b'\n') {
        let rec = log_format::decode(format, line);
        let wrapper = rec.wrapper_at.map(|t| t.naive_utc());
        let start = d.display.len();
        if let Some(t) = rec.wrapper_at {
            d.display
                .extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
            d.display.push(b' ');
        }
        let (own, kind) = match rec.body {
            Body::Json(j) => {
                one_line(j.message.as_bytes(), &mut d.body);
                j.render(&mut d.display);
                let mut stash = |v: &Option<String>| {
                    let s = d.texts.len();
                    d.texts.push_str(v.as_deref().unwrap_or("-"));
                    s..d.texts.len()
                };
                let kind = Kind::Json {
                    logger: stash(&j.namespace),
                    level: stash(&j.level),
                    request: stash(&j.request),
                };
                (wrapper.or(j.time.map(|t| t.naive_utc())), kind)
            }
            Body::Text(text) => {
                one_line(&text, &mut d.body);
                one_line(&text, &mut d.display);
                match inner_head(&text) {
                    _ if rec.foreign => (None, Kind::Continuation),
                    Some(h) => {
                        let own = h.at.map(|a| zone.to_utc(a).naive_utc());
                        let level = rec.priority.map(level_of_priority);
                        (wrapper.or(own), Kind::Text { level })
                    }
                    None => (None, Kind::Continuation),
                }
            }
        };
        d.body.push(b'\n');
        if own.is_some() {
            *carried = own;
        }
        d.heads.push(Head {
            at: own.filter(|_| !matches!(kind, Kind::Continuation)),
            carried: own.or(wrapper).or(*carried),
            kind,
            display: start..d.display.len(),
        });
    }
    d
}

impl Decoded {
    fn head_of(&self, line_no: u64) -> Option<&Head> {
        self.heads
            .get(usize::try_from(line_no).ok()?.checked_sub(1)?)
    }

    /// Appends the display line of line `line_no` (1-based).
    pub fn display(&self, line_no: u64, out: &mut Vec<u8>) {
        if let Some(h) = self.head_of(line_no) {
            out.extend_from_slice(&self.display[h.display.clone()]);
        }
    }

    pub fn first_time(&self) -> Option<NaiveDateTime> {
        self.heads.iter().find_map(|h| h.at)
    }

    pub fn last_time(&self) -> Option<NaiveDateTime> {
        self.heads.iter().rev().find_map(|h| h.at)
    }
}

impl Heads for Decoded {
    fn head<'a>(&'a self, line_no: u64, line: &'a [u8]) -> Option<RecordHead<'a>> {
        let h = self.head_of(line_no)?;
        let at = h.at.or(h.carried)?;
        match &h.kind {
            Kind::Continuation => None,
            Kind::Text { level } => {
                let ih = inner_head(line)?;
                Some(RecordHead {
                    at,
                    logger: ih.logger,
                    level: ih.level.or(*level).unwrap_or("-"),
                    request: ih.request,
                    message: ih.message,
                })
            }
            Kind::Json {
                logger,
                level,
                request,
            } => Some(RecordHead {
                at,
                logger: self.texts.get(logger.clone()).unwrap_or("-"),
                level: self.texts.get(level.clone()).unwrap_or("-"),
                request: self.texts.get(request.clone()).unwrap_or("-"),
                message: line,
            }),
        }
    }

    fn stamp(&self, line_no: u64, _line: &[u8]) -> Option<NaiveDateTime> {
        self.head_of(line_no)?.at
    }

    fn lookback(&self, _buf: &[u8], _start: usize, line_no: u64) -> Option<NaiveDateTime> {
        self.head_of(line_no)?.carried
    }

    fn record_millis(&self, text: &[u8], starts: &mut Vec<usize>, records: &mut Vec<(u64, i64)>) {
        for_each_line(text, |start, _| starts.push(start));
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(at) = h.at {
                records.push((i as u64 + 1, at.and_utc().timestamp_millis()));
            }
        }
    }
}

impl Capture {
    /// Complete raw lines of a decoded log: journaled as they are
    /// (redacted), scanned as records.
    pub(super) fn process_decoded(
        &mut self,
        src: usize,
        format: Format,
        raw: &[u8],
        batch: &mut ServerBatch,
    ) -> std::io::Result<()> {
        let zone = self.sources[src].clock.zone_only();
        let mut carried = self.sources[src].carried;
        let d = decode(raw, format, &zone, &mut carried);
        self.sources[src].carried = carried;
        self.sources[src].bytes += raw.len() as u64;
        let (red, tally) = self.redactor.redact_bytes(raw);
        let file = self.journal.server_file(src);
        match red {
            std::borrow::Cow::Borrowed(_) => file.write_slice(raw)?,
            std::borrow::Cow::Owned(v) => file.write(v)?,
        }
        file.redactions += tally.total();
        file.by_rule.add(&tally);
        batch.redactions += tally.total();
        let mut scanned = self.scan_context_of(src).scan_decoded(&d.body, &d);
        self.commit_buffer(src, &d.body, &mut scanned, batch, LogWrite::Decoded(&d))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests;
