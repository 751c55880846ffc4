//! The embedded query file (`assets/queries.sql`) and its adaptation to the
//! columns a database really has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::schema::Schema;
pub use crate::model::db::MAX_ROWS;

/// The query file, embedded at build time.
pub const QUERIES_SQL: &str = include_str!("../../../assets/queries.sql");

/// What a `$n` placeholder is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `[call] user-id` (text).
    UserId,
    /// `[call] device-id` (text).
    DeviceId,
    /// The user and the participants (text[]).
    Users,
    /// Localparts of the tracked users of our homeserver (text[]).
    Localparts,
    /// KE-3 event ids to look up (text[]).
    EventIds,
}

impl Param {
    fn parse(s: &str) -> Option<Param> {
        Some(match s {
            "user_id" => Param::UserId,
            "device_id" => Param::DeviceId,
            "users" => Param::Users,
            "localparts" => Param::Localparts,
            "event_ids" => Param::EventIds,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Param::UserId => "[call] user-id",
            Param::DeviceId => "[call] device-id",
            Param::Users => "[call] user-id and participants",
            Param::Localparts => "localparts of the tracked users of this homeserver",
            Param::EventIds => "KE-3 event ids not looked up yet",
        }
    }
}

/// One item of a SELECT list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectItem {
    pub expr: String,
    /// `(table, column)` that must exist for the item to stay.
    pub optional: Option<(String, String)>,
}

/// One named query of the file, before adaptation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    pub name: String,
    pub key: Vec<String>,
    pub params: Vec<Param>,
    /// `table -> required columns`.
    pub requires: BTreeMap<String, Vec<String>>,
    /// Text before the SELECT list (comments are stripped).
    pub select: Vec<SelectItem>,
    /// Everything from the `FROM` line on.
    pub tail: String,
    /// Whether the SQL caps the rows with `LIMIT 10001`.
    pub capped: bool,
}

/// A query made to fit a schema: what to run, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedQuery {
    pub spec: QuerySpec,
    /// The SQL to run, with a comment header naming the parameters and the
    /// adaptations. `None` when the query cannot run on this schema.
    pub sql: Option<String>,
    /// Why the query is skipped (missing table or column).
    pub skipped: Option<String>,
    /// Optional columns dropped from the SELECT list, as `table.column`.
    pub dropped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("assets/queries.sql line {line}: {message}")]
pub struct QueryFileError {
    pub line: usize,
    pub message: String,
}

/// Parses the query file. The embedded one is checked by a unit test, so at
/// run time this cannot fail on it.
pub fn parse(text: &str) -> Result<Vec<QuerySpec>, QueryFileError> {
    let mut specs = Vec::new();
    // (line of `-- name:`, name, body lines with their numbers)
    type Block = (usize, String, Vec<(usize, String)>);
    let mut current: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if let Some(name) = line.strip_prefix("-- name:") {
            if let Some((start, name, body)) = current.take() {
                specs.push(parse_block(start, name, &body)?);
            }
            current = Some((lineno, name.trim().to_string(), Vec::new()));
        } else if let Some((_, _, body)) = current.as_mut() {
            body.push((lineno, line.to_string()));
        }
    }
    if let Some((start, name, body)) = current.take() {
        specs.push(parse_block(start, name, &body)?);
    }
    let mut seen = BTreeSet::new();
    for s in &specs {
        if !seen.insert(s.name.clone()) {
            return Err(QueryFileError {
                line: 0,
                message: format!("query '{}' is defined twice", s.name),
            });
        }
    }
    Ok(specs)
}

fn err(line: usize, message: impl Into<String>) -> QueryFileError {
    QueryFileError {
        line,
        message: message.into(),
    }
}

