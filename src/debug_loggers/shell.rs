//! Where the log config lives: on the `[ssh]` host, or on this machine
//! without `[ssh]`; either way inside `[server-log] exec-prefix` (e.g.
//! `pct exec 151 --`). The remote side needs a POSIX `sh` and coreutils
//! (`cat`, `sha256sum`, `mktemp`, `wc`, `cut`, `tr`).

use crate::config::SshConfig;
use crate::sources::ssh::{
    Credentials, HostKeys, Output, PassphrasePrompt, RemoteShell, SshError, shell_quote,
};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Prints the file; exit 3 missing, 4 unreadable.
const READ: &str = r#"p=$1
[ -e "$p" ] || { echo "'$p' does not exist" >&2; exit 3; }
[ -r "$p" ] || { echo "'$p' is not readable by $(id -un 2>/dev/null)" >&2; exit 4; }
exec cat -- "$p""#;

/// Replaces the file's content in place (same inode, owner and mode) with
/// stdin, only if its current SHA-256 is one of `$2` (space-separated), and
/// only once all of stdin (`$3` bytes, SHA-256 `$4`) has arrived: a dropped
/// link leaves the file as it was. Exit 8: the file is not what was expected.
const WRITE: &str = r#"p=$1 olds=$2 size=$3 new=$4
for t in cat sha256sum mktemp wc cut tr; do
  command -v $t >/dev/null 2>&1 || { echo "the server has no '$t' command" >&2; exit 6; }
done
sum() { sha256sum | cut -d' ' -f1; }
[ -w "$p" ] || { echo "'$p' is not writable by $(id -un 2>/dev/null)" >&2; exit 4; }
t=$(mktemp "${TMPDIR:-/tmp}/callcap-log-config.XXXXXX") || { echo "mktemp failed" >&2; exit 5; }
trap 'rm -f "$t"' EXIT
cat > "$t"
[ "$(wc -c < "$t" | tr -d ' ')" = "$size" ] || { echo "the new content arrived incomplete" >&2; exit 7; }
[ "$(sum < "$t")" = "$new" ] || { echo "the new content arrived damaged" >&2; exit 7; }
cur=$(sum < "$p")
case " $olds " in
  *" $cur "*) ;;
  *) echo "'$p' changed since callcap read it (sha256 $cur)" >&2; exit 8 ;;
esac
cat "$t" > "$p" || { echo "cannot write '$p'" >&2; exit 9; }
[ "$(sum < "$p")" = "$new" ] || { echo "'$p' does not hold what was written" >&2; exit 9; }"#;

/// What `callcap check` wants to know: exit 3 missing, 4 unreadable,
/// 5 unwritable, 6 a tool missing (named on stderr).
const PROBE: &str = r#"p=$1 cmd=$2
[ -e "$p" ] || { echo "'$p' does not exist" >&2; exit 3; }
[ -r "$p" ] || { echo "'$p' is not readable by $(id -un 2>/dev/null)" >&2; exit 4; }
[ -w "$p" ] || { echo "'$p' is not writable by $(id -un 2>/dev/null)" >&2; exit 5; }
for t in "$cmd" cat sha256sum mktemp wc cut tr; do
  command -v "$t" >/dev/null 2>&1 || { echo "$t"; exit 6; }
done
exit 0"#;

/// Exit status of [`WRITE`] when the file is not what was expected.
pub const CHANGED: u32 = 8;

enum Host {
    Ssh(Box<RemoteShell>),
    Local,
}

/// A place to run the log config's commands.
pub struct Shell {
    host: Host,
    prefix: Option<String>,
    timeout: Duration,
}

/// A failure, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    pub message: String,
    pub retry: bool,
}

impl std::fmt::Display for ShellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SshError> for ShellError {
    fn from(e: SshError) -> Self {
        ShellError {
            retry: !e.is_fatal(),
            message: e.to_string(),
        }
    }
}

