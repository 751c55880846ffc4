//! KE signatures (`assets/signatures.toml`, embedded; a user file may
//! override) and the one-pass matcher.
//!
//! Matching has `grep -E` semantics: case-sensitive, one physical line at a
//! time, and all KEs are matched in one pass over the input.
//!
//! How `scan` stays fast: every pattern is reduced to a small set of literals
//! that any match must contain (`literals.rs`). One Aho-Corasick search for
//! all of them runs over the whole buffer; only the lines it lands on are
//! classified, and patterns that are plain strings need no regex at all.
//! Patterns with no usable literal fall back to one combined regex over the
//! buffer, which is still a single pass.

mod ere;
mod literals;

use super::ke::{Ke, KeSet};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

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
}

impl LineMatch {
    pub fn is_interesting(&self) -> bool {
        !self.kes.is_empty() || self.error || self.access
    }
}

/// A client message's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMatch {
    pub ke: Ke,
    pub signature: String,
    pub error: bool,
}

/// A plain substring of a client console message (runbook §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSignature {
    pub signature: String,
    /// A message carrying it is an error (highlight it).
    pub error: bool,
}

/// One KE's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeSignatures {
    pub ke: Ke,
    pub title: String,
    /// `grep -E` pattern for homeserver lines; `None` when the file leaves it
    /// empty (KE-3, whose pattern is the harvested event ids).
    pub server: Option<String>,
    /// `grep -E` patterns; a line matching the KE and one of these is an error.
    pub server_errors: Vec<String>,
    /// Client substrings, in the file's order.
    pub client: Vec<ClientSignature>,
}

impl KeSignatures {
    fn empty(ke: Ke) -> Self {
        KeSignatures {
            ke,
            title: ke.meaning().to_string(),
            server: None,
            server_errors: Vec::new(),
            client: Vec::new(),
        }
    }
}

/// Signatures as loaded from TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    kes: [KeSignatures; 4],
    /// Where they came from: `embedded` or the file's path.
    source: String,
}

impl Default for Signatures {
    fn default() -> Self {
        Self::embedded()
    }
}

