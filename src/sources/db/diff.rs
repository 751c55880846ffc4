//! Changes between two polls of a query, rows matched by their natural key.

use std::collections::{BTreeMap, HashMap};

use crate::sources::{DbChange, Row};

/// The key of a row: its key columns' values (the whole row when a key
/// column is missing, so nothing is merged by mistake).
fn row_key(key: &[String], row: &Row) -> String {
    let mut parts = Vec::with_capacity(key.len());
    for k in key {
        match row.get(k) {
            Some(v) => parts.push(v.clone()),
            None => return serde_json::Value::Object(row.clone()).to_string(),
        }
    }
    serde_json::Value::Array(parts).to_string()
}

/// Rows added, removed and changed from `old` to `new`, or `None` if equal.
/// `changed` holds the new version of each changed row.
pub fn diff(query: &str, key: &[String], old: &[Row], new: &[Row]) -> Option<DbChange> {
    let old_by_key: HashMap<String, &Row> = old.iter().map(|r| (row_key(key, r), r)).collect();
    let new_keys: std::collections::HashSet<String> = new.iter().map(|r| row_key(key, r)).collect();
    let mut change = DbChange {
        query: query.to_string(),
        ..DbChange::default()
    };
    for r in new {
        match old_by_key.get(&row_key(key, r)) {
            None => change.added.push(r.clone()),
            Some(o) if *o != r => change.changed.push(r.clone()),
            Some(_) => {}
        }
    }
    for r in old {
        if !new_keys.contains(&row_key(key, r)) {
            change.removed.push(r.clone());
        }
    }
    let empty = change.added.is_empty() && change.removed.is_empty() && change.changed.is_empty();
    (!empty).then_some(change)
}

/// Remembers the last successful result of each query.
#[derive(Debug, Clone, Default)]
pub struct Differ {
    keys: BTreeMap<String, Vec<String>>,
    previous: BTreeMap<String, Vec<Row>>,
}

impl Differ {
    /// `keys`: query name → key columns. Queries in `start_empty` diff their
    /// first result against nothing (every row is "added"); the others take
    /// their first result as the baseline and report no change for it.
    pub fn new(keys: BTreeMap<String, Vec<String>>, start_empty: &[&str]) -> Differ {
        let previous = start_empty
            .iter()
            .map(|q| (q.to_string(), Vec::new()))
            .collect();
        Differ { keys, previous }
    }

    /// Diffs each query of `results` against its previous result and keeps
    /// the new one. Queries absent from `results` (failed, skipped) keep their
    /// last good result, so a change made while the database could not be
    /// read shows once when it can again.
    pub fn apply(&mut self, results: &BTreeMap<String, Vec<Row>>) -> Vec<DbChange> {
        let mut changes = Vec::new();
        for (query, rows) in results {
            let key = self.keys.get(query).cloned().unwrap_or_default();
            if let Some(old) = self.previous.get(query) {
                changes.extend(diff(query, &key, old, rows));
            }
            self.previous.insert(query.clone(), rows.clone());
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> Row {
        v.as_object().unwrap().clone()
    }

    fn keys() -> BTreeMap<String, Vec<String>> {
        [(
            "otk".to_string(),
            vec!["algorithm".to_string(), "key_id".to_string()],
        )]
        .into()
    }

    #[test]
    fn added_removed_changed_by_natural_key() {
        let old = vec![
            row(json!({"algorithm": "signed_curve25519", "key_id": "A", "key_json": "1"})),
            row(json!({"algorithm": "signed_curve25519", "key_id": "B", "key_json": "2"})),
        ];
        let new = vec![
            row(json!({"algorithm": "signed_curve25519", "key_id": "B", "key_json": "X"})),
            row(json!({"algorithm": "signed_curve25519", "key_id": "C", "key_json": "3"})),
        ];
        let k = &keys()["otk"];
        let c = diff("otk", k, &old, &new).unwrap();
        assert_eq!(c.added, [new[1].clone()]);
        assert_eq!(c.removed, [old[0].clone()]);
        assert_eq!(c.changed, [new[0].clone()]);
        assert!(diff("otk", k, &new, &new).is_none());
    }

    #[test]
    fn baseline_then_changes_once() {
        let mut d = Differ::new(keys(), &[]);
        let a = row(json!({"algorithm": "x", "key_id": "A"}));
        let b = row(json!({"algorithm": "x", "key_id": "B"}));
        let r1: BTreeMap<_, _> = [("otk".to_string(), vec![a.clone()])].into();
        let r2: BTreeMap<_, _> = [("otk".to_string(), vec![a.clone(), b.clone()])].into();
        assert!(d.apply(&r1).is_empty(), "first result is the baseline");
        let c = d.apply(&r2);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].added, [b]);
        assert!(d.apply(&r2).is_empty(), "reported once");
        // A failed poll (query absent) keeps the baseline.
        assert!(d.apply(&BTreeMap::new()).is_empty());
        let c = d.apply(&r1);
        assert_eq!(c[0].removed.len(), 1);
    }

    #[test]
    fn start_empty_queries_report_first_rows_as_added() {
        let mut d = Differ::new(BTreeMap::new(), &["event_lookup"]);
        let r: BTreeMap<_, _> = [(
            "event_lookup".to_string(),
            vec![row(json!({"event_id": "$a"}))],
        )]
        .into();
        assert_eq!(d.apply(&r)[0].added.len(), 1);
    }

    #[test]
    fn missing_key_column_falls_back_to_whole_row() {
        let k = vec!["nope".to_string()];
        let a = row(json!({"x": 1}));
        let b = row(json!({"x": 2}));
        let c = diff("q", &k, std::slice::from_ref(&a), &[a.clone(), b.clone()]).unwrap();
        assert_eq!(c.added, [b]);
    }
}