impl Shell {
    pub async fn open(
        ssh: Option<&SshConfig>,
        exec_prefix: Option<&str>,
        prompt: Option<PassphrasePrompt>,
        keys: HostKeys,
    ) -> Result<Shell, ShellError> {
        let creds = match ssh {
            Some(ssh) => Some(Credentials::new(ssh, prompt)?),
            None => None,
        };
        Shell::open_with(ssh, exec_prefix, creds.as_ref(), keys).await
    }

    /// [`Shell::open`] with credentials shared across connections.
    pub async fn open_with(
        ssh: Option<&SshConfig>,
        exec_prefix: Option<&str>,
        creds: Option<&Credentials>,
        keys: HostKeys,
    ) -> Result<Shell, ShellError> {
        let host = match (ssh, creds) {
            (Some(ssh), Some(c)) => {
                Host::Ssh(Box::new(RemoteShell::connect_with(ssh, c, keys).await?))
            }
            (Some(ssh), None) => Host::Ssh(Box::new(RemoteShell::connect(ssh, None, keys).await?)),
            (None, _) => Host::Local,
        };
        Ok(Shell {
            host,
            prefix: exec_prefix
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            timeout: Duration::from_secs(30),
        })
    }

    /// `user@host:port`, or `this machine`.
    pub fn label(&self) -> String {
        match &self.host {
            Host::Ssh(s) => s.label.clone(),
            Host::Local => "this machine".into(),
        }
    }

    /// Notes of the connection (a recorded host key).
    pub fn notes(&self) -> Vec<String> {
        match &self.host {
            Host::Ssh(s) => s.notes.clone(),
            Host::Local => Vec::new(),
        }
    }

    /// `sh -c 'script'` inside the prefix.
    fn sh(&self, script: &str) -> String {
        let mut cmd = String::new();
        if let Some(p) = &self.prefix {
            cmd.push_str(p);
            cmd.push(' ');
        }
        cmd.push_str("sh -c ");
        cmd.push_str(&shell_quote(script));
        cmd
    }

    /// The command line for `script` with `args`, inside the prefix.
    fn command_line(&self, script: &str, args: &[&str]) -> String {
        let mut cmd = self.sh(script);
        cmd.push_str(" callcap");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        cmd
    }

    async fn exec(&self, cmd: &str, stdin: &[u8]) -> Result<Output, ShellError> {
        match &self.host {
            Host::Ssh(s) => Ok(s.run(cmd, stdin).await?),
            Host::Local => {
                let run = async {
                    let mut child = tokio::process::Command::new("sh")
                        .arg("-c")
                        .arg(cmd)
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .kill_on_drop(true)
                        .spawn()?;
                    if let Some(mut i) = child.stdin.take() {
                        i.write_all(stdin).await?;
                    }
                    let out = child.wait_with_output().await?;
                    Ok::<_, std::io::Error>(Output {
                        status: out.status.code().and_then(|c| u32::try_from(c).ok()),
                        stdout: out.stdout,
                        stderr: out.stderr,
                    })
                };
                match tokio::time::timeout(self.timeout, run).await {
                    Ok(Ok(o)) => Ok(o),
                    Ok(Err(e)) => Err(ShellError {
                        message: format!("cannot run sh: {e}"),
                        retry: false,
                    }),
                    Err(_) => Err(ShellError {
                        message: "the command timed out".into(),
                        retry: true,
                    }),
                }
            }
        }
    }

