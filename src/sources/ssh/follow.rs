//! The follower: connect, run the remote follow script, forward bytes,
//! detect rotation/truncation/stalls, measure the clock, reconnect with
//! backoff and resume at the exact byte offset.

use super::auth::{Authenticator, PassphrasePrompt};
use super::remote::{
    Control, FilePos, FollowArgs, Header, LineSplitter, Piece, StdoutParser, follow_command,
    parse_control,
};
use super::session::{self, ConnectOptions, Connection};
use super::target::{self, Target};
use super::{RunOptions, SOURCE, SshError};
use crate::config::{ServerLogConfig, SshConfig};
use crate::sources::{Input, SourceStatus};
use chrono::{DateTime, Utc};
use russh::ChannelMsg;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

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
        self.send(Input::Status {
            source: SOURCE.into(),
            status,
            at: Utc::now(),
        })
        .await
    }
    async fn note(&self, text: String) -> bool {
        self.send(Input::Note {
            source: SOURCE.into(),
            text,
            at: Utc::now(),
        })
        .await
    }
}

enum End {
    Shutdown,
    /// The receiver of our inputs is gone.
    Closed,
    Lost(String),
    Stalled(String),
}

enum ChanEnd {
    Shutdown,
    Closed,
    /// Rotation or truncation: start a new follow command at our offset.
    Restart,
    Stalled(String),
    Failed(String),
}

/// Clock offset measurement: a few request/reply rounds over the follow
/// channel's stdin/stderr; the sample with the smallest round trip wins.
struct Clock {
    due: Option<Instant>,
    pending: Option<(Instant, DateTime<Utc>)>,
    samples: Vec<(Duration, f64, u64)>,
}

const CLOCK_SAMPLES: usize = 3;
const CLOCK_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

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

type PingFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

