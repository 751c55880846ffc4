//! The read-only part of ingesting server lines: finding a buffer's
//! interesting lines and reading from them what the App needs. Nothing here
//! changes the capture's state, so scans run on other threads: the halves
//! of a large chunk given to `server_chunk`, or whole buffers on
//! `file_scan`'s scanner threads. The capture then numbers and journals the
//! findings in order.

use crate::app::event::{AccessSample, push_span as stash};
use crate::domain::redact::{Redactor, Tally};
use crate::domain::signatures::{LineMatch, Matcher};
use crate::domain::stall::{RecordClock, for_each_line};
use crate::domain::synapse_log::{
    LogClock, RecordHead, parse_access_fields, parse_record, parse_timestamp_prefix,
};
use crate::domain::{Ke, KeSet};
use chrono::{DateTime, Utc};
use std::io;
use std::ops::Range;
use std::sync::Arc;

use super::LOOKBACK_LINES;
use super::access::{access_sample, is_long_poll_line};
use super::display::{display_cow, lossy, push_record_text};

/// Buffers smaller than this are scanned on the calling thread alone.
const SPLIT_MIN: usize = 512 * 1024;

/// What a scan reads with: shared, read-only, owned so that a scan can
/// run on another thread while the capture commits an earlier buffer.
#[derive(Clone)]
pub struct ScanContext {
    pub(super) matcher: Arc<Matcher>,
    pub(super) redactor: Arc<Redactor>,
    pub(super) clock: LogClock,
    /// Which version of the capture's matcher this is (KE-3 ids change it).
    pub(super) generation: u64,
    /// Whether every hit carries its pane text. Without a view (`analyze`)
    /// only KE-1's is read, for the key ids a conflict names.
    pub(super) pane_texts: bool,
}

/// A buffer of complete lines, scanned: what [`ScanContext::scan`] found,
/// for the capture to number and journal in order.
pub struct ScannedBuffer {
    pub(super) parts: Vec<Scanned>,
    pub(super) generation: u64,
}

impl ScanContext {
    /// Scans `buf` (complete lines). A large buffer is scanned in two
    /// halves on two threads (scanning only reads).
    pub fn scan(&self, buf: &[u8]) -> io::Result<ScannedBuffer> {
        let scanner = self.scanner();
        let parts = match split_point(buf) {
            Some(mid) => std::thread::scope(|s| {
                let second = std::thread::Builder::new()
                    .name("capture-scan".into())
                    .spawn_scoped(s, || scanner.scan(buf, mid..buf.len()))?;
                let first = scanner.scan(buf, 0..mid);
                second
                    .join()
                    .map(|second| vec![first, second])
                    .map_err(|_| io::Error::other("a scanner thread panicked"))
            })?,
            None => vec![scanner.scan(buf, 0..buf.len())],
        };
        Ok(ScannedBuffer {
            parts,
            generation: self.generation,
        })
    }

    fn scanner(&self) -> Scanner<'_, TextHeads> {
        self.scanner_with(&TextHeads)
    }

    fn scanner_with<'a, H: Heads>(&'a self, heads: &'a H) -> Scanner<'a, H> {
        Scanner {
            matcher: &self.matcher,
            redactor: &self.redactor,
            clock: &self.clock,
            heads,
            pane_texts: self.pane_texts,
        }
    }

    /// Scans the body lines of a decoded buffer (one part, on this thread),
    /// reading heads and times from `heads` instead of the lines.
    pub(super) fn scan_decoded<H: Heads>(&self, buf: &[u8], heads: &H) -> ScannedBuffer {
        let mut part = Scanned::default();
        self.scanner_with(heads)
            .scan_into(buf, 0..buf.len(), &mut part);
        ScannedBuffer {
            parts: vec![part],
            generation: self.generation,
        }
    }

    /// Scans `buf` (complete lines) on this thread alone, into `reuse` (a
    /// committed scan given back) when there is one.
    pub fn scan_whole(&self, buf: &[u8], reuse: Option<ScannedBuffer>) -> ScannedBuffer {
        let scanner = self.scanner();
        let mut parts = reuse.map(|r| r.parts).unwrap_or_default();
        parts.truncate(1);
        if parts.is_empty() {
            parts.push(Scanned::default());
        }
        scanner.scan_into(buf, 0..buf.len(), &mut parts[0]);
        ScannedBuffer {
            parts,
            generation: self.generation,
        }
    }
}

