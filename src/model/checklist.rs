//! A checklist stamp, as the App makes it and the journal records it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One stamp: a tick or an untick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    pub done: bool,
    /// `operator` or `callcap`.
    pub by: String,
    pub evidence: Option<String>,
}

impl Stamp {
    /// A tick callcap made itself, with what it observed.
    pub fn observed(at: DateTime<Utc>, evidence: &str) -> Stamp {
        Stamp {
            at,
            done: true,
            by: "callcap".into(),
            evidence: Some(evidence.to_string()),
        }
    }
}
