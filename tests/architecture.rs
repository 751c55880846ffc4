//! The architecture as a rule: reads `src/` and fails when a layer imports
//! one it must not, when modules import each other in a circle, or when a
//! file grows past [`MAX_LINES`] lines of non-test code.
//!
//! The layers, and what each may import (besides itself). The table is the
//! rule; change it only when the design changes, and say why in the commit.
//!
//! | layer      | what it holds                                   | may import |
//! |------------|-------------------------------------------------|------------|
//! | `domain`   | KEs, Synapse's log format, reports, redaction   | nothing |
//! | `model`    | data that crosses layers (source status, DB polls, client artefacts, DEBUG-logger steps, journal entries) | domain |
//! | `config`   | config file and keymap                          | domain |
//! | `app`      | the pure App and its view state                 | domain, model, config |
//! | `verdicts` | the runbook's decision tree                     | domain, model, app |
//! | `ui`       | rendering                                       | domain, model, config, app, verdicts |
//! | `sources`  | IO tasks (log sources, database, downloads, SSH) | domain, model, config |
//! | `debug_loggers` | raising and reverting Synapse's DEBUG loggers (over SSH; reports to the App) | domain, model, config, app, sources |
//! | `bundle`   | journal, export, manifest, report, report.html (`bundle::html`), timeline, archive | domain, model, config, app, verdicts, debug_loggers |
//! | `capture`  | lines → matches → journal                       | domain, model, app, bundle |
//! | `check`    | `callcap check`                                 | domain, model, config, sources, debug_loggers |
//! | `cli`      | the command line                                | config |
//! | `analyze`, `recover`, `live`, `demo`, `commands` | the commands that wire it all together (`live` is the console's runner, with replay) | see [`RULES`] |
//!
//! `app` and `ui` import no IO layer (`sources`, `capture`, `bundle`,
//! `live`, the commands). Test code (`#[cfg(test)]` items and the modules
//! they declare) is not held to the layers.
//!
//! A circle is a chain of `use`s (or paths) that comes back to where it
//! started, between modules (files) of which none contains another: a
//! module and its own submodules may use each other (an `impl` split over
//! files, a parent re-exporting a child).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module of `src/` and the top-level modules it may use.
const RULES: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("model", &["domain"]),
    ("config", &["domain"]),
    ("app", &["domain", "model", "config"]),
    ("verdicts", &["domain", "model", "app"]),
    ("ui", &["domain", "model", "config", "app", "verdicts"]),
    ("sources", &["domain", "model", "config"]),
    (
        "debug_loggers",
        &["domain", "model", "config", "app", "sources"],
    ),
    (
        "bundle",
        &[
            "domain",
            "model",
            "config",
            "app",
            "verdicts",
            "debug_loggers",
        ],
    ),
    ("capture", &["domain", "model", "app", "bundle"]),
    (
        "check",
        &["domain", "model", "config", "sources", "debug_loggers"],
    ),
    ("cli", &["config"]),
    (
        "analyze",
        &[
            "domain", "model", "config", "app", "verdicts", "bundle", "capture", "sources", "cli",
        ],
    ),
    (
        "recover",
        &[
            "domain",
            "model",
            "config",
            "app",
            "bundle",
            "capture",
            "debug_loggers",
            "analyze",
        ],
    ),
    (
        "live",
        &[
            "domain",
            "model",
            "config",
            "app",
            "ui",
            "sources",
            "debug_loggers",
            "bundle",
            "capture",
            "check",
            "analyze",
        ],
    ),
    ("demo", &["model", "app", "bundle", "sources", "live"]),
    (
        "commands",
        &[
            "domain",
            "model",
            "config",
            "app",
            "sources",
            "debug_loggers",
            "bundle",
            "check",
            "cli",
            "analyze",
            "recover",
            "live",
            "demo",
        ],
    ),
];

/// Lines of non-test code a file may have.
const MAX_LINES: usize = 600;

#[test]
fn layers_import_only_what_the_table_allows() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let problems = crate_.layer_violations(RULES);
    assert!(
        problems.is_empty(),
        "imports against the layers (see the table in tests/architecture.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_import_circles() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let circles = crate_.circles();
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_file_is_over_the_size_limit() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let big = crate_.oversized(MAX_LINES);
    assert!(
        big.is_empty(),
        "files over {MAX_LINES} lines of non-test code (split them by responsibility):\n{}",
        big.join("\n")
    );
}

