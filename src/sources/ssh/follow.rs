//! The follower: connect, run the remote follow script, forward bytes,
//! detect rotation/truncation/stalls, measure the clock, reconnect with
//! backoff and resume at the exact byte offset.

use super::auth::{Authenticator, PassphrasePrompt};
use super::clock::Clock;
use super::remote::{FilePos, Header, Piece};
use super::session::{self, ConnectOptions, Connection};
use super::target::{self, Target};
use super::{RunOptions, SOURCE, SshError};
use crate::config::{ServerLogConfig, SshConfig};
use crate::sources::{Input, SourceStatus};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod channel;
use channel::ChanEnd;

/// Retry delays: first within a second, never more than 5 s apart.
pub(crate) fn backoff(attempt: u32) -> Duration {
    const STEPS_MS: [u64; 5] = [500, 1000, 2000, 4000, 5000];
    let i = (attempt.max(1) - 1) as usize;
    Duration::from_millis(STEPS_MS[i.min(STEPS_MS.len() - 1)])
}

fn is_shutdown(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow() || rx.has_changed().is_err()
}

/// Resolves when shutdown is requested or its sender is gone.
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

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

/// Sends `Input`s; `false` once nobody listens any more.
struct Out {
    tx: mpsc::Sender<Input>,
}

impl Out {
    async fn send(&self, i: Input) -> bool {
        self.tx.send(i).await.is_ok()
    }
    async fn status(&self, status: SourceStatus) -> bool {
        self.send(Input::status_now(SOURCE, status)).await
    }
    async fn note(&self, text: String) -> bool {
        self.send(Input::note_now(SOURCE, text)).await
    }
}

enum End {
    Shutdown,
    /// The receiver of our inputs is gone.
    Closed,
    Lost(String),
    Stalled(String),
}

struct Follower {
    out: Out,
    target: Target,
    log: ServerLogConfig,
    path: String,
    opts: RunOptions,
    pos: Option<FilePos>,
    live: bool,
    went_live: bool,
    /// When the link was last known good, while it is down.
    down_since: Option<(Instant, DateTime<Utc>)>,
    last_rx: (Instant, DateTime<Utc>),
    rest_bytes: u64,
}

pub(crate) async fn run(
    ssh: SshConfig,
    log: ServerLogConfig,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
    opts: RunOptions,
) -> Result<(), SshError> {
    let out = Out { tx: tx.clone() };
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
            out.status(SourceStatus::Error {
                reason: e.to_string(),
            })
            .await;
            return Err(e);
        }
    };
    let mut auth = Authenticator::new(target.agent.clone(), target.passphrase_env.clone(), prompt);
    let now = (Instant::now(), Utc::now());
    let mut f = Follower {
        out,
        target,
        log,
        path,
        opts,
        pos: None,
        live: false,
        went_live: false,
        down_since: None,
        last_rx: now,
        rest_bytes: 0,
    };
    let mut attempt: u32 = 0;
    let mut ever_connected = false;
    loop {
        if is_shutdown(&shutdown) {
            break;
        }
        let connected = tokio::select! {
            r = session::connect(&f.target, &mut auth, ConnectOptions {
                status: Some((&tx, SOURCE)),
                russh_keepalive: None,
            }) => r,
            _ = wait_shutdown(&mut shutdown) => break,
        };
        let reason = match connected {
            Ok(mut conn) => {
                ever_connected = true;
                for n in std::mem::take(&mut conn.notes) {
                    f.out.note(n).await;
                }
                tracing::debug!(target = %f.target.dest.label(), "connected");
                let end = f.follow(&conn, &mut shutdown).await;
                conn.disconnect().await;
                if std::mem::take(&mut f.went_live) {
                    attempt = 0;
                }
                match end {
                    End::Shutdown => break,
                    End::Closed => return Ok(()),
                    End::Lost(r) | End::Stalled(r) => r,
                }
            }
            Err(e) => {
                if e.is_fatal() || (f.opts.fail_fast && !ever_connected) {
                    f.out
                        .status(SourceStatus::Error {
                            reason: e.to_string(),
                        })
                        .await;
                    return Err(e);
                }
                e.to_string()
            }
        };
        f.link_down();
        attempt = attempt.saturating_add(1);
        let delay = backoff(attempt);
        tracing::debug!(attempt, %reason, "reconnecting");
        if !f
            .out
            .status(SourceStatus::Reconnecting {
                attempt,
                next_try_ms: delay.as_millis() as u64,
                reason,
            })
            .await
        {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wait_shutdown(&mut shutdown) => break,
        }
    }
    f.out.status(SourceStatus::Stopped).await;
    Ok(())
}

