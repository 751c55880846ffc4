//! Server evidence into the App: KE hits, access lines (latency, restarts,
//! sendToDevice), Synapse's to-device tracing, and whose keys/upload each
//! request is, so OTK conflicts are attributed to the right device.

use super::event::{self, AccessSample, ServerHit, ServerStall};
use super::stats::minute_of;
use super::{
    App, EVIDENCE_CAP, EvidenceRef, Owner, PANE_CAPACITY, PaneLine, STALL_CAP, SightingKind,
    TIMEOUTS_CAP, Timeout,
};
use crate::domain::Ke;
use crate::model::server_logs::split_line_number;
use compact_str::CompactString;
use std::collections::HashMap;

/// Recent keys/upload request owners kept for attributing conflicts, per
/// generation: 7/8 of 4096, as many as a table of 4096 buckets holds, so a
/// full generation never doubles its table to 8192 (300 KB, not 600 KB).
const UPLOAD_OWNERS_CAP: usize = 3584;

/// Minutes of latency kept whole behind the newest one seen (lines a little
/// out of order still land in their minute's histogram); older minutes are
/// closed.
const LATENCY_OPEN_MINUTES: i64 = 10;

/// Who recent keys/upload requests were: at least the last
/// [`UPLOAD_OWNERS_CAP`] of them, in two generations (when the newer is full,
/// the older is emptied and takes its place: this sees every upload in a
/// flood).
#[derive(Debug, Clone, Default)]
pub(super) struct UploadOwners {
    current: OwnerMap,
    previous: OwnerMap,
}

/// Request ids, users and devices are short: kept inline, hashed fast (the
/// log is the server's own, and a generation holds a few thousand entries).
type OwnerMap = HashMap<CompactString, (CompactString, CompactString), foldhash::fast::RandomState>;

impl UploadOwners {
    fn insert(&mut self, request: CompactString, owner: (CompactString, CompactString)) {
        if self.current.len() >= UPLOAD_OWNERS_CAP {
            // The older generation's table is emptied and reused: a flood
            // of uploads neither allocates nor touches fresh memory.
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert(request, owner);
    }

    fn get(&self, request: &str) -> Option<&(CompactString, CompactString)> {
        self.current
            .get(request)
            .or_else(|| self.previous.get(request))
    }
}

impl App {
    pub(super) fn on_server(&mut self, mut batch: event::ServerBatch) {
        self.lines_total = batch.lines_total;
        self.bytes_total = batch.bytes_total;
        if let Some(last) = batch
            .hits
            .iter()
            .map(|h| h.line_no)
            .chain(batch.access.iter().map(|a| a.line_no))
            .max()
        {
            let (index, line) = crate::model::server_logs::split_line_number(last);
            let name = self.server_logs.name(index).to_string();
            let seen = self.log_lines.entry(name).or_default();
            *seen = (*seen).max(line);
        }
        self.server_redactions += batch.redactions;
        for t in [batch.first_at, batch.last_at].into_iter().flatten() {
            self.widen(t);
        }
        // Owners first: Synapse logs them before the conflict they explain.
        for u in batch.otk_uploads.drain(..) {
            self.upload_owner.insert(u.request, (u.user, u.device));
        }
        for hit in std::mem::take(&mut batch.hits) {
            self.on_hit(batch.text(&hit), hit);
        }
        for a in batch.access {
            self.on_access(a);
        }
        for tr in batch.to_device {
            self.to_device_traces += 1;
            if self.subject.device_id.is_none() {
                self.pending_subject.keep_to_device(tr.line_no, &tr.text);
            }
            if self.count_to_device_for_us(tr.line_no, &tr.text) {
                continue;
            }
            if self.to_device_other.len() < 5 {
                let r = EvidenceRef(self.server_ref(tr.line_no));
                self.to_device_other.push(r);
            }
        }
        for s in batch.stalls {
            self.on_stall(s);
        }
        if !batch.sfu.is_empty() || !batch.lk_grants.is_empty() || batch.sfu_unread > 0 {
            let (sfu, grants) = (
                std::mem::take(&mut batch.sfu),
                std::mem::take(&mut batch.lk_grants),
            );
            let recognised = (sfu.len() + grants.len()) as u64;
            self.on_sfu(sfu, grants, batch.sfu_unread);
            self.note_unrecognised_sfu(&batch.source, recognised, batch.sfu_unread);
        }
    }

