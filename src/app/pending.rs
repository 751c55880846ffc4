//! Server evidence kept while no device is known, as summaries whose size
//! does not grow with the number of lines: KE-1 sightings by the owner
//! their request's owner line names, to-device tracing by the recipients
//! it names. When the device becomes known they give the same counts,
//! time ranges and first references as judging every line again would.

use super::server::Ke1Sighting;
use crate::domain::har::key_of;
use chrono::{DateTime, Utc};
use compact_str::CompactString;

/// Owners (user and device, or none seen) kept; past that, the evidence
/// stays undecided (and a warning says so).
pub(super) const OWNERS_CAP: usize = 1024;
/// Refused key ids kept per owner.
const KEYS_PER_OWNER: usize = 64;
/// Recipient devices (and users per device) kept from to-device tracing.
pub(super) const RECIPIENTS_CAP: usize = 1024;
const USERS_PER_DEVICE: usize = 8;
/// References kept per list: as many as the App keeps of each kind.
const FIRST_REFS: usize = 5;
const KEY_REFS: usize = 3;

/// Where a line is: its arrival order, its KE-1 line and its line.
pub(super) type LineRef = (u64, u64, u64);

/// The KE-1 errors and conflicts of one owner.
#[derive(Debug, Clone, Default)]
pub(super) struct OwnerSummary {
    pub owner: Option<(CompactString, CompactString)>,
    pub errors: u64,
    pub error_first: Option<DateTime<Utc>>,
    pub error_last: Option<DateTime<Utc>>,
    /// The first errors with a KE-1 line.
    pub error_refs: Vec<LineRef>,
    pub conflicts: u64,
    pub conflict_refs: Vec<LineRef>,
    pub keys: Vec<KeySummary>,
}

/// One refused key id of one owner: what recording each of its conflicts
/// in turn would have kept.
#[derive(Debug, Clone)]
pub(super) struct KeySummary {
    pub algorithm: String,
    pub key_id: String,
    /// Arrival order and time of the first conflict.
    pub first: (u64, Option<DateTime<Utc>>),
    /// The first stored and uploaded `key` values the conflicts name.
    pub stored: Option<(u64, String)>,
    pub uploaded: Option<(u64, String)>,
    pub count: u64,
    pub refs: Vec<LineRef>,
}

/// Who to-device traces named under one device id: the traces naming
/// `/<device>` and, per user before the slash, those naming
/// `<user>/<device>`; each with its first line numbers.
#[derive(Debug, Clone, Default)]
pub(super) struct Recipient {
    pub device: CompactString,
    pub traces: u64,
    pub lines: Vec<u64>,
    pub users: Vec<(CompactString, u64, Vec<u64>)>,
}

/// What is judged again when the device becomes known.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingSubject {
    pub owners: Vec<OwnerSummary>,
    pub recipients: Vec<Recipient>,
    /// Lines kept so far (their arrival order).
    seq: u64,
    pub overflow: bool,
}

fn push_first<T>(v: &mut Vec<T>, cap: usize, x: T) {
    if v.len() < cap {
        v.push(x);
    }
}

impl PendingSubject {
    pub(super) fn keep_ke1(&mut self, k: &Ke1Sighting) {
        self.seq += 1;
        let seq = self.seq;
        let found = find_or_push(
            &mut self.owners,
            OWNERS_CAP,
            |o| o.owner == k.owner,
            || OwnerSummary {
                owner: k.owner.clone(),
                ..Default::default()
            },
        );
        let Some(i) = found else {
            self.overflow = true;
            return;
        };
        let o = &mut self.owners[i];
        let at = (seq, k.ke_line_no, k.line_no);
        if k.error {
            o.errors += 1;
            if let Some(t) = k.at {
                o.error_first = Some(o.error_first.map_or(t, |f| f.min(t)));
                o.error_last = Some(o.error_last.map_or(t, |l| l.max(t)));
            }
            if k.ke_line_no > 0 {
                push_first(&mut o.error_refs, FIRST_REFS, at);
            }
        }
        let Some(off) = k.offending.as_deref() else {
            return;
        };
        o.conflicts += 1;
        push_first(&mut o.conflict_refs, FIRST_REFS, at);
        let key = match o
            .keys
            .iter()
            .position(|s| s.key_id == off.key_id && s.algorithm == off.algorithm)
        {
            Some(j) => &mut o.keys[j],
            None if o.keys.len() < KEYS_PER_OWNER => {
                o.keys.push(KeySummary {
                    algorithm: off.algorithm.clone(),
                    key_id: off.key_id.clone(),
                    first: (seq, k.at),
                    stored: None,
                    uploaded: None,
                    count: 0,
                    refs: Vec::new(),
                });
                o.keys.last_mut().unwrap_or_else(|| unreachable!())
            }
            None => {
                self.overflow = true;
                return;
            }
        };
        key.count += 1;
        push_first(&mut key.refs, KEY_REFS, at);
        if key.stored.is_none() {
            key.stored = off.old_key.as_ref().and_then(key_of).map(|v| (seq, v));
        }
        if key.uploaded.is_none() {
            key.uploaded = off.new_key.as_ref().and_then(key_of).map(|v| (seq, v));
        }
    }

