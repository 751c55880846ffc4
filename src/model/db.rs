//! Database polls, as the poller reports them and the App, the verdicts and
//! the bundle read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lists are capped at this many rows; the SQL asks for one more to notice.
pub const MAX_ROWS: usize = 10_000;

/// Rows are JSON objects keyed by column name.
pub type Row = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DbChange {
    pub query: String,
    pub added: Vec<Row>,
    pub removed: Vec<Row>,
    pub changed: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbPoll {
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Full results keyed by query name.
    pub results: std::collections::BTreeMap<String, Vec<Row>>,
    /// Only what changed since the previous poll.
    pub changes: Vec<DbChange>,
    /// Queries that failed or were skipped, with the reason (missing table ...).
    pub problems: std::collections::BTreeMap<String, String>,
    /// The SQL actually run, keyed by query name (after column adaptation).
    pub sql: std::collections::BTreeMap<String, String>,
}

impl DbPoll {
    /// A poll known only by its results, as a bundle's `db/first.json` and
    /// `db/last.json` keep them (no changes, problems or SQL).
    pub fn snapshot(
        at: DateTime<Utc>,
        results: std::collections::BTreeMap<String, Vec<Row>>,
    ) -> DbPoll {
        DbPoll {
            at,
            duration_ms: 0,
            results,
            changes: Vec::new(),
            problems: Default::default(),
            sql: Default::default(),
        }
    }
}

/// A whole-number column: a number, or text that reads as one.
pub fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// A boolean column, whichever way the query returns it (`true`, `t`, `1`).
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) => matches!(t.as_str(), "t" | "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}
