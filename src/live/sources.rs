//! Starts the sources the config names.

use super::tasks::Tasks;
use crate::analyze::UsageError;
use crate::config::{Config, DatabaseConfig};
use crate::sources::{Input, SourceStatus};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

/// What the sources need besides the config.
pub struct SourceContext<'a> {
    pub backfill: Option<u64>,
    pub headless: bool,
    pub tx: &'a mpsc::Sender<Input>,
    pub shutdown: &'a watch::Receiver<bool>,
    pub ke3_ids: &'a watch::Receiver<Vec<String>>,
    /// Our user and device as the App learnt them (for the database).
    pub subject: &'a watch::Receiver<crate::sources::db::LearntSubject>,
    /// Asks the operator for a key's passphrase (the console); `None`
    /// headless, where only `[ssh] passphrase-env` can supply one.
    pub prompt: Option<crate::sources::ssh::PassphrasePrompt>,
}

/// Spawns every configured source under its name; returns their
/// descriptions for the manifest. A source that cannot work at all ends
/// its task with the reason.
pub fn spawn_all(
    cfg: &Config,
    ctx: SourceContext<'_>,
    tasks: &mut Tasks,
) -> anyhow::Result<Vec<Value>> {
    let mut desc = Vec::new();
    if cfg.server_log.is_empty()
        && cfg.client.downloads.is_none()
        && cfg.database.is_none()
        && cfg.metrics.is_none()
    {
        return Err(UsageError(
            "the config names no source: set [server-log] path, [client] downloads or [database] url".into(),
        )
        .into());
    }
    for (log, name) in cfg.server_log.iter().zip(cfg.server_log.names()) {
        let mut log = log.clone();
        if let Some(n) = ctx.backfill {
            log.backfill = n;
        }
        desc.push(describe_log(&log, &name, cfg.ssh.as_ref()));
        spawn_log(log, name, cfg.ssh.clone(), &ctx, tasks);
    }
    if let Some(dir) = &cfg.client.downloads {
        let dir = crate::config::expand_tilde(dir);
        desc.push(
            json!({"name": "downloads", "kind": "folder", "path": dir.display().to_string()}),
        );
        spawn_downloads(dir, cfg.client.include_existing, &ctx, tasks);
    }
    if let Some(db) = &cfg.database {
        if db.via_ssh && cfg.ssh.is_none() {
            return Err(
                UsageError("[database] via-ssh = true needs an [ssh] section".into()).into(),
            );
        }
        desc.push(json!({
            "name": "database",
            "kind": "postgres",
            "url": crate::sources::db::redact_url(&db.url),
            "via_ssh": db.via_ssh,
        }));
        let (db, call, tx, shutdown, ids, subject) = (
            db.clone(),
            cfg.call.clone(),
            ctx.tx.clone(),
            ctx.shutdown.clone(),
            ctx.ke3_ids.clone(),
            ctx.subject.clone(),
        );
        let ssh = cfg.ssh.clone().filter(|_| db.via_ssh);
        let prompt = ctx.prompt.clone();
        tasks.spawn("database", async move {
            let _forward;
            let over = match ssh {
                Some(ssh) => match tunnel(&ssh, &db, &tx, shutdown.clone(), prompt).await {
                    Some(f) => {
                        let port = f.local_addr().port();
                        _forward = f;
                        Some(("127.0.0.1".to_string(), port))
                    }
                    None => return Ok(()),
                },
                None => None,
            };
            crate::sources::db::run_poller_learning(db, call, tx, shutdown, over, ids, subject)
                .await;
            Ok(())
        });
    }
    if let Some(m) = &cfg.metrics {
        desc.push(super::metrics::description(m));
        tasks.adopt(
            "metrics",
            super::metrics::spawn(
                m,
                cfg.ssh.clone(),
                ctx.prompt.clone(),
                ctx.tx.clone(),
                ctx.shutdown.clone(),
            ),
        );
    }
    Ok(desc)
}

/// Opens the SSH tunnel to the database, retrying until it works or the
/// capture stops.
async fn tunnel(
    ssh: &crate::config::SshConfig,
    db: &DatabaseConfig,
    tx: &mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
    prompt: Option<crate::sources::ssh::PassphrasePrompt>,
) -> Option<crate::sources::ssh::LocalForward> {
    let status = |s: SourceStatus| Input::status_now("database", s);
    let (host, port) = match crate::sources::db::database_target(db) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx
                .send(status(SourceStatus::Error {
                    reason: e.to_string(),
                }))
                .await;
            return None;
        }
    };
    let mut attempt = 0u32;
    loop {
        let _ = tx.send(status(SourceStatus::Connecting)).await;
        match crate::sources::ssh::open_local_forward(
            ssh,
            &host,
            port,
            crate::sources::ssh::ForwardFrom::SshHost,
            prompt.clone(),
        )
        .await
        {
            Ok(f) => return Some(f),
            Err(e) => {
                attempt += 1;
                let wait = crate::sources::db::backoff(attempt);
                let _ = tx
                    .send(status(SourceStatus::Reconnecting {
                        attempt,
                        next_try_ms: wait.as_millis() as u64,
                        reason: format!("SSH tunnel: {e}"),
                    }))
                    .await;
                if e.is_fatal() {
                    let _ = tx
                        .send(status(SourceStatus::Error {
                            reason: format!("SSH tunnel: {e}"),
                        }))
                        .await;
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return None,
                }
            }
        }
    }
}

