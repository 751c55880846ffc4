//! Our device from the client's own evidence. When neither the flags nor
//! the config name the device, the first client file that names a user and
//! device (a Lotus diag report's `userId`/`deviceId`, Element Web's
//! `user_id`/`device_id`) fills it in; a flag or the config always wins,
//! and a file naming another device of the same user is a warning.
//!
//! Server lines read before that file arrived (a live capture: the report
//! is downloaded after the fault) are judged again once the device is
//! known: their KE-1 errors and to-device tracing are kept until then.

use super::App;
use super::event::{ArtifactKind, ClientArtifact};
use super::server::Ke1Sighting;
use chrono::{DateTime, Utc};

/// Server evidence kept while no device is known (at most this many of
/// each; past that, the earlier lines stay undecided, never ours).
const PENDING_CAP: usize = 20_000;

/// What is judged again when the device becomes known.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingSubject {
    ke1: Vec<Ke1Sighting>,
    to_device: Vec<(u64, String)>,
    overflow: bool,
}

impl PendingSubject {
    pub(super) fn keep_ke1(&mut self, k: &Ke1Sighting) {
        if self.ke1.len() < PENDING_CAP {
            self.ke1.push(k.clone());
        } else {
            self.overflow = true;
        }
    }

    pub(super) fn keep_to_device(&mut self, line_no: u64, text: &str) {
        if self.to_device.len() < PENDING_CAP {
            self.to_device.push((line_no, text.to_string()));
        } else {
            self.overflow = true;
        }
    }
}

impl App {
    /// Takes our user and device from a client file when nothing named
    /// them yet; records a conflict when the file names another device of
    /// our user.
    pub(super) fn learn_subject(&mut self, a: &ClientArtifact, at: DateTime<Utc>) {
        if a.unparsed.is_some() || a.kind == ArtifactKind::Har {
            return;
        }
        let Some(device) = a.device_id.as_deref().filter(|d| !d.trim().is_empty()) else {
            return;
        };
        let user = a.user_id.as_deref().filter(|u| !u.trim().is_empty());
        let same_user = match (self.subject.user_id.as_deref(), user) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => true,
        };
        match self.subject.device_id.clone() {
            None if same_user => {
                self.subject.device_id = Some(device.to_string());
                if self.subject.user_id.is_none() {
                    self.subject.user_id = user.map(str::to_string);
                }
                self.subject_from = Some(format!("client/{}", a.file));
                let who = format!(
                    "{}/{device}",
                    self.subject.user_id.as_deref().unwrap_or("(no user)")
                );
                self.note(
                    at,
                    "client",
                    format!("our device is {who}, as {} names it", a.file),
                );
                self.judge_pending();
            }
            Some(ours) if same_user && ours != device => {
                let origin = match &self.subject_from {
                    Some(f) => f.clone(),
                    None => "--device-id / [call] device-id".to_string(),
                };
                let warning = format!(
                    "{} names device {device}, but {origin} names {ours}: {ours} is taken as our device",
                    a.file
                );
                self.note(at, "client", warning.clone());
                if self.subject_warnings.len() < 20 {
                    self.subject_warnings.push(warning);
                }
            }
            _ => {}
        }
    }

    /// Takes our device from lk-jwt-service's grants when nothing named it
    /// and our user is known: the one device lk-jwt-service issued our
    /// user tokens for (several: not taken, it could be any of them).
    pub(super) fn learn_subject_from_grants(&mut self, evidence: &str, at: DateTime<Utc>) {
        if self.subject.device_id.is_some() {
            return;
        }
        let Some(user) = self.subject.user_id.clone() else {
            return;
        };
        let mut devices: Vec<&str> = self
            .sfu
            .grants
            .values()
            .filter(|(u, _)| u.as_deref() == Some(user.as_str()))
            .filter_map(|(_, d)| d.as_deref())
            .collect();
        devices.sort_unstable();
        devices.dedup();
        if let [device] = devices[..] {
            self.subject.device_id = Some(device.to_string());
            self.subject_from = Some(evidence.to_string());
            self.note(
                at,
                "sfu",
                format!("our device is {user}/{device}, as lk-jwt-service's {evidence} names it"),
            );
            self.judge_pending();
        }
    }

    /// The server evidence read while no device was known, judged again
    /// now that it is.
    fn judge_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending_subject);
        if pending.overflow {
            // Not all of it was kept: what was counted stays undecided.
            self.subject_warnings.push(format!(
                "our device became known after more than {PENDING_CAP} KE-1 or to-device lines: those before it stay undecided"
            ));
            return;
        }
        self.own_ke1_errors = 0;
        self.own_ke1_error_refs.clear();
        self.foreign_conflicts = 0;
        self.attribution.ke1_undecided = Default::default();
        self.attribution.ke1_undecided_conflicts = 0;
        self.attribution.ke1_undecided_refs.clear();
        for k in &pending.ke1 {
            self.attribute_ke1(k);
        }
        for (line_no, text) in &pending.to_device {
            self.count_to_device_for_us(*line_no, text);
        }
    }
}
