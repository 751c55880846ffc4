//! Rebuilding the App from a journal (recovery and replay): the structured
//! entries are restored here; server lines are re-ingested separately.

use super::App;
use super::event::Event;
use super::operator::Marker;
use crate::model::journal_entry::JournalEntry;

impl App {
    /// Restores a marker, checklist stamp or other structured entry from a
    /// journal (recovery and replay). Server lines are re-ingested separately.
    pub fn restore(&mut self, entry: JournalEntry) {
        self.revision += 1;
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
            JournalEntry::ServerLogs { at, logs } => {
                self.tick(at);
                self.server_logs = crate::model::server_logs::ServerLogs::new(
                    logs.into_iter().map(|l| l.name).collect(),
                );
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
            JournalEntry::Metrics { at, report } => self.apply_metrics(at, &report),
        }
    }
}