#[test]
fn the_table_has_no_circle_and_names_every_layer() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut layers: BTreeSet<&str> = crate_
        .modules
        .keys()
        .filter_map(|m| m.first().map(String::as_str))
        .collect();
    layers.remove("lib");
    layers.remove("main");
    let named: BTreeSet<&str> = RULES.iter().map(|(l, _)| *l).collect();
    let unnamed: Vec<_> = layers.difference(&named).collect();
    assert!(unnamed.is_empty(), "add {unnamed:?} to RULES");
    // Every layer may use only layers listed before it: the table is a
    // one-way order.
    for (i, (layer, allowed)) in RULES.iter().enumerate() {
        for a in *allowed {
            let before = RULES[..i].iter().any(|(l, _)| l == a);
            assert!(
                before,
                "'{layer}' may use '{a}', which is not listed before it"
            );
        }
    }
}

/// The checker finds what it is meant to find (a checker that cannot fail
/// proves nothing).
#[test]
fn the_checker_sees_bad_imports_circles_and_long_files() {
    let files = [
        ("domain/mod.rs", "pub mod ke;\n"),
        // A path in code, a `use` tree with a group, a string and a
        // comment that only look like imports.
        (
            "domain/ke.rs",
            "/// crate::app::App\nfn f() { let s = \"crate::app::App\"; crate::ui::x(); }\n",
        ),
        (
            "app/mod.rs",
            "mod a;\nmod b;\nuse crate::{domain::ke::Ke, model::M};\n#[cfg(test)]\nmod tests { use crate::sources::S; }\n",
        ),
        ("app/a.rs", "use super::b::B;\n"),
        ("app/b.rs", "pub fn g() { super::a::f(); }\n"),
        ("model/mod.rs", "use crate::domain::ke::Ke;\n"),
        (
            "sources/mod.rs",
            "pub mod s;\nuse s::Thing;\n#[cfg(test)]\nmod tests;\n",
        ),
        ("sources/s.rs", "use super::tests::T;\n"),
        ("sources/tests.rs", "use crate::ui::U;\n"),
        (
            "ui/mod.rs",
            "use crate::sources::s::Thing;\nfn a() {}\nfn b() {}\n",
        ),
    ];
    let crate_ = Crate::from_files(files.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    let rules: &[(&str, &[&str])] = &[
        ("domain", &[]),
        ("model", &["domain"]),
        ("app", &["domain", "model"]),
        ("sources", &["domain", "model"]),
        ("ui", &["domain", "app"]),
    ];
    assert_eq!(
        crate_.layer_violations(rules),
        [
            "domain::ke (src/domain/ke.rs) imports ui::x",
            "ui (src/ui/mod.rs) imports sources::s::Thing"
        ]
    );
    assert_eq!(crate_.circles(), ["app::a -> app::b -> app::a"]);
    assert_eq!(
        crate_.oversized(2),
        ["src/app/mod.rs: 3 lines", "src/ui/mod.rs: 3 lines"]
    );
    assert!(crate_.oversized(3).is_empty());
}

/// A module path such as `["app", "view"]` (`src/app/view/mod.rs`).
type ModPath = Vec<String>;

struct Module {
    file: String,
    /// Non-test lines.
    lines: usize,
    /// Declared only for tests (`#[cfg(test)] mod x;`), or inside one.
    test_only: bool,
    /// Paths this module names (`use` trees and paths in code), resolved
    /// to absolute paths from the crate root.
    uses: BTreeSet<ModPath>,
}

struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        let mut dirs = vec![src.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
                    files.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        Crate::from_files(files)
    }

    /// `files`: paths relative to `src/` and their text.
    fn from_files(files: impl IntoIterator<Item = (String, String)>) -> Crate {
        let mut parsed = Vec::new();
        for (file, text) in files {
            let mut path: ModPath = file
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if path.last().is_some_and(|l| l == "mod") {
                path.pop();
            }
            let (tokens, test_lines) = strip_test_items(tokenize(&text));
            parsed.push((path, file, text.lines().count() - test_lines, tokens));
        }
        let known: BTreeSet<ModPath> = parsed.iter().map(|p| p.0.clone()).collect();
        // Modules declared under `#[cfg(test)]`.
        let mut test_roots = BTreeSet::new();
        for (path, _, _, tokens) in &parsed {
            for w in tokens.windows(2) {
                if w[0].test && w[0].text == "mod" {
                    let mut child = path.clone();
                    child.push(w[1].text.clone());
                    test_roots.insert(child);
                }
            }
        }
        let mut modules = BTreeMap::new();
        for (path, file, lines, tokens) in parsed {
            let tokens: Vec<Token> = tokens.into_iter().filter(|t| !t.test).collect();
            let children: BTreeSet<&str> = known
                .iter()
                .filter(|k| k.len() == path.len() + 1 && k.starts_with(&path))
                .map(|k| k[path.len()].as_str())
                .collect();
            let uses = paths(&tokens, &path, &children);
            let test_only = (1..=path.len()).any(|n| test_roots.contains(&path[..n]));
            modules.insert(
                path,
                Module {
                    file: format!("src/{file}"),
                    lines,
                    test_only,
                    uses,
                },
            );
        }
        Crate { modules }
    }

    /// The module a path names: its longest prefix that is a module.
    fn module_of(&self, path: &[String]) -> Option<ModPath> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.modules.contains_key(p))
    }

    fn production(&self) -> impl Iterator<Item = (&ModPath, &Module)> {
        self.modules.iter().filter(|(_, m)| !m.test_only)
    }

    fn layer_violations(&self, rules: &[(&str, &[&str])]) -> Vec<String> {
        let mut out = Vec::new();
        for (path, m) in self.production() {
            let Some(layer) = path.first() else { continue };
            let Some((_, allowed)) = rules.iter().find(|(l, _)| l == layer) else {
                continue;
            };
            for used in &m.uses {
                let Some(other) = used.first() else { continue };
                if other == layer || allowed.contains(&other.as_str()) {
                    continue;
                }
                if rules.iter().any(|(l, _)| l == other) {
                    out.push(format!(
                        "{} ({}) imports {}",
                        path.join("::"),
                        m.file,
                        used.join("::")
                    ));
                }
            }
        }
        out
    }

    /// Module → modules it uses, leaving out its ancestors and descendants.
    fn graph(&self) -> BTreeMap<&ModPath, BTreeSet<ModPath>> {
        let mut g = BTreeMap::new();
        for (path, m) in self.production() {
            let targets = m
                .uses
                .iter()
                .filter_map(|u| self.module_of(u))
                .filter(|t| !t.starts_with(path) && !path.starts_with(t))
                .filter(|t| !self.modules[t].test_only)
                .collect();
            g.insert(path, targets);
        }
        g
    }

    /// Every circle, as `a -> b -> a`, each once.
    fn circles(&self) -> Vec<String> {
        let g = self.graph();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for start in g.keys() {
            // The shortest way back to `start`, by breadth-first search.
            let mut prev: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([*start]);
            let mut found = None;
            while let Some(at) = queue.pop_front() {
                for next in g.get(at).into_iter().flatten() {
                    if next == *start {
                        found = Some(at);
                        break;
                    }
                    if let Some(key) = g.get_key_value(next).map(|(k, _)| *k)
                        && !prev.contains_key(key)
                    {
                        prev.insert(key, at);
                        queue.push_back(key);
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            let Some(mut at) = found else { continue };
            let mut chain = vec![*start];
            let mut back = vec![at];
            while at != *start {
                at = prev[at];
                if at != *start {
                    back.push(at);
                }
            }
            chain.extend(back.into_iter().rev().filter(|m| *m != *start));
            let members: BTreeSet<&ModPath> = chain.iter().copied().collect();
            if seen.insert(members) {
                chain.push(*start);
                out.push(
                    chain
                        .iter()
                        .map(|m| m.join("::"))
                        .collect::<Vec<_>>()
                        .join(" -> "),
                );
            }
        }
        out
    }

    fn oversized(&self, limit: usize) -> Vec<String> {
        let mut big: Vec<&Module> = self
            .production()
            .map(|(_, m)| m)
            .filter(|m| m.lines > limit)
            .collect();
        big.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.file.cmp(&b.file)));
        big.iter()
            .map(|m| format!("{}: {} lines", m.file, m.lines))
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
    /// Part of a `#[cfg(test)]` item.
    test: bool,
}

/// Identifiers, `::` and single punctuation; comments, strings and
/// character literals are dropped (what they say is not an import).
fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let rest = &src[i..];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == b'\n');
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            let open = rest.find('"').unwrap() + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let len = rest[open..]
                .find(&close)
                .map_or(rest.len(), |e| open + e + close.len());
            line += rest[..len].matches('\n').count();
            i += len;
        } else if c == b'"' || rest.starts_with("b\"") {
            i += if c == b'"' { 1 } else { 2 };
            while i < b.len() && b[i] != b'"' {
                line += usize::from(b[i] == b'\n');
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\u{1F600}') or a lifetime.
            let body = &rest[1..];
            let end = if body.starts_with('\\') {
                body.get(2..).and_then(|b| b.find('\'')).map(|e| e + 4)
            } else {
                body.char_indices()
                    .nth(1)
                    .filter(|(_, ch)| *ch == '\'')
                    .map(|(e, _)| e + 2)
            };
            i += end.unwrap_or(1);
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            if b[start].is_ascii_alphabetic() || b[start] == b'_' {
                out.push(Token {
                    text: src[start..i].to_string(),
                    line,
                    test: false,
                });
            }
        } else if rest.starts_with("::") {
            out.push(Token {
                text: "::".into(),
                line,
                test: false,
            });
            i += 2;
        } else {
            let ch = rest.chars().next().unwrap();
            out.push(Token {
                text: ch.to_string(),
                line,
                test: false,
            });
            i += ch.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br##"` …: the number of `#`s.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s).strip_prefix('r')?;
    let hashes = s.len() - s.trim_start_matches('#').len();
    s[hashes..].starts_with('"').then_some(hashes)
}

/// Marks the tokens of every `#[cfg(test)]` item; returns them with the
/// number of lines those items take.
fn strip_test_items(mut tokens: Vec<Token>) -> (Vec<Token>, usize) {
    const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut lines = 0;
    let mut i = 0;
    while i + CFG_TEST.len() <= tokens.len() {
        if !tokens[i..i + CFG_TEST.len()]
            .iter()
            .map(|t| t.text.as_str())
            .eq(CFG_TEST)
        {
            i += 1;
            continue;
        }
        // The item ends at a `;` outside brackets, or with the brace that
        // closes its first block.
        let (start, mut j, mut depth) = (i, i + CFG_TEST.len(), 0i32);
        while j < tokens.len() {
            match tokens[j].text.as_str() {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ";" if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let end = j.min(tokens.len() - 1);
        lines += tokens[end].line - tokens[start].line + 1;
        for t in &mut tokens[start..=end] {
            t.test = true;
        }
        i = end + 1;
    }
    (tokens, lines)
}

/// The absolute paths a module names: `use` trees, and paths in code that
/// start with `crate`, `super`, `self` or a child module's name.
fn paths(tokens: &[Token], here: &[String], children: &BTreeSet<&str>) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].text.as_str();
        let after_colons = i > 0 && tokens[i - 1].text == "::";
        if t == "use" {
            let mut found = Vec::new();
            i = use_tree(tokens, i + 1, Vec::new(), &mut found);
            out.extend(found.iter().filter_map(|p| resolve(p, here, children)));
        } else if !after_colons
            && (matches!(t, "crate" | "super" | "self") || children.contains(t))
            && tokens.get(i + 1).is_some_and(|n| n.text == "::")
        {
            let mut segs = vec![t.to_string()];
            let mut j = i + 1;
            while j + 1 < tokens.len()
                && tokens[j].text == "::"
                && tokens[j + 1]
                    .text
                    .starts_with(|c: char| c.is_alphabetic() || c == '_')
            {
                segs.push(tokens[j + 1].text.clone());
                j += 2;
            }
            out.extend(resolve(&segs, here, children));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one `use` tree from `i`; pushes each leaf's full path.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            "::" | "*" => i += 1,
            "{" => {
                i += 1;
                while i < tokens.len() && tokens[i].text != "}" {
                    i = use_tree(tokens, i, prefix.clone(), out);
                    if i < tokens.len() && tokens[i].text == "," {
                        i += 1;
                    }
                }
                return i + 1;
            }
            "as" => i += 2,
            "," | "}" | ";" => {
                out.push(prefix);
                return if tokens[i].text == ";" { i + 1 } else { i };
            }
            seg => {
                prefix.push(seg.to_string());
                i += 1;
            }
        }
    }
    out.push(prefix);
    i
}

/// A path as written in module `here`, from the crate root; `None` for a
/// path into another crate.
fn resolve(segs: &[String], here: &[String], children: &BTreeSet<&str>) -> Option<ModPath> {
    let first = segs.first()?;
    let mut at: ModPath = match first.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => here.to_vec(),
        c if children.contains(c) => here.to_vec(),
        _ => return None,
    };
    let mut rest = if first == "crate" { &segs[1..] } else { segs };
    while let Some(s) = rest.first() {
        match s.as_str() {
            "super" => {
                at.pop();
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    at.extend(rest.iter().cloned());
    Some(at)
}
