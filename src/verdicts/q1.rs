//! Q1: is the one-time-key state diverged?

use super::{
    DbRead, INSUFFICIENT, Verdict, db_missing, no_device, poll_problem, refs, rows, s,
    set_aside_artefacts, stored_key, truthy,
};
use crate::app::{App, OffendingKeyInfo};
use crate::domain::Ke;
use crate::model::Row;
use chrono::{DateTime, Utc};

/// What the database says about one offending key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// Stored with a `key` different from the one the client uploads.
    Diverged,
    /// Stored with the very key the client uploads.
    Same,
    /// Not stored for our device (claimed since, or never ours).
    NotStored,
    /// Not among the rows of an inventory cut at the row cap.
    BeyondCap,
    /// Stored, but one of the two values is unknown: cannot compare.
    Unknown,
}

/// A key's state, and whether its row shows it was stored at the conflict.
struct Judged<'a> {
    key: &'a OffendingKeyInfo,
    state: KeyState,
    /// The row's `ts_added_ms`.
    added: Option<DateTime<Utc>>,
}

impl Judged<'_> {
    /// Rows are inserted once and deleted when claimed, never rewritten:
    /// one added before the first conflict is the row Synapse compared
    /// with, however late the database was read.
    fn stored_at_conflict(&self) -> bool {
        matches!((self.added, self.key.first_at), (Some(a), Some(c)) if a <= c)
    }

    /// The comparison stands for the call: the database was read close to
    /// it, or the row was there at the conflict.
    fn stands(&self, db: &DbRead) -> bool {
        db.timely() || self.stored_at_conflict()
    }
}

fn ts_added(row: &Row) -> Option<DateTime<Utc>> {
    let v = row.get("ts_added_ms")?;
    let ms = v
        .as_i64()
        .or_else(|| v.as_str().and_then(|t| t.parse().ok()))?;
    DateTime::from_timestamp_millis(ms)
}

fn judge<'a>(inventory: &'a [Row], capped: bool, o: &'a OffendingKeyInfo) -> Judged<'a> {
    let stored = inventory.iter().find(|r| {
        s(r, "algorithm") == Some(o.algorithm.as_str()) && s(r, "key_id") == Some(o.key_id.as_str())
    });
    let state = match (stored.map(stored_key), o.uploaded_key.as_deref()) {
        (None, _) if capped => KeyState::BeyondCap,
        (None, _) => KeyState::NotStored,
        (Some(Some(st)), Some(up)) if st != up => KeyState::Diverged,
        (Some(Some(_)), Some(_)) => KeyState::Same,
        _ => KeyState::Unknown,
    };
    Judged {
        key: o,
        state,
        added: stored.and_then(ts_added),
    }
}

