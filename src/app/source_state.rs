//! The sources' states as the App keeps them: status changes, gaps in a
//! stream and measured clock offsets.

use super::checklist::AutoCheck;
use super::{App, Effect, PANE_CAPACITY, PaneLine};
use crate::model::SourceStatus;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceInfo {
    pub status: SourceStatus,
    pub since: DateTime<Utc>,
    pub last_data_at: Option<DateTime<Utc>>,
    pub gaps: u32,
    pub clock_offset_ms: Option<i64>,
    pub clock_bound_ms: Option<u64>,
}

impl App {
    pub(super) fn on_status(
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
        if status == SourceStatus::Live && self.server_logs.is_server_log(&source) {
            let what = if self.server_logs.several() {
                format!("server log {source} stream live")
            } else {
                "server log stream live".to_string()
            };
            self.auto(AutoCheck::ServerLive, &what, at, fx);
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

    pub(super) fn on_gap(
        &mut self,
        source: String,
        down_ms: u64,
        caught_up_bytes: u64,
        at: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        self.tick(at);
        if let Some(s) = self.sources.get_mut(&source) {
            s.gaps += 1;
        }
        let text = format!("gap: link down {down_ms} ms, {caught_up_bytes} bytes caught up");
        // A server log fills every KE pane: each shows where its stream
        // was interrupted.
        if self.server_logs.is_server_log(&source) {
            let several = self.server_logs.several();
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
                    log: several.then(|| source.as_str().into()),
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

    pub(super) fn on_clock_offset(
        &mut self,
        source: String,
        offset_ms: i64,
        bound_ms: u64,
        at: DateTime<Utc>,
        fx: &mut Vec<Effect>,
    ) {
        self.tick(at);
        if let Some(s) = self.sources.get_mut(&source) {
            s.clock_offset_ms = Some(offset_ms);
            s.clock_bound_ms = Some(bound_ms);
        }
        let ev = format!("remote clock offset {offset_ms:+} ms (±{bound_ms} ms)");
        self.auto(AutoCheck::StartNoted, &ev, at, fx);
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::Subject;
    use crate::app::event::Event;

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
}
