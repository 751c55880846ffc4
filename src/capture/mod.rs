//! The capture stage between sources and the App: splits server bytes into
//! lines, matches every KE in one pass, redacts, journals, and hands the App
//! only what it shows or counts. Client files are copied (redacted) and parsed
//! here too. This is the hot path of `analyze` and of a log flood.

use crate::app::event::{
    ArtifactKind, ClientArtifact, ClientEntry, HarConflict, OtkUpload, ServerBatch, ServerHit,
    ServerStall, ToDeviceTrace,
};
use crate::bundle::journal::Journal;
use crate::domain::diag::{ke3_event_id, parse_diag};
use crate::domain::har::{self, ConflictMemo, redact_har, scan_har};
use crate::domain::redact::{Redactor, Tally};
use crate::domain::signatures::{Matcher, Signatures};
use crate::domain::stall::{Stall, StallDetector};
use crate::domain::synapse_log::{LogClock, parse_record, parse_timestamp_prefix};
use crate::domain::{Ke, KeSet};
use chrono::{DateTime, Utc};
use compact_str::CompactString;
pub use scan::{ScanContext, ScannedBuffer};
use scan::{Scanned, display_text, record_text};

mod file_scan;
mod scan;
pub use file_scan::{ScanFileError, Spent, scan_file, scanner_threads};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// What [`Capture::server_scanned`] made of a buffer.
pub struct Committed {
    pub batch: ServerBatch,
    /// A buffer to read into again.
    pub spare: Option<Vec<u8>>,
    /// The scan, emptied, for its scanner to fill again.
    pub scanned: ScannedBuffer,
}

/// Who writes a committed buffer's clean bytes to the server log.
enum LogWrite {
    /// The capture copies them to the journal writer.
    Copy,
    /// The caller hands the whole buffer over when it is clean.
    Caller,
}

/// How far back a continuation line looks for its record's time.
const LOOKBACK_LINES: usize = 2000;
/// A diag report larger than this is kept verbatim but not parsed.
const DIAG_PARSE_MAX: u64 = 64 * 1024 * 1024;

pub struct Capture {
    pub journal: Journal,
    sigs: Signatures,
    matcher: Arc<Matcher>,
    redactor: Arc<Redactor>,
    clock: LogClock,
    /// Bumped whenever what a scan reads with (matcher, clock) changes.
    generation: u64,
    ke3_ids: Vec<String>,
    partial: Vec<u8>,
    lines: u64,
    bytes: u64,
    ke_lines: [u64; 4],
    last_record_at: Option<DateTime<Utc>>,
    stalls: StallDetector,
    conflicts: ConflictMemo,
}