/// A key's evidence with one reference of each kind first (server line,
/// client report entry, HAR entry), so the basis shows every side.
fn key_basis(o: &OffendingKeyInfo, n: usize) -> Vec<String> {
    let kinds: [fn(&str) -> bool; 3] = [
        |r| r.starts_with("server/"),
        |r| r.starts_with("client/") && !r.contains("#log.entries["),
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

/// What the error text alone says (Synapse's `Old key` is what it held).
fn error_text_hint(app: &App) -> String {
    match app
        .offending
        .values()
        .find(|o| o.stored_key.is_some() && o.uploaded_key.is_some())
    {
        Some(o) if o.stored_key != o.uploaded_key => format!(
            "the server's error for {}:{} shows a stored key different from the uploaded one, which suggests divergence",
            o.algorithm, o.key_id
        ),
        _ => "the error text alone cannot tell divergence from exhaustion or an SDK loop".into(),
    }
}

/// ` (N conflict(s) of other devices were set aside; M whose owner …)`.
fn set_aside(app: &App) -> String {
    let mut parts = Vec::new();
    if app.foreign_conflicts > 0 {
        parts.push(format!(
            "{} conflict(s) of other devices were set aside",
            app.foreign_conflicts
        ));
    }
    let undecided = app.attribution.ke1_undecided_conflicts;
    if undecided > 0 {
        parts.push(format!(
            "{undecided} conflict(s) whose owner the log does not name were not counted as ours"
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("at an unknown time".into(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

pub(super) fn q1(app: &App) -> Verdict {
    let client_ke1 = app
        .client_errors
        .iter()
        .filter(|(k, _, _)| *k == Ke::Ke1)
        .count() as u64;
    let ke1_errors = app.own_ke1_errors + client_ke1;
    let undecided = app.attribution.ke1_undecided_conflicts;
    let undecided_refs = || -> Vec<String> {
        app.attribution
            .ke1_undecided_refs
            .iter()
            .map(|r| r.0.clone())
            .collect()
    };
    let mut basis: Vec<String> = app
        .offending
        .values()
        .flat_map(|o| key_basis(o, 3))
        .take(6)
        .collect();
    let nothing = ke1_errors == 0 && app.offending.is_empty() && undecided == 0;
    if app.subject.device_id.is_none() && !nothing {
        basis.extend(undecided_refs());
        basis.truncate(6);
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "KE-1 one-time-key conflicts were seen, but {}: whose keys they are, and which inventory to compare them with, cannot be told.",
                no_device(app)
            ),
            basis,
        };
    }
    if app.offending.is_empty() && undecided > 0 {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{undecided} KE-1 conflict(s) were seen whose owner the log does not name (no 'Adding one_time_keys … for device' line of the same request), so none is known to be our device's (key ids such as AAAAAAAAAFA repeat across devices): keep synapse.handlers.e2e_keys at INFO, or add our client's diag report or a HAR of its keys/upload."
            ),
            basis: undecided_refs(),
        };
    }
    if ke1_errors == 0 && app.offending.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "No KE-1 one-time-key conflict was seen{} in the server log, the client reports or a HAR{}{}.",
                if app.subject.device_id.is_some() {
                    " for our device"
                } else {
                    ""
                },
                set_aside(app),
                set_aside_artefacts(app)
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
    let (Some(inventory), Some(db)) = (rows(app, "otk_inventory"), DbRead::of(app)) else {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "KE-1 conflicts were seen but {}; {}.",
                db_missing(app, "otk_inventory"),
                error_text_hint(app)
            ),
            basis,
        };
    };
    with_inventory(app, inventory, &db, basis)
}

/// Q1 once the offending keys can be looked up in the inventory.
fn with_inventory(app: &App, inventory: &[Row], db: &DbRead, mut basis: Vec<String>) -> Verdict {
    let read = db.clause();
    let capped = poll_problem(app, "otk_inventory").is_some_and(|p| p.starts_with("truncated"));
    let judged: Vec<Judged> = app
        .offending
        .values()
        .map(|o| judge(inventory, capped, o))
        .collect();
    let find = |st: KeyState, stands: bool| {
        judged
            .iter()
            .find(|j| j.state == st && j.stands(db) == stands)
    };
    if let Some(j) = find(KeyState::Diverged, true) {
        let o = j.key;
        let mut basis = key_basis(o, 3);
        basis.push("db/last.json#otk_inventory".into());
        let then = if db.timely() {
            String::new()
        } else {
            format!(
                "; the row was added {}, before the first conflict, so it was stored then",
                when(j.added)
            )
        };
        return Verdict {
            answer: "divergence",
            summary: format!(
                "One-time key {}:{} is stored on the homeserver with a different key than the client keeps uploading: the OTK state has diverged (KE-1 root) ({read}{then}).",
                o.algorithm, o.key_id
            ),
            basis,
        };
    }
    basis.push("db/last.json#otk_inventory".into());
    if let Some(j) = judged.iter().find(|j| j.state == KeyState::Unknown) {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "One-time key {}:{} is stored on the homeserver, but the key the client uploads for it is unknown (no error text or HAR request body shows it): divergence can be neither confirmed nor ruled out ({read}).",
                j.key.algorithm, j.key.key_id
            ),
            basis,
        };
    }
    if let Some(j) = find(KeyState::Diverged, false).or_else(|| find(KeyState::Same, false)) {
        let how = if j.state == KeyState::Diverged {
            "a different key than"
        } else {
            "the very key"
        };
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "One-time key {}:{} is stored now with {how} the client uploaded, but the {read}, and its row (added {}) does not show it was stored at the first conflict ({}): divergence can be neither confirmed nor ruled out. Read the database during the call (callcap live) or right after it.",
                j.key.algorithm,
                j.key.key_id,
                when(j.added),
                when(j.key.first_at)
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
    let gone = judged
        .iter()
        .find(|j| matches!(j.state, KeyState::NotStored | KeyState::BeyondCap));
    if db.timely() && otk_zero && fallback_used {
        basis.push("db/last.json#otk_counts".into());
        basis.push("db/last.json#fallback_keys".into());
        let keys = if gone.is_some() {
            "The offending key is no longer stored (the device has none left, so whether it diverged cannot be checked), "
        } else {
            "No offending key is stored with a different value, "
        };
        return Verdict {
            answer: "exhaustion",
            summary: format!(
                "{keys}the device has 0 signed_curve25519 one-time keys and its fallback key is used: OTK exhaustion, not divergence ({read})."
            ),
            basis,
        };
    }
    if let Some(j) = gone {
        let why = if j.state == KeyState::BeyondCap {
            format!(
                "is not among the first {} rows the inventory returned (the list was cut)",
                crate::model::db::MAX_ROWS
            )
        } else {
            "is no longer stored for our device (claimed since, or never stored as ours)".into()
        };
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "One-time key {}:{} {why}, so the database cannot compare it: {} ({read}).",
                j.key.algorithm,
                j.key.key_id,
                error_text_hint(app)
            ),
            basis,
        };
    }
    // Every key is stored with the very key the client uploads.
    let same = judged.len();
    let had_keys = judged
        .iter()
        .filter_map(|j| j.key.first_at)
        .min()
        .is_some_and(|c| {
            inventory.iter().any(|r| {
                s(r, "algorithm") == Some("signed_curve25519")
                    && ts_added(r).is_some_and(|a| a <= c)
            })
        });
    if !db.timely() && !had_keys {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{same} offending key(s) are stored with the very key the client uploads, but whether the device had run out of keys during the call cannot be told: the {read}."
            ),
            basis,
        };
    }
    Verdict {
        answer: "sdk-regression",
        summary: format!(
            "KE-1 conflicts were seen, {same} offending key(s) are stored with the very key the client uploads, and the keys are not exhausted: suspect the SDK's upload loop ({read})."
        ),
        basis,
    }
}
