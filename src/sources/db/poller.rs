//! The polling task: connect, poll on a timer, diff, report; reconnect with
//! backoff when the database goes away.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::connect::{ConnectSpec, DbError};
use super::diff::Differ;
use super::queries::{self, QuerySpec};
use super::session::{DbSession, RawPoll, Tracked};
use super::{EVENT_LOOKUP, SOURCE};
use crate::config::{CallConfig, DatabaseConfig};
use crate::sources::{DbPoll, Input, Row, SourceStatus};

/// The columns are re-read this often (Synapse may be upgraded mid-call),
/// and at once when a query hits a missing table or column.
const SCHEMA_RECHECK: Duration = Duration::from_secs(60);

/// At most this many KE-3 event ids are looked up in one poll.
const MAX_LOOKUPS_PER_POLL: usize = 200;

/// Delay before reconnect attempt `attempt` (1-based): 0.5 s doubling, 15 s cap.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(15_000))
}

/// Resolves when shutdown is requested or its sender is gone.
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Ids from `[call] event-ids` and the watch channel, trimmed and deduplicated.
fn wanted_ids(config: &[String], live: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    config
        .iter()
        .chain(live)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect()
}

/// State that survives reconnects: baselines, lookups, last problems.
pub(crate) struct PollState {
    differ: Differ,
    /// event id → lookup row, for every id looked up so far.
    looked_up: BTreeMap<String, Row>,
}

impl PollState {
    pub(crate) fn new(specs: &[QuerySpec]) -> PollState {
        let keys = specs
            .iter()
            .map(|s| (s.name.clone(), s.key.clone()))
            .collect();
        PollState {
            differ: Differ::new(keys, &[EVENT_LOOKUP]),
            looked_up: BTreeMap::new(),
        }
    }

    /// Ids still to look up (at most [`MAX_LOOKUPS_PER_POLL`]).
    pub(crate) fn pending(&self, wanted: &[String]) -> Vec<String> {
        wanted
            .iter()
            .filter(|id| !self.looked_up.contains_key(*id))
            .take(MAX_LOOKUPS_PER_POLL)
            .cloned()
            .collect()
    }

    /// Folds new lookups into the accumulated ones (each id is looked up
    /// once), diffs every query against the previous poll, builds the input.
    pub(crate) fn finish(&mut self, mut raw: RawPoll) -> DbPoll {
        if let Some(rows) = raw.results.remove(EVENT_LOOKUP) {
            for r in rows {
                if let Some(id) = r.get("event_id").and_then(|v| v.as_str()) {
                    self.looked_up.insert(id.to_string(), r.clone());
                }
            }
        }
        if !self.looked_up.is_empty() {
            raw.results.insert(
                EVENT_LOOKUP.to_string(),
                self.looked_up.values().cloned().collect(),
            );
        }
        let changes = self.differ.apply(&raw.results);
        DbPoll {
            at: raw.at,
            duration_ms: raw.duration_ms,
            results: raw.results,
            changes,
            problems: raw.problems,
            sql: raw.sql,
        }
    }
}

impl Poller {
    /// Takes a learnt user and device where `[call]` named none; true when
    /// the queries' parameters changed.
    fn learn(&mut self, (user, device): LearntSubject) -> bool {
        let mut changed = false;
        if self.call.device_id.is_none() && device.is_some() {
            self.call.device_id = device;
            changed = true;
        }
        if self.call.user_id.is_none() && user.is_some() {
            self.call.user_id = user;
            changed = true;
        }
        if changed {
            self.tracked = Tracked::from_call(&self.call);
        }
        changed
    }
}

struct Poller {
    db: DatabaseConfig,
    call: CallConfig,
    tracked: Tracked,
    specs: Vec<QuerySpec>,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    event_ids: watch::Receiver<Vec<String>>,
    ids_open: bool,
    /// Our user and device as the capture learnt them (a client file
    /// naming them when `[call]` does not).
    subject: watch::Receiver<LearntSubject>,
    subject_open: bool,
    state: PollState,
    last_status: Option<SourceStatus>,
    last_problems: BTreeMap<String, String>,
    last_open_notes: Vec<String>,
}

/// Why a connected session ended.
enum SessionEnd {
    Shutdown,
    Failed(DbError),
}

