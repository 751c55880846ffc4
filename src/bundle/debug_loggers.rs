//! The DEBUG loggers in the bundle: their section of `report.md`, and the
//! raise's record (`debug-loggers/`, with the server's log config) kept in
//! the bundle only while the loggers are not put back, so that
//! `callcap revert BUNDLE` can still do it.

use super::journal::{Journal, hash_file};
use crate::app::App;
use crate::bundle::manifest::rfc3339;
use crate::debug_loggers::state;
use std::fmt::Write as _;
use std::io;

/// `## DEBUG loggers`, after the header; a failed revert is the first
/// thing it says.
pub fn report_section(app: &App, r: &mut String) {
    let Some(d) = &app.debug_loggers else { return };
    let _ = writeln!(r, "\n## DEBUG loggers (runbook §0)\n");
    if let Some((at, reason, fix)) = &d.revert_failed
        && d.reverted.is_none()
    {
        let fix = match &app.exported {
            Some(p) => crate::debug_loggers::fix_command(std::path::Path::new(p)),
            None => fix.clone(),
        };
        let _ = writeln!(
            r,
            "**REVERT FAILED** at {}: {reason}. The loggers may still be at DEBUG on the server (it fills the disk). Fix: `{fix}`\n",
            rfc3339(*at)
        );
    }
    let _ = writeln!(r, "- Log config: `{}` on {}", d.log_config, d.host);
    let _ = writeln!(r, "- Loggers: {}", d.loggers.join(", "));
    if let Some(t) = d.requested_at {
        let _ = writeln!(r, "- Requested: {}", rfc3339(t));
    }
    match (&d.raised_at, &d.raise_failed) {
        (Some(t), _) => {
            let _ = writeln!(
                r,
                "- Raised to DEBUG and Synapse reloaded: {} (levels before: {})",
                rfc3339(*t),
                crate::debug_loggers::yaml::describe(&d.previous)
            );
            match &d.confirmed {
                Some((at, line, text)) => {
                    let _ = writeln!(
                        r,
                        "- Confirmed: {} `server/homeserver.log:{line}` `{}`",
                        rfc3339(*at),
                        text.replace('`', "'")
                    );
                }
                None => {
                    let _ = writeln!(
                        r,
                        "- Confirmed: no DEBUG line of them reached the capture (they log DEBUG on some requests only)"
                    );
                }
            }
        }
        (None, Some((t, why))) => {
            let _ = writeln!(r, "- NOT raised ({}): {why}", rfc3339(*t));
        }
        (None, None) => {
            let _ = writeln!(r, "- Not raised before the capture ended");
        }
    }
    if let Some((t, detail)) = &d.reverted {
        let _ = writeln!(r, "- Reverted: {} — {detail}", rfc3339(*t));
    } else if d.raised_at.is_some() && d.revert_failed.is_none() {
        let _ = writeln!(r, "- Reverted: not yet when this report was written");
    }
}

/// Records a revert made after the capture stopped (a panic, a failed
/// export) in the journal at `journal`, when it is still there to be
/// recovered; a bundle already written is left as it is.
pub fn journal_late(
    journal: &std::path::Path,
    at: chrono::DateTime<chrono::Utc>,
    update: &crate::model::debug_loggers::DebugLoggersUpdate,
) {
    let path = journal.join(super::journal::ENTRIES);
    if !path.is_file() {
        return;
    }
    let entry = crate::model::journal_entry::JournalEntry::DebugLoggers {
        at,
        update: update.clone(),
    };
    let Ok(mut line) = serde_json::to_vec(&entry) else {
        return;
    };
    line.push(b'\n');
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
        let _ = f.write_all(&line);
    }
}

/// Before the bundle is finished: the raise's record goes when the
/// loggers were put back (nothing of the server's config is shared), and
/// stays, listed in the manifest, when they were not.
pub fn settle(journal: &mut Journal) -> io::Result<()> {
    let dir = state::dir(&journal.dir);
    if !dir.is_dir() {
        return Ok(());
    }
    if state::done(&journal.dir).is_some() {
        return std::fs::remove_dir_all(&dir);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let facts = hash_file(&dir.join(&n))?;
        journal.adopt(&format!("{}/{n}", state::DIR), facts);
    }
    Ok(())
}
