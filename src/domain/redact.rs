//! Secrets that must never reach the screen, a log or a bundle.
//! Redacted text becomes `<redacted>`; patterns never cross a newline, so a
//! line stays a line. The rules and the one list of secret names are in
//! [`rules`]; site rules (`[redact] extra`, `--redact`) come after them.
//!
//! The secret part only is replaced: the name or prefix stays when it says
//! what was there (`access_token=<redacted>`, `Bearer <redacted>`), so the
//! evidence around it (public keys, key ids, event, room, user and device
//! ids, request ids) is left byte for byte. There is no guessing by entropy.
//!
//! Clean text costs one literal search plus a skip scan for recovery keys;
//! the regex runs only on lines that may hold a secret. Text that cannot
//! hold valid JSON escapes is never produced: no replaced value holds a `"`
//! or `\` outside an escape, so redacting raw JSON text keeps it valid.
//! Structured carriers (HAR files, JSON bodies) are walked by name first
//! ([`Redactor::redact_json`], `domain::har`), then given the text rules.

pub(crate) mod json;
pub mod rules;
mod site;
mod tally;
mod writer;

pub use json::NotJson;
pub use rules::{Rule, SECRET_LITERALS, name_rule, param_rule};
pub use site::{SiteRule, SiteRuleError};

/// Checks a site rule's pattern: `Err` says why it cannot be used.
pub fn check_site_pattern(pattern: &str) -> Result<(), String> {
    site::compile(pattern).map(|_| ())
}
pub use tally::{Tally, site_rule_name};
pub use writer::RedactingWriter;

use aho_corasick::{AhoCorasick, Input, MatchKind};
use regex::bytes::Regex;
use rules::{BUILTIN, Form, GROUPS};
use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, LazyLock};

pub const REDACTED: &str = "<redacted>";

/// Length of a spaced recovery key: 12 groups of 4 and 11 spaces.
const RECOVERY_KEY_LEN: usize = 59;
/// Rounds of redaction after the first, at most (see `Redactor::replace`).
const MAX_ROUNDS: usize = 4;

/// An alternative of the text pattern: capture group indexes and form.
#[derive(Debug, Clone, Copy)]
struct Group {
    name: Option<usize>,
    value: usize,
    form: Form,
    /// An unquoted value: `null`, `None` … are left as they are.
    bare: bool,
}

struct Builtin {
    /// [`rules::ANY_CASE_LITERALS`], ignoring case.
    literals: AhoCorasick,
    secrets: Regex,
    groups: Vec<Group>,
    /// 256-entry table: 1 = base58, 2 = space, 0 = anything else.
    key_bytes: [u8; 256],
}

/// Site rules, compiled.
struct Site {
    rules: Vec<Regex>,
    origins: Vec<String>,
}

