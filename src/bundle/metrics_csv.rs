//! `metrics/latency.csv`: Synapse's own p99 per minute and servlet, as the
//! metrics source read it (the raw scrapes or Prometheus answers lie beside
//! it for anyone to re-check).

use crate::app::App;
use crate::app::metrics::LatencyRow;
use std::fmt::Write;

pub use crate::model::metrics::{ANSWERS_FILE, LATENCY_CSV, SCRAPES_FILE};

pub const HEADER: &str =
    "minute,servlet,p99_seconds,p99_capped,requests,slow_requests,slow_bound_seconds";

/// A count: whole when it is (a scrape's), else two decimals (Prometheus's
/// `increase` extrapolates).
fn count(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

fn seconds(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

/// One CSV line (no newline).
pub fn line(r: &LatencyRow, timeout_s: f64) -> String {
    let (p99, capped) = match r.p99 {
        Some(q) if q.capped => (seconds(q.seconds), format!(">={}", seconds(q.seconds))),
        Some(q) => (seconds(q.seconds), String::new()),
        None => (String::new(), String::new()),
    };
    let bound = r.histogram.bound_at_or_above(timeout_s);
    format!(
        "{},{},{p99},{capped},{},{},{}",
        r.minute.format("%Y-%m-%dT%H:%M:%SZ"),
        r.servlet,
        count(r.requests),
        count(r.histogram.known_at_or_above(timeout_s)),
        bound.map(seconds).unwrap_or_default()
    )
}

/// The whole file, or `None` when no metrics were read.
pub fn render(app: &App) -> Option<String> {
    app.metrics.source.as_ref()?;
    let timeout_s = f64::from(app.restart_timeout_ms) / 1000.0;
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    for r in app.metrics.rows() {
        let _ = writeln!(out, "{}", line(&r, timeout_s));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::histogram::{Histogram, Quantile};
    use chrono::DateTime;

    #[test]
    fn a_row_states_its_cap_in_a_column_of_its_own() {
        let h =
            Histogram::from_buckets(vec![(2.5, 1.0), (10.0, 1.0), (f64::INFINITY, 3.0)]).unwrap();
        let r = LatencyRow {
            minute: DateTime::from_timestamp(1_782_842_400, 0).unwrap(),
            servlet: "*".into(),
            p99: h.quantile(0.99),
            requests: h.total,
            histogram: h,
        };
        assert_eq!(
            r.p99,
            Some(Quantile {
                seconds: 10.0,
                capped: true
            })
        );
        assert_eq!(line(&r, 2.0), "2026-06-30T18:00:00Z,*,10,>=10,3,2,2.5");
        let empty = LatencyRow {
            p99: None,
            requests: 0.0,
            histogram: Histogram::default(),
            ..r
        };
        assert_eq!(line(&empty, 2.0), "2026-06-30T18:00:00Z,*,,,0,0,");
    }
}
