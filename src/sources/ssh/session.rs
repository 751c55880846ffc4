//! Opening an authenticated SSH connection, through jump hosts if any: the
//! next hop is reached over a `direct-tcpip` channel of the previous one.

use super::SshError;
use super::auth::Authenticator;
use super::host_key::Client;
use super::known_hosts;
use super::target::{Endpoint, Target};
use crate::sources::{Input, SourceStatus};
use russh::client::{self, Handle};
use russh::keys::Algorithm;
use russh::{Disconnect, Preferred};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// An authenticated connection; the jump connections are kept alive with it.
pub(crate) struct Connection {
    pub handle: Handle<Client>,
    jumps: Vec<Handle<Client>>,
    /// Things worth telling the operator (a recorded host key ...).
    pub notes: Vec<String>,
}

impl Connection {
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.jumps.iter().any(|j| j.is_closed())
    }

    /// Says goodbye on every hop (bounded: a stopped peer must not hang us).
    pub async fn disconnect(self) {
        let bye = |h: Handle<Client>| async move {
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                h.disconnect(Disconnect::ByApplication, "", "en"),
            )
            .await;
        };
        bye(self.handle).await;
        for j in self.jumps.into_iter().rev() {
            bye(j).await;
        }
    }
}

/// What the caller wants besides the target.
pub(crate) struct ConnectOptions<'a> {
    /// Where to report Connecting/Authenticating, as `source`.
    pub status: Option<(&'a mpsc::Sender<Input>, &'a str)>,
    /// russh's own keepalive (tunnels); the log follower runs its own watchdog.
    pub russh_keepalive: Option<Duration>,
}

fn client_config(
    target: &Target,
    ep: &Endpoint,
    keepalive: Option<Duration>,
) -> Arc<client::Config> {
    let known = known_hosts::known_algorithms(&target.known_hosts, &ep.host, ep.port);
    let mut preferred = Preferred::default();
    if !known.is_empty() {
        // Like OpenSSH: ask first for the key types we already know for this host.
        let mut order: Vec<Algorithm> = Vec::new();
        for a in known.iter().chain(preferred.key.iter()) {
            let a = a.clone();
            if !order.contains(&a) {
                order.push(a);
            }
        }
        preferred.key = Cow::Owned(order);
    }
    Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: keepalive,
        keepalive_max: 3,
        nodelay: true,
        preferred,
        ..Default::default()
    })
}

async fn report(opts: &ConnectOptions<'_>, status: SourceStatus) {
    if let Some((tx, source)) = opts.status {
        let _ = tx.send(Input::status_now(source, status)).await;
    }
}

async fn tcp(ep: &Endpoint, timeout: Duration) -> Result<tokio::net::TcpStream, SshError> {
    let addrs: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((ep.host.as_str(), ep.port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            return Err(SshError::Resolve {
                host: ep.host.clone(),
                reason: e.to_string(),
            });
        }
        Err(_) => return Err(SshError::Timeout(format!("resolving '{}'", ep.host))),
    };
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                last = Some(SshError::Connect {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })
            }
            Err(_) => last = Some(SshError::Timeout(format!("connecting to {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| SshError::Resolve {
        host: ep.host.clone(),
        reason: "no address".into(),
    }))
}

async fn handshake<S>(
    target: &Target,
    ep: &Endpoint,
    stream: S,
    opts: &ConnectOptions<'_>,
    notes: &Arc<Mutex<Vec<String>>>,
) -> Result<Handle<Client>, SshError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = Client {
        host: ep.host.clone(),
        port: ep.port,
        check: target.check,
        files: target.known_hosts.clone(),
        notes: notes.clone(),
    };
    let config = client_config(target, ep, opts.russh_keepalive);
    match tokio::time::timeout(
        target.connect_timeout,
        client::connect_stream(config, stream, handler),
    )
    .await
    {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(e.at(ep)),
        Err(_) => Err(SshError::Timeout(format!(
            "SSH handshake with {}:{}",
            ep.host, ep.port
        ))),
    }
}

/// Connects through every hop and authenticates on each.
pub(crate) async fn connect(
    target: &Target,
    auth: &mut Authenticator,
    opts: ConnectOptions<'_>,
) -> Result<Connection, SshError> {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let hops: Vec<&Endpoint> = target
        .jumps
        .iter()
        .chain(std::iter::once(&target.dest))
        .collect();
    let mut handles: Vec<Handle<Client>> = Vec::new();
    for (i, ep) in hops.iter().enumerate() {
        report(&opts, SourceStatus::Connecting).await;
        let mut h = match handles.last() {
            None => {
                let s = tcp(ep, target.connect_timeout).await?;
                handshake(target, ep, s, &opts, &notes).await?
            }
            Some(prev) => {
                let ch = tokio::time::timeout(
                    target.connect_timeout,
                    prev.channel_open_direct_tcpip(
                        ep.host.clone(),
                        u32::from(ep.port),
                        "127.0.0.1",
                        0,
                    ),
                )
                .await
                .map_err(|_| {
                    SshError::Timeout(format!(
                        "opening {}:{} through the jump host",
                        ep.host, ep.port
                    ))
                })?
                .map_err(|e| SshError::Jump {
                    via: hops[i - 1].label(),
                    to: format!("{}:{}", ep.host, ep.port),
                    reason: e.to_string(),
                })?;
                handshake(target, ep, ch.into_stream(), &opts, &notes).await?
            }
        };
        report(&opts, SourceStatus::Authenticating).await;
        auth.authenticate(&mut h, ep, target.connect_timeout)
            .await?;
        handles.push(h);
    }
    let handle = handles
        .pop()
        .ok_or_else(|| SshError::Config("no host to connect to".into()))?;
    let notes = notes.lock().map(|n| n.clone()).unwrap_or_default();
    Ok(Connection {
        handle,
        jumps: handles,
        notes,
    })
}