struct Scanner<'a, H> {
    matcher: &'a Matcher,
    redactor: &'a Redactor,
    clock: &'a LogClock,
    heads: &'a H,
    pane_texts: bool,
}

/// Where a scan reads a line's record head and times: from the line
/// itself (Synapse's text format), or from what a decoder found
/// ([`super::decoded`]).
pub(super) trait Heads: Sync {
    /// The head of the record on line `line_no` (1-based in the scanned
    /// part), which is `line`; `None` for a continuation line.
    fn head<'a>(&'a self, line_no: u64, line: &'a [u8]) -> Option<RecordHead<'a>>;
    /// A record line's own time (on the scan's clock).
    fn stamp(&self, line_no: u64, line: &[u8]) -> Option<chrono::NaiveDateTime>;
    /// The time of the record a continuation line at `start` belongs to.
    fn lookback(&self, buf: &[u8], start: usize, line_no: u64) -> Option<chrono::NaiveDateTime>;
    /// Each record's time in ms on the scan's clock, `(line_no, ms)`.
    fn record_millis(&self, text: &[u8], starts: &mut Vec<usize>, records: &mut Vec<(u64, i64)>);
}

/// Synapse's text format: everything is on the line.
pub(super) struct TextHeads;

impl Heads for TextHeads {
    #[inline]
    fn head<'a>(&'a self, _line_no: u64, line: &'a [u8]) -> Option<RecordHead<'a>> {
        parse_record(line)
    }

    #[inline]
    fn stamp(&self, _line_no: u64, line: &[u8]) -> Option<chrono::NaiveDateTime> {
        parse_timestamp_prefix(line)
    }

    #[inline]
    fn lookback(&self, buf: &[u8], start: usize, _line_no: u64) -> Option<chrono::NaiveDateTime> {
        lookback_time(buf, start)
    }

    #[inline]
    fn record_millis(&self, text: &[u8], starts: &mut Vec<usize>, records: &mut Vec<(u64, i64)>) {
        let mut clock = RecordClock::default();
        starts.reserve(text.len() / 128);
        records.reserve(text.len() / 160);
        for_each_line(text, |start, line| {
            starts.push(start);
            if let Some(ms) = clock.millis(line) {
                records.push((starts.len() as u64, ms));
            }
        });
    }
}

/// A KE line found by a scan.
pub(super) struct FoundHit {
    /// 1-based line number within the scanned part.
    pub line_no: u64,
    /// The line in the buffer, without its newline.
    pub line: Range<usize>,
    /// The line redacted, and what each rule replaced in it, when it held
    /// a secret (boxed: most lines hold none, and hits are many).
    pub redacted: Option<Box<(Vec<u8>, Tally)>>,
    pub at: Option<DateTime<Utc>>,
    /// Display text: where it is in [`Scanned::texts`].
    pub text: Range<usize>,
    pub kes: KeSet,
    pub error: bool,
    /// In [`Scanned::texts`].
    pub request: Option<Range<usize>>,
}

/// A to-device trace line found by a scan.
pub(super) struct FoundTrace {
    /// 1-based line number within the scanned part.
    pub line_no: u64,
    pub at: Option<DateTime<Utc>>,
    /// In [`Scanned::texts`].
    pub text: Range<usize>,
}

/// Whose keys/upload a request is, as found by a scan (in
/// [`Scanned::texts`]).
pub(super) struct FoundUpload {
    pub request: Range<usize>,
    pub user: Range<usize>,
    pub device: Range<usize>,
}

/// What a scan found in a part of a buffer; line numbers are 1-based
/// within the part.
#[derive(Default)]
pub(super) struct Scanned {
    pub hits: Vec<FoundHit>,
    pub access: Vec<AccessSample>,
    pub to_device: Vec<FoundTrace>,
    pub otk_uploads: Vec<FoundUpload>,
    /// Where the part is in the buffer.
    pub range: Range<usize>,
    /// The part redacted, when it held a secret.
    pub redacted: Option<Vec<u8>>,
    pub redactions: Tally,
    /// The texts the findings point into (display texts, request ids,
    /// traces, upload owners), one after another.
    pub texts: String,
    /// Lines in the part.
    pub lines: u64,
    /// Every record's time on the log's clock, for stalls: `(line_no, ms)`
    /// with 1-based line numbers within the part.
    pub records: Vec<(u64, i64)>,
    /// Where each line of the part starts (the scan's own use).
    starts: Vec<usize>,
}