impl Follower {
    fn link_down(&mut self) {
        if self.live {
            self.live = false;
            if self.down_since.is_none() {
                self.down_since = Some(self.last_rx);
            }
        }
    }

    async fn follow(&mut self, conn: &Connection, shutdown: &mut watch::Receiver<bool>) -> End {
        let mut failures: u32 = 0;
        loop {
            let before = self.went_live;
            self.went_live = false;
            let end = self.channel(conn, shutdown).await;
            let live_here = self.went_live;
            self.went_live |= before;
            match end {
                ChanEnd::Shutdown => return End::Shutdown,
                ChanEnd::Closed => return End::Closed,
                ChanEnd::Restart => {}
                ChanEnd::Stalled(r) => return End::Stalled(r),
                ChanEnd::Failed(reason) => {
                    if conn.is_closed() {
                        tracing::debug!(%reason, "channel ended with the connection");
                        return End::Lost(format!(
                            "the SSH connection to {} was lost",
                            self.target.dest.label()
                        ));
                    }
                    self.link_down();
                    if live_here {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let delay = backoff(failures);
                    if !self
                        .out
                        .status(SourceStatus::Reconnecting {
                            attempt: failures,
                            next_try_ms: delay.as_millis() as u64,
                            reason,
                        })
                        .await
                    {
                        return End::Closed;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = wait_shutdown(shutdown) => return End::Shutdown,
                    }
                }
            }
        }
    }

    /// Handles one parsed stdout piece; `false` when the receiver is gone.
    async fn piece(&mut self, piece: Piece<'_>, clock: &mut Clock) -> bool {
        match piece {
            Piece::Preamble(line) => {
                self.out
                    .note(format!("remote shell printed before the log: {line}"))
                    .await
            }
            Piece::Data(bytes) => {
                if let Some(p) = self.pos.as_mut() {
                    p.offset += bytes.len() as u64;
                }
                self.out
                    .send(Input::ServerChunk {
                        source: SOURCE.into(),
                        bytes: bytes.to_vec(),
                        at: Utc::now(),
                    })
                    .await
            }
            Piece::Header(Header::Rest { id, offset, len }) => {
                self.pos = Some(FilePos { id, offset });
                self.rest_bytes += len;
                self.out
                    .note(format!(
                        "the log was rotated: reading the last {len} bytes of the previous file"
                    ))
                    .await
            }
            Piece::Header(Header::Lost { offset, .. }) => {
                self.pos = None;
                self.out
                    .note(format!(
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
                    let had = self.pos.as_ref().map(|p| p.offset).unwrap_or(0);
                    ok &= self
                        .out
                        .note(format!(
                            "the remote log shrank to {size} bytes below the read offset {had} (truncated): reading it again from the start"
                        ))
                        .await;
                }
                if flag == "rotated" {
                    ok &= self
                        .out
                        .note(format!(
                            "following the new log file ({} bytes so far)",
                            size
                        ))
                        .await;
                }
                let caught_up = std::mem::take(&mut self.rest_bytes) + size.saturating_sub(start);
                self.pos = Some(FilePos { id, offset: start });
                if let Some((since, _)) = self.down_since.take() {
                    ok &= self
                        .out
                        .send(Input::Gap {
                            source: SOURCE.into(),
                            down_ms: since.elapsed().as_millis() as u64,
                            caught_up_bytes: caught_up,
                            at: Utc::now(),
                        })
                        .await;
                }
                if !self.live {
                    self.live = true;
                    ok &= self.out.status(SourceStatus::Live).await;
                }
                self.went_live = true;
                clock.due = Some(Instant::now());
                ok
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_under_a_second_and_caps_at_five() {
        assert!(backoff(1) < Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(100), Duration::from_secs(5));
        assert_eq!(backoff(0), backoff(1));
    }
}
