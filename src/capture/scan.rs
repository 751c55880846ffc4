//! The read-only part of ingesting server lines: finding a buffer's
//! interesting lines and reading from them what the App needs. Nothing here
//! changes the capture's state, so scans run on other threads: the halves
//! of a large chunk given to `server_chunk`, or whole buffers on
//! `file_scan`'s scanner threads. The capture then numbers and journals the
//! findings in order.

use crate::app::event::{AccessSample, push_span as stash};
use crate::domain::redact::{Redactor, Tally};
use crate::domain::signatures::Matcher;
use crate::domain::stall::{RecordClock, for_each_line};
use crate::domain::synapse_log::{
    AccessFields, LogClock, RecordHead, parse_access_fields, parse_record, parse_timestamp_prefix,
};
use crate::domain::{Ke, KeSet};
use chrono::{DateTime, Utc};
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::sync::LazyLock;

use super::LOOKBACK_LINES;

/// Display text of a line is cut here (the journal keeps the whole line).
const DISPLAY_MAX: usize = 1000;
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

    fn scanner(&self) -> Scanner<'_> {
        Scanner {
            matcher: &self.matcher,
            redactor: &self.redactor,
            clock: &self.clock,
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

struct Scanner<'a> {
    matcher: &'a Matcher,
    redactor: &'a Redactor,
    clock: &'a LogClock,
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
    fn read_lines(&mut self, text: &[u8]) {
        let mut clock = RecordClock::default();
        let (starts, records) = (&mut self.starts, &mut self.records);
        starts.reserve(text.len() / 128);
        records.reserve(text.len() / 160);
        for_each_line(text, |start, line| {
            starts.push(start);
            if let Some(ms) = clock.millis(line) {
                records.push((starts.len() as u64, ms));
            }
        });
        self.lines = starts.len() as u64;
    }

    /// The 1-based number of the line holding byte `pos`.
    fn line_of(&self, pos: usize) -> u64 {
        self.starts.partition_point(|&s| s <= pos) as u64
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

impl Scanner<'_> {
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
        // One literal search finds the KEs' lines and those redaction
        // must look at.
        let mut found: Vec<(usize, usize, crate::domain::signatures::LineMatch)> = Vec::new();
        self.matcher.scan(text, |s, e, m| found.push((s, e, m)));
        let literal_lines = found
            .iter()
            .filter(|(_, _, m)| m.secret_literal)
            .map(|&(s, e, _)| (s, e))
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
        out.range = part;
        out.redacted = redacted;
        out.redactions = redactions;
        out.read_lines(text);

        for (s, e, m) in found {
            if m.kes.is_empty() && !m.access && !m.to_device_trace && !m.otk_upload {
                continue; // found for redaction only
            }
            let this_line = out.line_of(s);
            let line = &text[s..e];
            while suspects.get(next_suspect).is_some_and(|l| l.end < s) {
                next_suspect += 1;
            }
            let redactor = suspects
                .get(next_suspect)
                .is_some_and(|l| l.start <= e)
                .then_some(self.redactor);
            // Synapse's to-device tracing (`synapse.9533_debug`) names
            // user/device; "Adding one_time_keys" says whose keys/upload
            // each request is (a conflict names no user).
            if m.to_device_trace {
                let red = match redactor {
                    Some(r) => r.redact_bytes(line).0,
                    None => std::borrow::Cow::Borrowed(line),
                };
                out.to_device.push(FoundTrace {
                    line_no: this_line,
                    at: parse_timestamp_prefix(line).map(|t| self.clock.to_utc(t)),
                    text: stash(&mut out.texts, &display_cow(&red)),
                });
            }
            if m.otk_upload
                && let Some((request, user, device)) = otk_upload_fields(line)
            {
                out.otk_uploads.push(FoundUpload {
                    request: stash(&mut out.texts, request),
                    user: stash(&mut out.texts, user),
                    device: stash(&mut out.texts, device),
                });
            }
            // Long-polls are excluded from latency and match no KE: done.
            if m.kes.is_empty() && is_long_poll_line(line) {
                continue;
            }
            let head = parse_record(line);
            let at = match &head {
                Some(h) => Some(self.clock.to_utc(h.at)),
                // A continuation line with no record before it in the
                // buffer: the capture gives it the previous buffer's time.
                None => lookback_time(buf, base + s).map(|t| self.clock.to_utc(t)),
            };
            // Display text goes into the part's texts: nothing is allocated
            // per line here, and nothing made here is freed on another thread.
            let text_start = out.texts.len();
            let mut access_text = false;
            if m.access
                && let (Some(h), Some(at)) = (&head, at)
            {
                // Borrowed unless the message is not UTF-8.
                let message = lossy(h.message);
                if let Some(a) = parse_access_fields(&message) {
                    let sample = access_sample(this_line, at, &a);
                    // Only lines a pane shows need their display text.
                    if !m.kes.is_empty() {
                        use std::fmt::Write;
                        let _ = write!(
                            out.texts,
                            "{} {} {} {} {} ms",
                            a.requester.unwrap_or("-"),
                            a.method,
                            match redactor {
                                Some(r) => r.redact_str(a.path).0,
                                None => a.path.into(),
                            },
                            sample.status,
                            sample.processing_ms
                        );
                        access_text = true;
                    }
                    out.access.push(sample);
                }
            }
            if m.kes.is_empty() {
                continue;
            }
            let (red_line, redactions) = match redactor {
                Some(r) => r.redact_bytes(line),
                None => (std::borrow::Cow::Borrowed(line), Tally::default()),
            };
            // Panes show `request logger: message`; the journal keeps the line.
            match &head {
                _ if access_text => {}
                Some(h) => push_record_text(redactor, h, &mut out.texts),
                None => out.texts.push_str(&display_cow(&red_line)),
            }
            let text = text_start..out.texts.len();
            out.hits.push(FoundHit {
                line_no: this_line,
                line: base + s..base + e,
                redacted: match red_line {
                    std::borrow::Cow::Owned(v) => Some(Box::new((v, redactions))),
                    std::borrow::Cow::Borrowed(_) => None,
                },
                at,
                text,
                kes: m.kes,
                error: m.error,
                request: head
                    .filter(|_| m.kes.contains(Ke::Ke1))
                    .map(|h| stash(&mut out.texts, h.request)),
            });
        }
    }
}

