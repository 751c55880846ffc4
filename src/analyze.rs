//! `callcap analyze`: the live pipeline run over files that already exist.
//! Deterministic, so tests and benchmarks drive the same code the console
//! uses: sources → capture → App → journal → bundle.

use crate::app::event::Event;
use crate::app::{App, Effect, Subject};
use crate::bundle::export::{self, SourceDescriptions};
use crate::bundle::journal::{JOURNAL_PREFIX, Journal};
use crate::capture::{Capture, ScanFileError, Spent, scan_file, scanner_threads};
use crate::cli::AnalyzeArgs;
use crate::config::HumanDuration;
use crate::domain::log_format::Format;
use crate::domain::redact::{Redactor, SiteRule};
use crate::domain::signatures::Signatures;
use crate::domain::synapse_log::LogClock;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};

mod logs;

/// A usage or input error: exit code 2 with a one-line message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Log bytes read at a time. Each buffer is scanned by several passes
/// (redaction's probe, matching, lines) on one scanner thread; a buffer this
/// size stays in the core's cache between passes (2 MiB buffers took about
/// 10 % more CPU; 512 KiB ones the same, with twice the thread wake-ups).
const CHUNK: usize = 1024 * 1024;

/// Runs the analysis; returns the bundle's path.
pub fn run(args: &AnalyzeArgs) -> anyhow::Result<PathBuf> {
    let redactor = site_redactor(args)?;
    let clock =
        LogClock::new(&args.timezone).map_err(|e| UsageError(format!("--timezone: {e}")))?;
    let restart = HumanDuration::parse(&args.restart_timeout)
        .map_err(|e| UsageError(format!("--restart-timeout: {e}")))?;
    let sigs = load_signatures(args.signatures.as_deref())?;
    let log_files = logs::group(&args.logs)?;
    let marks = args
        .marks
        .iter()
        .map(|m| parse_mark(m, &clock))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(url) = &args.prometheus {
        crate::domain::prometheus_api::check_http_url(url)
            .map_err(|e| UsageError(format!("--prometheus: {e}")))?;
    }
    if let Some(sel) = &args.selector {
        crate::domain::prometheus_api::check_selector(sel)
            .map_err(|e| UsageError(format!("--selector: {e}")))?;
    }
    let diags = expand(&args.diags, "diag", &["json"])?;
    let hars = expand(&args.hars, "har", &["har"])?;
    for p in &args.clients {
        std::fs::metadata(p)
            .map_err(|e| UsageError(format!("cannot read client logs '{}': {e}", p.display())))?;
    }
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    let started = Utc::now();
    let (mut app, mut capture) = prepare(
        args,
        &out,
        sigs,
        redactor,
        (&clock, &log_files),
        restart,
        started,
    )?;
    if !args.event_ids.is_empty() {
        let fx = app.update(Event::Command {
            cmd: crate::app::event::Command::AddEventIds {
                ids: args.event_ids.clone(),
            },
            at: started,
        });
        apply(&mut capture, fx)?;
    }

    // Client artefacts first: their KE-3 event ids become part of the
    // server pattern before the log is read, so one pass suffices.
    for path in diags.iter().chain(hars.iter()).chain(args.clients.iter()) {
        let at = mtime(path).unwrap_or(started);
        let artifact = capture
            .client_file(path, at)
            .map_err(|e| UsageError(format!("cannot read '{}': {e}", path.display())))?;
        let fx = app.update(Event::Client(Box::new(artifact)));
        apply(&mut capture, fx)?;
    }

    let mut sources: SourceDescriptions = logs::read_all(&mut capture, &mut app, &log_files)?;
    for p in diags.iter().chain(hars.iter()).chain(args.clients.iter()) {
        sources.push(json!({"name": "client", "kind": "file", "path": p.display().to_string()}));
    }

    // After the log: a marker's line counts then cover the whole input.
    for (at, label) in marks {
        let fx = app.update(Event::Command {
            cmd: crate::app::event::Command::Mark { label },
            at,
        });
        apply(&mut capture, fx)?;
    }

    if let Some(url) = &args.prometheus {
        read_prometheus(url, args.selector.clone(), &mut app, &mut capture)?;
        sources.push(json!({
            "name": "metrics",
            "kind": "prometheus",
            "url": crate::domain::prometheus_api::without_password(url),
            "selector": args.selector,
        }));
    }

    if let Some(url) = &args.db_url {
        let poll = read_database(args, url, &app)?;
        sources.push(json!({"name": "database", "kind": "postgres", "url": crate::sources::db::redact_url(url)}));
        let fx = app.update(Event::Db(Box::new(poll)));
        apply(&mut capture, fx)?;
    }

    let label = match &args.label {
        Some(l) => export::sanitize_label(l),
        None => export::default_label(&app),
    };
    let now = Utc::now();
    let copies = capture.copy_reader();
    export::export(
        &app,
        &mut capture.journal,
        &out,
        &label,
        &sources,
        &|d, a| copies.entries(d, a),
        now,
    )?
    .complete()
}

