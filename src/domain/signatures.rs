//! KE signatures (`assets/signatures.toml`, embedded; a user file may
//! override) and the one-pass matcher.
//!
//! Matching has `grep -E` semantics: case-sensitive, one physical line at a
//! time, and all KEs are matched in one pass over the input.
//!
//! How `scan` stays fast: every pattern is reduced to a small set of literals
//! that any match must contain (`literals.rs`). The literal search
//! (`search.rs`: the secret literals apart from the rest) runs over the
//! whole buffer; only the lines it lands on are classified, mostly from the
//! literals' bits alone (`bits.rs`), and patterns that are plain strings
//! need no regex at all.
//! Patterns with no usable literal fall back to one combined regex over the
//! buffer, which is still a single pass.

mod bits;
mod ere;
mod file;
mod literals;
mod search;

pub use file::{ClientSignature, KeSignatures, Signatures, SignaturesError};

use bits::PatternBits;
use search::{Lines, LiteralGroup, LiteralSearch, automaton};

use super::ke::{Ke, KeSet};
use aho_corasick::{AhoCorasick, Input};
use regex::bytes::{Regex, RegexBuilder};
use std::sync::Arc;

pub const EMBEDDED: &str = include_str!("../../assets/signatures.toml");

/// What a line matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineMatch {
    /// KEs whose server pattern matched.
    pub kes: KeSet,
    /// An error signature matched (highlight it).
    pub error: bool,
    /// The line is a "Processed request" access line.
    pub access: bool,
    /// The line is Synapse's to-device trace ("Storing to-device messages").
    pub to_device_trace: bool,
    /// The line names a keys/upload's device ("Adding one_time_keys ").
    pub otk_upload: bool,
    /// The line holds a literal of a secret pattern (see
    /// [`crate::domain::redact::SECRET_LITERALS`]): redaction looks at it.
    pub secret_literal: bool,
}

impl LineMatch {
    pub fn is_interesting(&self) -> bool {
        !self.kes.is_empty()
            || self.error
            || self.access
            || self.to_device_trace
            || self.otk_upload
            || self.secret_literal
    }
}

/// A client message's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMatch {
    pub ke: Ke,
    pub signature: String,
    pub error: bool,
}

/// Compiles a `grep -E` pattern for matching one line (bytes, Unicode off).
fn compile_ere(ere: &str) -> Result<Regex, String> {
    let rust = ere::translate(ere)?;
    build_regex(&rust)
}

fn build_regex(rust: &str) -> Result<Regex, String> {
    RegexBuilder::new(rust).unicode(false).build().map_err(|e| {
        e.to_string()
            .lines()
            .last()
            .unwrap_or("invalid")
            .trim()
            .to_string()
    })
}

/// Index of the access pseudo-pattern after the four KEs.
const ACCESS: usize = 4;
/// The to-device trace and keys/upload owner pseudo-patterns: found by the
/// same literal search, so the scan needs no pass of its own for them.
const TO_DEVICE_TRACE: usize = 5;
const OTK_UPLOAD: usize = 6;
/// Lines redaction must look at, found in the same search.
const SECRET: usize = 7;
/// Error patterns of KE `n` have slot `ERRORS + n`.
const ERRORS: usize = 8;
const ACCESS_LITERAL: &str = "Processed request";
const TO_DEVICE_TRACE_LITERAL: &str = "Storing to-device messages";
const OTK_UPLOAD_LITERAL: &str = "Adding one_time_keys ";
/// Patterns whose literals take part in the search (one bit each).
const MAX_LITERAL_PATTERNS: usize = 64;

#[derive(Debug)]
struct Pattern {
    /// 0..4 = KE index, then the pseudo-patterns ([`ACCESS`],
    /// [`TO_DEVICE_TRACE`], [`OTK_UPLOAD`], [`SECRET`]), then from [`ERRORS`]
    /// an error pattern of KE `slot - ERRORS`.
    slot: usize,
    /// `None` for plain-string patterns (a literal hit is a match).
    regex: Option<Regex>,
    /// The pattern's literals are known: no literal on the line, no match.
    has_literals: bool,
}

