//! The checks that talk to the server: the log (over SSH or local), the
//! clock, the database and the DEBUG loggers' log config.

use super::{Line, Mode};
use crate::config::{Config, DatabaseConfig, ServerLogConfig};
use crate::domain::log_format::Format;
use crate::domain::synapse_log::{LogClock, parse_record};
use crate::sources::ssh::{HostKeys, RemoteShell, shell_quote};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::time::Instant;

/// A log not written for this long is probably not the one Synapse writes.
const STALE_S: i64 = 15 * 60;
/// A record this far from its file's modification time has the wrong zone.
const ZONE_SLACK_S: i64 = 120;
/// Clock offsets up to this are fine.
const CLOCK_SLACK_MS: i64 = 2000;

/// `mtime size` of the file, the server's `date`, then its last lines.
const LOG_PROBE: &str = r#"p=$1
[ -e "$p" ] || { echo "'$p' does not exist" >&2; exit 3; }
[ -r "$p" ] || { echo "'$p' is not readable by $(id -un 2>/dev/null)" >&2; exit 4; }
stat -L -c '%Y %s' "$p" || exit 5
date +%s
tail -c 65536 "$p" | tail -n 50"#;

pub async fn server_log(sh: &RemoteShell, log: &ServerLogConfig, what: &str) -> Vec<Line> {
    let path = log.path.clone().unwrap_or_default().display().to_string();
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
    cmd.push_str(&format!(
        "sh -c {} callcap {}",
        shell_quote(LOG_PROBE),
        shell_quote(&path)
    ));
    let out = match sh.run(&cmd, b"").await {
        Ok(o) => o,
        Err(e) => {
            return vec![Line::fail(
                what,
                format!("cannot look at '{path}': {e}"),
                "check the SSH connection and [server-log] exec-prefix",
            )];
        }
    };
    if !out.ok() {
        return vec![Line::fail(
            what,
            format!("{} on {}", out.complaint(), sh.label),
            "set [server-log] path to the file Synapse writes (the `filename` of the file handler in its log config), readable by the SSH user",
        )];
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let head: Vec<i64> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let now: Option<i64> = lines.next().and_then(|l| l.trim().parse().ok());
    let (Some(&mtime), Some(&size), Some(now)) = (head.first(), head.get(1), now) else {
        return vec![Line::fail(
            what,
            format!(
                "cannot read the state of '{path}' on {}: {}",
                sh.label,
                out.complaint()
            ),
            "the server needs coreutils' stat, date and tail",
        )];
    };
    let tail: Vec<&str> = lines.collect();
    judge_log(
        what,
        &path,
        &sh.label,
        (mtime, size.max(0) as u64, now),
        &tail,
        &log.timezone,
    )
}

/// The same for a log on this machine.
pub fn local_server_log(log: &ServerLogConfig, what: &str) -> Vec<Line> {
    let path = crate::config::expand_tilde(log.path.as_deref().unwrap_or(std::path::Path::new("")));
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            return vec![Line::fail(
                what,
                format!("cannot read '{shown}': {e}"),
                "set [server-log] path to the file Synapse writes (the `filename` of the file handler in its log config)",
            )];
        }
    };
    let tail = match read_tail(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Line::fail(
                what,
                format!("cannot read '{shown}': {e}"),
                "make it readable by this user",
            )];
        }
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let lines: Vec<&str> = tail.lines().collect();
    judge_log(
        what,
        &shown,
        "this machine",
        (mtime, meta.len(), Utc::now().timestamp()),
        &lines,
        &log.timezone,
    )
}

