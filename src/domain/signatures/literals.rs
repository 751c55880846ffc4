//! Required literals of a regex: a set of strings such that every match of
//! the regex contains at least one of them. A literal search for the set
//! finds every line the regex can match (and some it cannot), which is what
//! lets the scanner skip the rest of the buffer without running a regex.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Largest character class expanded into alternative literals.
const MAX_CLASS: usize = 8;
/// Largest set produced by expanding classes and alternations.
const MAX_SET: usize = 64;

/// The literals a pattern needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Required {
    pub literals: Vec<Vec<u8>>,
    /// The pattern matches exactly when a line contains one of `literals`
    /// (it is an alternation of plain strings), so no regex is needed.
    pub exact: bool,
}

/// Parses `pattern` (already in `regex` syntax) the way the matcher compiles
/// it and returns its required literals, or `None` when some match needs no
/// literal of at least one byte (e.g. `a*`, `.`), or none can be found.
pub(crate) fn required(pattern: &str) -> Option<Required> {
    required_hir(&parse(pattern)?)
}

/// [`required`] for each branch of a top-level alternation (or the whole
/// pattern when it is not one): a branch that is a plain string is a match
/// on its own even when another branch needs the regex. `None` when some
/// branch needs no literal.
pub(crate) fn required_branches(pattern: &str) -> Option<Vec<Required>> {
    let hir = parse(pattern)?;
    match hir.kind() {
        HirKind::Alternation(subs) => subs.iter().map(required_hir).collect(),
        _ => Some(vec![required_hir(&hir)?]),
    }
}

fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

fn required_hir(hir: &Hir) -> Option<Required> {
    let info = analyse(hir);
    let (set, exact) = match info.exact {
        Some(set) => (set, true),
        None => (info.required?, false),
    };
    // A newline inside a literal would defeat the line logic; an empty
    // literal matches everywhere.
    if set.is_empty() || set.iter().any(|l| l.is_empty() || l.contains(&b'\n')) {
        return None;
    }
    Some(Required {
        literals: dedup(set),
        exact,
    })
}

#[derive(Debug, Clone, Default)]
struct Info {
    /// Every string the node can match, when that set is finite and small.
    exact: Option<Vec<Vec<u8>>>,
    /// Every match contains one of these.
    required: Option<Vec<Vec<u8>>>,
}

fn analyse(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty => Info {
            exact: Some(vec![Vec::new()]),
            required: None,
        },
        HirKind::Literal(lit) => Info {
            exact: Some(vec![lit.0.to_vec()]),
            required: None,
        },
        HirKind::Class(class) => Info {
            exact: class_bytes(class).map(|bytes| bytes.into_iter().map(|b| vec![b]).collect()),
            required: None,
        },
        // Zero-width assertions constrain position, so the node is not a plain
        // string; it needs no literal either.
        HirKind::Look(_) => Info::default(),
        HirKind::Capture(cap) => analyse(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = analyse(&rep.sub);
            if rep.min == 1 && rep.max == Some(1) {
                sub
            } else if rep.min >= 1 {
                Info {
                    exact: None,
                    required: best(&sub),
                }
            } else {
                Info::default()
            }
        }
        HirKind::Concat(subs) => concat(subs),
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyse).collect();
            let exact = infos
                .iter()
                .try_fold(Vec::new(), |mut acc, i| {
                    acc.extend(i.exact.clone()?);
                    Some(acc)
                })
                .filter(|s| s.len() <= MAX_SET);
            let required = infos
                .iter()
                .try_fold(Vec::new(), |mut acc, i| {
                    acc.extend(best(i)?);
                    Some(acc)
                })
                .filter(|s| !s.is_empty());
            Info { exact, required }
        }
    }
}

