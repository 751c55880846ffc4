//! The SSH connection a log source keeps across its sessions: opened when
//! a session needs it and there is none (or it closed), kept while it
//! lasts, closed by the source.

use super::SshError;
use super::auth::{Authenticator, PassphrasePrompt};
use super::session::{self, ConnectOptions, Connection};
use super::target::{self, Target};
use crate::config::SshConfig;
use crate::sources::log_source::{Feed, SessionEnd, wait_shutdown};
use tokio::sync::watch;

pub(crate) struct Link {
    pub target: Target,
    auth: Authenticator,
    conn: Option<Connection>,
    ever_connected: bool,
    /// Give up when the very first connection fails (`--headless`).
    fail_fast: bool,
}

impl Link {
    pub fn new(
        ssh: &SshConfig,
        prompt: Option<PassphrasePrompt>,
        fail_fast: bool,
    ) -> Result<Link, SshError> {
        let target = target::resolve(ssh)?;
        let auth = Authenticator::new(target.agent.clone(), target.passphrase_env.clone(), prompt);
        Ok(Link {
            target,
            auth,
            conn: None,
            ever_connected: false,
            fail_fast,
        })
    }

    /// The kept connection, or a new one when there is none or it closed;
    /// a failure ends the session (`Fatal` when retrying cannot help).
    pub async fn take<P: Clone>(
        &mut self,
        feed: &mut Feed<P>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Connection, SessionEnd<SshError>> {
        match self.conn.take() {
            Some(conn) if !conn.is_closed() => return Ok(conn),
            Some(old) => old.disconnect().await,
            None => {}
        }
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
            Err(e) if e.is_fatal() || (self.fail_fast && !self.ever_connected) => {
                Err(SessionEnd::Fatal(e))
            }
            Err(e) => Err(SessionEnd::Lost(e.to_string())),
        }
    }

    /// Keeps a connection that is still good for the next session.
    pub fn keep(&mut self, conn: Connection) {
        self.conn = Some(conn);
    }

    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.disconnect().await;
        }
    }

    /// Why a session ended when its channel failed: the connection's loss
    /// when it closed with it.
    pub fn lost_reason(&self) -> String {
        format!(
            "the SSH connection to {} was lost",
            self.target.dest.label()
        )
    }
}
