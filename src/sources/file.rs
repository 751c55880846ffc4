//! Follows a local log file the way `tail -F` does.
//!
//! * Starts at the end of the file, or `backfill` lines before it.
//! * Rotation by rename: the old file is read to its end (a writer may still
//!   append to it after the rename), then the new file at the path is read
//!   from byte 0.
//! * Truncation (`copytruncate`, `> file`): reading restarts at byte 0.
//! * A file that is missing (at start or later) is reported as
//!   [`SourceStatus::Error`] and retried; when it appears it is read from
//!   byte 0, because everything in it is new.
//!
//! # Why polling and not `notify`
//!
//! The file is stat-ed every [`POLL_INTERVAL`] (100 ms). inotify watches an
//! inode, not a name: after a rename the watch follows the old file, so a
//! correct watcher has to watch the parent directory as well, re-arm on every
//! rotation and still poll after queue overflows, and it does not work at all
//! on NFS/SMB/FUSE mounts where homeserver logs sometimes live. A 100 ms
//! `fstat` + `stat` pair is a few microseconds of CPU, gives a latency no
//! operator can notice, and has one code path that the tests exercise fully.
//! While data is flowing the loop does not sleep at all.
//!
//! # Limits (shared with `tail -F`)
//!
//! * A truncation followed by a rewrite that grows the file past the old
//!   read position within one poll interval is seen as an append.
//! * Bytes a writer appends to the old file *after* the new file appeared and
//!   the old one was drained are not read.

use super::log_source::{Feed, LogSource, SessionEnd, supervise};
use super::{Input, SourceStatus};
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The `source` name on every [`Input`] this task sends.
pub const SOURCE: &str = "server-log";

/// How often the file and the path are checked when no data is flowing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes per [`Input::ServerChunk`].
const CHUNK: usize = 64 * 1024;

/// Bytes read per blocking step; more data is read in the next step without
/// sleeping, so memory stays bounded and the channel applies backpressure.
const STEP_BUDGET: usize = 16 * CHUNK;

/// Follows `path` and sends its bytes as [`Input::ServerChunk`]s until
/// `shutdown` becomes `true` (or its sender is dropped), then reads what is
/// left up to the end of the file and sends [`SourceStatus::Stopped`].
///
/// Returns early, without error, when the receiver of `tx` is gone.
pub async fn run_file_tail(
    path: PathBuf,
    backfill: u64,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    run_named_file_tail(path, backfill, SOURCE, tx, shutdown).await;
}

/// [`run_file_tail`] under another source name (one of several logs).
pub async fn run_named_file_tail(
    path: PathBuf,
    backfill: u64,
    name: &str,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    let source = FileTail {
        tail: Some(Tail::new(path, backfill)),
    };
    let _ = supervise(source, name, tx, shutdown).await;
}

/// Where the tail is: the file it reads and the offset after what it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilePosition {
    pub file: FileId,
    pub offset: u64,
}

/// The blocking step stopped (it panicked): the tail cannot go on.
#[derive(Debug)]
pub(crate) struct TailStopped(String);

impl std::fmt::Display for TailStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file tail stopped: {}", self.0)
    }
}

/// The local file as a [`LogSource`]. One session follows the file until
/// shutdown: a missing or unreadable file is waited for within it (the
/// status says so), as `tail -F` does, rather than reconnected to.
struct FileTail {
    /// Away while a step runs on the blocking pool.
    tail: Option<Tail>,
}

impl LogSource for FileTail {
    type Position = FilePosition;
    type Error = TailStopped;

    fn describe(p: &FilePosition) -> serde_json::Value {
        serde_json::json!({"file": format!("{}:{}", p.file.dev, p.file.ino), "offset": p.offset})
    }

