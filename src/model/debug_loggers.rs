//! A step of the DEBUG loggers' raise or revert, as the runner reports it,
//! the App keeps it and the journal records it.

use serde::{Deserialize, Serialize};

/// One step of the raise/revert, as an event and a journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum DebugLoggersUpdate {
    /// `--debug-loggers` asked for it (the capture's start).
    Requested {
        log_config: String,
        loggers: Vec<String>,
        host: String,
    },
    /// DEBUG written and Synapse reloaded; `previous` is each logger's level
    /// before (`None`: inherited).
    Raised {
        previous: Vec<(String, Option<String>)>,
    },
    /// A DEBUG line of one of the loggers reached the capture.
    Confirmed {
        line: u64,
        text: String,
    },
    /// None yet, this long after the raise.
    Waiting {
        seconds: u64,
    },
    RaiseFailed {
        reason: String,
    },
    Reverted {
        detail: String,
    },
    /// Loud: the loggers may still be at DEBUG; `fix` is the command that
    /// puts them back.
    RevertFailed {
        reason: String,
        fix: String,
    },
}
