//! Secrets that must never reach the screen, a log or a bundle.
//! Redacted text becomes `<redacted>`; patterns never cross a newline, so a
//! line stays a line.
//!
//! What is redacted (the secret part only; the key or prefix stays when it
//! says what was there):
//! - Matrix access and refresh tokens `syt_…` / `syr_…` (whole token);
//! - `access_token=`, `refresh_token=`, `client_secret=` query values (also
//!   `access%5Ftoken=`), unless already `<redacted>`;
//! - `Bearer <token>` values;
//! - JSON string values of `access_token`, `refresh_token`, `client_secret`,
//!   `password`, `new_password` and `token`, plain or escaped inside another
//!   JSON string (`\"password\":\"…\"`);
//! - recovery keys: twelve groups of four base58 characters separated by
//!   single spaces.
//!
//! Clean text costs one literal search plus a skip scan for recovery keys;
//! the regex runs only on lines that may hold a secret. Text that cannot hold
//! valid JSON escapes is never produced: no class includes `"` or `\`, so
//! redacting raw JSON text keeps it valid.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use regex::bytes::Regex;
use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, LazyLock};

pub const REDACTED: &str = "<redacted>";

const BASE58: &str = "1-9A-HJ-NP-Za-km-z";
/// Length of a spaced recovery key: 12 groups of 4 and 11 spaces.
const RECOVERY_KEY_LEN: usize = 59;

/// Every secret pattern contains one of these (recovery keys aside). The
/// capture's matcher searches for them in the same pass as the KEs' and
/// hands the lines over ([`Redactor::redact_bytes_noting_lines`]).
pub const SECRET_LITERALS: [&str; 6] = ["syt_", "syr_", "token", "secret", "earer", "password"];

