//! Replays a recorded session (a bundle, or the demo shipped in the binary)
//! as if it were live: server lines paced by their own timestamps; client
//! files, database polls and the operator's entries (markers, relabels,
//! deletions, checklist ticks, KE-3 ids) with their recorded times.
//!
//! What happened after the log's last line (a poll made by `analyze`
//! months later, a report saved after the call) is not waited for: it is
//! given after the last line. A recording made by `analyze` is given back
//! in the order `analyze` took it (KE-3 ids and client files before the
//! log, whatever their files' times; markers and the database after it),
//! and its window is the evidence's own.

use super::replay_logs::{LogLines, line_time};
use crate::app::event::Command;
use crate::bundle::journal;
use crate::domain::log_format::{Format, sniff};
use crate::domain::synapse_log::LogClock;
use crate::model::journal_entry::JournalEntry;
use crate::model::metrics::{MetricsReport, RawRef};
use crate::model::server_logs::{DEFAULT_LOG_NAME, LogInfo, ServerLogs};
use crate::sources::clock::Clock;
use crate::sources::{DbPoll, Input, SourceStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

/// The source name of a recording of one unnamed log.
pub const SOURCE: &str = DEFAULT_LOG_NAME;

/// The journal's mode of a replay of an `analyze` bundle, which is replayed
/// in turn as `analyze` made it.
const REPLAY_OF_ANALYZE: &str = "replay-of-analyze";

/// What happens besides server lines, on the recording's time axis.
#[derive(Debug, Clone)]
enum Scheduled {
    Client(PathBuf),
    Db(Box<DbPoll>),
    /// A metrics reading and the raw text behind it, read back from the
    /// recording's file.
    Metrics(Box<MetricsReport>, Option<(String, Vec<u8>)>),
    Operator(Box<JournalEntry>),
    /// A log's host clock offset, which the log's times are read with.
    ClockOffset {
        /// The log's index in the recording's logs.
        log: usize,
        offset_ms: i64,
        bound_ms: u64,
    },
}

/// When to give a scheduled item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// Before the server lines of this time and later.
    At(DateTime<Utc>),
    /// Once every server line has been given.
    AfterLog,
}

#[derive(Debug, Clone)]
struct Planned {
    due: Due,
    /// The recorded time, which the item carries.
    at: DateTime<Utc>,
    item: Scheduled,
}

#[derive(Debug, Clone)]
pub struct Recording {
    pub dir: PathBuf,
    /// The first time in the recording: the virtual clock starts here.
    pub origin: DateTime<Utc>,
    schedule: Vec<Planned>,
    /// Made by `analyze`: the window is the evidence's, not the clock's.
    pub offline: bool,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub participants: Vec<String>,
    pub timezone: String,
    /// The recorded server logs (one, unless the journal says more).
    pub logs: Vec<LogInfo>,
}