impl Poller {
    /// Sends, unless shutdown comes first or the receiver is gone (false).
    async fn send(&mut self, input: Input) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            r = self.tx.send(input) => r.is_ok(),
            _ = shutdown_requested(&mut shutdown) => false,
        }
    }

    async fn status(&mut self, status: SourceStatus) -> bool {
        if self.last_status.as_ref() == Some(&status) {
            return true;
        }
        self.last_status = Some(status.clone());
        self.send(Input::status_now(SOURCE, status)).await
    }

    async fn note(&mut self, text: String) -> bool {
        tracing::debug!(note = %text, "database note");
        self.send(Input::note_now(SOURCE, text)).await
    }

    async fn run(mut self, connect_override: Option<(String, u16)>) {
        if !self.status(SourceStatus::Connecting).await {
            return;
        }
        let env = |k: &str| std::env::var(k).ok();
        let tunnel = connect_override.as_ref().map(|(h, p)| (h.as_str(), *p));
        let spec = match ConnectSpec::new(&self.db, tunnel, &env) {
            Ok(s) => s,
            Err(e) => {
                self.status(SourceStatus::Error {
                    reason: e.to_string(),
                })
                .await;
                return;
            }
        };
        let mut first_notes = spec.notes.clone();
        first_notes.extend(self.tracked.notes.clone());
        if self.db.via_ssh && connect_override.is_none() {
            first_notes.push(
                "via-ssh is set but no tunnel endpoint was given: connecting directly".to_string(),
            );
        }
        for n in first_notes {
            if !self.note(n).await {
                return;
            }
        }

        let mut attempt: u32 = 0;
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            let mut shutdown = self.shutdown.clone();
            let opened = tokio::select! {
                r = DbSession::open(&spec, &self.specs) => r,
                _ = shutdown_requested(&mut shutdown) => break,
            };
            let failure = match opened {
                Ok((session, notes)) => {
                    let fresh: Vec<String> = notes
                        .iter()
                        .filter(|n| !self.last_open_notes.contains(n))
                        .cloned()
                        .collect();
                    self.last_open_notes = notes;
                    for n in fresh {
                        if !self.note(n).await {
                            session.close().await;
                            return;
                        }
                    }
                    if !self.status(SourceStatus::Live).await {
                        session.close().await;
                        return;
                    }
                    match self.poll_session(session).await {
                        SessionEnd::Shutdown => break,
                        SessionEnd::Failed(e) => {
                            attempt = 0;
                            e
                        }
                    }
                }
                Err(e) => e,
            };
            if !failure.is_retryable() {
                self.status(SourceStatus::Error {
                    reason: failure.to_string(),
                })
                .await;
                return;
            }
            attempt = attempt.saturating_add(1);
            let delay = backoff(attempt);
            tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, reason = %failure, "database retry");
            let status = SourceStatus::Reconnecting {
                attempt,
                next_try_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason: failure.to_string(),
            };
            // Always report a new attempt, even with the same reason.
            self.last_status = None;
            if !self.status(status).await {
                return;
            }
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown_requested(&mut shutdown) => break,
            }
        }
        // Shutdown is already requested here, so `send` would give up at
        // once; the last word gets a short grace instead.
        let stopped = Input::status_now(SOURCE, SourceStatus::Stopped);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(stopped)).await;
    }

    /// Polls on `poll-interval` (and at once when new event ids arrive) until
    /// shutdown or an error.
    async fn poll_session(&mut self, mut session: DbSession) -> SessionEnd {
        let period = self
            .db
            .poll_interval
            .as_duration()
            .max(Duration::from_millis(50));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                biased;
                _ = shutdown_requested(&mut shutdown) => {
                    session.close().await;
                    return SessionEnd::Shutdown;
                }
                _ = interval.tick() => {}
                r = self.subject.changed(), if self.subject_open => {
                    if r.is_err() {
                        self.subject_open = false;
                        continue;
                    }
                    let learnt = self.subject.borrow_and_update().clone();
                    if !self.learn(learnt) {
                        continue;
                    }
                    interval.reset();
                }
                r = self.event_ids.changed(), if self.ids_open => {
                    if r.is_err() {
                        self.ids_open = false;
                        continue;
                    }
                    let wanted = wanted_ids(&self.call.event_ids, &self.event_ids.borrow_and_update());
                    if self.state.pending(&wanted).is_empty() {
                        continue;
                    }
                    interval.reset();
                }
            }
            let wanted = wanted_ids(&self.call.event_ids, &self.event_ids.borrow());
            let pending = self.state.pending(&wanted);
            let mut shutdown = self.shutdown.clone();
            let raw = tokio::select! {
                r = session.poll(&self.tracked, &pending) => r,
                _ = shutdown_requested(&mut shutdown) => {
                    // Mid-query: the connection state is unknown, just drop it.
                    return SessionEnd::Shutdown;
                }
            };
            let raw = match raw {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::debug!(reason = %e, "database poll failed");
                    return SessionEnd::Failed(e);
                }
            };
            let poll = self.state.finish(raw);
            if !self.report(poll).await {
                session.close().await;
                return SessionEnd::Shutdown;
            }
            if session.schema_stale || session.schema_age() >= SCHEMA_RECHECK {
                match session.refresh_schema().await {
                    Ok(notes) => {
                        for n in notes {
                            if !self.last_open_notes.contains(&n) {
                                self.last_open_notes.push(n.clone());
                                if !self.note(n).await {
                                    session.close().await;
                                    return SessionEnd::Shutdown;
                                }
                            }
                        }
                    }
                    Err(e) => return SessionEnd::Failed(e),
                }
            }
        }
    }

    /// Sends the poll, notes for problems that appeared or went away, and
    /// the status (stalled when no query could be read).
    async fn report(&mut self, poll: DbPoll) -> bool {
        let mut notes = Vec::new();
        for (q, why) in &poll.problems {
            if self.last_problems.get(q) != Some(why) {
                notes.push(format!("{q}: {why}"));
            }
        }
        for q in self.last_problems.keys() {
            if !poll.problems.contains_key(q) {
                notes.push(format!("{q}: read again"));
            }
        }
        self.last_problems = poll.problems.clone();
        // A query was read if it ran and did not fail (a truncated list counts).
        let read_any = poll.sql.keys().any(|q| {
            poll.problems
                .get(q)
                .is_none_or(|why| why.starts_with("truncated"))
        });
        let status = if read_any {
            SourceStatus::Live
        } else {
            let mut reasons: Vec<String> = poll
                .problems
                .iter()
                .map(|(q, w)| format!("{q}: {w}"))
                .collect();
            reasons.truncate(3);
            SourceStatus::Stalled {
                reason: format!("no query could be read ({})", reasons.join("; ")),
            }
        };
        if !self.send(Input::DbPoll(Box::new(poll))).await {
            return false;
        }
        for n in notes {
            if !self.note(n).await {
                return false;
            }
        }
        self.status(status).await
    }
}

