//! The follower, the SSH log source: connect, run the remote follow
//! script, forward bytes, detect rotation/truncation/stalls and measure the
//! clock. The log-source supervisor reconnects with backoff and hands back
//! the exact byte offset to resume at.

use super::auth::PassphrasePrompt;
use super::clock_offset::OffsetProbe;
use super::link::Link;
use super::remote::{FilePos, Header, Piece};
use super::{RunOptions, SshError};
use crate::config::{ServerLogConfig, SshConfig};
use crate::sources::log_source::{Feed, LogSource, SessionEnd, is_shutdown, supervise};
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
    link: Link,
    log: ServerLogConfig,
    path: String,
    opts: RunOptions,
    /// Bytes of a rotated file read since the link went down (for the gap).
    rest_bytes: u64,
}

pub(crate) async fn run(
    ssh: SshConfig,
    log: ServerLogConfig,
    name: &str,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    prompt: Option<PassphrasePrompt>,
    opts: RunOptions,
) -> Result<(), SshError> {
    let path = log.path.clone().unwrap_or_default();
    let prepared = match path.to_str() {
        Some(p) if !p.trim().is_empty() => {
            Link::new(&ssh, prompt, opts.fail_fast).map(|l| (l, p.to_string()))
        }
        _ => Err(SshError::Config(format!(
            "key 'server-log.path': '{}' is not a usable remote path",
            path.display()
        ))),
    };
    let (link, path) = match prepared {
        Ok(v) => v,
        Err(e) => {
            let _ = tx
                .send(Input::status_now(
                    name,
                    SourceStatus::Error {
                        reason: e.to_string(),
                    },
                ))
                .await;
            return Err(e);
        }
    };
    let follower = Follower {
        link,
        log,
        path,
        opts,
        rest_bytes: 0,
    };
    supervise(follower, name, tx, shutdown).await
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
        let conn = match self.link.take(feed, shutdown).await {
            Ok(conn) => conn,
            Err(end) => return end,
        };
        let end = self.channel(&conn, feed, shutdown).await;
        let end = match end {
            ChanEnd::Shutdown => SessionEnd::Shutdown,
            ChanEnd::Closed => SessionEnd::Closed,
            ChanEnd::Restart => SessionEnd::Reopen,
            ChanEnd::Stalled(r) => SessionEnd::Lost(r),
            ChanEnd::Failed(reason) if conn.is_closed() => {
                tracing::debug!(%reason, "channel ended with the connection");
                SessionEnd::Lost(self.link.lost_reason())
            }
            // The connection is still good: only the follow command is
            // started again.
            ChanEnd::Failed(reason) => {
                self.link.keep(conn);
                return SessionEnd::Lost(reason);
            }
        };
        if matches!(end, SessionEnd::Reopen) {
            self.link.keep(conn);
        } else {
            conn.disconnect().await;
        }
        end
    }

    async fn close(&mut self) {
        self.link.close().await;
    }

    fn describe(position: &FilePos) -> serde_json::Value {
        serde_json::json!({"file": position.id, "offset": position.offset})
    }
}

impl Follower {
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
