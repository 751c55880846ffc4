//! Starts the sources the config names.

use crate::analyze::UsageError;
use crate::config::Config;
use crate::sources::Input;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Spawns every configured source; returns their descriptions for the
/// manifest.
pub fn spawn_all(
    cfg: &Config,
    _backfill: Option<u64>,
    tx: &mpsc::Sender<Input>,
    shutdown: &watch::Receiver<bool>,
    ke3_ids: &watch::Receiver<Vec<String>>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Vec<Value>> {
    let mut desc = Vec::new();
    if cfg.server_log.is_none() && cfg.client.downloads.is_none() && cfg.database.is_none() {
        return Err(UsageError(
            "the config names no source: set [server-log] path, [client] downloads or [database] url".into(),
        )
        .into());
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
        tasks.push(tokio::spawn(crate::sources::db::run_poller(
            db.clone(),
            cfg.call.clone(),
            tx.clone(),
            shutdown.clone(),
            None,
            ke3_ids.clone(),
        )));
    }
    Ok(desc)
}
