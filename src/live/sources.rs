//! Starts the sources the config names.

use crate::config::Config;
use crate::sources::Input;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Spawns every configured source; returns their descriptions for the
/// manifest.
pub fn spawn_all(
    cfg: &Config,
    _backfill: Option<u64>,
    _tx: &mpsc::Sender<Input>,
    _shutdown: &watch::Receiver<bool>,
    _tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Vec<Value>> {
    let desc = Vec::new();
    if cfg.server_log.is_none() && cfg.client.downloads.is_none() && cfg.database.is_none() {
        return Err(crate::analyze::UsageError(
            "the config names no source: set [server-log] path, [client] downloads or [database] url".into(),
        )
        .into());
    }
    Ok(desc)
}