// The patterns are constants covered by the tests; failing to build them is
// a bug that must stop the program rather than let secrets through.
#[allow(clippy::expect_used)]
static BUILTIN_RULES: LazyLock<Arc<Builtin>> = LazyLock::new(|| {
    let literals = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .ascii_case_insensitive(true)
        .build(rules::ANY_CASE_LITERALS)
        .expect("redaction literals build");
    let secrets = regex::bytes::RegexBuilder::new(&rules::text_pattern())
        .unicode(false)
        .build()
        .expect("redaction pattern compiles");
    let index = |name: &str| {
        secrets
            .capture_names()
            .position(|n| n == Some(name))
            .expect("every group of GROUPS is in the pattern")
    };
    let groups = GROUPS
        .iter()
        .map(|&(name, value, form)| Group {
            name: name.map(index),
            value: index(value),
            form,
            bare: matches!(value, "v8" | "v9" | "qv"),
        })
        .collect();
    let mut key_bytes = [0u8; 256];
    for b in 0..=255u8 {
        key_bytes[usize::from(b)] = match b {
            b' ' => 2,
            b'1'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P'..=b'Z' | b'a'..=b'k' | b'm'..=b'z' => 1,
            _ => 0,
        };
    }
    Arc::new(Builtin {
        literals,
        secrets,
        groups,
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
    /// A built-in rule's index, or `BUILTIN + i` for site rule `i`.
    rule: usize,
}

#[derive(Clone)]
pub struct Redactor {
    builtin: Arc<Builtin>,
    site: Option<Arc<Site>>,
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
    /// The built-in rules.
    pub fn new() -> Self {
        Redactor {
            builtin: BUILTIN_RULES.clone(),
            site: None,
        }
    }

    /// The built-in rules, then `site` (named `site-1`, … in this order).
    pub fn with_site_rules(site: &[SiteRule]) -> Result<Self, SiteRuleError> {
        if site.is_empty() {
            return Ok(Self::new());
        }
        let mut rules = Vec::with_capacity(site.len());
        for r in site {
            rules.push(site::compile(&r.pattern).map_err(|reason| SiteRuleError {
                origin: r.origin.clone(),
                pattern: r.pattern.clone(),
                reason,
            })?);
        }
        Ok(Redactor {
            builtin: BUILTIN_RULES.clone(),
            site: Some(Arc::new(Site {
                rules,
                origins: site.iter().map(|r| r.origin.clone()).collect(),
            })),
        })
    }

    /// Where each site rule came from, in order (`site-1` first).
    pub fn site_origins(&self) -> &[String] {
        self.site.as_deref().map_or(&[], |s| &s.origins)
    }

    /// Redacts a buffer of one or more lines; returns the text and how many
    /// secrets each rule replaced.
    pub fn redact_bytes<'a>(&self, buf: &'a [u8]) -> (Cow<'a, [u8]>, Tally) {
        let secrets = self.find(buf);
        self.replace(buf, &secrets)
    }

    /// [`Redactor::redact_bytes`], and the lines (`start..end` without the
    /// newline, ascending) that may hold a secret. Text inside any other
    /// line holds none: redacting it, or any part of it, changes nothing.
    pub fn redact_bytes_noting<'a>(
        &self,
        buf: &'a [u8],
    ) -> (Cow<'a, [u8]>, Tally, Vec<std::ops::Range<usize>>) {
        self.redact_noting(buf, self.candidates(buf))
    }

    /// [`Redactor::redact_bytes_noting`] given `literal_lines`: every line
    /// of `buf` (`start`, `end` without the newline) that holds one of
    /// [`SECRET_LITERALS`] as spelled there, found by the caller's own
    /// search.
    pub fn redact_bytes_noting_lines<'a>(
        &self,
        buf: &'a [u8],
        mut literal_lines: Vec<(usize, usize)>,
    ) -> (Cow<'a, [u8]>, Tally, Vec<std::ops::Range<usize>>) {
        literal_lines.extend(key_lines(&self.builtin, buf));
        self.site_lines(buf, &mut literal_lines);
        literal_lines.sort_unstable();
        literal_lines.dedup();
        self.redact_noting(buf, literal_lines)
    }

    fn redact_noting<'a>(
        &self,
        buf: &'a [u8],
        lines: Vec<(usize, usize)>,
    ) -> (Cow<'a, [u8]>, Tally, Vec<std::ops::Range<usize>>) {
        let secrets = self.find_in(buf, &lines);
        let (text, n) = self.replace(buf, &secrets);
        (text, n, lines.into_iter().map(|(s, e)| s..e).collect())
    }

    fn replace<'a>(&self, buf: &'a [u8], secrets: &[Secret]) -> (Cow<'a, [u8]>, Tally) {
        let mut tally = Tally::default();
        if secrets.iter().all(|s| s.keep) {
            return (Cow::Borrowed(buf), tally);
        }
        let mut out = Vec::with_capacity(buf.len());
        apply(buf, secrets, &mut out, &mut tally);
        // A replacement can complete a shape that was not there: a recovery
        // key glued to a token ends at a word boundary once the token is
        // `<redacted>`; a token swallowed into a name stands alone once the
        // name's value is replaced. Redacting the text again until nothing
        // changes makes redacting twice the same as once (each round
        // replaces a secret, so the rounds are few).
        for _ in 0..MAX_ROUNDS {
            let more = self.find(&out);
            if more.iter().all(|s| s.keep) {
                break;
            }
            let mut again = Vec::with_capacity(out.len());
            apply(&out, &more, &mut again, &mut tally);
            out = again;
        }
        (Cow::Owned(out), tally)
    }

    /// Redacts text; returns it and how many secrets were replaced.
    pub fn redact_str<'a>(&self, s: &'a str) -> (Cow<'a, str>, usize) {
        let (text, tally) = self.redact_text(s);
        (text, tally.total() as usize)
    }

    /// [`Redactor::redact_str`], counting by rule.
    pub fn redact_text<'a>(&self, s: &'a str) -> (Cow<'a, str>, Tally) {
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
        RedactingWriter::new(self.clone(), inner)
    }

    /// Where to cut `buf` at `cut` or before, so that no secret is cut in
    /// two: the start of a secret that spans `cut`, else `cut`. Give `buf`
    /// some bytes past `cut` (longer than any secret), so that the secret
    /// is seen whole.
    pub fn cut_before_secret(&self, buf: &[u8], cut: usize) -> usize {
        self.find(buf)
            .iter()
            .find(|s| s.start < cut && s.end > cut)
            .map_or(cut, |s| s.start)
    }

    /// Secrets in `buf`, in order, not overlapping.
    fn find(&self, buf: &[u8]) -> Vec<Secret> {
        let lines = self.candidates(buf);
        self.find_in(buf, &lines)
    }

    /// Lines (start, end without `\n`; ascending, distinct) that may hold a
    /// secret: a literal (any case), a run long enough to be a recovery key,
    /// or a site rule's match.
    fn candidates(&self, buf: &[u8]) -> Vec<(usize, usize)> {
        let mut lines = literal_lines(&self.builtin, buf);
        lines.extend(key_lines(&self.builtin, buf));
        self.site_lines(buf, &mut lines);
        lines.sort_unstable();
        lines.dedup();
        lines
    }

    /// Adds the lines where a site rule matches: one search of `buf` per
    /// rule (site rules are few; with none, nothing is searched).
    fn site_lines(&self, buf: &[u8], lines: &mut Vec<(usize, usize)>) {
        let Some(site) = &self.site else { return };
        let len = buf.len();
        for re in &site.rules {
            let mut pos = 0;
            while pos < len {
                let Some(m) = re.find_at(buf, pos) else {
                    break;
                };
                let (s, e) = line_around(buf, m.start());
                lines.push((s, e));
                pos = e + 1;
            }
        }
    }

    /// Secrets on `lines` (ascending, distinct) of `buf`.
    fn find_in(&self, buf: &[u8], lines: &[(usize, usize)]) -> Vec<Secret> {
        let b = &*self.builtin;
        let mut out = Vec::new();
        for &(ls, le) in lines {
            let line = &buf[ls..le];
            let first = out.len();
            for caps in b.secrets.captures_iter(line) {
                let Some((g, value)) = b
                    .groups
                    .iter()
                    .find_map(|g| caps.get(g.value).map(|v| (g, v)))
                else {
                    continue;
                };
                let rule = match g.form {
                    Form::Rule(r) => r,
                    Form::Named => {
                        let name = g.name.and_then(|n| caps.get(n)).map(|n| n.as_bytes());
                        match name
                            .and_then(|n| std::str::from_utf8(n).ok())
                            .and_then(name_rule)
                        {
                            Some(r) => r,
                            None => continue,
                        }
                    }
                };
                let Some(whole) = caps.get(0) else { continue };
                let v = value.as_bytes();
                out.push(Secret {
                    start: ls + whole.start(),
                    end: ls + whole.end(),
                    value: (ls + value.start(), ls + value.end()),
                    keep: v.is_empty()
                        || v == REDACTED.as_bytes()
                        || (g.bare && rules::EMPTY_VALUES.contains(&v)),
                    rule: rule.index(),
                });
            }
            if let Some(site) = &self.site {
                let before = out.len();
                for (i, re) in site.rules.iter().enumerate() {
                    for caps in re.captures_iter(line) {
                        let Some(whole) = caps.get(0) else { continue };
                        // The first group that took part, else the match.
                        let value = (1..caps.len()).find_map(|g| caps.get(g)).unwrap_or(whole);
                        let v = value.as_bytes();
                        out.push(Secret {
                            start: ls + whole.start(),
                            end: ls + whole.end(),
                            value: (ls + value.start(), ls + value.end()),
                            keep: v.is_empty() || v == REDACTED.as_bytes(),
                            rule: BUILTIN + i,
                        });
                    }
                }
                if out.len() > before {
                    disjoint(&mut out, first);
                }
            }
        }
        out
    }
}

