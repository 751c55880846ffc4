//! Server log bytes into the capture: split into lines (each log keeps its
//! own unfinished line), scanned, numbered, journaled (the log's file and
//! the KE logs) and handed to the App as a batch; homeserver stalls are
//! found on the way, per log.

use super::scan::Scanned;
use super::{Capture, LOOKBACK_LINES, LogWrite, ScannedBuffer};
use crate::app::event::{OtkUpload, ServerBatch, ServerHit, ServerStall, ToDeviceTrace};
use crate::domain::Ke;
use crate::domain::stall::Stall;
use crate::domain::synapse_log::parse_timestamp_prefix;
use crate::model::server_logs::{line_number, split_line_number};
use chrono::DateTime;
use compact_str::CompactString;
use std::borrow::Cow;
use std::io;

/// What [`Capture::server_scanned`] made of a buffer.
pub struct Committed {
    pub batch: ServerBatch,
    /// A buffer to read into again.
    pub spare: Option<Vec<u8>>,
    /// The scan, emptied, for its scanner to fill again.
    pub scanned: ScannedBuffer,
}

impl Capture {
    /// Ingests a chunk of a log's bytes (any alignment). Complete lines
    /// are journaled at once; an incomplete last line waits for the next
    /// chunk of the same log.
    pub fn server_chunk(&mut self, source: &str, bytes: &[u8]) -> io::Result<ServerBatch> {
        let src = self.source_index(source);
        let mut batch = self.batch(src);
        let bytes = self.pass_long_line(src, bytes, &mut batch)?;
        if self.sources[src].partial.is_empty() {
            match memchr::memrchr(b'\n', bytes) {
                Some(i) => {
                    self.process(src, &bytes[..=i], &mut batch)?;
                    self.sources[src].partial.extend_from_slice(&bytes[i + 1..]);
                }
                None => self.sources[src].partial.extend_from_slice(bytes),
            }
        } else {
            // Finish the waiting line with the chunk's first one, then take
            // the rest of the chunk in place: no copy of the whole chunk.
            match memchr::memchr(b'\n', bytes) {
                None => self.sources[src].partial.extend_from_slice(bytes),
                Some(first) => {
                    self.sources[src]
                        .partial
                        .extend_from_slice(&bytes[..=first]);
                    let head = std::mem::take(&mut self.sources[src].partial);
                    self.process(src, &head, &mut batch)?;
                    let rest = &bytes[first + 1..];
                    match memchr::memrchr(b'\n', rest) {
                        Some(i) => {
                            self.process(src, &rest[..=i], &mut batch)?;
                            self.sources[src].partial.extend_from_slice(&rest[i + 1..]);
                        }
                        None => self.sources[src].partial.extend_from_slice(rest),
                    }
                }
            }
        }
        self.cut_long_line(src, &mut batch)?;
        self.journal.flush()?;
        self.totals(&mut batch);
        Ok(batch)
    }

    /// Ends a log's input: an unterminated last line becomes a line. With
    /// `terminate`, a newline is added after it (between input files) so
    /// the next file's first line stays a line of its own. Without it the
    /// log's input ends here: a stall whose burst was still being counted
    /// is complete.
    pub fn end_of_input(&mut self, source: &str, terminate: bool) -> io::Result<ServerBatch> {
        let src = self.source_index(source);
        let mut batch = self.batch(src);
        self.end_long_line(src, &mut batch, terminate)?;
        if !self.sources[src].partial.is_empty() {
            let mut last = std::mem::take(&mut self.sources[src].partial);
            if terminate {
                last.push(b'\n');
            }
            self.process(src, &last, &mut batch)?;
        }
        if !terminate && let Some(s) = self.sources[src].stalls.finish() {
            batch.stalls.extend(self.stall_in_utc(src, s));
        }
        self.journal.flush()?;
        self.totals(&mut batch);
        Ok(batch)
    }

