//! A log read from a command that follows it (`journalctl -f`, `docker logs
//! -f`), on this machine or over the SSH connection: one [`LogSource`] for
//! every such kind. A kind ([`Follow`]) says which command resumes at a
//! position and reads its position off each line; a session runs the
//! command, hands on every complete line it prints and notes the position
//! after it. The supervisor does the rest (backoff, gaps, resume).
//!
//! A session is live once the command has been running for a moment and
//! the backlog it printed (what was written while the link was down) has
//! arrived: [`QUIET`] without output, or [`LIVE_AT_THE_LATEST`].

use super::SourceStatus;
use super::log_source::{Feed, LogSource, SessionEnd, is_shutdown, wait_shutdown};
use super::ssh::{RemoteCommands, RemoteProc, SshError};
use std::collections::VecDeque;
use std::fmt::Debug;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// Quiet for this long after output: the backlog is in.
const QUIET: Duration = Duration::from_millis(300);
/// Live by now, however busy the log.
const LIVE_AT_THE_LATEST: Duration = Duration::from_secs(2);
/// A line longer than this is cut (the rest is dropped, and said so).
const MAX_LINE: usize = 16 << 20;

/// What a followed command printed on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A log line: hand it on.
    Log,
    /// Already handed on before the link dropped (the command resumed a
    /// little before the position): drop it.
    Seen,
    /// Not a log line (the command complaining): a note, not log.
    Diagnostic,
}

/// One kind of followed command.
pub trait Follow: Send + Sync + 'static {
    type Position: Clone + Debug + Send + Sync + 'static;

    /// The command line, resuming after `position` (`None`: where the
    /// source starts).
    fn argv(&self, position: Option<&Self::Position>) -> Vec<String>;

    /// The command's stderr is log too (docker: the container's stderr).
    fn merge_stderr(&self) -> bool {
        false
    }

    /// A session starts from `position`.
    fn start(&mut self, _position: Option<&Self::Position>) {}

    /// Reads a complete line (without its newline), moving `position` past
    /// it when it is a log line.
    fn line(&mut self, line: &[u8], position: &mut Option<Self::Position>) -> Line;

    /// The position for the manifest.
    fn describe(position: &Self::Position) -> serde_json::Value;

    /// What is followed, for messages (`the journal of matrix-synapse`).
    fn what(&self) -> String;
}

/// Where the command runs.
pub enum Runner {
    Local,
    Ssh(Box<RemoteCommands>),
}

/// Why a followed command's source gives up.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Ssh(#[from] SshError),
    #[error("{0}")]
    Local(String),
}

/// A followed command as a [`LogSource`].
pub struct CommandSource<F: Follow> {
    pub follow: F,
    pub runner: Runner,
}

/// A command that runs.
enum Running {
    Local(Box<LocalProc>),
    Remote(Box<RemoteProc>),
}

/// What a running command did.
pub enum ProcEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// It ended (with this status, said in words).
    Exited(String),
    /// The link to it was lost.
    Lost(String),
    /// The link does not answer.
    Stalled(String),
}

impl<F: Follow> LogSource for CommandSource<F> {
    type Position = F::Position;
    type Error = CommandError;

