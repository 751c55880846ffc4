//! `--log FILE` and `--log NAME=FILE`: which files make which server log,
//! in which format, and reading them into the capture.
//!
//! Files with the same name (or none) are one log, read in the order given
//! (rotated first). Each file's format is told by its first lines: Synapse's
//! text, its JSON, a `journalctl -o json` export, `docker logs --timestamps`
//! output. One text log is read by the parallel scanner (the hot path);
//! several logs, or a decoded one, a buffer at a time, always from the log
//! that is furthest behind in time, so the App sees them interleaved as a
//! live capture would.

use super::{UsageError, apply, read_log};
use crate::app::App;
use crate::app::event::Event;
use crate::capture::{Capture, LogSpec};
use crate::domain::log_format::{Format, sniff};
use crate::domain::synapse_log::LogClock;
use crate::model::server_logs::{DEFAULT_LOG_NAME, LogInfo};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The name files given without one take when others are named.
const UNNAMED_AMONG_NAMED: &str = "homeserver";
/// Bytes read from a log at a turn.
const TURN: usize = 1024 * 1024;

/// One server log of the analysis: its files and their format.
#[derive(Debug, Clone)]
pub(super) struct LogFiles {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub format: Format,
}

/// `NAME=FILE` or `FILE`: a name only when the whole is not a file and the
/// part before `=` is a log name.
fn split_arg(arg: &Path) -> (Option<String>, PathBuf) {
    if arg.exists() {
        return (None, arg.to_path_buf());
    }
    if let Some((name, file)) = arg.to_str().and_then(|s| s.split_once('='))
        && crate::config::check_name(name).is_ok()
        && !file.is_empty()
    {
        return (Some(name.to_string()), PathBuf::from(file));
    }
    (None, arg.to_path_buf())
}

/// The formats of a file's first lines.
fn file_format(path: &Path) -> Result<Format, UsageError> {
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| UsageError(format!("cannot read log '{}': {e}", path.display())))?;
    Ok(sniff(&head))
}

/// Whether a text file's first lines are livekit-server's or
/// lk-jwt-service's.
fn is_sfu_log(path: &Path) -> bool {
    let mut head = Vec::with_capacity(64 * 1024);
    if std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .is_err()
    {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    crate::domain::sfu_log::sniff_service(text.lines()).is_some_and(|s| s.is_sfu())
}

/// Groups `--log` arguments into logs, checks each file and tells its
/// format.
pub(super) fn group(args: &[PathBuf]) -> Result<Vec<LogFiles>, UsageError> {
    let split: Vec<(Option<String>, PathBuf)> = args.iter().map(|a| split_arg(a)).collect();
    let any_named = split.iter().any(|(n, _)| n.is_some());
    let unnamed = if any_named {
        UNNAMED_AMONG_NAMED
    } else {
        DEFAULT_LOG_NAME
    };
    let mut logs: Vec<LogFiles> = Vec::new();
    for (name, file) in split {
        super::check_readable_file(&file, "log")?;
        let format = file_format(&file)?;
        let name = name.unwrap_or_else(|| unnamed.to_string());
        match logs.iter_mut().find(|l| l.name == name) {
            Some(l) if l.format != format => {
                return Err(UsageError(format!(
                    "log '{name}': '{}' is {} but '{}' is {}: give files of another format another name (NAME=FILE)",
                    file.display(),
                    format.name(),
                    l.files[0].display(),
                    l.format.name()
                )));
            }
            Some(l) => l.files.push(file),
            None => logs.push(LogFiles {
                name,
                files: vec![file],
                format,
            }),
        }
    }
    Ok(logs)
}

/// What the capture and the journal are told of the logs.
pub(super) fn specs(
    logs: &[LogFiles],
    clock: &LogClock,
    timezone: &str,
) -> (Vec<LogSpec>, Vec<LogInfo>) {
    logs.iter()
        .map(|l| {
            (
                LogSpec {
                    name: l.name.clone(),
                    clock: clock.clone(),
                    format: Some(l.format),
                    service: None,
                },
                LogInfo {
                    name: l.name.clone(),
                    timezone: timezone.to_string(),
                    format: Some(l.format.name().to_string()),
                    service: None,
                },
            )
        })
        .unzip()
}

/// A log being read: its files left and the one open.
struct Reading<'a> {
    log: &'a LogFiles,
    next_file: usize,
    open: Option<(std::fs::File, usize)>,
    /// Where the log is in time (its last record so far).
    at: Option<DateTime<Utc>>,
    done: bool,
}

