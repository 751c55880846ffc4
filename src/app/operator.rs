//! The operator's commands: fault markers, checklist ticks, KE-3 event ids
//! given by hand, and the export.

use super::checklist::AutoCheck;
use super::event::Command;
use super::{App, Effect};
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub id: u32,
    pub at: DateTime<Utc>,
    pub label: String,
    pub checklist_step: Option<u8>,
    pub last_lines: BTreeMap<String, u64>,
    pub deleted: bool,
}

impl App {
    pub(super) fn on_command(&mut self, cmd: Command, at: DateTime<Utc>, fx: &mut Vec<Effect>) {
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
                if self.server_logs.several() {
                    for (name, n) in &self.log_lines {
                        last_lines.insert(name.clone(), *n);
                    }
                }
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

    /// Live (not deleted) markers.
    pub fn live_markers(&self) -> impl Iterator<Item = &Marker> {
        self.markers.iter().filter(|m| !m.deleted)
    }
}

/// The default label: `call-YYYYMMDDTHHMMSSZ` from the capture's first time.
pub fn default_label(app: &App) -> String {
    match app.span().0 {
        Some(t) => format!("call-{}", t.format("%Y%m%dT%H%M%SZ")),
        None => "call-unknown".to_string(),
    }
}
