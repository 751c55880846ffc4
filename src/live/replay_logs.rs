//! A recording's server logs read back line by line, in time order: the
//! next line is always the earliest of the logs' next lines (a line
//! without a time of its own goes with its log's previous one).

use crate::domain::log_format::{self, Body, Format, inner_head, sniff};
use crate::domain::synapse_log::LogClock;
use crate::model::server_logs::{LogInfo, ServerLogs};
use chrono::{DateTime, Utc};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Reader {
    format: Option<Format>,
    zone: LogClock,
    lines: BufReader<tokio::fs::File>,
    /// The next line (with its newline) and its own time, once read.
    next: Option<(Vec<u8>, Option<DateTime<Utc>>)>,
    done: bool,
    last_at: Option<DateTime<Utc>>,
}

pub(super) struct LogLines {
    readers: Vec<Reader>,
}

/// A line's own time: Synapse's text timestamp in the log's zone, or a
/// decoded record's (its wrapper's, else its own).
pub(super) fn line_time(format: Format, line: &[u8], zone: &LogClock) -> Option<DateTime<Utc>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let rec = log_format::decode(format, line);
    if rec.wrapper_at.is_some() {
        return rec.wrapper_at;
    }
    match rec.body {
        Body::Json(j) => j.time,
        Body::Text(t) => inner_head(&t).and_then(|h| h.at).map(|a| zone.to_utc(a)),
    }
}

impl LogLines {
    /// Opens each log's file in `dir`.
    pub async fn open(dir: &Path, logs: &[LogInfo]) -> std::io::Result<LogLines> {
        let names = ServerLogs::new(logs.iter().map(|l| l.name.clone()).collect());
        let mut readers = Vec::with_capacity(logs.len());
        for (i, l) in logs.iter().enumerate() {
            let file = tokio::fs::File::open(dir.join(names.file(i))).await?;
            readers.push(Reader {
                format: l.format.as_deref().and_then(Format::from_name),
                zone: LogClock::new(&l.timezone).unwrap_or_else(|_| LogClock::utc()),
                lines: BufReader::with_capacity(1 << 16, file),
                next: None,
                done: false,
                last_at: None,
            });
        }
        Ok(LogLines { readers })
    }

    /// Log `log`'s host clock offset, read with its lines' times from now
    /// on (a line already read keeps the time it was read with).
    pub fn set_offset_ms(&mut self, log: usize, offset_ms: i64) {
        if let Some(r) = self.readers.get_mut(log) {
            r.zone.set_offset_ms(offset_ms);
        }
    }

    /// The earliest next line: its log's index, the line (with its
    /// newline) and its own time. `None` at the end of every log.
    pub async fn next(
        &mut self,
    ) -> std::io::Result<Option<(usize, Vec<u8>, Option<DateTime<Utc>>)>> {
        for r in &mut self.readers {
            if r.next.is_none() && !r.done {
                let mut line = Vec::new();
                if r.lines.read_until(b'\n', &mut line).await? == 0 {
                    r.done = true;
                    continue;
                }
                let format = *r.format.get_or_insert_with(|| sniff(&line));
                let at = line_time(format, &line, &r.zone);
                r.next = Some((line, at));
            }
        }
        let pick = self
            .readers
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let (_, at) = r.next.as_ref()?;
                Some((at.or(r.last_at), i))
            })
            .min();
        let Some((_, i)) = pick else {
            return Ok(None);
        };
        let r = &mut self.readers[i];
        let Some((line, at)) = r.next.take() else {
            return Ok(None);
        };
        if at.is_some() {
            r.last_at = at;
        }
        Ok(Some((i, line, at)))
    }
}