fn secrets_pattern() -> String {
    let json_keys = "access_token|refresh_token|client_secret|password|new_password|token";
    [
        r"(?P<tok>sy[tr]_[A-Za-z0-9+/_=-]+)".to_string(),
        r#"(?:access|refresh)(?:_|%5[Ff])token=(?P<q1>[^&\s"'<>#\\]+)"#.to_string(),
        r#"client(?:_|%5[Ff])secret=(?P<q2>[^&\s"'<>#\\]+)"#.to_string(),
        r"[Bb]earer[ \t]+(?P<bearer>[A-Za-z0-9._~+/-]+=*)".to_string(),
        format!(r#""(?:{json_keys})"[ \t]*:[ \t]*"(?P<json>(?:[^"\\\n]|\\[^\n])*)""#),
        format!(r#"\\"(?:{json_keys})\\"[ \t]*:[ \t]*\\"(?P<esc>[^\n]*?)\\""#),
        format!(r"\b(?P<rk>[{BASE58}]{{4}}(?: [{BASE58}]{{4}}){{11}})\b"),
    ]
    .join("|")
}

const GROUPS: [&str; 7] = ["tok", "q1", "q2", "bearer", "json", "esc", "rk"];

struct Compiled {
    literals: AhoCorasick,
    secrets: Regex,
    /// 256-entry table: 1 = base58, 2 = space, 0 = anything else.
    key_bytes: [u8; 256],
}

// The patterns are constants covered by the tests; failing to build them is
// a bug that must stop the program rather than let secrets through.
#[allow(clippy::expect_used)]
static COMPILED: LazyLock<Arc<Compiled>> = LazyLock::new(|| {
    let literals = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(SECRET_LITERALS)
        .expect("redaction literals build");
    let secrets = regex::bytes::RegexBuilder::new(&secrets_pattern())
        .unicode(false)
        .build()
        .expect("redaction pattern compiles");
    let mut key_bytes = [0u8; 256];
    for b in 0..=255u8 {
        key_bytes[usize::from(b)] = match b {
            b' ' => 2,
            b'1'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P'..=b'Z' | b'a'..=b'k' | b'm'..=b'z' => 1,
            _ => 0,
        };
    }
    Arc::new(Compiled {
        literals,
        secrets,
        key_bytes,
    })
});

/// One secret found: the whole match and the part that is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Secret {
    start: usize,
    end: usize,
    value: (usize, usize),
    /// Already `<redacted>` or empty: kept as is, not counted.
    keep: bool,
}

#[derive(Clone)]
pub struct Redactor {
    compiled: Arc<Compiled>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    pub fn new() -> Self {
        Redactor {
            compiled: COMPILED.clone(),
        }
    }

    /// Redacts a buffer of one or more lines; returns the text and how many
    /// secrets were replaced.
    pub fn redact_bytes<'a>(&self, buf: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        let secrets = self.find(buf);
        Self::replace(buf, &secrets)
    }

    /// [`Redactor::redact_bytes`], and the lines (`start..end` without the
    /// newline, ascending) that may hold a secret. Text inside any other
    /// line holds none: redacting it, or any part of it, changes nothing.
    pub fn redact_bytes_noting<'a>(
        &self,
        buf: &'a [u8],
    ) -> (Cow<'a, [u8]>, usize, Vec<std::ops::Range<usize>>) {
        self.redact_noting(buf, candidates(&self.compiled, buf))
    }

    /// [`Redactor::redact_bytes_noting`] given `literal_lines`: every line
    /// of `buf` (`start`, `end` without the newline) that holds one of
    /// [`SECRET_LITERALS`], found by the caller's own search.
    pub fn redact_bytes_noting_lines<'a>(
        &self,
        buf: &'a [u8],
        mut literal_lines: Vec<(usize, usize)>,
    ) -> (Cow<'a, [u8]>, usize, Vec<std::ops::Range<usize>>) {
        literal_lines.extend(key_lines(&self.compiled, buf));
        literal_lines.sort_unstable();
        literal_lines.dedup();
        self.redact_noting(buf, literal_lines)
    }

    fn redact_noting<'a>(
        &self,
        buf: &'a [u8],
        lines: Vec<(usize, usize)>,
    ) -> (Cow<'a, [u8]>, usize, Vec<std::ops::Range<usize>>) {
        let secrets = self.find_in(buf, &lines);
        let (text, n) = Self::replace(buf, &secrets);
        (text, n, lines.into_iter().map(|(s, e)| s..e).collect())
    }

    fn replace<'a>(buf: &'a [u8], secrets: &[Secret]) -> (Cow<'a, [u8]>, usize) {
        if secrets.iter().all(|s| s.keep) {
            return (Cow::Borrowed(buf), 0);
        }
        let mut out = Vec::with_capacity(buf.len());
        let n = apply(buf, secrets, &mut out);
        (Cow::Owned(out), n)
    }

    pub fn redact_str<'a>(&self, s: &'a str) -> (Cow<'a, str>, usize) {
        match self.redact_bytes(s.as_bytes()) {
            (Cow::Borrowed(_), n) => (Cow::Borrowed(s), n),
            // Replacements start and end at ASCII bytes, so UTF-8 stays valid.
            (Cow::Owned(v), n) => match String::from_utf8(v) {
                Ok(t) => (Cow::Owned(t), n),
                Err(e) => (
                    Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    n,
                ),
            },
        }
    }

    /// A writer that redacts everything written through it, line by line
    /// (long lines in pieces), into `inner`.
    pub fn writer<W: Write>(&self, inner: W) -> RedactingWriter<W> {
        RedactingWriter {
            redactor: self.clone(),
            inner,
            pending: Vec::new(),
            scanned: 0,
            count: 0,
        }
    }

    /// Secrets in `buf`, in order, not overlapping.
    fn find(&self, buf: &[u8]) -> Vec<Secret> {
        let lines = candidates(&self.compiled, buf);
        self.find_in(buf, &lines)
    }

    /// Secrets on `lines` (ascending, distinct) of `buf`.
    fn find_in(&self, buf: &[u8], lines: &[(usize, usize)]) -> Vec<Secret> {
        let c = &*self.compiled;
        let mut out = Vec::new();
        for &(ls, le) in lines {
            let line = &buf[ls..le];
            let mut line_end = 0;
            for caps in c.secrets.captures_iter(line) {
                let (Some(whole), Some(value)) =
                    (caps.get(0), GROUPS.iter().find_map(|g| caps.name(g)))
                else {
                    continue;
                };
                if caps.name("tok").is_some()
                    && let Some(key) = key_glued_before(c, line, whole.start(), line_end)
                {
                    out.push(Secret {
                        start: ls + key.0,
                        end: ls + key.1,
                        value: (ls + key.0, ls + key.1),
                        keep: false,
                    });
                }
                line_end = whole.end();
                let v = value.as_bytes();
                out.push(Secret {
                    start: ls + whole.start(),
                    end: ls + whole.end(),
                    value: (ls + value.start(), ls + value.end()),
                    keep: v.is_empty() || v == REDACTED.as_bytes(),
                });
            }
        }
        out
    }
}

