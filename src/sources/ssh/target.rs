//! Turns `[ssh]` (plus `Host` aliases from `~/.ssh/config`) into the hops to
//! connect through. Explicit `[ssh]` keys win over `~/.ssh/config`, as the
//! command line wins over the config file in OpenSSH.

use super::SshError;
use super::known_hosts::KnownHostsFiles;
use crate::config::{HostKeyCheck, SshConfig, expand_tilde};
use ssh2_config::{ParseRule, SshConfig as OpenSshConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(5);

/// One SSH server to authenticate to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Address or name to connect to (after `HostName`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    /// Identity files the operator named explicitly (a missing one is reported).
    pub explicit_identities: Vec<PathBuf>,
}

impl Endpoint {
    /// `user@host:port`, for messages.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentChoice {
    None,
    Socket(PathBuf),
}

/// Everything needed to (re)connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Bastions in order, then nothing: `dest` is reached through the last one.
    pub jumps: Vec<Endpoint>,
    pub dest: Endpoint,
    pub known_hosts: KnownHostsFiles,
    pub check: HostKeyCheck,
    pub agent: AgentChoice,
    pub passphrase_env: Option<String>,
    pub connect_timeout: Duration,
    pub keepalive: Duration,
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

fn home_ssh(file: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh").join(file))
}

fn load_openssh_config(ssh: &SshConfig) -> Result<Option<OpenSshConfig>, SshError> {
    let (path, explicit) = match &ssh.ssh_config {
        Some(p) => (expand_tilde(p), true),
        None => match home_ssh("config") {
            Some(p) => (p, false),
            None => return Ok(None),
        },
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SshError::Config(format!(
                "key 'ssh-config': cannot read '{}': {e}",
                path.display()
            )));
        }
    };
    let mut reader = std::io::BufReader::new(file);
    OpenSshConfig::default()
        .parse(
            &mut reader,
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map(Some)
        .map_err(|e| SshError::Config(format!("ssh config '{}': {e}", path.display())))
}

/// `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`.
pub(crate) fn parse_hop(spec: &str) -> Result<(Option<String>, String, Option<u16>), SshError> {
    let bad = |why: &str| SshError::Config(format!("key 'jump': '{spec}': {why}"));
    let s = spec.trim();
    let s = s.strip_prefix("ssh://").unwrap_or(s);
    let s = s.trim_end_matches('/');
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return Err(bad("empty user name")),
        None => (None, s),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("unexpected text after ']'")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("port is not a number between 1 and 65535"))?,
        ),
        None => None,
    };
    Ok((user, host.to_string(), port))
}

fn endpoint(
    osc: Option<&OpenSshConfig>,
    alias: &str,
    user: Option<String>,
    port: Option<u16>,
    explicit: &[PathBuf],
) -> (Endpoint, Option<Vec<String>>) {
    let params = osc.map(|c| c.query(alias));
    let host = params
        .as_ref()
        .and_then(|p| p.host_name.clone())
        .unwrap_or_else(|| alias.to_string());
    let port = port
        .or_else(|| params.as_ref().and_then(|p| p.port))
        .unwrap_or(22);
    let user = user
        .or_else(|| params.as_ref().and_then(|p| p.user.clone()))
        .unwrap_or_else(local_user);
    let mut identity_files: Vec<PathBuf> = explicit.to_vec();
    if let Some(files) = params.as_ref().and_then(|p| p.identity_file.clone()) {
        for f in files {
            let f = expand_tilde(&f);
            if !identity_files.contains(&f) {
                identity_files.push(f);
            }
        }
    }
    let proxy_jump = params.and_then(|p| p.proxy_jump);
    (
        Endpoint {
            host,
            port,
            user,
            identity_files,
            explicit_identities: explicit.to_vec(),
        },
        proxy_jump,
    )
}

fn default_identities() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .filter_map(|f| home_ssh(f))
        .filter(|p| p.exists())
        .collect()
}

