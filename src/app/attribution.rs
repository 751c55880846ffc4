//! Whose evidence it is. Our device is one device: a keys/upload conflict
//! is ours only when its owner line names that device, a client artefact
//! that names another user or device is someone else's, and with no device
//! known nothing is "ours".

use super::event::{ArtifactKind, ClientArtifact};
use super::{EvidenceRef, Subject};
use chrono::{DateTime, Utc};

/// Who a keys/upload request belongs to, as far as the evidence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The owner line names the subject's device (and user, when known).
    Ours,
    /// The owner line names another user or device.
    Foreign,
    /// No owner line was seen for the request, or no device is known to
    /// compare it with.
    Undecided,
}

/// Earliest and latest time of something seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn add(&mut self, t: Option<DateTime<Utc>>) {
        if let Some(t) = t {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }

    pub fn bounds(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.first.zip(self.last)
    }
}

/// The KE-1 and KE-2 evidence Q2 weighs against each other, by owner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// KE-1 errors of our device: server lines whose owner line names it,
    /// the subject's client reports and HAR files.
    pub ke1_ours: TimeRange,
    /// Server KE-1 errors whose owner is undecided.
    pub ke1_undecided: TimeRange,
    /// `One time key … already exists` conflicts whose owner is undecided,
    /// and the first few of them.
    pub ke1_undecided_conflicts: u64,
    pub ke1_undecided_refs: Vec<EvidenceRef>,
    /// KE-2 signatures in the subject's client reports.
    pub ke2_ours: TimeRange,
}

/// References kept of undecided conflicts.
const UNDECIDED_REFS: usize = 5;

impl Attribution {
    pub fn undecided_conflict(&mut self, r: EvidenceRef) {
        self.ke1_undecided_conflicts += 1;
        if self.ke1_undecided_refs.len() < UNDECIDED_REFS {
            self.ke1_undecided_refs.push(r);
        }
    }
}

impl Subject {
    /// Whose keys/upload request it is, from its owner line (`None` when
    /// none was seen).
    pub fn owner_of(&self, owner: Option<(&str, &str)>) -> Owner {
        let Some((user, device)) = owner else {
            return Owner::Undecided;
        };
        if self.user_id.as_deref().is_some_and(|u| u != user)
            || self.device_id.as_deref().is_some_and(|d| d != device)
        {
            return Owner::Foreign;
        }
        if self.device_id.is_some() {
            Owner::Ours
        } else {
            Owner::Undecided
        }
    }

    /// The subject user's localpart (`alice` of `@alice:hs`).
    pub fn localpart(&self) -> Option<&str> {
        let u = self.user_id.as_deref()?;
        let u = u.strip_prefix('@').unwrap_or(u);
        Some(u.split_once(':').map_or(u, |(l, _)| l))
    }