/// Per pattern (bit i): a literal of it is on the line (`possible`), or a
/// literal that is a whole branch of it (`certain`).
#[derive(Debug, Default, Clone, Copy)]
struct LiteralMasks {
    possible: u64,
    certain: u64,
}

impl LiteralMasks {
    fn add(&mut self, owners: &[(usize, bool)]) {
        for &(p, exact) in owners {
            self.possible |= 1 << p;
            if exact {
                self.certain |= 1 << p;
            }
        }
    }
}

#[derive(Debug)]
enum Prefilter {
    /// Every pattern has required literals: the literal search (the same
    /// literals as `Compiled::literals`, the same matches) finds every
    /// interesting line.
    Literals(Box<LiteralSearch>),
    /// Some pattern has no required literal: a combined regex (multi-line).
    Regex(Regex),
}

#[derive(Debug)]
struct Compiled {
    patterns: Vec<Pattern>,
    prefilter: Prefilter,
    /// Every pattern's required literals, leftmost-longest. Finds the first
    /// interesting line in a buffer, then the literals on that line: a
    /// search resumed one byte after each match start reports, at each
    /// position, the longest literal there, and every shorter literal at
    /// that position is a prefix of it (see `literal_owners`). That is what
    /// an overlapping search would report, at the price of a few skipping
    /// searches instead of a byte-by-byte automaton walk.
    literals: Option<AhoCorasick>,
    /// For each literal: (pattern index, the literal alone is a match), for
    /// the literal itself and every literal that is a prefix of it.
    literal_owners: Vec<Vec<(usize, bool)>>,
    /// The patterns by bit, for lines the literals decide alone.
    bits: PatternBits,
}

/// Matches server lines and client messages against all KEs at once.
#[derive(Debug, Clone)]
pub struct Matcher {
    sigs: Signatures,
    ke3_ids: Vec<String>,
    compiled: Arc<Compiled>,
}

impl Matcher {
    /// `ke3_ids` are event ids harvested from client KE-3 entries (plus any
    /// the operator adds); they form KE-3's server pattern (literal match).
    pub fn new(sigs: &Signatures, ke3_ids: &[String]) -> Result<Self, String> {
        let ids = clean_ids(ke3_ids.iter().map(String::as_str), &[]);
        let compiled = compile(sigs, &ids)?;
        Ok(Matcher {
            sigs: sigs.clone(),
            ke3_ids: ids,
            compiled: Arc::new(compiled),
        })
    }

    /// Adds KE-3 event ids and rebuilds if any is new; returns how many were
    /// added. On error the matcher is unchanged.
    pub fn add_ke3_ids<S: AsRef<str>>(
        &mut self,
        ids: impl IntoIterator<Item = S>,
    ) -> Result<usize, String> {
        let new: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_string()).collect();
        let added = clean_ids(new.iter().map(String::as_str), &self.ke3_ids);
        if added.is_empty() {
            return Ok(0);
        }
        let mut all = self.ke3_ids.clone();
        all.extend(added.iter().cloned());
        self.compiled = Arc::new(compile(&self.sigs, &all)?);
        self.ke3_ids = all;
        Ok(added.len())
    }

    /// The KE-3 event ids currently matched, in the order they were added.
    pub fn ke3_ids(&self) -> &[String] {
        &self.ke3_ids
    }

    pub fn signatures(&self) -> &Signatures {
        &self.sigs
    }

    /// Classifies one physical line (no newline). The capture classifies
    /// lines through [`Matcher::scan`]; this is for tests.
    #[cfg(test)]
    pub fn match_line(&self, line: &[u8]) -> LineMatch {
        self.compiled.classify(line)
    }

    /// Calls `f(start, end, match)` for each line of `buf` (lines end with
    /// `\n`; `end` excludes it) that is interesting, in order. Lines that
    /// match nothing are skipped without being examined one by one. A last
    /// line without `\n` is a line.
    pub fn scan(&self, buf: &[u8], mut f: impl FnMut(usize, usize, LineMatch)) {
        let mut starts = Vec::new();
        super::stall::for_each_line(buf, |start, _| starts.push(start));
        self.scan_lines(buf, &starts, |_, start, end, m| f(start, end, m));
    }

    /// [`Matcher::scan`] of a buffer whose lines are known: `starts` holds
    /// where each line starts, as [`super::stall::for_each_line`] gives
    /// them. No line's bounds are searched for again; `f(index, start,
    /// end, match)` gets the line's index in `starts` too.
    pub fn scan_lines(
        &self,
        buf: &[u8],
        starts: &[usize],
        mut f: impl FnMut(usize, usize, usize, LineMatch),
    ) {
        let c = &*self.compiled;
        let lines = Lines { buf, starts };
        match &c.prefilter {
            Prefilter::Literals(ac) => c.scan_literals(ac, &lines, f),
            Prefilter::Regex(re) => {
                let len = buf.len();
                let (mut pos, mut line) = (0, 0);
                while let Some(hit) = (pos < len).then(|| re.find_at(buf, pos)).flatten() {
                    line = lines.holding(line, hit.start());
                    let (start, end) = lines.bounds(line);
                    let m = c.classify(&buf[start..end]);
                    if m.is_interesting() {
                        f(line, start, end, m);
                    }
                    pos = end + 1;
                    line += 1;
                }
            }
        }
    }

    /// The first client signature (in KE order, then file order) that the
    /// message contains.
    pub fn classify_client(&self, message: &str) -> Option<ClientMatch> {
        self.sigs.iter().find_map(|k| {
            k.client
                .iter()
                .find(|c| message.contains(&c.signature))
                .map(|c| ClientMatch {
                    ke: k.ke,
                    signature: c.signature.clone(),
                    error: c.error,
                })
        })
    }
}

