//! Starts the metrics source (`[metrics]`): its own task, beside the log
//! sources and the database poller.

use crate::config::{MetricsConfig, SshConfig};
use crate::domain::prometheus_api::without_password;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The manifest's description: which source, and its URL.
pub fn description(m: &MetricsConfig) -> Value {
    let (kind, url) = match (&m.scrape, &m.prometheus) {
        (Some(u), _) => ("scrape", u),
        (None, Some(u)) => ("prometheus", u),
        (None, None) => ("none", &String::new()),
    };
    json!({
        "name": crate::sources::metrics::SOURCE,
        "kind": kind,
        "url": without_password(url),
        "via_ssh": m.via_ssh,
        "interval": m.interval.to_string(),
        "selector": m.selector,
    })
}

pub fn spawn(
    m: &MetricsConfig,
    ssh: Option<SshConfig>,
    prompt: Option<crate::sources::ssh::PassphrasePrompt>,
    tx: tokio::sync::mpsc::Sender<crate::sources::Input>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(crate::sources::metrics::run(
        crate::sources::metrics::MetricsTask {
            cfg: m.clone(),
            ssh,
            prompt,
            tx,
            shutdown,
        },
    ))
}
