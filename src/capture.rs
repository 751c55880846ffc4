//! The capture stage between sources and the App: splits server bytes into
//! lines, matches every KE in one pass, redacts, journals, and hands the App
//! only what it shows or counts. Client files are copied (redacted) and parsed
//! here too. This is the hot path of `analyze` and of a log flood.

use crate::app::event::{
    AccessSample, ArtifactKind, ClientArtifact, ClientEntry, HarConflict, OtkUpload, ServerBatch,
    ServerHit, ServerStall, ToDeviceTrace,
};
use crate::bundle::journal::Journal;
use crate::domain::diag::{ke3_event_id, parse_diag};
use crate::domain::har::{self, ConflictMemo, redact_har, scan_har};
use crate::domain::redact::Redactor;
use crate::domain::signatures::{Matcher, Signatures};
use crate::domain::stall::{Stall, StallDetector};
use crate::domain::synapse_log::{
    LogClock, parse_access_fields, parse_record, parse_timestamp_prefix,
};
use crate::domain::{Ke, KeSet};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Display text of a line is cut here (the journal keeps the whole line).
const DISPLAY_MAX: usize = 1000;
/// How far back a continuation line looks for its record's time.
const LOOKBACK_LINES: usize = 2000;
/// A diag report larger than this is kept verbatim but not parsed.
const DIAG_PARSE_MAX: u64 = 64 * 1024 * 1024;
const TO_DEVICE_TRACE: &[u8] = b"Storing to-device messages";
const OTK_UPLOAD: &[u8] = b"Adding one_time_keys ";