    async fn session(
        &mut self,
        feed: &mut Feed<F::Position>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd<CommandError> {
        if is_shutdown(shutdown) {
            return SessionEnd::Shutdown;
        }
        let argv = self.follow.argv(feed.position());
        let merge = self.follow.merge_stderr();
        self.follow.start(feed.position());
        let proc = match &mut self.runner {
            Runner::Local => match LocalProc::spawn(&argv, merge) {
                Ok(p) => Running::Local(Box::new(p)),
                Err(e) => return e,
            },
            Runner::Ssh(r) => match r.start(feed, shutdown, &argv, merge).await {
                Ok(p) => Running::Remote(Box::new(p)),
                Err(end) => return end.map_err(CommandError::from),
            },
        };
        let mut s = Session {
            started: Instant::now(),
            last_out: None,
            live: false,
            bytes: 0,
            partial: Vec::new(),
            errs: Vec::new(),
            stderr_tail: VecDeque::new(),
            notes_left: 20,
            exited: false,
        };
        let (end, proc) = self.run(proc, &mut s, feed, shutdown).await;
        // The connection serves the next command unless it was the trouble.
        let keep = matches!(end, SessionEnd::Lost(_)) && s.exited;
        match (proc, &mut self.runner) {
            (Running::Local(p), _) => p.stop().await,
            (Running::Remote(p), Runner::Ssh(r)) => r.finish(*p, keep).await,
            (Running::Remote(_), Runner::Local) => {}
        }
        end
    }

    async fn close(&mut self) {
        if let Runner::Ssh(r) = &mut self.runner {
            r.close().await;
        }
    }

    fn describe(position: &F::Position) -> serde_json::Value {
        F::describe(position)
    }
}

/// State of one session.
struct Session {
    started: Instant,
    last_out: Option<Instant>,
    live: bool,
    /// Bytes handed on in this session (caught up while not yet live).
    bytes: u64,
    partial: Vec<u8>,
    errs: Vec<u8>,
    stderr_tail: VecDeque<String>,
    notes_left: u32,
    /// The command ended by itself (the link is fine).
    exited: bool,
}

impl Session {
    fn when_live(&self) -> Instant {
        match self.last_out {
            Some(t) => (t + QUIET).min(self.started + LIVE_AT_THE_LATEST),
            None => self.started + QUIET,
        }
    }
}

impl<F: Follow> CommandSource<F> {
    /// Reads the command until it ends or the session must; gives the
    /// command back to be stopped.
    async fn run(
        &mut self,
        mut proc: Running,
        s: &mut Session,
        feed: &mut Feed<F::Position>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> (SessionEnd<CommandError>, Running) {
        loop {
            let live_at = tokio::time::Instant::from_std(s.when_live());
            let ev = tokio::select! {
                biased;
                _ = wait_shutdown(shutdown) => return (SessionEnd::Shutdown, proc),
                ev = proc.next() => ev,
                _ = tokio::time::sleep_until(live_at), if !s.live => {
                    s.live = true;
                    if !feed.live(s.bytes).await {
                        return (SessionEnd::Closed, proc);
                    }
                    continue;
                }
            };
            feed.received();
            let ok = match ev {
                ProcEvent::Stdout(data) => self.stdout(&data, s, feed).await,
                ProcEvent::Stderr(data) => self.stderr(&data, s, feed).await,
                ProcEvent::Exited(status) => {
                    // A last line without its newline is a line.
                    if !s.partial.is_empty() {
                        let _ = self.stdout(b"\n", s, feed).await;
                    }
                    s.exited = true;
                    return (SessionEnd::Lost(self.ended(s, &status)), proc);
                }
                ProcEvent::Lost(reason) => return (SessionEnd::Lost(reason), proc),
                ProcEvent::Stalled(reason) => {
                    feed.link_down();
                    let _ = feed
                        .status(SourceStatus::Stalled {
                            reason: reason.clone(),
                        })
                        .await;
                    return (SessionEnd::Lost(reason), proc);
                }
            };
            if !ok {
                return (SessionEnd::Closed, proc);
            }
        }
    }

    /// Complete lines of stdout: log lines handed on, in one chunk, then
    /// the position after them.
    async fn stdout(&mut self, data: &[u8], s: &mut Session, feed: &mut Feed<F::Position>) -> bool {
        s.last_out = Some(Instant::now());
        s.partial.extend_from_slice(data);
        let Some(last_nl) = memchr::memrchr(b'\n', &s.partial) else {
            if s.partial.len() > MAX_LINE {
                s.partial.truncate(MAX_LINE);
                s.partial.push(b'\n');
                return feed
                    .note(format!(
                        "a line of {} longer than {} MiB was cut",
                        self.follow.what(),
                        MAX_LINE >> 20
                    ))
                    .await
                    && Box::pin(self.stdout(b"", s, feed)).await;
            }
            return true;
        };
        let rest = s.partial.split_off(last_nl + 1);
        let lines = std::mem::replace(&mut s.partial, rest);
        let mut position = feed.position().cloned();
        let mut out = Vec::with_capacity(lines.len());
        let mut notes = Vec::new();
        for line in lines.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match self.follow.line(line, &mut position) {
                Line::Log => {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
                Line::Seen => {}
                Line::Diagnostic => notes.push(String::from_utf8_lossy(line).into_owned()),
            }
        }
        for n in notes {
            if !self.complaint(n, s, feed).await {
                return false;
            }
        }
        if out.is_empty() {
            feed.set_position(position);
            return true;
        }
        s.bytes += out.len() as u64;
        let sent = feed.bytes(out).await;
        feed.set_position(position);
        sent
    }

    async fn stderr(&mut self, data: &[u8], s: &mut Session, feed: &mut Feed<F::Position>) -> bool {
        s.errs.extend_from_slice(data);
        while let Some(nl) = memchr::memchr(b'\n', &s.errs) {
            let line: Vec<u8> = s.errs.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..nl]).trim_end().to_string();
            if !text.is_empty() && !self.complaint(text, s, feed).await {
                return false;
            }
        }
        if s.errs.len() > 4096 {
            s.errs.clear();
        }
        true
    }