impl Recording {
    /// Reads a bundle (or a journal folder) for replay.
    pub fn open(dir: &Path) -> Result<Recording, String> {
        let entries = journal::read_entries(dir).unwrap_or_default();
        let mut rec = Recording {
            dir: dir.to_path_buf(),
            origin: Utc::now(),
            schedule: Vec::new(),
            offline: false,
            user_id: None,
            device_id: None,
            participants: Vec::new(),
            timezone: "UTC".into(),
            logs: Vec::new(),
        };
        let mut polls: Vec<DateTime<Utc>> = Vec::new();
        for e in &entries {
            match e {
                JournalEntry::Start { timezone, mode, .. } => {
                    rec.timezone = timezone.clone();
                    rec.offline = mode == "analyze" || mode == REPLAY_OF_ANALYZE;
                }
                JournalEntry::ServerLogs { logs, .. } => rec.logs = logs.clone(),
                _ => {}
            }
        }
        if rec.logs.is_empty() {
            rec.logs.push(LogInfo {
                name: SOURCE.into(),
                timezone: rec.timezone.clone(),
                format: None,
                service: None,
            });
        }
        let names = ServerLogs::new(rec.logs.iter().map(|l| l.name.clone()).collect());
        let (mut first_line, mut last_line) = (None, None);
        for (i, l) in rec.logs.iter().enumerate() {
            let file = names.file(i);
            let path = dir.join(&file);
            if !path.is_file() {
                return Err(format!(
                    "'{}' is not a callcap bundle: {file} is missing",
                    dir.display()
                ));
            }
            let zone = LogClock::new(&l.timezone).unwrap_or_else(|_| LogClock::utc());
            let format = l.format.as_deref().and_then(Format::from_name);
            let first = first_log_time(&path, format, &zone);
            first_line = first_line.into_iter().chain(first).min();
            let last = last_log_time(&path, format, &zone);
            last_line = last_line.into_iter().chain(last).max();
        }
        // Past the log's last line nothing is waited for.
        let due = |t: DateTime<Utc>| match last_line {
            Some(l) if t > l => Due::AfterLog,
            _ => Due::At(t),
        };
        for e in entries {
            match e {
                JournalEntry::Start {
                    user_id,
                    device_id,
                    participants,
                    timezone,
                    ..
                } => {
                    rec.user_id = user_id;
                    rec.device_id = device_id;
                    rec.participants = participants;
                    rec.timezone = timezone;
                }
                JournalEntry::Client { at, artifact } => {
                    let p = dir.join("client").join(&artifact.file);
                    if p.is_file() {
                        // `analyze` read them before the log (their
                        // arrival is the file's mtime, any time at all).
                        let when = match (rec.offline, first_line) {
                            (true, Some(f)) => Due::At(f.min(at)),
                            _ => due(at),
                        };
                        rec.schedule.push(Planned {
                            due: when,
                            at,
                            item: Scheduled::Client(p),
                        });
                    }
                }
                JournalEntry::Metrics { at, report } => {
                    let raw = report.raw.as_ref().and_then(|r| raw_text(dir, r));
                    let mut report = report;
                    report.raw = None;
                    // `analyze` asks for the metrics once the log is read.
                    let when = if rec.offline { Due::AfterLog } else { due(at) };
                    rec.schedule.push(Planned {
                        due: when,
                        at,
                        item: Scheduled::Metrics(report, raw),
                    });
                }
                JournalEntry::DbPoll { at, .. } => polls.push(at),
                JournalEntry::ClockOffset {
                    at,
                    source,
                    offset_ms,
                    bound_ms,
                } if rec.logs.iter().any(|l| l.name == source) => {
                    let log = rec.logs.iter().position(|l| l.name == source).unwrap_or(0);
                    // The first is measured as the capture connects: it
                    // applies to the log's first line.
                    let first = !rec.schedule.iter().any(
                        |p| matches!(&p.item, Scheduled::ClockOffset { log: l, .. } if *l == log),
                    );
                    let when = match first_line {
                        Some(f) if first => Due::At(f.min(at)),
                        _ => due(at),
                    };
                    rec.schedule.push(Planned {
                        due: when,
                        at,
                        item: Scheduled::ClockOffset {
                            log,
                            offset_ms,
                            bound_ms,
                        },
                    });
                }
                e => {
                    let Some(at) = operator_time(&e) else {
                        continue;
                    };
                    let when = match (&e, rec.offline) {
                        // As `analyze` took them: ids before the log,
                        // markers after it.
                        (JournalEntry::EventIds { .. }, true) => {
                            Due::At(first_line.map_or(at, |f| f.min(at)))
                        }
                        (_, true) => Due::AfterLog,
                        (_, false) => due(at),
                    };
                    rec.schedule.push(Planned {
                        due: when,
                        at,
                        item: Scheduled::Operator(Box::new(e)),
                    });
                }
            }
        }
        let read_db = |name: &str| -> Option<BTreeMap<String, Vec<crate::sources::Row>>> {
            let text = std::fs::read_to_string(dir.join("db").join(name)).ok()?;
            serde_json::from_str(&text).ok()
        };
        let poll = |t: DateTime<Utc>, rows| Planned {
            due: due(t),
            at: t,
            item: Scheduled::Db(Box::new(DbPoll::snapshot(t, rows))),
        };
        if let (Some(first), Some(&t0)) = (read_db("first.json"), polls.first()) {
            rec.schedule.push(poll(t0, first));
            if let (Some(last), Some(&t1)) = (read_db("last.json"), polls.last())
                && t1 > t0
            {
                rec.schedule.push(poll(t1, last));
            }
        }
        // Stable: items due together keep the journal's order.
        rec.schedule.sort_by_key(|p| p.due);
        let first_due = rec.schedule.iter().find_map(|p| match p.due {
            Due::At(t) => Some(t),
            Due::AfterLog => None,
        });
        rec.origin = [first_line, first_due]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(Utc::now);
        Ok(rec)
    }

