//! The pure heart of callcap: [`App::update`] takes an [`Event`] and returns
//! [`Effect`]s. No IO, no clock reads, no terminal: time arrives on events.

mod attribution;
pub mod checklist;
mod client;
mod db;
pub mod debug_loggers;
pub mod event;
mod evidence;
pub mod metrics;
mod operator;
mod pending;
mod restore;
mod server;
mod sfu;
mod source_state;
pub mod stats;
mod subject;
mod subject_learn;
pub mod view;

pub use db::DbState;
pub use evidence::{EvidenceRef, OffendingKeyInfo, SightingKind, Sightings, Timeout};
pub use operator::{Marker, default_label};
pub use sfu::{SfuParticipant, SfuReport, SfuView};
pub use source_state::SourceInfo;
pub use subject::Subject;

use crate::domain::Ke;
use crate::model::journal_entry::JournalEntry;
use crate::model::server_logs::ServerLogs;
pub use attribution::{Attribution, Owner, TimeRange};
use checklist::{AutoCheck, Checklist};
use chrono::{DateTime, Utc};
use event::{ClientArtifact, Event, ServerStall};
use stats::{MinuteLatency, Occurrences};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Lines kept per pane for display; everything is in the journal anyway.
pub const PANE_CAPACITY: usize = 2000;
/// Evidence references kept per kind (the bundle has the rest).
const EVIDENCE_CAP: usize = 200;
/// Homeserver stalls kept, so memory stays flat on a server whose log is
/// often silent; later ones are counted but neither listed nor weighed by Q4.
const STALL_CAP: usize = 1000;

/// KE-4 timeouts kept (client ones and slow restarts); later ones are
/// neither listed nor classified.
pub const TIMEOUTS_CAP: usize = 10_000;

/// What the loop must do on the App's behalf.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Journal(JournalEntry),
    /// New KE-3 event ids: extend the server matcher, look them up.
    Ke3Ids(Vec<String>),
    Export {
        label: String,
    },
}

/// One line shown in a KE pane.
#[derive(Debug, Clone, PartialEq)]
pub struct PaneLine {
    pub line_no: u64,
    pub ke_line_no: u64,
    pub at: Option<DateTime<Utc>>,
    pub text: String,
    pub error: bool,
    pub tracked: bool,
    /// `server` or `client`.
    pub origin: &'static str,
    /// The server log the line is from, when there are several (shared
    /// with every line of that log: no copy per line).
    pub log: Option<std::sync::Arc<str>>,
}

