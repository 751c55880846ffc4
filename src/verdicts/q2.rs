//! Q2: does KE-1 explain KE-2? The runbook reaches Q2 from Q1's YES: the
//! link needs KE-1 for our device at the time of the KE-2 signatures.

use super::{
    DbRead, INSUFFICIENT, Verdict, db_missing, no_device, refs, rows, set_aside_artefacts,
};
use crate::app::event::ArtifactKind;
use crate::app::{App, EvidenceRef, TimeRange};
use crate::domain::Ke;
use chrono::{DateTime, Duration, Utc};

/// How far apart KE-1 for our device and the KE-2 signatures may be and
/// still overlap: a diverged OTK state is a standing condition, first seen
/// whenever the client next uploads keys (it retries far more often).
pub const LINK_SLACK_MIN: i64 = 5;

/// Entries a Lotus diag report keeps (a ring buffer): a full one may have
/// dropped its oldest.
const DIAG_RING: usize = 200;

/// Access lines cover the window when they begin and end within this of
/// it, and no two minutes with access lines are further apart.
const ACCESS_EDGE_S: i64 = 60;
const ACCESS_GAP_MIN: i64 = 5;

/// Whether two time ranges overlap once the first is widened by `slack`.
fn overlaps(a: &TimeRange, b: &TimeRange, slack: Duration) -> bool {
    match (a.bounds(), b.bounds()) {
        (Some((a0, a1)), Some((b0, b1))) => a0 - slack <= b1 && b0 <= a1 + slack,
        _ => false,
    }
}

fn hhmmss(t: Option<DateTime<Utc>>) -> String {
    t.map_or("?".into(), |t| t.format("%H:%M:%S").to_string())
}

/// Whether the server log's access lines cover the evidence's window (log
/// records, client entries, markers; not a live console's idle tail), so
/// the absence of a `sendToDevice` there means nobody sent one.
fn access_covers_window(app: &App) -> bool {
    let (Some(start), Some(end)) = app.window else {
        return false;
    };
    let minutes: Vec<i64> = app.latency.keys().copied().collect();
    let (Some(&first), Some(&last)) = (minutes.first(), minutes.last()) else {
        return false;
    };
    let edge = Duration::seconds(ACCESS_EDGE_S);
    let m = crate::app::stats::minute_of;
    first <= m(start + edge)
        && last >= m(end - edge)
        && minutes.windows(2).all(|w| w[1] - w[0] <= ACCESS_GAP_MIN)
}

/// The subject's diag reports that could show a KE-2 signature at the
/// first fault marker: downloaded after it, and not so full that entries
/// from then may have been dropped.
fn diag_covering(app: &App, marker: DateTime<Utc>) -> bool {
    app.artifacts.iter().any(|a| {
        // Element Web's logs reach back as far as their first entry.
        let logs_cover = a.kind == ArtifactKind::ElementLog
            && a.unparsed.is_none()
            && !app.not_subject.contains_key(&a.file)
            && a.arrived_at >= marker
            && a.first_at.is_some_and(|t| t <= marker);
        logs_cover
            || a.kind == ArtifactKind::Diag
                && a.unparsed.is_none()
                && !app.not_subject.contains_key(&a.file)
                && a.arrived_at >= marker
                && (a.entries.len() < DIAG_RING
                    || a.entries
                        .iter()
                        .filter_map(|e| e.at)
                        .min()
                        .is_some_and(|t| t <= marker))
    })
}