/// A recovery key that ends right where a token starts (`… 1A1asyt_…`):
/// the key's end is no word boundary until the token is replaced, so the
/// pattern would find the key only when the redacted text is redacted
/// again. `from`: where the previous secret on the line ended.
fn key_glued_before(c: &Compiled, line: &[u8], at: usize, from: usize) -> Option<(usize, usize)> {
    let start = at.checked_sub(RECOVERY_KEY_LEN).filter(|&s| s >= from)?;
    // Twelve groups of four base58 characters, single spaces between.
    let shaped = line[start..at]
        .iter()
        .enumerate()
        .all(|(i, &b)| match i % 5 {
            4 => b == b' ',
            _ => c.key_bytes[usize::from(b)] == 1,
        });
    // The key starts a word, as the pattern's `\b` has it.
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let starts_word = start == 0 || !word(line[start - 1]);
    (shaped && starts_word).then_some((start, at))
}

/// [`candidate_lines`], ascending and distinct.
fn candidates(c: &Compiled, buf: &[u8]) -> Vec<(usize, usize)> {
    let mut lines = candidate_lines(c, buf);
    lines.sort_unstable();
    lines.dedup();
    lines
}

/// Lines (start, end without `\n`) that contain a literal or a run of bytes
/// long enough to be a recovery key.
fn candidate_lines(c: &Compiled, buf: &[u8]) -> Vec<(usize, usize)> {
    let len = buf.len();
    let line_of = |at: usize, from: usize| {
        let s = memchr::memrchr(b'\n', &buf[from..at]).map_or(from, |i| from + i + 1);
        let e = memchr::memchr(b'\n', &buf[at..]).map_or(len, |i| at + i);
        (s, e)
    };
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Some(m) = c.literals.find(Input::new(buf).span(pos..len)) else {
            break;
        };
        let (s, e) = line_of(m.start(), pos);
        lines.push((s, e));
        pos = e + 1;
    }
    lines.extend(key_lines(c, buf));
    lines
}

/// Lines (start, end without `\n`) with a run of bytes long enough to be a
/// recovery key.
fn key_lines(c: &Compiled, buf: &[u8]) -> Vec<(usize, usize)> {
    let len = buf.len();
    let line_of = |at: usize| {
        let s = memchr::memrchr(b'\n', &buf[..at]).map_or(0, |i| i + 1);
        let e = memchr::memchr(b'\n', &buf[at..]).map_or(len, |i| at + i);
        (s, e)
    };
    let mut lines = Vec::new();
    // Recovery keys have no literal. Probe one byte per key length: a byte
    // that is neither base58 nor a space rules out every key containing it.
    let class = &c.key_bytes;
    let mut i = RECOVERY_KEY_LEN - 1;
    let mut floor = 0;
    while i < len {
        if class[usize::from(buf[i])] == 0 || !spaced_groups_near(buf, i) {
            i += RECOVERY_KEY_LEN;
            continue;
        }
        let mut a = i;
        while a > floor && class[usize::from(buf[a - 1])] != 0 {
            a -= 1;
        }
        let mut b = i + 1;
        while b < len && class[usize::from(buf[b])] != 0 {
            b += 1;
        }
        if b - a >= RECOVERY_KEY_LEN {
            lines.push(line_of(a));
        }
        floor = b;
        i = b + RECOVERY_KEY_LEN;
    }
    lines
}

