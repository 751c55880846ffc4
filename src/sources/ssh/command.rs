//! Any command on the SSH host (through `exec-prefix`), streamed: what the
//! journald and Docker sources run there. The command runs under a small
//! POSIX `sh` wrapper that kills it when the channel's stdin reaches its
//! end (the channel closed, sshd died): a remote command without a PTY
//! would otherwise outlive the link (`journalctl -f` writes nothing until
//! the journal grows, so it would not notice the closed pipe).

use super::SshError;
use super::auth::PassphrasePrompt;
use super::clock_offset::OffsetProbe;
use super::link::Link;
use super::remote::{ControlLine, parse_control, shell_quote};
use super::session::Connection;
use crate::config::SshConfig;
use crate::sources::command::ProcEvent;
use crate::sources::log_source::{Feed, SessionEnd};
use russh::ChannelMsg;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Runs `"$@"` (stderr into stdout with `merge`), kills it at the end of
/// stdin, exits with its status.
const WRAPPER: &str = r#"m=$1; shift
command -v "$1" >/dev/null 2>&1 || { echo "the remote host has no '$1' command" >&2; exit 127; }
exec 3<&0
if [ "$m" = merge ]; then "$@" </dev/null 2>&1 & else "$@" </dev/null & fi
c=$!
{ while read -r _ <&3; do :; done; kill $c 2>/dev/null; } &
w=$!
wait $c; s=$?
kill $w 2>/dev/null
exit $s
"#;

/// How often the clock offset is measured again.
const CLOCK_INTERVAL: Duration = Duration::from_secs(300);

/// The command line sent in the SSH `exec` request.
pub(crate) fn wrapped(exec_prefix: Option<&str>, argv: &[String], merge: bool) -> String {
    let mut cmd = String::new();
    if let Some(prefix) = exec_prefix.map(str::trim).filter(|p| !p.is_empty()) {
        cmd.push_str(prefix);
        cmd.push(' ');
    }
    cmd.push_str("sh -c ");
    cmd.push_str(&shell_quote(WRAPPER));
    cmd.push_str(" callcap-run ");
    cmd.push_str(if merge { "merge" } else { "plain" });
    for a in argv {
        cmd.push(' ');
        cmd.push_str(&shell_quote(a));
    }
    cmd
}

/// Commands on the SSH host over one kept connection.
pub struct RemoteCommands {
    link: Link,
    exec_prefix: Option<String>,
    clock_due: Option<Instant>,
}

/// A command running on the SSH host.
pub struct RemoteProc {
    channel: russh::Channel<russh::client::Msg>,
    conn: Connection,
    keepalive: Duration,
    last_rx: Instant,
    exit: Option<String>,
}

impl RemoteCommands {
    pub fn new(
        ssh: &SshConfig,
        prompt: Option<PassphrasePrompt>,
        fail_fast: bool,
        exec_prefix: Option<String>,
    ) -> Result<RemoteCommands, SshError> {
        Ok(RemoteCommands {
            link: Link::new(ssh, prompt, fail_fast)?,
            exec_prefix,
            clock_due: Some(Instant::now()),
        })
    }

    /// Connects (or reuses the connection) and starts `argv`.
    pub async fn start<P: Clone>(
        &mut self,
        feed: &mut Feed<P>,
        shutdown: &mut watch::Receiver<bool>,
        argv: &[String],
        merge: bool,
    ) -> Result<RemoteProc, SessionEnd<SshError>> {
        let conn = self.link.take(feed, shutdown).await?;
        if self.clock_due.is_some_and(|d| d <= Instant::now()) {
            self.clock_due = Some(Instant::now() + CLOCK_INTERVAL);
            if let Some((offset_ms, bound_ms)) =
                clock_offset(&conn, self.link.target.connect_timeout).await
            {
                feed.clock_offset(offset_ms, bound_ms).await;
            }
        }
        let timeout = self.link.target.connect_timeout;
        let cmd = wrapped(self.exec_prefix.as_deref(), argv, merge);
        let started = async {
            let ch = tokio::time::timeout(timeout, conn.handle.channel_open_session())
                .await
                .map_err(|_| "opening an SSH channel timed out".to_string())?
                .map_err(|e| format!("cannot open an SSH channel: {e}"))?;
            tokio::time::timeout(timeout, ch.exec(true, cmd))
                .await
                .map_err(|_| "starting the remote command timed out".to_string())?
                .map_err(|e| format!("cannot start the remote command: {e}"))?;
            Ok::<_, String>(ch)
        };
        match started.await {
            Ok(channel) => Ok(RemoteProc {
                channel,
                conn,
                keepalive: self.link.target.keepalive,
                last_rx: Instant::now(),
                exit: None,
            }),
            Err(reason) if conn.is_closed() => {
                tracing::debug!(%reason, "channel failed with the connection");
                conn.disconnect().await;
                Err(SessionEnd::Lost(self.link.lost_reason()))
            }
            Err(reason) => {
                self.link.keep(conn);
                Err(SessionEnd::Lost(reason))
            }
        }
    }