    /// What the command said besides the log: remembered to explain its
    /// end, and a note while live (a few).
    async fn complaint(&self, text: String, s: &mut Session, feed: &mut Feed<F::Position>) -> bool {
        tracing::debug!(%text, "command complained");
        if s.stderr_tail.len() == 3 {
            s.stderr_tail.pop_front();
        }
        let text: String = text.chars().take(300).collect();
        s.stderr_tail.push_back(text.clone());
        if s.live && s.notes_left > 0 {
            s.notes_left -= 1;
            return feed.note(format!("{}: {text}", self.follow.what())).await;
        }
        true
    }

    fn ended(&self, s: &Session, status: &str) -> String {
        let what = format!(
            "the command following {} ended ({status})",
            self.follow.what()
        );
        if s.stderr_tail.is_empty() {
            what
        } else {
            let tail: Vec<&str> = s.stderr_tail.iter().map(String::as_str).collect();
            format!("{what}: {}", tail.join(" | "))
        }
    }
}

impl Running {
    async fn next(&mut self) -> ProcEvent {
        match self {
            Running::Local(p) => p.next().await,
            Running::Remote(p) => p.next().await,
        }
    }
}

/// A command on this machine.
struct LocalProc {
    child: tokio::process::Child,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    out_buf: Vec<u8>,
    err_buf: Vec<u8>,
}

impl LocalProc {
    fn spawn(argv: &[String], merge: bool) -> Result<LocalProc, SessionEnd<CommandError>> {
        let Some(program) = argv.first() else {
            return Err(SessionEnd::Fatal(CommandError::Local(
                "no command to run".into(),
            )));
        };
        let mut cmd = if merge {
            // One stream, in the order the command wrote it.
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg("exec \"$@\" 2>&1").arg("callcap-run");
            c.args(argv);
            c
        } else {
            let mut c = tokio::process::Command::new(program);
            c.args(&argv[1..]);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if merge && which(program).is_none() {
            return Err(SessionEnd::Fatal(CommandError::Local(format!(
                "there is no '{program}' command on this machine"
            ))));
        }
        match cmd.spawn() {
            Ok(mut child) => Ok(LocalProc {
                stdout: child.stdout.take(),
                stderr: child.stderr.take(),
                child,
                out_buf: vec![0; 64 * 1024],
                err_buf: vec![0; 4096],
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SessionEnd::Fatal(
                CommandError::Local(format!("there is no '{program}' command on this machine")),
            )),
            Err(e) => Err(SessionEnd::Lost(format!("cannot run '{program}': {e}"))),
        }
    }

    async fn next(&mut self) -> ProcEvent {
        loop {
            if self.stdout.is_none() && self.stderr.is_none() {
                return ProcEvent::Exited(match self.child.wait().await {
                    Ok(st) => match st.code() {
                        Some(c) => format!("exit {c}"),
                        None => "killed by a signal".into(),
                    },
                    Err(e) => e.to_string(),
                });
            }
            tokio::select! {
                r = read_some(&mut self.stdout, &mut self.out_buf) => match r {
                    Some(n) => return ProcEvent::Stdout(self.out_buf[..n].to_vec()),
                    None => self.stdout = None,
                },
                r = read_some(&mut self.stderr, &mut self.err_buf) => match r {
                    Some(n) => return ProcEvent::Stderr(self.err_buf[..n].to_vec()),
                    None => self.stderr = None,
                },
            }
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await;
    }
}

/// Reads what is there (`None` at the end, and forever after for a
/// stream that is gone).
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match r {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

/// The program's path on `PATH` (or as given, when it holds a `/`).
fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The end of a session in the source's error type.
impl<E> SessionEnd<E> {
    pub(crate) fn map_err<G>(self, f: impl FnOnce(E) -> G) -> SessionEnd<G> {
        match self {
            SessionEnd::Shutdown => SessionEnd::Shutdown,
            SessionEnd::Closed => SessionEnd::Closed,
            SessionEnd::Reopen => SessionEnd::Reopen,
            SessionEnd::Lost(r) => SessionEnd::Lost(r),
            SessionEnd::Fatal(e) => SessionEnd::Fatal(f(e)),
        }
    }
}