/// Present for our device, KE-2 in the client: linked, unlinked, or
/// undecided when only KE-1 of unknown owner falls at the time.
fn link(
    app: &App,
    how: &str,
    mut basis: Vec<String>,
    ke2: &[&(Ke, EvidenceRef, String)],
) -> Verdict {
    let a = &app.attribution;
    let slack = Duration::minutes(LINK_SLACK_MIN);
    let ke2_at = format!("{}–{}", hhmmss(a.ke2_ours.first), hhmmss(a.ke2_ours.last));
    basis.extend(ke2.iter().take(3).map(|(_, r, _)| r.0.clone()));
    if overlaps(&a.ke1_ours, &a.ke2_ours, slack) {
        let mut b: Vec<String> = app
            .offending
            .values()
            .filter_map(|o| o.evidence.first().map(|r| r.0.clone()))
            .take(1)
            .collect();
        if b.is_empty() {
            b.extend(refs(&app.own_ke1_error_refs, 1));
        }
        basis.extend(b);
        return Verdict {
            answer: "linked",
            summary: format!(
                "To-device messages for our device were {how}; the client shows {} KE-2 signature(s) ({ke2_at}) while our device's keys/upload fails with KE-1 ({}–{}): KE-1 ⇒ KE-2 link confirmed.",
                ke2.len(),
                hhmmss(a.ke1_ours.first),
                hhmmss(a.ke1_ours.last)
            ),
            basis,
        };
    }
    if overlaps(&a.ke1_undecided, &a.ke2_ours, slack) {
        basis.extend(a.ke1_undecided_refs.iter().take(2).map(|r| r.0.clone()));
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "To-device messages for our device were {how} and the client shows {} KE-2 signature(s) ({ke2_at}); KE-1 errors fall at that time, but the log does not name their device (no 'Adding one_time_keys … for device' line of the same request), so KE-1 for our device is not shown: keep synapse.handlers.e2e_keys at INFO, or add our client's diag report or HAR.",
                ke2.len()
            ),
            basis,
        };
    }
    // KE-1 of ours seen without a time (a HAR entry without its start)
    // cannot be set against KE-2 either way.
    let ke1_untimed = a.ke1_ours.bounds().is_none()
        && (!app.offending.is_empty() || app.client_errors.iter().any(|(k, _, _)| *k == Ke::Ke1));
    if a.ke2_ours.bounds().is_none() || ke1_untimed {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "To-device messages for our device were {how} and the client shows {} KE-2 signature(s), but {} no times to set KE-1 and KE-2 against each other.",
                ke2.len(),
                if ke1_untimed {
                    "our device's KE-1 evidence carries"
                } else {
                    "they carry"
                }
            ),
            basis,
        };
    }
    let ke1 = match a.ke1_ours.bounds() {
        Some((f, l)) => format!(
            "KE-1 for our device was seen only at {}–{}, more than {LINK_SLACK_MIN} min away",
            hhmmss(Some(f)),
            hhmmss(Some(l))
        ),
        None => {
            "no KE-1 for our device was seen in the server log, the client reports or a HAR".into()
        }
    };
    Verdict {
        answer: "unlinked",
        summary: format!(
            "To-device messages for our device were {how} and the client shows {} KE-2 signature(s) ({ke2_at}), but {ke1}: KE-2 without KE-1 for this device, look elsewhere.",
            ke2.len()
        ),
        basis,
    }
}

