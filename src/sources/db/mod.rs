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
//! # Wiring it into the capture loop
//!
//! ```ignore
//! let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
//! let (ids_tx, ids_rx) = tokio::sync::watch::channel(Vec::<String>::new());
//! // With `via-ssh = true`, forward a local port to the database's address
//! // as the URL names it, and hand the local end over:
//! let tunnel = if db.via_ssh {
//!     let (host, port) = db::database_target(&db)?;
//!     Some(("127.0.0.1".to_string(), ssh.open_local_forward(&host, port).await?))
//! } else {
//!     None
//! };
//! tokio::spawn(db::run_poller(db, call, inputs_tx.clone(), shutdown_rx, tunnel, ids_rx));
//! // A KE-3 event id harvested from a client report:
//! ids_tx.send_modify(|ids| ids.push(event_id));
//! // On exit: the task sends `Status::Stopped` and returns.
//! shutdown_tx.send(true)?;
//! ```
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
pub use poller::{LearntSubject, backoff, run_poller, run_poller_learning};
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

/// The database's host and port as the `[database] url` names them: where
/// an SSH local forward has to point when `via-ssh` is set.
pub fn database_target(db: &DatabaseConfig) -> Result<(String, u16), DbError> {
    let spec = ConnectSpec::new(db, None, &|_| None)?;
    Ok((spec.host().to_string(), spec.port()))
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

    #[test]
    fn database_target_is_the_urls_host_and_port() {
        let db = DatabaseConfig {
            url: "postgres://synapse@10.10.10.44/synapse".into(),
            password_env: None,
            via_ssh: true,
            poll_interval: crate::config::HumanDuration::from_secs(5),
            statement_timeout: crate::config::HumanDuration::from_secs(2),
        };
        assert_eq!(database_target(&db), Ok(("10.10.10.44".to_string(), 5432)));
    }
}
