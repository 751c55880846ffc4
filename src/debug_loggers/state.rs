//! The raise's record in the journal folder (`debug-loggers/`), written and
//! synced before the log config is touched, so `callcap recover` can put it
//! back after a `kill -9`: `state.json` (where, which loggers, their previous
//! levels, the hashes), `log-config.original` (the file's bytes) and, once
//! put back, `reverted.json`.

use super::Target;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const DIR: &str = "debug-loggers";
pub const STATE: &str = "state.json";
pub const ORIGINAL: &str = "log-config.original";
pub const DONE: &str = "reverted.json";
const FORMAT: &str = "callcap-debug-loggers/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    pub target: Target,
    /// The marker comment put at the top of the raised file.
    pub marker: String,
    pub started_at: DateTime<Utc>,
    pub previous: Vec<(String, Option<String>)>,
    pub original_sha256: String,
    pub raised_sha256: String,
    /// The revert's intermediate file (previous levels written explicitly).
    pub explicit_sha256: String,
}

impl Record {
    pub fn new(
        target: Target,
        marker: String,
        previous: Vec<(String, Option<String>)>,
        hashes: [String; 3],
    ) -> Record {
        let [original_sha256, raised_sha256, explicit_sha256] = hashes;
        Record {
            format: FORMAT.into(),
            target,
            marker,
            started_at: Utc::now(),
            previous,
            original_sha256,
            raised_sha256,
            explicit_sha256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub at: DateTime<Utc>,
    pub detail: String,
}

pub fn dir(journal: &Path) -> PathBuf {
    journal.join(DIR)
}

/// Writes `path` durably: a temporary file, synced, renamed, folder synced.
fn write_durably(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Records the raise (the original bytes first) before anything changes.
pub fn save(journal: &Path, rec: &Record, original: &[u8]) -> io::Result<()> {
    let d = dir(journal);
    std::fs::create_dir_all(&d)?;
    write_durably(&d.join(ORIGINAL), original)?;
    let json = serde_json::to_vec_pretty(rec).map_err(io::Error::other)?;
    write_durably(&d.join(STATE), &json)
}

/// The raise recorded in `folder` (a journal or a bundle), with the
/// original bytes; `None` when nothing was raised from it.
pub fn load(folder: &Path) -> io::Result<Option<(Record, Vec<u8>)>> {
    let d = dir(folder);
    let state = match std::fs::read(d.join(STATE)) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let rec: Record = serde_json::from_slice(&state)
        .map_err(|e| io::Error::other(format!("'{}': {e}", d.join(STATE).display())))?;
    let original = std::fs::read(d.join(ORIGINAL))?;
    if super::shell::sha256_hex(&original) != rec.original_sha256 {
        return Err(io::Error::other(format!(
            "'{}' does not match the checksum recorded in {STATE}",
            d.join(ORIGINAL).display()
        )));
    }
    Ok(Some((rec, original)))
}

/// Whether the raise recorded in `folder` was put back (or never happened).
pub fn done(folder: &Path) -> Option<Done> {
    let data = std::fs::read(dir(folder).join(DONE)).ok()?;
    serde_json::from_slice(&data).ok()
}

pub fn mark_done(folder: &Path, detail: &str) -> io::Result<()> {
    let d = dir(folder);
    std::fs::create_dir_all(&d)?;
    let json = serde_json::to_vec_pretty(&Done {
        at: Utc::now(),
        detail: detail.to_string(),
    })
    .map_err(io::Error::other)?;
    write_durably(&d.join(DONE), &json)
}