    async fn session(
        &mut self,
        feed: &mut Feed<FilePosition>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd<TailStopped> {
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            let step = match step_blocking(&mut self.tail).await {
                Ok(step) => step,
                Err(e) => return SessionEnd::Fatal(e),
            };
            if !self.send_all(feed, step.out).await {
                return SessionEnd::Closed;
            }
            if !step.more {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        // Whatever was written before the shutdown belongs to the capture.
        loop {
            let step = match step_blocking(&mut self.tail).await {
                Ok(step) => step,
                Err(e) => return SessionEnd::Fatal(e),
            };
            if !self.send_all(feed, step.out).await {
                return SessionEnd::Closed;
            }
            if !step.more {
                break;
            }
        }
        SessionEnd::Shutdown
    }
}

impl FileTail {
    /// Sends a step's output and notes where the tail is now.
    async fn send_all(&self, feed: &mut Feed<FilePosition>, out: Vec<Out>) -> bool {
        for o in out {
            let sent = match o {
                Out::Bytes(bytes) => feed.bytes(bytes).await,
                Out::Status(s) => feed.status(s).await,
                Out::Note(text) => feed.note(text).await,
            };
            if !sent {
                return false;
            }
        }
        let open = self.tail.as_ref().and_then(|t| t.open.as_ref());
        feed.set_position(open.map(|o| FilePosition {
            file: o.id,
            offset: o.pos,
        }));
        true
    }
}

/// Runs one [`Tail::step`] on the blocking pool: a slow disk or a hung
/// network mount must not stall the runtime's worker threads.
async fn step_blocking(tail: &mut Option<Tail>) -> Result<Step, TailStopped> {
    let Some(mut t) = tail.take() else {
        return Err(TailStopped("the tail is gone".into()));
    };
    match tokio::task::spawn_blocking(move || {
        let step = t.step();
        (t, step)
    })
    .await
    {
        Ok((t, step)) => {
            *tail = Some(t);
            Ok(step)
        }
        Err(e) => Err(TailStopped(e.to_string())),
    }
}

/// What one step produced, in order.
#[derive(Debug, PartialEq)]
enum Out {
    Bytes(Vec<u8>),
    Status(SourceStatus),
    Note(String),
}

#[derive(Debug, Default)]
struct Step {
    out: Vec<Out>,
    /// Data is (probably) waiting: step again without sleeping.
    more: bool,
}

/// Which file a path names. Holding the old file open keeps its inode alive,
/// so a recreated file can never reuse it while we compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    pub(crate) fn of(m: &Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn of(m: &Metadata) -> FileId {
        // No inode numbers: the creation time tells a recreated file apart.
        let ns = m
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        FileId { dev: 0, ino: ns }
    }
}

struct Open {
    file: File,
    id: FileId,
    /// Offset of the next byte to read; everything before it was sent.
    pos: u64,
}

/// The synchronous state machine behind [`run_file_tail`].
struct Tail {
    path: PathBuf,
    backfill: u64,
    open: Option<Open>,
    /// Only the first successful open at start honours "start at the end";
    /// a file that appears later is new and read from byte 0.
    at_start: bool,
    /// After a read error the file is closed; if reopening finds the same
    /// file, reading resumes here instead of at 0.
    resume: Option<(FileId, u64)>,
    /// Last status sent, so a persisting condition is reported once.
    last_status: Option<SourceStatus>,
    buf: Vec<u8>,
}

/// How [`Tail::open_path`] positioned a newly opened file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    /// At start: the end, or `backfill` lines before it.
    AtStart,
    /// The same file as before a read error, where reading stopped.
    Resumed,
    /// A file that appeared after start: from byte 0.
    New,
}

impl Tail {
    fn new(path: PathBuf, backfill: u64) -> Tail {
        Tail {
            path,
            backfill,
            open: None,
            at_start: true,
            resume: None,
            last_status: None,
            buf: vec![0; CHUNK],
        }
    }

    fn report(&mut self, out: &mut Vec<Out>, s: SourceStatus) {
        if self.last_status.as_ref() != Some(&s) {
            self.last_status = Some(s.clone());
            out.push(Out::Status(s));
        }
    }

    fn step(&mut self) -> Step {
        let mut step = Step::default();
        if self.open.is_none() {
            match self.open_path(&mut step.out) {
                None => return step,
                Some(Opened::New) => step.out.push(Out::Note(format!(
                    "'{}' appeared; following it from the start",
                    self.path.display()
                ))),
                Some(Opened::AtStart | Opened::Resumed) => {}
            }
        }
        match self.read_available(&mut step.out) {
            Ok(true) => {
                step.more = true;
                return step;
            }
            Ok(false) => {}
            Err(e) => {
                let reason = format!("cannot read '{}': {e}; retrying", self.path.display());
                self.report(&mut step.out, SourceStatus::Error { reason });
                // Reopen next time: a stale handle (NFS) never recovers.
                if let Some(o) = self.open.take() {
                    self.resume = Some((o.id, o.pos));
                }
                return step;
            }
        }
        if self.check_truncation(&mut step.out) {
            step.more = true;
            return step;
        }
        step.more = self.check_rotation(&mut step.out);
        step
    }

    /// Opens the path and positions it; on failure reports why.
    fn open_path(&mut self, out: &mut Vec<Out>) -> Option<Opened> {
        let opened = File::open(&self.path).and_then(|file| {
            let m = file.metadata()?;
            if m.is_dir() {
                return Err(io::Error::other("it is a directory"));
            }
            Ok((file, m))
        });
        let (mut file, m) = match opened {
            Ok(x) => x,
            Err(e) => {
                // A file that is not there at start is followed from byte 0
                // once it appears. One that exists but cannot be read yet
                // (permissions) still starts at its end once it can.
                if e.kind() == io::ErrorKind::NotFound {
                    self.at_start = false;
                }
                let reason = format!("cannot open '{}': {e}; retrying", self.path.display());
                self.report(out, SourceStatus::Error { reason });
                return None;
            }
        };
        let id = FileId::of(&m);
        let (pos, how) = match self.resume.take() {
            Some((rid, rpos)) if rid == id => (rpos, Opened::Resumed),
            _ if self.at_start => match start_offset(&mut file, m.len(), self.backfill) {
                Ok(p) => (p, Opened::AtStart),
                Err(e) => {
                    let reason = format!("cannot read '{}': {e}; retrying", self.path.display());
                    self.report(out, SourceStatus::Error { reason });
                    return None;
                }
            },
            _ => (0, Opened::New),
        };
        self.at_start = false;
        self.open = Some(Open { file, id, pos });
        self.report(out, SourceStatus::Live);
        Some(how)
    }

