//! Q1: is the one-time-key state diverged?

use super::{INSUFFICIENT, Verdict, db_missing, refs, rows, s, stored_key, truthy};
use crate::app::{App, OffendingKeyInfo};
use crate::domain::Ke;
use crate::model::Row;

/// What the database says about one offending key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// Stored with a `key` different from the one the client uploads.
    Diverged,
    /// Stored with the very key the client uploads.
    Same,
    NotStored,
    /// Stored, but one of the two values is unknown: cannot compare.
    Unknown,
}

fn key_state(inventory: &[Row], o: &OffendingKeyInfo) -> KeyState {
    let stored = inventory.iter().find(|r| {
        s(r, "algorithm") == Some(o.algorithm.as_str()) && s(r, "key_id") == Some(o.key_id.as_str())
    });
    match (stored.map(stored_key), o.uploaded_key.as_deref()) {
        (None, _) => KeyState::NotStored,
        (Some(Some(st)), Some(up)) if st != up => KeyState::Diverged,
        (Some(Some(_)), Some(_)) => KeyState::Same,
        _ => KeyState::Unknown,
    }
}

/// A key's evidence with one reference of each kind first (server line,
/// client report entry, HAR entry), so the basis shows every side.
fn key_basis(o: &OffendingKeyInfo, n: usize) -> Vec<String> {
    let kinds: [fn(&str) -> bool; 3] = [
        |r| r.starts_with("server/"),
        |r| r.contains("#entries["),
        |r| r.contains("#log.entries["),
    ];
    let mut out: Vec<String> = kinds
        .iter()
        .filter_map(|k| o.evidence.iter().find(|r| k(&r.0)).map(|r| r.0.clone()))
        .collect();
    for r in &o.evidence {
        if !out.contains(&r.0) {
            out.push(r.0.clone());
        }
    }
    out.truncate(n);
    out
}

pub(super) fn q1(app: &App) -> Verdict {
    let ke1_errors = app.own_ke1_errors + app.client[Ke::Ke1.index()].count;
    let mut basis: Vec<String> = app
        .offending
        .values()
        .flat_map(|o| key_basis(o, 3))
        .take(6)
        .collect();
    if ke1_errors == 0 && app.offending.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "No KE-1 one-time-key conflict was seen for our device in the server log, the client reports or a HAR{}.",
                if app.foreign_conflicts > 0 {
                    format!(
                        " ({} conflict(s) of other devices were set aside)",
                        app.foreign_conflicts
                    )
                } else {
                    String::new()
                }
            ),
            basis,
        };
    }
    if app.offending.is_empty() {
        // Errors such as a bare `400 POST …/keys/upload`: no key id to look up.
        let mut errors = refs(&app.own_ke1_error_refs, 3);
        errors.extend(
            app.client_errors
                .iter()
                .filter(|(k, _, _)| *k == Ke::Ke1)
                .take(2)
                .map(|(_, r, _)| r.0.clone()),
        );
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{ke1_errors} KE-1 error(s) were seen but none names the offending one-time key (the 'One time key … already exists' text): save a failing keys/upload response, e.g. in a HAR."
            ),
            basis: errors,
        };
    }
    let Some(inventory) = rows(app, "otk_inventory") else {
        let hint = match app
            .offending
            .values()
            .find(|o| o.stored_key.is_some() && o.uploaded_key.is_some())
        {
            Some(o) if o.stored_key != o.uploaded_key => format!(
                "the server's error for {}:{} shows a stored key different from the uploaded one, which suggests divergence",
                o.algorithm, o.key_id
            ),
            _ => {
                "the error text alone cannot tell divergence from exhaustion or an SDK loop".into()
            }
        };
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "KE-1 conflicts were seen but {}; {hint}.",
                db_missing(app, "otk_inventory")
            ),
            basis,
        };
    };
    let states: Vec<(&OffendingKeyInfo, KeyState)> = app
        .offending
        .values()
        .map(|o| (o, key_state(inventory, o)))
        .collect();
    if let Some((o, _)) = states.iter().find(|(_, st)| *st == KeyState::Diverged) {
        let mut basis = key_basis(o, 3);
        basis.push("db/last.json#otk_inventory".into());
        return Verdict {
            answer: "divergence",
            summary: format!(
                "One-time key {}:{} is stored on the homeserver with a different key than the client keeps uploading: the OTK state has diverged (KE-1 root).",
                o.algorithm, o.key_id
            ),
            basis,
        };
    }
    basis.push("db/last.json#otk_inventory".into());
    if let Some((o, _)) = states.iter().find(|(_, st)| *st == KeyState::Unknown) {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "One-time key {}:{} is stored on the homeserver, but the key the client uploads for it is unknown (no error text or HAR request body shows it): divergence can be neither confirmed nor ruled out.",
                o.algorithm, o.key_id
            ),
            basis,
        };
    }
    let otk_zero = rows(app, "otk_counts").is_some_and(|r| {
        r.iter()
            .filter(|x| s(x, "algorithm") == Some("signed_curve25519"))
            .filter_map(|x| x.get("count").and_then(|c| c.as_i64()))
            .sum::<i64>()
            == 0
    });
    let fallback_used =
        rows(app, "fallback_keys").is_some_and(|r| r.iter().any(|x| truthy(x.get("used"))));
    if otk_zero && fallback_used {
        basis.push("db/last.json#otk_counts".into());
        basis.push("db/last.json#fallback_keys".into());
        return Verdict {
            answer: "exhaustion",
            summary: "No offending key is stored with a different value, the device has 0 signed_curve25519 one-time keys and its fallback key is used: OTK exhaustion, not divergence.".into(),
            basis,
        };
    }
    let same = states
        .iter()
        .filter(|(_, st)| *st == KeyState::Same)
        .count();
    let why = if same > 0 {
        format!("{same} offending key(s) are stored with the very key the client uploads")
    } else {
        "the offending key is no longer stored".to_string()
    };
    Verdict {
        answer: "sdk-regression",
        summary: format!(
            "KE-1 conflicts were seen, {why}, and the keys are not exhausted: suspect the SDK's upload loop."
        ),
        basis,
    }
}