pub(crate) fn resolve(ssh: &SshConfig) -> Result<Target, SshError> {
    if ssh.host.trim().is_empty() {
        return Err(SshError::Config("key 'host': is empty".to_string()));
    }
    let osc = load_openssh_config(ssh)?;
    let explicit: Vec<PathBuf> = ssh.identity_file.iter().map(|p| expand_tilde(p)).collect();
    let (mut dest, cfg_jump) = endpoint(
        osc.as_ref(),
        ssh.host.trim(),
        ssh.user.clone(),
        ssh.port,
        &explicit,
    );
    let defaults = if dest.identity_files.is_empty() {
        default_identities()
    } else {
        Vec::new()
    };
    dest.identity_files.extend(defaults.iter().cloned());

    let jump_spec: Option<String> = match &ssh.jump {
        Some(j) => Some(j.clone()),
        None => cfg_jump.map(|v| v.join(",")),
    };
    let mut jumps = Vec::new();
    if let Some(spec) = jump_spec.filter(|s| !s.trim().is_empty() && s.trim() != "none") {
        for hop in spec.split(',') {
            let (user, host, port) = parse_hop(hop)?;
            // A hop's own ProxyJump is ignored: the chain is the list given.
            let (mut ep, _) = endpoint(osc.as_ref(), &host, user, port, &[]);
            for f in dest.identity_files.iter() {
                if !ep.identity_files.contains(f) {
                    ep.identity_files.push(f.clone());
                }
            }
            jumps.push(ep);
        }
    }

    let known_hosts = match &ssh.known_hosts {
        Some(p) => KnownHostsFiles {
            user: expand_tilde(p),
            global: vec![],
        },
        None => KnownHostsFiles {
            user: home_ssh("known_hosts").unwrap_or_else(|| PathBuf::from(".ssh/known_hosts")),
            global: vec![
                home_ssh("known_hosts2").unwrap_or_default(),
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
            ]
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        },
    };

    let agent = match &ssh.identity_agent {
        Some(p) if p == Path::new("none") => AgentChoice::None,
        Some(p) => AgentChoice::Socket(expand_tilde(p)),
        None => match std::env::var_os("SSH_AUTH_SOCK") {
            Some(s) if !s.is_empty() => AgentChoice::Socket(PathBuf::from(s)),
            _ => AgentChoice::None,
        },
    };

    let connect_timeout = ssh
        .connect_timeout
        .map(|d| d.as_duration())
        .or_else(|| {
            osc.as_ref()
                .and_then(|c| c.query(ssh.host.trim()).connect_timeout)
        })
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let keepalive = ssh
        .keepalive_interval
        .map(|d| d.as_duration())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_KEEPALIVE);

    Ok(Target {
        jumps,
        dest,
        known_hosts,
        check: ssh.host_key_check,
        agent,
        passphrase_env: ssh.passphrase_env.clone(),
        connect_timeout,
        keepalive,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base(host: &str) -> SshConfig {
        SshConfig {
            host: host.to_string(),
            port: None,
            user: None,
            identity_file: None,
            passphrase_env: None,
            known_hosts: Some(PathBuf::from("/nonexistent/known_hosts")),
            host_key_check: HostKeyCheck::Strict,
            jump: None,
            ssh_config: None,
            identity_agent: Some(PathBuf::from("none")),
            connect_timeout: None,
            keepalive_interval: None,
        }
    }

    #[test]
    fn hop_syntax() {
        assert_eq!(
            parse_hop("admin@bastion.example.org:22").unwrap(),
            (Some("admin".into()), "bastion.example.org".into(), Some(22))
        );
        assert_eq!(parse_hop("b").unwrap(), (None, "b".into(), None));
        assert_eq!(
            parse_hop("ssh://u@[::1]:2200").unwrap(),
            (Some("u".into()), "::1".into(), Some(2200))
        );
        assert!(parse_hop("u@h:0").is_err());
        assert!(parse_hop("u@h:x").is_err());
        assert!(parse_hop("@h").is_err());
    }

    #[test]
    fn alias_from_ssh_config_and_explicit_keys_win() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config");
        std::fs::write(
            &cfg,
            "Host synapse\n  HostName 10.10.10.4\n  User root\n  Port 2222\n  IdentityFile /k/id_x\n  ProxyJump admin@bastion:22\n  SomethingUnknown yes\n\nHost bastion\n  HostName 192.0.2.1\n  Port 2200\n",
        )
        .unwrap();
        let mut s = base("synapse");
        s.ssh_config = Some(cfg.clone());
        let t = resolve(&s).unwrap();
        assert_eq!(t.dest.host, "10.10.10.4");
        assert_eq!(t.dest.port, 2222);
        assert_eq!(t.dest.user, "root");
        assert_eq!(t.dest.identity_files, vec![PathBuf::from("/k/id_x")]);
        assert_eq!(t.jumps.len(), 1);
        assert_eq!(t.jumps[0].host, "192.0.2.1");
        assert_eq!(t.jumps[0].port, 22, "explicit hop port wins");
        assert_eq!(t.jumps[0].user, "admin");

        s.port = Some(22);
        s.user = Some("ops".into());
        s.jump = Some("none".into());
        let t = resolve(&s).unwrap();
        assert_eq!((t.dest.port, t.dest.user.as_str()), (22, "ops"));
        assert!(t.jumps.is_empty());
    }

    #[test]
    fn missing_explicit_ssh_config_is_an_error() {
        let mut s = base("h");
        s.ssh_config = Some(PathBuf::from("/nonexistent/ssh_config"));
        let e = resolve(&s).unwrap_err().to_string();
        assert!(e.contains("ssh-config"), "{e}");
    }
}
