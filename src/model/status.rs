//! A source's connection state, as the sources report it, the App keeps
//! it and the journal records it.

use serde::{Deserialize, Serialize};

/// A source's connection state, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SourceStatus {
    Connecting,
    Authenticating,
    /// Bytes can arrive.
    Live,
    /// Connected, but nothing arrives and keepalives fail.
    Stalled {
        reason: String,
    },
    Reconnecting {
        attempt: u32,
        next_try_ms: u64,
        reason: String,
    },
    Error {
        reason: String,
    },
    /// Finished (end of a file being replayed, or shut down).
    Stopped,
}

impl SourceStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SourceStatus::Connecting => "connecting",
            SourceStatus::Authenticating => "authenticating",
            SourceStatus::Live => "live",
            SourceStatus::Stalled { .. } => "stalled",
            SourceStatus::Reconnecting { .. } => "reconnecting",
            SourceStatus::Error { .. } => "error",
            SourceStatus::Stopped => "stopped",
        }
    }
}
