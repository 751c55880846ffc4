//! Client artefacts (diag reports, HAR files), as the capture reads them
//! and the App and the journal keep them.

use crate::domain::Ke;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A client entry from a diag report, or from a console log (Element Web,
/// Element Call: then `line` is where the entry starts in `file`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// File name inside `client/`.
    pub file: String,
    pub index: usize,
    pub at: Option<DateTime<Utc>>,
    pub level: Option<String>,
    pub ke: Option<Ke>,
    pub error: bool,
    /// Redacted.
    pub message: String,
    /// The entry's first line in a console log (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl ClientEntry {
    /// Where the entry is in the bundle: `client/<file>:<line>` in a
    /// console log, `client/<file>#entries[<index>]` in a diag report.
    pub fn reference(&self) -> String {
        match self.line {
            Some(n) => format!("client/{}:{n}", self.file),
            None => format!("client/{}#entries[{}]", self.file, self.index),
        }
    }
}

/// A client artefact picked up (diag report or HAR), already copied
/// (redacted) into the journal.
///
/// The journal keeps a diag report's entries by reference: its line has
/// `copy` (the copy in the bundle, its sha256 and size) and no `entries`,
/// which are read again from the copy where they are needed (`recover`,
/// the timeline). A journal written before had every entry inline (no
/// `copy`), and is read as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientArtifact {
    /// File name inside `client/`.
    pub file: String,
    pub kind: ArtifactKind,
    pub arrived_at: DateTime<Utc>,
    pub bytes: u64,
    /// Why it could not be parsed (kept verbatim, listed as unparsed).
    pub unparsed: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Empty in the journal when `copy` is there.
    #[serde(default)]
    pub entries: Vec<ClientEntry>,
    /// KE-3 event ids harvested from `Error decrypting event (id=…)`.
    pub ke3_event_ids: Vec<String>,
    /// `keys/upload` conflicts found in a HAR: (entry index, key).
    pub har_conflicts: Vec<HarConflict>,
    pub har_keys_upload: usize,
    /// A HAR's users: the localparts its requests' access tokens name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_users: Vec<String>,
    /// Console logs: the earliest entry time (what the log reaches back to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<DateTime<Utc>>,
    /// What could not be read while the rest was (a truncated tar or gzip,
    /// a log without timestamps): kept as raw bytes, shown in the status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub redactions: u64,
    /// `redactions` by rule name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub redactions_by_rule: std::collections::BTreeMap<String, u64>,
    /// In the journal: where the entries are (instead of `entries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<ClientCopy>,
}

/// The copy of a client file in the bundle that holds an artefact's
/// entries, as the journal names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCopy {
    /// Relative to the bundle (`client/<file>`).
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// How many entries were read from it.
    pub entries: usize,
}

impl ClientArtifact {
    /// An artefact with nothing read from it yet.
    pub fn new(file: String, kind: ArtifactKind, arrived_at: DateTime<Utc>) -> ClientArtifact {
        ClientArtifact {
            file,
            kind,
            arrived_at,
            bytes: 0,
            unparsed: None,
            user_id: None,
            device_id: None,
            entries: Vec::new(),
            ke3_event_ids: Vec::new(),
            har_conflicts: Vec::new(),
            har_keys_upload: 0,
            token_users: Vec::new(),
            first_at: None,
            warnings: Vec::new(),
            redactions: 0,
            redactions_by_rule: Default::default(),
            copy: None,
        }
    }

    /// The artefact as the journal keeps it when its entries are in `copy`:
    /// everything but the entries.
    pub fn by_reference(&self, copy: ClientCopy) -> ClientArtifact {
        ClientArtifact {
            file: self.file.clone(),
            kind: self.kind,
            arrived_at: self.arrived_at,
            bytes: self.bytes,
            unparsed: self.unparsed.clone(),
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            entries: Vec::new(),
            ke3_event_ids: self.ke3_event_ids.clone(),
            har_conflicts: self.har_conflicts.clone(),
            har_keys_upload: self.har_keys_upload,
            token_users: self.token_users.clone(),
            first_at: self.first_at,
            warnings: self.warnings.clone(),
            redactions: self.redactions,
            redactions_by_rule: self.redactions_by_rule.clone(),
            copy: Some(copy),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarConflict {
    pub entry_index: usize,
    pub at: Option<DateTime<Utc>>,
    pub status: u16,
    pub algorithm: String,
    pub key_id: String,
    /// The `key` field the client uploaded for that id (from the request).
    pub uploaded_key: Option<String>,
    /// The `key` field the server said it holds.
    pub stored_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    Diag,
    Har,
    /// Element Web's or Element Call's console logs (`rageshake.tar`, a
    /// rageshake report folder, `*.log`, `*.log.gz`).
    ElementLog,
    Other,
}