/// What a pane shows of a record: `request logger: message`, redacted;
/// the journal keeps the whole line.
/// `redactor` is `None` for a line known to hold no secret.
pub(super) fn record_text(redactor: Option<&Redactor>, h: &RecordHead<'_>) -> String {
    let mut out = String::new();
    push_record_text(redactor, h, &mut out);
    out
}

/// [`record_text`], appended to `out`.
fn push_record_text(redactor: Option<&Redactor>, h: &RecordHead<'_>, out: &mut String) {
    let logger = h.logger.rsplit('.').next().unwrap_or(h.logger);
    let red = match redactor {
        Some(r) => r.redact_bytes(h.message).0,
        None => std::borrow::Cow::Borrowed(h.message),
    };
    let msg = display_cow(&red);
    out.reserve(h.request.len() + logger.len() + 3 + msg.len());
    out.push_str(h.request);
    out.push(' ');
    out.push_str(logger);
    out.push_str(": ");
    push_compact_message(&msg, out);
}

/// `… - POST-5 - Adding one_time_keys dict_keys([…]) for device 'D' for
/// user 'U' at N` → request, user, device.
fn otk_upload_fields(line: &[u8]) -> Option<(&str, &str, &str)> {
    let head = parse_record(line)?;
    let msg = std::str::from_utf8(head.message).ok()?;
    let rest = &msg[msg.rfind(" for device '")? + " for device '".len()..];
    let (device, rest) = rest.split_once('\'')?;
    let rest = rest.strip_prefix(" for user '")?;
    let (user, _) = rest.split_once('\'')?;
    Some((head.request, user, device))
}

/// Synapse prefixes request errors with the request's repr
/// (`<XForwardedForRequest at 0x… method='POST' uri='/…' clientproto=… site=…>`):
/// shown as `POST /…` so the error itself fits in a pane. Appends to `out`.
fn push_compact_message(msg: &str, out: &mut String) {
    // Searchers built once: floods of these lines are common, and a
    // substring search sets one up per call.
    use memchr::memmem::Finder;
    static END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("> "));
    static METHOD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("method='"));
    static URI: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("uri='"));
    let compact = msg
        .starts_with('<')
        .then(|| END.find(msg.as_bytes()))
        .flatten()
        .and_then(|end| {
            let repr = &msg[..end];
            let field = |key: &Finder| {
                let i = key.find(repr.as_bytes())? + key.needle().len();
                let j = memchr::memchr(b'\'', &repr.as_bytes()[i..])?;
                Some(&repr[i..i + j])
            };
            Some((field(&METHOD)?, field(&URI)?, &msg[end + 2..]))
        });
    match compact {
        Some((m, u, rest)) => {
            out.push_str(m);
            out.push(' ');
            out.push_str(u);
            out.push(' ');
            out.push_str(rest);
        }
        None => out.push_str(msg),
    }
}