/// The KE signatures: the file's, or the embedded ones.
pub(crate) fn load_signatures(file: Option<&Path>) -> Result<Signatures, UsageError> {
    match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                UsageError(format!(
                    "cannot read signatures file '{}': {e}",
                    p.display()
                ))
            })?;
            Signatures::from_toml(&text, p).map_err(|e| UsageError(e.to_string()))
        }
        None => Ok(Signatures::embedded()),
    }
}

/// The journal in `out`, the App and the capture, with the journal's start
/// entry written.
fn prepare(
    args: &AnalyzeArgs,
    out: &Path,
    sigs: Signatures,
    redactor: Redactor,
    (clock, log_files): (&LogClock, &[logs::LogFiles]),
    restart: HumanDuration,
    started: DateTime<Utc>,
) -> anyhow::Result<(App, Capture)> {
    let journal_dir = out.join(format!(
        "{JOURNAL_PREFIX}{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    ));
    let journal = Journal::create(&journal_dir)
        .map_err(|e| UsageError(format!("cannot write to --out '{}': {e}", out.display())))?;

    let subject = Subject {
        user_id: args.user_id.clone(),
        device_id: args.device_id.clone(),
        participants: args.participants.clone(),
    };
    let restart_ms = restart.as_duration().as_millis().min(u32::MAX as u128) as u32;
    let mut app = App::new(subject, restart_ms);
    // The bundle's window is the evidence's own (log records, client
    // entries), not when the files happened to be read.
    app.wall_clock_span = false;
    // No view is drawn: the panes would hold copies nothing reads.
    app.server_panes = false;
    let (specs, infos) = logs::specs(log_files, clock, &args.timezone);
    let mut capture = Capture::with_logs(journal, sigs, specs, args.event_ids.clone(), restart_ms)
        .map_err(|e| UsageError(format!("signatures: {e}")))?;
    capture.set_redactor(redactor);
    capture.without_pane_texts();
    app.server_logs = capture.logs().clone();
    capture.journal.record(&JournalEntry::Start {
        at: started,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        mode: "analyze".into(),
        user_id: args.user_id.clone(),
        device_id: args.device_id.clone(),
        participants: args.participants.clone(),
        timezone: args.timezone.clone(),
    })?;
    let plain = infos.len() == 1 && infos[0].format.as_deref() == Some(Format::Text.name());
    if !plain {
        capture.journal.record(&JournalEntry::ServerLogs {
            at: started,
            logs: infos,
        })?;
    }
    Ok((app, capture))
}

/// Reads one text log file into the capture and the App: read on this
/// thread, scanned on others, committed in order. `last`: no file of the
/// log follows it.
fn read_log(
    capture: &mut Capture,
    app: &mut App,
    name: &str,
    log: &Path,
    last: bool,
) -> anyhow::Result<()> {
    let f = File::open(log)
        .map_err(|e| UsageError(format!("cannot read log '{}': {e}", log.display())))?;
    let read_error =
        |e: std::io::Error| UsageError(format!("cannot read log '{}': {e}", log.display()));
    let ctx = capture.scan_context_for(name);
    let tail = scan_file(f, ctx, CHUNK, scanner_threads(), |buf, scanned| {
        let done = capture.server_scanned(name, buf, scanned)?;
        let fx = app.update(Event::Server(Box::new(done.batch)));
        apply(capture, fx)?;
        anyhow::Ok(Spent {
            buf: done.spare,
            scanned: Some(done.scanned),
        })
    })
    .map_err(|e| match e {
        ScanFileError::Read(e) => read_error(e).into(),
        ScanFileError::Scan(e) => anyhow::Error::from(e),
        ScanFileError::Commit(e) => e,
    })?;
    if !tail.is_empty() {
        let batch = capture.server_chunk(name, &tail)?;
        let fx = app.update(Event::Server(Box::new(batch)));
        apply(capture, fx)?;
    }
    let batch = capture.end_of_input(name, !last)?;
    let fx = app.update(Event::Server(Box::new(batch)));
    apply(capture, fx)?;
    Ok(())
}

/// The built-in rules, then the site rules: the default config's
/// `[redact] extra` (when that file exists) and `--redact`, each checked
/// before anything is read.
fn site_redactor(args: &AnalyzeArgs) -> Result<Redactor, UsageError> {
    let mut site = match crate::config::default_path().filter(|p| p.is_file()) {
        Some(p) => crate::config::load_redact_section(&p)
            .map_err(|e| UsageError(e.to_string()))?
            .site_rules(),
        None => Vec::new(),
    };
    site.extend(args.redact.iter().enumerate().map(|(i, p)| SiteRule {
        origin: format!("--redact #{}", i + 1),
        pattern: p.clone(),
    }));
    Redactor::with_site_rules(&site).map_err(|e| UsageError(format!("{}: {e}", e.origin)))
}

/// Runs the App's effects that make sense offline.
fn apply(capture: &mut Capture, effects: Vec<Effect>) -> anyhow::Result<()> {
    for e in effects {
        match e {
            Effect::Journal(entry) => capture.journal.record(&entry)?,
            // Ids come with the client files, before any log line is read:
            // there are no earlier lines to search again.
            Effect::Ke3Ids(ids) => {
                capture
                    .add_ke3_ids(&ids)
                    .map_err(|e| UsageError(format!("KE-3 event ids: {e}")))?;
            }
            Effect::Export { .. } => {}
        }
    }
    Ok(())
}

/// `TIME` or `TIME=LABEL` from `--mark`: RFC 3339, or a local time in the
/// log's time zone.
fn parse_mark(arg: &str, clock: &LogClock) -> Result<(DateTime<Utc>, String), UsageError> {
    let (time, label) = match arg.split_once('=') {
        Some((t, l)) => (t.trim(), l.trim()),
        None => (arg.trim(), ""),
    };
    let at = DateTime::parse_from_rfc3339(time)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(time, f).ok())
                .map(|t| clock.to_utc(t))
        })
        .ok_or_else(|| {
            UsageError(format!(
                "--mark '{arg}': '{time}' is not a time (use 2026-06-30T18:04:05Z or '2026-06-30 18:04:05')"
            ))
        })?;
    let label = if label.is_empty() { "fault" } else { label };
    Ok((at, label.to_string()))
}