    /// A stall goes to the status line and is kept for Q4, the timeline
    /// and the report.
    fn on_stall(&mut self, s: ServerStall) {
        self.stalls_seen += 1;
        let text = format!(
            "server log silent {:.1} s, then {} records within 1 s: {} ({})",
            s.silence_ms() as f64 / 1000.0,
            s.burst,
            // An idle homeserver's log can be silent too; a restart that
            // waited through the silence says it was not idle.
            if s.delayed_restart {
                "the homeserver stalled, a delayed-event restart waited"
            } else {
                "a stall if requests were waiting"
            },
            s.evidence(&self.server_logs)
        );
        let log = self
            .server_logs
            .name(split_line_number(s.line_no).0)
            .to_string();
        self.note(s.to, &log, text);
        if self.stalls.len() < STALL_CAP {
            self.stalls.push(s);
        }
    }

    fn on_hit(&mut self, text: &str, hit: ServerHit) {
        for ke in hit.kes.iter() {
            self.server[ke.index()].add(hit.at, hit.error);
            self.pane_pushed[ke.index()] += 1;
        }
        if self.server_panes {
            self.pane_hit(text, &hit);
        }
        // Another device's keys/upload (key ids like AAAAAAAAAFA repeat
        // across devices): neither its conflict nor its 400 is ours. One
        // whose owner line was not seen is undecided, never ours.
        let ke1_error = hit.kes.contains(Ke::Ke1) && hit.error;
        if !ke1_error && hit.offending.is_none() {
            return;
        }
        let sighting = Ke1Sighting {
            at: hit.at,
            owner: hit
                .request
                .as_ref()
                .and_then(|r| self.upload_owner.get(r))
                .cloned(),
            error: ke1_error,
            offending: hit.offending,
            ke_line_no: hit.ke_line_no[Ke::Ke1.index()],
            line_no: hit.line_no,
        };
        if self.subject.device_id.is_none() {
            // Judged again if a client file names our device later.
            self.pending_subject.keep_ke1(&sighting);
        }
        self.attribute_ke1(&sighting);
    }

    /// A hit shown in the panes of its KEs (counted in `pane_pushed` by
    /// the caller).
    fn pane_hit(&mut self, text: &str, hit: &ServerHit) {
        let tracked = self.is_tracked(text);
        let log = self.pane_log_name(hit.line_no);
        for ke in hit.kes.iter() {
            let i = ke.index();
            let pane = &mut self.panes[i];
            // A full pane's oldest line lends its buffer to the newest: a
            // flood of hits allocates nothing. Not a buffer more than twice
            // the size needed: lent on and on, every buffer would grow to
            // the longest line it ever held, and a long call's panes with
            // it.
            let text = match (pane.len() >= PANE_CAPACITY)
                .then(|| pane.pop_front())
                .flatten()
            {
                Some(old) if old.text.capacity() <= lend_limit(text.len()) => {
                    let mut buf = old.text;
                    buf.clear();
                    buf.push_str(text);
                    buf
                }
                _ => text.to_owned(),
            };
            pane.push_back(PaneLine {
                line_no: hit.line_no,
                ke_line_no: hit.ke_line_no[i],
                at: hit.at,
                text,
                error: hit.error,
                tracked,
                origin: "server",
                log: log.clone(),
            });
        }
    }

    /// The name of a line's server log when there are several, shared by
    /// every pane line of that log (made once, not per line).
    pub(super) fn pane_log_name(&mut self, line_no: u64) -> Option<std::sync::Arc<str>> {
        if !self.server_logs.several() {
            return None;
        }
        let index = split_line_number(line_no).0;
        let name = self.server_logs.names().get(index)?;
        if self.log_names.get(index).is_none_or(|n| **n != **name) {
            self.log_names
                .resize(self.log_names.len().max(index + 1), "".into());
            self.log_names[index] = name.as_str().into();
        }
        self.log_names.get(index).cloned()
    }