/// What the manifest says of a log source: its name, kind, what it reads
/// and over which host.
fn describe_log(
    log: &crate::config::ServerLogConfig,
    name: &str,
    ssh: Option<&crate::config::SshConfig>,
) -> Value {
    use crate::config::LogKind;
    let kind = log.kind();
    let mut d = json!({"name": name, "kind": kind.name()});
    let obj = d.as_object_mut();
    if let Some(obj) = obj {
        match kind {
            LogKind::File(p) => {
                obj.insert("path".into(), json!(p.display().to_string()));
            }
            LogKind::Journal { unit, directory } => {
                obj.insert("unit".into(), json!(unit));
                if let Some(dir) = directory {
                    obj.insert("directory".into(), json!(dir.display().to_string()));
                }
            }
            LogKind::Docker { container, command } => {
                obj.insert("container".into(), json!(container));
                obj.insert("command".into(), json!(command));
            }
        }
        if let Some(ssh) = ssh {
            obj.insert("over".into(), json!("ssh"));
            obj.insert("host".into(), json!(ssh.host));
            obj.insert("port".into(), json!(ssh.port));
            obj.insert("jump".into(), json!(ssh.jump));
            obj.insert("exec_prefix".into(), json!(log.exec_prefix));
        }
    }
    d
}

/// Starts one log source under its name: a file (local, or over SSH with
/// the follow script), a unit's journal or a container's output (local,
/// or over SSH).
fn spawn_log(
    log: crate::config::ServerLogConfig,
    name: String,
    ssh: Option<crate::config::SshConfig>,
    ctx: &SourceContext<'_>,
    tasks: &mut Tasks,
) {
    use crate::config::LogKind;
    use crate::sources::command::{CommandSource, Follow, Runner};
    let (tx, shutdown, prompt) = (ctx.tx.clone(), ctx.shutdown.clone(), ctx.prompt.clone());
    let headless = ctx.headless;
    /// A journal or container, followed under the log-source seam; an
    /// `Err` ends the task as a failure (see [`Tasks`]).
    async fn follow<F: Follow>(
        follow: F,
        ssh: Option<crate::config::SshConfig>,
        exec_prefix: Option<String>,
        name: String,
        headless: bool,
        io: (mpsc::Sender<Input>, watch::Receiver<bool>),
        prompt: Option<crate::sources::ssh::PassphrasePrompt>,
    ) -> Result<(), String> {
        let (tx, shutdown) = io;
        let runner = match ssh {
            None => Runner::Local,
            Some(ssh) => {
                crate::sources::ssh::RemoteCommands::new(&ssh, prompt, headless, exec_prefix)
                    .map(|r| Runner::Ssh(Box::new(r)))
                    .map_err(|e| e.to_string())?
            }
        };
        let source = CommandSource { follow, runner };
        crate::sources::log_source::supervise(source, &name, tx, shutdown)
            .await
            .map_err(|e| e.to_string())
    }
    let task = name.clone();
    let exec_prefix = log.exec_prefix.clone();
    match log.kind() {
        LogKind::File(path) => match ssh {
            Some(ssh) => {
                let opts = crate::sources::ssh::RunOptions {
                    fail_fast: headless,
                    ..Default::default()
                };
                tasks.spawn(&task, async move {
                    crate::sources::ssh::run_named_log(ssh, log, &name, tx, shutdown, prompt, opts)
                        .await
                        .map_err(|e| e.to_string())
                });
            }
            None => {
                let path = crate::config::expand_tilde(path);
                tasks.spawn(&task, async move {
                    crate::sources::file::run_named_file_tail(
                        path,
                        log.backfill,
                        &name,
                        tx,
                        shutdown,
                    )
                    .await;
                    Ok(())
                });
            }
        },
        LogKind::Journal { unit, directory } => {
            let j = crate::sources::journald::Journald {
                unit: unit.to_string(),
                directory: directory.map(|d| {
                    if ssh.is_some() {
                        d.to_path_buf()
                    } else {
                        crate::config::expand_tilde(d)
                    }
                }),
                backfill: log.backfill,
                since: Some(chrono::Utc::now()),
            };
            let io = (tx, shutdown);
            tasks.spawn(
                &task,
                follow(j, ssh, exec_prefix, name, headless, io, prompt),
            );
        }
        LogKind::Docker { container, command } => {
            let mut d = crate::sources::docker::Docker::new(container, command, log.backfill);
            d.since = Some(chrono::Utc::now());
            let io = (tx, shutdown);
            tasks.spawn(
                &task,
                follow(d, ssh, exec_prefix, name, headless, io, prompt),
            );
        }
    }
}

fn spawn_downloads(
    dir: std::path::PathBuf,
    include_existing: bool,
    ctx: &SourceContext<'_>,
    tasks: &mut Tasks,
) {
    let run = crate::sources::downloads::run_downloads(
        dir,
        include_existing,
        ctx.tx.clone(),
        ctx.shutdown.clone(),
    );
    tasks.spawn(crate::sources::downloads::SOURCE, async move {
        run.await;
        Ok(())
    });
}