    /// Counts a to-device trace under each device (and user and device) it
    /// names, once per trace.
    pub(super) fn keep_to_device(&mut self, line_no: u64, text: &str) {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (user, device) in recipients(text) {
            if seen.contains(&(user, device)) {
                continue;
            }
            let new_device = !seen.iter().any(|(_, d)| *d == device);
            seen.push((user, device));
            let found = find_or_push(
                &mut self.recipients,
                RECIPIENTS_CAP,
                |r| r.device == device,
                || Recipient {
                    device: device.into(),
                    ..Default::default()
                },
            );
            let Some(i) = found else {
                self.overflow = true;
                continue;
            };
            let r = &mut self.recipients[i];
            if new_device {
                r.traces += 1;
                push_first(&mut r.lines, super::EVIDENCE_CAP, line_no);
            }
            match r.users.iter().position(|(u, _, _)| u == user) {
                Some(j) => {
                    let (_, n, lines) = &mut r.users[j];
                    *n += 1;
                    push_first(lines, super::EVIDENCE_CAP, line_no);
                }
                None if r.users.len() < USERS_PER_DEVICE => {
                    r.users.push((user.into(), 1, vec![line_no]));
                }
                None => self.overflow = true,
            }
        }
    }
}

/// Whether `c` can continue a device id (as the App reads recipients).
fn id_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// What cannot be part of a user id in a trace's list
/// (`['@u:hs/DEV (msgid m1)', …]`).
fn user_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '[' | ']' | ',' | '(' | ')' | '/')
}

/// Every `user/device` a trace's text holds: the device is the whole id
/// after a slash, the user what stands before it back to a quote, a space
/// or a bracket.
pub(super) fn recipients(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.match_indices('/').filter_map(move |(p, _)| {
        let after = &text[p + 1..];
        let end = after.find(|c: char| !id_char(c)).unwrap_or(after.len());
        let device = &after[..end];
        if device.is_empty() {
            return None;
        }
        let before = &text[..p];
        let start = before.rfind(user_end).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        Some((&before[start..], device))
    })
}