    /// The mode a replay of this recording writes in its journal.
    pub fn replay_mode(&self) -> &'static str {
        if self.offline {
            REPLAY_OF_ANALYZE
        } else {
            "replay"
        }
    }

    /// Streams the recording into `tx` paced by `clock`; returns at its end.
    pub async fn run(
        self,
        clock: Clock,
        tx: mpsc::Sender<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let names: Vec<String> = self.logs.iter().map(|l| l.name.clone()).collect();
        let status = |name: &str, s: SourceStatus| Input::Status {
            source: name.to_string(),
            status: s,
            at: clock.now(),
        };
        for n in &names {
            let _ = tx.send(status(n, SourceStatus::Live)).await;
        }
        let mut lines = match LogLines::open(&self.dir, &self.logs).await {
            Ok(l) => l,
            Err(e) => {
                let _ = tx
                    .send(status(
                        &names[0],
                        SourceStatus::Error {
                            reason: e.to_string(),
                        },
                    ))
                    .await;
                return;
            }
        };
        let mut schedule = self.schedule.into_iter().peekable();
        let mut chunk: Vec<u8> = Vec::with_capacity(1 << 16);
        // The log the chunk's lines are from.
        let mut from = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let (n, log, line, at) = match lines.next().await {
                Ok(Some((log, line, at))) => (line.len(), log, line, at),
                Ok(None) => (0, from, Vec::new(), None),
                Err(e) => {
                    let _ = tx
                        .send(status(
                            &names[from],
                            SourceStatus::Error {
                                reason: e.to_string(),
                            },
                        ))
                        .await;
                    return;
                }
            };
            if log != from && !chunk.is_empty() {
                let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
            }
            from = log;
            // Anything scheduled before this line goes first.
            while let Some(p) = schedule.peek() {
                let ready = match p.due {
                    Due::At(t) => n == 0 || at.is_some_and(|a| t <= a),
                    Due::AfterLog => n == 0,
                };
                if !ready {
                    break;
                }
                if !chunk.is_empty() {
                    let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
                }
                if let Due::At(t) = p.due
                    && wait(&clock, t, &mut shutdown).await
                {
                    return;
                }
                if let Some(Planned { at: t, item, .. }) = schedule.next() {
                    // The recorded time, not the paced clock's reading a
                    // moment later: a replay's reports say the same times as
                    // its recording (a poll's time is in the verdicts).
                    let msg = match item {
                        Scheduled::Client(p) => Input::ClientFile { path: p, at: t },
                        Scheduled::Db(mut p) => {
                            p.at = t;
                            Input::DbPoll(p)
                        }
                        Scheduled::Metrics(report, raw) => Input::Metrics {
                            at: t,
                            report: Some(report),
                            raw,
                        },
                        Scheduled::Operator(e) => Input::Recorded(e),
                        Scheduled::ClockOffset {
                            log,
                            offset_ms,
                            bound_ms,
                        } => {
                            // Lines are paced on the corrected clock too.
                            lines.set_offset_ms(log, offset_ms);
                            Input::ClockOffset {
                                source: names[log].clone(),
                                offset_ms,
                                bound_ms,
                                at: t,
                            }
                        }
                    };
                    let _ = tx.send(msg).await;
                }
            }
            if n == 0 {
                break;
            }
            if let Some(a) = at
                && clock.real_wait_until(a) > std::time::Duration::ZERO
            {
                if !chunk.is_empty() {
                    let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
                }
                if wait(&clock, a, &mut shutdown).await {
                    return;
                }
            }
            chunk.extend_from_slice(&line);
            if chunk.len() >= 1 << 16 {
                let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
        }
        for n in &names {
            let _ = tx.send(status(n, SourceStatus::Stopped)).await;
        }
    }
}

