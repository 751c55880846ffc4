//! The Synapse database, polled read-only during the call.
//!
//! - [`run_poller`]: the live source. Spawn it; it sends `Input::DbPoll`
//!   (full results, changes since the previous poll, problems, the SQL run),
//!   `Input::Status` and `Input::Note`, all with `source = "database"`.
//! - [`poll_once`] / [`poll_once_with_notes`]: one read, for
//!   `callcap analyze --db-url`.
//!
//! Read-only in depth: the session is opened with
//! `default_transaction_read_only=on` and `statement_timeout`, each poll is a
//! `REPEATABLE READ READ ONLY` transaction, every value is a `$n` parameter,
//! and at connect the role's write privileges on the tables read are checked
//! (a warning note when it could write; `docs/db-readonly-role.md` shows the
//! SELECT-only role that really enforces it).
//!
//! The queries live in `assets/queries.sql`; at connect they are fitted to
//! the columns information_schema reports (optional columns dropped, queries
//! on absent tables skipped), and the adaptations are reported as notes, as
//! `-- adapted:` lines in [`DbPoll::sql`] and, for skipped queries, in
//! [`DbPoll::problems`].

mod connect;
mod diff;
mod poller;
mod queries;
mod rows;
mod schema;
mod session;

use chrono::Utc;

pub use connect::{ConnectSpec, DbError, PasswordSource, redact_url};
pub use diff::{Differ, diff};
pub use poller::{backoff, run_poller};
pub use queries::{MAX_ROWS, QUERIES_SQL, QueryFileError, QuerySpec};
pub use schema::{Schema, Session};
pub use session::{DbSession, RawPoll, Tracked, split_user_id};

use crate::config::{CallConfig, DatabaseConfig};
use crate::sources::DbPoll;

/// The `source` of every input this module sends.
pub const SOURCE: &str = "database";

/// Query names (keys of [`DbPoll::results`]).
pub const OTK_INVENTORY: &str = "otk_inventory";
pub const OTK_COUNTS: &str = "otk_counts";
pub const FALLBACK_KEYS: &str = "fallback_keys";
pub const DEVICE_INBOX_PENDING: &str = "device_inbox_pending";
pub const DEVICES: &str = "devices";
pub const DELAYED_EVENTS: &str = "delayed_events";
pub const EVENT_LOOKUP: &str = "event_lookup";

/// The embedded queries, parsed.
pub fn query_specs() -> Result<Vec<QuerySpec>, DbError> {
    queries::embedded().map_err(|e| DbError::Config(e.to_string()))
}

/// Connects, runs every query once (and looks up `event_ids` plus
/// `[call] event-ids`), disconnects. `changes` is empty.
pub async fn poll_once(
    db: &DatabaseConfig,
    call: &CallConfig,
    event_ids: &[String],
) -> Result<DbPoll, DbError> {
    poll_once_with_notes(db, call, event_ids, None)
        .await
        .map(|(poll, _)| poll)
}

/// [`poll_once`] through an optional tunnel endpoint, also returning the
/// notes the live poller would show (connection, adaptations, a warning when
/// the role could write).
pub async fn poll_once_with_notes(
    db: &DatabaseConfig,
    call: &CallConfig,
    event_ids: &[String],
    connect_override: Option<(String, u16)>,
) -> Result<(DbPoll, Vec<String>), DbError> {
    let specs = query_specs()?;
    let env = |k: &str| std::env::var(k).ok();
    let tunnel = connect_override.as_ref().map(|(h, p)| (h.as_str(), *p));
    let spec = ConnectSpec::new(db, tunnel, &env)?;
    let tracked = Tracked::from_call(call);
    let mut notes = spec.notes.clone();
    notes.extend(tracked.notes.clone());
    let (mut session, open_notes) = DbSession::open(&spec, &specs).await?;
    notes.extend(open_notes);
    let mut state = poller::PollState::new(&specs);
    let mut ids: Vec<String> = Vec::new();
    for id in call.event_ids.iter().chain(event_ids) {
        let id = id.trim();
        if !id.is_empty() && !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
    }
    let pending = state.pending(&ids);
    let raw = session.poll(&tracked, &pending).await;
    session.close().await;
    let mut poll = state.finish(raw?);
    poll.changes.clear();
    notes.push(format!(
        "database read at {} in {} ms",
        poll.at.with_timezone(&Utc).to_rfc3339(),
        poll.duration_ms
    ));
    Ok((poll, notes))
}

/// Synapse's check for a re-uploaded one-time key: the stored `key_json` and
/// the uploaded key object are the same key if they are equal once their
/// `signatures` are removed. `None` when `stored_key_json` is not JSON.
pub fn one_time_keys_match(stored_key_json: &str, uploaded: &serde_json::Value) -> Option<bool> {
    let mut stored: serde_json::Value = serde_json::from_str(stored_key_json).ok()?;
    let mut uploaded = uploaded.clone();
    for v in [&mut stored, &mut uploaded] {
        if let Some(obj) = v.as_object_mut() {
            obj.remove("signatures");
        }
    }
    Some(stored == uploaded)
}

/// The `key` field of a stored `key_json` (what Q1 compares).
pub fn stored_key(key_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(key_json).ok()?;
    v.get("key")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_time_keys_match_ignores_signatures_only() {
        let stored = r#"{"key":"abc","signatures":{"@a:b":{"ed25519:D":"sig1"}}}"#;
        assert_eq!(
            one_time_keys_match(stored, &json!({"key": "abc", "signatures": {"x": "y"}})),
            Some(true)
        );
        assert_eq!(
            one_time_keys_match(stored, &json!({"key": "abd"})),
            Some(false)
        );
        assert_eq!(one_time_keys_match("not json", &json!({})), None);
        assert_eq!(stored_key(stored).as_deref(), Some("abc"));
    }
}