impl Scanned {
    /// Empties it for another scan, keeping what it has allocated: a
    /// scanned part goes back to its scanner thread once committed, so
    /// that its memory is neither allocated again nor freed on another
    /// thread.
    fn clear(&mut self) {
        self.hits.clear();
        self.access.clear();
        self.to_device.clear();
        self.otk_uploads.clear();
        self.redacted = None;
        self.redactions = Tally::default();
        self.texts.clear();
        self.lines = 0;
        self.records.clear();
        self.starts.clear();
    }

    /// Reads the part's lines in one walk: where each starts, and the time
    /// of each record.
    fn read_lines<H: Heads>(&mut self, text: &[u8], heads: &H) {
        heads.record_millis(text, &mut self.starts, &mut self.records);
        self.lines = self.starts.len() as u64;
    }
}

/// Where to cut `buf` (complete lines) into two halves worth a thread
/// each: just after the newline nearest past the middle.
fn split_point(buf: &[u8]) -> Option<usize> {
    if buf.len() < SPLIT_MIN {
        return None;
    }
    let mid = buf.len() / 2;
    let cut = mid + memchr::memchr(b'\n', &buf[mid..])? + 1;
    (cut < buf.len()).then_some(cut)
}

impl<H: Heads> Scanner<'_, H> {
    /// Scans the lines in `buf[part]` (`part` starts at a line's start;
    /// the rest of `buf` is only looked back into for a time).
    fn scan(&self, buf: &[u8], part: Range<usize>) -> Scanned {
        let mut out = Scanned::default();
        self.scan_into(buf, part, &mut out);
        out
    }

    /// [`Scanner::scan`] into a reused [`Scanned`].
    fn scan_into(&self, buf: &[u8], part: Range<usize>, out: &mut Scanned) {
        out.clear();
        let base = part.start;
        let text = &buf[part.clone()];
        // One walk over the lines, then one literal search finds the KEs'
        // lines and those redaction must look at.
        out.range = part;
        out.read_lines(text, self.heads);
        let mut found: Vec<(u64, usize, usize, LineMatch)> = Vec::new();
        self.matcher.scan_lines(text, &out.starts, |i, s, e, m| {
            found.push((i as u64 + 1, s, e, m))
        });
        let literal_lines = found
            .iter()
            .filter(|(_, _, _, m)| m.secret_literal)
            .map(|&(_, s, e, _)| (s, e))
            .collect();
        let (redacted, redactions, suspects) =
            match self.redactor.redact_bytes_noting_lines(text, literal_lines) {
                (std::borrow::Cow::Owned(v), n, l) => (Some(v), n, l),
                (std::borrow::Cow::Borrowed(_), n, l) => (None, n, l),
            };
        // Hits come in order: `suspects[next_suspect..]` are the lines at or
        // after the current one that may hold a secret. Every other line is
        // clean, and so is all of its text (no redaction to run).
        let mut next_suspect = 0;
        out.redacted = redacted;
        out.redactions = redactions;

        for (line_no, s, e, m) in found {
            if m.kes.is_empty() && !m.access && !m.to_device_trace && !m.otk_upload {
                continue; // found for redaction only
            }
            while suspects.get(next_suspect).is_some_and(|l| l.end < s) {
                next_suspect += 1;
            }
            let f = Found {
                line: &text[s..e],
                range: base + s..base + e,
                line_no,
                m,
                redactor: suspects
                    .get(next_suspect)
                    .is_some_and(|l| l.start <= e)
                    .then_some(self.redactor),
            };
            self.traces(&f, out);
            let long_poll = f.m.access.then(|| is_long_poll_line(f.line)).flatten();
            // Long-polls are excluded from latency and match no KE: done.
            if f.m.kes.is_empty() && long_poll == Some(true) {
                continue;
            }
            let head = self.heads.head(f.line_no, f.line);
            let at = match &head {
                Some(h) => Some(self.clock.to_utc(h.at)),
                // A continuation line with no record before it in the
                // buffer: the capture gives it the previous buffer's time.
                None => self
                    .heads
                    .lookback(buf, f.range.start, f.line_no)
                    .map(|t| self.clock.to_utc(t)),
            };
            // Display text goes into the part's texts: nothing is allocated
            // per line here, and nothing made here is freed on another thread.
            let text_start = out.texts.len();
            let access_text = f.m.access && self.access(&f, &head, at, long_poll, out);
            if f.m.kes.is_empty() {
                continue;
            }
            self.hit(f, head, at, text_start, access_text, out);
        }
    }

    /// Synapse's to-device tracing (`synapse.9533_debug`) names
    /// user/device; "Adding one_time_keys" says whose keys/upload each
    /// request is (a conflict names no user).
    fn traces(&self, f: &Found<'_>, out: &mut Scanned) {
        if f.m.to_device_trace {
            let red = match f.redactor {
                Some(r) => r.redact_bytes(f.line).0,
                None => std::borrow::Cow::Borrowed(f.line),
            };
            out.to_device.push(FoundTrace {
                line_no: f.line_no,
                at: self
                    .heads
                    .stamp(f.line_no, f.line)
                    .map(|t| self.clock.to_utc(t)),
                text: stash(&mut out.texts, &display_cow(&red)),
            });
        }
        if f.m.otk_upload
            && let Some((request, user, device)) = self
                .heads
                .head(f.line_no, f.line)
                .and_then(|h| otk_upload_fields(&h))
        {
            out.otk_uploads.push(FoundUpload {
                request: stash(&mut out.texts, request),
                user: stash(&mut out.texts, user),
                device: stash(&mut out.texts, device),
            });
        }
    }

    /// An access line's latency sample; for a line a pane shows, its
    /// display text too (then `true`).
    fn access(
        &self,
        f: &Found<'_>,
        head: &Option<RecordHead<'_>>,
        at: Option<DateTime<Utc>>,
        long_poll: Option<bool>,
        out: &mut Scanned,
    ) -> bool {
        let (Some(h), Some(at)) = (head, at) else {
            return false;
        };
        // Borrowed unless the message is not UTF-8.
        let message = lossy(h.message);
        let Some(a) = parse_access_fields(&message) else {
            return false;
        };
        let sample = access_sample(f.line_no, at, &a, long_poll);
        // Only lines a pane shows need their display text.
        let shown = !f.m.kes.is_empty() && self.wants_text(f.m.kes);
        if shown {
            // `requester method path status ms ms`, without the formatting
            // machinery: this runs for every access line a pane shows.
            let t = &mut out.texts;
            t.push_str(a.requester.unwrap_or("-"));
            t.push(' ');
            t.push_str(a.method);
            t.push(' ');
            match f.redactor {
                Some(r) => t.push_str(&r.redact_str(a.path).0),
                None => t.push_str(a.path),
            }
            t.push(' ');
            push_decimal(t, u32::from(sample.status));
            t.push(' ');
            push_decimal(t, sample.processing_ms);
            t.push_str(" ms");
        }
        out.access.push(sample);
        shown
    }

    /// Whether a hit of `kes` gets its pane text.
    fn wants_text(&self, kes: KeSet) -> bool {
        self.pane_texts || kes.contains(Ke::Ke1)
    }

    /// A KE line: redacted, with its display text (from `text_start` in
    /// the part's texts; already written for an access line).
    fn hit(
        &self,
        f: Found<'_>,
        head: Option<RecordHead<'_>>,
        at: Option<DateTime<Utc>>,
        text_start: usize,
        access_text: bool,
        out: &mut Scanned,
    ) {
        let (red_line, redactions) = match f.redactor {
            Some(r) => r.redact_bytes(f.line),
            None => (std::borrow::Cow::Borrowed(f.line), Tally::default()),
        };
        // Panes show `request logger: message`; the journal keeps the line.
        match &head {
            _ if access_text || !self.wants_text(f.m.kes) => {}
            Some(h) => push_record_text(f.redactor, h, &mut out.texts),
            None => out.texts.push_str(&display_cow(&red_line)),
        }
        let text = text_start..out.texts.len();
        out.hits.push(FoundHit {
            line_no: f.line_no,
            line: f.range,
            redacted: match red_line {
                std::borrow::Cow::Owned(v) => Some(Box::new((v, redactions))),
                std::borrow::Cow::Borrowed(_) => None,
            },
            at,
            text,
            kes: f.m.kes,
            error: f.m.error,
            request: head
                .filter(|_| f.m.kes.contains(Ke::Ke1))
                .map(|h| stash(&mut out.texts, h.request)),
        });
    }
}

