//! Sections of `report.md` about the sources themselves: the client
//! artefacts (whose they are) and the database (what was read, and when).

use super::manifest::rfc3339;
use crate::app::App;
use crate::verdicts::{CURRENT_STATE_LIMIT_MIN, DbRead, Timing};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt::Write;

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map(rfc3339).unwrap_or_else(|| "–".into())
}

/// The client artefacts, someone else's marked as such.
pub fn client_artefacts(app: &App, r: &mut String) {
    let _ = writeln!(r, "\n## Client artefacts\n");
    if app.artifacts.is_empty() {
        let _ = writeln!(r, "None.");
    }
    for a in &app.artifacts {
        let mut per = [0u32; 4];
        for e in &a.entries {
            if let Some(k) = e.ke {
                per[k.index()] += 1;
            }
        }
        let _ = writeln!(
            r,
            "- `client/{}` ({:?}, {} bytes, arrived {}){}{}{}",
            a.file,
            a.kind,
            a.bytes,
            rfc3339(a.arrived_at),
            match app.not_subject.get(&a.file) {
                Some(why) => format!(" — **not the subject** ({why}): fed no verdict"),
                None => String::new(),
            },
            match &a.unparsed {
                Some(why) => format!(" — **unparsed**: {why}"),
                None if !a.warnings.is_empty() => format!(" — **{}**", a.warnings.join("; ")),
                None => String::new(),
            },
            if a.entries.is_empty() {
                String::new()
            } else {
                format!(
                    " — entries KE-1 {} / KE-2 {} / KE-3 {} / KE-4 {}",
                    per[0], per[1], per[2], per[3]
                )
            }
        );
    }
}

/// `Database: …` for the report's head: when it was read, against the call.
pub fn database_line(app: &App) -> Option<String> {
    DbRead::of(app).map(|d| {
        let clause = d.clause();
        format!(
            "- Database: {}",
            clause.strip_prefix("database ").unwrap_or(&clause)
        )
    })
}

/// What the database polls read, and when.
pub fn database(app: &App, r: &mut String) {
    if app.db.polls == 0 {
        return;
    }
    let _ = writeln!(r, "\n## Database\n");
    let _ = writeln!(
        r,
        "{} polls, {} changes, first success {}, last success {}.",
        app.db.polls,
        app.db.changes,
        t(app.db.first.as_ref().map(|p| p.at)),
        t(app.db.last_ok_at)
    );
    if let Some(d) = DbRead::of(app) {
        let _ = writeln!(r, "\nWhen: {}.", d.clause());
        if d.timing != Timing::During {
            let _ = writeln!(
                r,
                "Read outside the capture, the tables are the database's current state: the to-device inbox drains whenever the device syncs, one-time keys are claimed and uploaded. Verdicts weigh a read within {CURRENT_STATE_LIMIT_MIN} min of the capture as current state and say so; what changes with time in a later read is not evidence of the call."
            );
        }
    }
    for (q, p) in &app.db.problems {
        let _ = writeln!(r, "- problem `{q}`: {p}");
    }
    if !app.db.otk_series.is_empty() {
        let _ = writeln!(
            r,
            "\nsigned_curve25519 OTK count over time: {}",
            series(&app.db.otk_series)
        );
    }
    if !app.db.backlog_series.is_empty() {
        let _ = writeln!(
            r,
            "\nTo-device backlog for our device over time: {}",
            series(&app.db.backlog_series)
        );
    }
    if let Some(rows) = app
        .db
        .last
        .as_ref()
        .and_then(|p| p.results.get("event_lookup"))
    {
        let _ = writeln!(r, "\nKE-3 event lookups:");
        for row in rows {
            let _ = writeln!(r, "- `{}`", Value::Object(row.clone()));
        }
    }
}

fn series(s: &[(DateTime<Utc>, i64)]) -> String {
    let mut out = Vec::new();
    let mut last: Option<i64> = None;
    for (at, n) in s {
        if last != Some(*n) {
            out.push(format!("{} → {n}", at.format("%H:%M:%S")));
            last = Some(*n);
        }
    }
    out.join(", ")
}

/// What livekit-server said of each participant (our device first), when
/// an SFU log was read.
pub fn sfu(app: &App, r: &mut String) {
    if !app.sfu.captured() {
        return;
    }
    let _ = writeln!(
        r,
        "\n## SFU\n\n{} participant(s); {} state line(s), {} lk-jwt-service line(s), {} line(s) not recognised (kept in the log).\n",
        app.sfu.participants.len(),
        app.sfu.sfu_lines,
        app.sfu.grant_lines,
        app.sfu.unread
    );
    let mut parts: Vec<_> = app.sfu.participants.values().collect();
    parts.sort_by_key(|p| !app.sfu_is_ours(&p.identity));
    for p in parts.iter().take(50) {
        let who = match app.sfu.matrix_of(&p.identity) {
            (Some(u), Some(d)) => format!("{u}/{d}"),
            (Some(u), None) => format!("{u} (device unknown)"),
            _ => "(Matrix device unknown)".to_string(),
        };
        let ours = if app.sfu_is_ours(&p.identity) {
            " — **our device**"
        } else {
            ""
        };
        let states: Vec<String> = p
            .history
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(|s| {
                format!(
                    "{} {}{} (`{}`)",
                    t(s.at),
                    s.state.name(),
                    s.reason
                        .as_deref()
                        .map(|x| format!(" {x}"))
                        .unwrap_or_default(),
                    s.evidence.0
                )
            })
            .collect();
        let _ = writeln!(r, "- `{}` {who}{ours}: {}", p.identity, states.join("; "));
    }
    for f in &app.sfu.failures {
        let _ = writeln!(r, "- lk-jwt-service failure: `{}`", f.0);
    }
}
