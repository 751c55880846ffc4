//! What flows into the pure [`App`](super::App): everything, including time,
//! arrives as an [`Event`].

use crate::domain::KeSet;
use crate::domain::har::OffendingKey;
use crate::model::{DbPoll, SourceStatus};
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use std::ops::Range;

/// What [`Event::Client`] carries.
pub use crate::model::client::{ArtifactKind, ClientArtifact, ClientEntry, HarConflict};

/// A server line that matched at least one KE, already redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHit {
    /// 1-based line number in `server/homeserver.log`.
    pub line_no: u64,
    /// The record's time (continuation lines inherit the previous record's).
    pub at: Option<DateTime<Utc>>,
    /// Redacted, lossily decoded, shortened for display: where it is in the
    /// batch's [`ServerBatch::texts`] (a batch's texts take one allocation,
    /// not one a line).
    pub text: Range<usize>,
    pub kes: KeSet,
    /// 1-based line number in each `server/KE-n.log` (0 where not matched).
    pub ke_line_no: [u64; 4],
    pub error: bool,
    /// Synapse's `One time key <alg>:<id> already exists` conflict, if any.
    pub offending: Option<std::sync::Arc<OffendingKey>>,
    /// The record's request id (`POST-5688811`) on KE-1 lines that are
    /// records: what attributes a keys/upload conflict to its device (other
    /// KEs leave it out; nothing reads it there).
    pub request: Option<CompactString>,
}

/// One "Processed request" line, reduced to what latency analysis needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessSample {
    pub line_no: u64,
    pub at: DateTime<Utc>,
    pub processing_ms: u32,
    pub status: u16,
    /// `/sync`, `/events` and other long-polls, excluded from latency.
    pub long_poll: bool,
    /// A delayed-event restart (path or body form).
    pub delayed_restart: bool,
    /// Any delayed-event endpoint (`/delayed_events…`: restart, cancel,
    /// send, list).
    pub delayed_event: bool,
    /// A `/sendToDevice/` request.
    pub send_to_device: bool,
    /// Who sent a `/sendToDevice/` request (`None` for `{None}`); other
    /// requests leave it out, as nothing reads it there and the capture
    /// makes a sample of nearly every access line.
    pub requester: Option<String>,
}

/// The result of ingesting one chunk of server log bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerBatch {
    pub source: String,
    /// Lines in `server/homeserver.log` after this batch.
    pub lines_total: u64,
    pub bytes_total: u64,
    /// Log time of the first and last record in this batch.
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub hits: Vec<ServerHit>,
    pub access: Vec<AccessSample>,
    /// Lines with Synapse's to-device tracing (`synapse.9533_debug`) naming a
    /// device: `(line_no, at, user/device text)`.
    pub to_device: Vec<ToDeviceTrace>,
    /// `Adding one_time_keys … for device 'D' for user 'U'` lines: whose
    /// keys/upload each request id is, so a conflict can be attributed.
    pub otk_uploads: Vec<OtkUpload>,
    /// Homeserver stalls completed by this batch (one may have begun in an
    /// earlier batch: its burst is counted across them).
    pub stalls: Vec<ServerStall>,
    pub redactions: u64,
    /// The hits' display texts, one after another.
    pub texts: String,
    /// livekit-server lines reporting a participant's state.
    pub sfu: Vec<SfuSighting>,
    /// lk-jwt-service lines naming a Matrix user, device or identity.
    pub lk_grants: Vec<LkGrant>,
    /// SFU log lines read but not recognised (kept in the log's file).
    pub sfu_unread: u64,
}

/// A livekit-server line about a participant (redacted text, one line).
#[derive(Debug, Clone, PartialEq)]
pub struct SfuSighting {
    pub line_no: u64,
    pub event: crate::domain::sfu_log::SfuEvent,
    pub text: String,
}

/// An lk-jwt-service line: who asked, for which device, what identity
/// LiveKit was told.
#[derive(Debug, Clone, PartialEq)]
pub struct LkGrant {
    pub line_no: u64,
    pub line: crate::domain::sfu_log::LkJwtLine,
}

