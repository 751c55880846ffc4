//! One-off commands on the `[ssh]` host (the preflight check, the DEBUG
//! loggers' edit and reload), on a connection of their own: the same hops,
//! host-key checks and authentication as the log follower.

use super::SshError;
use super::auth::{Authenticator, PassphrasePrompt};
use super::session::{self, ConnectOptions, Connection};
use super::target;
use crate::config::{HostKeyCheck, SshConfig};
use russh::ChannelMsg;
use std::sync::Arc;
use std::time::Duration;

/// Keys (decrypted once) and passphrase questions shared by several
/// connections of one run, so the operator is asked once.
#[derive(Clone)]
pub struct Credentials(Arc<tokio::sync::Mutex<Authenticator>>);

impl Credentials {
    pub fn new(ssh: &SshConfig, prompt: Option<PassphrasePrompt>) -> Result<Credentials, SshError> {
        let t = target::resolve(ssh)?;
        Ok(Credentials(Arc::new(tokio::sync::Mutex::new(
            Authenticator::new(t.agent, t.passphrase_env, prompt),
        ))))
    }

    /// From now on nobody is asked for a passphrase (when nobody is there
    /// to answer: the console has closed); keys already decrypted stay.
    pub async fn stop_asking(&self) {
        self.0.lock().await.stop_asking();
    }
}

/// What a remote command gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `None` when the server sent no exit status (a signal, a dropped link).
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }

    /// Stderr (else stdout) as one short line, for messages.
    pub fn complaint(&self) -> String {
        let text = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &self.stderr
        } else {
            &self.stdout
        };
        let s = String::from_utf8_lossy(text);
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.chars().count() > 300 {
            format!("{}…", s.chars().take(300).collect::<String>())
        } else {
            s
        }
    }
}

/// An authenticated connection for running commands.
pub struct RemoteShell {
    conn: Connection,
    timeout: Duration,
    /// What the connection wants the operator to know (a recorded host key).
    pub notes: Vec<String>,
    /// `user@host:port` of the destination.
    pub label: String,
}

/// How [`RemoteShell::connect`] treats an unknown host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeys {
    /// As `[ssh] host-key-check` says (`accept-new` records the key).
    AsConfigured,
    /// Never record a key, whatever the config says (the preflight check
    /// only looks).
    ReadOnly,
}

impl RemoteShell {
    pub async fn connect(
        ssh: &SshConfig,
        prompt: Option<PassphrasePrompt>,
        keys: HostKeys,
    ) -> Result<RemoteShell, SshError> {
        RemoteShell::connect_with(ssh, &Credentials::new(ssh, prompt)?, keys).await
    }

    /// [`RemoteShell::connect`] with credentials shared across connections.
    pub async fn connect_with(
        ssh: &SshConfig,
        creds: &Credentials,
        keys: HostKeys,
    ) -> Result<RemoteShell, SshError> {
        let mut target = target::resolve(ssh)?;
        if keys == HostKeys::ReadOnly {
            target.check = HostKeyCheck::Strict;
        }
        let mut auth = creds.0.lock().await;
        let mut conn = session::connect(
            &target,
            &mut auth,
            ConnectOptions {
                status: None,
                russh_keepalive: Some(target.keepalive),
            },
        )
        .await?;
        let notes = std::mem::take(&mut conn.notes);
        Ok(RemoteShell {
            conn,
            timeout: Duration::from_secs(30),
            notes,
            label: target.dest.label(),
        })
    }

    /// Each command is given this long (default 30 s) before it is abandoned.
    pub fn set_timeout(&mut self, d: Duration) {
        self.timeout = d;
    }

    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Runs `cmd` (a shell command line), feeds it `stdin` then end of file,
    /// and collects its output and exit status.
    pub async fn run(&self, cmd: &str, stdin: &[u8]) -> Result<Output, SshError> {
        let what = |e: &dyn std::fmt::Display| SshError::Remote(format!("remote command: {e}"));
        let work = async {
            let mut ch = self
                .conn
                .handle
                .channel_open_session()
                .await
                .map_err(|e| what(&e))?;
            ch.exec(true, cmd).await.map_err(|e| what(&e))?;
            if !stdin.is_empty() {
                ch.data(stdin).await.map_err(|e| what(&e))?;
            }
            ch.eof().await.map_err(|e| what(&e))?;
            let mut out = Output::default();
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| SshError::Timeout(format!("the remote command on {}", self.label)))?
    }

    /// Says goodbye (bounded).
    pub async fn close(self) {
        self.conn.disconnect().await;
    }
}
