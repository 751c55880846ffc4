//! The one notion of a log source, and the one supervisor that runs every
//! kind of it.
//!
//! A [`LogSource`] reads one log. Each [`LogSource::session`] opens it (a
//! local file; an SSH channel running the remote follow script; later a
//! `journalctl -f` or a `docker logs -f`), starting after the position the
//! [`Feed`] holds, and reads until something ends it. Everything it reads
//! goes into the `Feed` (bytes now, records later) together with the
//! position after it; so do its notes and its own states (connecting,
//! live, stalled).
//!
//! [`supervise`] owns everything between sessions: it hands the last
//! position back to the next session, waits with [`backoff`] after a lost
//! one and says so (`Reconnecting`), gives up on what retrying cannot fix
//! (`Error`), reports `Stopped` at the end, and turns the time a link was
//! down into a `Gap` event once the source is live again.
//!
//! | kind | [`LogSource::Position`] | resumes with |
//! |---|---|---|
//! | local file (`file.rs`) | file identity + byte offset | a seek, on the same inode |
//! | file over SSH (`ssh/`) | `dev:ino` + byte offset | `tail -c +N` of the same inode, the rest of a rotated one |
//!
//! A journald source's position is its last `__CURSOR` (`--after-cursor`);
//! a Docker source's is the `--timestamps` time of its last line and how
//! many lines it read with that time (`--since` it, skipping those). Such
//! sources yield records rather than byte chunks and implement the same
//! trait; several sources run at once, each under its own supervisor and
//! name.

use super::{Input, SourceStatus};
use chrono::Utc;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// One log, read session by session.
pub trait LogSource: Send {
    /// Where the source is in its log: enough to resume without loss or
    /// duplicates.
    type Position: Clone + Debug + Send + Sync + 'static;
    /// Why the source gives up: retrying cannot help.
    type Error: std::fmt::Display + Send;

    /// Reads the log after `feed.position()` (`None`: where the source
    /// starts, e.g. the end of the file) until something ends the session.
    fn session<'a>(
        &'a mut self,
        feed: &'a mut Feed<Self::Position>,
        shutdown: &'a mut watch::Receiver<bool>,
    ) -> impl Future<Output = SessionEnd<Self::Error>> + Send + 'a;

    /// Releases what the source keeps between sessions (a connection), when
    /// the supervisor is done with it.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A position as the manifest lists it (where the source would resume).
    fn describe(_position: &Self::Position) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd<E> {
    /// Shutdown was asked for, and what was there has been read.
    Shutdown,
    /// Nobody listens to the source any more.
    Closed,
    /// Open the log again at once, from the same position (the file was
    /// rotated or truncated): nothing was lost.
    Reopen,
    /// The link or the reader was lost: try again after a backoff.
    Lost(String),
    /// Retrying cannot help (a refused host key, a bad config).
    Fatal(E),
}

/// Retry delays: first within a second, never more than 5 s apart.
pub(crate) fn backoff(attempt: u32) -> Duration {
    const STEPS_MS: [u64; 5] = [500, 1000, 2000, 4000, 5000];
    let i = (attempt.max(1) - 1) as usize;
    Duration::from_millis(STEPS_MS[i.min(STEPS_MS.len() - 1)])
}