/// Appends `s` to a buffer of texts; returns where it went.
pub fn push_span(texts: &mut String, s: &str) -> Range<usize> {
    let start = texts.len();
    texts.push_str(s);
    start..texts.len()
}

impl ServerBatch {
    /// Adds a hit's display text; returns where it is.
    pub fn add_text(&mut self, text: &str) -> Range<usize> {
        push_span(&mut self.texts, text)
    }

    /// A hit's display text.
    pub fn text(&self, hit: &ServerHit) -> &str {
        self.texts.get(hit.text.clone()).unwrap_or_default()
    }
}

/// The server log was silent for longer than the restart timeout, then
/// resumed with a burst: the homeserver stalled, which its request times do
/// not show (see [`crate::domain::stall`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStall {
    /// The last record before the silence.
    pub from: DateTime<Utc>,
    /// The first record after it.
    pub to: DateTime<Utc>,
    /// 1-based line number in `server/homeserver.log` of that first record.
    pub line_no: u64,
    /// Records within 1 s of `to`, the first included.
    pub burst: u32,
    /// The burst holds a delayed-event restart access line.
    pub delayed_restart: bool,
}

impl ServerStall {
    pub fn silence_ms(&self) -> i64 {
        (self.to - self.from).num_milliseconds()
    }

    /// `server/homeserver.log:N` (with several logs `server/<name>.log:N`)
    /// of the first record after the silence.
    pub fn evidence(&self, logs: &crate::model::server_logs::ServerLogs) -> String {
        logs.reference(self.line_no)
    }
}

/// Who a `keys/upload` request belongs to (`synapse.handlers.e2e_keys`
/// logs it at INFO before storing the keys, in the same request).
#[derive(Debug, Clone, PartialEq)]
pub struct OtkUpload {
    pub request: CompactString,
    pub user: CompactString,
    pub device: CompactString,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToDeviceTrace {
    pub line_no: u64,
    pub at: Option<DateTime<Utc>>,
    pub text: String,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// The clock: drives elapsed time, rates and redraws.
    Tick {
        now: DateTime<Utc>,
    },
    Server(Box<ServerBatch>),
    Client(Box<ClientArtifact>),
    Status {
        source: String,
        status: SourceStatus,
        at: DateTime<Utc>,
    },
    Gap {
        source: String,
        down_ms: u64,
        caught_up_bytes: u64,
        at: DateTime<Utc>,
    },
    ClockOffset {
        source: String,
        offset_ms: i64,
        bound_ms: u64,
        at: DateTime<Utc>,
    },
    Db(Box<DbPoll>),
    Note {
        source: String,
        text: String,
        at: DateTime<Utc>,
    },
    /// The operator's commands (from the keymap or a prompt).
    Command {
        cmd: Command,
        at: DateTime<Utc>,
    },
    /// The bundle was written.
    Exported {
        path: String,
        at: DateTime<Utc>,
    },
    ExportFailed {
        reason: String,
        at: DateTime<Utc>,
    },
    /// A step of the DEBUG loggers' raise or revert.
    DebugLoggers {
        at: DateTime<Utc>,
        update: super::debug_loggers::DebugLoggersUpdate,
    },
    /// A reading of Synapse's latency metrics.
    Metrics {
        at: DateTime<Utc>,
        report: Box<crate::model::metrics::MetricsReport>,
    },
}

/// Operator commands that change the capture (not the view).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Adds a marker stamped at `at` (the key press), labelled later.
    Mark {
        label: String,
    },
    Relabel {
        id: u32,
        label: String,
    },
    DeleteMarker {
        id: u32,
    },
    /// Ticks or unticks a checklist step (1-based).
    Checklist {
        step: u8,
        done: bool,
    },
    /// Adds KE-3 event ids by hand.
    AddEventIds {
        ids: Vec<String>,
    },
    /// Ask to export with this label.
    Export {
        label: String,
    },
}
