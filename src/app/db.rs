//! Database polls into the App: the OTK count and to-device backlog of our
//! device over time, and the first and last snapshot for the verdicts.

use super::checklist::AutoCheck;
use super::{App, Effect};
use crate::model::journal_entry::JournalEntry;
use crate::model::{DbPoll, Row};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbState {
    pub polls: u64,
    pub first: Option<DbPoll>,
    pub last: Option<DbPoll>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub changes: u64,
    pub problems: BTreeMap<String, String>,
    /// (poll time, signed_curve25519 OTK count of our device).
    pub otk_series: Vec<(DateTime<Utc>, i64)>,
    /// (poll time, pending to-device messages for our device).
    pub backlog_series: Vec<(DateTime<Utc>, i64)>,
}

impl App {
    pub(super) fn on_db(&mut self, poll: DbPoll, fx: &mut Vec<Effect>) {
        let at = poll.at;
        self.tick(at);
        self.db.polls += 1;
        self.db.changes += poll.changes.len() as u64;
        self.db.problems = poll.problems.clone();
        if !poll.results.is_empty() {
            self.db.last_ok_at = Some(at);
            let device = self.subject.device_id.clone();
            if let Some(rows) = poll.results.get("otk_counts") {
                let n = rows
                    .iter()
                    .filter(|r| str_field(r, "algorithm") == Some("signed_curve25519"))
                    .filter_map(|r| int_field(r, "count"))
                    .sum();
                self.db.otk_series.push((at, n));
            }
            if let Some(rows) = poll.results.get("device_inbox_pending") {
                let n = rows
                    .iter()
                    .filter(|r| device.is_none() || str_field(r, "device_id") == device.as_deref())
                    .filter(|r| {
                        self.subject.user_id.is_none()
                            || str_field(r, "user_id") == self.subject.user_id.as_deref()
                    })
                    .filter_map(|r| int_field(r, "pending"))
                    .sum();
                self.db.backlog_series.push((at, n));
            }
            self.auto(AutoCheck::Database, "database polled", at, fx);
            if self.db.first.is_none() {
                self.db.first = Some(poll.clone());
            }
        }
        fx.push(Effect::Journal(JournalEntry::DbPoll {
            at,
            duration_ms: poll.duration_ms,
            changes: poll.changes.clone(),
            problems: poll.problems.clone(),
        }));
        if !poll.results.is_empty() {
            self.db.last = Some(poll);
        }
    }
}

fn str_field<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get(key).and_then(|v| v.as_str())
}

fn int_field(row: &Row, key: &str) -> Option<i64> {
    crate::model::db::int(row.get(key))
}
