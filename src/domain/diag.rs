//! The client's `lotus-crypto-diag-<ts>.json` report (runbook §5).
//! Field spelling is not pinned: camelCase and snake_case are accepted, `ts`
//! may be epoch milliseconds or ISO-8601, unknown fields are kept, and an
//! entry's KE is re-derived from its message when `ke` is missing.

use super::ke::Ke;
use super::signatures::Matcher;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiagReport {
    pub sdk_version: Option<String>,
    pub device_id: Option<String>,
    pub user_id: Option<String>,
    pub sync_state: Option<String>,
    pub crypto_ready: Option<bool>,
    /// Per-KE counts as the report states them.
    pub counts: Vec<(Ke, u64)>,
    pub entries: Vec<DiagEntry>,
    /// Top-level fields not understood above.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiagEntry {
    /// Position in the report's `entries` array (for `#entries[N]` references).
    pub index: usize,
    pub ts: Option<DateTime<Utc>>,
    pub level: Option<String>,
    pub ke: Option<Ke>,
    /// `ke` was derived from the message, not given.
    pub ke_derived: bool,
    pub signature: Option<String>,
    pub message: String,
    pub extra: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a diag report: {0}")]
    NotAReport(String),
}

pub fn parse_diag(_bytes: &[u8], _matcher: &Matcher) -> Result<DiagReport, DiagError> {
    Err(DiagError::NotAReport("not implemented".into()))
}

/// KE-3 event ids from `Error decrypting event (id=$… …)` messages.
pub fn ke3_event_id(_message: &str) -> Option<String> {
    None
}