/// Trimmed, non-empty, single-line ids not already in `existing`, deduplicated.
fn clean_ids<'a>(ids: impl Iterator<Item = &'a str>, existing: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = id.trim();
        if id.is_empty() || id.contains(['\n', '\r']) {
            continue;
        }
        if existing.iter().any(|e| e == id) || out.iter().any(|e| e == id) {
            continue;
        }
        out.push(id.to_string());
    }
    out
}

fn compile(sigs: &Signatures, ke3_ids: &[String]) -> Result<Compiled, String> {
    // Each slot's pattern in `regex` syntax.
    let mut sources: Vec<(usize, String)> = Vec::new();
    for k in sigs.iter() {
        let mut alts: Vec<String> = Vec::new();
        if let Some(p) = &k.server {
            let t = ere::translate(p).map_err(|e| format!("{} server pattern '{p}': {e}", k.ke))?;
            alts.push(t);
        }
        if k.ke == Ke::Ke3 {
            alts.extend(ke3_ids.iter().map(|id| regex::escape(id)));
        }
        if !alts.is_empty() {
            let joined = if alts.len() == 1 {
                alts.remove(0)
            } else {
                alts.iter()
                    .map(|a| format!("(?:{a})"))
                    .collect::<Vec<_>>()
                    .join("|")
            };
            sources.push((k.ke.index(), joined));
        }
    }
    sources.push((ACCESS, regex::escape(ACCESS_LITERAL)));
    sources.push((TO_DEVICE_TRACE, regex::escape(TO_DEVICE_TRACE_LITERAL)));
    sources.push((OTK_UPLOAD, regex::escape(OTK_UPLOAD_LITERAL)));
    let secret = crate::domain::redact::SECRET_LITERALS
        .iter()
        .map(|l| regex::escape(l))
        .collect::<Vec<_>>()
        .join("|");
    sources.push((SECRET, secret));
    // Error patterns go through the same literal search: a KE line runs an
    // error regex only when that pattern's literals are on it.
    for k in sigs.iter() {
        for p in &k.server_errors {
            let t = ere::translate(p)
                .map_err(|e| format!("{} server error pattern '{p}': {e}", k.ke))?;
            sources.push((ERRORS + k.ke.index(), t));
        }
    }

    let mut patterns = Vec::with_capacity(sources.len());
    let mut literals: Vec<Vec<u8>> = Vec::new();
    let mut literal_owners: Vec<Vec<(usize, bool)>> = Vec::new();
    let mut all_have_literals = true;
    for (i, (slot, src)) in sources.iter().enumerate() {
        // Per branch: a branch that is a plain string is a match by itself.
        let req = if i < MAX_LITERAL_PATTERNS {
            literals::required_branches(src).or_else(|| literals::required(src).map(|r| vec![r]))
        } else {
            None
        };
        if let Some(branches) = &req {
            for r in branches {
                for lit in &r.literals {
                    let at = match literals.iter().position(|l| l == lit) {
                        Some(at) => at,
                        None => {
                            literals.push(lit.clone());
                            literal_owners.push(Vec::new());
                            literals.len() - 1
                        }
                    };
                    if !literal_owners[at].contains(&(i, r.exact)) {
                        literal_owners[at].push((i, r.exact));
                    }
                }
            }
        } else if *slot <= ACCESS {
            all_have_literals = false;
        }
        let exact = req.as_ref().is_some_and(|b| b.iter().all(|r| r.exact));
        let regex = if exact {
            None
        } else {
            let context = if *slot >= ERRORS {
                "error pattern"
            } else {
                "pattern"
            };
            Some(build_regex(src).map_err(|e| format!("{context} '{src}': {e}"))?)
        };
        patterns.push(Pattern {
            slot: *slot,
            regex,
            has_literals: req.is_some(),
        });
    }

    // A literal's owners include those of every literal that is a prefix
    // of it: leftmost-longest reports only the longest literal at a
    // position.
    let literal_owners: Vec<Vec<(usize, bool)>> = literals
        .iter()
        .map(|lit| {
            let mut owners: Vec<(usize, bool)> = Vec::new();
            for (k, shorter) in literals.iter().enumerate() {
                if lit.starts_with(shorter) {
                    for &o in &literal_owners[k] {
                        if !owners.contains(&o) {
                            owners.push(o);
                        }
                    }
                }
            }
            owners
        })
        .collect();
    let literals_ac = if literals.is_empty() {
        None
    } else {
        Some(automaton(&literals)?)
    };
    let prefilter = if all_have_literals && literals_ac.is_some() {
        let secret: Vec<bool> = literal_owners
            .iter()
            .map(|owners| owners.iter().all(|&(p, _)| sources[p].0 == SECRET))
            .collect();
        Prefilter::Literals(Box::new(LiteralSearch::new(&literals, &secret)?))
    } else {
        let alternation = sources
            .iter()
            .map(|(_, s)| format!("(?:{s})"))
            .collect::<Vec<_>>()
            .join("|");
        Prefilter::Regex(
            RegexBuilder::new(&alternation)
                .unicode(false)
                .multi_line(true)
                .build()
                .map_err(|e| e.to_string())?,
        )
    };

    Ok(Compiled {
        bits: PatternBits::new(&patterns),
        patterns,
        prefilter,
        literals: literals_ac,
        literal_owners,
    })
}

