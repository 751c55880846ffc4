//! Server log bytes into the capture: split into lines, scanned, numbered,
//! journaled (the server log and the KE logs) and handed to the App as a
//! batch; homeserver stalls are found on the way.

use super::scan::Scanned;
use super::{Capture, LOOKBACK_LINES, ScannedBuffer};
use crate::app::event::{OtkUpload, ServerBatch, ServerHit, ServerStall, ToDeviceTrace};
use crate::domain::Ke;
use crate::domain::stall::Stall;
use crate::domain::synapse_log::parse_timestamp_prefix;
use chrono::DateTime;
use compact_str::CompactString;
use std::io;

/// What [`Capture::server_scanned`] made of a buffer.
pub struct Committed {
    pub batch: ServerBatch,
    /// A buffer to read into again.
    pub spare: Option<Vec<u8>>,
    /// The scan, emptied, for its scanner to fill again.
    pub scanned: ScannedBuffer,
}

/// Who writes a committed buffer's clean bytes to the server log.
pub(super) enum LogWrite {
    /// The capture copies them to the journal writer.
    Copy,
    /// The caller hands the whole buffer over when it is clean.
    Caller,
    /// Nothing of it: the bytes go to the log another way, redacted there
    /// (a cut line's head, see `long_line.rs`).
    Skip,
}

impl Capture {
    /// Ingests a chunk of log bytes (any alignment). Complete lines are
    /// journaled at once; an incomplete last line waits for the next chunk.
    pub fn server_chunk(&mut self, source: &str, bytes: &[u8]) -> io::Result<ServerBatch> {
        let mut batch = ServerBatch {
            source: source.to_string(),
            ..Default::default()
        };
        let bytes = self.pass_long_line(bytes, &mut batch)?;
        if self.partial.is_empty() {
            match memchr::memrchr(b'\n', bytes) {
                Some(i) => {
                    self.process(&bytes[..=i], &mut batch)?;
                    self.partial.extend_from_slice(&bytes[i + 1..]);
                }
                None => self.partial.extend_from_slice(bytes),
            }
        } else {
            // Finish the waiting line with the chunk's first one, then take
            // the rest of the chunk in place: no copy of the whole chunk.
            match memchr::memchr(b'\n', bytes) {
                None => self.partial.extend_from_slice(bytes),
                Some(first) => {
                    self.partial.extend_from_slice(&bytes[..=first]);
                    let head = std::mem::take(&mut self.partial);
                    self.process(&head, &mut batch)?;
                    let rest = &bytes[first + 1..];
                    match memchr::memrchr(b'\n', rest) {
                        Some(i) => {
                            self.process(&rest[..=i], &mut batch)?;
                            self.partial.extend_from_slice(&rest[i + 1..]);
                        }
                        None => self.partial.extend_from_slice(rest),
                    }
                }
            }
        }
        self.cut_long_line(&mut batch)?;
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(batch)
    }

    /// Ends a file: an unterminated last line becomes a line. With
    /// `terminate`, a newline is added after it (between input files) so
    /// the next file's first line stays a line of its own. Without it the
    /// capture's input ends here: a stall whose burst was still being
    /// counted is complete.
    pub fn end_of_input(&mut self, source: &str, terminate: bool) -> io::Result<ServerBatch> {
        let mut batch = ServerBatch {
            source: source.to_string(),
            ..Default::default()
        };
        self.end_long_line(&mut batch, terminate)?;
        if !self.partial.is_empty() {
            let mut last = std::mem::take(&mut self.partial);
            if terminate {
                last.push(b'\n');
            }
            self.process(&last, &mut batch)?;
        }
        if !terminate && let Some(s) = self.stalls.finish() {
            batch.stalls.extend(self.stall_in_utc(s));
        }
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(batch)
    }

    /// Ingests a buffer of complete lines scanned elsewhere with
    /// [`Capture::scan_context`] (in order, nothing pending from
    /// [`Capture::server_chunk`]). A scan made before the matcher changed
    /// is done again here. A buffer with nothing to redact goes to the
    /// journal writer as it is (no copy).
    pub fn server_scanned(
        &mut self,
        source: &str,
        buf: Vec<u8>,
        mut scanned: ScannedBuffer,
    ) -> io::Result<Committed> {
        let mut batch = ServerBatch {
            source: source.to_string(),
            ..Default::default()
        };
        if !self.partial.is_empty() {
            return Err(io::Error::other(
                "a scanned buffer arrived while a line was incomplete",
            ));
        }
        if scanned.generation != self.generation {
            scanned = self.scan_context().scan(&buf)?;
        }
        let spare = if self.commit_buffer(&buf, &mut scanned, &mut batch, LogWrite::Caller)? {
            self.journal.server.write(buf)?;
            self.journal.server.spare()
        } else {
            Some(buf)
        };
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(Committed {
            batch,
            spare,
            scanned,
        })
    }

    fn process(&mut self, buf: &[u8], batch: &mut ServerBatch) -> io::Result<()> {
        self.process_with(buf, batch, LogWrite::Copy)
    }

