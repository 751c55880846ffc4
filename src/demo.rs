//! The demo: a recorded five-minute call that goes wrong, shipped inside the
//! binary (`assets/demo/`), laid out as a recording and replayed.

use crate::app::event::{ArtifactKind, ClientArtifact};
use crate::live::replay::Recording;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

const LOG: &[u8] = include_bytes!("../assets/demo/homeserver.log");
const SCHEDULE: &str = include_str!("../assets/demo/schedule.json");
const FILES: &[(&str, &[u8])] = &[
    (
        "db-first.json",
        include_bytes!("../assets/demo/db-first.json"),
    ),
    (
        "db-last.json",
        include_bytes!("../assets/demo/db-last.json"),
    ),
    (
        "lotus-crypto-diag-1782842680000.json",
        include_bytes!("../assets/demo/lotus-crypto-diag-1782842680000.json"),
    ),
];

#[derive(Deserialize)]
struct Schedule {
    user_id: String,
    device_id: String,
    participants: Vec<String>,
    timezone: String,
    client: Vec<Item>,
    db: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    at: DateTime<Utc>,
    file: String,
}

fn file(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// Writes the demo into `dir` as a recording and opens it.
pub fn materialize(dir: &Path) -> anyhow::Result<Recording> {
    let s: Schedule = serde_json::from_str(SCHEDULE)?;
    for sub in ["server", "client", "db"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("server/homeserver.log"), LOG)?;
    let first = s.db.first().map(|i| i.at).unwrap_or_else(Utc::now);
    let mut entries = vec![JournalEntry::Start {
        at: first,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        mode: "demo".into(),
        user_id: Some(s.user_id.clone()),
        device_id: Some(s.device_id.clone()),
        participants: s.participants.clone(),
        timezone: s.timezone.clone(),
    }];
    for c in &s.client {
        let data = file(&c.file).ok_or_else(|| anyhow::anyhow!("demo file {} missing", c.file))?;
        std::fs::write(dir.join("client").join(&c.file), data)?;
        entries.push(JournalEntry::Client {
            at: c.at,
            artifact: Box::new(ClientArtifact {
                bytes: data.len() as u64,
                ..ClientArtifact::new(c.file.clone(), ArtifactKind::Diag, c.at)
            }),
        });
    }
    for (i, d) in s.db.iter().enumerate() {
        let data = file(&d.file).ok_or_else(|| anyhow::anyhow!("demo file {} missing", d.file))?;
        let name = if i == 0 {
            "db/first.json"
        } else {
            "db/last.json"
        };
        std::fs::write(dir.join(name), data)?;
        entries.push(JournalEntry::DbPoll {
            at: d.at,
            duration_ms: 12,
            changes: Vec::new(),
            problems: BTreeMap::new(),
        });
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(dir.join("journal.jsonl"), text)?;
    Recording::open(dir).map_err(|e| anyhow::anyhow!(e))
}