/// A signatures file that cannot be used; the message names the file, the
/// key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum SignaturesError {
    #[error("{path}: cannot read the signatures file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: [[ke]] number {number}, key '{key}': {problem}: '{value}'")]
    Invalid {
        path: PathBuf,
        /// 1-based position of the `[[ke]]` table.
        number: usize,
        key: String,
        value: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ke: Vec<RawKe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKe {
    id: String,
    title: Option<String>,
    #[serde(default)]
    server: String,
    #[serde(default)]
    server_errors: Vec<String>,
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    signature: String,
    #[serde(default)]
    error: bool,
}

static EMBEDDED_PARSED: LazyLock<Result<Signatures, String>> = LazyLock::new(|| {
    Signatures::from_toml(EMBEDDED, Path::new("embedded signatures.toml"))
        .map_err(|e| e.to_string())
});

impl Signatures {
    /// The signatures shipped in the binary (checked by a unit test).
    pub fn embedded() -> Self {
        match &*EMBEDDED_PARSED {
            Ok(s) => Signatures {
                source: "embedded".into(),
                ..s.clone()
            },
            Err(_) => Signatures::empty(),
        }
    }

    /// No signature at all: nothing matches.
    pub fn empty() -> Self {
        Signatures {
            kes: Ke::ALL.map(KeSignatures::empty),
            source: "empty".into(),
        }
    }

    /// Parses a signatures file (the embedded file's format). Unknown keys,
    /// unknown or repeated KE ids, empty client signatures or error patterns,
    /// and patterns that are not valid `grep -E` expressions are errors. A KE
    /// the file leaves out has no signatures.
    pub fn from_toml(text: &str, path: &Path) -> Result<Signatures, SignaturesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| SignaturesError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let mut kes = Ke::ALL.map(KeSignatures::empty);
        let mut seen = KeSet::default();
        for (i, r) in raw.ke.into_iter().enumerate() {
            let invalid = |key: &str, value: &str, problem: String| SignaturesError::Invalid {
                path: path.to_path_buf(),
                number: i + 1,
                key: key.to_string(),
                value: value.to_string(),
                problem,
            };
            let Some(ke) = Ke::parse(&r.id) else {
                return Err(invalid("id", &r.id, "not a KE id (use KE-1 … KE-4)".into()));
            };
            if seen.contains(ke) {
                return Err(invalid("id", &r.id, format!("{ke} appears more than once")));
            }
            seen.insert(ke);
            let server = Some(r.server).filter(|s| !s.is_empty());
            if let Some(p) = &server {
                compile_ere(p).map_err(|e| invalid("server", p, e))?;
            }
            for p in &r.server_errors {
                if p.is_empty() {
                    return Err(invalid(
                        "server-errors",
                        p,
                        "an empty pattern would match every line".into(),
                    ));
                }
                compile_ere(p).map_err(|e| invalid("server-errors", p, e))?;
            }
            let mut client = Vec::with_capacity(r.client.len());
            for c in r.client {
                if c.signature.is_empty() {
                    return Err(invalid(
                        "client.signature",
                        "",
                        "an empty signature would match every message".into(),
                    ));
                }
                client.push(ClientSignature {
                    signature: c.signature,
                    error: c.error,
                });
            }
            kes[ke.index()] = KeSignatures {
                ke,
                title: r.title.unwrap_or_else(|| ke.meaning().to_string()),
                server,
                server_errors: r.server_errors,
                client,
            };
        }
        Ok(Signatures {
            kes,
            source: path.display().to_string(),
        })
    }

    /// Reads and parses a user signatures file.
    pub fn load(path: &Path) -> Result<Signatures, SignaturesError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignaturesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// `embedded` or the path the signatures were read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn get(&self, ke: Ke) -> &KeSignatures {
        &self.kes[ke.index()]
    }

    /// All four KEs in order.
    pub fn iter(&self) -> impl Iterator<Item = &KeSignatures> {
        self.kes.iter()
    }

    pub fn title(&self, ke: Ke) -> &str {
        &self.get(ke).title
    }

    pub fn server_pattern(&self, ke: Ke) -> Option<&str> {
        self.get(ke).server.as_deref()
    }

    pub fn server_errors(&self, ke: Ke) -> &[String] {
        &self.get(ke).server_errors
    }

    pub fn client_signatures(&self, ke: Ke) -> &[ClientSignature] {
        &self.get(ke).client
    }
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
const ACCESS_LITERAL: &str = "Processed request";

#[derive(Debug)]
struct Pattern {
    /// 0..4 = KE index, 4 = access.
    slot: usize,
    /// `None` for plain-string patterns (a literal hit is a match).
    regex: Option<Regex>,
    /// The pattern's literals are known: no literal on the line, no match.
    has_literals: bool,
}

#[derive(Debug)]
enum Prefilter {
    /// One search for every pattern's required literals.
    Literals(AhoCorasick),
    /// Some pattern has no required literal: a combined regex (multi-line).
    Regex(Regex),
}

#[derive(Debug)]
struct Compiled {
    patterns: Vec<Pattern>,
    prefilter: Prefilter,
    /// Literal search over one line, overlapping, for classification.
    line_literals: Option<AhoCorasick>,
    /// For each literal: (pattern index, the literal alone is a match).
    literal_owners: Vec<Vec<(usize, bool)>>,
    errors: [Option<RegexSet>; 4],
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

    /// Classifies one physical line (no newline).
    pub fn match_line(&self, line: &[u8]) -> LineMatch {
        self.compiled.classify(line)
    }