/// The index of the entry `is` finds, else of one `new` makes while `v`
/// holds fewer than `cap`; `None` once it is full.
fn find_or_push<T>(
    v: &mut Vec<T>,
    cap: usize,
    is: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> Option<usize> {
    if let Some(i) = v.iter().position(is) {
        return Some(i);
    }
    (v.len() < cap).then(|| {
        v.push(new());
        v.len() - 1
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::recipients;
    use crate::app::event::{
        ArtifactKind, ClientArtifact, Event, OtkUpload, ServerBatch, ServerHit, ToDeviceTrace,
    };
    use crate::app::{App, Subject};
    use crate::domain::{Ke, KeSet};
    use chrono::DateTime;

    #[test]
    fn recipients_are_whole_devices_with_the_user_before_them() {
        let got: Vec<_> = recipients(
            "Storing to-device messages with stream_id 60: ['@a:hs/DEV2 (msgid m1)', '@b:hs/DEV (msgid m2)'] /x",
        )
        .collect();
        assert_eq!(got, [("@a:hs", "DEV2"), ("@b:hs", "DEV"), ("", "x")]);
    }

    /// A storm of KE-1 conflicts and errors of several owners and key ids,
    /// and to-device traces naming several recipients, line by line.
    fn storm() -> Vec<Event> {
        let mut out = Vec::new();
        let owners = [
            Some(("@a:hs", "DEV")),
            Some(("@a:hs", "PHONE")),
            Some(("@b:hs", "DEV")),
            None,
        ];
        for n in 0..400u64 {
            let mut b = ServerBatch::default();
            let request = format!("POST-{n}");
            if let Some((u, d)) = owners[(n % 4) as usize] {
                b.otk_uploads.push(OtkUpload {
                    request: request.as_str().into(),
                    user: u.into(),
                    device: d.into(),
                });
            }
            let mut kes = KeSet::default();
            kes.insert(Ke::Ke1);
            // Some conflicts name no stored key, some no key at all (a
            // plain 400), and the key ids differ.
            let text = match n % 5 {
                0 => "SynapseError: 400 - keys/upload failed".to_string(),
                1 => format!(
                    "One time key signed_curve25519:AAAA{} already exists. Old key: {{\"signatures\":{{}}}}; new key: {{'key': 'new{n}'}}",
                    n % 3
                ),
                _ => format!(
                    "One time key signed_curve25519:AAAA{} already exists. Old key: {{\"key\":\"old{n}\"}}; new key: {{'key': 'new{n}'}}",
                    n % 3
                ),
            };
            let off = crate::domain::har::parse_otk_conflict(&text).map(std::sync::Arc::new);
            let span = b.add_text(&text);
            b.hits.push(ServerHit {
                line_no: 10 * n + 1,
                at: DateTime::from_timestamp(1_782_842_400 + (n as i64 * 37) % 500, 0),
                text: span,
                kes,
                ke_line_no: [if n % 7 == 3 { 0 } else { n + 1 }, 0, 0, 0],
                error: n % 6 != 5,
                offending: off,
                request: Some(request.as_str().into()),
            });
            let who = ["@a:hs/DEV", "@b:hs/DEV", "@a:hs/DEV2", "@a:hs/PHONE"];
            b.to_device.push(ToDeviceTrace {
                line_no: 10 * n + 2,
                at: None,
                text: format!(
                    "Storing to-device messages with stream_id {n}: ['{} (msgid m{n})', '{} (msgid m{n})']",
                    who[(n % 4) as usize],
                    who[((n / 4) % 4) as usize]
                ),
            });
            out.push(Event::Server(Box::new(b)));
        }
        out
    }

    #[test]
    fn the_summaries_judge_as_every_line_judged_again_would() {
        let mut known = App::new(
            Subject {
                user_id: Some("@a:hs".into()),
                device_id: Some("DEV".into()),
                participants: vec![],
            },
            2000,
        );
        let mut learnt = App::new(Subject::default(), 2000);
        for e in storm() {
            known.update(e.clone());
            learnt.update(e);
        }
        let t = DateTime::from_timestamp(1_782_843_000, 0).unwrap();
        let mut diag = ClientArtifact::new("d.json".into(), ArtifactKind::Diag, t);
        diag.user_id = Some("@a:hs".into());
        diag.device_id = Some("DEV".into());
        learnt.update(Event::Client(Box::new(diag.clone())));
        known.update(Event::Client(Box::new(diag)));
        assert_eq!(learnt.subject.device_id.as_deref(), Some("DEV"));
        assert!(learnt.subject_warnings.is_empty());
        assert!(known.own_ke1_errors > 100 && known.foreign_conflicts > 100);
        assert!(known.to_device_for_us_count > 100);
        assert_eq!(learnt.own_ke1_errors, known.own_ke1_errors);
        assert_eq!(learnt.own_ke1_error_refs, known.own_ke1_error_refs);
        assert_eq!(learnt.foreign_conflicts, known.foreign_conflicts);
        assert_eq!(learnt.attribution, known.attribution);
        assert_eq!(learnt.offending, known.offending);
        assert_eq!(learnt.to_device_for_us_count, known.to_device_for_us_count);
        assert_eq!(learnt.to_device_for_us, known.to_device_for_us);
    }
}