fn check_readable_file(p: &Path, what: &str) -> Result<(), UsageError> {
    let meta = std::fs::metadata(p)
        .map_err(|e| UsageError(format!("cannot read {what} '{}': {e}", p.display())))?;
    if meta.is_dir() {
        return Err(UsageError(format!(
            "cannot read {what} '{}': it is a directory",
            p.display()
        )));
    }
    File::open(p).map_err(|e| UsageError(format!("cannot read {what} '{}': {e}", p.display())))?;
    Ok(())
}

/// Files as given, and folders expanded to their files with these extensions.
fn expand(paths: &[PathBuf], what: &str, exts: &[&str]) -> Result<Vec<PathBuf>, UsageError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| UsageError(format!("cannot read {what} '{}': {e}", p.display())))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| {
                    UsageError(format!("cannot read {what} folder '{}': {e}", p.display()))
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension()
                            .and_then(|x| x.to_str())
                            .is_some_and(|x| exts.iter().any(|e| x.eq_ignore_ascii_case(e)))
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            check_readable_file(p, what)?;
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn mtime(p: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(p)
        .ok()?
        .modified()
        .ok()
        .map(DateTime::<Utc>::from)
}

/// Asks Prometheus for Synapse's latency histogram over the evidence's
/// window (Prometheus keeps weeks): each answer is kept in the bundle and
/// read into the App. A failure is said on stderr and in the report; the
/// analysis goes on without the numbers.
fn read_prometheus(
    url: &str,
    selector: Option<String>,
    app: &mut App,
    capture: &mut Capture,
) -> anyhow::Result<()> {
    use crate::model::metrics::{ANSWERS_FILE, MetricsKind, MetricsReading, MetricsReport, RawRef};
    let (Some(from), Some(to)) = app.span() else {
        eprintln!(
            "callcap: --prometheus: the evidence has no times, so there is no window to ask for"
        );
        return Ok(());
    };
    let mut client = crate::sources::metrics::prometheus::Prometheus::new(url, selector)
        .map_err(|e| UsageError(format!("--prometheus: {e}")))?;
    client.timeout = std::time::Duration::from_secs(30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = Utc::now();
    let (answers, failed, grafana) = rt.block_on(async {
        let (a, f) = client.minutes(from, to, now, false).await;
        let g = client.grafana_p99(from, to, now).await;
        (a, f, g)
    });
    let mut keep = |raw: &[u8]| -> anyhow::Result<RawRef> {
        let offset = capture.journal.append(ANSWERS_FILE, raw)?;
        Ok(RawRef {
            file: ANSWERS_FILE.into(),
            offset,
            bytes: raw.len() as u64,
        })
    };
    let mut reports = Vec::new();
    for a in answers {
        let mut report = a.report;
        report.raw = Some(keep(&a.raw)?);
        reports.push(report);
    }
    if let Some((e, raw)) = failed {
        eprintln!("callcap: --prometheus {}: {e}", client.url());
        reports.push(MetricsReport {
            kind: MetricsKind::Prometheus,
            url: client.url().to_string(),
            reading: MetricsReading::Minutes {
                minutes: Vec::new(),
                partial: None,
                problems: vec![format!("asking failed: {e}")],
            },
            raw: Some(keep(&raw)?),
        });
    }
    if let Some(raw) = grafana {
        keep(&raw)?;
    }
    for report in reports {
        let fx = app.update(Event::Metrics {
            at: now,
            report: Box::new(report),
        });
        apply(capture, fx)?;
    }
    Ok(())
}

/// One read-only pass over the database at the end of the analysis. A
/// database that cannot be read is recorded as a failed poll, not an error:
/// the verdicts then say what is missing.
fn read_database(
    args: &AnalyzeArgs,
    url: &str,
    app: &App,
) -> anyhow::Result<crate::sources::DbPoll> {
    let db = crate::config::DatabaseConfig {
        url: url.to_string(),
        password_env: args.db_password_env.clone(),
        via_ssh: false,
        poll_interval: HumanDuration::from_secs(5),
        statement_timeout: HumanDuration::from_secs(10),
    };
    // The device as the flags or, failing them, a client file named it.
    let call = crate::config::CallConfig {
        user_id: app.subject.user_id.clone(),
        device_id: app.subject.device_id.clone(),
        participants: args.participants.clone(),
        event_ids: args.event_ids.clone(),
    };
    let ids: Vec<String> = app.ke3_ids.keys().cloned().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let at = Utc::now();
    Ok(
        match rt.block_on(crate::sources::db::poll_once(&db, &call, &ids)) {
            Ok(p) => p,
            Err(e) => {
                let mut problems = std::collections::BTreeMap::new();
                problems.insert("connection".to_string(), e.to_string());
                crate::sources::DbPoll {
                    at,
                    duration_ms: 0,
                    results: Default::default(),
                    changes: Vec::new(),
                    problems,
                    sql: Default::default(),
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_take_rfc3339_or_local_time_and_an_optional_label() {
        let berlin = LogClock::new("Europe/Berlin").map_err(UsageError);
        let Ok(berlin) = berlin else {
            panic!("Europe/Berlin is a zone")
        };
        let utc = LogClock::utc();
        let (at, label) = parse_mark("2026-06-30T18:00:09Z=video froze", &utc)
            .ok()
            .unzip();
        assert_eq!(
            at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-06-30T18:00:09+00:00")
        );
        assert_eq!(label.as_deref(), Some("video froze"));
        let (at, label) = parse_mark("2026-06-30 20:00:09", &berlin).ok().unzip();
        assert_eq!(
            at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-06-30T18:00:09+00:00")
        );
        assert_eq!(label.as_deref(), Some("fault"));
        let err = parse_mark("at six=cut", &utc).err().map(|e| e.0);
        assert!(err.is_some_and(|e| e.contains("'at six' is not a time")));
    }
}