    /// Calls `f(start, end, match)` for each line of `buf` (lines end with
    /// `\n`; `end` excludes it) that is interesting, in order. Lines that
    /// match nothing are skipped without being examined one by one. A last
    /// line without `\n` is a line.
    pub fn scan(&self, buf: &[u8], mut f: impl FnMut(usize, usize, LineMatch)) {
        let c = &*self.compiled;
        let len = buf.len();
        let mut pos = 0;
        while pos < len {
            let hit = match &c.prefilter {
                Prefilter::Literals(ac) => {
                    ac.find(Input::new(buf).span(pos..len)).map(|m| m.start())
                }
                Prefilter::Regex(re) => re.find_at(buf, pos).map(|m| m.start()),
            };
            let Some(hit) = hit else { break };
            let start = memchr::memrchr(b'\n', &buf[pos..hit]).map_or(pos, |i| pos + i + 1);
            let end = memchr::memchr(b'\n', &buf[hit..]).map_or(len, |i| hit + i);
            let m = c.classify(&buf[start..end]);
            if m.is_interesting() {
                f(start, end, m);
            }
            pos = end + 1;
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

    let mut patterns = Vec::with_capacity(sources.len());
    let mut literals: Vec<Vec<u8>> = Vec::new();
    let mut literal_owners: Vec<Vec<(usize, bool)>> = Vec::new();
    let mut all_have_literals = true;
    for (i, (slot, src)) in sources.iter().enumerate() {
        let req = literals::required(src);
        let exact = req.as_ref().is_some_and(|r| r.exact);
        if let Some(r) = &req {
            for lit in &r.literals {
                let at = match literals.iter().position(|l| l == lit) {
                    Some(at) => at,
                    None => {
                        literals.push(lit.clone());
                        literal_owners.push(Vec::new());
                        literals.len() - 1
                    }
                };
                literal_owners[at].push((i, exact));
            }
        } else {
            all_have_literals = false;
        }
        let regex = if exact {
            None
        } else {
            Some(build_regex(src).map_err(|e| format!("pattern '{src}': {e}"))?)
        };
        patterns.push(Pattern {
            slot: *slot,
            regex,
            has_literals: req.is_some(),
        });
    }

    let line_literals = if literals.is_empty() {
        None
    } else {
        Some(
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&literals)
                .map_err(|e| e.to_string())?,
        )
    };
    let prefilter = if all_have_literals {
        Prefilter::Literals(
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&literals)
                .or_else(|_| {
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostFirst)
                        .build(&literals)
                })
                .map_err(|e| e.to_string())?,
        )
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

    let mut errors: [Option<RegexSet>; 4] = [None, None, None, None];
    for k in sigs.iter() {
        if k.server_errors.is_empty() {
            continue;
        }
        let translated = k
            .server_errors
            .iter()
            .map(|p| {
                ere::translate(p).map_err(|e| format!("{} server error pattern '{p}': {e}", k.ke))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = RegexSetBuilder::new(&translated)
            .unicode(false)
            .build()
            .map_err(|e| format!("{} server error patterns: {e}", k.ke))?;
        errors[k.ke.index()] = Some(set);
    }

    Ok(Compiled {
        patterns,
        prefilter,
        line_literals,
        literal_owners,
        errors,
    })
}

impl Compiled {
    fn classify(&self, line: &[u8]) -> LineMatch {
        // Which patterns may match (a literal is present), and which surely do.
        let mut possible = 0u64;
        let mut certain = 0u64;
        if let Some(ac) = &self.line_literals {
            for m in ac.find_overlapping_iter(line) {
                for &(p, exact) in &self.literal_owners[m.pattern().as_usize()] {
                    possible |= 1 << p;
                    if exact {
                        certain |= 1 << p;
                    }
                }
            }
        }
        let mut out = LineMatch::default();
        for (i, p) in self.patterns.iter().enumerate() {
            let bit = 1u64 << i;
            let matched = if certain & bit != 0 {
                true
            } else if p.has_literals && possible & bit == 0 {
                false
            } else {
                p.regex.as_ref().is_some_and(|re| re.is_match(line))
            };
            if !matched {
                continue;
            }
            if p.slot == ACCESS {
                out.access = true;
            } else if let Some(ke) = Ke::from_index(p.slot) {
                out.kes.insert(ke);
                if !out.error
                    && self.errors[p.slot]
                        .as_ref()
                        .is_some_and(|set| set.is_match(line))
                {
                    out.error = true;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
