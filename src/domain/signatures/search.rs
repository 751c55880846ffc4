//! The buffer-wide literal search: the vector searcher where it runs on
//! its own, else an automaton; split in two (the secret literals apart);
//! and the lines of a buffer whose starts are known.

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

/// One buffer-wide literal search. Where the vector searcher (Teddy) runs
/// on its own, it is called directly: the automaton would only wrap it as
/// its prefilter and confirm each candidate again (on the storm profile
/// about a sixth of the search's time). Both report the same leftmost-longest
/// match from any position, so which one runs changes no result.
#[derive(Debug, Clone)]
pub(super) enum Finder {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Finder {
    /// The vector searcher where it runs on its own, else an automaton.
    pub(super) fn build(literals: &[Vec<u8>]) -> Result<Finder, String> {
        match Finder::packed(literals) {
            Some(s) => Ok(Finder::Packed(s)),
            None => automaton(literals).map(Finder::Automaton),
        }
    }

    /// Teddy is what makes the packed searcher fast; without AVX2, or with
    /// too many or too short literals for it, it would fall back to a slow
    /// search: the automaton then keeps the job.
    fn packed(literals: &[Vec<u8>]) -> Option<aho_corasick::packed::Searcher> {
        #[cfg(target_arch = "x86_64")]
        {
            let shortest = literals.iter().map(Vec::len).min()?;
            if !std::arch::is_x86_feature_detected!("avx2") || literals.len() > 64 || shortest < 4 {
                return None;
            }
            aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                .builder()
                .extend(literals)
                .build()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = literals;
            None
        }
    }

    #[inline]
    pub(super) fn find(
        &self,
        buf: &[u8],
        span: std::ops::Range<usize>,
    ) -> Option<aho_corasick::Match> {
        match self {
            Finder::Packed(s) => s.find_in(buf, aho_corasick::Span::from(span)),
            Finder::Automaton(ac) => ac.find(Input::new(buf).span(span)),
        }
    }
}

/// The automaton for `literals`, leftmost-longest.
pub(super) fn automaton(literals: &[Vec<u8>]) -> Result<AhoCorasick, String> {
    let build = |kind| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(kind)
            .build(literals)
    };
    build(Some(AhoCorasickKind::DFA))
        .or_else(|_| build(None))
        .map_err(|e| e.to_string())
}

/// The buffer-wide literal search, in two: the secret literals (many, and
/// seldom on a line) apart from the rest (few, on nearly every line of a
/// busy log). Together they are too many for Teddy's fast form; apart,
/// the frequent ones get it, and the search that finds next to nothing
/// runs through the buffer without being restarted at every line.
#[derive(Debug)]
pub(super) struct LiteralSearch {
    pub(super) main: Option<LiteralGroup>,
    pub(super) secrets: Option<LiteralGroup>,
}

/// One of the two searches.
#[derive(Debug)]
pub(super) struct LiteralGroup {
    pub(super) finder: Finder,
    /// (Read by the tests: which literal went to which search.)
    #[allow(dead_code)]
    pub(super) literals: Vec<Vec<u8>>,
    /// For each of its literals, the literal's index in
    /// [`Compiled::literal_owners`].
    pub(super) ids: Vec<usize>,
}

impl LiteralSearch {
    /// `secret[k]`: literal `k` is only ever a secret pattern's.
    pub(super) fn new(literals: &[Vec<u8>], secret: &[bool]) -> Result<LiteralSearch, String> {
        let group = |want: bool| -> Result<Option<LiteralGroup>, String> {
            let ids: Vec<usize> = (0..literals.len()).filter(|&k| secret[k] == want).collect();
            if ids.is_empty() {
                return Ok(None);
            }
            let literals: Vec<Vec<u8>> = ids.iter().map(|&k| literals[k].clone()).collect();
            Ok(Some(LiteralGroup {
                finder: Finder::build(&literals)?,
                literals,
                ids,
            }))
        };
        Ok(LiteralSearch {
            main: group(false)?,
            secrets: group(true)?,
        })
    }
}

/// A buffer and where its lines start (as `for_each_line` gives them).
pub(super) struct Lines<'a> {
    pub(super) buf: &'a [u8],
    pub(super) starts: &'a [usize],
}

impl Lines<'_> {
    /// Where line `i` starts and ends (its newline excluded; a last line
    /// without one ends with the buffer).
    #[inline]
    pub(super) fn bounds(&self, i: usize) -> (usize, usize) {
        let end = match self.starts.get(i + 1) {
            Some(&next) => next - 1,
            None if self.buf.ends_with(b"\n") => self.buf.len() - 1,
            None => self.buf.len(),
        };
        (self.starts.get(i).copied().unwrap_or(end), end)
    }

    /// The line holding byte `pos`, looked for from line `from` on (a
    /// line at or before it): scans walk forward, so each line is stepped
    /// over once.
    #[inline]
    pub(super) fn holding(&self, from: usize, pos: usize) -> usize {
        let mut i = from.min(self.starts.len().saturating_sub(1));
        while self.starts.get(i + 1).is_some_and(|&next| next <= pos) {
            i += 1;
        }
        i
    }
}
