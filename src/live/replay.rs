//! Replays a recorded session (a bundle, or the demo shipped in the binary)
//! as if it were live: server lines paced by their own timestamps, client
//! files at the time they arrived, database polls at their times.

use super::replay_logs::{LogLines, line_time};
use crate::bundle::journal;
use crate::domain::log_format::{Format, sniff};
use crate::domain::synapse_log::LogClock;
use crate::model::journal_entry::JournalEntry;
use crate::model::server_logs::{DEFAULT_LOG_NAME, LogInfo, ServerLogs};
use crate::sources::clock::Clock;
use crate::sources::{DbPoll, Input, SourceStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

/// The source name of a recording of one unnamed log.
pub const SOURCE: &str = DEFAULT_LOG_NAME;

/// What happens besides server lines, on the recording's time axis.
#[derive(Debug, Clone)]
enum Scheduled {
    Client(PathBuf),
    Db(Box<DbPoll>),
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
            user_id: None,
            device_id: None,
            participants: Vec::new(),
            timezone: "UTC".into(),
            logs: Vec::new(),
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
                JournalEntry::ServerLogs { logs, .. } => rec.logs = logs.clone(),
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
        if rec.logs.is_empty() {
            rec.logs.push(LogInfo {
                name: SOURCE.into(),
                timezone: rec.timezone.clone(),
                format: None,
                service: None,
            });
        }
        let names = ServerLogs::new(rec.logs.iter().map(|l| l.name.clone()).collect());
        let mut first_line = None;
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
            let t = first_log_time(
                &path,
                l.format.as_deref().and_then(Format::from_name),
                &zone,
            );
            first_line = first_line.into_iter().chain(t).min();
        }
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
            while let Some((t, _)) = schedule.peek() {
                if at.is_some_and(|a| *t > a) || (n > 0 && at.is_none()) {
                    break;
                }
                let t = *t;
                if !chunk.is_empty() {
                    let _ = tx.send(server(&names[from], &mut chunk, clock.now())).await;
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