/// Polls the Synapse database until `shutdown` turns true (or its sender is
/// dropped), sending [`Input::DbPoll`], [`Input::Status`] and [`Input::Note`]
/// with `source = "database"` on `tx`. Never returns an error: every failure
/// is reported as a status (retried with backoff) or, for a configuration
/// that cannot work, `SourceStatus::Error` before returning.
///
/// - `connect_override`: `Some(("127.0.0.1", port))` connects there instead of
///   the URL's host and port (an SSH local forward); the password file is
///   still matched against the URL's host and port.
/// - `event_ids`: KE-3 event ids (the full list so far). New ones trigger a
///   poll at once and each is looked up once; `[call] event-ids` are added.
pub async fn run_poller(
    db: DatabaseConfig,
    call: CallConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    connect_override: Option<(String, u16)>,
    event_ids: watch::Receiver<Vec<String>>,
) {
    // Nothing will be learnt: the sender is gone at once.
    let (_, subject) = watch::channel(LearntSubject::default());
    run_poller_learning(db, call, tx, shutdown, connect_override, event_ids, subject).await
}

/// Our user and device as the capture learnt them.
pub type LearntSubject = (Option<String>, Option<String>);

/// [`run_poller`], also told our user and device when the capture learns
/// them from a client file (`[call]` naming none): the device's own rows
/// (one-time keys, fallback key, inbox) are read from then on.
pub async fn run_poller_learning(
    db: DatabaseConfig,
    call: CallConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    connect_override: Option<(String, u16)>,
    event_ids: watch::Receiver<Vec<String>>,
    subject: watch::Receiver<LearntSubject>,
) {
    let specs = match queries::embedded() {
        Ok(s) => s,
        Err(e) => {
            let _ = tx
                .send(Input::status_now(
                    SOURCE,
                    SourceStatus::Error {
                        reason: e.to_string(),
                    },
                ))
                .await;
            return;
        }
    };
    let tracked = Tracked::from_call(&call);
    let poller = Poller {
        state: PollState::new(&specs),
        db,
        call,
        tracked,
        specs,
        tx,
        shutdown,
        event_ids,
        ids_open: true,
        subject,
        subject_open: true,
        last_status: None,
        last_problems: BTreeMap::new(),
        last_open_notes: Vec::new(),
    };
    poller.run(connect_override).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(6), Duration::from_secs(15));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(15));
    }

    #[test]
    fn wanted_ids_merge_config_and_live_without_duplicates() {
        let ids = wanted_ids(&["$a".into(), " ".into()], &["$b".into(), "$a ".into()]);
        assert_eq!(ids, ["$a", "$b"]);
    }
}
