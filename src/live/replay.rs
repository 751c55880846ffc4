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

use crate::app::event::Command;
use crate::bundle::journal::{self, SERVER_LOG};
use crate::domain::synapse_log::{LogClock, parse_timestamp_prefix};
use crate::model::journal_entry::JournalEntry;
use crate::model::metrics::{MetricsReport, RawRef};
use crate::sources::clock::Clock;
use crate::sources::{DbPoll, Input, SourceStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};

pub const SOURCE: &str = "server-log";

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
    /// The remote clock's offset, which the log's times are read with.
    ClockOffset {
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
}

impl Recording {
    /// Reads a bundle (or a journal folder) for replay.
    pub fn open(dir: &Path) -> Result<Recording, String> {
        let log = dir.join(SERVER_LOG);
        if !log.is_file() {
            return Err(format!(
                "'{}' is not a callcap bundle: {SERVER_LOG} is missing",
                dir.display()
            ));
        }
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
        };
        let mut polls: Vec<DateTime<Utc>> = Vec::new();
        for e in &entries {
            if let JournalEntry::Start { timezone, mode, .. } = e {
                rec.timezone = timezone.clone();
                rec.offline = mode == "analyze" || mode == REPLAY_OF_ANALYZE;
            }
        }
        let clock = LogClock::new(&rec.timezone).unwrap_or_else(|_| LogClock::utc());
        let first_line = first_log_time(&log).map(|t| clock.to_utc(t));
        let last_line = last_log_time(&log).map(|t| clock.to_utc(t));
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
                } if source == SOURCE => {
                    // The first is measured as the capture connects: it
                    // applies to the log's first line.
                    let first = !rec
                        .schedule
                        .iter()
                        .any(|p| matches!(p.item, Scheduled::ClockOffset { .. }));
                    let when = match first_line {
                        Some(f) if first => Due::At(f.min(at)),
                        _ => due(at),
                    };
                    rec.schedule.push(Planned {
                        due: when,
                        at,
                        item: Scheduled::ClockOffset {
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
        let status = |s: SourceStatus| Input::Status {
            source: SOURCE.into(),
            status: s,
            at: clock.now(),
        };
        let _ = tx.send(status(SourceStatus::Live)).await;
        let mut logclock = LogClock::new(&self.timezone).unwrap_or_else(|_| LogClock::utc());
        let file = match tokio::fs::File::open(self.dir.join(SERVER_LOG)).await {
            Ok(f) => f,
            Err(e) => {
                let _ = tx
                    .send(status(SourceStatus::Error {
                        reason: e.to_string(),
                    }))
                    .await;
                return;
            }
        };
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut schedule = self.schedule.into_iter().peekable();
        let mut chunk: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut line = Vec::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            line.clear();
            let n = match reader.read_until(b'\n', &mut line).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx
                        .send(status(SourceStatus::Error {
                            reason: e.to_string(),
                        }))
                        .await;
                    return;
                }
            };
            let at = if n == 0 {
                None
            } else {
                parse_timestamp_prefix(&line).map(|t| logclock.to_utc(t))
            };
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
                    let _ = tx.send(server(&mut chunk, clock.now())).await;
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
                            offset_ms,
                            bound_ms,
                        } => {
                            // Lines are paced on the corrected clock too.
                            logclock.set_offset_ms(offset_ms);
                            Input::ClockOffset {
                                source: SOURCE.into(),
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
                    let _ = tx.send(server(&mut chunk, clock.now())).await;
                }
                if wait(&clock, a, &mut shutdown).await {
                    return;
                }
            }
            chunk.extend_from_slice(&line);
            if chunk.len() >= 1 << 16 {
                let _ = tx.send(server(&mut chunk, clock.now())).await;
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(server(&mut chunk, clock.now())).await;
        }
        let _ = tx.send(status(SourceStatus::Stopped)).await;
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

fn server(chunk: &mut Vec<u8>, at: DateTime<Utc>) -> Input {
    Input::ServerChunk {
        source: SOURCE.into(),
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
fn last_log_time(path: &Path) -> Option<chrono::NaiveDateTime> {
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
            .find_map(parse_timestamp_prefix)
        {
            return Some(t);
        }
        if from == 0 || back >= 1 << 24 {
            return None;
        }
        back *= 4;
    }
}

fn first_log_time(path: &Path) -> Option<chrono::NaiveDateTime> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).ok()?;
    std::io::BufReader::new(f)
        .split(b'\n')
        .take(10_000)
        .filter_map(Result::ok)
        .find_map(|l| parse_timestamp_prefix(&l))
}
