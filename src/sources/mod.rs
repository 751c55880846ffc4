//! IO tasks. Each source only sends [`Input`]s on one bounded channel; none
//! touches the UI or the App state, and none dies silently: failures arrive as
//! [`SourceStatus::Error`] with the reason.
//!
//! Every log source (the local file in `file.rs`, the file over SSH in
//! `ssh/`) is a [`log_source::LogSource`] run by the one supervisor in
//! `log_source.rs`, which owns reconnects, backoff, gaps and resume
//! positions.

pub mod clock;
pub mod command;
pub mod db;
pub mod docker;
pub mod downloads;
pub mod file;
pub mod journald;
pub mod log_source;
pub mod metrics;
pub mod ssh;

use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// What the sources report carries these; they live in the model layer so
/// that the App does not depend on the sources.
pub use crate::model::{DbChange, DbPoll, Row, SourceStatus};

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
    /// A reading of Synapse's latency metrics, and the raw text behind it
    /// (the file it is appended to, and the bytes); raw text alone when the
    /// answer is kept for re-checking but read for nothing.
    Metrics {
        at: DateTime<Utc>,
        report: Option<Box<crate::model::metrics::MetricsReport>>,
        raw: Option<(String, Vec<u8>)>,
    },
    /// Where a log source stopped: what it would resume from (the
    /// manifest lists it).
    Position {
        source: String,
        position: serde_json::Value,
        at: DateTime<Utc>,
    },
    /// A free-form note from a source, shown in the status line and journaled.
    Note {
        source: String,
        text: String,
        at: DateTime<Utc>,
    },
    /// An operator's entry from a recording, given again by a replay: a
    /// marker, its relabel or deletion, a checklist tick, KE-3 event ids.
    Recorded(Box<crate::model::journal_entry::JournalEntry>),
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