impl Capture {
    /// `restart_timeout_ms` is the client's delayed-event restart timeout:
    /// a longer silence of the log may be a homeserver stall.
    pub fn new(
        journal: Journal,
        sigs: Signatures,
        clock: LogClock,
        ke3_ids: Vec<String>,
        restart_timeout_ms: u32,
    ) -> Result<Capture, String> {
        let matcher = Matcher::new(&sigs, &ke3_ids)?;
        Ok(Capture {
            journal,
            sigs,
            matcher: Arc::new(matcher),
            redactor: Arc::new(Redactor::new()),
            clock,
            generation: 0,
            ke3_ids,
            partial: Vec::new(),
            lines: 0,
            bytes: 0,
            ke_lines: [0; 4],
            last_record_at: None,
            stalls: StallDetector::new(restart_timeout_ms),
            conflicts: ConflictMemo::default(),
        })
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Redacts with `redactor` from now on (site rules added to the
    /// built-in ones); the journal notes where its site rules came from.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.journal.site_rules = redactor.site_origins().to_vec();
        self.redactor = Arc::new(redactor);
        self.generation += 1; // scans made with the old rules are stale
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Adds KE-3 event ids to the server pattern. Lines already journaled
    /// are searched for the new ids once (ids arrive with client reports,
    /// usually after the lines they name), so KE-3 holds every line that
    /// names them. Returns those earlier lines as a batch for the App.
    pub fn add_ke3_ids(&mut self, ids: &[String]) -> Result<Option<ServerBatch>, String> {
        let new: Vec<String> = ids
            .iter()
            .filter(|id| !id.is_empty() && !self.ke3_ids.contains(id))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(None);
        }
        self.ke3_ids.extend(new.iter().cloned());
        self.matcher = Arc::new(Matcher::new(&self.sigs, &self.ke3_ids)?);
        self.generation += 1;
        if self.lines == 0 {
            return Ok(None);
        }
        self.rescan_for(&new)
            .map(Some)
            .map_err(|e| format!("searching the journal for KE-3 ids: {e}"))
    }

    fn rescan_for(&mut self, ids: &[String]) -> io::Result<ServerBatch> {
        self.journal.flush()?;
        // Waits until the writer thread has put every line on disk.
        let _ = self.journal.server.facts();
        let path = self.journal.dir.join(crate::bundle::journal::SERVER_LOG);
        let finders: Vec<memchr::memmem::Finder> = ids
            .iter()
            .map(|i| memchr::memmem::Finder::new(i.as_bytes()))
            .collect();
        let mut batch = ServerBatch {
            source: "server-log".into(),
            ..Default::default()
        };
        let mut reader = std::io::BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut line = Vec::new();
        let mut n = 0u64;
        let mut last_at = None;
        let limit = self.lines;
        use std::io::BufRead;
        while n < limit {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            n += 1;
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            if let Some(t) = parse_timestamp_prefix(l) {
                last_at = Some(self.clock.to_utc(t));
            }
            if !finders.iter().any(|f| f.find(l).is_some()) {
                continue;
            }
            let i = Ke::Ke3.index();
            self.ke_lines[i] += 1;
            let mut ke_line_no = [0u64; 4];
            ke_line_no[i] = self.ke_lines[i];
            self.journal.ke[i].write(l)?;
            self.journal.ke[i].write(b"\n")?;
            let mut kes = KeSet::default();
            kes.insert(Ke::Ke3);
            let text = batch.add_text(&match parse_record(l) {
                Some(h) => record_text(Some(&self.redactor), &h),
                None => display_text(l),
            });
            batch.hits.push(ServerHit {
                line_no: n,
                at: last_at,
                text,
                kes,
                ke_line_no,
                error: false,
                offending: None,
                request: None,
            });
        }
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(batch)
    }

    /// A measured remote clock offset (remote minus local) applies to the
    /// server lines that follow.
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.clock.set_offset_ms(offset_ms);
        self.generation += 1; // scans made with the old clock are stale
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Ingests a chunk of log bytes (any alignment). Complete lines are
    /// journaled at once; an incomplete last line waits for the next chunk.
    pub fn server_chunk(&mut self, source: &str, bytes: &[u8]) -> io::Result<ServerBatch> {
        let mut batch = ServerBatch {
            source: source.to_string(),
            ..Default::default()
        };
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

    /// What scanning needs, for a scan on another thread.
    pub fn scan_context(&self) -> ScanContext {
        ScanContext {
            matcher: self.matcher.clone(),
            redactor: self.redactor.clone(),
            clock: self.clock.clone(),
            generation: self.generation,
        }
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
        let mut scanned = self.scan_context().scan(buf)?;
        self.commit_buffer(buf, &mut scanned, batch, LogWrite::Copy)
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
                // Handed over, not copied: a scan makes a fresh one.
                Some(red) => self.journal.server.write(red)?,
                None if by_caller => {}
                None => self.journal.server.write_slice(&buf[part.range.clone()])?,
            }
            let n = part.redactions.total();
            self.journal.server.redactions += n;
            self.journal.server.by_rule.add(&part.redactions);
            batch.redactions += n;
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

    /// Copies a client download into `client/` (redacted) and parses it.
    /// Never fails on bad content: unparsable files are kept verbatim.
    pub fn client_file(
        &mut self,
        path: &Path,
        arrived_at: DateTime<Utc>,
    ) -> io::Result<ClientArtifact> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "client-file".into());
        let name = self.unique_client_name(&name);
        let rel = format!("client/{name}");
        let lower = name.to_ascii_lowercase();
        let kind = if lower.ends_with(".har") {
            ArtifactKind::Har
        } else if lower.ends_with(".json") {
            ArtifactKind::Diag
        } else {
            ArtifactKind::Other
        };
        let mut art = ClientArtifact::new(name.clone(), kind, arrived_at);
        let meta = std::fs::metadata(path)?;
        art.bytes = meta.len();
        match kind {
            ArtifactKind::Har => {
                let out_path = self.journal.dir.join(&rel);
                let n = {
                    let input = BufReader::new(File::open(path)?);
                    let mut out = BufWriter::new(File::create(&out_path)?);
                    let n =
                        redact_har(input, &mut out, &self.redactor).map_err(io::Error::other)?;
                    out.flush()?;
                    n
                };
                let mut facts = crate::bundle::journal::hash_file(&out_path)?;
                facts.redactions = n.total();
                facts.by_rule = n.names();
                self.journal.adopt(&rel, facts);
                art.redactions = n.total();
                art.redactions_by_rule = n.names();
                match scan_har(BufReader::new(File::open(path)?)) {
                    Ok(sum) => {
                        art.har_keys_upload = sum.keys_upload.len();
                        art.token_users = sum.users;
                        for x in sum.keys_upload {
                            let Some(off) = x.offending else { continue };
                            let id = format!("{}:{}", off.algorithm, off.key_id);
                            let uploaded = x
                                .request_keys
                                .iter()
                                .find(|(k, _)| *k == id)
                                .and_then(|(_, v)| har::key_of(v))
                                .or_else(|| off.new_key.as_ref().and_then(har::key_of));
                            art.har_conflicts.push(HarConflict {
                                entry_index: x.entry_index,
                                at: x.started,
                                status: x.status,
                                algorithm: off.algorithm.clone(),
                                key_id: off.key_id.clone(),
                                uploaded_key: uploaded,
                                stored_key: off.old_key.as_ref().and_then(har::key_of),
                            });
                        }
                    }
                    Err(e) => art.unparsed = Some(e.to_string()),
                }
            }
            ArtifactKind::Diag | ArtifactKind::Other => {
                let mut raw = Vec::new();
                File::open(path)?
                    .take(DIAG_PARSE_MAX)
                    .read_to_end(&mut raw)?;
                let complete = (raw.len() as u64) >= meta.len();
                let n = if complete {
                    let (red, n) = self.redactor.redact_bytes(&raw);
                    self.journal.write_redacted(&rel, &red, &n)?;
                    n
                } else {
                    // Too big to parse: copy streaming, redacted per chunk.
                    self.copy_redacted(path, &rel)?
                };
                art.redactions = n.total();
                art.redactions_by_rule = n.names();
                if kind == ArtifactKind::Diag && complete {
                    match parse_diag(&raw, &self.matcher) {
                        Ok(report) => {
                            art.user_id = report.user_id.clone();
                            art.device_id = report.device_id.clone();
                            art.sdk_version = report.sdk_version.clone();
                            for e in report.entries {
                                let (msg, _) = self.redactor.redact_str(&e.message);
                                let msg = msg.into_owned();
                                if e.ke == Some(Ke::Ke3)
                                    && let Some(id) = ke3_event_id(&msg)
                                    && !art.ke3_event_ids.contains(&id)
                                {
                                    art.ke3_event_ids.push(id);
                                }
                                let error = self
                                    .matcher
                                    .classify_client(&msg)
                                    .map(|c| c.error)
                                    .unwrap_or(e.ke.is_some());
                                art.entries.push(ClientEntry {
                                    file: name.clone(),
                                    index: e.index,
                                    at: e.ts,
                                    level: e.level,
                                    ke: e.ke,
                                    error,
                                    message: msg,
                                });
                            }
                        }
                        Err(e) => art.unparsed = Some(e.to_string()),
                    }
                } else if kind == ArtifactKind::Diag {
                    art.unparsed = Some(format!("larger than {DIAG_PARSE_MAX} bytes"));
                }
            }
        }
        Ok(art)
    }

