//! Client evidence into the App: diag reports and HAR files, their entries
//! per KE, KE-3 event ids, client KE-4 timeouts, and one-time-key conflicts
//! from any source.

use super::checklist::AutoCheck;
use super::event::{self, ClientArtifact, ClientEntry};
use super::{
    App, EVIDENCE_CAP, Effect, EvidenceRef, OffendingKeyInfo, PANE_CAPACITY, PaneLine,
    SightingKind, Timeout,
};
use crate::domain::Ke;
use crate::domain::membership::is_sdk_timeout;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};

impl App {
    pub(super) fn on_client(&mut self, artifact: ClientArtifact, fx: &mut Vec<Effect>) {
        let at = artifact.arrived_at;
        self.tick(at);
        self.learn_subject(&artifact, at);
        for w in &artifact.warnings {
            self.note(at, "client", w.clone());
        }
        // Someone else's report or HAR is listed and counted, but it is
        // evidence about them, not the subject: it feeds no verdict.
        let theirs = self.subject.not_the_subject(&artifact);
        let ours = theirs.is_none();
        if let Some(why) = theirs {
            self.note(
                at,
                "client",
                format!("{} is not the subject's ({why})", artifact.file),
            );
            self.not_subject.insert(artifact.file.clone(), why);
        }
        let mut new_ids = Vec::new();
        for e in &artifact.entries {
            self.on_client_entry(e, ours);
        }
        let ke3_ids = if ours {
            &artifact.ke3_event_ids[..]
        } else {
            &[]
        };
        let har_conflicts = if ours {
            &artifact.har_conflicts[..]
        } else {
            &[]
        };
        for id in ke3_ids {
            let refs = self.ke3_ids.entry(id.clone()).or_insert_with(|| {
                new_ids.push(id.clone());
                Vec::new()
            });
            if let Some(e) = artifact
                .entries
                .iter()
                .find(|e| e.message.contains(id.as_str()))
                && refs.len() < 5
            {
                refs.push(EvidenceRef(e.reference()));
            }
        }
        for c in har_conflicts {
            self.attribution.ke1_ours.add(c.at);
            let info = self.offending_key(&c.algorithm, &c.key_id, c.at);
            if c.uploaded_key.is_some() {
                // The request body is the authoritative "new" value.
                info.uploaded_key = c.uploaded_key.clone();
            }
            if info.stored_key.is_none() {
                info.stored_key = c.stored_key.clone();
            }
            info.sighting(
                SightingKind::Har,
                EvidenceRef(format!(
                    "client/{}#log.entries[{}]",
                    artifact.file, c.entry_index
                )),
            );
        }
        let kind = match artifact.kind {
            event::ArtifactKind::Diag => "diag report",
            event::ArtifactKind::Har => "HAR",
            event::ArtifactKind::ElementLog => "Element log",
            event::ArtifactKind::Other => "file",
        };
        let evidence = format!("{kind} {}", artifact.file);
        if artifact.kind != event::ArtifactKind::Other && ours {
            self.auto(AutoCheck::ClientArtifact, &evidence, at, fx);
        }
        if !new_ids.is_empty() {
            let ev = new_ids.join(", ");
            self.auto(AutoCheck::Ke3Ids, &ev, at, fx);
            fx.push(Effect::Ke3Ids(new_ids));
        }
        fx.push(Effect::Journal(JournalEntry::Client {
            at,
            artifact: Box::new(artifact.clone()),
        }));
        self.artifacts.push(artifact);
    }

    /// Counts and shows an entry; only the subject's (`ours`) are evidence
    /// for the verdicts.
    fn on_client_entry(&mut self, e: &ClientEntry, ours: bool) {
        let Some(ke) = e.ke else { return };
        // The same entry in two overlapping reports counts once.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.at.hash(&mut h);
            e.level.hash(&mut h);
            e.message.hash(&mut h);
            h.finish()
        };
        if !self.seen_client.insert(key) {
            return;
        }
        if let Some(t) = e.at {
            self.widen(t);
        }
        let i = ke.index();
        self.client[i].add(e.at, e.error);
        let r = EvidenceRef(e.reference());
        if ours {
            self.client_evidence(ke, e, r);
        }
        let tracked = self.is_tracked(&e.message);
        self.pane_pushed[i] += 1;
        let pane = &mut self.panes[i];
        pane.push_back(PaneLine {
            line_no: 0,
            ke_line_no: 0,
            at: e.at,
            text: format!("[client] {}", e.message),
            error: e.error,
            tracked,
            origin: "client",
            log: None,
        });
        if pane.len() > PANE_CAPACITY {
            pane.pop_front();
        }
    }

    /// What a subject's entry adds to the verdicts' evidence: its KE-1
    /// conflict, its reference and text, its time (KE-1 and KE-2, for Q2),
    /// a delayed-event timeout.
    fn client_evidence(&mut self, ke: Ke, e: &ClientEntry, r: EvidenceRef) {
        if ke == Ke::Ke1
            && let Some(off) = crate::domain::har::parse_otk_conflict(&e.message)
        {
            self.record_conflict(&off, e.at, SightingKind::Client, r.clone());
        }
        if e.error {
            match ke {
                Ke::Ke1 => self.attribution.ke1_ours.add(e.at),
                Ke::Ke2 => self.attribution.ke2_ours.add(e.at),
                _ => {}
            }
        }
        if self.client_errors.len() < 10 * EVIDENCE_CAP {
            self.client_errors.push((ke, r.clone(), e.message.clone()));
        }
        if ke == Ke::Ke4
            && is_sdk_timeout(&e.message)
            && let Some(at) = e.at
            && self.timeouts.len() < 10_000
        {
            self.timeouts.push(Timeout {
                at,
                origin: "client",
                evidence: r,
                took_ms: None,
            });
        }
    }

    /// Counts a `One time key … already exists` conflict under its key id,
    /// keeping the stored and uploaded `key` values and a few references.
    pub(crate) fn record_conflict(
        &mut self,
        off: &crate::domain::har::OffendingKey,
        at: Option<DateTime<Utc>>,
        kind: SightingKind,
        evidence: EvidenceRef,
    ) {
        let info = self.offending_key(&off.algorithm, &off.key_id, at);
        if info.stored_key.is_none() {
            info.stored_key = off.old_key.as_ref().and_then(crate::domain::har::key_of);
        }
        if info.uploaded_key.is_none() {
            info.uploaded_key = off.new_key.as_ref().and_then(crate::domain::har::key_of);
        }
        info.sighting(kind, evidence);
    }

    /// The offending key `algorithm:key_id`, first seen at `at` if new.
    fn offending_key(
        &mut self,
        algorithm: &str,
        key_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> &mut OffendingKeyInfo {
        self.offending
            .entry(format!("{algorithm}:{key_id}"))
            .or_insert_with(|| OffendingKeyInfo {
                algorithm: algorithm.to_string(),
                key_id: key_id.to_string(),
                first_at: at,
                ..Default::default()
            })
    }
}
