//! Replays a recorded session (a bundle, or the demo shipped in the binary)
//! as if it were live: server lines paced by their own timestamps, client
//! files at the time they arrived, database polls at their times.

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

/// What happens besides server lines, on the recording's time axis.
#[derive(Debug, Clone)]
enum Scheduled {
    Client(PathBuf),
    Db(Box<DbPoll>),
    /// A metrics reading and the raw text behind it, read back from the
    /// recording's file.
    Metrics(Box<MetricsReport>, Option<(String, Vec<u8>)>),
}

#[derive(Debug, Clone)]
pub struct Recording {
    pub dir: PathBuf,
    /// The first time in the recording: the virtual clock starts here.
    pub origin: DateTime<Utc>,
    schedule: Vec<(DateTime<Utc>, Scheduled)>,
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
            user_id: None,
            device_id: None,
            participants: Vec::new(),
            timezone: "UTC".into(),
        };
        let mut polls: Vec<DateTime<Utc>> = Vec::new();
        for e in &entries {
            match e {
                JournalEntry::Start {
                    user_id,
                    device_id,
                    participants,
                    timezone,
                    ..
                } => {
                    rec.user_id = user_id.clone();
                    rec.device_id = device_id.clone();
                    rec.participants = participants.clone();
                    rec.timezone = timezone.clone();
                }
                JournalEntry::Client { at, artifact } => {
                    let p = dir.join("client").join(&artifact.file);
                    if p.is_file() {
                        rec.schedule.push((*at, Scheduled::Client(p)));
                    }
                }
                JournalEntry::DbPoll { at, .. } => polls.push(*at),
                JournalEntry::Metrics { at, report } => {
                    let raw = report.raw.as_ref().and_then(|r| raw_text(dir, r));
                    let mut report = report.clone();
                    report.raw = None;
                    rec.schedule.push((*at, Scheduled::Metrics(report, raw)));
                }
                _ => {}
            }
        }
        let read_db = |name: &str| -> Option<BTreeMap<String, Vec<crate::sources::Row>>> {
            let text = std::fs::read_to_string(dir.join("db").join(name)).ok()?;
            serde_json::from_str(&text).ok()
        };
        if let (Some(first), Some(&t0)) = (read_db("first.json"), polls.first()) {
            rec.schedule
                .push((t0, Scheduled::Db(Box::new(DbPoll::snapshot(t0, first)))));
            if let (Some(last), Some(&t1)) = (read_db("last.json"), polls.last())
                && t1 > t0
            {
                rec.schedule
                    .push((t1, Scheduled::Db(Box::new(DbPoll::snapshot(t1, last)))));
            }
        }
        rec.schedule.sort_by_key(|(t, _)| *t);
        let clock = LogClock::new(&rec.timezone).unwrap_or_else(|_| LogClock::utc());
        let first_line = first_log_time(&log).map(|t| clock.to_utc(t));
        rec.origin = [first_line, rec.schedule.first().map(|(t, _)| *t)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(Utc::now);
        Ok(rec)
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
        let logclock = LogClock::new(&self.timezone).unwrap_or_else(|_| LogClock::utc());
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
            while let Some((t, _)) = schedule.peek() {
                if at.is_some_and(|a| *t > a) || (n > 0 && at.is_none()) {
                    break;
                }
                let t = *t;
                if !chunk.is_empty() {
                    let _ = tx.send(server(&mut chunk, clock.now())).await;
                }
                if wait(&clock, t, &mut shutdown).await {
                    return;
                }
                if let Some((_, item)) = schedule.next() {
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

fn first_log_time(path: &Path) -> Option<chrono::NaiveDateTime> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).ok()?;
    std::io::BufReader::new(f)
        .split(b'\n')
        .take(10_000)
        .filter_map(Result::ok)
        .find_map(|l| parse_timestamp_prefix(&l))
}
