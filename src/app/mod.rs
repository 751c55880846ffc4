//! The pure heart of callcap: [`App::update`] takes an [`Event`] and returns
//! [`Effect`]s. No IO, no clock reads, no terminal: time arrives on events.

mod attribution;
pub mod checklist;
mod client;
mod db;
pub mod debug_loggers;
pub mod event;
mod server;
pub mod stats;
pub mod view;

use crate::bundle::journal_entry::JournalEntry;
use crate::domain::Ke;
use crate::sources::{DbPoll, SourceStatus};
pub use attribution::{Attribution, Owner, TimeRange};
use checklist::{AutoCheck, Checklist};
use chrono::{DateTime, Utc};
use event::{ClientArtifact, Command, Event, ServerStall};
use serde::Serialize;
use stats::{MinuteLatency, Occurrences};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Lines kept per pane for display; everything is in the journal anyway.
pub const PANE_CAPACITY: usize = 2000;
/// Evidence references kept per kind (the bundle has the rest).
const EVIDENCE_CAP: usize = 200;
/// Homeserver stalls kept, so memory stays flat on a server whose log is
/// often silent; later ones are counted but neither listed nor weighed by Q4.
const STALL_CAP: usize = 1000;

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

/// Who the capture is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Subject {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub participants: Vec<String>,
}

impl Subject {
    /// Strings whose presence marks a line as about the tracked people.
    pub fn needles(&self) -> Vec<String> {
        let mut v: Vec<String> = self.user_id.iter().cloned().collect();
        v.extend(self.device_id.iter().cloned());
        for p in &self.participants {
            // `@user:hs/DEVICE` names a device too.
            match p.split_once('/') {
                Some((u, d)) => {
                    v.push(u.to_string());
                    v.push(d.to_string());
                }
                None => v.push(p.clone()),
            }
        }
        v.retain(|s| !s.is_empty());
        v
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub id: u32,
    pub at: DateTime<Utc>,
    pub label: String,
    pub checklist_step: Option<u8>,
    pub last_lines: BTreeMap<String, u64>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceInfo {
    pub status: SourceStatus,
    pub since: DateTime<Utc>,
    pub last_data_at: Option<DateTime<Utc>>,
    pub gaps: u32,
    pub clock_offset_ms: Option<i64>,
    pub clock_bound_ms: Option<u64>,
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
}

/// A reference to evidence: `file:line` or `file#entries[N]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EvidenceRef(pub String);

/// A one-time key id the server refused, with what is known about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OffendingKeyInfo {
    pub algorithm: String,
    pub key_id: String,
    /// Conflicts seen in the server log, client reports and HAR files. One
    /// refused upload usually shows in all three, so they are not summed.
    pub seen: Sightings,
    pub first_at: Option<DateTime<Utc>>,
    /// The `key` the server said it holds (from the error text).
    pub stored_key: Option<String>,
    /// The `key` the client uploaded (error text or HAR request).
    pub uploaded_key: Option<String>,
    /// The first few references of each kind (server, client report, HAR),
    /// so a storm in the server log does not crowd out the client's side.
    pub evidence: Vec<EvidenceRef>,
}

/// How often an offending key was seen, per kind of evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sightings {
    pub server: u64,
    pub client: u64,
    pub har: u64,
}

/// References kept per kind of evidence for one offending key.
const OFFENDING_REFS_PER_KIND: usize = 3;

/// Where a sighting of an offending key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingKind {
    Server,
    Client,
    Har,
}

impl OffendingKeyInfo {
    /// Counts one sighting and keeps its reference while its kind has fewer
    /// than [`OFFENDING_REFS_PER_KIND`].
    pub fn sighting(&mut self, kind: SightingKind, r: EvidenceRef) {
        let n = match kind {
            SightingKind::Server => &mut self.seen.server,
            SightingKind::Client => &mut self.seen.client,
            SightingKind::Har => &mut self.seen.har,
        };
        *n += 1;
        if *n <= OFFENDING_REFS_PER_KIND as u64 {
            self.evidence.push(r);
        }
    }
}

