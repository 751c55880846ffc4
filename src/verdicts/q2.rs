//! Q2: does KE-1 explain KE-2?

use super::{INSUFFICIENT, Verdict, db_missing, refs, rows};
use crate::app::event::ArtifactKind;
use crate::app::{App, EvidenceRef};
use crate::domain::Ke;

pub(super) fn q2(app: &App) -> Verdict {
    let backlog_max = app
        .db
        .backlog_series
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let db_read = !app.db.backlog_series.is_empty();
    let db_ref =
        rows(app, "device_inbox_pending").map(|_| "db/last.json#device_inbox_pending".to_string());
    let queued = backlog_max > 0;
    let traced = app.to_device_for_us_count > 0;
    let present = queued || traced;
    let ke2: Vec<&(Ke, EvidenceRef, String)> = app
        .client_errors
        .iter()
        .filter(|(k, _, _)| *k == Ke::Ke2)
        .collect();
    let markers = app.live_markers().count();
    let diag_read = app
        .artifacts
        .iter()
        .any(|a| a.kind == ArtifactKind::Diag && a.unparsed.is_none());

    if present {
        let mut basis: Vec<String> = db_ref.iter().filter(|_| queued).cloned().collect();
        basis.extend(refs(&app.to_device_for_us, 3));
        let how = match (queued, traced) {
            (true, true) => format!(
                "queued in device_inbox (up to {backlog_max}) and traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
            (true, false) => format!("queued in device_inbox (up to {backlog_max})"),
            _ => format!(
                "traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
        };
        if !ke2.is_empty() {
            basis.extend(ke2.iter().take(3).map(|(_, r, _)| r.0.clone()));
            return Verdict {
                answer: "linked",
                summary: format!(
                    "To-device messages for our device were {how}; the client shows {} KE-2 signature(s): KE-1 ⇒ KE-2 link confirmed.",
                    ke2.len()
                ),
                basis,
            };
        }
        if markers > 0 && diag_read {
            return Verdict {
                answer: "sfu-downstream",
                summary: format!(
                    "To-device messages for our device were {how}; the client report shows no KE-2 signature, yet {markers} fault marker(s) were set: look at LiveKit/SFU, not crypto."
                ),
                basis,
            };
        }
        return Verdict {
            answer: INSUFFICIENT,
            summary: if markers > 0 {
                format!(
                    "To-device messages for our device were {how} and {markers} fault marker(s) were set, but no client diag report shows whether the client decrypted them."
                )
            } else {
                format!(
                    "To-device messages for our device were {how}, but there is neither a client KE-2 signature nor a fault marker."
                )
            },
            basis,
        };
    }

    if app.to_device_traces > 0 {
        // The tracing is on and names other devices only.
        let mut basis: Vec<String> = db_ref.into_iter().collect();
        basis.extend(refs(&app.to_device_other, 2));
        return Verdict {
            answer: "not-targeted",
            summary: format!(
                "Synapse's to-device tracing logged {} delivery(ies), none to our device{}: the media keys were not sent to us (stale device id or membership, see KE-4).",
                app.to_device_traces,
                if db_read {
                    ", and none is queued for it"
                } else {
                    ""
                }
            ),
            basis,
        };
    }
    if db_read && app.send_to_device == 0 {
        return Verdict {
            answer: "not-targeted",
            summary: "No to-device message for our device was queued in device_inbox and no participant sent any: the media keys were not sent to us (stale device id or membership, see KE-4).".into(),
            basis: db_ref.into_iter().collect(),
        };
    }
    if db_read {
        // Rows leave device_inbox as soon as the device syncs: an empty
        // inbox after participants sent to-device messages proves nothing.
        let mut basis = refs(&app.send_to_device_refs, 3);
        basis.extend(db_ref);
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "Participants made {} sendToDevice request(s), but nothing is queued for our device and the log has no to-device tracing: they may have reached us and been drained by /sync. Enable synapse.9533_debug (DEBUG) to see the recipients.",
                app.send_to_device
            ),
            basis,
        };
    }
    Verdict {
        answer: INSUFFICIENT,
        summary: format!(
            "Whether to-device messages reached our device is unknown: {} and the server log has no to-device tracing (synapse.9533_debug).",
            db_missing(app, "device_inbox_pending")
        ),
        basis: refs(&app.send_to_device_refs, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::verdicts::test_app as app;

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
    }
}