    /// Copies a file too big to parse, redacted on the way (streaming).
    fn copy_redacted(&mut self, path: &Path, rel: &str) -> io::Result<Tally> {
        let out_path = self.journal.dir.join(rel);
        let mut w = self
            .redactor
            .writer(BufWriter::new(File::create(&out_path)?));
        io::copy(&mut File::open(path)?, &mut w)?;
        let (_, n) = w.finish()?;
        let mut facts = crate::bundle::journal::hash_file(&out_path)?;
        facts.redactions = n.total();
        facts.by_rule = n.names();
        self.journal.adopt(rel, facts);
        Ok(n)
    }

    fn unique_client_name(&self, name: &str) -> String {
        let taken = |n: &str| self.journal.dir.join("client").join(n).exists();
        if !taken(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rfind('.') {
            Some(i) => (&name[..i], &name[i..]),
            None => (name, ""),
        };
        (2..)
            .map(|i| format!("{stem}-{i}{ext}"))
            .find(|n| !taken(n))
            .unwrap_or_else(|| name.to_string())
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

/// A capture on the embedded signatures, journaling into `dir` (tests).
#[cfg(test)]
fn test_capture(dir: &Path) -> Capture {
    let journal = Journal::create(dir).unwrap_or_else(|e| panic!("journal: {e}"));
    Capture::new(
        journal,
        Signatures::embedded(),
        LogClock::utc(),
        Vec::new(),
        2_000,
    )
    .unwrap_or_else(|e| panic!("capture: {e}"))
}

#[cfg(test)]
mod tests {
    use super::test_capture as capture;
    use super::*;

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