pub(super) fn q2(app: &App) -> Verdict {
    if app.subject.device_id.is_none() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!("To-device delivery cannot be judged: {}.", no_device(app)),
            basis: refs(&app.send_to_device_refs, 3),
        };
    }
    let db = DbRead::of(app);
    // Only polls close to the call: an inbox read weeks later says nothing
    // about what was queued during it.
    let backlog: Vec<i64> = app
        .db
        .backlog_series
        .iter()
        .filter(|(at, _)| super::db_time::timely_at(app, *at))
        .map(|(_, n)| *n)
        .collect();
    let backlog_max = backlog.iter().copied().max().unwrap_or(0);
    let inbox_read = !backlog.is_empty();
    let inbox_stale = !app.db.backlog_series.is_empty() && !inbox_read;
    let read = db.map(|d| d.clause()).unwrap_or_default();
    let db_ref = rows(app, "device_inbox_pending")
        .filter(|_| db.is_some_and(|d| d.timely()))
        .map(|_| "db/last.json#device_inbox_pending".to_string());
    let queued = backlog_max > 0;
    let traced = app.to_device_for_us_count > 0;
    let ke2: Vec<&(Ke, EvidenceRef, String)> = app
        .client_errors
        .iter()
        .filter(|(k, _, _)| *k == Ke::Ke2)
        .collect();
    let markers: Vec<DateTime<Utc>> = app.live_markers().map(|m| m.at).collect();

    if queued || traced {
        let mut basis: Vec<String> = db_ref.iter().filter(|_| queued).cloned().collect();
        basis.extend(refs(&app.to_device_for_us, 3));
        let how = match (queued, traced) {
            (true, true) => format!(
                "queued in device_inbox (up to {backlog_max}; {read}) and traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
            (true, false) => format!("queued in device_inbox (up to {backlog_max}; {read})"),
            _ => format!(
                "traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
        };
        if !ke2.is_empty() {
            return link(app, &how, basis, &ke2);
        }
        let first_marker = markers.iter().min().copied();
        if first_marker.is_some_and(|m| diag_covering(app, m)) {
            let (sfu, sfu_basis) = super::q2_sfu::sfu_evidence(app, &markers).unwrap_or_default();
            basis.extend(sfu_basis);
            return Verdict {
                answer: "sfu-downstream",
                summary: format!(
                    "To-device messages for our device were {how}; our client's evidence, downloaded after the fault, shows no KE-2 signature, yet {} fault marker(s) were set: look at LiveKit/SFU, not crypto.{sfu}",
                    markers.len()
                ),
                basis,
            };
        }
        return Verdict {
            answer: INSUFFICIENT,
            summary: if !markers.is_empty() {
                format!(
                    "To-device messages for our device were {how} and {} fault marker(s) were set, but no client diag report of our device, downloaded after the fault, shows whether the client decrypted them{}.",
                    markers.len(),
                    set_aside_artefacts(app)
                )
            } else {
                format!(
                    "To-device messages for our device were {how}, but there is neither a client KE-2 signature nor a fault marker{}.",
                    set_aside_artefacts(app)
                )
            },
            basis,
        };
    }

    if app.to_device_traces > 0 {
        // The tracing is on and names other devices only.
        let mut basis: Vec<String> = db_ref.clone().into_iter().collect();
        basis.extend(refs(&app.to_device_other, 2));
        return Verdict {
            answer: "not-targeted",
            summary: format!(
                "Synapse's to-device tracing logged {} delivery(ies), none to our device{}: the media keys were not sent to us (stale device id or membership, see KE-4).",
                app.to_device_traces,
                if inbox_read {
                    format!(", and none is queued for it ({read})")
                } else {
                    String::new()
                }
            ),
            basis,
        };
    }
    let covered = access_covers_window(app);
    if inbox_read && covered && app.send_to_device == 0 {
        return Verdict {
            answer: "not-targeted",
            summary: format!(
                "No to-device message for our device was queued in device_inbox ({read}) and the access log, which covers the capture, shows no sendToDevice from any participant: the media keys were not sent to us (stale device id or membership, see KE-4)."
            ),
            basis: db_ref.into_iter().collect(),
        };
    }
    if inbox_read && app.send_to_device > 0 {
        // Rows leave device_inbox as soon as the device syncs: an empty
        // inbox after participants sent to-device messages proves nothing.
        let mut basis = refs(&app.send_to_device_refs, 3);
        basis.extend(db_ref);
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "Participants made {} sendToDevice request(s), but nothing is queued for our device ({read}) and the log has no to-device tracing: they may have reached us and been drained by /sync. Enable synapse.9533_debug (DEBUG) to see the recipients.",
                app.send_to_device
            ),
            basis,
        };
    }
    let mut missing = Vec::new();
    if inbox_stale {
        missing.push(format!("the {read}"));
    } else if !inbox_read {
        missing.push(db_missing(app, "device_inbox_pending"));
    }
    if !covered {
        missing.push(if app.latency.is_empty() {
            "the server log has no access lines (synapse.access.http at INFO), so it cannot show that nobody sent any".to_string()
        } else {
            "the server log's access lines do not cover the whole capture".to_string()
        });
    }
    Verdict {
        answer: INSUFFICIENT,
        summary: format!(
            "Whether to-device messages reached our device is unknown: {}, and the server log has no to-device tracing (synapse.9533_debug).",
            missing.join("; ")
        ),
        basis: refs(&app.send_to_device_refs, 3),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::verdicts::test_app as app;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_782_842_400 + s, 0)
    }

    #[test]
    fn tracing_for_other_devices_only_is_not_targeted_without_a_database() {
        let mut a = app();
        a.to_device_traces = 3;
        a.to_device_other
            .push(EvidenceRef("server/homeserver.log:4".into()));
        let v = q2(&a);
        assert_eq!(v.answer, "not-targeted");
        assert_eq!(v.basis, vec!["server/homeserver.log:4".to_string()]);
        a.to_device_traces = 0;
        a.to_device_other.clear();
        assert_eq!(q2(&a).answer, INSUFFICIENT);
        // With no device known, nothing is ours, nor not ours.
        a.to_device_traces = 3;
        a.subject.device_id = None;
        let v = q2(&a);
        assert_eq!(v.answer, INSUFFICIENT);
        assert!(v.summary.contains("no device id is known"), "{}", v.summary);
    }

    /// To-device traced for us, a KE-2 signature at 600 s, KE-1 for our
    /// device at `ke1` seconds.
    fn linked_app(ke1: Option<i64>) -> App {
        let mut a = app();
        a.to_device_for_us_count = 1;
        a.to_device_for_us
            .push(EvidenceRef("server/homeserver.log:3".into()));
        a.client_errors.push((
            Ke::Ke2,
            EvidenceRef("client/d.json#entries[0]".into()),
            "MissingKey".into(),
        ));
        a.attribution.ke2_ours.add(at(600));
        a.attribution.ke1_ours.add(ke1.and_then(at));
        a
    }

    #[test]
    fn ke1_links_ke2_within_the_slack_and_not_beyond() {
        let slack = LINK_SLACK_MIN * 60;
        for (ke1, answer) in [
            (Some(600), "linked"),
            (Some(600 - slack), "linked"),
            (Some(600 + slack), "linked"),
            (Some(600 - slack - 1), "unlinked"),
            (Some(600 + slack + 1), "unlinked"),
            (None, "unlinked"),
        ] {
            let v = q2(&linked_app(ke1));
            assert_eq!(v.answer, answer, "KE-1 at {ke1:?}: {}", v.summary);
        }
        let v = q2(&linked_app(None));
        assert!(
            v.summary.contains("KE-2 without KE-1 for this device"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn ke1_of_unknown_owner_at_the_time_decides_nothing() {
        let mut a = linked_app(None);
        a.attribution.ke1_undecided.add(at(590));
        a.attribution
            .undecided_conflict(EvidenceRef("server/KE-1.log:1".into()));
        let v = q2(&a);
        assert_eq!(v.answer, INSUFFICIENT, "{}", v.summary);
        assert!(v.basis.contains(&"server/KE-1.log:1".to_string()));
        // Ours at the time wins over undecided ones.
        a.attribution.ke1_ours.add(at(580));
        assert_eq!(q2(&a).answer, "linked");
    }
}