fn concat(subs: &[Hir]) -> Info {
    let mut candidates: Vec<Vec<Vec<u8>>> = Vec::new();
    // The cross product of the current run of exact pieces.
    let mut run: Option<Vec<Vec<u8>>> = Some(vec![Vec::new()]);
    let mut all_exact = true;
    for sub in subs {
        let info = analyse(sub);
        match (&mut run, info.exact) {
            (Some(cur), Some(set)) if cur.len() * set.len() <= MAX_SET => {
                let mut next = Vec::with_capacity(cur.len() * set.len());
                for a in cur.iter() {
                    for b in &set {
                        let mut s = a.clone();
                        s.extend_from_slice(b);
                        next.push(s);
                    }
                }
                *cur = next;
            }
            (_, Some(set)) => {
                // Too many combinations: close the run and start a new one.
                all_exact = false;
                if let Some(cur) = run.take() {
                    candidates.push(cur);
                }
                run = Some(set);
            }
            (_, None) => {
                all_exact = false;
                if let Some(cur) = run.take() {
                    candidates.push(cur);
                }
                if let Some(req) = info.required {
                    candidates.push(req);
                }
                run = Some(vec![Vec::new()]);
            }
        }
    }
    if all_exact {
        return Info {
            exact: run,
            required: None,
        };
    }
    if let Some(cur) = run {
        candidates.push(cur);
    }
    Info {
        exact: None,
        required: candidates.into_iter().max_by_key(|set| score(set)),
    }
}

/// The better of a node's exact set and its required set.
fn best(info: &Info) -> Option<Vec<Vec<u8>>> {
    match (&info.exact, &info.required) {
        (Some(e), Some(r)) => Some(if score(e) >= score(r) {
            e.clone()
        } else {
            r.clone()
        }),
        (Some(e), None) => Some(e.clone()),
        (None, Some(r)) => Some(r.clone()),
        (None, None) => None,
    }
    .filter(|s| score(s).0 > 0)
}

/// Longer shortest literal first, then fewer literals.
fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
    (shortest, std::cmp::Reverse(set.len()))
}

/// The bytes of a small class.
fn class_bytes(class: &Class) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    out.push(b);
                    if out.len() > MAX_CLASS {
                        return None;
                    }
                }
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    if !ch.is_ascii() {
                        return None;
                    }
                    out.push(ch as u8);
                    if out.len() > MAX_CLASS {
                        return None;
                    }
                }
            }
        }
    }
    Some(out)
}

fn dedup(mut set: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    set.sort();
    set.dedup();
    set
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lits(p: &str) -> (Vec<String>, bool) {
        let r = required(p).unwrap();
        (
            r.literals
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
            r.exact,
        )
    }

    #[test]
    fn plain_alternation_is_exact() {
        assert_eq!(
            lits("msc4140|msc4157"),
            (vec!["msc4140".into(), "msc4157".into()], true)
        );
        assert_eq!(lits("sy[tr]_"), (vec!["syr_".into(), "syt_".into()], true));
    }

    #[test]
    fn dots_pick_the_longest_piece() {
        assert_eq!(
            lits("io.element.call.encryption_keys"),
            (vec!["encryption_keys".into()], false)
        );
        assert_eq!(
            lits("keys/upload|One time key .* already exists|OneTimeKey"),
            (
                vec![
                    " already exists".into(),
                    "OneTimeKey".into(),
                    "keys/upload".into()
                ],
                false
            )
        );
    }

    #[test]
    fn branches_that_are_plain_strings_stay_exact() {
        let b = required_branches("keys/upload|One time key .* already exists|OneTimeKey")
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    String::from_utf8_lossy(&r.literals[0]).into_owned(),
                    r.exact,
                )
            })
            .collect::<Vec<_>>();
        assert_eq!(
            b,
            vec![
                ("keys/upload".into(), true),
                (" already exists".into(), false),
                ("OneTimeKey".into(), true)
            ]
        );
        assert!(required_branches("foo|.").is_none());
        assert_eq!(required_branches("a.c").map(|b| b.len()), Some(1));
    }

    #[test]
    fn anchors_make_a_pattern_inexact() {
        assert_eq!(lits("^foo"), (vec!["foo".into()], false));
    }

    #[test]
    fn patterns_matching_without_a_literal_have_none() {
        assert!(required("a*").is_none());
        assert!(required("foo|.").is_none());
        assert!(required("a|").is_none());
        assert!(required("").is_none());
    }

    #[test]
    fn repetition_keeps_the_required_part() {
        assert_eq!(lits("(abc)+d?"), (vec!["abc".into()], false));
        assert_eq!(
            lits(" (4[0-9][0-9]|5[0-9][0-9])!? \"PUT [^ ]*/sendToDevice/").0,
            vec!["/sendToDevice/".to_string()]
        );
    }
}