/// `n` in decimal, as `{}` writes it (without `fmt`'s machinery).
fn push_decimal(out: &mut String, n: u32) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// An interesting line, as [`Scanner::scan_into`] hands it on.
struct Found<'a> {
    /// The line, without its newline.
    line: &'a [u8],
    /// Where it is in the buffer.
    range: Range<usize>,
    /// 1-based within the scanned part.
    line_no: u64,
    m: LineMatch,
    /// Set when the line may hold a secret.
    redactor: Option<&'a Redactor>,
}

/// `… - POST-5 - Adding one_time_keys dict_keys([…]) for device 'D' for
/// user 'U' at N` → request, user, device.
fn otk_upload_fields<'a>(head: &RecordHead<'a>) -> Option<(&'a str, &'a str, &'a str)> {
    let msg = std::str::from_utf8(head.message).ok()?;
    let rest = &msg[msg.rfind(" for device '")? + " for device '".len()..];
    let (device, rest) = rest.split_once('\'')?;
    let rest = rest.strip_prefix(" for user '")?;
    let (user, _) = rest.split_once('\'')?;
    Some((head.request, user, device))
}

/// The time of the record a continuation line at `start` belongs to.
fn lookback_time(buf: &[u8], start: usize) -> Option<chrono::NaiveDateTime> {
    buf[..start]
        .rsplit(|b| *b == b'\n')
        .take(LOOKBACK_LINES)
        .find_map(parse_timestamp_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context on `sigs` (no capture needed).
    fn context(sigs: &crate::domain::signatures::Signatures) -> ScanContext {
        ScanContext {
            matcher: Arc::new(Matcher::new(sigs, &[]).unwrap_or_else(|e| panic!("{e}"))),
            redactor: Arc::new(Redactor::new()),
            clock: LogClock::utc(),
            generation: 0,
            pane_texts: true,
        }
    }

    #[test]
    fn without_pane_texts_hits_are_the_same_and_only_ke1_keeps_its_text() {
        let t = "2026-06-30 14:02:11,123";
        let text = format!(
            "{t} - synapse.handlers.e2e_keys - 1 - INFO - POST-1 - One time key signed_curve25519:AAAAHQ already exists. Old key: x new key: y\n\
             {t} - synapse.access.http.8008 - 521 - INFO - POST-1 - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 0.012sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 400 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\" \"-\" [0 dbevts]\n\
             {t} - synapse.access.http.8008 - 521 - INFO - PUT-2 - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 0.012sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 200 \"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/t1 HTTP/1.1\" \"-\" [0 dbevts]\n\
             {t} - synapse.x - 1 - INFO - GET-3 - delayed_event access_token=syt_secret\n\
             to_device continuation\n"
        );
        let sigs = crate::domain::signatures::Signatures::embedded();
        let with = context(&sigs)
            .scan(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut ctx = context(&sigs);
        ctx.pane_texts = false;
        let without = ctx.scan(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (&with.parts[0], &without.parts[0]);
        assert_eq!(a.hits.len(), 5);
        assert_eq!(b.hits.len(), a.hits.len());
        assert_eq!(b.access, a.access);
        let mut ke1 = 0;
        for (x, y) in a.hits.iter().zip(&b.hits) {
            let same = |h: &FoundHit, p: &Scanned| {
                let request = h.request.clone().map(|r| p.texts[r].to_string());
                (h.line_no, h.line.clone(), h.at, h.kes, h.error, request)
            };
            assert_eq!(same(y, b), same(x, a));
            assert_eq!(y.redacted.is_some(), x.redacted.is_some());
            assert!(!a.texts[x.text.clone()].is_empty());
            if x.kes.contains(Ke::Ke1) {
                ke1 += 1;
                assert_eq!(b.texts[y.text.clone()], a.texts[x.text.clone()]);
            } else {
                assert!(y.text.is_empty(), "{}", &b.texts[y.text.clone()]);
            }
        }
        assert_eq!(ke1, 2);
    }

    /// Not a test: the scanner's own speed, one thread, on a real-shaped
    /// log (`CALLCAP_SCAN_LOG=PATH cargo test --release --lib
    /// capture::scan::tests::scan_throughput -- --ignored --nocapture`), in
    /// `analyze`'s buffers and without pane texts, as `analyze` scans.
    /// Prints the fastest and the median of seven rounds.
    #[test]
    #[ignore]
    fn scan_throughput() {
        // Without a log: access lines, a conflict and a plain record.
        let buf = crate::domain::bench_log_or(|| {
            let t = "2026-06-30 14:02:11,123";
            let lines = [
                format!(
                    "{t} - synapse.handlers.e2e_keys - 1 - INFO - POST-1 - One time key signed_curve25519:AAAAHQ already exists. Old key: x new key: y"
                ),
                format!(
                    "{t} - synapse.access.http.8008 - 521 - INFO - POST-1 - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 0.012sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 400 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\" \"-\" [0 dbevts]"
                ),
                format!(
                    "{t} - synapse.access.http.8008 - 521 - INFO - GET-2 - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 30.012sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 200 \"GET /_matrix/client/v3/sync HTTP/1.1\" \"-\" [0 dbevts]"
                ),
                format!("{t} - synapse.x - 1 - INFO - GET-3 - plain"),
            ];
            lines
                .iter()
                .cycle()
                .take(400_000)
                .flat_map(|l| [l.as_bytes(), b"\n"])
                .flatten()
                .copied()
                .collect()
        });
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let end = (at + 1024 * 1024).min(buf.len());
            let end = match memchr::memrchr(b'\n', &buf[at..end]) {
                Some(i) if end < buf.len() => at + i + 1,
                _ => end,
            };
            chunks.push(at..end);
            at = end;
        }
        let sigs = crate::domain::signatures::Signatures::embedded();
        let mut ctx = context(&sigs);
        ctx.pane_texts = false;
        let mut times = Vec::new();
        let mut reuse = None;
        let mut found = 0;
        for _ in 0..7 {
            let t = std::time::Instant::now();
            found = 0;
            for c in &chunks {
                let scanned = ctx.scan_whole(&buf[c.clone()], reuse.take());
                found += scanned.parts[0].hits.len() + scanned.parts[0].access.len();
                reuse = Some(scanned);
            }
            times.push(t.elapsed().as_secs_f64());
        }
        assert!(found > 0, "the scan found nothing");
        times.sort_by(f64::total_cmp);
        println!(
            "scan: {:.3} s fastest, {:.3} s median, {} MB, {found} hits and access lines",
            times[0],
            times[3],
            buf.len() / 1_000_000
        );
    }

    #[test]
    fn the_scan_redacts_exactly_what_the_redactor_does_on_its_own() {
        let key = "EsTc LW2K PGiF wKEA 3As5 aX4G gAXn q5Hb bzMF CFx7 9KXU Kd5N";
        let t = "2026-06-30 14:02:11,123";
        let text = format!(
            "{t} - synapse.x - 1 - INFO - GET-1 - plain line\n\
             {t} - synapse.x - 1 - INFO - GET-2 - delayed_event access_token=syt_abc_DEF\n\
             {t} - synapse.x - 1 - INFO - GET-3 - nothing but a token=x and Bearer abc.def\n\
             {{\"password\": \"hunter2\", \"to_device\": 1}}\n\
             recovery {key} in to_device text\n\
             recovery {key} alone\n\
             client_secret=s3cr3t&refresh_token=syr_zzz\n\
             Bearer\n\
             last line syt_tail"
        );
        let want = Redactor::new().redact_bytes(text.as_bytes());
        assert!(want.1.total() >= 7, "{want:?}");
        // The embedded signatures (literal search), and a file with a
        // pattern without literals (the combined-regex search).
        let regex_sigs = crate::domain::signatures::Signatures::from_toml(
            "[[ke]]\nid = \"KE-1\"\ntitle = \"x\"\nserver = '[0-9]+x'\n",
            std::path::Path::new("test.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for sigs in [
            crate::domain::signatures::Signatures::embedded(),
            regex_sigs,
        ] {
            let scanned = context(&sigs).scan_whole(text.as_bytes(), None);
            let part = &scanned.parts[0];
            let got = part.redacted.as_deref().unwrap_or(text.as_bytes());
            assert_eq!((got, &part.redactions), (&*want.0, &want.1));
        }
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [0, 7, 10, 99, 200, 404, 65_535, 1_000_000, u32::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn otk_upload_names_request_user_and_device_also_when_nested() {
        let line = b"2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0']) for device 'RWDSUMBAID' for user '@a:hs' at 1768822491032";
        let fields = |l: &'static [u8]| parse_record(l).and_then(|h| otk_upload_fields(&h));
        assert_eq!(fields(line), Some(("POST-5688811", "@a:hs", "RWDSUMBAID")));
        let nested = b"2026-01-19 12:34:51,034 - twisted - 273 - INFO - POST-7 - 2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys - 955 - INFO - POST-7 - Adding one_time_keys dict_keys([]) for device 'D2' for user '@b:hs' at 1";
        assert_eq!(fields(nested), Some(("POST-7", "@b:hs", "D2")));
        assert_eq!(fields(b"Adding one_time_keys for device 'x'"), None);
    }
}
