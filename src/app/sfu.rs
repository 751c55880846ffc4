//! What the SFU said about each participant (livekit-server's log), and
//! which Matrix user and device each LiveKit identity is (the identity
//! itself on the legacy endpoint, lk-jwt-service's grant lines otherwise).

use super::event::{LkGrant, SfuSighting};
use super::{App, EvidenceRef};
use crate::domain::sfu_log::{Identity, SfuState, identity_of};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// States kept per participant (the newest).
const HISTORY: usize = 64;
/// Participants kept.
const PARTICIPANTS: usize = 512;
/// Unrecognised lines of an SFU log (and none recognised) before the status
/// line says so.
const UNRECOGNISED_NOTE: u64 = 20;

/// One state the SFU reported, where.
#[derive(Debug, Clone, PartialEq)]
pub struct SfuReport {
    pub at: Option<DateTime<Utc>>,
    pub state: SfuState,
    pub reason: Option<String>,
    pub evidence: EvidenceRef,
    /// The line, redacted, for the pane.
    pub text: String,
}

/// A LiveKit participant as the SFU log shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SfuParticipant {
    pub identity: String,
    pub sid: Option<String>,
    pub room: Option<String>,
    pub history: Vec<SfuReport>,
}

impl SfuParticipant {
    pub fn last(&self) -> Option<&SfuReport> {
        self.history.last()
    }
}

/// The SFU side of the capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SfuView {
    /// By identity.
    pub participants: BTreeMap<String, SfuParticipant>,
    /// LiveKit identity → (Matrix user, device), from lk-jwt-service.
    pub grants: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Matrix user → the devices lk-jwt-service issued tokens for.
    pub grant_refs: Vec<EvidenceRef>,
    /// livekit-server lines with a participant state, lk-jwt-service lines
    /// naming someone, lines of either not recognised.
    pub sfu_lines: u64,
    pub grant_lines: u64,
    pub unread: u64,
    /// lk-jwt-service failures (`Failed to look up user info`, …).
    pub failures: Vec<EvidenceRef>,
    /// Per SFU log: lines recognised and not.
    pub per_log: BTreeMap<String, (u64, u64)>,
    /// Logs whose unrecognised lines the status line was told of.
    pub noted: std::collections::BTreeSet<String>,
}

impl SfuView {
    /// Whether any SFU log line was read.
    pub fn captured(&self) -> bool {
        self.sfu_lines + self.grant_lines + self.unread > 0
    }

    /// The Matrix user and device behind an identity, when known.
    pub fn matrix_of(&self, identity: &str) -> (Option<String>, Option<String>) {
        if let Some((u, d)) = self.grants.get(identity)
            && d.is_some()
        {
            return (u.clone(), d.clone());
        }
        match identity_of(identity) {
            Identity::Legacy { user, device } => (Some(user), Some(device)),
            _ => self.grants.get(identity).cloned().unwrap_or((None, None)),
        }
    }
}