fn parse_block(
    start: usize,
    name: String,
    body: &[(usize, String)],
) -> Result<QuerySpec, QueryFileError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(start, format!("bad query name '{name}'")));
    }
    let mut key = Vec::new();
    let mut params = Vec::new();
    let mut requires = BTreeMap::new();
    let mut select = Vec::new();
    let mut tail = Vec::new();
    enum State {
        Head,
        Select,
        Tail,
    }
    let mut state = State::Head;
    for (lineno, line) in body {
        let lineno = *lineno;
        let trimmed = line.trim();
        match state {
            State::Head => {
                if let Some(v) = trimmed.strip_prefix("-- key:") {
                    key = split_list(v);
                } else if let Some(v) = trimmed.strip_prefix("-- params:") {
                    for p in split_list(v) {
                        params.push(
                            Param::parse(&p)
                                .ok_or_else(|| err(lineno, format!("unknown param '{p}'")))?,
                        );
                    }
                } else if let Some(v) = trimmed.strip_prefix("-- requires:") {
                    parse_requires(v, lineno, &mut requires)?;
                } else if trimmed == "SELECT" {
                    state = State::Select;
                } else if !(trimmed.is_empty() || trimmed.starts_with("--")) {
                    return Err(err(lineno, "expected a line `SELECT` to start the query"));
                }
            }
            State::Select => {
                if trimmed.starts_with("FROM ") {
                    tail.push(line.clone());
                    state = State::Tail;
                } else if !trimmed.is_empty() {
                    select.push(parse_item(trimmed, lineno)?);
                }
            }
            State::Tail => {
                if !trimmed.starts_with("--") {
                    tail.push(line.clone());
                }
            }
        }
    }
    if select.is_empty() {
        return Err(err(start, format!("query '{name}' has no SELECT list")));
    }
    if !matches!(state, State::Tail) {
        return Err(err(start, format!("query '{name}' has no FROM line")));
    }
    if key.is_empty() {
        return Err(err(start, format!("query '{name}' has no `-- key:`")));
    }
    while tail.last().is_some_and(|l| l.trim().is_empty()) {
        tail.pop();
    }
    let tail = tail.join("\n");
    let capped = tail.contains(&format!("LIMIT {}", MAX_ROWS + 1));
    Ok(QuerySpec {
        name,
        key,
        params,
        requires,
        select,
        tail,
        capped,
    })
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `table(col, col), table2(col)`.
fn parse_requires(
    v: &str,
    lineno: usize,
    out: &mut BTreeMap<String, Vec<String>>,
) -> Result<(), QueryFileError> {
    let mut rest = v.trim();
    while !rest.is_empty() {
        let open = rest
            .find('(')
            .ok_or_else(|| err(lineno, "requires: expected table(col, …)"))?;
        let close = rest
            .find(')')
            .ok_or_else(|| err(lineno, "requires: missing ')'"))?;
        if close < open {
            return Err(err(lineno, "requires: ')' before '('"));
        }
        let table = rest[..open].trim().to_string();
        let cols = split_list(&rest[open + 1..close]);
        out.entry(table).or_default().extend(cols);
        rest = rest[close + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim();
    }
    Ok(())
}

fn parse_item(line: &str, lineno: usize) -> Result<SelectItem, QueryFileError> {
    let (code, comment) = match line.find("--") {
        Some(i) => (&line[..i], Some(line[i + 2..].trim())),
        None => (line, None),
    };
    let expr = code.trim().trim_end_matches(',').trim().to_string();
    if expr.is_empty() {
        return Err(err(lineno, "empty SELECT item"));
    }
    let optional = match comment.and_then(|c| c.strip_prefix("optional:")) {
        Some(dep) => {
            let (t, c) = dep
                .trim()
                .split_once('.')
                .ok_or_else(|| err(lineno, "optional: expected table.column"))?;
            Some((t.trim().to_string(), c.trim().to_string()))
        }
        None => None,
    };
    Ok(SelectItem { expr, optional })
}

impl fmt::Display for QuerySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl QuerySpec {
    /// Fits the query to `schema`: drops absent optional columns, or skips
    /// the query when a required table or column is absent.
    pub fn plan(&self, schema: &Schema) -> PlannedQuery {
        let mut missing = Vec::new();
        for (table, cols) in &self.requires {
            if !schema.has_table(table) {
                missing.push(format!(
                    "table {table} not found (absent in this Synapse version, or not readable by this role)"
                ));
                continue;
            }
            for c in cols {
                if !schema.has_column(table, c) {
                    missing.push(format!("column {table}.{c} not found"));
                }
            }
        }
        if !missing.is_empty() {
            return PlannedQuery {
                spec: self.clone(),
                sql: None,
                skipped: Some(missing.join("; ")),
                dropped: Vec::new(),
            };
        }
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for item in &self.select {
            match &item.optional {
                Some((t, c)) if !schema.has_column(t, c) => dropped.push(format!("{t}.{c}")),
                _ => kept.push(item.expr.as_str()),
            }
        }
        let mut sql = String::new();
        sql.push_str(&format!("-- {}", self.name));
        for (i, p) in self.params.iter().enumerate() {
            sql.push_str(&format!(
                "{} ${} = {}",
                if i == 0 { ":" } else { "," },
                i + 1,
                p.describe()
            ));
        }
        sql.push('\n');
        for d in &dropped {
            sql.push_str(&format!(
                "-- adapted: column {d} is absent here, dropped from the SELECT list\n"
            ));
        }
        sql.push_str("SELECT\n    ");
        sql.push_str(&kept.join(",\n    "));
        sql.push('\n');
        sql.push_str(&self.tail);
        PlannedQuery {
            spec: self.clone(),
            sql: Some(sql),
            skipped: None,
            dropped,
        }
    }

    /// Every table the query reads, required or optional.
    pub fn tables(&self) -> BTreeSet<String> {
        let mut t: BTreeSet<String> = self.requires.keys().cloned().collect();
        for item in &self.select {
            if let Some((table, _)) = &item.optional {
                t.insert(table.clone());
            }
        }
        t
    }
}

/// The embedded queries. The file is checked by a unit test; if it were ever
/// broken this returns the error instead of panicking.
pub fn embedded() -> Result<Vec<QuerySpec>, QueryFileError> {
    parse(QUERIES_SQL)
}

/// Every table the embedded queries read (for privileges and the role SQL).
pub fn tables_read(specs: &[QuerySpec]) -> BTreeSet<String> {
    specs.iter().flat_map(|s| s.tables()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn schema(cols: &[(&str, &[&str])]) -> Schema {
        let mut s = Schema::default();
        for (t, cs) in cols {
            for c in *cs {
                s.insert(t, c);
            }
        }
        s
    }

    fn current() -> Schema {
        schema(&[
            (
                "e2e_one_time_keys_json",
                &[
                    "user_id",
                    "device_id",
                    "algorithm",
                    "key_id",
                    "ts_added_ms",
                    "key_json",
                ],
            ),
            (
                "e2e_fallback_keys_json",
                &[
                    "user_id",
                    "device_id",
                    "algorithm",
                    "key_id",
                    "key_json",
                    "used",
                ],
            ),
            (
                "device_inbox",
                &["user_id", "device_id", "stream_id", "message_json"],
            ),
            (
                "devices",
                &[
                    "user_id",
                    "device_id",
                    "display_name",
                    "last_seen",
                    "ip",
                    "user_agent",
                    "hidden",
                ],
            ),
        ])
    }

    #[test]
    fn embedded_file_parses_with_every_expected_query() {
        let specs = embedded().unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "otk_inventory",
                "otk_counts",
                "fallback_keys",
                "device_inbox_pending",
                "devices",
                "delayed_events",
                "event_lookup"
            ]
        );
        for s in &specs {
            assert!(!s.params.is_empty(), "{s} binds nothing");
            // Every placeholder is declared and every declared param is used.
            for i in 1..=s.params.len() {
                assert!(s.tail.contains(&format!("${i}")), "{s}: ${i} unused");
            }
            assert!(!s.tail.contains(&format!("${}", s.params.len() + 1)), "{s}");
            // Keys name real output columns.
            let outputs: Vec<String> = s.select.iter().map(|i| output_name(&i.expr)).collect();
            for k in &s.key {
                assert!(outputs.contains(k), "{s}: key {k} not selected");
            }
        }
        // Lists that can grow are capped.
        for name in [
            "otk_inventory",
            "fallback_keys",
            "device_inbox_pending",
            "devices",
            "delayed_events",
        ] {
            assert!(specs.iter().any(|s| s.name == name && s.capped), "{name}");
        }
    }

    fn full_schema(s: &QuerySpec) -> Schema {
        let mut schema = Schema::default();
        for (t, cols) in &s.requires {
            for c in cols {
                schema.insert(t, c);
            }
        }
        for item in &s.select {
            if let Some((t, c)) = &item.optional {
                schema.insert(t, c);
            }
        }
        schema
    }

    fn output_name(expr: &str) -> String {
        match expr.rsplit_once(" AS ") {
            Some((_, alias)) => alias.trim().to_string(),
            None => expr.rsplit('.').next().unwrap_or(expr).trim().to_string(),
        }
    }

    #[test]
    fn no_quoted_values_besides_constants() {
        // Ids must never be spliced: the only string literals are constants.
        for s in embedded().unwrap() {
            let sql = s.plan(&full_schema(&s)).sql.unwrap();
            for lit in sql.split('\'').skip(1).step_by(2) {
                assert!(
                    ["signed_curve25519", "content", "algorithm", "null"].contains(&lit),
                    "{s}: unexpected literal '{lit}'"
                );
            }
        }
    }

    #[test]
    fn fallback_keys_drops_ts_added_ms_on_current_schema_and_keeps_it_on_old() {
        let specs = embedded().unwrap();
        let fb = specs.iter().find(|s| s.name == "fallback_keys").unwrap();
        let p = fb.plan(&current());
        assert_eq!(p.dropped, ["e2e_fallback_keys_json.ts_added_ms"]);
        let sql = p.sql.unwrap();
        assert!(!sql.contains("\n    ts_added_ms"), "{sql}");
        assert!(sql.contains("-- adapted: column e2e_fallback_keys_json.ts_added_ms is absent"));
        assert!(sql.contains("    used,\n    key_json\nFROM"), "{sql}");

        let mut old = current();
        old.insert("e2e_fallback_keys_json", "ts_added_ms");
        let p = fb.plan(&old);
        assert!(p.dropped.is_empty());
        assert!(p.sql.unwrap().contains("    ts_added_ms,\n    key_json"));
    }

    #[test]
    fn devices_last_item_dropped_leaves_valid_list() {
        let specs = embedded().unwrap();
        let d = specs.iter().find(|s| s.name == "devices").unwrap();
        let sql = d.plan(&current()).sql.unwrap();
        assert!(sql.contains("    hidden\nFROM devices"), "{sql}");
    }

    #[test]
    fn missing_table_skips_with_reason() {
        let specs = embedded().unwrap();
        let d = specs.iter().find(|s| s.name == "delayed_events").unwrap();
        let p = d.plan(&current());
        assert!(p.sql.is_none());
        assert!(
            p.skipped
                .unwrap()
                .contains("table delayed_events not found")
        );
    }

    #[test]
    fn missing_required_column_skips_with_reason() {
        let specs = embedded().unwrap();
        let fb = specs.iter().find(|s| s.name == "fallback_keys").unwrap();
        let s = schema(&[(
            "e2e_fallback_keys_json",
            &["user_id", "device_id", "algorithm", "key_id", "key_json"],
        )]);
        assert_eq!(
            fb.plan(&s).skipped.as_deref(),
            Some("column e2e_fallback_keys_json.used not found")
        );
    }

    #[test]
    fn bad_files_are_errors_with_line_numbers() {
        let e = parse("-- name: x\n-- key: a\nSELECT\n    a\n").unwrap_err();
        assert!(e.message.contains("no FROM"), "{e}");
        let e = parse("-- name: x\n-- params: nope\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("-- name: x\nDELETE FROM t\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn tables_read_lists_required_and_optional_tables() {
        let t = tables_read(&embedded().unwrap());
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        assert_eq!(
            t,
            [
                "delayed_events",
                "device_inbox",
                "devices",
                "e2e_fallback_keys_json",
                "e2e_one_time_keys_json",
                "event_json",
                "events",
                "redactions"
            ]
        );
    }
}
