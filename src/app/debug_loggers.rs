//! What the App knows of the DEBUG loggers raised for the capture: when they
//! were raised, confirmed and reverted (or why not), for the status line,
//! the checklist and the report. The raise and revert themselves run
//! outside (`crate::debug_loggers`) and arrive here as events.

use super::checklist::AutoCheck;
use super::{App, Effect};
pub use crate::model::debug_loggers::DebugLoggersUpdate;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DebugLoggersState {
    pub log_config: String,
    pub loggers: Vec<String>,
    pub host: String,
    pub requested_at: Option<DateTime<Utc>>,
    pub raised_at: Option<DateTime<Utc>>,
    pub previous: Vec<(String, Option<String>)>,
    pub confirmed: Option<(DateTime<Utc>, u64, String)>,
    pub waiting_s: Option<u64>,
    pub raise_failed: Option<(DateTime<Utc>, String)>,
    pub reverted: Option<(DateTime<Utc>, String)>,
    pub revert_failed: Option<(DateTime<Utc>, String, String)>,
    /// Checklist ticks waiting for the raise (step 1) or the revert (step 10).
    held: Vec<(AutoCheck, String, DateTime<Utc>)>,
}

impl DebugLoggersState {
    /// Raised and not (yet) put back.
    pub fn still_raised(&self) -> bool {
        self.raised_at.is_some() && self.reverted.is_none()
    }

    /// One line for the status bar.
    pub fn status(&self) -> String {
        if let Some((_, reason, _)) = &self.revert_failed {
            return format!("DEBUG loggers REVERT FAILED: {reason}");
        }
        if self.reverted.is_some() {
            return "DEBUG loggers reverted".into();
        }
        if let Some((_, reason)) = &self.raise_failed {
            return format!("DEBUG loggers not raised: {reason}");
        }
        match (&self.raised_at, &self.confirmed, self.waiting_s) {
            (None, _, _) => "raising DEBUG loggers…".into(),
            (Some(_), Some((_, line, _)), _) => {
                format!("DEBUG loggers raised, confirmed at server/homeserver.log:{line}")
            }
            (Some(_), None, Some(s)) => {
                format!("DEBUG loggers raised; no DEBUG line of them yet ({s}s)")
            }
            (Some(_), None, None) => "DEBUG loggers raised; no DEBUG line of them yet".into(),
        }
    }

    fn waits(&self, what: AutoCheck) -> bool {
        match what {
            AutoCheck::ServerLive => self.raised_at.is_none() && self.raise_failed.is_none(),
            AutoCheck::BundleWritten => self.reverted.is_none(),
            _ => false,
        }
    }

    fn addendum(&self, what: AutoCheck) -> String {
        match what {
            AutoCheck::ServerLive => match (&self.raised_at, &self.raise_failed) {
                (Some(t), _) => format!(
                    "; DEBUG loggers raised in {} at {} UTC",
                    self.log_config,
                    t.format("%H:%M:%S")
                ),
                (None, Some((_, why))) => format!("; DEBUG loggers NOT raised: {why}"),
                _ => String::new(),
            },
            AutoCheck::BundleWritten => match &self.reverted {
                Some((t, _)) => format!(
                    "; DEBUG loggers reverted at {} UTC, {} byte-identical",
                    t.format("%H:%M:%S"),
                    self.log_config
                ),
                None => String::new(),
            },
            _ => String::new(),
        }
    }
}

impl App {
    /// The evidence of checklist tick `what`, with what the DEBUG loggers
    /// add to it; `None` while the tick waits for them (it is kept and given
    /// once they are raised, or reverted).
    pub(super) fn debug_loggers_evidence(
        &mut self,
        what: AutoCheck,
        evidence: &str,
        at: DateTime<Utc>,
    ) -> Option<String> {
        let Some(d) = self.debug_loggers.as_mut() else {
            return Some(evidence.to_string());
        };
        if !d.waits(what) {
            return Some(format!("{evidence}{}", d.addendum(what)));
        }
        if !d.held.iter().any(|(w, _, _)| *w == what) {
            d.held.push((what, evidence.to_string(), at));
        }
        None
    }

