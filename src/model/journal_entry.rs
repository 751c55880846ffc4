//! The structured half of the journal (`journal.jsonl`): everything the
//! capture learned that is not a server log line, one JSON object a line, in
//! the order it happened. Replaying it (plus the server log) rebuilds the App.

use super::checklist::Stamp;
use super::client::ClientArtifact;
use super::{DbChange, SourceStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JournalEntry {
    Start {
        at: DateTime<Utc>,
        tool_version: String,
        mode: String,
        user_id: Option<String>,
        device_id: Option<String>,
        participants: Vec<String>,
        timezone: String,
    },
    /// The server logs of a capture of several (or of one in a known
    /// format): their names, time zones and formats.
    ServerLogs {
        at: DateTime<Utc>,
        logs: Vec<super::server_logs::LogInfo>,
    },
    Status {
        at: DateTime<Utc>,
        source: String,
        status: SourceStatus,
    },
    Gap {
        at: DateTime<Utc>,
        source: String,
        down_ms: u64,
        caught_up_bytes: u64,
    },
    ClockOffset {
        at: DateTime<Utc>,
        source: String,
        offset_ms: i64,
        bound_ms: u64,
    },
    Client {
        at: DateTime<Utc>,
        artifact: Box<ClientArtifact>,
    },
    Marker {
        at: DateTime<Utc>,
        id: u32,
        label: String,
        checklist_step: Option<u8>,
        last_lines: BTreeMap<String, u64>,
    },
    MarkerRelabel {
        at: DateTime<Utc>,
        id: u32,
        label: String,
    },
    MarkerDelete {
        at: DateTime<Utc>,
        id: u32,
    },
    Checklist {
        step: u8,
        stamp: Stamp,
    },
    DbPoll {
        at: DateTime<Utc>,
        duration_ms: u64,
        changes: Vec<DbChange>,
        problems: BTreeMap<String, String>,
    },
    EventIds {
        at: DateTime<Utc>,
        ids: Vec<String>,
    },
    Note {
        at: DateTime<Utc>,
        source: String,
        text: String,
    },
    Exported {
        at: DateTime<Utc>,
        path: String,
    },
    DebugLoggers {
        at: DateTime<Utc>,
        #[serde(flatten)]
        update: super::debug_loggers::DebugLoggersUpdate,
    },
    /// A reading of Synapse's latency metrics (its raw text is in the file
    /// the report names).
    Metrics {
        at: DateTime<Utc>,
        #[serde(flatten)]
        report: Box<super::metrics::MetricsReport>,
    },
}

impl JournalEntry {
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            JournalEntry::Start { at, .. }
            | JournalEntry::ServerLogs { at, .. }
            | JournalEntry::Status { at, .. }
            | JournalEntry::Gap { at, .. }
            | JournalEntry::ClockOffset { at, .. }
            | JournalEntry::Client { at, .. }
            | JournalEntry::Marker { at, .. }
            | JournalEntry::MarkerRelabel { at, .. }
            | JournalEntry::MarkerDelete { at, .. }
            | JournalEntry::DbPoll { at, .. }
            | JournalEntry::EventIds { at, .. }
            | JournalEntry::Note { at, .. }
            | JournalEntry::Exported { at, .. }
            | JournalEntry::DebugLoggers { at, .. }
            | JournalEntry::Metrics { at, .. } => Some(*at),
            JournalEntry::Checklist { stamp, .. } => Some(stamp.at),
        }
    }
}