/// The whole capture state.
#[derive(Debug, Clone)]
pub struct App {
    pub subject: Subject,
    /// Live capture: the span runs from the capture's start to now. Offline
    /// analysis: the span is the evidence's own window.
    pub wall_clock_span: bool,
    pub restart_timeout_ms: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub now: Option<DateTime<Utc>>,
    /// Earliest and latest evidence time seen (log, client, operator).
    pub window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    pub server: [Occurrences; 4],
    pub client: [Occurrences; 4],
    pub panes: [VecDeque<PaneLine>; 4],
    /// Lines ever pushed into each pane: the line at index `k` of a pane has
    /// the stable sequence number `pane_pushed - len + k`, which the view
    /// anchors to while paused (the ring drops lines from the front).
    pub pane_pushed: [u64; 4],
    /// Whether server hits are kept in the panes. Only a view reads the
    /// panes: `analyze` draws none and keeps none (each hit would be
    /// copied once more for nothing).
    pub server_panes: bool,
    pub lines_total: u64,
    pub bytes_total: u64,
    /// The server logs by name: their files, and the log each line number
    /// belongs to.
    pub server_logs: ServerLogs,
    /// Lines of each server log so far (by name).
    pub log_lines: BTreeMap<String, u64>,
    pub server_redactions: u64,
    /// Keyed by `alg:id`; only conflicts of our device: server lines whose
    /// owner line names it, the subject's client reports and HAR files.
    pub offending: BTreeMap<String, OffendingKeyInfo>,
    /// Server KE-1 error lines not attributed to another user or device,
    /// and the first few of them.
    pub own_ke1_errors: u64,
    pub own_ke1_error_refs: Vec<EvidenceRef>,
    /// OTK conflicts the log attributes to another user or device.
    pub foreign_conflicts: u64,
    /// KE-1 and KE-2 evidence by owner (ours, undecided), for Q1 and Q2.
    pub attribution: Attribution,
    /// Client artefacts that name someone else (file → why): listed, fed
    /// to no verdict.
    pub not_subject: BTreeMap<String, String>,
    /// What named our device (`client/<file>`, `server/<lk-jwt>.log:N`),
    /// when the flags and the config did not.
    pub subject_from: Option<String>,
    /// Client files that name another device of our user.
    pub subject_warnings: Vec<String>,
    /// Server evidence kept while no device is known.
    pending_subject: subject_learn::PendingSubject,
    /// What livekit-server and lk-jwt-service logged.
    pub sfu: SfuView,
    /// Request id → (user, device) of recent keys/upload requests.
    upload_owner: server::UploadOwners,
    /// KE-3 event ids with where they were seen.
    pub ke3_ids: BTreeMap<String, Vec<EvidenceRef>>,
    pub timeouts: Vec<Timeout>,
    pub latency: BTreeMap<i64, MinuteLatency>,
    /// Latency minutes before this one are closed.
    latency_open_from: i64,
    pub access_lines: u64,
    /// Homeserver stalls, the first [`STALL_CAP`] of them.
    pub stalls: Vec<ServerStall>,
    /// Stalls seen, kept or not.
    pub stalls_seen: u64,
    /// Evidence of to-device traffic for our device (server side).
    pub to_device_for_us: Vec<EvidenceRef>,
    pub to_device_for_us_count: u64,
    /// Synapse's to-device tracing lines for any device: when there are
    /// some, the tracing is on, so none naming us means none were stored.
    pub to_device_traces: u64,
    /// A few tracing lines naming other devices (evidence the tracing is on).
    pub to_device_other: Vec<EvidenceRef>,
    /// `sendToDevice` requests seen from participants.
    pub send_to_device: u64,
    pub send_to_device_refs: Vec<EvidenceRef>,
    pub artifacts: Vec<ClientArtifact>,
    seen_client: HashSet<u64>,
    pub client_errors: Vec<(Ke, EvidenceRef, String)>,
    pub markers: Vec<Marker>,
    next_marker: u32,
    pub checklist: Checklist,
    pub sources: BTreeMap<String, SourceInfo>,
    pub db: DbState,
    /// The latest notes for the status line (newest last).
    pub notes: VecDeque<(DateTime<Utc>, String, String)>,
    pub exported: Option<String>,
    pub export_error: Option<String>,
    /// DEBUG loggers raised for the capture (`--debug-loggers`).
    pub debug_loggers: Option<debug_loggers::DebugLoggersState>,
    /// Synapse's latency metrics, per minute and servlet.
    pub metrics: metrics::MetricsState,
    /// The server logs' names as pane lines share them.
    log_names: Vec<std::sync::Arc<str>>,
    /// Bumped by every update: what is derived from the App (the verdicts)
    /// is derived again only when it changes.
    revision: u64,
}

impl App {
    pub fn new(subject: Subject, restart_timeout_ms: u32) -> App {
        App {
            subject,
            wall_clock_span: true,
            restart_timeout_ms,
            started_at: None,
            now: None,
            window: (None, None),
            server: Default::default(),
            client: Default::default(),
            panes: Default::default(),
            pane_pushed: [0; 4],
            server_panes: true,
            lines_total: 0,
            bytes_total: 0,
            server_logs: ServerLogs::default(),
            log_lines: BTreeMap::new(),
            server_redactions: 0,
            offending: BTreeMap::new(),
            own_ke1_errors: 0,
            own_ke1_error_refs: Vec::new(),
            foreign_conflicts: 0,
            attribution: Attribution::default(),
            not_subject: BTreeMap::new(),
            subject_from: None,
            subject_warnings: Vec::new(),
            pending_subject: Default::default(),
            sfu: SfuView::default(),
            upload_owner: server::UploadOwners::default(),
            ke3_ids: BTreeMap::new(),
            timeouts: Vec::new(),
            latency: BTreeMap::new(),
            latency_open_from: i64::MIN,
            access_lines: 0,
            stalls: Vec::new(),
            stalls_seen: 0,
            to_device_for_us: Vec::new(),
            to_device_for_us_count: 0,
            to_device_traces: 0,
            to_device_other: Vec::new(),
            send_to_device: 0,
            send_to_device_refs: Vec::new(),
            artifacts: Vec::new(),
            seen_client: HashSet::new(),
            client_errors: Vec::new(),
            markers: Vec::new(),
            next_marker: 1,
            checklist: Checklist::embedded(),
            sources: BTreeMap::new(),
            db: DbState::default(),
            notes: VecDeque::new(),
            exported: None,
            export_error: None,
            debug_loggers: None,
            metrics: metrics::MetricsState::default(),
            log_names: Vec::new(),
            revision: 0,
        }
    }