    /// Ingests a buffer of complete lines of a text log scanned elsewhere
    /// with [`Capture::scan_context_for`] (in order, nothing pending from
    /// [`Capture::server_chunk`]). A scan made before the matcher changed
    /// is done again here. A buffer with nothing to redact goes to the
    /// journal writer as it is (no copy).
    pub fn server_scanned(
        &mut self,
        source: &str,
        buf: Vec<u8>,
        mut scanned: ScannedBuffer,
    ) -> io::Result<Committed> {
        let src = self.source_index(source);
        let mut batch = self.batch(src);
        if !self.sources[src].partial.is_empty() {
            return Err(io::Error::other(
                "a scanned buffer arrived while a line was incomplete",
            ));
        }
        if scanned.generation != self.generation {
            scanned = self.scan_context_of(src).scan(&buf)?;
        }
        let spare = if self.commit_buffer(src, &buf, &mut scanned, &mut batch, LogWrite::Caller)? {
            let file = self.journal.server_file(src);
            file.write(buf)?;
            file.spare()
        } else {
            Some(buf)
        };
        self.journal.flush()?;
        self.totals(&mut batch);
        Ok(Committed {
            batch,
            spare,
            scanned,
        })
    }

    fn batch(&self, src: usize) -> ServerBatch {
        ServerBatch {
            source: self.logs.name(src).to_string(),
            ..Default::default()
        }
    }

    fn totals(&self, batch: &mut ServerBatch) {
        batch.lines_total = self.lines();
        batch.bytes_total = self.bytes();
    }

    /// Complete lines of a log: its format is told by its first lines.
    fn process(&mut self, src: usize, buf: &[u8], batch: &mut ServerBatch) -> io::Result<()> {
        let format = *self.sources[src]
            .format
            .get_or_insert_with(|| crate::domain::log_format::sniff(buf));
        let service = *self.sources[src]
            .service
            .get_or_insert_with(|| super::sfu_ingest::detect(format, buf));
        if service.is_sfu() {
            return self.process_sfu(src, format, service, buf, batch);
        }
        if format.is_decoded() {
            return self.process_decoded(src, format, buf, batch);
        }
        self.process_with(src, buf, batch, LogWrite::Copy)
    }

    /// Complete lines of a text log (or a cut line's head, taken as text
    /// whatever the log's format), written to its file as `log_write` says.
    pub(super) fn process_with(
        &mut self,
        src: usize,
        buf: &[u8],
        batch: &mut ServerBatch,
        log_write: LogWrite<'_>,
    ) -> io::Result<()> {
        let mut scanned = self.scan_context_of(src).scan(buf)?;
        self.commit_buffer(src, buf, &mut scanned, batch, log_write)
            .map(|_| ())
    }

    /// Numbers, journals and hands on a scanned buffer's findings.
    /// With [`LogWrite::Caller`], returns true when the buffer holds no
    /// secret: the caller then hands it to the log's file itself.
    pub(super) fn commit_buffer(
        &mut self,
        src: usize,
        buf: &[u8],
        scanned: &mut ScannedBuffer,
        batch: &mut ServerBatch,
        log_write: LogWrite<'_>,
    ) -> io::Result<bool> {
        let clock = self.sources[src].scan_clock();
        let decoded = match log_write {
            LogWrite::Decoded(d) => Some(d),
            _ => None,
        };
        if decoded.is_none() {
            self.sources[src].bytes += buf.len() as u64;
        }
        let skip = matches!(log_write, LogWrite::Skip);
        let by_caller = matches!(log_write, LogWrite::Caller)
            && scanned.parts.iter().all(|p| p.redacted.is_none());
        if batch.first_at.is_none() {
            let first = match decoded {
                Some(d) => d.first_time(),
                None => first_record_time(buf),
            };
            batch.first_at = first.map(|t| clock.to_utc(t));
        }
        // Sized once: growing them hit by hit copies each several times.
        let parts = &scanned.parts;
        batch.hits.reserve(parts.iter().map(|p| p.hits.len()).sum());
        batch
            .access
            .reserve(parts.iter().map(|p| p.access.len()).sum());
        batch
            .texts
            .reserve(parts.iter().map(|p| p.texts.len()).sum());
        let base_line = self.sources[src].lines;
        let access_before = batch.access.len();
        let mut part_base = base_line;
        let mut bases = Vec::with_capacity(scanned.parts.len());
        for part in scanned.parts.iter_mut() {
            if decoded.is_none() && !skip {
                // The log, redacted (secrets never span lines, so each part
                // is redacted on its own).
                let file = self.journal.server_file(src);
                match part.redacted.take() {
                    // Handed over, not copied: a scan makes a fresh one.
                    Some(red) => file.write(red)?,
                    None if by_caller => {}
                    None => file.write_slice(&buf[part.range.clone()])?,
                }
                let n = part.redactions.total();
                file.redactions += n;
                file.by_rule.add(&part.redactions);
                batch.redactions += n;
            }
            let lines = part.lines;
            bases.push(part_base);
            self.commit(src, buf, part, part_base, batch, decoded)?;
            part_base += lines;
        }
        self.sources[src].lines = part_base;
        // Every record's time, for stalls.
        let restarts: Vec<u64> = batch.access[access_before..]
            .iter()
            .filter(|a| a.delayed_restart)
            .map(|a| split_line_number(a.line_no).1)
            .collect();
        let mut stalls = Vec::new();
        self.sources[src].stalls.feed(
            bases
                .iter()
                .zip(&scanned.parts)
                .flat_map(|(&base, p)| p.records.iter().map(move |&(l, ms)| (base + l, ms))),
            &restarts,
            &mut stalls,
        );
        for s in stalls {
            batch.stalls.extend(self.stall_in_utc(src, s));
        }
        let last = match decoded {
            Some(d) => d.last_time(),
            None => last_record_time(buf),
        };
        let source = &mut self.sources[src];
        if let Some(t) = last {
            source.last_record_at = Some(clock.to_utc(t));
        }
        batch.last_at = source.last_record_at;
        if batch.first_at.is_none() {
            batch.first_at = batch.last_at;
        }
        Ok(by_caller)
    }

