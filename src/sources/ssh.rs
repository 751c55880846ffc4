//! The homeserver log over SSH (russh, no `ssh` binary), and TCP tunnels for
//! the database poller.
//!
//! # Following the log
//! ```ignore
//! let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
//! let (prompt, questions) = PassphrasePrompt::channel();   // UI answers `questions`
//! let task = tokio::spawn(run_server_log(ssh, server_log, tx.clone(), shutdown_rx, Some(prompt)));
//! // ... on exit:
//! shutdown_tx.send(true)?;
//! task.await??;   // Ok(()) after a clean stop; remote processes are gone by then
//! ```
//! The task sends, with source `"server-log"`:
//! - `Status`: `Connecting` → `Authenticating` → `Live` (only once the remote
//!   follow command has opened the file and `tail` is running) →
//!   `Stalled`/`Reconnecting{attempt, next_try_ms, reason}` → ... →
//!   `Stopped`; `Error{reason}` when it gives up (then it also returns `Err`).
//! - `ServerChunk`: raw bytes of the log in file order, never duplicated or
//!   skipped across reconnects and rotations (the follower counts bytes and
//!   resumes at the exact offset of the same inode).
//! - `Gap{down_ms, caught_up_bytes}` when it is live again after a drop.
//! - `ClockOffset{offset_ms, bound_ms}` (remote minus local) at connect and
//!   every [`RunOptions::clock_interval`].
//! - `Note`s: recorded host keys, rotations, remote complaints.
//!
//! It gives up (returns `Err`) only on what retrying cannot fix: a refused
//! host key, failed authentication, a bad passphrase or config; with
//! [`RunOptions::fail_fast`] (for `--headless`) also when the very first
//! connection fails. Everything else (refused, DNS, timeouts, drops, a missing
//! remote file, a failing `exec-prefix`) is retried with backoff: first retry
//! after 0.5 s, then 1, 2, 4 and at most 5 s apart.
//!
//! The remote command (see `remote.rs`) is a POSIX `sh` script that needs
//! `tail stat find head date` on the server (inside the container with
//! `exec-prefix`, which must pass stdin through: `pct exec 151 --`,
//! `docker exec -i synapse`). `[server-log] path` is used verbatim (absolute).
//!
//! # Tunnel for the database poller
//! ```ignore
//! let fwd = open_local_forward(&ssh, "10.10.10.44", 5432, ForwardFrom::SshHost, None).await?;
//! db::run(..., Some(("127.0.0.1".into(), fwd.local_addr().port())));
//! // keep `fwd` alive while polling; `fwd.close().await` (or drop) ends it
//! ```

mod auth;
mod clock_offset;
mod command;
mod exec;
mod follow;
mod host_key;
mod known_hosts;
mod link;
mod remote;
mod session;
mod target;
mod tunnel;

pub use auth::{Passphrase, PassphrasePrompt, PassphraseRequest};
pub use command::{RemoteCommands, RemoteProc};
pub use exec::{Credentials, HostKeys, Output, RemoteShell};
pub use remote::shell_quote;
pub use tunnel::{ForwardFrom, LocalForward, open_local_forward};

use crate::config::{ServerLogConfig, SshConfig};
use crate::sources::Input;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The source name used in every `Input` of the only log.
pub const SOURCE: &str = "server-log";

/// Why an SSH operation failed, in one line fit for the status bar.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("config: {0}")]
    Config(String),
    #[error("cannot resolve '{host}': {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{0} timed out")]
    Timeout(String),
    #[error("{0}")]
    HostKey(String),
    #[error("authentication failed for {target} (tried: {tried})")]
    Auth { target: String, tried: String },
    #[error("{0}")]
    Passphrase(String),
    #[error("jump host {via} cannot reach {to}: {reason}")]
    Jump {
        via: String,
        to: String,
        reason: String,
    },
    #[error("SSH: {0}")]
    Protocol(String),
    #[error("{0}")]
    Remote(String),
    #[error("tunnel: {0}")]
    Tunnel(String),
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        SshError::Protocol(e.to_string())
    }
}

impl SshError {
    /// Retrying cannot help: the operator has to act.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SshError::Config(_)
                | SshError::HostKey(_)
                | SshError::Auth { .. }
                | SshError::Passphrase(_)
        )
    }

    /// Names the server in protocol errors ("SSH: 10.0.0.1:22: Connection closed ...").
    fn at(self, ep: &target::Endpoint) -> Self {
        match self {
            SshError::Protocol(m) => SshError::Protocol(format!("{}:{}: {m}", ep.host, ep.port)),
            other => other,
        }
    }
}

/// Tuning of [`run_server_log_with`]; the defaults suit a live call.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Give up (Error + `Err`) if the first connection cannot be made
    /// (`--headless` exits non-zero then) instead of retrying.
    pub fail_fast: bool,
    /// How often the remote watcher reports the file identity (rotation
    /// detection, liveness of the remote command).
    pub watch_interval: Duration,
    /// `tail -s`: how often the remote `tail` looks for new bytes.
    pub tail_poll: Duration,
    /// How often to measure the clock offset again.
    pub clock_interval: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            fail_fast: false,
            watch_interval: Duration::from_secs(1),
            tail_poll: Duration::from_millis(50),
            clock_interval: Duration::from_secs(300),
        }
    }
}

/// Follows `[server-log] path` on the `[ssh]` host until `shutdown` turns
/// true (or its sender is dropped). See the module docs for what it sends.
///
/// `prompt` lets the console ask for a key passphrase when `passphrase-env`
/// does not provide it; `None` skips encrypted keys that have no passphrase.
pub async fn run_server_log(
    ssh: SshConfig,
    log: ServerLogConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
) -> Result<(), SshError> {
    run_server_log_with(ssh, log, tx, shutdown, prompt, RunOptions::default()).await
}

/// [`run_server_log`] with explicit [`RunOptions`].
pub async fn run_server_log_with(
    ssh: SshConfig,
    log: ServerLogConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
    opts: RunOptions,
) -> Result<(), SshError> {
    follow::run(ssh, log, SOURCE, tx, shutdown, prompt, opts).await
}

/// [`run_server_log_with`] under another source name (one of several logs).
pub async fn run_named_log(
    ssh: SshConfig,
    log: ServerLogConfig,
    name: &str,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
    opts: RunOptions,
) -> Result<(), SshError> {
    follow::run(ssh, log, name, tx, shutdown, prompt, opts).await
}