pub struct Capture {
    pub journal: Journal,
    sigs: Signatures,
    matcher: Matcher,
    redactor: Redactor,
    clock: LogClock,
    ke3_ids: Vec<String>,
    partial: Vec<u8>,
    lines: u64,
    bytes: u64,
    ke_lines: [u64; 4],
    last_record_at: Option<DateTime<Utc>>,
    stalls: StallDetector,
    trace_finder: memchr::memmem::Finder<'static>,
    upload_finder: memchr::memmem::Finder<'static>,
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
            matcher,
            redactor: Redactor::new(),
            clock,
            ke3_ids,
            partial: Vec::new(),
            lines: 0,
            bytes: 0,
            ke_lines: [0; 4],
            last_record_at: None,
            stalls: StallDetector::new(restart_timeout_ms),
            trace_finder: memchr::memmem::Finder::new(TO_DEVICE_TRACE),
            upload_finder: memchr::memmem::Finder::new(OTK_UPLOAD),
            conflicts: ConflictMemo::default(),
        })
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
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
        self.matcher = Matcher::new(&self.sigs, &self.ke3_ids)?;
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
            batch.hits.push(ServerHit {
                line_no: n,
                at: last_at,
                text: match parse_record(l) {
                    Some(h) => self.record_text(&h),
                    None => display_text(l),
                },
                kes,
                ke_line_no,
                error: false,
                level: parse_record(l).map(|h| h.level.to_string()),
                offending: None,
                request: parse_record(l).map(|h| h.request.to_string()),
            });
        }
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(batch)
    }

    /// What a pane shows of a record: `request logger: message`, redacted;
    /// the journal keeps the whole line.
    fn record_text(&self, h: &crate::domain::synapse_log::RecordHead<'_>) -> String {
        let logger = h.logger.rsplit('.').next().unwrap_or(h.logger);
        let (msg, _) = self.redactor.redact_bytes(h.message);
        format!(
            "{} {logger}: {}",
            h.request,
            compact_message(&display_text(&msg))
        )
    }

    /// A measured remote clock offset (remote minus local) applies to the
    /// server lines that follow.
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.clock.set_offset_ms(offset_ms);
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

    fn process(&mut self, buf: &[u8], batch: &mut ServerBatch) -> io::Result<()> {
        let (red, n) = self.redactor.redact_bytes(buf);
        self.journal.server.write_slice(&red)?;
        self.journal.server.redactions += n as u64;
        batch.redactions += n as u64;
        self.bytes += buf.len() as u64;

        if batch.first_at.is_none() {
            batch.first_at = first_record_time(buf).map(|t| self.clock.to_utc(t));
        }
        let base_line = self.lines;
        let prev_record_at = self.last_record_at;
        let access_before = batch.access.len();

        let mut hits: Vec<(usize, usize, crate::domain::signatures::LineMatch)> = Vec::new();
        self.matcher.scan(buf, |s, e, m| hits.push((s, e, m)));

        // Line numbers: count newlines between consecutive hits.
        let mut counted_to = 0usize;
        let mut line_no = base_line;
        for (s, e, m) in hits {
            line_no += memchr::memchr_iter(b'\n', &buf[counted_to..s]).count() as u64;
            counted_to = s;
            let this_line = line_no + 1;
            let line = &buf[s..e];
            // Long-polls are excluded from latency and match no KE: done.
            if m.kes.is_empty() && is_long_poll_line(line) {
                continue;
            }
            let head = parse_record(line);
            let at = match &head {
                Some(h) => Some(self.clock.to_utc(h.at)),
                None => lookback_time(buf, s)
                    .map(|t| self.clock.to_utc(t))
                    .or(prev_record_at),
            };
            let mut access_text = None;
            if m.access
                && let (Some(h), Some(at)) = (&head, at)
            {
                // Borrowed unless the message is not UTF-8.
                let message = lossy(h.message);
                if let Some(a) = parse_access_fields(&message) {
                    let sample = access_sample(this_line, at, &a);
                    // Only lines a pane shows need their display text.
                    access_text = (!m.kes.is_empty()).then(|| {
                        format!(
                            "{} {} {} {} {} ms",
                            a.requester.unwrap_or("-"),
                            a.method,
                            self.redactor.redact_str(a.path).0,
                            sample.status,
                            sample.processing_ms
                        )
                    });
                    batch.access.push(sample);
                }
            }
            if m.kes.is_empty() {
                continue;
            }
            let (red_line, rn) = self.redactor.redact_bytes(line);
            let mut ke_line_no = [0u64; 4];
            for ke in m.kes.iter() {
                let i = ke.index();
                self.ke_lines[i] += 1;
                ke_line_no[i] = self.ke_lines[i];
                let f = &mut self.journal.ke[i];
                f.write(&red_line)?;
                f.write(b"\n")?;
                f.redactions += rn as u64;
            }
            // Panes show `request logger: message`; the journal keeps the line.
            let text = match &head {
                _ if access_text.is_some() => access_text.unwrap_or_default(),
                Some(h) => self.record_text(h),
                None => display_text(&red_line),
            };
            let offending = if m.kes.contains(Ke::Ke1) {
                self.conflicts.parse(&text)
            } else {
                None
            };
            batch.hits.push(ServerHit {
                line_no: this_line,
                at,
                text,
                kes: m.kes,
                ke_line_no,
                error: m.error,
                level: head.as_ref().map(|h| h.level.to_string()),
                offending,
                request: head.map(|h| h.request.to_string()),
            });
        }
        // Synapse's to-device tracing (`synapse.9533_debug`) names user/device.
        let (mut counted, mut newlines) = (0usize, 0u64);
        for pos in self.trace_finder.find_iter(buf) {
            let s = memchr::memrchr(b'\n', &buf[..pos]).map_or(0, |i| i + 1);
            let e = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
            if s < counted {
                continue; // a second mention on the same line
            }
            newlines += memchr::memchr_iter(b'\n', &buf[counted..s]).count() as u64;
            counted = s;
            let n = base_line + newlines + 1;
            let (red_line, _) = self.redactor.redact_bytes(&buf[s..e]);
            batch.to_device.push(ToDeviceTrace {
                line_no: n,
                at: parse_timestamp_prefix(&buf[s..e]).map(|t| self.clock.to_utc(t)),
                text: display_text(&red_line),
            });
        }
        // Whose keys/upload each request is (a conflict names no user).
        for pos in self.upload_finder.find_iter(buf) {
            let s = memchr::memrchr(b'\n', &buf[..pos]).map_or(0, |i| i + 1);
            let e = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
            if let Some(u) = otk_upload(&buf[s..e]) {
                batch.otk_uploads.push(u);
            }
        }
        // Every record's time, for stalls; this also counts the lines.
        let restarts: Vec<u64> = batch.access[access_before..]
            .iter()
            .filter(|a| a.delayed_restart)
            .map(|a| a.line_no)
            .collect();
        let mut stalls = Vec::new();
        self.lines = base_line + self.stalls.scan(buf, base_line, &restarts, &mut stalls);
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
        let mut art = ClientArtifact {
            file: name.clone(),
            kind,
            arrived_at,
            bytes: 0,
            unparsed: None,
            user_id: None,
            device_id: None,
            sdk_version: None,
            entries: Vec::new(),
            ke3_event_ids: Vec::new(),
            har_conflicts: Vec::new(),
            har_keys_upload: 0,
            redactions: 0,
        };
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
                facts.redactions = n as u64;
                self.journal.adopt(&rel, facts);
                art.redactions = n as u64;
                match scan_har(BufReader::new(File::open(path)?)) {
                    Ok(sum) => {
                        art.har_keys_upload = sum.keys_upload.len();
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
                let (red, n) = if complete {
                    self.redactor.redact_bytes(&raw)
                } else {
                    (std::borrow::Cow::Borrowed(&raw[..]), 0)
                };
                if complete {
                    self.journal.write_whole(&rel, &red, n as u64)?;
                } else {
                    // Too big to parse: copy streaming, redacted per chunk.
                    self.copy_redacted(path, &rel)?;
                }
                art.redactions = n as u64;
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
    fn copy_redacted(&mut self, path: &Path, rel: &str) -> io::Result<()> {
        let out_path = self.journal.dir.join(rel);
        let mut w = self
            .redactor
            .writer(BufWriter::new(File::create(&out_path)?));
        io::copy(&mut File::open(path)?, &mut w)?;
        let (_, n) = w.finish()?;
        let mut facts = crate::bundle::journal::hash_file(&out_path)?;
        facts.redactions = n as u64;
        self.journal.adopt(rel, facts);
        Ok(())
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

/// `… - POST-5 - Adding one_time_keys dict_keys([…]) for device 'D' for
/// user 'U' at N` → request, user, device.
fn otk_upload(line: &[u8]) -> Option<OtkUpload> {
    let head = parse_record(line)?;
    let msg = std::str::from_utf8(head.message).ok()?;
    let rest = &msg[msg.rfind(" for device '")? + " for device '".len()..];
    let (device, rest) = rest.split_once('\'')?;
    let rest = rest.strip_prefix(" for user '")?;
    let (user, _) = rest.split_once('\'')?;
    Some(OtkUpload {
        request: head.request.to_string(),
        user: user.to_string(),
        device: device.to_string(),
    })
}

/// Synapse prefixes request errors with the request's repr
/// (`<XForwardedForRequest at 0x… method='POST' uri='/…' clientproto=… site=…>`):
/// shown as `POST /…` so the error itself fits in a pane.
fn compact_message(msg: &str) -> String {
    if !msg.starts_with('<') {
        return msg.to_string();
    }
    let Some(end) = msg.find("> ") else {
        return msg.to_string();
    };
    let repr = &msg[..end];
    let field = |name: &str| {
        let key = format!("{name}='");
        let i = repr.find(&key)? + key.len();
        let j = repr[i..].find('\'')?;
        Some(&repr[i..i + j])
    };
    match (field("method"), field("uri")) {
        (Some(m), Some(u)) => format!("{m} {u} {}", &msg[end + 2..]),
        _ => msg.to_string(),
    }
}

fn display_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let cut = &line[..line.len().min(DISPLAY_MAX * 4)];
    let mut s = lossy(cut).into_owned();
    if s.chars().count() > DISPLAY_MAX {
        s = s.chars().take(DISPLAY_MAX).collect();
        s.push('…');
    }
    s
}

/// `String::from_utf8_lossy`, with a faster check for the usual valid text.
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
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

/// The time of the record a continuation line at `start` belongs to.
fn lookback_time(buf: &[u8], start: usize) -> Option<chrono::NaiveDateTime> {
    buf[..start]
        .rsplit(|b| *b == b'\n')
        .take(LOOKBACK_LINES)
        .find_map(parse_timestamp_prefix)
}

/// A "Processed request" line for `/sync`-like long-polls, without parsing it.
fn is_long_poll_line(line: &[u8]) -> bool {
    static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 3]> =
        std::sync::LazyLock::new(|| {
            [
                memchr::memmem::Finder::new(b"/sync "),
                memchr::memmem::Finder::new(b"/sync?"),
                memchr::memmem::Finder::new(b"/events?"),
            ]
        });
    FINDERS.iter().any(|f| f.find(line).is_some())
}

/// Substring searchers for request paths, built once: a path is looked
/// at for nearly every access line.
struct PathNeedles {
    sliding_sync: memchr::memmem::Finder<'static>,
    notifications: memchr::memmem::Finder<'static>,
    send_to_device: memchr::memmem::Finder<'static>,
    delayed_events: memchr::memmem::Finder<'static>,
}

static PATH_NEEDLES: std::sync::LazyLock<PathNeedles> = std::sync::LazyLock::new(|| {
    let f = memchr::memmem::Finder::new;
    PathNeedles {
        sliding_sync: f("/org.matrix.simplified_msc3575/sync"),
        notifications: f("/notifications"),
        send_to_device: f("/sendToDevice/"),
        delayed_events: f("/delayed_events/"),
    }
});

fn without_query(path: &str) -> &str {
    match memchr::memchr(b'?', path.as_bytes()) {
        Some(i) => &path[..i],
        None => path,
    }
}

fn is_long_poll(path: &str) -> bool {
    let n = &*PATH_NEEDLES;
    let p = without_query(path).as_bytes();
    // (The query is cut off first, so `/sync?…` is `/sync` here.)
    p.ends_with(b"/sync")
        || p.ends_with(b"/events")
        || n.sliding_sync.find(p).is_some()
        || n.notifications.find(p).is_some()
}

fn is_delayed_restart(method: &str, path: &str) -> bool {
    let p = without_query(path);
    let Some(i) = PATH_NEEDLES.delayed_events.find(p.as_bytes()) else {
        return false;
    };
    let rest = &p[i + "/delayed_events/".len()..];
    method == "POST" && (rest.ends_with("/restart") || !rest.contains('/'))
}

/// What the App needs of an access line.
fn access_sample(
    line_no: u64,
    at: DateTime<Utc>,
    a: &crate::domain::synapse_log::AccessFields<'_>,
) -> AccessSample {
    let ms = (a.processing_s * 1000.0).round();
    let send_to_device = PATH_NEEDLES
        .send_to_device
        .find(a.path.as_bytes())
        .is_some();
    AccessSample {
        line_no,
        at,
        processing_ms: if ms.is_finite() && ms > 0.0 {
            ms.min(u32::MAX as f64) as u32
        } else {
            0
        },
        status: a.status,
        long_poll: is_long_poll(a.path),
        delayed_restart: is_delayed_restart(a.method, a.path),
        send_to_device,
        requester: if send_to_device {
            a.requester.map(str::to_string)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otk_upload_names_request_user_and_device_also_when_nested() {
        let line = b"2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0']) for device 'RWDSUMBAID' for user '@a:hs' at 1768822491032";
        assert_eq!(
            otk_upload(line),
            Some(OtkUpload {
                request: "POST-5688811".into(),
                user: "@a:hs".into(),
                device: "RWDSUMBAID".into(),
            })
        );
        let nested = b"2026-01-19 12:34:51,034 - twisted - 273 - INFO - POST-7 - 2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys - 955 - INFO - POST-7 - Adding one_time_keys dict_keys([]) for device 'D2' for user '@b:hs' at 1";
        let u = otk_upload(nested);
        assert_eq!(
            u.map(|u| (u.request, u.device)),
            Some(("POST-7".to_string(), "D2".to_string()))
        );
        assert_eq!(otk_upload(b"Adding one_time_keys for device 'x'"), None);
    }

    fn capture(dir: &Path) -> Capture {
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
