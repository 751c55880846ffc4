//! Watches the browser's downloads folder for client evidence: diag reports
//! (`lotus-crypto-diag-*.json`) and HAR files (`*.har`).
//!
//! Browsers write a download under a temporary name (`x.json.crdownload`,
//! `x.json.part`, `x.json.download`) and rename it when it is complete;
//! Firefox may first create an empty `x.json` placeholder that the rename
//! replaces. So a file is picked up when it has a final name, is a regular
//! file, is not empty, and two looks at least [`SETTLE`] apart see the same
//! inode, size and modification time. Each file (path and inode) is reported
//! once; a different file later saved under the same name is a new download.
//!
//! Decisions are made from the folder's contents, never from the events
//! themselves: `notify` events only wake the scanner early. Missed or
//! coalesced events (queue overflow, editors, network mounts) cannot lose a
//! file, because the folder is also rescanned every [`IDLE_RESCAN`]. That
//! rescan is also what notices the folder vanishing or being replaced.

use super::file::FileId;
use super::{Input, SourceStatus};
use chrono::Utc;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

/// The `source` name on the statuses and notes this task sends.
pub const SOURCE: &str = "downloads";

/// How long a completed file's size must stay the same before it is taken.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Rescan period while a candidate is settling.
const SETTLING_TICK: Duration = Duration::from_millis(100);

/// Rescan period when nothing is pending (safety net for missed events).
const IDLE_RESCAN: Duration = Duration::from_secs(1);

/// Retry period while the folder is missing.
const MISSING_RETRY: Duration = Duration::from_millis(500);

/// After an event, wait this long for the burst to end before scanning: a
/// browser writing a large download fires events continuously.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Whether a file name is client evidence: `lotus-crypto-diag-*.json`,
/// `*.har`, or Element Web's logs (`rageshake*.tar`, `*.log`, `*.log.gz`),
/// ignoring case. Temporary download names never match.
pub fn is_client_file(name: &str) -> bool {
    let lower = name.to_lowercase();
    (lower.starts_with("lotus-crypto-diag-") && lower.ends_with(".json"))
        || lower.ends_with(".har")
        || crate::domain::element_log::is_element_log_name(&lower)
}

