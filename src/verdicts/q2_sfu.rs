//! Q2's SFU branch with the SFU's own evidence: what livekit-server said
//! about our device's participant around the fault markers.

use crate::app::{App, SfuReport};
use crate::domain::sfu_log::{Identity, SfuState, identity_of};
use chrono::{DateTime, Duration, Utc};

/// How long before the first fault marker an SFU failure still counts (the
/// operator marks what they noticed, after the SFU acted).
const BEFORE_MARKER_MIN: i64 = 5;
/// And after the last one.
const AFTER_MARKER_MIN: i64 = 1;

fn hhmmss(t: Option<DateTime<Utc>>) -> String {
    t.map_or("?".into(), |t| t.format("%H:%M:%S").to_string())
}

fn what(r: &SfuReport) -> String {
    match (r.state, r.reason.as_deref()) {
        (SfuState::Closing, Some(reason)) => format!("closed with {reason}"),
        (SfuState::Removed, _) => "removed without a connection".into(),
        (SfuState::SubscribeFailed, Some(why)) => format!("failing to subscribe ({why})"),
        (SfuState::ConnectTimeout, Some(why)) => format!("timing out ({why})"),
        (SfuState::Deficient, _) => "short of bandwidth (stream allocator DEFICIENT)".into(),
        (SfuState::RequestError, Some(why)) => format!("refusing a request ({why})"),
        (s, _) => s.name().to_string(),
    }
}

/// The sentence to add to Q2's `sfu-downstream` summary and the SFU lines
/// to cite; `None` when no SFU log was captured.
pub(super) fn sfu_evidence(app: &App, markers: &[DateTime<Utc>]) -> Option<(String, Vec<String>)> {
    if !app.sfu.captured() {
        return None;
    }
    let ours = app.sfu_ours();
    if ours.is_empty() {
        let hashed = app
            .sfu
            .participants
            .keys()
            .filter(|id| matches!(identity_of(id), Identity::Hashed(_)))
            .filter(|id| app.sfu.matrix_of(id).1.is_none())
            .count();
        let why = if app.subject.device_id.is_none() {
            "no device of ours is known".to_string()
        } else if hashed > 0 {
            format!(
                "{hashed} of its identities are hashed (lk-jwt-service ≥ 0.4.3) and no lk-jwt-service line names their device: add lk-jwt-service's log"
            )
        } else {
            "none of its identities is our device's".to_string()
        };
        return Some((
            format!(
                " The SFU log shows {} participant(s) but none known to be our device ({why}).",
                app.sfu.participants.len()
            ),
            Vec::new(),
        ));
    }
    let first = markers.iter().min().copied();
    let last = markers.iter().max().copied();
    let near = |t: Option<DateTime<Utc>>| match (t, first, last) {
        (Some(t), Some(f), Some(l)) => {
            t >= f - Duration::minutes(BEFORE_MARKER_MIN)
                && t <= l + Duration::minutes(AFTER_MARKER_MIN)
        }
        _ => false,
    };
    let mut failures: Vec<&SfuReport> = ours
        .iter()
        .flat_map(|p| p.history.iter())
        .filter(|r| r.state.is_failure() && near(r.at))
        .collect();
    failures.sort_by_key(|r| r.at);
    if !failures.is_empty() {
        let seen: Vec<String> = failures
            .iter()
            .take(3)
            .map(|r| format!("{} at {}", what(r), hhmmss(r.at)))
            .collect();
        return Some((
            format!(
                " The SFU saw our device's participant {}: media stopped at the SFU, not in the keys.",
                seen.join(", then ")
            ),
            failures
                .iter()
                .take(3)
                .map(|r| r.evidence.0.clone())
                .collect(),
        ));
    }
    let healthy: Option<&SfuReport> = ours
        .iter()
        .flat_map(|p| p.history.iter())
        .filter(|r| {
            matches!(
                r.state,
                SfuState::Active | SfuState::Publishing | SfuState::Subscribed
            ) && r.at.zip(first).is_some_and(|(t, f)| t <= f)
        })
        .max_by_key(|r| r.at);
    match healthy {
        Some(r) => Some((
            format!(
                " The SFU shows our device's participant {} since {} and reports nothing wrong with it around the fault marker(s): the SFU delivered; look at the client's rendering of the remote tracks rather than at the SFU.",
                r.state.name(),
                hhmmss(r.at)
            ),
            vec![r.evidence.0.clone()],
        )),
        None => Some((
            " The SFU log shows our device's participant, but no state of it before the fault marker(s).".into(),
            ours.iter()
                .filter_map(|p| p.last().map(|r| r.evidence.0.clone()))
                .take(2)
                .collect(),
        )),
    }
}