fn read_tail(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(65536)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn ago(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// Readable, recently written, and its records' time zone plausible: the
/// last record's time (read in `[server-log] timezone`) against the file's
/// modification time, which the server's clock stamped.
fn judge_log(
    what: &str,
    path: &str,
    host: &str,
    (mtime, size, now): (i64, u64, i64),
    tail: &[&str],
    zone: &str,
) -> Vec<Line> {
    let mut out = Vec::new();
    let age = now - mtime;
    let zone_what = match what.strip_prefix("server log ") {
        Some(name) => format!("log time zone ({name})"),
        None => "log time zone".to_string(),
    };
    let zone_what = zone_what.as_str();
    if age > STALE_S {
        out.push(Line::fail(
            what,
            format!("'{path}' on {host} is readable but was last written {} ago", ago(age)),
            "is this the file Synapse writes now? Check the `filename` of the file handler in Synapse's log config (or whether it logs to journald or Docker instead)",
        ));
    } else {
        out.push(Line::pass(
            what,
            format!(
                "'{path}' on {host} readable, {size} bytes, last written {} ago",
                ago(age.max(0))
            ),
        ));
    }
    // livekit-server's and lk-jwt-service's logs: not Synapse's format,
    // and no [server-log] timezone to check (zap writes UTC or an offset).
    if let Some(service) =
        crate::domain::sfu_log::sniff_service(tail.iter().rev().copied()).filter(|s| s.is_sfu())
    {
        out.push(Line::pass(
            zone_what,
            format!(
                "a {} log: its times are read as it writes them",
                service.name()
            ),
        ));
        return out;
    }
    let joined = tail.join("\n");
    if crate::domain::log_format::sniff(joined.as_bytes()) == Format::SynapseJson {
        out.push(json_times(zone_what, tail));
        return out;
    }
    let last: Option<NaiveDateTime> = tail
        .iter()
        .rev()
        .find_map(|l| parse_record(l.as_bytes()).map(|r| r.at));
    let Some(last) = last else {
        out.push(Line::fail(
            zone_what,
            "no record in Synapse's default format among the log's last lines",
            "callcap reads Synapse's default format (`%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s`); use it in the file handler's formatter",
        ));
        return out;
    };
    let clock = match LogClock::new(zone) {
        Ok(c) => c,
        Err(e) => {
            out.push(Line::fail(zone_what, e, "fix [server-log] timezone"));
            return out;
        }
    };
    let at: DateTime<Utc> = clock.to_utc(last);
    let off = mtime - at.timestamp();
    if off.abs() <= ZONE_SLACK_S {
        out.push(Line::pass(
            zone_what,
            format!(
                "{zone} fits: the last record ({last}) is {off} s before the file was last written by the server's clock"
            ),
        ));
    } else {
        // Records are local time: how far off, to the quarter hour.
        let q = ((off as f64) / 900.0).round() as i64 * 15;
        let (sign, q) = if q < 0 { ('-', -q) } else { ('+', q) };
        out.push(Line::fail(
            zone_what,
            format!(
                "with timezone = \"{zone}\" the last record ({last}) is {} off the file's modification time by the server's clock: the log's zone is probably {zone}{sign}{:02}:{:02}",
                ago(off.abs()),
                q / 60,
                q % 60
            ),
            "set [server-log] timezone to the zone Synapse's host writes its log in (`timedatectl` or `date +%Z` there)",
        ));
    }
    out
}

/// A log in Synapse's JSON format: its records carry UTC times (Terse and
/// Gcp formatters), or none (`JsonFormatter`).
fn json_times(what: &str, tail: &[&str]) -> Line {
    let timed = tail
        .iter()
        .rev()
        .filter_map(|l| crate::domain::log_format::JsonRecord::parse(l.as_bytes()))
        .find_map(|r| r.time);
    match timed {
        Some(t) => Line::pass(
            what,
            format!("Synapse JSON records with UTC times (the last at {t})"),
        ),
        None => Line::fail(
            what,
            "Synapse JSON records without a time (JsonFormatter): the capture cannot place them in time",
            "use synapse.logging.TerseJsonFormatter, or read the log through journald or docker, which stamp each line",
        ),
    }
}

/// The server's clock against ours, the fastest of three round trips.
pub async fn clock_offset(sh: &RemoteShell) -> Line {
    let mut best: Option<(u128, i64)> = None;
    for _ in 0..3 {
        let sent = Utc::now();
        let started = Instant::now();
        let Ok(out) = sh.run("date +%s.%N", b"").await else {
            continue;
        };
        let rtt = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(remote) = parse_secs(text.trim()) else {
            continue;
        };
        let mid = sent.timestamp_millis() as f64 + rtt.as_secs_f64() * 500.0;
        let off = (remote * 1000.0 - mid).round() as i64;
        if best.is_none_or(|(r, _)| rtt.as_millis() < r) {
            best = Some((rtt.as_millis(), off));
        }
    }
    match best {
        None => Line::fail(
            "clock offset",
            format!("cannot read the clock of {}", sh.label),
            "the server needs `date`",
        ),
        Some((rtt, off)) if off.abs() <= CLOCK_SLACK_MS => Line::pass(
            "clock offset",
            format!("{off:+} ms (±{} ms) to {}", rtt.div_ceil(2), sh.label),
        ),
        Some((rtt, off)) => Line::fail(
            "clock offset",
            format!("{off:+} ms (±{} ms) to {}", rtt.div_ceil(2), sh.label),
            "sync both clocks (chrony or systemd-timesyncd): callcap moves the server log's times by the measured offset, but the database's timestamps and the client's reports keep theirs",
        ),
    }
}

fn parse_secs(s: &str) -> Option<f64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole.parse().ok()?;
    let frac = if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) {
        let d = &frac[..frac.len().min(9)];
        d.parse::<f64>().ok()? / 10f64.powi(d.len() as i32)
    } else {
        0.5
    };
    Some(whole as f64 + frac)
}

