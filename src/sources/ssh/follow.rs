//! The follower, the SSH log source: connect, run the remote follow
//! script, forward bytes, detect rotation/truncation/stalls and measure the
//! clock. The log-source supervisor reconnects with backoff and hands back
//! the exact byte offset to resume at.

use super::auth::{Authenticator, PassphrasePrompt};
use super::clock_offset::OffsetProbe;
use super::remote::{FilePos, Header, Piece};
use super::session::{self, ConnectOptions, Connection};
use super::target::{self, Target};
use super::{RunOptions, SOURCE, SshError};
use crate::config::{ServerLogConfig, SshConfig};
use crate::sources::log_source::{
    Feed, LogSource, SessionEnd, is_shutdown, supervise, wait_shutdown,
};
use crate::sources::{Input, SourceStatus};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

mod channel;
use channel::ChanEnd;

fn nonce() -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = sha2::Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The log file on the SSH host, as a [`LogSource`]: a session is one run
/// of the remote follow script on a connection that is kept across
/// sessions while it lasts. Its position is the file's `dev:ino` and the
/// byte offset after what was sent.
struct Follower {
    target: Target,
    log: ServerLogConfig,
    path: String,
    opts: RunOptions,
    auth: Authenticator,
    conn: Option<Connection>,
    ever_connected: bool,
    /// Bytes of a rotated file read since the link went down (for the gap).
    rest_bytes: u64,
}

pub(crate) async fn run(
    ssh: SshConfig,
    log: ServerLogConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
    opts: RunOptions,
) -> Result<(), SshError> {
    let prepared = target::resolve(&ssh).and_then(|t| match log.path.to_str() {
        Some(p) if !p.trim().is_empty() => Ok((t, p.to_string())),
        _ => Err(SshError::Config(format!(
            "key 'server-log.path': '{}' is not a usable remote path",
            log.path.display()
        ))),
    });
    let (target, path) = match prepared {
        Ok(v) => v,
        Err(e) => {
            let _ = tx
                .send(Input::status_now(
                    SOURCE,
                    SourceStatus::Error {
                        reason: e.to_string(),
                    },
                ))
                .await;
            return Err(e);
        }
    };
    let auth = Authenticator::new(target.agent.clone(), target.passphrase_env.clone(), prompt);
    let follower = Follower {
        target,
        log,
        path,
        opts,
        auth,
        conn: None,
        ever_connected: false,
        rest_bytes: 0,
    };
    supervise(follower, SOURCE, tx, shutdown).await
}

impl LogSource for Follower {
    type Position = FilePos;
    type Error = SshError;

    async fn session(
        &mut self,
        feed: &mut Feed<FilePos>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> SessionEnd<SshError> {
        if is_shutdown(shutdown) {
            return SessionEnd::Shutdown;
        }
        let conn = match self.conn.take() {
            Some(conn) if !conn.is_closed() => conn,
            old => {
                if let Some(old) = old {
                    old.disconnect().await;
                }
                match self.connect(feed, shutdown).await {
                    Ok(conn) => conn,
                    Err(end) => return end,
                }
            }
        };
        let end = self.channel(&conn, feed, shutdown).await;
        let end = match end {
            ChanEnd::Shutdown => SessionEnd::Shutdown,
            ChanEnd::Closed => SessionEnd::Closed,
            ChanEnd::Restart => SessionEnd::Reopen,
            ChanEnd::Stalled(r) => SessionEnd::Lost(r),
            ChanEnd::Failed(reason) if conn.is_closed() => {
                tracing::debug!(%reason, "channel ended with the connection");
                SessionEnd::Lost(format!(
                    "the SSH connection to {} was lost",
                    self.target.dest.label()
                ))
            }
            // The connection is still good: only the follow command is
            // started again.
            ChanEnd::Failed(reason) => {
                self.conn = Some(conn);
                return SessionEnd::Lost(reason);
            }
        };
        if matches!(end, SessionEnd::Reopen) {
            self.conn = Some(conn);
        } else {
            conn.disconnect().await;
        }
        end
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.disconnect().await;
        }
    }
}

impl Follower {
    /// Connects and authenticates; a failure ends the session (`Fatal`
    /// when retrying cannot help).
    async fn connect(
        &mut self,
        feed: &mut Feed<FilePos>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Connection, SessionEnd<SshError>> {
        let connected = tokio::select! {
            r = session::connect(&self.target, &mut self.auth, ConnectOptions {
                status: Some((feed.sender(), feed.name())),
                russh_keepalive: None,
            }) => r,
            _ = wait_shutdown(shutdown) => return Err(SessionEnd::Shutdown),
        };
        match connected {
            Ok(mut conn) => {
                self.ever_connected = true;
                for n in std::mem::take(&mut conn.notes) {
                    feed.note(n).await;
                }
                tracing::debug!(target = %self.target.dest.label(), "connected");
                Ok(conn)
            }
            Err(e) if e.is_fatal() || (self.opts.fail_fast && !self.ever_connected) => {
                Err(SessionEnd::Fatal(e))
            }
            Err(e) => Err(SessionEnd::Lost(e.to_string())),
        }
    }

    /// Handles one parsed stdout piece; `false` when the receiver is gone.
    async fn piece(
        &mut self,
        piece: Piece<'_>,
        feed: &mut Feed<FilePos>,
        clock: &mut OffsetProbe,
    ) -> bool {
        match piece {
            Piece::Preamble(line) => {
                feed.note(format!("remote shell printed before the log: {line}"))
                    .await
            }
            Piece::Data(bytes) => {
                if let Some(p) = feed.position_mut() {
                    p.offset += bytes.len() as u64;
                }
                feed.bytes(bytes.to_vec()).await
            }
            Piece::Header(Header::Rest { id, offset, len }) => {
                feed.set_position(Some(FilePos { id, offset }));
                self.rest_bytes += len;
                feed.note(format!(
                    "the log was rotated: reading the last {len} bytes of the previous file"
                ))
                .await
            }
            Piece::Header(Header::Lost { offset, .. }) => {
                feed.set_position(None);
                feed.note(format!(
                    "the log was rotated and the previous file is gone from its directory (deleted or compressed?): what was written to it after byte {offset} is lost"
                ))
                .await
            }
            Piece::Header(Header::File {
                id,
                start,
                size,
                flag,
            }) => {
                let mut ok = true;
                if flag == "truncated" {
                    let had = feed.position().map(|p| p.offset).unwrap_or(0);
                    ok &= feed
                        .note(format!(
                            "the remote log shrank to {size} bytes below the read offset {had} (truncated): reading it again from the start"
                        ))
                        .await;
                }
                if flag == "rotated" {
                    ok &= feed
                        .note(format!(
                            "following the new log file ({} bytes so far)",
                            size
                        ))
                        .await;
                }
                let caught_up = std::mem::take(&mut self.rest_bytes) + size.saturating_sub(start);
                feed.set_position(Some(FilePos { id, offset: start }));
                ok &= feed.live(caught_up).await;
                clock.due = Some(Instant::now());
                ok
            }
        }
    }
}