/// The bytes a reading's raw reference names in the recording.
fn raw_text(dir: &Path, r: &RawRef) -> Option<(String, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(dir.join(&r.file)).ok()?;
    f.seek(SeekFrom::Start(r.offset)).ok()?;
    let mut buf = vec![0u8; usize::try_from(r.bytes).ok()?];
    f.read_exact(&mut buf).ok()?;
    Some((r.file.clone(), buf))
}

fn server(source: &str, chunk: &mut Vec<u8>, at: DateTime<Utc>) -> Input {
    Input::ServerChunk {
        source: source.into(),
        bytes: std::mem::take(chunk),
        at,
    }
}

/// Sleeps until virtual time `t`; true if shut down meanwhile.
async fn wait(clock: &Clock, t: DateTime<Utc>, shutdown: &mut watch::Receiver<bool>) -> bool {
    let d = clock.real_wait_until(t);
    if d.is_zero() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

/// The time an operator's entry was made, for the entries a replay gives
/// again (checklist ticks callcap made itself it makes again).
fn operator_time(e: &JournalEntry) -> Option<DateTime<Utc>> {
    match e {
        JournalEntry::Marker { at, .. }
        | JournalEntry::MarkerRelabel { at, .. }
        | JournalEntry::MarkerDelete { at, .. }
        | JournalEntry::EventIds { at, .. } => Some(*at),
        JournalEntry::Checklist { stamp, .. } if stamp.by == "operator" => Some(stamp.at),
        _ => None,
    }
}

/// The operator's command that made a recorded entry, at its time.
pub fn command(e: JournalEntry) -> Option<(Command, DateTime<Utc>)> {
    Some(match e {
        JournalEntry::Marker { at, label, .. } => (Command::Mark { label }, at),
        JournalEntry::MarkerRelabel { at, id, label } => (Command::Relabel { id, label }, at),
        JournalEntry::MarkerDelete { at, id } => (Command::DeleteMarker { id }, at),
        JournalEntry::Checklist { step, stamp } => (
            Command::Checklist {
                step,
                done: stamp.done,
            },
            stamp.at,
        ),
        JournalEntry::EventIds { at, ids } => (Command::AddEventIds { ids }, at),
        _ => return None,
    })
}

/// The time of the log's last record (read from its end).
fn last_log_time(path: &Path, format: Option<Format>, zone: &LogClock) -> Option<DateTime<Utc>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut back = 1u64 << 16;
    loop {
        let from = len.saturating_sub(back);
        f.seek(SeekFrom::Start(from)).ok()?;
        let mut tail = Vec::new();
        f.by_ref().take(back).read_to_end(&mut tail).ok()?;
        if let Some(t) = tail
            .rsplit(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .find_map(|l| line_time(format.unwrap_or_else(|| sniff(l)), l, zone))
        {
            return Some(t);
        }
        if from == 0 || back >= 1 << 24 {
            return None;
        }
        back *= 4;
    }
}

/// The first time among a log's first lines.
fn first_log_time(path: &Path, format: Option<Format>, zone: &LogClock) -> Option<DateTime<Utc>> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).ok()?;
    let mut format = format;
    std::io::BufReader::new(f)
        .split(b'\n')
        .take(10_000)
        .filter_map(Result::ok)
        .find_map(|l| {
            let f = *format.get_or_insert_with(|| sniff(&l));
            line_time(f, &l, zone)
        })
}