/// Watches `dir` and sends one [`Input::ClientFile`] per completed download
/// until `shutdown` becomes `true` (or its sender is dropped). Files already
/// in the folder at start are skipped unless `include_existing`. A missing
/// folder is reported as [`SourceStatus::Error`] and retried.
pub async fn run_downloads(
    dir: PathBuf,
    include_existing: bool,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let wake = Arc::new(Notify::new());
    let mut scanner = Some(Scanner::new(dir, include_existing, wake.clone()));
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let Some(t) = scanner.take() else {
            return;
        };
        let (t, scan) = match tokio::task::spawn_blocking(move || {
            let mut t = t;
            let scan = t.scan(Instant::now());
            (t, scan)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("downloads watcher stopped: {e}");
                let _ = tx
                    .send(Input::status_now(SOURCE, SourceStatus::Error { reason }))
                    .await;
                return;
            }
        };
        scanner = Some(t);
        for o in scan.out {
            let input = match o {
                Out::File(path) => Input::ClientFile {
                    path,
                    at: Utc::now(),
                },
                Out::Status(s) => Input::status_now(SOURCE, s),
                Out::Note(text) => Input::note_now(SOURCE, text),
            };
            if tx.send(input).await.is_err() {
                return;
            }
        }
        let wait = match scan.state {
            ScanState::Missing => MISSING_RETRY,
            ScanState::Settling => SETTLING_TICK,
            ScanState::Idle => IDLE_RESCAN,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {
                // Let the burst end; the next scan sees its result.
                tokio::select! {
                    _ = tokio::time::sleep(DEBOUNCE) => {}
                    _ = shutdown.changed() => {}
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx
        .send(Input::status_now(SOURCE, SourceStatus::Stopped))
        .await;
}

#[derive(Debug)]
enum Out {
    File(PathBuf),
    Status(SourceStatus),
    Note(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    Missing,
    Settling,
    Idle,
}

struct Scan {
    out: Vec<Out>,
    state: ScanState,
}

/// What two looks must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileState {
    id: FileId,
    len: u64,
    modified: Option<SystemTime>,
}

struct Pending {
    sig: FileState,
    since: Instant,
}

struct Scanner {
    dir: PathBuf,
    include_existing: bool,
    wake: Arc<Notify>,
    /// The first scan at start decides what counts as "already there".
    at_start: bool,
    /// Which folder is watched; a replaced folder has another id.
    dir_id: Option<FileId>,
    watcher: Option<RecommendedWatcher>,
    /// Files reported or skipped, by path and inode.
    done: HashSet<(PathBuf, FileId)>,
    pending: HashMap<PathBuf, Pending>,
    last_status: Option<SourceStatus>,
}

impl Scanner {
    fn new(dir: PathBuf, include_existing: bool, wake: Arc<Notify>) -> Scanner {
        Scanner {
            dir,
            include_existing,
            wake,
            at_start: true,
            dir_id: None,
            watcher: None,
            done: HashSet::new(),
            pending: HashMap::new(),
            last_status: None,
        }
    }

    fn report(&mut self, out: &mut Vec<Out>, s: SourceStatus) {
        if self.last_status.as_ref() != Some(&s) {
            self.last_status = Some(s.clone());
            out.push(Out::Status(s));
        }
    }

    /// Reports the folder unusable. `absent`: it does not exist (rather than
    /// existing unreadably), so nothing in it can predate the start.
    fn missing(&mut self, out: &mut Vec<Out>, reason: String, absent: bool) -> Scan {
        if absent {
            self.at_start = false;
        }
        self.dir_id = None;
        self.watcher = None;
        self.pending.clear();
        self.report(out, SourceStatus::Error { reason });
        Scan {
            out: std::mem::take(out),
            state: ScanState::Missing,
        }
    }

    fn scan(&mut self, now: Instant) -> Scan {
        let mut out = Vec::new();
        let dir_meta = match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                let reason = format!(
                    "downloads folder '{}' is not a folder; retrying",
                    self.dir.display()
                );
                return self.missing(&mut out, reason, true);
            }
            Err(e) => {
                let reason = format!("downloads folder '{}': {e}; retrying", self.dir.display());
                return self.missing(&mut out, reason, e.kind() == std::io::ErrorKind::NotFound);
            }
        };
        let dir_id = FileId::of(&dir_meta);
        if self.dir_id != Some(dir_id) {
            // Watch before listing, so nothing created in between is missed.
            self.watcher = None;
            match watch_dir(&self.dir, self.wake.clone()) {
                Ok(w) => self.watcher = Some(w),
                Err(e) => out.push(Out::Note(format!(
                    "cannot watch '{}' ({e}); checking it every {} ms instead",
                    self.dir.display(),
                    IDLE_RESCAN.as_millis()
                ))),
            }
            self.dir_id = Some(dir_id);
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                let reason = format!(
                    "cannot list downloads folder '{}': {e}; retrying",
                    self.dir.display()
                );
                return self.missing(&mut out, reason, e.kind() == std::io::ErrorKind::NotFound);
            }
        };
        self.report(&mut out, SourceStatus::Live);

        let mut present = HashSet::new();
        let mut skipped = 0usize;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !is_client_file(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            // Follows symlinks: a link to a finished file is a finished file.
            let Ok(m) = std::fs::metadata(&path) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            let sig = FileState {
                id: FileId::of(&m),
                len: m.len(),
                modified: m.modified().ok(),
            };
            let key = (path.clone(), sig.id);
            if self.done.contains(&key) {
                continue;
            }
            if self.at_start && !self.include_existing {
                self.done.insert(key);
                skipped += 1;
                continue;
            }
            if sig.len == 0 {
                // Just created, or Firefox's placeholder for a download in progress.
                self.pending.remove(&path);
                continue;
            }
            present.insert(path.clone());
            match self.pending.get(&path) {
                Some(p) if p.sig == sig => {
                    if now.duration_since(p.since) >= SETTLE {
                        self.pending.remove(&path);
                        self.done.insert(key);
                        out.push(Out::File(path));
                    }
                }
                _ => {
                    self.pending.insert(path, Pending { sig, since: now });
                }
            }
        }
        self.pending.retain(|p, _| present.contains(p));
        if self.at_start && skipped > 0 {
            out.push(Out::Note(format!(
                "ignoring {skipped} client file(s) already in '{}' (set include-existing to pick them up)",
                self.dir.display()
            )));
        }
        self.at_start = false;
        let state = if self.pending.is_empty() {
            ScanState::Idle
        } else {
            ScanState::Settling
        };
        Scan { out, state }
    }
}

fn watch_dir(dir: &Path, wake: Arc<Notify>) -> notify::Result<RecommendedWatcher> {
    let mut w = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        // Any event, error included, only means "look again".
        wake.notify_one();
    })?;
    w.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_file_names() {
        for yes in [
            "lotus-crypto-diag-1732650000000.json",
            "LOTUS-CRYPTO-DIAG-1.JSON",
            "lotus-crypto-diag-1 (1).json",
            "call.har",
            "Call.HAR",
            "10.10.10.4 (2).har",
            "rageshake.tar",
            "rageshake (1).tar",
            "logs-0000.log.gz",
            "element-console.log",
        ] {
            assert!(is_client_file(yes), "{yes}");
        }
        for no in [
            "lotus-crypto-diag-1.json.crdownload",
            "lotus-crypto-diag-1.json.part",
            "lotus-crypto-diag-1.json.download",
            "call.har.crdownload",
            "call.har.part",
            "Unconfirmed 12345.crdownload",
            "notes.json",
            "lotus-crypto-diag.json",
            "har",
            "call.har.txt",
            "rageshake.tar.crdownload",
            "backup.tar",
        ] {
            assert!(!is_client_file(no), "{no}");
        }
    }
}