impl App {
    pub(super) fn on_sfu(
        &mut self,
        sightings: Vec<SfuSighting>,
        grants: Vec<LkGrant>,
        unread: u64,
    ) {
        self.sfu.unread += unread;
        let mut last_grant = None;
        for g in grants {
            self.sfu.grant_lines += 1;
            let r = EvidenceRef(self.server_ref(g.line_no));
            if g.line.failure.is_some() && self.sfu.failures.len() < 5 {
                self.sfu.failures.push(r.clone());
            }
            if let Some(id) = g.line.lk_id.clone() {
                let entry = self.sfu.grants.entry(id).or_default();
                if g.line.matrix_id.is_some() {
                    entry.0 = g.line.matrix_id.clone();
                }
                if g.line.device_id.is_some() {
                    entry.1 = g.line.device_id.clone();
                }
                if self.sfu.grant_refs.len() < 20 {
                    self.sfu.grant_refs.push(r.clone());
                }
                if g.line.device_id.is_some() {
                    last_grant = Some(r);
                }
            }
        }
        if let (Some(r), Some(now)) = (last_grant, self.now.or(self.window.1)) {
            self.learn_subject_from_grants(&r.0, now);
        }
        for s in sightings {
            self.sfu.sfu_lines += 1;
            let Some(identity) = s.event.identity.clone() else {
                continue;
            };
            if !self.sfu.participants.contains_key(&identity)
                && self.sfu.participants.len() >= PARTICIPANTS
            {
                continue;
            }
            let evidence = EvidenceRef(self.server_ref(s.line_no));
            let p = self
                .sfu
                .participants
                .entry(identity.clone())
                .or_insert_with(|| SfuParticipant {
                    identity,
                    ..Default::default()
                });
            if s.event.sid.is_some() {
                p.sid = s.event.sid.clone();
            }
            if s.event.room.is_some() {
                p.room = s.event.room.clone();
            }
            p.history.push(SfuReport {
                at: s.event.at,
                state: s.event.state,
                reason: s.event.reason.clone(),
                evidence,
                text: s.text,
            });
            if p.history.len() > HISTORY {
                p.history.remove(0);
            }
            if let Some(t) = s.event.at {
                self.widen(t);
            }
        }
    }

    /// Says in the status line, once per log, when an SFU log's lines are
    /// not recognised at all (another version's wording, the wrong
    /// `format`): they are kept in the log's file all the same.
    pub(super) fn note_unrecognised_sfu(&mut self, log: &str, recognised: u64, unread: u64) {
        let seen = self.sfu.per_log.entry(log.to_string()).or_default();
        seen.0 += recognised;
        seen.1 += unread;
        let (ok, bad) = *seen;
        if ok == 0 && bad >= UNRECOGNISED_NOTE && !self.sfu.noted.contains(log) {
            self.sfu.noted.insert(log.to_string());
            let at = self.now.or(self.window.1).unwrap_or_default();
            let file = self
                .server_logs
                .file(self.server_logs.index_of(log).unwrap_or(0));
            self.note(
                at,
                log,
                format!(
                    "{bad} lines of '{log}' read, none recognised as livekit-server's or lk-jwt-service's: kept in {file}; is its format right?"
                ),
            );
        }
    }

    /// Whether an identity is our device's (user and device known and
    /// equal to the subject's).
    pub fn sfu_is_ours(&self, identity: &str) -> bool {
        let Some(device) = self.subject.device_id.as_deref() else {
            return false;
        };
        let (user, dev) = self.sfu.matrix_of(identity);
        dev.as_deref() == Some(device)
            && match (self.subject.user_id.as_deref(), user.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Our device's participants in the SFU log.
    pub fn sfu_ours(&self) -> Vec<&SfuParticipant> {
        self.sfu
            .participants
            .values()
            .filter(|p| self.sfu_is_ours(&p.identity))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::app::event::{Event, ServerBatch};

    #[test]
    fn an_sfu_log_of_nothing_recognised_says_so_once() {
        let mut app = crate::verdicts::test_app();
        app.server_logs =
            crate::model::server_logs::ServerLogs::new(vec!["homeserver".into(), "lk-jwt".into()]);
        let batch = |n| ServerBatch {
            source: "lk-jwt".into(),
            sfu_unread: n,
            ..Default::default()
        };
        app.update(Event::Server(Box::new(batch(5))));
        assert!(app.notes.is_empty());
        app.update(Event::Server(Box::new(batch(30))));
        app.update(Event::Server(Box::new(batch(30))));
        let notes: Vec<&String> = app.notes.iter().map(|(_, _, t)| t).collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("35 lines of 'lk-jwt' read, none recognised")
                && notes[0].contains("server/lk-jwt.log"),
            "{notes:?}"
        );
        assert_eq!(app.sfu.unread, 65);
    }
}