impl Compiled {
    /// [`Matcher::scan`] with the literal prefilter: the secret literals
    /// are found first, all through the buffer; then the other search
    /// reports every literal (see `literals`), and the first one past a
    /// line's end starts the next interesting line, so no line is searched
    /// twice. A line holding only a secret literal is one too.
    fn scan_literals(
        &self,
        search: &LiteralSearch,
        lines: &Lines<'_>,
        mut f: impl FnMut(usize, usize, usize, LineMatch),
    ) {
        let buf = lines.buf;
        let len = buf.len();
        let all = |g: &LiteralGroup, from: usize| {
            (from < len)
                .then(|| g.finder.find(buf, from..len))
                .flatten()
                .map(|m| (m.start(), m.end(), g.ids[m.pattern().as_usize()]))
        };
        let mut secrets: Vec<(usize, usize, usize)> = Vec::new();
        if let Some(s) = &search.secrets {
            let mut next = all(s, 0);
            while let Some(m) = next {
                secrets.push(m);
                next = all(s, m.0 + 1);
            }
        }
        let find = |from: usize| search.main.as_ref().and_then(|m| all(m, from));
        let mut secrets = secrets.into_iter().peekable();
        let mut next = find(0);
        let mut line = 0;
        loop {
            let first = match (next, secrets.peek()) {
                (Some(m), Some(s)) => m.0.min(s.0),
                (Some(m), None) => m.0,
                (None, Some(s)) => s.0,
                (None, None) => break,
            };
            line = lines.holding(line, first);
            let (start, end) = lines.bounds(line);
            let mut masks = LiteralMasks::default();
            // A literal holding a newline never matches one line.
            let mut add = |(_, lit_end, lit): (usize, usize, usize)| {
                if lit_end <= end {
                    masks.add(&self.literal_owners[lit]);
                }
            };
            while let Some(m) = next.filter(|m| m.0 <= end) {
                add(m);
                next = find(m.0 + 1);
            }
            while let Some(s) = secrets.next_if(|s| s.0 <= end) {
                add(s);
            }
            let lm = self.decide(&buf[start..end], masks);
            if lm.is_interesting() {
                f(line, start, end, lm);
            }
            line += 1;
        }
    }