    /// The file's bytes.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, ShellError> {
        let out = self.exec(&self.command_line(READ, &[path]), b"").await?;
        if out.ok() {
            return Ok(out.stdout);
        }
        Err(ShellError {
            message: format!(
                "cannot read '{path}' on {}: {}",
                self.label(),
                describe(&out)
            ),
            retry: out.status.is_none(),
        })
    }

    /// Replaces the file's content with `data` if it currently hashes to
    /// one of `expected` (hex SHA-256).
    pub async fn write(
        &self,
        path: &str,
        expected: &[&str],
        data: &[u8],
    ) -> Result<(), ShellError> {
        let olds = expected.join(" ");
        let size = data.len().to_string();
        let new = sha256_hex(data);
        let cmd = self.command_line(WRITE, &[path, &olds, &size, &new]);
        let out = self.exec(&cmd, data).await?;
        if out.ok() {
            return Ok(());
        }
        Err(ShellError {
            message: format!(
                "cannot write '{path}' on {}: {}",
                self.label(),
                describe(&out)
            ),
            // The file was not as expected, or cannot be written: trying
            // again will not change that.
            retry: out.status.is_none() || out.status == Some(7),
        })
    }

    /// Runs the reload command.
    pub async fn reload(&self, command: &str) -> Result<(), ShellError> {
        let out = self.exec(&self.sh(command), b"").await?;
        if out.ok() {
            return Ok(());
        }
        Err(ShellError {
            message: format!(
                "the reload command `{command}` failed on {}: {}",
                self.label(),
                describe(&out)
            ),
            retry: out.status.is_none(),
        })
    }

    /// For `callcap check`: `Ok(())` when the file is readable and writable
    /// and the reload command's program and the tools exist; else why not.
    pub async fn probe(&self, path: &str, reload: &str) -> Result<Result<(), String>, ShellError> {
        let program = reload
            .split_whitespace()
            .find(|w| !w.contains('='))
            .unwrap_or("")
            .to_string();
        let out = self
            .exec(&self.command_line(PROBE, &[path, &program]), b"")
            .await?;
        Ok(match out.status {
            Some(0) => Ok(()),
            Some(6) => {
                let tool = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if tool == program {
                    Err(format!(
                        "the reload command's program '{program}' is not on the PATH on {}",
                        self.label()
                    ))
                } else {
                    Err(format!("the server has no '{tool}' command (coreutils)"))
                }
            }
            _ => Err(describe(&out)),
        })
    }

    pub async fn close(self) {
        if let Host::Ssh(s) = self.host {
            s.close().await;
        }
    }
}

fn describe(out: &Output) -> String {
    let why = out.complaint();
    match (out.status, why.is_empty()) {
        (Some(s), true) => format!("exit status {s}"),
        (Some(s), false) => format!("{why} (exit status {s})"),
        (None, true) => "no exit status (the link dropped?)".into(),
        (None, false) => format!("{why} (no exit status)"),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn local() -> Shell {
        Shell::open(None, None, None, HostKeys::ReadOnly)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_write_happens_only_over_the_expected_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.yaml");
        std::fs::write(&p, b"a: 1\n").unwrap();
        let path = p.to_str().unwrap();
        let sh = local().await;
        assert_eq!(sh.read(path).await.unwrap(), b"a: 1\n");
        let e = sh
            .write(path, &[&sha256_hex(b"other")], b"b: 2\n")
            .await
            .unwrap_err();
        assert!(e.message.contains("changed since callcap read it"), "{e}");
        assert!(!e.retry);
        assert_eq!(std::fs::read(&p).unwrap(), b"a: 1\n");
        sh.write(path, &["x", &sha256_hex(b"a: 1\n")], b"b: 2\n")
            .await
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"b: 2\n");
        let e = sh.read(&format!("{path}.missing")).await.unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[tokio::test]
    async fn the_reload_runs_inside_the_prefix_and_fails_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("reloaded");
        let sh = Shell::open(None, Some("env CALLCAP_T=1"), None, HostKeys::ReadOnly)
            .await
            .unwrap();
        sh.reload(&format!("echo $CALLCAP_T > '{}'", mark.display()))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&mark).unwrap(), "1\n");
        let e = sh.reload("echo nope >&2; exit 3").await.unwrap_err();
        assert!(e.message.contains("nope (exit status 3)"), "{e}");
    }
}