/// Reads every log into the capture and the App; returns the manifest's
/// descriptions of the files.
pub(super) fn read_all(
    capture: &mut Capture,
    app: &mut App,
    logs: &[LogFiles],
) -> anyhow::Result<Vec<Value>> {
    let mut sources = Vec::new();
    // One text log of Synapse's: the parallel scanner, file by file (an
    // SFU log is read line by line, below).
    if let [only] = logs
        && only.format == Format::Text
        && !is_sfu_log(&only.files[0])
    {
        for (i, file) in only.files.iter().enumerate() {
            let before = capture.lines();
            read_log(capture, app, &only.name, file, i + 1 == only.files.len())?;
            sources.push(describe(
                &only.name,
                file,
                Format::Text,
                capture.lines() - before,
            ));
        }
        return Ok(sources);
    }
    let mut reading: Vec<Reading> = logs
        .iter()
        .map(|log| Reading {
            log,
            next_file: 0,
            open: None,
            at: None,
            done: false,
        })
        .collect();
    let mut lines_of = vec![0u64; logs.iter().map(|l| l.files.len()).sum()];
    let mut buf = vec![0u8; TURN];
    // The log furthest behind in time goes next (one not yet started first).
    while let Some(r) = reading.iter_mut().filter(|r| !r.done).min_by_key(|r| r.at) {
        let name = r.log.name.clone();
        let Some((file, index)) = r.open.as_mut() else {
            let Some(path) = r.log.files.get(r.next_file) else {
                r.done = true;
                continue;
            };
            let f = std::fs::File::open(path)
                .map_err(|e| UsageError(format!("cannot read log '{}': {e}", path.display())))?;
            let index = r.log.files[..r.next_file].len()
                + logs
                    .iter()
                    .take_while(|l| l.name != r.log.name)
                    .map(|l| l.files.len())
                    .sum::<usize>();
            r.open = Some((f, index));
            continue;
        };
        let index = *index;
        let path = &r.log.files[r.next_file];
        let n = file
            .read(&mut buf)
            .map_err(|e| UsageError(format!("cannot read log '{}': {e}", path.display())))?;
        let before = capture.lines_of(&name);
        let batch = if n > 0 {
            capture.server_chunk(&name, &buf[..n])?
        } else {
            // A file's end: the next file's first line is a line of its own.
            r.open = None;
            r.next_file += 1;
            let last = r.next_file == r.log.files.len();
            if last {
                r.done = true;
                lines_of[index] += capture.lines_of(&name) - before;
                continue;
            }
            capture.end_of_input(&name, true)?
        };
        lines_of[index] += capture.lines_of(&name) - before;
        r.at = batch.last_at.or(r.at);
        let fx = app.update(Event::Server(Box::new(batch)));
        apply(capture, fx)?;
    }
    let before: Vec<u64> = logs.iter().map(|l| capture.lines_of(&l.name)).collect();
    for batch in capture.finish()? {
        let fx = app.update(Event::Server(Box::new(batch)));
        apply(capture, fx)?;
    }
    let mut index = 0;
    for (log, before) in logs.iter().zip(before) {
        // A last line without its newline, counted by the end.
        if let Some(last) = lines_of.get_mut(index + log.files.len() - 1) {
            *last += capture.lines_of(&log.name) - before;
        }
        for file in &log.files {
            sources.push(describe(&log.name, file, log.format, lines_of[index]));
            index += 1;
        }
    }
    Ok(sources)
}

fn describe(name: &str, file: &Path, format: Format, lines: u64) -> Value {
    let bytes = std::fs::metadata(file).map_or(0, |m| m.len());
    json!({
        "name": name,
        "kind": "file",
        "format": format.name(),
        "path": file.display().to_string(),
        "lines": lines,
        "position": {"offset": bytes},
    })
}
