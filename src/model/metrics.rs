//! Synapse's latency metrics as the metrics source reports them, the App
//! keeps them and the journal records them: per servlet, the histogram of
//! the requests in a stretch of time.

use crate::domain::histogram::Histogram;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsKind {
    /// Synapse's own metrics listener, read every `interval`.
    Scrape,
    /// A Prometheus that scrapes Synapse, asked per minute.
    Prometheus,
}

impl MetricsKind {
    pub fn name(self) -> &'static str {
        match self {
            MetricsKind::Scrape => "scrape",
            MetricsKind::Prometheus => "prometheus",
        }
    }
}

/// Where a reading's raw text is in the journal folder (and the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRef {
    pub file: String,
    pub offset: u64,
    pub bytes: u64,
}

/// One reading of the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reading", rename_all = "kebab-case")]
pub enum MetricsReading {
    /// The first scrape (or the first after an outage): what later ones are
    /// counted from; nothing to count yet.
    Baseline,
    /// The requests since the scrape at `since`, per servlet (servlets
    /// without requests left out), counted in the minute of this reading.
    Increase {
        since: DateTime<Utc>,
        servlets: BTreeMap<String, Histogram>,
        /// Synapse restarted in between: why callcap thinks so.
        reset: Option<String>,
    },
    /// Prometheus's per-minute histograms; each minute's replaces what was
    /// known of it (a later answer has seen more).
    Minutes {
        minutes: Vec<MinuteHistograms>,
        /// The minute still running, asked for up to the reading's time.
        partial: Option<DateTime<Utc>>,
        problems: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteHistograms {
    pub minute: DateTime<Utc>,
    pub servlets: BTreeMap<String, Histogram>,
}

/// A reading with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub kind: MetricsKind,
    /// The endpoint, without a password.
    pub url: String,
    #[serde(flatten)]
    pub reading: MetricsReading,
    /// The raw scrape or answer behind it.
    pub raw: Option<RawRef>,
}