    /// Numbers a scanned part's findings (its first line follows line
    /// `base_line` of the log), journals its KE lines and adds them to the
    /// batch.
    fn commit(
        &mut self,
        src: usize,
        buf: &[u8],
        part: &mut Scanned,
        base_line: u64,
        batch: &mut ServerBatch,
        decoded: Option<&super::decoded::Decoded>,
    ) -> io::Result<()> {
        let number = |n: u64| line_number(src, base_line + n);
        let several = self.logs.several();
        for hit in part.hits.drain(..) {
            let at = hit.at.or(self.sources[src].last_record_at);
            let red_line = match &hit.redacted {
                Some(r) => &r.0[..],
                None => &buf[hit.line.clone()],
            };
            // What each KE log gets: the line (a decoded record's display
            // line), with its log's name when there are several.
            let (ke_line, ke_tally) = match decoded {
                Some(d) => {
                    let mut line = self.name_prefix_of(src);
                    d.display(hit.line_no, &mut line);
                    let (red, tally) = self.redactor.redact_bytes(&line);
                    (Cow::Owned(red.into_owned()), Some(tally))
                }
                None if several => {
                    let mut line = self.name_prefix_of(src);
                    line.extend_from_slice(red_line);
                    (Cow::Owned(line), None)
                }
                None => (Cow::Borrowed(red_line), None),
            };
            let mut ke_line_no = [0u64; 4];
            for ke in hit.kes.iter() {
                let i = ke.index();
                self.ke_lines[i] += 1;
                ke_line_no[i] = self.ke_lines[i];
                if several {
                    self.ke_order[i].push(super::ke_merge::key(at, src));
                }
                let f = &mut self.journal.ke[i];
                f.write(&ke_line)?;
                f.write(b"\n")?;
                let tally = ke_tally.as_ref().or(hit.redacted.as_ref().map(|r| &r.1));
                if let Some(t) = tally {
                    f.redactions += t.total();
                    f.by_rule.add(t);
                }
            }
            let text = part.texts.get(hit.text.clone()).unwrap_or_default();
            let offending = if hit.kes.contains(Ke::Ke1) {
                self.conflicts.parse(text)
            } else {
                None
            };
            let text = batch.add_text(text);
            batch.hits.push(ServerHit {
                line_no: number(hit.line_no),
                at,
                text,
                kes: hit.kes,
                ke_line_no,
                error: hit.error,
                offending,
                request: hit
                    .request
                    .and_then(|r| part.texts.get(r))
                    .map(CompactString::from),
            });
        }
        batch.access.extend(part.access.drain(..).map(|mut a| {
            a.line_no = number(a.line_no);
            a
        }));
        // Strings the App keeps or drops are made here, on the thread that
        // will free them (short ones are kept inline, no allocation).
        let texts = &part.texts;
        let text = |r: std::ops::Range<usize>| texts.get(r).unwrap_or_default();
        batch
            .to_device
            .extend(part.to_device.drain(..).map(|t| ToDeviceTrace {
                line_no: number(t.line_no),
                at: t.at,
                text: text(t.text).to_owned(),
            }));
        batch
            .otk_uploads
            .extend(part.otk_uploads.drain(..).map(|u| OtkUpload {
                request: text(u.request).into(),
                user: text(u.user).into(),
                device: text(u.device).into(),
            }));
        Ok(())
    }