    /// Counts a KE-1 error or conflict as ours, someone else's or
    /// undecided, by its request's owner line.
    pub(super) fn attribute_ke1(&mut self, k: &Ke1Sighting) {
        let owner = self
            .subject
            .owner_of(k.owner.as_ref().map(|(u, d)| (u.as_str(), d.as_str())));
        if k.error && owner != Owner::Foreign {
            self.own_ke1_errors += 1;
            if self.own_ke1_error_refs.len() < 5 && k.ke_line_no > 0 {
                let r = self.ke_ref(Ke::Ke1, k.ke_line_no, k.line_no);
                self.own_ke1_error_refs.push(EvidenceRef(r));
            }
        }
        match owner {
            Owner::Ours if k.error => self.attribution.ke1_ours.add(k.at),
            Owner::Undecided if k.error => self.attribution.ke1_undecided.add(k.at),
            _ => {}
        }
        let Some(off) = k.offending.as_ref() else {
            return;
        };
        let r = EvidenceRef(self.ke_ref(Ke::Ke1, k.ke_line_no, k.line_no));
        match owner {
            Owner::Foreign => self.foreign_conflicts += 1,
            Owner::Undecided => self.attribution.undecided_conflict(r),
            Owner::Ours => self.record_conflict(off, k.at, SightingKind::Server, r),
        }
    }

