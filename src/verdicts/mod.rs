//! The runbook's decision tree (§2, Q1–Q4), answered from the evidence the
//! App holds. Each answer cites its basis as references into the bundle and
//! says "insufficient-evidence" rather than guess.

mod db_time;
mod q1;
mod q2;
mod q2_sfu;
mod q3;
mod q4;
pub mod quote;

use crate::app::event::ArtifactKind;
use crate::app::{App, EvidenceRef};
use crate::model::Row;
use crate::model::db::truthy;
pub use db_time::{CURRENT_STATE_LIMIT_MIN, DbRead, Timing};
pub use q4::metrics::judge as metrics_judge;
pub use q4::{MIN_MINUTE_REQUESTS, MIN_SLOW_REQUESTS, minute_verdict};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub answer: &'static str,
    pub summary: String,
    pub basis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub q1: Verdict,
    pub q2: Verdict,
    pub q3: Verdict,
    pub q4: Verdict,
}

impl Verdicts {
    pub fn iter(&self) -> [(&'static str, &Verdict); 4] {
        [
            ("Q1", &self.q1),
            ("Q2", &self.q2),
            ("Q3", &self.q3),
            ("Q4", &self.q4),
        ]
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (q, v) in self.iter() {
            m.insert(
                q.to_string(),
                json!({"answer": v.answer, "summary": v.summary, "basis": v.basis}),
            );
        }
        Value::Object(m)
    }
}

pub const INSUFFICIENT: &str = "insufficient-evidence";

/// An App about `@a:hs`/`DEV` with a 2 s restart timeout, for unit tests.
#[cfg(test)]
pub(crate) fn test_app() -> App {
    App::new(
        crate::app::Subject {
            user_id: Some("@a:hs".into()),
            device_id: Some("DEV".into()),
            participants: vec![],
        },
        2_000,
    )
}

pub fn decide(app: &App) -> Verdicts {
    Verdicts {
        q1: q1::q1(app),
        q2: q2::q2(app),
        q3: q3::q3(app),
        q4: q4::q4(app),
    }
}

fn refs(v: &[EvidenceRef], n: usize) -> Vec<String> {
    v.iter().take(n).map(|r| r.0.clone()).collect()
}

fn rows<'a>(app: &'a App, query: &str) -> Option<&'a Vec<Row>> {
    app.db.last.as_ref().and_then(|p| p.results.get(query))
}

fn s<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get(key).and_then(|v| v.as_str())
}

fn stored_key(row: &Row) -> Option<String> {
    let raw = row.get("key_json")?;
    let v: Value = match raw {
        Value::String(t) => serde_json::from_str(t).ok()?,
        other => other.clone(),
    };
    crate::domain::har::key_of(&v)
}

/// Why the database's results for `query` are missing, for a summary.
fn db_missing(app: &App, query: &str) -> String {
    if app.db.polls == 0 {
        return "the database was not read".into();
    }
    let problem = app
        .db
        .problems
        .get_key_value(query)
        .or_else(|| app.db.problems.get_key_value("connection"))
        .or_else(|| app.db.problems.iter().next());
    match problem {
        Some((what, why)) => format!("the database could not be read ({what}: {why})"),
        None => format!("the database returned no {query} results"),
    }
}

/// What would name our device, for a summary: the flag, a client file
/// naming it, and the devices of client reports that were not taken (they
/// name another user than `--user-id`).
fn no_device(app: &App) -> String {
    let named: Vec<String> = app
        .artifacts
        .iter()
        .filter(|a| matches!(a.kind, ArtifactKind::Diag | ArtifactKind::ElementLog))
        .filter_map(|a| {
            a.device_id.as_ref().map(|d| {
                format!(
                    "{} names {}/{d}",
                    a.file,
                    a.user_id.as_deref().unwrap_or("(no user)")
                )
            })
        })
        .take(2)
        .collect();
    format!(
        "no device id is known, so nothing can be called our device: pass --device-id and --user-id (or set [call] device-id), or add our client's diag report (lotus-crypto-diag-*.json) or Element Web's rageshake.tar, which name it{}",
        if named.is_empty() {
            String::new()
        } else {
            format!(" ({})", named.join("; "))
        }
    )
}

/// The problem the last poll reported for `query`, if any (`truncated: …`
/// when a list hit the row cap).
fn poll_problem<'a>(app: &'a App, query: &str) -> Option<&'a str> {
    app.db
        .last
        .as_ref()
        .and_then(|p| p.problems.get(query))
        .map(String::as_str)
}

/// ` (set aside as someone else's: d.json, the report is @b:hs's)` when
/// client artefacts named someone else, else nothing: a summary that finds
/// no client evidence says where some went.
fn set_aside_artefacts(app: &App) -> String {
    if app.not_subject.is_empty() {
        return String::new();
    }
    let files: Vec<String> = app
        .not_subject
        .iter()
        .take(3)
        .map(|(file, why)| format!("{file}: {why}"))
        .collect();
    format!(
        " ({} client artefact(s) set aside as not the subject's: {})",
        app.not_subject.len(),
        files.join("; ")
    )
}
