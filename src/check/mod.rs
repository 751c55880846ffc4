//! `callcap check`: everything the capture will need, tested before the
//! call, one line per check with ✓ or ✗ and what fixes it. The console runs
//! the same checks in the background at its start and shows what failed in
//! the status line. The checks only look: no host key is recorded, nothing
//! is written on the server or in the database.

mod logs;
mod remote;

use crate::config::{Config, HostKeyCheck, LogKind, expand_tilde};
use crate::sources::ssh::{HostKeys, RemoteShell, SshError};
use std::path::Path;

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ok: bool,
    /// What was checked (`SSH`, `server log`, `database` …).
    pub what: String,
    pub detail: String,
    /// What to do when it failed.
    pub fix: Option<String>,
}

impl Line {
    pub fn pass(what: &str, detail: impl Into<String>) -> Line {
        Line {
            ok: true,
            what: what.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(what: &str, detail: impl Into<String>, fix: impl Into<String>) -> Line {
        Line {
            ok: false,
            what: what.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `✓ what: detail` or `✗ what: detail — fix: …`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} {}: {}",
            if self.ok { "✓" } else { "✗" },
            self.what,
            self.detail
        );
        if let Some(f) = &self.fix {
            s.push_str(" — fix: ");
            s.push_str(f);
        }
        s
    }
}

/// `callcap check` found problems (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} checks failed")]
pub struct Failed {
    pub failed: usize,
    pub total: usize,
}

/// Where the checks run: `callcap check`, or the console's start (which
/// leaves out what its own sources report better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Preflight,
    Background,
}

/// Runs every check the config calls for.
pub async fn run(cfg: &Config, mode: Mode) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut shell: Option<RemoteShell> = None;
    let mut ssh_ok = false;
    if let Some(ssh) = &cfg.ssh {
        let (line, sh) = check_ssh(ssh, mode).await;
        ssh_ok = sh.is_some();
        if let Some(l) = line {
            lines.push(l);
        }
        shell = sh;
    }
    let several = cfg.server_log.entries.len() > 1;
    for (log, name) in cfg.server_log.iter().zip(cfg.server_log.names()) {
        let what = if several {
            format!("server log {name}")
        } else {
            "server log".to_string()
        };
        match (&cfg.ssh, &shell) {
            (Some(_), Some(sh)) => match log.kind() {
                LogKind::File(_) => lines.extend(remote::server_log(sh, log, &what).await),
                _ => lines.push(logs::followed(Some(sh), log, &what).await),
            },
            (Some(_), None) => lines.push(Line::fail(
                &what,
                format!("{} not checked: no SSH connection", logs::describe(log)),
                "fix the SSH line above first",
            )),
            (None, _) => match log.kind() {
                LogKind::File(_) => lines.extend(remote::local_server_log(log, &what)),
                _ => lines.push(logs::followed(None, log, &what).await),
            },
        }
    }
    if let Some(sh) = &shell
        && !cfg.server_log.is_empty()
    {
        lines.push(remote::clock_offset(sh).await);
    }
    if let Some(db) = &cfg.database {
        if db.via_ssh && !ssh_ok {
            lines.push(Line::fail(
                "database",
                "not checked: the SSH tunnel needs the SSH connection above",
                "fix the SSH line above first",
            ));
        } else {
            lines.extend(remote::database(cfg, db).await);
        }
    }
    if let Some(dir) = &cfg.client.downloads {
        lines.push(downloads(&expand_tilde(dir)));
    }
    if let Some(dl) = &cfg.debug_loggers {
        if cfg.ssh.is_some() && shell.is_none() {
            lines.push(Line::fail(
                "debug loggers",
                format!(
                    "'{}' not checked: no SSH connection",
                    dl.log_config.display()
                ),
                "fix the SSH line above first",
            ));
        } else {
            lines.extend(remote::debug_loggers(cfg, mode).await);
        }
    }
    if let Some(sh) = shell {
        sh.close().await;
    }
    lines
}

/// `callcap check`: prints one line per check; true when all passed.
pub async fn run_and_print(cfg: &Config, path: &Path) -> Result<(), Failed> {
    println!("checking {}", path.display());
    let lines = run(cfg, Mode::Preflight).await;
    for l in &lines {
        println!("{}", l.render());
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failed {
            failed,
            total: lines.len(),
        })
    }
}

async fn check_ssh(
    ssh: &crate::config::SshConfig,
    mode: Mode,
) -> (Option<Line>, Option<RemoteShell>) {
    match RemoteShell::connect(ssh, None, HostKeys::ReadOnly).await {
        Ok(sh) => {
            let line = Line::pass(
                "SSH",
                format!("{} reachable, host key known, logged in", sh.label),
            );
            (Some(line), Some(sh))
        }
        Err(SshError::HostKey(m))
            if m.starts_with("unknown host key")
                && ssh.host_key_check == HostKeyCheck::AcceptNew =>
        {
            let line = Line::pass(
                "SSH",
                format!(
                    "{m} (host-key-check = \"accept-new\": the capture records it at its first connection; check the fingerprint first)"
                ),
            );
            (Some(line), None)
        }
        // The console's own connection asks for a key's passphrase; this one
        // cannot, so its refusal says nothing there.
        Err(SshError::Auth { .. }) if mode == Mode::Background => (None, None),
        Err(e) => {
            let fix = match &e {
                SshError::HostKey(_) => "see above: verify the fingerprint out of band, then add it to known_hosts".to_string(),
                SshError::Auth { .. } | SshError::Passphrase(_) => {
                    "check [ssh] user and identity-file (or the agent), and that the key is in the server's authorized_keys".to_string()
                }
                SshError::Config(_) => "fix the [ssh] section of the config".to_string(),
                _ => "check [ssh] host and port, and that sshd runs and is reachable from here".to_string(),
            };
            (Some(Line::fail("SSH", e.to_string(), fix)), None)
        }
    }
}

fn downloads(dir: &Path) -> Line {
    match std::fs::read_dir(dir) {
        Ok(_) => Line::pass(
            "downloads folder",
            format!("'{}' exists and is readable", dir.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Line::fail(
            "downloads folder",
            format!("'{}' does not exist", dir.display()),
            "set [client] downloads to the folder the browser saves to, or create it",
        ),
        Err(e) => Line::fail(
            "downloads folder",
            format!("cannot read '{}': {e}", dir.display()),
            "make it readable by this user, or set [client] downloads to another folder",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_pass_or_fail_and_the_fix_on_one_line() {
        assert_eq!(
            Line::pass("downloads folder", "'/x' exists").render(),
            "✓ downloads folder: '/x' exists"
        );
        let l = Line::fail("server log", "'/y' does not exist", "set [server-log] path");
        assert_eq!(
            l.render(),
            "✗ server log: '/y' does not exist — fix: set [server-log] path"
        );
        assert!(!l.render().contains('\n'));
    }

    #[test]
    fn a_missing_downloads_folder_fails() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(downloads(tmp.path()).ok);
        let l = downloads(&tmp.path().join("nope"));
        assert!(!l.ok);
        assert!(l.detail.contains("does not exist"), "{l:?}");
    }
}