    /// `name | ` when there are several logs, else nothing.
    pub(super) fn name_prefix_of(&self, src: usize) -> Vec<u8> {
        if self.logs.several() {
            format!("{} | ", self.logs.name(src)).into_bytes()
        } else {
            Vec::new()
        }
    }

    /// A stall found on a log's clock, in UTC. `None` when the silence was
    /// the wall clock jumping (daylight saving), not time passing.
    fn stall_in_utc(&self, src: usize, s: Stall) -> Option<ServerStall> {
        let source = &self.sources[src];
        let clock = source.scan_clock();
        let utc = |ms| DateTime::from_timestamp_millis(ms).map(|t| clock.to_utc(t.naive_utc()));
        let (from, to) = (utc(s.from_ms)?, utc(s.to_ms)?);
        ((to - from).num_milliseconds() > source.stalls.threshold_ms()).then_some(ServerStall {
            from,
            to,
            line_no: line_number(src, s.line_no),
            burst: s.burst,
            delayed_restart: s.delayed_restart,
        })
    }
}

fn first_record_time(buf: &[u8]) -> Option<chrono::NaiveDateTime> {
    buf.split(|b| *b == b'\n')
        .take(LOOKBACK_LINES)
        .find_map(parse_timestamp_prefix)
}

fn last_record_time(buf: &[u8]) -> Option<chrono::NaiveDateTime> {
    buf.rsplit(|b| *b == b'\n')
        .take(LOOKBACK_LINES)
        .find_map(parse_timestamp_prefix)
}

#[cfg(test)]
mod tests {
    use super::super::test_capture as capture;
    use super::*;
    use chrono::Utc;

    fn record(t: &str, msg: &str) -> String {
        format!("2026-06-30 18:00:{t} - synapse.x - 1 - INFO - GET-1 - {msg}\n")
    }

    #[test]
    fn a_stall_whose_burst_spans_chunks_is_emitted_once_complete_or_at_the_end() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut c = capture(&tmp.path().join("j"));
        let restart = "2026-06-30 18:00:06,100 - synapse.access.http.8008 - 521 - INFO - POST-9 - \
            192.0.2.10 - 8008 - {@a:hs} Processed request: 0.004sec/0.000sec ru=(0.001sec, 0.000sec) \
            db=(0.000sec/0.001sec/1) 2B 200 \"POST /_matrix/client/unstable/org.matrix.msc4140/\
            delayed_events/syd_1/restart HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]\n";
        let log = [
            record("00,000", "before"),
            record("06,000", "after"),
            "  continuation line\n".to_string(),
            restart.to_string(),
            record("06,200", "burst"),
        ]
        .concat();
        // Cut inside the restart line: the burst ends in the next chunk.
        let cut = log.find("Processed").unwrap_or(0);
        let b = c.server_chunk("server-log", &log.as_bytes()[..cut]);
        assert_eq!(b.map(|b| b.stalls).ok(), Some(vec![]));
        let b = c.server_chunk("server-log", &log.as_bytes()[cut..]);
        assert_eq!(b.map(|b| b.stalls).ok(), Some(vec![]));
        // Between input files the burst may go on in the next one.
        let b = c.end_of_input("server-log", true);
        assert_eq!(b.map(|b| b.stalls).ok(), Some(vec![]));
        let b = c.end_of_input("server-log", false);
        let stalls = b.map(|b| b.stalls).unwrap_or_default();
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        assert_eq!(
            stalls
                .iter()
                .map(|s| (
                    Some(s.from),
                    Some(s.to),
                    s.line_no,
                    s.burst,
                    s.delayed_restart
                ))
                .collect::<Vec<_>>(),
            vec![(
                at("2026-06-30T18:00:00Z"),
                at("2026-06-30T18:00:06Z"),
                2,
                3,
                true
            )]
        );
        // A record past the window completes a stall without the end.
        let b = c.server_chunk(
            "server-log",
            [
                record("09,000", "x"),
                record("09,010", "y"),
                record("09,020", "z"),
                record("10,500", "w"),
            ]
            .concat()
            .as_bytes(),
        );
        let stalls = b.map(|b| b.stalls).unwrap_or_default();
        assert_eq!(
            stalls
                .iter()
                .map(|s| (s.line_no, s.burst))
                .collect::<Vec<_>>(),
            vec![(6, 3)]
        );
        assert_eq!(c.lines(), 9);
    }
}
