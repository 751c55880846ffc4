//! `callcap recover`: turns a journal left behind by a crash or `kill -9`
//! into a bundle. The journal's server log and client copies are re-ingested
//! (they are already redacted) and its structured entries restored.

use crate::analyze::UsageError;
use crate::app::event::Event;
use crate::app::{App, Effect, Subject};
use crate::bundle::export::{self, SourceDescriptions};
use crate::bundle::journal::{self, JOURNAL_PREFIX, Journal};
use crate::capture::Capture;
use crate::domain::signatures::Signatures;
use crate::model::journal_entry::JournalEntry;
use crate::model::server_logs::{LogInfo, ServerLogs};
use crate::model::{DbPoll, Row};
use chrono::Utc;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const RECOVERED_SUFFIX: &str = ".recovered";

/// The newest unfinished journal in `out`.
pub fn newest_journal(out: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(JOURNAL_PREFIX) && !n.ends_with(RECOVERED_SUFFIX) && e.path().is_dir()
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// `site` rules are applied to what is recovered, after the built-in ones.
pub fn recover(
    old: &Path,
    out: &Path,
    label: Option<&str>,
    restart_timeout_ms: u32,
    reverted: Option<(
        chrono::DateTime<Utc>,
        crate::model::debug_loggers::DebugLoggersUpdate,
    )>,
    site: &[crate::domain::redact::SiteRule],
) -> anyhow::Result<PathBuf> {
    if !old.join(journal::ENTRIES).is_file() {
        return Err(UsageError(format!("'{}' is not a callcap journal", old.display())).into());
    }
    let entries = journal::read_entries(old)?;
    let mut subject = Subject::default();
    let mut tz = "UTC".to_string();
    let mut logs: Vec<LogInfo> = Vec::new();
    for e in &entries {
        if let JournalEntry::ServerLogs { logs: l, .. } = e {
            logs = l.clone();
        }
        if let JournalEntry::Start {
            user_id,
            device_id,
            participants,
            timezone,
            ..
        } = e
        {
            subject = Subject {
                user_id: user_id.clone(),
                device_id: device_id.clone(),
                participants: participants.clone(),
            };
            tz = timezone.clone();
        }
    }
    let new_dir = out.join(format!(
        "{JOURNAL_PREFIX}{}-{}-recover",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    ));
    if logs.is_empty() {
        logs.push(LogInfo {
            name: crate::model::server_logs::DEFAULT_LOG_NAME.into(),
            timezone: tz.clone(),
            format: None,
            service: None,
        });
    }
    let names = ServerLogs::new(logs.iter().map(|l| l.name.clone()).collect());
    let files: Vec<PathBuf> = (0..names.len()).map(|i| old.join(names.file(i))).collect();
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(UsageError(format!(
            "'{}' is not a callcap journal: '{}' is missing",
            old.display(),
            missing.display()
        ))
        .into());
    }
    let journal = Journal::create(&new_dir)
        .map_err(|e| UsageError(format!("cannot write to --out '{}': {e}", out.display())))?;
    let specs = crate::capture::LogSpec::from_infos(&logs).map_err(UsageError)?;
    let mut capture = Capture::with_logs(
        journal,
        Signatures::embedded(),
        specs,
        Vec::new(),
        restart_timeout_ms,
    )
    .map_err(|e| anyhow::anyhow!("signatures: {e}"))?;
    capture.set_redactor(
        crate::domain::redact::Redactor::with_site_rules(site)
            .map_err(|e| UsageError(format!("{}: {e}", e.origin)))?,
    );
    let mut app = App::new(subject, restart_timeout_ms);
    app.server_logs = capture.logs().clone();

    for e in entries {
        match e {
            JournalEntry::Client { mut artifact, at } => {
                let src = old.join("client").join(&artifact.file);
                // A diag report's entries are in its copy (the journal
                // names it), read before the copy is redacted again.
                if artifact.copy.is_some() {
                    match capture.copy_reader().entries(old, &artifact) {
                        Ok(entries) => artifact.entries = entries,
                        Err(why) => {
                            let text = format!("{}: {why}", artifact.file);
                            let fx = app.update(Event::Note {
                                source: "client".into(),
                                text,
                                at,
                            });
                            apply(&mut capture, fx)?;
                        }
                    }
                    artifact.copy = None;
                }
                if src.is_file() {
                    copy_client(&mut capture, &src, &artifact)?;
                }
                let fx = app.update(Event::Client(artifact));
                apply(&mut capture, fx)?;
            }
            JournalEntry::EventIds { ref ids, .. } => {
                capture.add_ke3_ids(ids).map_err(|e| anyhow::anyhow!(e))?;
                capture.journal.record(&e)?;
                app.restore(e);
            }
            other => {
                capture.journal.record(&other)?;
                app.restore(other);
            }
        }
    }
    // The DEBUG loggers the capture raised, put back before this recovery.
    if let Some((at, update)) = reverted {
        let fx = app.update(Event::DebugLoggers { at, update });
        apply(&mut capture, fx)?;
    }
    // Their record stays with the evidence until they are put back.
    let old_dl = crate::debug_loggers::state::dir(old);
    if old_dl.is_dir() && crate::debug_loggers::state::done(old).is_none() {
        let new_dl = crate::debug_loggers::state::dir(&capture.journal.dir);
        std::fs::create_dir_all(&new_dl)?;
        for e in std::fs::read_dir(&old_dl)?.flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), new_dl.join(e.file_name()))?;
            }
        }
    }
    // Database state as it was last written.
    let read_db = |name: &str| -> Option<BTreeMap<String, Vec<Row>>> {
        serde_json::from_slice(&std::fs::read(old.join("db").join(name)).ok()?).ok()
    };
    for name in ["first.json", "last.json"] {
        if let Some(results) = read_db(name) {
            let at = app.now.unwrap_or_else(Utc::now);
            let _ = app.update(Event::Db(Box::new(DbPoll::snapshot(at, results))));
        }
    }
    if let Ok(changes) = std::fs::read(old.join("db/changes.jsonl")) {
        capture
            .journal
            .write_whole("db/changes.jsonl", &changes, 0)?;
    }
    // The metrics' raw scrapes and answers, as they were (the journal's
    // readings name offsets in them).
    for rel in [
        crate::model::metrics::SCRAPES_FILE,
        crate::model::metrics::ANSWERS_FILE,
    ] {
        if let Ok(raw) = std::fs::read(old.join(rel)) {
            capture.journal.write_whole(rel, &raw, 0)?;
        }
    }
    let mut buf = vec![0u8; 4 << 20];
    for (file, log) in files.iter().zip(&logs) {
        let mut f = std::fs::File::open(file)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let b = capture.server_chunk(&log.name, &buf[..n])?;
            let fx = app.update(Event::Server(Box::new(b)));
            apply(&mut capture, fx)?;
        }
    }
    for b in capture.finish()? {
        let fx = app.update(Event::Server(Box::new(b)));
        apply(&mut capture, fx)?;
    }

    let label = match label {
        Some(l) => export::sanitize_label(l),
        None => export::default_label(&app),
    };
    let sources: SourceDescriptions = vec![
        serde_json::json!({"name": "server-log", "kind": "recovered-journal", "path": old.display().to_string()}),
    ];
    let copies = capture.copy_reader();
    let exported = export::export(
        &app,
        &mut capture.journal,
        out,
        &label,
        &sources,
        &|d, a| copies.entries(d, a),
        Utc::now(),
    )?;
    let mut done = old.as_os_str().to_owned();
    done.push(RECOVERED_SUFFIX);
    let _ = std::fs::rename(old, PathBuf::from(done));
    exported.complete()
}