/// Whether shutdown is asked for (or its sender is gone).
pub(crate) fn is_shutdown(rx: &watch::Receiver<bool>) -> bool {
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

/// Where a session puts what it reads and what happens to it. Every send
/// returns `false` once nobody listens any more.
pub struct Feed<P> {
    name: String,
    tx: mpsc::Sender<Input>,
    position: Option<P>,
    /// The source is following its log.
    live: bool,
    /// It went live during the current session.
    went_live: bool,
    /// When the link was last known good, while it is down.
    down_since: Option<Instant>,
    /// When something last arrived from the source.
    last_rx: Instant,
}

impl<P: Clone> Feed<P> {
    pub fn new(name: &str, tx: mpsc::Sender<Input>) -> Feed<P> {
        Feed {
            name: name.to_string(),
            tx,
            position: None,
            live: false,
            went_live: false,
            down_since: None,
            last_rx: Instant::now(),
        }
    }

    /// The source's name on every input (`server-log`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the inputs go, for a part that reports by itself (the SSH
    /// connection's `Connecting` and `Authenticating`).
    pub fn sender(&self) -> &mpsc::Sender<Input> {
        &self.tx
    }

    /// Where the source is: after everything it has sent.
    pub fn position(&self) -> Option<&P> {
        self.position.as_ref()
    }

    pub fn position_mut(&mut self) -> Option<&mut P> {
        self.position.as_mut()
    }

    /// `None`: the next session starts where the source starts.
    pub fn set_position(&mut self, position: Option<P>) {
        self.position = position;
    }

    async fn send(&self, input: Input) -> bool {
        self.tx.send(input).await.is_ok()
    }

    /// Log bytes, in log order (not line aligned).
    pub async fn bytes(&self, bytes: Vec<u8>) -> bool {
        self.send(Input::ServerChunk {
            source: self.name.clone(),
            bytes,
            at: Utc::now(),
        })
        .await
    }

    pub async fn status(&self, status: SourceStatus) -> bool {
        self.send(Input::status_now(&self.name, status)).await
    }

    pub async fn note(&self, text: String) -> bool {
        self.send(Input::note_now(&self.name, text)).await
    }

    /// The source's clock minus ours, with the round-trip bound.
    pub async fn clock_offset(&self, offset_ms: i64, bound_ms: u64) -> bool {
        self.send(Input::ClockOffset {
            source: self.name.clone(),
            offset_ms,
            bound_ms,
            at: Utc::now(),
        })
        .await
    }

    /// Something arrived from the source: the link was good until now.
    pub fn received(&mut self) {
        self.last_rx = Instant::now();
    }

    /// The source follows its log (again), having fetched `caught_up_bytes`
    /// to get there: a gap since the link went down, and `Live` if it was
    /// not.
    pub async fn live(&mut self, caught_up_bytes: u64) -> bool {
        let mut ok = true;
        if let Some(since) = self.down_since.take() {
            ok &= self
                .send(Input::Gap {
                    source: self.name.clone(),
                    down_ms: since.elapsed().as_millis() as u64,
                    caught_up_bytes,
                    at: Utc::now(),
                })
                .await;
        }
        if !self.live {
            self.live = true;
            ok &= self.status(SourceStatus::Live).await;
        }
        self.went_live = true;
        ok
    }

    /// The link is down: the gap runs from when it was last known good.
    pub fn link_down(&mut self) {
        if self.live {
            self.live = false;
            if self.down_since.is_none() {
                self.down_since = Some(self.last_rx);
            }
        }
    }

    fn take_went_live(&mut self) -> bool {
        std::mem::take(&mut self.went_live)
    }
}

/// Runs `source` under the name `name` until `shutdown` turns true (or its
/// sender is dropped), or the source fails for good (then `Err`, after an
/// `Error` status). A lost session is retried after [`backoff`], counting
/// attempts from the last session that went live.
pub async fn supervise<S: LogSource>(
    mut source: S,
    name: &str,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), S::Error> {
    let mut feed = Feed::new(name, tx);
    let mut attempt: u32 = 0;
    let result = loop {
        // Each session looks at `shutdown` itself: a file source still
        // reads what was written before it.
        let end = source.session(&mut feed, &mut shutdown).await;
        if feed.take_went_live() {
            attempt = 0;
        }
        let reason = match end {
            SessionEnd::Shutdown => break Ok(true),
            SessionEnd::Closed => break Ok(false),
            SessionEnd::Fatal(e) => break Err(e),
            SessionEnd::Reopen => continue,
            SessionEnd::Lost(reason) => reason,
        };
        feed.link_down();
        attempt = attempt.saturating_add(1);
        let delay = backoff(attempt);
        tracing::debug!(source = name, attempt, %reason, "reconnecting");
        let reconnecting = SourceStatus::Reconnecting {
            attempt,
            next_try_ms: delay.as_millis() as u64,
            reason,
        };
        if !feed.status(reconnecting).await {
            break Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wait_shutdown(&mut shutdown) => break Ok(true),
        }
    };
    source.close().await;
    if let Some(p) = feed.position() {
        let _ = feed
            .tx
            .send(Input::Position {
                source: name.to_string(),
                position: S::describe(p),
                at: Utc::now(),
            })
            .await;
    }
    match result {
        Ok(stopped) => {
            if stopped {
                feed.status(SourceStatus::Stopped).await;
            }
            Ok(())
        }
        Err(e) => {
            let reason = e.to_string();
            feed.status(SourceStatus::Error { reason }).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// A session of [`Scripted`]: go live having caught up this many bytes
    /// (or not), send these bytes, end so.
    type Act = (Option<u64>, &'static str, SessionEnd<String>);

    /// A source that plays a script; its position is a byte offset.
    struct Scripted {
        script: VecDeque<Act>,
        /// The position each session was given, and whether it was closed.
        seen: Arc<Mutex<(Vec<Option<u64>>, bool)>>,
    }

    impl LogSource for Scripted {
        type Position = u64;
        type Error = String;

        async fn session(
            &mut self,
            feed: &mut Feed<u64>,
            _shutdown: &mut watch::Receiver<bool>,
        ) -> SessionEnd<String> {
            self.seen.lock().unwrap().0.push(feed.position().copied());
            let Some((live, text, end)) = self.script.pop_front() else {
                return SessionEnd::Shutdown;
            };
            if let Some(caught_up) = live {
                feed.live(caught_up).await;
            }
            if !text.is_empty() {
                feed.bytes(text.into()).await;
                let at = feed.position().copied().unwrap_or(0) + text.len() as u64;
                feed.set_position(Some(at));
            }
            end
        }

        async fn close(&mut self) {
            self.seen.lock().unwrap().1 = true;
        }

        fn describe(p: &u64) -> serde_json::Value {
            serde_json::json!(p)
        }
    }

    /// Runs a script to its end; returns what was sent, in short, and
    /// what the source saw.
    async fn play(script: Vec<Act>) -> (Result<(), String>, Vec<String>, Vec<Option<u64>>, bool) {
        let seen = Arc::new(Mutex::new((Vec::new(), false)));
        let source = Scripted {
            script: script.into(),
            seen: seen.clone(),
        };
        let (tx, mut rx) = mpsc::channel(64);
        let (_stop, shutdown) = watch::channel(false);
        let result = supervise(source, "log-a", tx, shutdown).await;
        let mut sent = Vec::new();
        while let Ok(i) = rx.try_recv() {
            sent.push(match i {
                Input::ServerChunk { source, bytes, .. } => {
                    format!("{source} bytes {}", String::from_utf8_lossy(&bytes))
                }
                Input::Status { source, status, .. } => match status {
                    SourceStatus::Reconnecting {
                        attempt, reason, ..
                    } => format!("{source} reconnecting {attempt} {reason}"),
                    SourceStatus::Error { reason } => format!("{source} error {reason}"),
                    other => format!("{source} {}", other.label()),
                },
                Input::Gap {
                    source,
                    down_ms,
                    caught_up_bytes,
                    ..
                } => format!("{source} gap {caught_up_bytes} {}", down_ms >= 1500),
                Input::Position {
                    source, position, ..
                } => format!("{source} position {position}"),
                other => format!("{other:?}"),
            });
        }
        let (positions, closed) = seen.lock().unwrap().clone();
        (result, sent, positions, closed)
    }

    #[tokio::test]
    async fn the_supervisor_resumes_at_the_last_position_with_backoff_and_a_gap() {
        let (result, sent, positions, closed) = play(vec![
            (None, "", SessionEnd::Lost("refused".into())),
            (Some(0), "abc", SessionEnd::Lost("dropped".into())),
            (None, "", SessionEnd::Lost("refused again".into())),
            (Some(7), "de", SessionEnd::Reopen),
            (None, "", SessionEnd::Fatal("host key".into())),
        ])
        .await;
        assert_eq!(result, Err("host key".to_string()));
        assert_eq!(
            sent,
            [
                "log-a reconnecting 1 refused",
                "log-a live",
                "log-a bytes abc",
                // A session that went live starts the count again.
                "log-a reconnecting 1 dropped",
                "log-a reconnecting 2 refused again",
                // Down through two backoffs (0.5 s and 1 s).
                "log-a gap 7 true",
                "log-a live",
                "log-a bytes de",
                // Where it would resume, for the manifest.
                "log-a position 5",
                "log-a error host key",
            ]
        );
        assert_eq!(positions, [None, None, Some(3), Some(3), Some(5)]);
        assert!(closed);
    }

    #[tokio::test]
    async fn a_shutdown_ends_with_stopped_and_the_source_closed() {
        let (result, sent, positions, closed) =
            play(vec![(Some(0), "x", SessionEnd::Shutdown)]).await;
        assert_eq!(result, Ok(()));
        assert_eq!(
            sent,
            [
                "log-a live",
                "log-a bytes x",
                "log-a position 1",
                "log-a stopped"
            ]
        );
        assert_eq!(positions, [None]);
        assert!(closed);
    }

    #[test]
    fn backoff_starts_under_a_second_and_caps_at_five() {
        assert!(backoff(1) < Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(100), Duration::from_secs(5));
        assert_eq!(backoff(0), backoff(1));
    }
}
