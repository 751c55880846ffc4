//! What was redacted, by rule: the manifest's `redactions_by_rule` and the
//! report's section. Counts only, never a value; a site rule is named by
//! where it was given, never by its pattern (a pattern may spell the very
//! secret it hides).

use super::journal::FileFacts;
use crate::domain::redact::{Rule, site_rule_name};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Rules in force, in order: (name, what it covers or where it was given,
/// site rule), then any rule a count names that is no longer in force (a
/// recovered journal's).
fn rules(
    facts: &BTreeMap<String, FileFacts>,
    site_rules: &[String],
) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = Rule::ALL
        .iter()
        .map(|r| (r.name().to_string(), r.covers().to_string(), false))
        .collect();
    out.extend(
        site_rules
            .iter()
            .enumerate()
            .map(|(i, origin)| (site_rule_name(i), origin.clone(), true)),
    );
    for f in facts.values() {
        for name in f.by_rule.keys() {
            if !out.iter().any(|(n, _, _)| n == name) {
                out.push((name.clone(), "a rule no longer in force".into(), true));
            }
        }
    }
    out
}

/// Per rule: how many values it replaced in the bundle and in which files.
fn counts<'a>(facts: &'a BTreeMap<String, FileFacts>, rule: &str) -> (u64, BTreeMap<&'a str, u64>) {
    let files: BTreeMap<&str, u64> = facts
        .iter()
        .filter_map(|(path, f)| f.by_rule.get(rule).map(|&n| (path.as_str(), n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    (files.values().sum(), files)
}

/// `{"<rule>": {"count": n, "files": {"<path>": n}}, …}` for every rule in
/// force (site rules also say where they were given).
pub fn by_rule(facts: &BTreeMap<String, FileFacts>, site_rules: &[String]) -> Value {
    let mut m = Map::new();
    for (name, about, site) in rules(facts, site_rules) {
        let (count, files) = counts(facts, &name);
        let mut entry = json!({"count": count, "files": files});
        if site && let Some(obj) = entry.as_object_mut() {
            obj.insert("origin".into(), json!(about));
        }
        m.insert(name, entry);
    }
    Value::Object(m)
}

/// The report's section: a table of rules with counts and files.
pub fn report_section(facts: &BTreeMap<String, FileFacts>, site_rules: &[String]) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "\n## Redactions\n");
    let _ = writeln!(
        r,
        "Every value these rules match was replaced by `<redacted>` before it was written \
         (counts only; a secret on a KE line counts in `server/homeserver.log` and in its KE log).\n"
    );
    let _ = writeln!(r, "| rule | replaced | in | covers |");
    let _ = writeln!(r, "|---|---:|---|---|");
    for (name, about, site) in rules(facts, site_rules) {
        let (count, files) = counts(facts, &name);
        let files = files
            .iter()
            .map(|(p, n)| format!("`{p}` {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let about = if site {
            format!("site rule from {about}")
        } else {
            about
        };
        let _ = writeln!(r, "| `{name}` | {count} | {files} | {about} |");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BTreeMap<String, FileFacts> {
        let f = |rules: &[(&str, u64)]| FileFacts {
            redactions: rules.iter().map(|(_, n)| n).sum(),
            by_rule: rules.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            ..FileFacts::default()
        };
        BTreeMap::from([
            (
                "server/homeserver.log".to_string(),
                f(&[("jwt", 1), ("site-1", 2)]),
            ),
            ("client/a.har".to_string(), f(&[("jwt", 2), ("cookie", 5)])),
            ("report.md".to_string(), f(&[])),
        ])
    }

    #[test]
    fn every_rule_in_force_is_listed_with_its_count_and_files() {
        let v = by_rule(&facts(), &["--redact #1".to_string()]);
        assert_eq!(
            v["jwt"],
            json!({"count": 3, "files": {"client/a.har": 2, "server/homeserver.log": 1}})
        );
        assert_eq!(v["mas-token"], json!({"count": 0, "files": {}}));
        assert_eq!(
            v["site-1"],
            json!({"count": 2, "files": {"server/homeserver.log": 2}, "origin": "--redact #1"})
        );
        assert_eq!(v.as_object().map(|o| o.len()), Some(Rule::ALL.len() + 1));
        let names: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(names.first().map(|s| s.as_str()), Some("synapse-token"));
    }

    #[test]
    fn the_report_lists_rules_and_counts_and_no_pattern() {
        let r = report_section(&facts(), &["--redact #1".to_string()]);
        assert!(
            r.contains("| `jwt` | 3 | `client/a.har` 2, `server/homeserver.log` 1 |"),
            "{r}"
        );
        assert!(
            r.contains("| `site-1` | 2 | `server/homeserver.log` 2 | site rule from --redact #1 |"),
            "{r}"
        );
        assert!(r.contains("| `recovery-key` | 0 |  |"), "{r}");
    }
}