async fn ping_result(p: &mut Option<PingFuture<'_>>) -> bool {
    match p {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
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
                        return End::Lost(format!("connection lost ({reason})"));
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

    async fn channel(
        &mut self,
        conn: &Connection,
        shutdown: &mut watch::Receiver<bool>,
    ) -> ChanEnd {
        let nonce = nonce();
        let cmd = follow_command(&FollowArgs {
            exec_prefix: self.log.exec_prefix.as_deref(),
            path: &self.path,
            resume: self.pos.as_ref(),
            backfill: self.log.backfill,
            watch_interval: self.opts.watch_interval,
            tail_poll: self.opts.tail_poll,
            nonce: &nonce,
        });
        let timeout = self.target.connect_timeout;
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

        let keepalive = self.target.keepalive;
        let mut parser = StdoutParser::new(&nonce);
        let mut errs = LineSplitter::default();
        let mut stderr_tail: VecDeque<String> = VecDeque::new();
        let mut error_reason: Option<String> = None;
        let mut exit: Option<String> = None;
        let mut notes_left = 20u32;
        let mut truncation_strikes = 0u32;
        let mut missing_strikes = 0u32;
        let mut last_rx = Instant::now();
        let mut ping: Option<PingFuture<'_>> = None;
        let mut last_ping_ok = Instant::now();
        let mut clock = Clock {
            due: None,
            pending: None,
            samples: Vec::new(),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let quiet_limit = keepalive.max(self.opts.watch_interval) * 4;

        let end: ChanEnd = loop {
            tokio::select! {
                biased;
                _ = wait_shutdown(shutdown) => break ChanEnd::Shutdown,
                msg = rd.wait() => {
                    last_rx = Instant::now();
                    self.last_rx = (last_rx, Utc::now());
                    match msg {
                        None | Some(ChannelMsg::Close) => {
                            let reason = failure_reason(parser_following(&parser), &error_reason, &exit, &stderr_tail);
                            return ChanEnd::Failed(reason);
                        }
                        Some(ChannelMsg::Data { data }) => {
                            let mut pieces = Vec::new();
                            if let Err(e) = parser.feed(&data, &mut pieces) {
                                break ChanEnd::Failed(e);
                            }
                            for p in pieces.drain(..) {
                                if !self.piece(p, &mut clock).await {
                                    return ChanEnd::Closed;
                                }
                            }
                        }
                        Some(ChannelMsg::ExtendedData { data, .. }) => {
                            let mut action = None;
                            for line in errs.feed(&data) {
                                match parse_control(&line) {
                                    Control::Ident(Some((id, size))) => {
                                        missing_strikes = 0;
                                        let Some(pos) = self.pos.as_ref().filter(|_| parser_following(&parser)) else { continue };
                                        if id != pos.id {
                                            tracing::debug!(old = %pos.id, new = %id, "rotation detected");
                                            action = Some(ChanEnd::Restart);
                                        } else if size < pos.offset {
                                            // Two reports in a row: stdout and stderr are not ordered.
                                            truncation_strikes += 1;
                                            if truncation_strikes >= 2 {
                                                action = Some(ChanEnd::Restart);
                                            }
                                        } else {
                                            truncation_strikes = 0;
                                        }
                                    }
                                    Control::Ident(None) => {
                                        missing_strikes += 1;
                                        if missing_strikes == 3 && !self.out.note(format!(
                                            "the remote path '{}' has disappeared; still reading the file that was there", self.path)).await {
                                            return ChanEnd::Closed;
                                        }
                                    }
                                    Control::Time { unix, slack_ms } => {
                                        if let Some(off) = clock.reply(unix, slack_ms, self.opts.clock_interval) {
                                            let (offset_ms, bound_ms) = off;
                                            if !self.out.send(Input::ClockOffset {
                                                source: SOURCE.into(), offset_ms, bound_ms, at: Utc::now(),
                                            }).await {
                                                return ChanEnd::Closed;
                                            }
                                        }
                                    }
                                    Control::Error(m) => error_reason = Some(m),
                                    Control::TailExited => {
                                        action = Some(ChanEnd::Failed("the remote tail exited".into()));
                                    }
                                    Control::Other(line) => {
                                        if line.is_empty() { continue; }
                                        tracing::debug!(%line, "remote stderr");
                                        if stderr_tail.len() == 3 { stderr_tail.pop_front(); }
                                        stderr_tail.push_back(line.clone());
                                        if parser_following(&parser) && notes_left > 0 {
                                            notes_left -= 1;
                                            if !self.out.note(format!("remote: {line}")).await {
                                                return ChanEnd::Closed;
                                            }
                                        }
                                    }
                                }
                            }
                            if let Some(a) = action {
                                break a;
                            }
                        }
                        Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(format!("exit {exit_status}")),
                        Some(ChannelMsg::ExitSignal { signal_name, .. }) => exit = Some(format!("killed by SIG{signal_name:?}")),
                        Some(ChannelMsg::Failure) => break ChanEnd::Failed("the server refused to run the follow command".into()),
                        Some(_) => {}
                    }
                }
                ok = ping_result(&mut ping) => {
                    ping = None;
                    if conn.is_closed() {
                        return ChanEnd::Failed("connection closed".into());
                    }
                    if ok {
                        last_ping_ok = Instant::now();
                    } else {
                        let reason = format!(
                            "nothing received for {}s and the keepalive got no answer within {}s",
                            last_rx.elapsed().as_secs(), keepalive.as_secs_f32()
                        );
                        self.link_down();
                        if !self.out.status(SourceStatus::Stalled { reason: reason.clone() }).await {
                            return ChanEnd::Closed;
                        }
                        return ChanEnd::Stalled(reason);
                    }
                }
                _ = tick.tick() => {
                    if conn.is_closed() {
                        return ChanEnd::Failed("connection closed".into());
                    }
                    let idle = last_rx.elapsed();
                    if ping.is_none() && idle > keepalive && last_ping_ok.elapsed() > keepalive {
                        let handle = &conn.handle;
                        ping = Some(Box::pin(async move {
                            matches!(tokio::time::timeout(keepalive, handle.send_ping()).await, Ok(Ok(())))
                        }));
                    }
                    if idle > quiet_limit && last_ping_ok.elapsed() < keepalive * 2 {
                        break ChanEnd::Failed(format!(
                            "the remote follow command stopped reporting for {}s", idle.as_secs()));
                    }
                    if parser_following(&parser) {
                        if clock.poll().is_some() {
                            if wr.data_bytes(bytes::Bytes::from_static(b"time\n")).await.is_err() {
                                break ChanEnd::Failed("cannot write to the remote command".into());
                            }
                        }
                    }
                }
            }
        };

        // Close politely: EOF on the script's stdin makes it kill tail and
        // exit. Bytes still in flight are forwarded (they advance the offset).
        let _ = wr.eof().await;
        let drain = async {
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        let mut pieces = Vec::new();
                        if parser.feed(&data, &mut pieces).is_err() {
                            break;
                        }
                        for p in pieces.drain(..) {
                            if !self.piece(p, &mut clock).await {
                                return;
                            }
                        }
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
        let _ = wr.close().await;
        drop(ping);
        end
    }
}

fn parser_following(p: &StdoutParser) -> bool {
    p.following()
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

impl Clock {
    /// `Some` when a request should be sent now.
    fn poll(&mut self) -> Option<()> {
        let now = Instant::now();
        if let Some((sent, _)) = self.pending {
            if sent.elapsed() > CLOCK_REPLY_TIMEOUT {
                self.pending = None;
                self.due = Some(now + CLOCK_REPLY_TIMEOUT);
            }
            return None;
        }
        match self.due {
            Some(d) if d <= now => {
                self.pending = Some((now, Utc::now()));
                Some(())
            }
            _ => None,
        }
    }

    /// Records a reply; `Some((offset_ms, bound_ms))` once a round is complete.
    fn reply(&mut self, remote_unix: f64, slack_ms: u64, interval: Duration) -> Option<(i64, u64)> {
        let (sent, sent_wall) = self.pending.take()?;
        let rtt = sent.elapsed();
        let local_mid = sent_wall.timestamp_micros() as f64 / 1000.0 + rtt.as_secs_f64() * 500.0;
        let offset = remote_unix * 1000.0 - local_mid;
        self.samples.push((rtt, offset, slack_ms));
        if self.samples.len() < CLOCK_SAMPLES {
            self.due = Some(Instant::now());
            return None;
        }
        let best = self.samples.drain(..).min_by_key(|(rtt, _, _)| *rtt)?;
        self.due = Some(Instant::now() + interval);
        let bound = (best.0.as_secs_f64() * 500.0).ceil() as u64 + best.2;
        Some((best.1.round() as i64, bound.max(1)))
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

    #[test]
    fn clock_takes_the_fastest_of_three() {
        let mut c = Clock {
            due: Some(Instant::now()),
            pending: None,
            samples: Vec::new(),
        };
        let mut result = None;
        for _ in 0..CLOCK_SAMPLES {
            assert!(c.poll().is_some());
            let remote = Utc::now().timestamp_micros() as f64 / 1e6 + 2.0;
            result = c.reply(remote, 0, Duration::from_secs(300));
        }
        let (offset, bound) = result.unwrap_or((0, 0));
        assert!((offset - 2000).abs() <= 5, "{offset}");
        assert!(bound >= 1 && bound < 50, "{bound}");
        assert!(c.poll().is_none(), "next round only after the interval");
    }
}