/// Sorts `secrets[from..]` by value and drops any whose value overlaps an
/// earlier one's (the earlier rule has it).
fn disjoint(secrets: &mut Vec<Secret>, from: usize) {
    let mut line: Vec<Secret> = secrets.drain(from..).collect();
    line.sort_by_key(|s| (s.value.0, s.rule));
    let mut end = 0;
    for s in line {
        if s.value.0 >= end {
            end = s.value.1;
            secrets.push(s);
        }
    }
}

/// The line (start, end without `\n`) holding byte `at`.
fn line_around(buf: &[u8], at: usize) -> (usize, usize) {
    let s = memchr::memrchr(b'\n', &buf[..at]).map_or(0, |i| i + 1);
    let e = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i);
    (s, e)
}

/// Lines (start, end without `\n`) that contain a literal, any case.
fn literal_lines(c: &Builtin, buf: &[u8]) -> Vec<(usize, usize)> {
    let len = buf.len();
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Some(m) = c.literals.find(Input::new(buf).span(pos..len)) else {
            break;
        };
        let s = memchr::memrchr(b'\n', &buf[pos..m.start()]).map_or(pos, |i| pos + i + 1);
        let e = memchr::memchr(b'\n', &buf[m.start()..]).map_or(len, |i| m.start() + i);
        lines.push((s, e));
        pos = e + 1;
    }
    lines
}

/// Lines (start, end without `\n`) with a run of bytes long enough to be a
/// recovery key.
fn key_lines(c: &Builtin, buf: &[u8]) -> Vec<(usize, usize)> {
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

/// Writes `buf` with `secrets` replaced into `out`, counting by rule.
fn apply(buf: &[u8], secrets: &[Secret], out: &mut Vec<u8>, tally: &mut Tally) {
    let mut last = 0;
    for s in secrets.iter().filter(|s| !s.keep) {
        out.extend_from_slice(&buf[last..s.value.0]);
        out.extend_from_slice(REDACTED.as_bytes());
        last = s.value.1;
        tally.add_index(s.rule, 1);
    }
    out.extend_from_slice(&buf[last..]);
}

#[cfg(test)]
mod tests;