    /// Ends a command politely (end of its stdin: the wrapper kills it);
    /// with `keep`, keeps the connection for the next command when it is
    /// still good.
    pub async fn finish(&mut self, proc: RemoteProc, keep: bool) {
        let RemoteProc {
            mut channel, conn, ..
        } = proc;
        if !conn.is_closed() {
            let _ = channel.eof().await;
            let drain = async { while channel.wait().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
            let _ = channel.close().await;
        }
        if keep && !conn.is_closed() {
            self.link.keep(conn);
        } else {
            conn.disconnect().await;
        }
    }

    pub async fn close(&mut self) {
        self.link.close().await;
    }
}

impl RemoteProc {
    /// What the command does next; a link that stops answering while the
    /// command is quiet is `Stalled` (after a keepalive without answer).
    pub async fn next(&mut self) -> ProcEvent {
        loop {
            let quiet_until = tokio::time::Instant::from_std(self.last_rx + self.keepalive);
            tokio::select! {
                msg = self.channel.wait() => {
                    self.last_rx = Instant::now();
                    match msg {
                        None | Some(ChannelMsg::Close) => {
                            return match self.exit.take() {
                                Some(status) => ProcEvent::Exited(status),
                                None if self.conn.is_closed() => {
                                    ProcEvent::Lost("the SSH connection was lost".into())
                                }
                                None => ProcEvent::Exited("no exit status".into()),
                            };
                        }
                        Some(ChannelMsg::Data { data }) => return ProcEvent::Stdout(data.to_vec()),
                        Some(ChannelMsg::ExtendedData { data, .. }) => {
                            return ProcEvent::Stderr(data.to_vec());
                        }
                        Some(ChannelMsg::ExitStatus { exit_status }) => {
                            self.exit = Some(format!("exit {exit_status}"));
                        }
                        Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                            self.exit = Some(format!("killed by SIG{signal_name:?}"));
                        }
                        Some(ChannelMsg::Failure) => {
                            return ProcEvent::Exited("the server refused to run it".into());
                        }
                        Some(_) => {}
                    }
                }
                _ = tokio::time::sleep_until(quiet_until) => {
                    if self.conn.is_closed() {
                        return ProcEvent::Lost("the SSH connection was lost".into());
                    }
                    let answered = matches!(
                        tokio::time::timeout(self.keepalive, self.conn.handle.send_ping()).await,
                        Ok(Ok(()))
                    );
                    if !answered {
                        return ProcEvent::Stalled(format!(
                            "nothing received for {}s and the keepalive got no answer within {}s",
                            self.last_rx.elapsed().as_secs(),
                            self.keepalive.as_secs_f32()
                        ));
                    }
                    self.last_rx = Instant::now();
                }
            }
        }
    }
}

/// The host's clock minus ours, the fastest of a few `date` round trips
/// on one running command (a line in, `date` out), so that each round trip
/// is symmetric like the follow channel's: starting a command for each
/// `date` puts the start-up on the way there only and skews the offset by
/// up to the whole start-up time.
async fn clock_offset(conn: &Connection, timeout: Duration) -> Option<(i64, u64)> {
    let mut ch = tokio::time::timeout(timeout, conn.handle.channel_open_session())
        .await
        .ok()?
        .ok()?;
    ch.exec(true, "while read -r _; do date +%s.%N; done")
        .await
        .ok()?;
    let mut probe = OffsetProbe::default();
    probe.due = Some(Instant::now());
    let mut pending = Vec::new();
    let rounds = async {
        for _ in 0..5 {
            if !probe.poll() {
                return None;
            }
            ch.data(&b"t\n"[..]).await.ok()?;
            let line = loop {
                if let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    break line;
                }
                match ch.wait().await? {
                    ChannelMsg::Data { data } => pending.extend_from_slice(&data),
                    ChannelMsg::Eof | ChannelMsg::Close => return None,
                    _ => {}
                }
            };
            let line = format!("callcap:time {}", String::from_utf8_lossy(&line).trim());
            if let ControlLine::Time { unix, slack_ms } = parse_control(&line)
                && let Some(done) = probe.reply(unix, slack_ms, CLOCK_INTERVAL)
            {
                return Some(done);
            }
        }
        None
    };
    let found = tokio::time::timeout(timeout * 3, rounds)
        .await
        .ok()
        .flatten();
    let _ = ch.eof().await;
    let _ = ch.close().await;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_runs_inside_the_prefix_under_the_wrapper() {
        let argv: Vec<String> = [
            "journalctl",
            "-u",
            "matrix-synapse",
            "--after-cursor=s=1;i=2",
        ]
        .map(String::from)
        .to_vec();
        let c = wrapped(Some("pct exec 151 --"), &argv, false);
        assert!(c.starts_with("pct exec 151 -- sh -c '"), "{c}");
        assert!(
            c.ends_with(" callcap-run plain journalctl -u matrix-synapse '--after-cursor=s=1;i=2'"),
            "{c}"
        );
    }
}