/// A client copy, already redacted when it was captured, redacted again
/// (the rules may have grown since) with both counts kept.
fn copy_client(
    capture: &mut Capture,
    src: &Path,
    artifact: &crate::app::event::ClientArtifact,
) -> anyhow::Result<()> {
    let data = std::fs::read(src)?;
    let (data, more) = if artifact.kind == crate::app::event::ArtifactKind::Har {
        let mut out = Vec::with_capacity(data.len());
        let n = crate::domain::har::redact_har(&data[..], &mut out, capture.redactor())?;
        (out, n)
    } else {
        let (out, n) = capture.redactor().redact_bytes(&data);
        (out.into_owned(), n)
    };
    let rel = format!("client/{}", artifact.file);
    capture
        .journal
        .write_whole(&rel, &data, artifact.redactions + more.total())?;
    if let Some(f) = capture.journal.written.get_mut(&rel) {
        f.by_rule = artifact.redactions_by_rule.clone();
        for (rule, n) in more.names() {
            *f.by_rule.entry(rule).or_insert(0) += n;
        }
    }
    Ok(())
}

fn apply(capture: &mut Capture, fx: Vec<Effect>) -> anyhow::Result<()> {
    for e in fx {
        match e {
            Effect::Journal(entry) => capture.journal.record(&entry)?,
            // Restored before the server log is re-read: nothing to search again.
            Effect::Ke3Ids(ids) => {
                capture.add_ke3_ids(&ids).map_err(|e| anyhow::anyhow!(e))?;
            }
            Effect::Export { .. } => {}
        }
    }
    Ok(())
}