    pub(super) fn on_debug_loggers(
        &mut self,
        at: DateTime<Utc>,
        update: DebugLoggersUpdate,
        fx: &mut Vec<Effect>,
    ) {
        self.tick(at);
        let d = self.debug_loggers.get_or_insert_with(Default::default);
        let note = match &update {
            DebugLoggersUpdate::Requested {
                log_config,
                loggers,
                host,
            } => {
                d.log_config = log_config.clone();
                d.loggers = loggers.clone();
                d.host = host.clone();
                d.requested_at = Some(at);
                None
            }
            DebugLoggersUpdate::Raised { previous } => {
                d.raised_at = Some(at);
                d.previous = previous.clone();
                Some(format!(
                    "DEBUG loggers raised in {} on {} and Synapse reloaded; waiting for a DEBUG line",
                    d.log_config, d.host
                ))
            }
            DebugLoggersUpdate::Confirmed { line, text } => {
                d.confirmed = Some((at, *line, text.clone()));
                Some(format!(
                    "DEBUG loggers confirmed: server/homeserver.log:{line}"
                ))
            }
            DebugLoggersUpdate::Waiting { seconds } => {
                d.waiting_s = Some(*seconds);
                Some(format!(
                    "DEBUG loggers raised {seconds}s ago; no DEBUG line of them yet (they log DEBUG on some requests only, e.g. /keys/query)"
                ))
            }
            DebugLoggersUpdate::RaiseFailed { reason } => {
                d.raise_failed = Some((at, reason.clone()));
                Some(format!("DEBUG loggers NOT raised: {reason}"))
            }
            DebugLoggersUpdate::Reverted { detail } => {
                d.reverted = Some((at, detail.clone()));
                d.revert_failed = None;
                Some(format!("DEBUG loggers reverted: {detail}"))
            }
            DebugLoggersUpdate::RevertFailed { reason, fix } => {
                d.revert_failed = Some((at, reason.clone(), fix.clone()));
                Some(format!("REVERT FAILED: {reason}; fix: {fix}"))
            }
        };
        // Ticks that waited for this step.
        let ready: Vec<(AutoCheck, String, DateTime<Utc>)> = {
            let mut ready = Vec::new();
            d.held.retain(|(what, ev, t)| {
                if d_waits(&d.raised_at, &d.raise_failed, &d.reverted, *what) {
                    true
                } else {
                    ready.push((*what, ev.clone(), *t));
                    false
                }
            });
            ready
                .into_iter()
                .map(|(what, ev, t)| (what, ev, t.max(at)))
                .collect()
        };
        if let Some(n) = note {
            self.note(at, "debug-loggers", n);
        }
        for (what, ev, t) in ready {
            self.auto(what, &ev, t, fx);
        }
        fx.push(Effect::Journal(JournalEntry::DebugLoggers { at, update }));
    }
}

