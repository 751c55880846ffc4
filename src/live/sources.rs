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
    if cfg.server_log.is_none()
        && cfg.client.downloads.is_none()
        && cfg.database.is_none()
        && cfg.metrics.is_none()
    {
        return Err(UsageError(
            "the config names no source: set [server-log] path, [client] downloads or [database] url".into(),
        )
        .into());
    }
    if let Some(log) = &cfg.server_log {
        let mut log = log.clone();
        if let Some(n) = ctx.backfill {
            log.backfill = n;
        }
        match &cfg.ssh {
            Some(ssh) => {
                desc.push(json!({
                    "name": "server-log",
                    "kind": "ssh",
                    "host": ssh.host,
                    "port": ssh.port,
                    "jump": ssh.jump,
                    "path": log.path.display().to_string(),
                    "exec_prefix": log.exec_prefix,
                }));
                let opts = crate::sources::ssh::RunOptions {
                    fail_fast: ctx.headless,
                    ..Default::default()
                };
                let (ssh, tx, shutdown, prompt) = (
                    ssh.clone(),
                    ctx.tx.clone(),
                    ctx.shutdown.clone(),
                    ctx.prompt.clone(),
                );
                tasks.spawn("server-log", async move {
                    crate::sources::ssh::run_server_log_with(ssh, log, tx, shutdown, prompt, opts)
                        .await
                        .map_err(|e| e.to_string())
                });
            }
            None => {
                desc.push(json!({
                    "name": "server-log",
                    "kind": "file",
                    "path": log.path.display().to_string(),
                }));
                spawn_file_tail(&log, &ctx, tasks);
            }
        }
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
        let (db, call, tx, shutdown, ids) = (
            db.clone(),
            cfg.call.clone(),
            ctx.tx.clone(),
            ctx.shutdown.clone(),
            ctx.ke3_ids.clone(),
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
            crate::sources::db::run_poller(db, call, tx, shutdown, over, ids).await;
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

fn spawn_file_tail(
    log: &crate::config::ServerLogConfig,
    ctx: &SourceContext<'_>,
    tasks: &mut Tasks,
) {
    let run = crate::sources::file::run_file_tail(
        crate::config::expand_tilde(&log.path),
        log.backfill,
        ctx.tx.clone(),
        ctx.shutdown.clone(),
    );
    tasks.spawn(crate::sources::file::SOURCE, async move {
        run.await;
        Ok(())
    });
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