    /// Reads from the open file up to [`STEP_BUDGET`] bytes. `Ok(true)` means
    /// the budget ran out before the end of the file.
    fn read_available(&mut self, out: &mut Vec<Out>) -> io::Result<bool> {
        let Some(open) = self.open.as_mut() else {
            return Ok(false);
        };
        open.file.seek(SeekFrom::Start(open.pos))?;
        let mut total = 0;
        while total < STEP_BUDGET {
            let n = match open.file.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            open.pos += n as u64;
            total += n;
            out.push(Out::Bytes(self.buf[..n].to_vec()));
        }
        Ok(true)
    }

    /// A file shorter than what was read has been truncated: restart at 0.
    fn check_truncation(&mut self, out: &mut Vec<Out>) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        match open.file.metadata() {
            Ok(m) if m.len() < open.pos => {
                out.push(Out::Note(format!(
                    "'{}' was truncated (from {} to {} bytes); reading from the start",
                    self.path.display(),
                    open.pos,
                    m.len()
                )));
                open.pos = 0;
                true
            }
            _ => false,
        }
    }

    /// Compares the file at the path with the open one. Returns true when
    /// there is more to read right away.
    fn check_rotation(&mut self, out: &mut Vec<Out>) -> bool {
        let Some(cur_id) = self.open.as_ref().map(|o| o.id) else {
            return false;
        };
        match std::fs::metadata(&self.path) {
            Ok(m) if FileId::of(&m) == cur_id => {
                self.report(out, SourceStatus::Live);
                false
            }
            Ok(_) => {
                // Rotated. The writer may have appended to the old file since
                // the read above: drain it to its end before switching.
                match self.read_available(out) {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(_) => {} // The old file is unreadable: nothing more to get from it.
                }
                let old_end = self.open.as_ref().map_or(0, |o| o.pos);
                let Some(old) = self.open.take() else {
                    return false;
                };
                self.at_start = false;
                self.resume = None;
                if self.open_path(out).is_some() {
                    out.push(Out::Note(format!(
                        "'{}' was rotated: read the old file to its end ({old_end} bytes); \
                         following the new file from the start",
                        self.path.display()
                    )));
                    true
                } else {
                    // The new file vanished between stat and open: keep the
                    // old one and look again next time.
                    self.open = Some(old);
                    false
                }
            }
            Err(e) => {
                let reason = format!(
                    "'{}' is gone ({e}); read the old file to its end, waiting for it to reappear",
                    self.path.display()
                );
                self.report(out, SourceStatus::Error { reason });
                false
            }
        }
    }
}

/// Offset where reading starts: the end, or `lines` lines before it, the way
/// `tail -n` counts (a final newline ends the last line, it does not start an
/// empty one).
fn start_offset<F: Read + Seek>(file: &mut F, len: u64, lines: u64) -> io::Result<u64> {
    if lines == 0 || len == 0 {
        return Ok(len);
    }
    const BLOCK: u64 = 8 * 1024;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    let mut newlines = 0u64;
    let mut skip_last = true;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        for i in (0..n).rev() {
            if buf[i] != b'\n' {
                skip_last = false;
                continue;
            }
            if skip_last {
                // The newline that ends the file's last line.
                skip_last = false;
                continue;
            }
            newlines += 1;
            if newlines == lines {
                return Ok(start + i as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tail_of(text: &str, lines: u64) -> String {
        let mut c = Cursor::new(text.as_bytes().to_vec());
        let off = start_offset(&mut c, text.len() as u64, lines).unwrap_or(0);
        text[off as usize..].to_string()
    }

    #[test]
    fn start_offset_counts_lines_like_tail_n() {
        assert_eq!(tail_of("a\nb\nc\n", 0), "");
        assert_eq!(tail_of("a\nb\nc\n", 1), "c\n");
        assert_eq!(tail_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_of("a\nb\nc\n", 3), "a\nb\nc\n");
        assert_eq!(tail_of("a\nb\nc\n", 10), "a\nb\nc\n");
        // An unterminated last line counts as a line.
        assert_eq!(tail_of("a\nb\nc", 1), "c");
        assert_eq!(tail_of("a\nb\nc", 2), "b\nc");
        // Empty lines are lines.
        assert_eq!(tail_of("a\n\n\n", 2), "\n\n");
        assert_eq!(tail_of("", 5), "");
    }

    #[test]
    fn start_offset_works_across_block_boundaries() {
        let line = format!("{}\n", "x".repeat(3000));
        let text: String = (0..20).map(|i| format!("{i:02}{line}")).collect();
        let got = tail_of(&text, 7);
        let want: String = (13..20).map(|i| format!("{i:02}{line}")).collect();
        assert_eq!(got, want);
    }
}
