//! Local TCP forwarding (`ssh -L 127.0.0.1:<port>:host:port`) for the
//! database poller: each accepted local connection is piped through its own
//! `direct-tcpip` channel of a dedicated SSH connection. The connection is
//! re-established on demand when it has dropped.

use super::SshError;
use super::auth::{Authenticator, PassphrasePrompt};
use super::session::{self, ConnectOptions, Connection};
use super::target::{self, Target};
use crate::config::SshConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

/// Which SSH server opens the connection to the remote `host:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardFrom {
    /// The `[ssh]` host (through the jump host if one is configured).
    #[default]
    SshHost,
    /// The first jump host itself (e.g. the database is reachable from the
    /// bastion but not from the Synapse host).
    JumpHost,
}

/// A running forward; dropping it (or [`LocalForward::close`]) stops the
/// listener, ends the piped connections and disconnects.
#[derive(Debug)]
pub struct LocalForward {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LocalForward {
    /// `127.0.0.1:<port>`: give this to the client instead of the remote address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops and waits until the SSH connection is closed.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Shared {
    target: Target,
    auth: Mutex<Authenticator>,
    conn: Mutex<Option<Connection>>,
}

impl Shared {
    async fn connect(&self) -> Result<Connection, SshError> {
        let mut auth = self.auth.lock().await;
        session::connect(
            &self.target,
            &mut auth,
            ConnectOptions {
                status: None,
                russh_keepalive: Some(self.target.keepalive),
            },
        )
        .await
    }

    async fn open(
        &self,
        host: &str,
        port: u16,
        from: SocketAddr,
    ) -> Result<russh::Channel<russh::client::Msg>, SshError> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            if let Some(old) = guard.take() {
                old.disconnect().await;
            }
            *guard = Some(self.connect().await?);
        }
        let conn = guard
            .as_ref()
            .ok_or_else(|| SshError::Tunnel("no SSH connection".into()))?;
        conn.handle
            .channel_open_direct_tcpip(
                host,
                u32::from(port),
                from.ip().to_string(),
                u32::from(from.port()),
            )
            .await
            .map_err(|e| {
                SshError::Tunnel(format!("the SSH server cannot reach {host}:{port}: {e}"))
            })
    }
}

/// Listens on `127.0.0.1:<free port>` and forwards each connection to
/// `remote_host:remote_port` as seen from the chosen SSH server. Connects
/// once before returning, so host-key and auth errors surface here.
pub async fn open_local_forward(
    ssh: &SshConfig,
    remote_host: &str,
    remote_port: u16,
    from: ForwardFrom,
    prompt: Option<PassphrasePrompt>,
) -> Result<LocalForward, SshError> {
    let mut target = target::resolve(ssh)?;
    if from == ForwardFrom::JumpHost {
        if target.jumps.is_empty() {
            return Err(SshError::Config(
                "a forward from the jump host needs key 'jump' (or ProxyJump)".into(),
            ));
        }
        target.dest = target.jumps.remove(0);
        target.jumps.clear();
    }
    let auth = Authenticator::new(target.agent.clone(), target.passphrase_env.clone(), prompt);
    let shared = Arc::new(Shared {
        target,
        auth: Mutex::new(auth),
        conn: Mutex::new(None),
    });
    let first = shared.connect().await?;
    *shared.conn.lock().await = Some(first);

    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| SshError::Tunnel(format!("cannot listen on 127.0.0.1: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| SshError::Tunnel(format!("cannot listen on 127.0.0.1: {e}")))?;
    let (stop, stop_rx) = watch::channel(false);
    let host = remote_host.to_string();
    let task = tokio::spawn(accept_loop(listener, shared, host, remote_port, stop_rx));
    Ok(LocalForward {
        local_addr,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    host: String,
    port: u16,
    mut stop: watch::Receiver<bool>,
) {
    let mut pipes = JoinSet::new();
    loop {
        tokio::select! {
            _ = crate::sources::log_source::wait_shutdown(&mut stop) => break,
            Some(_) = pipes.join_next(), if !pipes.is_empty() => {}
            accepted = listener.accept() => {
                let (sock, peer) = match accepted {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "tunnel accept failed");
                        continue;
                    }
                };
                let shared = shared.clone();
                let host = host.clone();
                pipes.spawn(async move {
                    if let Err(e) = pipe(sock, peer, &shared, &host, port).await {
                        tracing::warn!(error = %e, "tunnel connection failed");
                    }
                });
            }
        }
    }
    pipes.shutdown().await;
    if let Some(c) = shared.conn.lock().await.take() {
        c.disconnect().await;
    }
}

async fn pipe(
    mut sock: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    host: &str,
    port: u16,
) -> Result<(), SshError> {
    let _ = sock.set_nodelay(true);
    let channel = shared.open(host, port, peer).await?;
    let mut stream = channel.into_stream();
    tokio::io::copy_bidirectional(&mut sock, &mut stream)
        .await
        .map(|_| ())
        .map_err(|e| SshError::Tunnel(e.to_string()))
}