/// Reachable (through the tunnel when `via-ssh`), the tables and columns
/// the queries use present, and the role unable to write.
pub async fn database(cfg: &Config, db: &DatabaseConfig) -> Vec<Line> {
    use crate::sources::db::{ConnectSpec, DbSession, query_specs};
    let specs = match query_specs() {
        Ok(s) => s,
        Err(e) => return vec![Line::fail("database", e.to_string(), "a build defect")],
    };
    let _forward;
    let tunnel = match (&cfg.ssh, db.via_ssh) {
        (Some(ssh), true) => {
            let (host, port) = match crate::sources::db::database_target(db) {
                Ok(t) => t,
                Err(e) => return vec![Line::fail("database", e.to_string(), "fix [database] url")],
            };
            match crate::sources::ssh::open_local_forward(
                ssh,
                &host,
                port,
                crate::sources::ssh::ForwardFrom::SshHost,
                None,
            )
            .await
            {
                Ok(f) => {
                    let port = f.local_addr().port();
                    _forward = f;
                    Some(("127.0.0.1".to_string(), port))
                }
                Err(e) => {
                    return vec![Line::fail(
                        "database",
                        format!("the SSH tunnel to {host}:{port}: {e}"),
                        "check that the SSH host can reach the database's address in [database] url",
                    )];
                }
            }
        }
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok();
    let spec = match ConnectSpec::new(db, tunnel.as_ref().map(|(h, p)| (h.as_str(), *p)), &env) {
        Ok(s) => s,
        Err(e) => return vec![Line::fail("database", e.to_string(), "fix [database] url")],
    };
    let via = if tunnel.is_some() {
        " through the SSH tunnel"
    } else {
        ""
    };
    let (session, _notes) = match DbSession::open(&spec, &specs).await {
        Ok(s) => s,
        Err(e) => {
            return vec![Line::fail(
                "database",
                format!("{e}{via}"),
                "check [database] url, the password (password-env, PGPASSWORD or ~/.pgpass) and pg_hba.conf",
            )];
        }
    };
    let mut out = vec![Line::pass(
        "database",
        format!(
            "connected{via} to '{}' as '{}' (PostgreSQL {})",
            session.info.database, session.info.role, session.info.server_version
        ),
    )];
    let skipped: Vec<String> = session
        .plan
        .iter()
        .filter_map(|p| p.skipped.as_ref().map(|w| format!("{}: {w}", p.spec.name)))
        .collect();
    let dropped: Vec<String> = session
        .plan
        .iter()
        .flat_map(|p| p.dropped.iter().map(|d| d.to_string()))
        .collect();
    if skipped.is_empty() {
        let also = if dropped.is_empty() {
            String::new()
        } else {
            format!(
                " (absent here and left out: {}; the queries adapt)",
                dropped.join(", ")
            )
        };
        out.push(Line::pass(
            "database tables",
            format!(
                "every table and column the {} queries need is present{also}",
                session.plan.len()
            ),
        ));
    } else {
        out.push(Line::fail(
            "database tables",
            format!("queries that cannot run: {}", skipped.join("; ")),
            "connect to Synapse's database (the name in [database] url) with a role that may SELECT its tables: docs/db-readonly-role.md",
        ));
    }
    match session.info.write_warning() {
        None => out.push(Line::pass(
            "database role",
            format!(
                "'{}' cannot INSERT, UPDATE, DELETE or TRUNCATE the tables read",
                session.info.role
            ),
        )),
        Some(w) => out.push(Line::fail(
            "database role",
            w.trim_start_matches("warning: ").to_string(),
            "use a SELECT-only role: docs/db-readonly-role.md",
        )),
    }
    session.close().await;
    out
}

/// The log config readable, writable and editable, the reload command's
/// program present, and no other callcap's raise in it.
pub async fn debug_loggers(cfg: &Config, mode: Mode) -> Vec<Line> {
    use crate::debug_loggers::{Target, shell::Shell, yaml};
    let Some(t) = Target::from_config(cfg) else {
        return Vec::new();
    };
    let what = "debug loggers";
    let sh = match Shell::open(
        t.ssh.as_ref(),
        t.exec_prefix.as_deref(),
        None,
        HostKeys::ReadOnly,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return vec![Line::fail(what, e.message, "fix the SSH line above first")];
        }
    };
    let mut out = Vec::new();
    match sh.probe(&t.log_config, &t.reload).await {
        Ok(Ok(())) => out.push(Line::pass(
            what,
            format!(
                "'{}' on {} readable and writable; the reload command's program is present",
                t.log_config,
                sh.label()
            ),
        )),
        Ok(Err(why)) => out.push(Line::fail(
            what,
            why,
            "set [debug-loggers] log-config to Synapse's log_config (homeserver.yaml names it), writable by the SSH user, and reload to a command that works there",
        )),
        Err(e) => out.push(Line::fail(what, e.message, "check the SSH connection")),
    }
    if out.iter().all(|l| l.ok) {
        match sh.read(&t.log_config).await {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match (yaml::find_marker(&text), mode) {
                    (Some(m), Mode::Preflight) => out.push(Line::fail(
                        what,
                        format!("another callcap's raise is in it: \"{m}\""),
                        "let that callcap exit (it reverts), or run `callcap recover` on its journal",
                    )),
                    _ => {
                        if let Err(e) = yaml::raise(&text, &t.loggers, yaml::MARKER_PREFIX) {
                            out.push(Line::fail(
                                what,
                                format!("'{}' cannot be edited: {e}", t.log_config),
                                "point [debug-loggers] log-config at Synapse's logging dictConfig YAML",
                            ));
                        }
                    }
                }
            }
            Err(e) => out.push(Line::fail(what, e.message, "make it readable")),
        }
    }
    sh.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str =
        "2026-06-30 18:00:00,000 - synapse.access.http.8008 - 643 - INFO - POST-1 - x";

    #[test]
    fn a_log_written_in_local_time_read_as_utc_is_caught() {
        // 18:00 in the log, written at 16:00:03 UTC by the server's clock.
        let mtime = DateTime::parse_from_rfc3339("2026-06-30T16:00:03Z")
            .map(|t| t.timestamp())
            .unwrap_or(0);
        let l = judge_log(
            "server log",
            "/l",
            "h",
            (mtime, 10, mtime + 5),
            &[REC],
            "UTC",
        );
        assert!(l[0].ok, "{l:?}");
        assert!(!l[1].ok);
        assert!(l[1].detail.contains("probably UTC-02:00"), "{:?}", l[1]);
        let l = judge_log(
            "server log",
            "/l",
            "h",
            (mtime, 10, mtime + 5),
            &[REC],
            "Europe/Berlin",
        );
        assert!(l[1].ok, "{l:?}");
    }

    #[test]
    fn a_stale_log_fails() {
        let l = judge_log("server log", "/l", "h", (0, 10, 3600 * 5), &[REC], "UTC");
        assert!(!l[0].ok);
        assert!(l[0].detail.contains("5 h ago"), "{:?}", l[0]);
    }

    #[test]
    fn an_sfu_log_is_not_held_to_synapse_s_format() {
        let lk = "2026-06-30T18:00:00.000Z\tINFO\tlivekit\trtc/room.go:1\tparticipant active\t{\"participant\": \"x\"}";
        let l = judge_log(
            "server log livekit",
            "/l",
            "h",
            (100, 10, 105),
            &[lk],
            "UTC",
        );
        assert!(l.iter().all(|l| l.ok), "{l:?}");
        assert!(l[1].detail.contains("a livekit log"), "{:?}", l[1]);
    }
}