    /// Classifies one line.
    fn classify(&self, line: &[u8]) -> LineMatch {
        self.decide(line, self.masks_of(line))
    }

    /// The literals on one line, by pattern.
    fn masks_of(&self, line: &[u8]) -> LiteralMasks {
        let mut masks = LiteralMasks::default();
        if let Some(ac) = &self.literals {
            let mut at = 0;
            while at < line.len() {
                let Some(m) = ac.find(Input::new(line).span(at..line.len())) else {
                    break;
                };
                masks.add(&self.literal_owners[m.pattern().as_usize()]);
                at = m.start() + 1;
            }
        }
        masks
    }

    /// Which patterns match a line, given the literals found on it.
    fn decide(&self, line: &[u8], masks: LiteralMasks) -> LineMatch {
        let LiteralMasks { possible, certain } = masks;
        let b = &self.bits;
        // Most lines: the literals decide every pattern, no regex runs.
        if b.complete && b.regex & !certain & (possible | b.no_literals) == 0 {
            let mut out = LineMatch {
                access: certain & b.access != 0,
                to_device_trace: certain & b.to_device_trace != 0,
                otk_upload: certain & b.otk_upload != 0,
                secret_literal: certain & b.secret != 0,
                ..LineMatch::default()
            };
            let mut errors = 0;
            for (i, ke) in Ke::ALL.into_iter().enumerate() {
                if certain & b.kes[i] != 0 {
                    out.kes.insert(ke);
                    errors |= b.errors[i];
                }
            }
            out.error = certain & errors != 0;
            return out;
        }
        self.decide_by_pattern(line, masks)
    }

    /// [`Compiled::decide`] pattern by pattern, regexes run where the
    /// literals leave it open.
    fn decide_by_pattern(&self, line: &[u8], masks: LiteralMasks) -> LineMatch {
        let LiteralMasks { possible, certain } = masks;
        let matches = |i: usize, p: &Pattern| {
            let bit = 1u64.checked_shl(i as u32).unwrap_or(0);
            if certain & bit != 0 {
                true
            } else if p.has_literals && possible & bit == 0 {
                false
            } else {
                p.regex.as_ref().is_some_and(|re| re.is_match(line))
            }
        };
        let mut out = LineMatch::default();
        for (i, p) in self.patterns.iter().enumerate() {
            if p.slot >= ERRORS || !matches(i, p) {
                continue;
            }
            if p.slot == ACCESS {
                out.access = true;
            } else if p.slot == TO_DEVICE_TRACE {
                out.to_device_trace = true;
            } else if p.slot == OTK_UPLOAD {
                out.otk_upload = true;
            } else if p.slot == SECRET {
                out.secret_literal = true;
            } else if let Some(ke) = Ke::from_index(p.slot) {
                out.kes.insert(ke);
            }
        }
        // An error signature counts on a line of its own KE.
        out.error = !out.kes.is_empty()
            && self.patterns.iter().enumerate().any(|(i, p)| {
                p.slot >= ERRORS
                    && Ke::from_index(p.slot - ERRORS).is_some_and(|ke| out.kes.contains(ke))
                    && matches(i, p)
            });
        out
    }
}

#[cfg(test)]
mod tests;