/// [`DebugLoggersState::waits`] on the fields (the state is borrowed).
fn d_waits(
    raised: &Option<DateTime<Utc>>,
    raise_failed: &Option<(DateTime<Utc>, String)>,
    reverted: &Option<(DateTime<Utc>, String)>,
    what: AutoCheck,
) -> bool {
    match what {
        AutoCheck::ServerLive => raised.is_none() && raise_failed.is_none(),
        AutoCheck::BundleWritten => reverted.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::Subject;
    use crate::app::event::Event;
    use crate::sources::SourceStatus;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap()
    }

    fn dl(app: &mut App, s: i64, update: DebugLoggersUpdate) -> Vec<Effect> {
        app.update(Event::DebugLoggers { at: t(s), update })
    }

    #[test]
    fn steps_one_and_ten_wait_for_the_raise_and_the_revert() {
        let mut app = App::new(Subject::default(), 2000);
        dl(
            &mut app,
            0,
            DebugLoggersUpdate::Requested {
                log_config: "/etc/matrix-synapse/log.yaml".into(),
                loggers: vec!["synapse.handlers.e2e_keys".into()],
                host: "root@h:22".into(),
            },
        );
        app.update(Event::Status {
            source: "server-log".into(),
            status: SourceStatus::Live,
            at: t(1),
        });
        assert!(!app.checklist.steps[0].done, "step 1 waits for the raise");
        let fx = dl(
            &mut app,
            3,
            DebugLoggersUpdate::Raised {
                previous: vec![("synapse.handlers.e2e_keys".into(), None)],
            },
        );
        let s1 = &app.checklist.steps[0];
        assert!(s1.done);
        let ev = s1.stamps[0].evidence.clone().unwrap();
        assert!(
            ev.contains("server log stream live; DEBUG loggers raised"),
            "{ev}"
        );
        assert_eq!(s1.stamps[0].at, t(3));
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Journal(JournalEntry::Checklist { step: 1, .. })))
        );
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Journal(JournalEntry::DebugLoggers { .. })))
        );
        assert!(app.debug_loggers.as_ref().unwrap().still_raised());

        // The bundle is written while the loggers are still raised: step 10
        // waits; a failed revert never ticks it.
        app.update(Event::Exported {
            path: "/b".into(),
            at: t(10),
        });
        assert!(!app.checklist.steps[9].done);
        dl(
            &mut app,
            11,
            DebugLoggersUpdate::RevertFailed {
                reason: "SSH: refused".into(),
                fix: "callcap revert /b".into(),
            },
        );
        assert!(!app.checklist.steps[9].done);
        assert!(
            app.debug_loggers
                .as_ref()
                .unwrap()
                .status()
                .contains("REVERT FAILED")
        );
        dl(
            &mut app,
            12,
            DebugLoggersUpdate::Reverted {
                detail: "byte-identical".into(),
            },
        );
        let s10 = &app.checklist.steps[9];
        assert!(s10.done);
        assert!(
            s10.stamps[0]
                .evidence
                .as_deref()
                .unwrap()
                .contains("/b; DEBUG loggers reverted"),
            "{:?}",
            s10.stamps
        );
    }

    #[test]
    fn a_failed_raise_lets_step_one_tick_and_says_why() {
        let mut app = App::new(Subject::default(), 2000);
        dl(
            &mut app,
            0,
            DebugLoggersUpdate::Requested {
                log_config: "/x.yaml".into(),
                loggers: vec![],
                host: "h".into(),
            },
        );
        app.update(Event::Status {
            source: "server-log".into(),
            status: SourceStatus::Live,
            at: t(1),
        });
        dl(
            &mut app,
            2,
            DebugLoggersUpdate::RaiseFailed {
                reason: "another callcap holds them".into(),
            },
        );
        let ev = app.checklist.steps[0].stamps[0].evidence.clone().unwrap();
        assert!(ev.contains("NOT raised: another callcap"), "{ev}");
        assert_eq!(app.notes.back().unwrap().1, "debug-loggers");
    }

    #[test]
    fn a_revert_before_the_bundle_is_in_step_tens_evidence() {
        let mut app = App::new(Subject::default(), 2000);
        dl(
            &mut app,
            0,
            DebugLoggersUpdate::Requested {
                log_config: "/l.yaml".into(),
                loggers: vec![],
                host: "h".into(),
            },
        );
        dl(&mut app, 1, DebugLoggersUpdate::Raised { previous: vec![] });
        dl(
            &mut app,
            5,
            DebugLoggersUpdate::Reverted {
                detail: "ok".into(),
            },
        );
        app.update(Event::Exported {
            path: "/b".into(),
            at: t(6),
        });
        let ev = app.checklist.steps[9].stamps[0].evidence.clone().unwrap();
        assert!(ev.starts_with("/b; DEBUG loggers reverted at"), "{ev}");
        assert!(ev.ends_with("/l.yaml byte-identical"), "{ev}");
    }

    #[test]
    fn without_debug_loggers_nothing_waits() {
        let mut app = App::new(Subject::default(), 2000);
        app.update(Event::Status {
            source: "server-log".into(),
            status: SourceStatus::Live,
            at: t(1),
        });
        assert!(app.checklist.steps[0].done);
    }
}
