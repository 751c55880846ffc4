//! Synapse's latency metrics as the metrics source reports them, the App
//! keeps them and the journal records them: per servlet, the histogram of
//! the requests in a stretch of time.

use crate::domain::histogram::Histogram;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Synapse's p99 per minute and servlet, in the bundle.
pub const LATENCY_CSV: &str = "metrics/latency.csv";
/// The kept lines of each scrape, one block per scrape.
pub const SCRAPES_FILE: &str = "metrics/scrapes.prom";
/// Prometheus's answers, one JSON object a line.
pub const ANSWERS_FILE: &str = "metrics/prometheus.jsonl";

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
    /// `scrape` or `prometheus` (named `source`: the journal's own `kind`
    /// names the entry).
    #[serde(rename = "source")]
    pub kind: MetricsKind,
    /// The endpoint, without a password.
    pub url: String,
    #[serde(flatten)]
    pub reading: MetricsReading,
    /// The raw scrape or answer behind it.
    pub raw: Option<RawRef>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::journal_entry::JournalEntry;

    #[test]
    fn a_reading_goes_through_the_journal_unchanged() {
        let at = DateTime::from_timestamp(1_782_842_460, 0).unwrap();
        let h = Histogram::from_buckets(vec![(0.5, 2.0), (f64::INFINITY, 3.0)]).unwrap();
        for reading in [
            MetricsReading::Baseline,
            MetricsReading::Increase {
                since: at,
                servlets: [("KeyUploadServlet".to_string(), h.clone())].into(),
                reset: Some("Synapse restarted".into()),
            },
            MetricsReading::Minutes {
                minutes: vec![MinuteHistograms {
                    minute: at,
                    servlets: [("*x".to_string(), h.clone())].into(),
                }],
                partial: None,
                problems: vec!["1 × value 'NaN' left out".into()],
            },
        ] {
            let e = JournalEntry::Metrics {
                at,
                report: Box::new(MetricsReport {
                    kind: MetricsKind::Prometheus,
                    url: "http://127.0.0.1:9090".into(),
                    reading,
                    raw: Some(RawRef {
                        file: ANSWERS_FILE.into(),
                        offset: 10,
                        bytes: 20,
                    }),
                }),
            };
            let line = serde_json::to_string(&e).unwrap();
            assert_eq!(line.matches("\"kind\"").count(), 1, "{line}");
            assert_eq!(
                serde_json::from_str::<JournalEntry>(&line).unwrap(),
                e,
                "{line}"
            );
        }
    }
}
