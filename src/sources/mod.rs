//! IO tasks. Each source only sends [`Input`]s on one bounded channel; none
//! touches the UI or the App state, and none dies silently: failures arrive as
//! [`SourceStatus::Error`] with the reason.

pub mod clock;
pub mod db;
pub mod downloads;
pub mod file;
pub mod replay;
pub mod ssh;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A source's connection state, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SourceStatus {
    Connecting,
    Authenticating,
    /// Bytes can arrive.
    Live,
    /// Connected, but nothing arrives and keepalives fail.
    Stalled {
        reason: String,
    },
    Reconnecting {
        attempt: u32,
        next_try_ms: u64,
        reason: String,
    },
    Error {
        reason: String,
    },
    /// Finished (end of a file being replayed, or shut down).
    Stopped,
}

impl SourceStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SourceStatus::Connecting => "connecting",
            SourceStatus::Authenticating => "authenticating",
            SourceStatus::Live => "live",
            SourceStatus::Stalled { .. } => "stalled",
            SourceStatus::Reconnecting { .. } => "reconnecting",
            SourceStatus::Error { .. } => "error",
            SourceStatus::Stopped => "stopped",
        }
    }
}

/// What a source reports. Server bytes come as arbitrary chunks (not line
/// aligned); the capture stage splits, parses, matches, redacts and journals.
#[derive(Debug, Clone)]
pub enum Input {
    /// Bytes of the homeserver log, in file order.
    ServerChunk {
        source: String,
        bytes: Vec<u8>,
        at: DateTime<Utc>,
    },
    Status {
        source: String,
        status: SourceStatus,
        at: DateTime<Utc>,
    },
    /// The link was down for `down_ms`; `caught_up_bytes` were fetched on resume.
    Gap {
        source: String,
        down_ms: u64,
        caught_up_bytes: u64,
        at: DateTime<Utc>,
    },
    /// Remote clock minus local clock, with the round-trip bound.
    ClockOffset {
        source: String,
        offset_ms: i64,
        bound_ms: u64,
        at: DateTime<Utc>,
    },
    /// A completed client download (diag report or HAR) to pick up.
    ClientFile { path: PathBuf, at: DateTime<Utc> },
    /// One database poll: full results and the changes since the last poll.
    DbPoll(Box<DbPoll>),
    /// A free-form note from a source, shown in the status line and journaled.
    Note {
        source: String,
        text: String,
        at: DateTime<Utc>,
    },
}

impl Input {
    /// A source's new state, stamped with the wall clock.
    pub fn status_now(source: &str, status: SourceStatus) -> Input {
        Input::Status {
            source: source.to_string(),
            status,
            at: Utc::now(),
        }
    }

    /// A note for the status line, stamped with the wall clock.
    pub fn note_now(source: &str, text: String) -> Input {
        Input::Note {
            source: source.to_string(),
            text,
            at: Utc::now(),
        }
    }
}

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