/// A KE-4 timeout seen by the client or implied by a slow restart request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeout {
    pub at: DateTime<Utc>,
    /// `client` or `server`.
    pub origin: &'static str,
    pub evidence: EvidenceRef,
    /// For a server restart request: how long it took.
    pub took_ms: Option<u32>,
}

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
    pub lines_total: u64,
    pub bytes_total: u64,
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
            lines_total: 0,
            bytes_total: 0,
            server_redactions: 0,
            offending: BTreeMap::new(),
            own_ke1_errors: 0,
            own_ke1_error_refs: Vec::new(),
            foreign_conflicts: 0,
            attribution: Attribution::default(),
            not_subject: BTreeMap::new(),
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
        }
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
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
            } => {
                self.tick(at);
                if let Some(s) = self.sources.get_mut(&source) {
                    s.gaps += 1;
                }
                let text =
                    format!("gap: link down {down_ms} ms, {caught_up_bytes} bytes caught up");
                // The server log fills every KE pane: each shows where its
                // stream was interrupted.
                if source == "server-log" {
                    for (i, pane) in self.panes.iter_mut().enumerate() {
                        self.pane_pushed[i] += 1;
                        pane.push_back(PaneLine {
                            line_no: 0,
                            ke_line_no: 0,
                            at: Some(at),
                            text: format!("── {text} ──"),
                            error: false,
                            tracked: false,
                            origin: "gap",
                        });
                        if pane.len() > PANE_CAPACITY {
                            pane.pop_front();
                        }
                    }
                }
                self.note(at, &source, text);
                fx.push(Effect::Journal(JournalEntry::Gap {
                    at,
                    source,
                    down_ms,
                    caught_up_bytes,
                }));
            }
            Event::ClockOffset {
                source,
                offset_ms,
                bound_ms,
                at,
            } => {
                self.tick(at);
                if let Some(s) = self.sources.get_mut(&source) {
                    s.clock_offset_ms = Some(offset_ms);
                    s.clock_bound_ms = Some(bound_ms);
                }
                let ev = format!("remote clock offset {offset_ms:+} ms (±{bound_ms} ms)");
                self.auto(AutoCheck::StartNoted, &ev, at, &mut fx);
                // Already ticked at the start: the first offset is added to it.
                let already = self.checklist.steps.iter().any(|s| {
                    s.auto == Some(AutoCheck::StartNoted)
                        && s.stamps.iter().any(|st| {
                            st.evidence
                                .as_deref()
                                .is_some_and(|e| e.starts_with("remote clock offset"))
                        })
                });
                if !already {
                    for (step, stamp) in self.checklist.annotate(AutoCheck::StartNoted, &ev, at) {
                        fx.push(Effect::Journal(JournalEntry::Checklist { step, stamp }));
                    }
                }
                fx.push(Effect::Journal(JournalEntry::ClockOffset {
                    at,
                    source,
                    offset_ms,
                    bound_ms,
                }));
            }
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

    /// Whether a line names the tracked user, device or a participant (the
    /// same strings as [`Subject::needles`], without allocating per line).
    fn is_tracked(&self, text: &str) -> bool {
        let s = &self.subject;
        let hit = |n: &str| !n.is_empty() && text.contains(n);
        s.user_id.iter().chain(s.device_id.iter()).any(|n| hit(n))
            || s.participants.iter().any(|p| p.split('/').any(hit))
    }

    fn on_status(
        &mut self,
        source: String,
        status: SourceStatus,
        at: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        self.tick(at);
        let changed = self.sources.get(&source).map(|s| &s.status) != Some(&status);
        if !changed {
            return;
        }
        if status == SourceStatus::Live && source == "server-log" {
            self.auto(AutoCheck::ServerLive, "server log stream live", at, fx);
        }
        let entry = self.sources.entry(source.clone()).or_insert(SourceInfo {
            status: status.clone(),
            since: at,
            last_data_at: None,
            gaps: 0,
            clock_offset_ms: None,
            clock_bound_ms: None,
        });
        entry.status = status.clone();
        entry.since = at;
        fx.push(Effect::Journal(JournalEntry::Status { at, source, status }));
    }

    fn on_command(&mut self, cmd: Command, at: DateTime<Utc>, fx: &mut Vec<Effect>) {
        self.tick(at);
        match cmd {
            Command::Mark { label } => {
                let label = if label.trim().is_empty() {
                    "fault".to_string()
                } else {
                    label.trim().to_string()
                };
                let id = self.next_marker;
                self.next_marker += 1;
                let mut last_lines = BTreeMap::new();
                last_lines.insert("server-log".to_string(), self.lines_total);
                last_lines.insert("client".to_string(), self.artifacts.len() as u64);
                last_lines.insert("database".to_string(), self.db.polls);
                let m = Marker {
                    id,
                    at,
                    label: label.clone(),
                    checklist_step: self.checklist.current(),
                    last_lines: last_lines.clone(),
                    deleted: false,
                };
                self.widen(at);
                fx.push(Effect::Journal(JournalEntry::Marker {
                    at,
                    id,
                    label: label.clone(),
                    checklist_step: m.checklist_step,
                    last_lines,
                }));
                self.markers.push(m);
                self.auto(AutoCheck::Marker, &format!("marker {id} '{label}'"), at, fx);
            }
            Command::Relabel { id, label } => {
                if let Some(m) = self.markers.iter_mut().find(|m| m.id == id && !m.deleted) {
                    m.label = label.clone();
                    fx.push(Effect::Journal(JournalEntry::MarkerRelabel {
                        at,
                        id,
                        label,
                    }));
                }
            }
            Command::DeleteMarker { id } => {
                if let Some(m) = self.markers.iter_mut().find(|m| m.id == id && !m.deleted) {
                    m.deleted = true;
                    fx.push(Effect::Journal(JournalEntry::MarkerDelete { at, id }));
                }
            }
            Command::Checklist { step, done } => {
                if let Some(stamp) = self.checklist.set(step, done, at) {
                    fx.push(Effect::Journal(JournalEntry::Checklist { step, stamp }));
                }
            }
            Command::AddEventIds { ids } => {
                let new: Vec<String> = ids
                    .into_iter()
                    .filter(|id| !self.ke3_ids.contains_key(id))
                    .collect();
                if !new.is_empty() {
                    for id in &new {
                        self.ke3_ids.insert(id.clone(), Vec::new());
                    }
                    fx.push(Effect::Journal(JournalEntry::EventIds {
                        at,
                        ids: new.clone(),
                    }));
                    fx.push(Effect::Ke3Ids(new));
                }
            }
            Command::Export { label } => fx.push(Effect::Export { label }),
        }
    }

    /// Restores a marker, checklist stamp or other structured entry from a
    /// journal (recovery and replay). Server lines are re-ingested separately.
    pub fn restore(&mut self, entry: JournalEntry) {
        match entry {
            JournalEntry::Start {
                at,
                user_id,
                device_id,
                participants,
                ..
            } => {
                self.tick(at);
                if self.subject.user_id.is_none() {
                    self.subject.user_id = user_id;
                }
                if self.subject.device_id.is_none() {
                    self.subject.device_id = device_id;
                }
                if self.subject.participants.is_empty() {
                    self.subject.participants = participants;
                }
            }
            JournalEntry::Status { at, source, status } => {
                let _ = self.update(Event::Status { source, status, at });
            }
            JournalEntry::Gap {
                at,
                source,
                down_ms,
                caught_up_bytes,
            } => {
                let _ = self.update(Event::Gap {
                    source,
                    down_ms,
                    caught_up_bytes,
                    at,
                });
            }
            JournalEntry::ClockOffset {
                at,
                source,
                offset_ms,
                bound_ms,
            } => {
                let _ = self.update(Event::ClockOffset {
                    source,
                    offset_ms,
                    bound_ms,
                    at,
                });
            }
            JournalEntry::Client { artifact, .. } => {
                let _ = self.update(Event::Client(artifact));
            }
            JournalEntry::Marker {
                at,
                id,
                label,
                checklist_step,
                last_lines,
            } => {
                self.tick(at);
                self.widen(at);
                self.next_marker = self.next_marker.max(id + 1);
                self.markers.push(Marker {
                    id,
                    at,
                    label,
                    checklist_step,
                    last_lines,
                    deleted: false,
                });
            }
            JournalEntry::MarkerRelabel { id, label, .. } => {
                if let Some(m) = self.markers.iter_mut().find(|m| m.id == id) {
                    m.label = label;
                }
            }
            JournalEntry::MarkerDelete { id, .. } => {
                if let Some(m) = self.markers.iter_mut().find(|m| m.id == id) {
                    m.deleted = true;
                }
            }
            JournalEntry::Checklist { step, stamp } => self.checklist.restore(step, stamp),
            JournalEntry::DbPoll { .. } => {}
            JournalEntry::EventIds { ids, .. } => {
                for id in ids {
                    self.ke3_ids.entry(id).or_default();
                }
            }
            JournalEntry::Note { at, source, text } => self.note(at, &source, text),
            JournalEntry::Exported { .. } => {}
            JournalEntry::DebugLoggers { at, update } => {
                let _ = self.update(Event::DebugLoggers { at, update });
            }
        }
    }

    /// Live (not deleted) markers.
    pub fn live_markers(&self) -> impl Iterator<Item = &Marker> {
        self.markers.iter().filter(|m| !m.deleted)
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

    /// Per-KE server counts.
    pub fn server_counts(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.server[i].count)
    }

    pub fn client_counts(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.client[i].count)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_gap_in_the_server_log_shows_in_every_pane_and_the_journal() {
        let mut app = App::new(Subject::default(), 2000);
        let at = DateTime::from_timestamp(1_782_842_400, 0).unwrap();
        let fx = app.update(Event::Gap {
            source: "server-log".into(),
            down_ms: 1500,
            caught_up_bytes: 4096,
            at,
        });
        for pane in &app.panes {
            let l = pane.back().unwrap();
            assert_eq!(l.origin, "gap");
            assert!(l.text.contains("1500 ms") && l.text.contains("4096 bytes"));
        }
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Journal(JournalEntry::Gap { down_ms: 1500, .. })))
        );
    }

    #[test]
    fn a_storm_of_one_kind_leaves_room_for_the_others() {
        let mut o = OffendingKeyInfo::default();
        for n in 1..=5 {
            o.sighting(
                SightingKind::Server,
                EvidenceRef(format!("server/KE-1.log:{n}")),
            );
        }
        o.sighting(
            SightingKind::Client,
            EvidenceRef("client/d.json#entries[0]".into()),
        );
        o.sighting(
            SightingKind::Har,
            EvidenceRef("client/h.har#log.entries[2]".into()),
        );
        assert_eq!(
            o.seen,
            Sightings {
                server: 5,
                client: 1,
                har: 1
            }
        );
        let refs: Vec<&str> = o.evidence.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            refs,
            [
                "server/KE-1.log:1",
                "server/KE-1.log:2",
                "server/KE-1.log:3",
                "client/d.json#entries[0]",
                "client/h.har#log.entries[2]"
            ]
        );
    }
}