    pub(super) fn process_with(
        &mut self,
        buf: &[u8],
        batch: &mut ServerBatch,
        log_write: LogWrite,
    ) -> io::Result<()> {
        let mut scanned = self.scan_context().scan(buf)?;
        self.commit_buffer(buf, &mut scanned, batch, log_write)
            .map(|_| ())
    }

    /// Numbers, journals and hands on a scanned buffer's findings.
    /// With [`LogWrite::Caller`], returns true when the buffer holds no
    /// secret: the caller then hands it to the server log itself.
    fn commit_buffer(
        &mut self,
        buf: &[u8],
        scanned: &mut ScannedBuffer,
        batch: &mut ServerBatch,
        log_write: LogWrite,
    ) -> io::Result<bool> {
        self.bytes += buf.len() as u64;
        let skip = matches!(log_write, LogWrite::Skip);
        let by_caller = matches!(log_write, LogWrite::Caller)
            && scanned.parts.iter().all(|p| p.redacted.is_none());
        if batch.first_at.is_none() {
            batch.first_at = first_record_time(buf).map(|t| self.clock.to_utc(t));
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
        let base_line = self.lines;
        let access_before = batch.access.len();
        let mut part_base = base_line;
        let mut bases = Vec::with_capacity(scanned.parts.len());
        for part in scanned.parts.iter_mut() {
            // The server log, redacted (secrets never span lines, so each
            // part is redacted on its own).
            match part.redacted.take() {
                _ if skip => {}
                // Handed over, not copied: a scan makes a fresh one.
                Some(red) => self.journal.server.write(red)?,
                None if by_caller => {}
                None => self.journal.server.write_slice(&buf[part.range.clone()])?,
            }
            if !skip {
                let n = part.redactions.total();
                self.journal.server.redactions += n;
                self.journal.server.by_rule.add(&part.redactions);
                batch.redactions += n;
            }
            let lines = part.lines;
            bases.push(part_base);
            self.commit(buf, part, part_base, batch)?;
            part_base += lines;
        }
        self.lines = part_base;
        // Every record's time, for stalls.
        let restarts: Vec<u64> = batch.access[access_before..]
            .iter()
            .filter(|a| a.delayed_restart)
            .map(|a| a.line_no)
            .collect();
        let mut stalls = Vec::new();
        self.stalls.feed(
            bases
                .iter()
                .zip(&scanned.parts)
                .flat_map(|(&base, p)| p.records.iter().map(move |&(l, ms)| (base + l, ms))),
            &restarts,
            &mut stalls,
        );
        for s in stalls {
            batch.stalls.extend(self.stall_in_utc(s));
        }
        if let Some(t) = last_record_time(buf) {
            self.last_record_at = Some(self.clock.to_utc(t));
        }
        batch.last_at = self.last_record_at;
        if batch.first_at.is_none() {
            batch.first_at = batch.last_at;
        }
        Ok(by_caller)
    }

    /// Numbers a scanned part's findings (its first line follows line
    /// `base_line`), journals its KE lines and adds them to the batch.
    fn commit(
        &mut self,
        buf: &[u8],
        part: &mut Scanned,
        base_line: u64,
        batch: &mut ServerBatch,
    ) -> io::Result<()> {
        for hit in part.hits.drain(..) {
            let red_line = match &hit.redacted {
                Some(r) => &r.0[..],
                None => &buf[hit.line.clone()],
            };
            let mut ke_line_no = [0u64; 4];
            for ke in hit.kes.iter() {
                let i = ke.index();
                self.ke_lines[i] += 1;
                ke_line_no[i] = self.ke_lines[i];
                let f = &mut self.journal.ke[i];
                f.write(red_line)?;
                f.write(b"\n")?;
                if let Some(r) = &hit.redacted {
                    f.redactions += r.1.total();
                    f.by_rule.add(&r.1);
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
                line_no: base_line + hit.line_no,
                at: hit.at.or(self.last_record_at),
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
            a.line_no += base_line;
            a
        }));
        // Strings the App keeps or drops are made here, on the thread that
        // will free them (short ones are kept inline, no allocation).
        let texts = &part.texts;
        let text = |r: std::ops::Range<usize>| texts.get(r).unwrap_or_default();
        batch
            .to_device
            .extend(part.to_device.drain(..).map(|t| ToDeviceTrace {
                line_no: t.line_no + base_line,
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

    /// A stall found on the log's clock, in UTC. `None` when the silence
    /// was the wall clock jumping (daylight saving), not time passing.
    fn stall_in_utc(&self, s: Stall) -> Option<ServerStall> {
        let utc =
            |ms| DateTime::from_timestamp_millis(ms).map(|t| self.clock.to_utc(t.naive_utc()));
        let (from, to) = (utc(s.from_ms)?, utc(s.to_ms)?);
        ((to - from).num_milliseconds() > self.stalls.threshold_ms()).then_some(ServerStall {
            from,
            to,
            line_no: s.line_no,
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
