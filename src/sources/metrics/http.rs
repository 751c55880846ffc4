//! A plain HTTP/1.1 GET with hyper, over TCP or TLS (rustls with the web's
//! roots), to the endpoint itself or to a local SSH forward of it (the
//! `Host` header and TLS name stay the endpoint's).

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A metrics page or an answer larger than this is refused.
const MAX_BODY: usize = 64 << 20;

/// Why a GET failed, in one line fit for the status bar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL '{0}'")]
    Url(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Protocol(String),
}

/// An `http://` or `https://` endpoint, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The path (and query) of the URL, `/` when none.
    pub path: String,
    /// `Authorization: Basic …` from the URL's `user:password@`.
    basic: Option<String>,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let shown = || HttpError::Url(crate::domain::prometheus_api::without_password(url));
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(shown());
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = path.split('#').next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, rest) = v6.split_once(']').ok_or_else(shown)?;
            let port = rest.strip_prefix(':');
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(shown());
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| shown())?,
            None if https => 443,
            None => 80,
        };
        let basic = userinfo.map(|u| {
            let decoded = percent_decode(u);
            base64::engine::general_purpose::STANDARD.encode(decoded)
        });
        Ok(Endpoint {
            https,
            host,
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            basic,
        })
    }

    /// `host:port` as the `Host` header gives it.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// GETs `path` (with its query) of `ep`, connecting to `via` instead of
/// the endpoint's own address when given. Returns the status and body.
pub async fn get(
    ep: &Endpoint,
    path: &str,
    via: Option<SocketAddr>,
    timeout: Duration,
) -> Result<(u16, Bytes), HttpError> {
    match tokio::time::timeout(timeout, get_inner(ep, path, via)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(timeout.as_secs().max(1))),
    }
}

async fn get_inner(
    ep: &Endpoint,
    path: &str,
    via: Option<SocketAddr>,
) -> Result<(u16, Bytes), HttpError> {
    let target = format!("{}:{}", ep.host, ep.port);
    let tcp = match via {
        Some(addr) => TcpStream::connect(addr).await,
        None => TcpStream::connect((ep.host.as_str(), ep.port)).await,
    }
    .map_err(|e| HttpError::Unreachable(format!("{target}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let mut req = hyper::Request::get(path)
        .header(hyper::header::HOST, ep.authority())
        .header(
            hyper::header::USER_AGENT,
            concat!("callcap/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "text/plain, application/json");
    if let Some(b) = &ep.basic {
        req = req.header(hyper::header::AUTHORIZATION, format!("Basic {b}"));
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| HttpError::Protocol(e.to_string()))?;
    if ep.https {
        let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
            .map_err(|e| HttpError::Tls(format!("'{}': {e}", ep.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Tls(format!("{target}: {e}")))?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, HttpError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HttpError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

async fn send<I>(io: I, req: hyper::Request<Empty<Bytes>>) -> Result<(u16, Bytes), HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::Protocol(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| HttpError::Protocol(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Protocol(format!("reading the body: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    drop(sender);
    conn.abort();
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_split_with_their_defaults() {
        let e = Endpoint::parse("http://127.0.0.1:9000/_synapse/metrics").unwrap();
        assert_eq!(
            (e.https, e.host.as_str(), e.port, e.path.as_str()),
            (false, "127.0.0.1", 9000, "/_synapse/metrics")
        );
        assert_eq!(e.authority(), "127.0.0.1:9000");
        let e = Endpoint::parse("https://ops:p%40ss@prom.example.org/prometheus?x=1#f").unwrap();
        assert_eq!((e.port, e.path.as_str()), (443, "/prometheus?x=1"));
        assert_eq!(e.authority(), "prom.example.org");
        assert_eq!(e.basic.as_deref(), Some("b3BzOnBAc3M="), "ops:p@ss");
        let e = Endpoint::parse("http://[::1]:9090").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 9090, "/")
        );
        assert_eq!(e.authority(), "[::1]:9090");
        let err = Endpoint::parse("ftp://u:secret@h").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