    /// Changes with every event the App takes (and every restored entry).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        self.revision += 1;
        let mut fx = Vec::new();
        match event {
            Event::Tick { now } => {
                self.tick(now);
                // The clock drives a live capture: its start is the start
                // time the runbook asks to note (ticks once; the measured
                // remote clock offset adds to it when SSH reports one).
                if self.wall_clock_span {
                    let start = self.started_at.unwrap_or(now);
                    let ev = format!(
                        "capture started {} UTC (local clock)",
                        start.format("%Y-%m-%d %H:%M:%S")
                    );
                    self.auto(AutoCheck::StartNoted, &ev, start, &mut fx);
                }
            }
            Event::Server(batch) => self.on_server(*batch),
            Event::Client(artifact) => self.on_client(*artifact, &mut fx),
            Event::Status { source, status, at } => self.on_status(source, status, at, &mut fx),
            Event::Gap {
                source,
                down_ms,
                caught_up_bytes,
                at,
            } => self.on_gap(source, down_ms, caught_up_bytes, at, &mut fx),
            Event::ClockOffset {
                source,
                offset_ms,
                bound_ms,
                at,
            } => self.on_clock_offset(source, offset_ms, bound_ms, at, &mut fx),
            Event::Db(poll) => self.on_db(*poll, &mut fx),
            Event::Note { source, text, at } => {
                self.tick(at);
                self.note(at, &source, text.clone());
                fx.push(Effect::Journal(JournalEntry::Note { at, source, text }));
            }
            Event::Command { cmd, at } => self.on_command(cmd, at, &mut fx),
            Event::Exported { path, at } => {
                self.tick(at);
                self.exported = Some(path.clone());
                self.auto(AutoCheck::BundleWritten, &path, at, &mut fx);
            }
            Event::DebugLoggers { at, update } => self.on_debug_loggers(at, update, &mut fx),
            Event::Metrics { at, report } => self.on_metrics(at, report, &mut fx),
            Event::ExportFailed { reason, at } => {
                self.tick(at);
                self.note(at, "bundle", format!("export failed: {reason}"));
                self.export_error = Some(reason);
            }
        }
        fx
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
    }

    fn widen(&mut self, t: DateTime<Utc>) {
        self.window.0 = Some(self.window.0.map_or(t, |f| f.min(t)));
        self.window.1 = Some(self.window.1.map_or(t, |l| l.max(t)));
    }

    fn note(&mut self, at: DateTime<Utc>, source: &str, text: String) {
        self.notes.push_back((at, source.to_string(), text));
        while self.notes.len() > 50 {
            self.notes.pop_front();
        }
    }

    fn auto(&mut self, what: AutoCheck, evidence: &str, at: DateTime<Utc>, fx: &mut Vec<Effect>) {
        let Some(evidence) = self.debug_loggers_evidence(what, evidence, at) else {
            return;
        };
        let evidence = evidence.as_str();
        for (step, stamp) in self.checklist.observe(what, evidence, at) {
            fx.push(Effect::Journal(JournalEntry::Checklist { step, stamp }));
        }
    }

    /// Whether a line names the tracked user, device or a participant.
    fn is_tracked(&self, text: &str) -> bool {
        self.subject.tracks(text)
    }

    /// The capture's time span: evidence window, else wall-clock span.
    pub fn span(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        if !self.wall_clock_span && self.window.0.is_some() {
            return self.window;
        }
        let start = match (self.window.0, self.started_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let end = match (self.window.1, self.now) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        (start, end)
    }

    /// A server line's reference: `server/homeserver.log:N`, or
    /// `server/<name>.log:N` with several logs.
    pub fn server_ref(&self, line_no: u64) -> String {
        self.server_logs.reference(line_no)
    }

    /// The reference of a KE line: `server/KE-n.log:N` with one log;
    /// with several (whose KE logs are put in time order at the end) the
    /// line in its own log.
    pub fn ke_ref(&self, ke: Ke, ke_line_no: u64, line_no: u64) -> String {
        if ke_line_no > 0 && !self.server_logs.several() {
            format!("server/{}.log:{ke_line_no}", ke.name())
        } else {
            self.server_ref(line_no)
        }
    }

    /// Keeps a timeout, up to [`TIMEOUTS_CAP`]: the list grows by doubling
    /// but never past the cap, so a storm's full list holds no spare room.
    fn keep_timeout(&mut self, t: Timeout) {
        let (len, cap) = (self.timeouts.len(), self.timeouts.capacity());
        if len >= TIMEOUTS_CAP {
            return;
        }
        if len == cap {
            self.timeouts
                .reserve_exact(len.max(8).min(TIMEOUTS_CAP - len));
        }
        self.timeouts.push(t);
    }

    /// Per-KE server counts.
    pub fn server_counts(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.server[i].count)
    }

    pub fn client_counts(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.client[i].count)
    }
}