    fn on_access(&mut self, a: AccessSample) {
        self.access_lines += 1;
        if a.send_to_device {
            let from_participant = a.requester.as_deref().is_some_and(|r| {
                self.subject
                    .participants
                    .iter()
                    .any(|p| p.split('/').next() == Some(r))
            });
            if from_participant || self.subject.participants.is_empty() {
                self.send_to_device += 1;
                if self.send_to_device_refs.len() < 5 {
                    self.send_to_device_refs
                        .push(EvidenceRef(self.server_ref(a.line_no)));
                }
            }
        }
        if a.long_poll {
            return;
        }
        let m = minute_of(a.at);
        let minute = self.latency.entry(m).or_default();
        minute.add_line(a.processing_ms, self.restart_timeout_ms, a.line_no);
        if a.delayed_event {
            minute.add_delayed(a.processing_ms, self.restart_timeout_ms, a.line_no);
        }
        // Minutes the log has left well behind keep only their p99.
        let open_from = m - LATENCY_OPEN_MINUTES;
        if open_from > self.latency_open_from {
            for (_, l) in self.latency.range_mut(self.latency_open_from..open_from) {
                l.close();
            }
            self.latency_open_from = open_from;
        }
        if a.delayed_restart
            && a.processing_ms >= self.restart_timeout_ms
            && self.timeouts.len() < TIMEOUTS_CAP
        {
            self.keep_timeout(Timeout::server(a.at, a.line_no, a.processing_ms));
        }
    }
}

/// The largest buffer a pane line of `len` bytes is given: twice its size
/// (at least 64 bytes, what the allocator gives a short line anyway).
fn lend_limit(len: usize) -> usize {
    (2 * len).max(64)
}

/// Whether a `Storing to-device messages …: ['@u:hs/DEVICE (msgid …)', …]`
/// trace names this device as a recipient: `user/device` (or `/device`
/// when the user is unknown) followed by something that cannot continue a
/// device id, so `DEV` does not match `DEV2`.
impl App {
    /// Counts a to-device tracing line naming our device; false when it
    /// names none (or no device is known).
    pub(super) fn count_to_device_for_us(&mut self, line_no: u64, text: &str) -> bool {
        let ours = self
            .subject
            .device_id
            .as_deref()
            .is_some_and(|d| names_recipient(text, self.subject.user_id.as_deref(), d));
        if ours {
            self.to_device_for_us_count += 1;
            if self.to_device_for_us.len() < EVIDENCE_CAP {
                let r = EvidenceRef(self.server_ref(line_no));
                self.to_device_for_us.push(r);
            }
        }
        ours
    }
}

/// A KE-1 error or conflict of the server log, with what attributes it.
#[derive(Debug, Clone)]
pub(super) struct Ke1Sighting {
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The user and device its request's owner line names.
    pub owner: Option<(CompactString, CompactString)>,
    pub error: bool,
    pub offending: Option<std::sync::Arc<crate::domain::har::OffendingKey>>,
    pub ke_line_no: u64,
    pub line_no: u64,
}

fn names_recipient(text: &str, user: Option<&str>, device: &str) -> bool {
    let needle = match user {
        Some(u) => format!("{u}/{device}"),
        None => format!("/{device}"),
    };
    text.match_indices(needle.as_str()).any(|(i, m)| {
        text[i + m.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{UPLOAD_OWNERS_CAP, UploadOwners, names_recipient};
    use crate::app::event::{Event, ServerBatch, ServerStall};
    use crate::app::{App, STALL_CAP, Subject};
    use chrono::DateTime;

    #[test]
    fn upload_owners_keep_at_least_the_last_cap_requests() {
        let mut o = UploadOwners::default();
        let n = 3 * UPLOAD_OWNERS_CAP + 7;
        for i in 0..n {
            o.insert(
                format!("POST-{i}").into(),
                (format!("@u{i}:hs").into(), format!("D{i}").into()),
            );
        }
        for i in n - UPLOAD_OWNERS_CAP..n {
            let owner = o.get(&format!("POST-{i}")).map(|(u, _)| u.to_string());
            assert_eq!(owner, Some(format!("@u{i}:hs")), "POST-{i}");
        }
        assert_eq!(o.get("POST-0"), None);
        assert!(o.current.len() + o.previous.len() <= 2 * UPLOAD_OWNERS_CAP);
        // A full generation's table was not doubled for its last entry.
        assert!(
            o.current.capacity() <= UPLOAD_OWNERS_CAP,
            "{}",
            o.current.capacity()
        );
        assert!(
            o.previous.capacity() <= UPLOAD_OWNERS_CAP,
            "{}",
            o.previous.capacity()
        );
    }

    #[test]
    fn latency_minutes_ten_behind_the_newest_keep_only_their_p99() {
        use crate::app::event::AccessSample;
        let mut app = App::new(Subject::default(), 2000);
        let sample = |minute: i64, ms: u32| AccessSample {
            line_no: 1,
            at: DateTime::from_timestamp(1_782_842_400 + 60 * minute, 0).unwrap(),
            processing_ms: ms,
            status: 200,
            long_poll: false,
            delayed_restart: false,
            delayed_event: false,
            send_to_device: false,
            requester: None,
        };
        let batch = |access| {
            Event::Server(Box::new(ServerBatch {
                access,
                ..Default::default()
            }))
        };
        for minute in 0..30 {
            app.update(batch((1..=100).map(|ms| sample(minute, ms)).collect()));
        }
        let newest = *app.latency.keys().next_back().unwrap();
        // Closing a closed minute changes nothing; an open one it does.
        let closed = |l: &crate::app::stats::MinuteLatency| {
            let mut again = l.clone();
            again.close();
            &again == l
        };
        let mut whole = crate::app::stats::MinuteLatency::default();
        for ms in 1..=100 {
            whole.add(ms, 2000);
        }
        for (&m, l) in &app.latency {
            assert_eq!(l.n, 100);
            assert_eq!(l.p99_ms(), whole.p99_ms(), "minute {m}");
            assert_eq!(closed(l), m < newest - 10, "minute {m}");
        }
        // A line out of order by a few minutes still lands in its minute.
        app.update(batch(vec![sample(25, 7)]));
        assert_eq!(app.latency[&(newest - 4)].n, 101);
    }

    #[test]
    fn a_full_pane_keeps_the_newest_lines_in_order() {
        use crate::app::PANE_CAPACITY;
        use crate::app::view::fixtures::hit;
        use crate::domain::Ke;
        let mut app = App::new(Subject::default(), 2000);
        let n = PANE_CAPACITY + 7;
        for k in 0..n {
            // Lines of changing length: a lent buffer must hold only the
            // new text.
            let text = format!("line {k} {}", "x".repeat(k % 13));
            hit(&mut app, Ke::Ke2, k as i64, &text, false);
        }
        let pane = &app.panes[Ke::Ke2.index()];
        assert_eq!(pane.len(), PANE_CAPACITY);
        for (line, k) in pane.iter().zip(n - PANE_CAPACITY..n) {
            assert_eq!(line.text, format!("line {k} {}", "x".repeat(k % 13)));
            assert_eq!(line.ke_line_no, k as u64 + 1);
        }
        assert_eq!(app.pane_pushed[Ke::Ke2.index()], n as u64);
    }

    /// Lines of every length pass through a full pane for a long call:
    /// the buffers the pane holds stay within twice what their lines need,
    /// instead of each keeping the longest line it ever held.
    #[test]
    fn a_full_pane_of_short_lines_after_long_ones_holds_about_what_they_need() {
        use crate::app::PANE_CAPACITY;
        use crate::app::view::fixtures::hit;
        use crate::domain::Ke;
        let mut app = App::new(Subject::default(), 2000);
        let mut k = 0i64;
        let mut push = |app: &mut App, len: usize| {
            let text = format!("{k:08} {}", "x".repeat(len));
            hit(app, Ke::Ke2, k, &text, false);
            k += 1;
        };
        // Every buffer once held a 4 KB line…
        for _ in 0..PANE_CAPACITY {
            push(&mut app, 4000);
        }
        // …then the storm's lines of 200-600 bytes, for a long time.
        for n in 0..5 * PANE_CAPACITY {
            push(&mut app, 200 + (n * 37) % 400);
        }
        let pane = &app.panes[Ke::Ke2.index()];
        let (held, needed): (usize, usize) = pane
            .iter()
            .map(|l| (l.text.capacity(), l.text.len()))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        assert!(held <= 2 * needed, "held {held} for {needed}");
    }

    /// `analyze` keeps no panes: every count is the same, the panes stay
    /// empty.
    #[test]
    fn without_panes_a_hit_counts_as_with_them() {
        use crate::app::view::fixtures::hit;
        use crate::domain::Ke;
        let feed = |server_panes: bool| {
            let mut app = App::new(Subject::default(), 2000);
            app.server_panes = server_panes;
            for k in 0..50i64 {
                let ke = Ke::ALL[k as usize % 4];
                hit(&mut app, ke, k, &format!("line {k}"), k % 3 == 0);
            }
            app
        };
        let (with, without) = (feed(true), feed(false));
        assert_eq!(without.server, with.server);
        assert_eq!(without.pane_pushed, with.pane_pushed);
        assert!(with.panes.iter().all(|p| !p.is_empty()));
        assert!(
            without
                .panes
                .iter()
                .all(std::collections::VecDeque::is_empty)
        );
    }

    #[test]
    fn stalls_are_noted_and_kept_up_to_the_cap() {
        let mut app = App::new(Subject::default(), 2000);
        let at = |s| DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap();
        let stalls = (0..STALL_CAP as i64 + 5)
            .map(|i| ServerStall {
                from: at(10 * i),
                to: at(10 * i + 6),
                line_no: 1 + i as u64,
                burst: 4,
                delayed_restart: i == 0,
            })
            .collect();
        app.update(Event::Server(Box::new(ServerBatch {
            stalls,
            ..Default::default()
        })));
        assert_eq!(app.stalls.len(), STALL_CAP);
        assert_eq!(app.stalls_seen, STALL_CAP as u64 + 5);
        assert!(app.stalls[0].delayed_restart);
        let (when, source, text) = app.notes.back().unwrap();
        assert_eq!((*when, source.as_str()), (at(10 * 1004 + 6), "server-log"));
        assert_eq!(
            text,
            "server log silent 6.0 s, then 4 records within 1 s: a stall if requests were waiting (server/homeserver.log:1005)"
        );
    }

    #[test]
    fn to_device_traces_name_whole_recipients() {
        let line = "Storing to-device messages with stream_id 60: ['@a:hs/DEV2 (msgid m1)', '@b:hs/DEV (msgid m2)']";
        assert!(!names_recipient(line, Some("@a:hs"), "DEV"));
        assert!(names_recipient(line, Some("@a:hs"), "DEV2"));
        assert!(names_recipient(line, None, "DEV"));
        assert!(names_recipient(line, Some("@b:hs"), "DEV"));
        assert!(!names_recipient(line, Some("@b:hs"), "DE"));
    }
}
