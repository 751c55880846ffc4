//! Client evidence into the App: diag reports and HAR files, their entries
//! per KE, KE-3 event ids, client KE-4 timeouts, and one-time-key conflicts
//! from any source.

use super::checklist::AutoCheck;
use super::event::{self, ClientArtifact, ClientEntry};
use super::{
    App, EVIDENCE_CAP, Effect, EvidenceRef, OffendingKeyInfo, PANE_CAPACITY, PaneLine,
    SightingKind, TIMEOUTS_CAP, Timeout,
};
use crate::domain::Ke;
use crate::domain::membership::is_sdk_timeout;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};

/// Characters of a client entry a pane line shows (as of a server line),
/// and that the App keeps of a subject's error for the verdicts.
const PANE_TEXT_MAX: usize = 1000;

/// The first `max` characters of `text` (all of it when shorter).
fn head(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// A client entry as a pane line: its first line (a console entry's stack
/// follows on the next ones), cut as a server line is (the copy in
/// `client/` has all of it).
fn pane_text(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    let shown = head(first, PANE_TEXT_MAX);
    if shown.len() < message.trim_end().len() {
        format!("[client] {shown} …")
    } else {
        format!("[client] {shown}")
    }
}

/// What the App keeps of a subject's error entry for the verdicts (they
/// count it, quote its first line and look for an event id and the word
/// `algorithm` in a KE-3 error's message, both at its start): its first
/// [`PANE_TEXT_MAX`] characters, not a whole stack of a report of 64 MiB.
fn kept_text(message: &str) -> String {
    head(message, PANE_TEXT_MAX).to_string()
}

/// An artefact as the App keeps it once its entries are counted and shown:
/// the entries without their text (the journal has the whole of it).
fn slim(a: &mut ClientArtifact) -> ClientArtifact {
    // Cloned without its entries (cheap), which are then made again
    // without their text.
    let entries = std::mem::take(&mut a.entries);
    let mut kept = a.clone();
    kept.entries = entries
        .iter()
        .map(|e| ClientEntry {
            file: String::new(),
            index: e.index,
            at: e.at,
            level: e.level.clone(),
            ke: e.ke,
            error: e.error,
            message: String::new(),
            line: e.line,
        })
        .collect();
    a.entries = entries;
    kept
}

impl App {
    pub(super) fn on_client(&mut self, mut artifact: ClientArtifact, fx: &mut Vec<Effect>) {
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
        // The artefact goes to the journal (moved, not copied: a report may
        // be tens of MiB), which names the report's copy instead of writing
        // its entries again; the App keeps what it lists and decides on,
        // each entry's time, level and KE, not its text.
        self.artifacts.push(slim(&mut artifact));
        fx.push(Effect::Journal(JournalEntry::Client {
            at,
            artifact: Box::new(artifact),
        }));
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
            text: pane_text(&e.message),
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
            self.client_errors
                .push((ke, r.clone(), kept_text(&e.message)));
        }
        if ke == Ke::Ke4
            && is_sdk_timeout(&e.message)
            && let Some(at) = e.at
            && self.timeouts.len() < TIMEOUTS_CAP
        {
            self.keep_timeout(Timeout::client(at, r));
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
    pub(super) fn offending_key(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::event::{ArtifactKind, Event};

    #[test]
    fn a_report_goes_to_the_journal_whole_and_the_app_keeps_it_without_its_text() {
        let mut app = App::new(Default::default(), 2_000);
        let t = DateTime::from_timestamp(1_782_842_400, 0).unwrap_or_default();
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        // A big report: long messages.
        diag.entries = (0..50)
            .map(|i| ClientEntry {
                file: "d.json".into(),
                index: i,
                at: Some(t + chrono::Duration::seconds(i as i64)),
                level: Some("warn".into()),
                ke: Some(Ke::Ke2),
                error: false,
                message: format!(
                    "MissingKey: missing key at index {i} {}",
                    "x".repeat(100_000)
                ),
                line: None,
            })
            .collect();
        let fx = app.update(Event::Client(Box::new(diag.clone())));
        let journaled: Vec<&ClientArtifact> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Journal(JournalEntry::Client { artifact, .. }) => Some(&**artifact),
                _ => None,
            })
            .collect();
        assert_eq!(journaled, [&diag], "the journal has all of it");
        let kept = &app.artifacts[0];
        let text: usize = kept
            .entries
            .iter()
            .map(|e| e.message.len() + e.file.len())
            .sum();
        assert_eq!(text, 0, "the App keeps no entry's text");
        // What the pane, the report and the verdicts read is all there.
        assert_eq!(kept.entries.len(), 50);
        assert_eq!(
            kept.entries
                .iter()
                .map(|e| (e.index, e.at, e.ke))
                .collect::<Vec<_>>(),
            diag.entries
                .iter()
                .map(|e| (e.index, e.at, e.ke))
                .collect::<Vec<_>>()
        );
        assert_eq!(app.client_counts(), [0, 50, 0, 0]);
        // Its pane lines are cut as a server line is.
        let pane = &app.panes[Ke::Ke2.index()];
        assert_eq!(pane.len(), 50);
        assert!(pane.iter().all(|l| l.text.chars().count() == 9 + 1000 + 2));
        // And what the verdicts keep of each error is as short.
        assert_eq!(app.client_errors.len(), 50);
        assert!(
            app.client_errors
                .iter()
                .all(|(_, _, m)| m.chars().count() == 1000 && m.starts_with("MissingKey: "))
        );
        assert!(
            pane[3]
                .text
                .starts_with("[client] MissingKey: missing key at index 3 xxx")
        );
    }
}