    /// Why a client artefact is someone else's: its report names another
    /// user or device, or the access tokens of its HAR requests name other
    /// users only. An artefact that names nobody is taken as the subject's
    /// (the operator handed it in); with no subject known, nothing can be
    /// someone else's.
    pub fn not_the_subject(&self, a: &ClientArtifact) -> Option<String> {
        let differs = |ours: Option<&str>, theirs: Option<&str>| matches!((ours, theirs), (Some(o), Some(t)) if o != t);
        let names = || {
            format!(
                "{}{}",
                a.user_id.as_deref().unwrap_or("(no user)"),
                a.device_id
                    .as_deref()
                    .map(|d| format!("/{d}"))
                    .unwrap_or_default()
            )
        };
        if differs(self.user_id.as_deref(), a.user_id.as_deref()) {
            return Some(format!("the report is {}'s", names()));
        }
        if differs(self.device_id.as_deref(), a.device_id.as_deref()) {
            return Some(format!("the report is device {}'s", names()));
        }
        if a.kind == ArtifactKind::Har
            && let Some(ours) = self.localpart()
            && !a.token_users.is_empty()
            && !a.token_users.iter().any(|u| u == ours)
        {
            return Some(format!(
                "its requests' access tokens are {}'s",
                a.token_users.join(", ")
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(user: Option<&str>, device: Option<&str>) -> Subject {
        Subject {
            user_id: user.map(str::to_string),
            device_id: device.map(str::to_string),
            participants: vec![],
        }
    }

    #[test]
    fn a_conflict_is_ours_only_when_its_owner_line_names_our_device() {
        let s = subject(Some("@a:hs"), Some("DEV"));
        assert_eq!(s.owner_of(Some(("@a:hs", "DEV"))), Owner::Ours);
        assert_eq!(s.owner_of(Some(("@a:hs", "PHONE"))), Owner::Foreign);
        assert_eq!(s.owner_of(Some(("@b:hs", "DEV"))), Owner::Foreign);
        assert_eq!(s.owner_of(None), Owner::Undecided);
        // No device known: nothing is ours.
        let s = subject(Some("@a:hs"), None);
        assert_eq!(s.owner_of(Some(("@a:hs", "DEV"))), Owner::Undecided);
        assert_eq!(s.owner_of(Some(("@b:hs", "DEV"))), Owner::Foreign);
        let s = subject(None, None);
        assert_eq!(s.owner_of(Some(("@a:hs", "DEV"))), Owner::Undecided);
    }

    #[test]
    fn an_artefact_naming_someone_else_is_not_the_subjects() {
        let s = subject(Some("@alice:hs"), Some("DEV"));
        let t = DateTime::from_timestamp(1_782_842_400, 0).unwrap_or_default();
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        assert_eq!(s.not_the_subject(&diag), None, "names nobody");
        diag.user_id = Some("@alice:hs".into());
        diag.device_id = Some("DEV".into());
        assert_eq!(s.not_the_subject(&diag), None);
        diag.device_id = Some("PHONE".into());
        assert_eq!(
            s.not_the_subject(&diag).as_deref(),
            Some("the report is device @alice:hs/PHONE's")
        );
        diag.user_id = Some("@bob:hs".into());
        assert_eq!(
            s.not_the_subject(&diag).as_deref(),
            Some("the report is @bob:hs/PHONE's")
        );
        // Nobody to compare with: nothing is someone else's.
        assert_eq!(subject(None, None).not_the_subject(&diag), None);

        let mut har = ClientArtifact::new("h.har".into(), ArtifactKind::Har, t);
        har.token_users = vec!["bob".into()];
        assert_eq!(
            s.not_the_subject(&har).as_deref(),
            Some("its requests' access tokens are bob's")
        );
        har.token_users.push("alice".into());
        assert_eq!(s.not_the_subject(&har), None);
    }

    /// A KE-1 server batch: an optional owner line for request `POST-7`,
    /// then its conflict.
    fn conflict(owner: Option<(&str, &str)>) -> crate::app::event::Event {
        use crate::app::event::{OtkUpload, ServerBatch, ServerHit};
        use crate::domain::{Ke, KeSet};
        let mut kes = KeSet::default();
        kes.insert(Ke::Ke1);
        let off = crate::domain::har::parse_otk_conflict(
            "One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\":\"b2xk\"}; new key: {'key': 'bmV3'}",
        );
        let mut batch = ServerBatch {
            otk_uploads: owner
                .map(|(u, d)| OtkUpload {
                    request: "POST-7".into(),
                    user: u.into(),
                    device: d.into(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let text = batch.add_text("conflict");
        batch.hits.push(ServerHit {
            line_no: 2,
            at: DateTime::from_timestamp(1_782_842_401, 0),
            text,
            kes,
            ke_line_no: [1, 0, 0, 0],
            error: true,
            offending: off.map(std::sync::Arc::new),
            request: Some("POST-7".into()),
        });
        crate::app::event::Event::Server(Box::new(batch))
    }

    #[test]
    fn only_a_conflict_whose_owner_line_names_our_device_is_ours() {
        let mut app = crate::verdicts::test_app();
        app.update(conflict(None));
        assert!(app.offending.is_empty());
        assert_eq!(app.attribution.ke1_undecided_conflicts, 1);
        assert_eq!(
            app.attribution.ke1_undecided_refs,
            vec![EvidenceRef("server/KE-1.log:1".into())]
        );
        assert!(app.attribution.ke1_ours.bounds().is_none());
        app.update(conflict(Some(("@a:hs", "PHONE"))));
        assert_eq!((app.offending.len(), app.foreign_conflicts), (0, 1));
        app.update(conflict(Some(("@a:hs", "DEV"))));
        assert_eq!(app.offending.len(), 1);
        assert!(app.attribution.ke1_ours.bounds().is_some());
    }

    #[test]
    fn someone_elses_report_is_counted_and_shown_but_feeds_nothing() {
        use crate::app::event::{ClientEntry, Event};
        use crate::domain::Ke;
        let mut app = crate::verdicts::test_app();
        let t = DateTime::from_timestamp(1_782_842_400, 0).unwrap_or_default();
        let entry = |i: usize, ke: Ke, message: &str| ClientEntry {
            file: "d.json".into(),
            index: i,
            at: Some(t),
            level: Some("error".into()),
            ke: Some(ke),
            error: true,
            message: message.into(),
            line: None,
        };
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        diag.user_id = Some("@b:hs".into());
        diag.entries = vec![
            entry(
                0,
                Ke::Ke1,
                "One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\":\"b2xk\"}; new key: {'key': 'bmV3'}",
            ),
            entry(1, Ke::Ke2, "MissingKey: missing key at index 0"),
            entry(
                2,
                Ke::Ke4,
                "AbortError: Restart delayed event timed out before the HS responded",
            ),
            entry(
                3,
                Ke::Ke3,
                "Error decrypting event (id=$e:hs type=m.room.encrypted): DecryptionError[msg: missing field `algorithm`]",
            ),
        ];
        diag.ke3_event_ids = vec!["$e:hs".into()];
        let fx = app.update(Event::Client(Box::new(diag)));
        assert_eq!(app.client_counts(), [1, 1, 1, 1]);
        assert_eq!(app.panes[Ke::Ke2.index()].len(), 1);
        assert!(app.client_errors.is_empty() && app.offending.is_empty());
        assert!(app.timeouts.is_empty() && app.ke3_ids.is_empty());
        assert!(app.attribution.ke2_ours.bounds().is_none());
        assert!(
            !fx.iter()
                .any(|e| matches!(e, crate::app::Effect::Ke3Ids(_)))
        );
        assert_eq!(
            app.not_subject.get("d.json").map(String::as_str),
            Some("the report is @b:hs's")
        );
    }

    #[test]
    fn a_device_named_by_a_later_diag_report_judges_the_earlier_lines_again() {
        use crate::app::event::{Event, ServerBatch, ToDeviceTrace};
        let mut app = crate::app::App::new(Subject::default(), 2_000);
        // Read before any file names our device: undecided, not ours.
        app.update(conflict(Some(("@a:hs", "DEV"))));
        app.update(conflict(Some(("@a:hs", "PHONE"))));
        let mut batch = ServerBatch::default();
        for (n, who) in [(3, "@a:hs/DEV"), (4, "@b:hs/BDEV")] {
            batch.to_device.push(ToDeviceTrace {
                line_no: n,
                at: None,
                text: format!("Storing to-device messages with stream_id 9: ['{who} (msgid m1)']"),
            });
        }
        app.update(Event::Server(Box::new(batch)));
        assert!(app.offending.is_empty());
        assert_eq!(app.attribution.ke1_undecided_conflicts, 2);
        assert_eq!(app.to_device_for_us_count, 0);
        let t = DateTime::from_timestamp(1_782_842_500, 0).unwrap_or_default();
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        diag.user_id = Some("@a:hs".into());
        diag.device_id = Some("DEV".into());
        app.update(Event::Client(Box::new(diag.clone())));
        assert_eq!(app.subject.device_id.as_deref(), Some("DEV"));
        assert_eq!(app.subject.user_id.as_deref(), Some("@a:hs"));
        assert_eq!(app.subject_from.as_deref(), Some("client/d.json"));
        assert_eq!(app.offending.len(), 1);
        assert_eq!(
            (
                app.foreign_conflicts,
                app.attribution.ke1_undecided_conflicts
            ),
            (1, 0)
        );
        assert!(app.attribution.ke1_ours.bounds().is_some());
        assert!(app.attribution.ke1_undecided.bounds().is_none());
        assert_eq!(app.own_ke1_errors, 1);
        assert_eq!(app.to_device_for_us_count, 1);
        assert!(app.subject_warnings.is_empty());
        // Another device of the same user: a warning, the first one stays.
        diag.file = "e.json".into();
        diag.device_id = Some("LAPTOP".into());
        app.update(Event::Client(Box::new(diag.clone())));
        assert_eq!(app.subject.device_id.as_deref(), Some("DEV"));
        assert_eq!(app.subject_warnings.len(), 1, "{:?}", app.subject_warnings);
        assert!(
            app.subject_warnings[0]
                .contains("e.json names device LAPTOP, but client/d.json names DEV")
        );
        assert!(app.not_subject.contains_key("e.json"));
        // Someone else's report is theirs, not a conflict.
        diag.file = "f.json".into();
        diag.user_id = Some("@b:hs".into());
        app.update(Event::Client(Box::new(diag)));
        assert_eq!(app.subject_warnings.len(), 1);
    }

    #[test]
    fn a_report_naming_no_device_or_a_har_leaves_the_device_unknown() {
        use crate::app::event::Event;
        let mut app = crate::app::App::new(Subject::default(), 2_000);
        let t = DateTime::from_timestamp(1_782_842_500, 0).unwrap_or_default();
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        diag.user_id = Some("@a:hs".into());
        app.update(Event::Client(Box::new(diag)));
        let mut har = ClientArtifact::new("h.har".into(), ArtifactKind::Har, t);
        har.device_id = Some("DEV".into());
        app.update(Event::Client(Box::new(har)));
        assert_eq!(app.subject, Subject::default());
        // A flag's user and another user's report: not taken.
        let mut app = crate::app::App::new(
            Subject {
                user_id: Some("@a:hs".into()),
                ..Subject::default()
            },
            2_000,
        );
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        diag.user_id = Some("@b:hs".into());
        diag.device_id = Some("BDEV".into());
        app.update(Event::Client(Box::new(diag)));
        assert_eq!(app.subject.device_id, None);
    }
}