/// Whether a recovery key could cover byte `i`: every byte of a key is
/// within four bytes of one of its eleven spaces, and every one of those
/// is one of three spaces five bytes apart. (Log text seldom has three
/// four-letter words in a row; a key always does.)
fn spaced_groups_near(buf: &[u8], i: usize) -> bool {
    // Away from the buffer's ends: a fixed window and no branches, so the
    // common answer (no) costs a few vector compares. `w[14]` is byte `i`.
    if let Some(w) = i
        .checked_sub(14)
        .and_then(|from| buf.get(from..from + 29))
        .and_then(|w| <&[u8; 29]>::try_from(w).ok())
    {
        let sp = |k: usize| w[k] == b' ';
        let mut hit = false;
        for j in 10..19 {
            hit |= sp(j)
                & ((sp(j - 10) & sp(j - 5)) | (sp(j - 5) & sp(j + 5)) | (sp(j + 5) & sp(j + 10)));
        }
        return hit;
    }
    let space_at = |j: usize| buf.get(j) == Some(&b' ');
    let spaced = |j: usize, d: isize| {
        j.checked_add_signed(d).is_some_and(space_at)
            && j.checked_add_signed(2 * d).is_some_and(space_at)
    };
    (i.saturating_sub(4)..=i + 4).any(|j| {
        space_at(j)
            && (spaced(j, -5) || spaced(j, 5) || (j >= 5 && space_at(j - 5) && space_at(j + 5)))
    })
}

/// Writes `buf` with `secrets` replaced into `out`; returns the count.
fn apply(buf: &[u8], secrets: &[Secret], out: &mut Vec<u8>) -> usize {
    let mut last = 0;
    let mut n = 0;
    for s in secrets.iter().filter(|s| !s.keep) {
        out.extend_from_slice(&buf[last..s.value.0]);
        out.extend_from_slice(REDACTED.as_bytes());
        last = s.value.1;
        n += 1;
    }
    out.extend_from_slice(&buf[last..]);
    n
}

/// Redacts a stream. Complete lines are redacted as they arrive; a line
/// longer than [`RedactingWriter::MAX_PENDING`] is redacted in pieces, each
/// cut kept clear of any secret that might not have fully arrived.
/// Call [`RedactingWriter::finish`] to flush the last partial line.
pub struct RedactingWriter<W: Write> {
    redactor: Redactor,
    inner: W,
    pending: Vec<u8>,
    /// `pending[..scanned]` has no `\n`.
    scanned: usize,
    count: usize,
}

impl<W: Write> RedactingWriter<W> {
    /// A line piece longer than this is redacted without waiting for its end.
    pub const MAX_PENDING: usize = 1 << 20;
    /// Bytes held back at a cut (longer than any secret).
    const HOLD: usize = 4096;

    /// Secrets replaced so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Redacts and writes what is left; returns the inner writer and the
    /// number of secrets replaced.
    pub fn finish(mut self) -> io::Result<(W, usize)> {
        let rest = std::mem::take(&mut self.pending);
        self.emit(&rest)?;
        self.inner.flush()?;
        Ok((self.inner, self.count))
    }

    fn emit(&mut self, chunk: &[u8]) -> io::Result<()> {
        let (out, n) = self.redactor.redact_bytes(chunk);
        self.count += n;
        self.inner.write_all(&out)
    }

    fn drain(&mut self) -> io::Result<()> {
        if let Some(i) = memchr::memrchr(b'\n', &self.pending[self.scanned..]) {
            let cut = self.scanned + i + 1;
            let head: Vec<u8> = self.pending.drain(..cut).collect();
            self.emit(&head)?;
            self.scanned = 0;
        } else {
            self.scanned = self.pending.len();
        }
        if self.pending.len() > Self::MAX_PENDING {
            let mut cut = self.pending.len() - Self::HOLD;
            let secrets = self.redactor.find(&self.pending);
            if let Some(s) = secrets.iter().find(|s| s.end > cut) {
                cut = cut.min(s.start);
            }
            if cut > 0 {
                let mut out = Vec::with_capacity(cut + 64);
                let before: Vec<Secret> = secrets.into_iter().filter(|s| s.end <= cut).collect();
                self.count += apply(&self.pending[..cut], &before, &mut out);
                self.inner.write_all(&out)?;
                self.pending.drain(..cut);
                self.scanned = self.pending.len();
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain()?;
        Ok(buf.len())
    }

    /// Flushes the inner writer; a partial line stays pending until more
    /// text or [`RedactingWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
