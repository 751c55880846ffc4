//! Our device from the client's own evidence. When neither the flags nor
//! the config name the device, the first client file that names a user and
//! device (a Lotus diag report's `userId`/`deviceId`, Element Web's
//! `user_id`/`device_id`) fills it in; a flag or the config always wins,
//! and a file naming another device of the same user is a warning.
//!
//! Server lines read before that file arrived (a live capture: the report
//! is downloaded after the fault) are judged again once the device is
//! known: their KE-1 errors and to-device tracing are kept until then.

use super::event::{ArtifactKind, ClientArtifact};
use super::pending::{LineRef, OWNERS_CAP, RECIPIENTS_CAP};
use super::{App, EVIDENCE_CAP, EvidenceRef, Owner, SightingKind};
use crate::domain::Ke;
use chrono::{DateTime, Utc};

pub(super) use super::pending::PendingSubject;

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
    /// now that it is: each owner's summary counts as its lines would, and
    /// the first references are taken in the order the lines arrived.
    fn judge_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending_subject);
        if pending.overflow {
            // Not all of it was kept: what was counted stays undecided.
            self.subject_warnings.push(format!(
                "our device became known after KE-1 or to-device lines naming more than {OWNERS_CAP} owners or {RECIPIENTS_CAP} devices: those before it stay undecided"
            ));
            return;
        }
        self.own_ke1_errors = 0;
        self.own_ke1_error_refs.clear();
        self.foreign_conflicts = 0;
        self.attribution.ke1_undecided = Default::default();
        self.attribution.ke1_undecided_conflicts = 0;
        self.attribution.ke1_undecided_refs.clear();
        let mut error_refs: Vec<LineRef> = Vec::new();
        let mut undecided_refs: Vec<LineRef> = Vec::new();
        let mut keys: Vec<&super::pending::KeySummary> = Vec::new();
        for o in &pending.owners {
            let owner = self
                .subject
                .owner_of(o.owner.as_ref().map(|(u, d)| (u.as_str(), d.as_str())));
            if owner != Owner::Foreign {
                self.own_ke1_errors += o.errors;
                error_refs.extend(&o.error_refs);
            }
            let range = match owner {
                Owner::Ours => Some(&mut self.attribution.ke1_ours),
                Owner::Undecided => Some(&mut self.attribution.ke1_undecided),
                Owner::Foreign => None,
            };
            if let Some(range) = range {
                range.add(o.error_first);
                range.add(o.error_last);
            }
            match owner {
                Owner::Foreign => self.foreign_conflicts += o.conflicts,
                Owner::Undecided => {
                    self.attribution.ke1_undecided_conflicts += o.conflicts;
                    undecided_refs.extend(&o.conflict_refs);
                }
                Owner::Ours => keys.extend(&o.keys),
            }
        }
        let ke1_ref =
            |app: &App, (_, ke, line): LineRef| EvidenceRef(app.ke_ref(Ke::Ke1, ke, line));
        error_refs.sort_unstable();
        for r in error_refs.into_iter().take(5) {
            let r = ke1_ref(self, r);
            self.own_ke1_error_refs.push(r);
        }
        undecided_refs.sort_unstable();
        for r in undecided_refs.into_iter().take(5) {
            let r = ke1_ref(self, r);
            self.attribution.ke1_undecided_refs.push(r);
        }
        // One key id of several owners (all ours): in arrival order.
        keys.sort_by_key(|k| k.first.0);
        for k in keys {
            let mut refs: Vec<EvidenceRef> = k.refs.iter().map(|r| ke1_ref(self, *r)).collect();
            let info = self.offending_key(&k.algorithm, &k.key_id, k.first.1);
            if info.stored_key.is_none() {
                info.stored_key = k.stored.as_ref().map(|(_, v)| v.clone());
            }
            if info.uploaded_key.is_none() {
                info.uploaded_key = k.uploaded.as_ref().map(|(_, v)| v.clone());
            }
            let more = k.count - refs.len() as u64;
            for r in refs.drain(..) {
                info.sighting(SightingKind::Server, r);
            }
            info.seen.server += more;
        }
        self.judge_pending_to_device(&pending);
    }

    /// The to-device traces that named our device, counted once each.
    fn judge_pending_to_device(&mut self, pending: &PendingSubject) {
        let Some(device) = self.subject.device_id.clone() else {
            return;
        };
        let Some(r) = pending.recipients.iter().find(|r| r.device == device) else {
            return;
        };
        let (count, mut lines) = match self.subject.user_id.as_deref() {
            None => (r.traces, r.lines.clone()),
            Some(u) => r
                .users
                .iter()
                .filter(|(user, _, _)| user.ends_with(u))
                .fold((0, Vec::new()), |(n, mut all), (_, k, l)| {
                    all.extend(l);
                    (n + k, all)
                }),
        };
        lines.sort_unstable();
        lines.dedup();
        self.to_device_for_us_count += count;
        for line in lines {
            if self.to_device_for_us.len() >= EVIDENCE_CAP {
                break;
            }
            let r = EvidenceRef(self.server_ref(line));
            self.to_device_for_us.push(r);
        }
    }
}
