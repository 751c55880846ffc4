//! One follow channel: start the remote script, forward what it prints,
//! watch for rotation, truncation and stalls, answer the clock, close politely.

use super::super::clock_offset::OffsetProbe;
use super::super::remote::{
    ControlLine, FilePos, FollowArgs, LineSplitter, StdoutParser, follow_command, parse_control,
};
use super::super::session::Connection;
use super::{Follower, nonce};
use crate::sources::SourceStatus;
use crate::sources::log_source::{Feed, wait_shutdown};
use russh::ChannelMsg;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(super) enum ChanEnd {
    Shutdown,
    Closed,
    /// Rotation or truncation: start a new follow command at our offset.
    Restart,
    Stalled(String),
    Failed(String),
}

type PingFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

async fn ping_result(p: &mut Option<PingFuture<'_>>) -> bool {
    match p {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

impl Follower {
    /// Runs one follow command until it must be replaced or stopped.
    pub(super) async fn channel(
        &mut self,
        conn: &Connection,
        feed: &mut Feed<FilePos>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> ChanEnd {
        let nonce = nonce();
        let cmd = follow_command(&FollowArgs {
            exec_prefix: self.log.exec_prefix.as_deref(),
            path: &self.path,
            resume: feed.position(),
            backfill: self.log.backfill,
            watch_interval: self.opts.watch_interval,
            tail_poll: self.opts.tail_poll,
            nonce: &nonce,
        });
        let timeout = self.link.target.connect_timeout;
        let ch = match tokio::time::timeout(timeout, conn.handle.channel_open_session()).await {
            Ok(Ok(ch)) => ch,
            Ok(Err(e)) => return ChanEnd::Failed(format!("cannot open an SSH channel: {e}")),
            Err(_) => return ChanEnd::Failed("opening an SSH channel timed out".into()),
        };
        match tokio::time::timeout(timeout, ch.exec(true, cmd)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return ChanEnd::Failed(format!("cannot start the remote command: {e}")),
            Err(_) => return ChanEnd::Failed("starting the remote command timed out".into()),
        }
        let (mut rd, wr) = ch.split();
        let mut c = Chan::new(&nonce);
        let keepalive = self.link.target.keepalive;
        let quiet_limit = keepalive.max(self.opts.watch_interval) * 4;
        let mut ping: Option<PingFuture<'_>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let end = loop {
            tokio::select! {
                biased;
                _ = wait_shutdown(shutdown) => break ChanEnd::Shutdown,
                msg = rd.wait() => {
                    c.last_rx = Instant::now();
                    feed.received();
                    let step = match msg {
                        None | Some(ChannelMsg::Close) => return ChanEnd::Failed(c.failure_reason()),
                        Some(ChannelMsg::Data { data }) => self.stdout(&mut c, feed, &data).await,
                        Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr(&mut c, feed, &data).await,
                        Some(ChannelMsg::ExitStatus { exit_status }) => {
                            c.exit = Some(format!("exit {exit_status}"));
                            None
                        }
                        Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                            c.exit = Some(format!("killed by SIG{signal_name:?}"));
                            None
                        }
                        Some(ChannelMsg::Failure) => Some(ChanEnd::Failed(
                            "the server refused to run the follow command".into(),
                        )),
                        Some(_) => None,
                    };
                    match step {
                        Some(ChanEnd::Closed) => return ChanEnd::Closed,
                        Some(end) => break end,
                        None => {}
                    }
                }
                ok = ping_result(&mut ping) => {
                    ping = None;
                    if conn.is_closed() {
                        return ChanEnd::Failed("connection closed".into());
                    }
                    if ok {
                        c.last_ping_ok = Instant::now();
                        continue;
                    }
                    let reason = format!(
                        "nothing received for {}s and the keepalive got no answer within {}s",
                        c.last_rx.elapsed().as_secs(),
                        keepalive.as_secs_f32()
                    );
                    feed.link_down();
                    if !feed.status(SourceStatus::Stalled { reason: reason.clone() }).await {
                        return ChanEnd::Closed;
                    }
                    // The peer does not answer: no polite close is possible.
                    return ChanEnd::Stalled(reason);
                }
                _ = tick.tick() => {
                    if conn.is_closed() {
                        return ChanEnd::Failed("connection closed".into());
                    }
                    let idle = c.last_rx.elapsed();
                    if ping.is_none() && idle > keepalive && c.last_ping_ok.elapsed() > keepalive {
                        let handle = &conn.handle;
                        ping = Some(Box::pin(async move {
                            matches!(
                                tokio::time::timeout(keepalive, handle.send_ping()).await,
                                Ok(Ok(()))
                            )
                        }));
                    }
                    // The link answers but the watcher went silent: the remote
                    // command is stuck or gone.
                    if idle > quiet_limit && c.last_ping_ok.elapsed() < keepalive * 2 {
                        break ChanEnd::Failed(format!(
                            "the remote follow command stopped reporting for {}s",
                            idle.as_secs()
                        ));
                    }
                    if c.parser.following()
                        && c.clock.poll()
                        && wr.data_bytes(bytes::Bytes::from_static(b"time\n")).await.is_err()
                    {
                        break ChanEnd::Failed("cannot write to the remote command".into());
                    }
                }
            }
        };

        // Close politely: EOF on the script's stdin makes it kill tail and
        // exit. Bytes still in flight are forwarded (they advance the offset).
        drop(ping);
        let _ = wr.eof().await;
        let drain = async {
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data }
                        if self.stdout(&mut c, feed, &data).await.is_some() =>
                    {
                        break;
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
        let _ = wr.close().await;
        end
    }

    /// Log bytes and headers; `Some` ends the channel.
    async fn stdout(
        &mut self,
        c: &mut Chan,
        feed: &mut Feed<FilePos>,
        data: &[u8],
    ) -> Option<ChanEnd> {
        let mut pieces = Vec::new();
        if let Err(e) = c.parser.feed(data, &mut pieces) {
            return Some(ChanEnd::Failed(e));
        }
        for p in pieces {
            if !self.piece(p, feed, &mut c.clock).await {
                return Some(ChanEnd::Closed);
            }
        }
        None
    }

    /// Control lines and complaints; `Some` ends the channel.
    async fn stderr(
        &mut self,
        c: &mut Chan,
        feed: &mut Feed<FilePos>,
        data: &[u8],
    ) -> Option<ChanEnd> {
        let mut action = None;
        for line in c.errs.feed(data) {
            match parse_control(&line) {
                ControlLine::Ident(Some((id, size))) => {
                    c.missing_strikes = 0;
                    let Some(pos) = feed.position().filter(|_| c.parser.following()) else {
                        continue;
                    };
                    if id != pos.id {
                        tracing::debug!(old = %pos.id, new = %id, "rotation detected");
                        action = Some(ChanEnd::Restart);
                    } else if size < pos.offset {
                        // stdout and stderr are not ordered against each
                        // other: only two reports in a row mean truncation.
                        c.truncation_strikes += 1;
                        if c.truncation_strikes >= 2 {
                            action = Some(ChanEnd::Restart);
                        }
                    } else {
                        c.truncation_strikes = 0;
                    }
                }
                ControlLine::Ident(None) => {
                    c.missing_strikes += 1;
                    if c.missing_strikes == 3
                        && !feed
                            .note(format!(
                                "the remote path '{}' has disappeared; still reading the file that was there",
                                self.path
                            ))
                            .await
                    {
                        return Some(ChanEnd::Closed);
                    }
                }
                ControlLine::Time { unix, slack_ms } => {
                    if let Some((offset_ms, bound_ms)) =
                        c.clock.reply(unix, slack_ms, self.opts.clock_interval)
                        && !feed.clock_offset(offset_ms, bound_ms).await
                    {
                        return Some(ChanEnd::Closed);
                    }
                }
                ControlLine::Error(m) => c.error = Some(m),
                ControlLine::TailExited => {
                    action = Some(ChanEnd::Failed("the remote tail exited".into()));
                }
                ControlLine::Other(line) if line.is_empty() => {}
                ControlLine::Other(line) => {
                    tracing::debug!(%line, "remote stderr");
                    if c.stderr_tail.len() == 3 {
                        c.stderr_tail.pop_front();
                    }
                    c.stderr_tail.push_back(line.clone());
                    // Before the header these explain a failure (reported
                    // once as its reason); while live they are notes.
                    if c.parser.following() && c.notes_left > 0 {
                        c.notes_left -= 1;
                        if !feed.note(format!("remote: {line}")).await {
                            return Some(ChanEnd::Closed);
                        }
                    }
                }
            }
        }
        action
    }
}

/// State of one follow channel.
struct Chan {
    parser: StdoutParser,
    errs: LineSplitter,
    stderr_tail: VecDeque<String>,
    error: Option<String>,
    exit: Option<String>,
    notes_left: u32,
    truncation_strikes: u32,
    missing_strikes: u32,
    last_rx: Instant,
    last_ping_ok: Instant,
    clock: OffsetProbe,
}

impl Chan {
    fn new(nonce: &str) -> Chan {
        Chan {
            parser: StdoutParser::new(nonce),
            errs: LineSplitter::default(),
            stderr_tail: VecDeque::new(),
            error: None,
            exit: None,
            notes_left: 20,
            truncation_strikes: 0,
            missing_strikes: 0,
            last_rx: Instant::now(),
            last_ping_ok: Instant::now(),
            clock: OffsetProbe::default(),
        }
    }

    fn failure_reason(&self) -> String {
        failure_reason(
            self.parser.following(),
            &self.error,
            &self.exit,
            &self.stderr_tail,
        )
    }
}

fn failure_reason(
    had_header: bool,
    error: &Option<String>,
    exit: &Option<String>,
    stderr: &VecDeque<String>,
) -> String {
    if let Some(e) = error {
        return e.clone();
    }
    let exit = exit.clone().unwrap_or_else(|| "no exit status".into());
    let what = if had_header {
        "the remote follow command ended"
    } else {
        "the remote follow command failed"
    };
    if stderr.is_empty() {
        format!("{what} ({exit})")
    } else {
        let s: Vec<&str> = stderr.iter().map(String::as_str).collect();
        format!("{what} ({exit}): {}", s.join(" | "))
    }
}
