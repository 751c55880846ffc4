//! The checks of a journald unit and of a container: the command the
//! capture will run answers (over SSH inside `exec-prefix`, or here), the
//! unit has records, the container exists and runs.

use super::Line;
use crate::config::{LogKind, ServerLogConfig};
use crate::domain::log_format::{Format, decode};
use crate::sources::ssh::{RemoteShell, shell_quote};
use chrono::Utc;

/// What a log entry reads, for messages.
pub fn describe(log: &ServerLogConfig) -> String {
    match log.kind() {
        LogKind::File(p) => format!("'{}'", p.display()),
        LogKind::Journal { unit, .. } => format!("the journal of '{unit}'"),
        LogKind::Docker { container, .. } => format!("container '{container}'"),
    }
}

/// Runs `argv` (on the SSH host inside `exec-prefix`, or here): exit
/// status, stdout, and a one-line complaint.
async fn run(
    sh: Option<&RemoteShell>,
    log: &ServerLogConfig,
    argv: &[String],
) -> Result<(bool, String, String), String> {
    match sh {
        Some(sh) => {
            let mut cmd = String::new();
            if let Some(p) = log
                .exec_prefix
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                cmd.push_str(p);
                cmd.push(' ');
            }
            let words: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            cmd.push_str(&words.join(" "));
            let out = sh.run(&cmd, b"").await.map_err(|e| e.to_string())?;
            Ok((
                out.ok(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                out.complaint(),
            ))
        }
        None => {
            let out = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| format!("cannot run '{}' here: {e}", argv[0]))?;
            let complaint = String::from_utf8_lossy(&out.stderr)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            Ok((
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                complaint,
            ))
        }
    }
}

/// A journald unit or a container, checked with the command the capture
/// runs (without following).
pub async fn followed(sh: Option<&RemoteShell>, log: &ServerLogConfig, what: &str) -> Line {
    let host = sh.map_or("this machine".to_string(), |s| s.label.clone());
    match log.kind() {
        LogKind::File(_) => Line::pass(what, describe(log)),
        LogKind::Journal { unit, directory } => {
            let j = crate::sources::journald::Journald {
                unit: unit.to_string(),
                directory: directory.map(|d| d.to_path_buf()),
                backfill: 1,
                since: None,
            };
            let mut argv = j.base_argv();
            argv.extend(["-n".to_string(), "1".to_string()]);
            match run(sh, log, &argv).await {
                Err(e) => Line::fail(what, e, "check the SSH connection and exec-prefix"),
                Ok((false, _, complaint)) => Line::fail(
                    what,
                    format!("journalctl on {host}: {complaint}"),
                    "the SSH user needs journalctl and the right to read the journal (group systemd-journal or adm)",
                ),
                Ok((true, out, _)) => match last_record_age(&out) {
                    Some(age) => Line::pass(
                        what,
                        format!(
                            "the journal of '{unit}' on {host} is readable, its last record {age} s old"
                        ),
                    ),
                    None => Line::fail(
                        what,
                        format!("the journal on {host} has no record of unit '{unit}'"),
                        "set journal-unit to the unit Synapse runs as (`systemctl list-units 'matrix-synapse*'`)",
                    ),
                },
            }
        }
        LogKind::Docker { container, command } => {
            let mut argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
            argv.extend(
                ["inspect", "--format", "{{.State.Status}}", container].map(str::to_string),
            );
            match run(sh, log, &argv).await {
                Err(e) => Line::fail(what, e, "check the SSH connection and docker-command"),
                Ok((true, out, _)) if out.trim() == "running" => Line::pass(
                    what,
                    format!("container '{container}' on {host} is running"),
                ),
                Ok((true, out, _)) => Line::fail(
                    what,
                    format!("container '{container}' on {host} is {}", out.trim()),
                    "start it: the capture follows it once it runs",
                ),
                Ok((false, _, complaint)) => Line::fail(
                    what,
                    format!("{} on {host}: {complaint}", argv[0]),
                    "set container to the name `docker ps` shows, and docker-command to the engine's command",
                ),
            }
        }
    }
}

/// Seconds since the last journald record in `out`, by our clock.
fn last_record_age(out: &str) -> Option<i64> {
    let line = out.lines().rev().find(|l| l.starts_with('{'))?;
    let at = decode(Format::Journal, line.as_bytes()).wrapper_at?;
    Some((Utc::now() - at).num_seconds().max(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_age_of_the_last_record() {
        let now = chrono::Utc::now().timestamp_micros() - 5_000_000;
        let out = format!(
            "{{\"__CURSOR\":\"s=1\",\"__REALTIME_TIMESTAMP\":\"{now}\",\"MESSAGE\":\"x\"}}\n"
        );
        let age = super::last_record_age(&out);
        assert!(age.is_some_and(|a| (5..=7).contains(&a)), "{age:?}");
        assert_eq!(super::last_record_age(""), None);
    }
}