pub(super) fn display_text(line: &[u8]) -> String {
    display_cow(line).into_owned()
}

/// [`display_text`], borrowed when the line is valid UTF-8 and short.
fn display_cow(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let cut = &line[..line.len().min(DISPLAY_MAX * 4)];
    let s = lossy(cut);
    // No more bytes than the limit means no more characters either.
    if s.len() <= DISPLAY_MAX {
        return s;
    }
    match s.char_indices().nth(DISPLAY_MAX) {
        None => s,
        Some((i, _)) => {
            let mut t = String::with_capacity(i + '…'.len_utf8());
            t.push_str(&s[..i]);
            t.push('…');
            std::borrow::Cow::Owned(t)
        }
    }
}

/// `String::from_utf8_lossy`, with a faster check for the usual valid text.
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The time of the record a continuation line at `start` belongs to.
fn lookback_time(buf: &[u8], start: usize) -> Option<chrono::NaiveDateTime> {
    buf[..start]
        .rsplit(|b| *b == b'\n')
        .take(LOOKBACK_LINES)
        .find_map(parse_timestamp_prefix)
}

/// A "Processed request" line for `/sync`-like long-polls, without parsing
/// it: `/sync` followed by a space or `?`, or `/events?`. (Two searches, not
/// three: this runs on every access line.)
fn is_long_poll_line(line: &[u8]) -> bool {
    static FINDERS: LazyLock<[memchr::memmem::Finder<'static>; 2]> = LazyLock::new(|| {
        [
            memchr::memmem::Finder::new(b"/sync"),
            memchr::memmem::Finder::new(b"/events?"),
        ]
    });
    let [sync, events] = &*FINDERS;
    sync.find_iter(line)
        .any(|i| matches!(line.get(i + 5), Some(b' ' | b'?')))
        || events.find(line).is_some()
}

/// Substring searchers for request paths, built once: a path is looked
/// at for nearly every access line.
struct PathNeedles {
    sliding_sync: memchr::memmem::Finder<'static>,
    notifications: memchr::memmem::Finder<'static>,
    send_to_device: memchr::memmem::Finder<'static>,
    delayed_events: memchr::memmem::Finder<'static>,
    msc4140_delay: memchr::memmem::Finder<'static>,
}

static PATH_NEEDLES: LazyLock<PathNeedles> = LazyLock::new(|| {
    let f = memchr::memmem::Finder::new;
    PathNeedles {
        sliding_sync: f("/org.matrix.simplified_msc3575/sync"),
        notifications: f("/notifications"),
        send_to_device: f("/sendToDevice/"),
        delayed_events: f("/delayed_events/"),
        msc4140_delay: f("msc4140.delay="),
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

/// Whether a request is a delayed-event restart (path or body form), and
/// whether it is any delayed-event request: an endpoint under
/// `/delayed_events/` (restart, cancel, send) or an event sent with an
/// MSC4140 delay (the MatrixRTC delayed leave). One search of the path for
/// most lines; only a query is searched for the delay.
fn delayed_event(method: &str, path: &str) -> (bool, bool) {
    let p = without_query(path);
    match PATH_NEEDLES.delayed_events.find(p.as_bytes()) {
        Some(i) => {
            let rest = &p[i + "/delayed_events/".len()..];
            let restart = method == "POST" && (rest.ends_with("/restart") || !rest.contains('/'));
            (restart, true)
        }
        None => {
            let query = &path.as_bytes()[p.len()..];
            (false, PATH_NEEDLES.msc4140_delay.find(query).is_some())
        }
    }
}

/// What the App needs of an access line.
fn access_sample(line_no: u64, at: DateTime<Utc>, a: &AccessFields<'_>) -> AccessSample {
    let ms = (a.processing_s * 1000.0).round();
    let send_to_device = PATH_NEEDLES
        .send_to_device
        .find(a.path.as_bytes())
        .is_some();
    let (delayed_restart, delayed_event) = delayed_event(a.method, a.path);
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
        delayed_restart,
        delayed_event,
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

    /// A context on `sigs` (no capture needed).
    fn context(sigs: &crate::domain::signatures::Signatures) -> ScanContext {
        ScanContext {
            matcher: Arc::new(Matcher::new(sigs, &[]).unwrap_or_else(|e| panic!("{e}"))),
            redactor: Arc::new(Redactor::new()),
            clock: LogClock::utc(),
            generation: 0,
        }
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
    fn display_text_is_cut_at_the_limit_in_characters() {
        let short = "é".repeat(DISPLAY_MAX);
        assert_eq!(display_text(short.as_bytes()), short);
        let long = format!("{short}x\r");
        assert_eq!(display_text(long.as_bytes()), format!("{short}…"));
        assert_eq!(display_text(b"ab\r"), "ab");
        assert_eq!(display_text(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn long_poll_lines_are_sync_and_events_requests() {
        let line = |path: &str| {
            format!("… Processed request: 30.001sec/0.000sec 200 \"GET {path} HTTP/1.1\" \"x\"")
        };
        for poll in [
            "/_matrix/client/v3/sync?since=s1&timeout=30000",
            "/_matrix/client/r0/sync",
            "/_matrix/client/v3/events?from=s1",
        ] {
            assert!(is_long_poll_line(line(poll).as_bytes()), "{poll}");
        }
        for other in [
            "/_matrix/client/v3/keys/upload",
            "/_matrix/client/v3/synchronise",
            "/_matrix/client/v3/rooms/!r/sync_state",
            "/_matrix/client/v3/events",
        ] {
            assert!(!is_long_poll_line(line(other).as_bytes()), "{other}");
        }
    }

    #[test]
    fn delayed_event_requests_are_the_msc4140_endpoints_and_delayed_sends() {
        for yes in [
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/restart",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a",
            "/_matrix/client/v3/rooms/!r/state/org.matrix.msc3401.call.member/_x?org.matrix.msc4140.delay=8000",
        ] {
            assert!(delayed_event("GET", yes).1, "{yes}");
        }
        for no in [
            "/_matrix/client/v1/media/download/matrix.org/clip",
            "/_matrix/client/v3/rooms/!r/send/m.room.message/t1",
        ] {
            assert!(!delayed_event("GET", no).1, "{no}");
        }
        let restart = |m, p| delayed_event(m, p).0;
        assert!(restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/restart"
        ));
        assert!(restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a"
        ));
        assert!(!restart(
            "GET",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a"
        ));
        assert!(!restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/cancel"
        ));
    }

    #[test]
    fn a_request_repr_is_shown_as_method_and_uri() {
        let mut out = String::new();
        push_compact_message(
            "<XForwardedForRequest at 0x7f method='POST' uri='/k?x' clientproto='HTTP/1.1' site='8008'> SynapseError: 400",
            &mut out,
        );
        assert_eq!(out, "POST /k?x SynapseError: 400");
        for kept in ["<no end", "<a> b", "plain"] {
            out.clear();
            push_compact_message(kept, &mut out);
            assert_eq!(out, kept);
        }
    }

    #[test]
    fn otk_upload_names_request_user_and_device_also_when_nested() {
        let line = b"2026-01-19 12:34:51,034 - synapse.handlers.e2e_keys - 955 - INFO - POST-5688811 - Adding one_time_keys dict_keys(['signed_curve25519:AAAAAAAAAE0']) for device 'RWDSUMBAID' for user '@a:hs' at 1768822491032";
        assert_eq!(
            otk_upload_fields(line),
            Some(("POST-5688811", "@a:hs", "RWDSUMBAID"))
        );
        let nested = b"2026-01-19 12:34:51,034 - twisted - 273 - INFO - POST-7 - 2026-01-19 12:34:50,988 - synapse.handlers.e2e_keys - 955 - INFO - POST-7 - Adding one_time_keys dict_keys([]) for device 'D2' for user '@b:hs' at 1";
        assert_eq!(otk_upload_fields(nested), Some(("POST-7", "@b:hs", "D2")));
        assert_eq!(
            otk_upload_fields(b"Adding one_time_keys for device 'x'"),
            None
        );
    }
}
