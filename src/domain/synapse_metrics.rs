//! Synapse's own latency metrics: the histogram
//! `synapse_http_server_response_time_seconds` in a scrape of its metrics
//! listener (Prometheus's text exposition format, parsed with the
//! `prometheus-parse` crate), and the increase between two scrapes, per
//! servlet, across a restart of Synapse.

use super::histogram::Histogram;
use std::collections::BTreeMap;

/// The histogram Synapse times every request with.
pub const RESPONSE_TIME: &str = "synapse_http_server_response_time_seconds";
/// When the process started (the Python client's process collector): a
/// new value means a restart, whatever the counts say.
pub const PROCESS_START: &str = "process_start_time_seconds";

/// Long polls, left out of the overall p99 as Grafana's Synapse dashboard
/// leaves them out.
pub const LONG_POLL_SERVLETS: [&str; 2] = ["SyncRestServlet", "SlidingSyncRestServlet"];

/// The MSC4140 delayed-event endpoints (a delayed state PUT shares
/// `RoomStateEventRestServlet` with a plain one, so it is not among them).
pub const DELAYED_EVENT_SERVLETS: [&str; 4] = [
    "RestartDelayedEventServlet",
    "UpdateDelayedEventServlet",
    "CancelDelayedEventServlet",
    "SendDelayedEventServlet",
];

/// The key and to-device endpoints the runbook's faults go through.
pub const KEY_SERVLETS: [&str; 3] = [
    "KeyUploadServlet",
    "OneTimeKeyServlet",
    "SendToDeviceRestServlet",
];

/// The servlet of a series without a `servlet` label.
pub const NO_SERVLET: &str = "(none)";

/// One scrape, reduced to what the latency needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Every series of the histogram, keyed by its labels (`le` aside):
    /// its servlet and its buckets.
    pub series: BTreeMap<String, (String, Histogram)>,
    /// `process_start_time_seconds`, when exported.
    pub process_start: Option<f64>,
    /// The lines of the two metrics above, verbatim: what the bundle keeps
    /// of the scrape (the rest of Synapse's metrics say nothing of latency).
    pub kept: String,
}

/// Why a page is no use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    #[error("not a Prometheus metrics page (no '# TYPE' line){0}")]
    NotMetrics(String),
    #[error(
        "no {RESPONSE_TIME} histogram in the metrics: is this Synapse's metrics listener, with enable_metrics: true?"
    )]
    NoHistogram,
}

/// The name a line is about: the sample's metric, or the one a `# HELP` or
/// `# TYPE` comment names.
fn line_metric(line: &str) -> &str {
    let l = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    let end = l
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(l.len());
    &l[..end]
}

fn kept_line(line: &str) -> bool {
    let m = line_metric(line);
    m.strip_prefix(RESPONSE_TIME)
        .is_some_and(|rest| matches!(rest, "" | "_bucket" | "_sum" | "_count" | "_created"))
        || m == PROCESS_START
}

/// Reads a scrape of Synapse's metrics listener.
pub fn parse(text: &str) -> Result<Scrape, ScrapeError> {
    if !text.lines().any(|l| l.starts_with("# TYPE ")) {
        let start: String = text.trim_start().chars().take(40).collect();
        let hint = if start.is_empty() {
            " (the page is empty)".to_string()
        } else {
            format!(" (it starts '{}')", start.replace(['\n', '\r'], " "))
        };
        return Err(ScrapeError::NotMetrics(hint));
    }
    let mut kept = String::new();
    for l in text.lines().filter(|l| kept_line(l)) {
        kept.push_str(l);
        kept.push('\n');
    }
    let declared = kept
        .lines()
        .any(|l| l.starts_with(&format!("# TYPE {RESPONSE_TIME} histogram")));
    if !declared {
        return Err(ScrapeError::NoHistogram);
    }
    let parsed = prometheus_parse::Scrape::parse(kept.lines().map(|l| Ok(l.to_string())))
        .map_err(|_| ScrapeError::NoHistogram)?;
    let mut scrape = Scrape {
        kept,
        ..Scrape::default()
    };
    for s in parsed.samples {
        match s.value {
            prometheus_parse::Value::Histogram(buckets) if s.metric == RESPONSE_TIME => {
                let Some(h) = Histogram::from_buckets(
                    buckets.iter().map(|b| (b.less_than, b.count)).collect(),
                ) else {
                    continue;
                };
                let servlet = s
                    .labels
                    .get("servlet")
                    .filter(|v| !v.is_empty())
                    .unwrap_or(NO_SERVLET)
                    .to_string();
                scrape.series.insert(s.labels.to_string(), (servlet, h));
            }
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v)
                if s.metric == PROCESS_START && v.is_finite() =>
            {
                scrape.process_start = Some(v);
            }
            _ => {}
        }
    }
    Ok(scrape)
}

/// The requests between two scrapes, per servlet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Increase {
    pub servlets: BTreeMap<String, Histogram>,
    /// Synapse restarted between them (its start time changed, or a count
    /// went down): the counts since the restart stand for the increase,
    /// as Prometheus's `increase` takes them.
    pub reset: Option<String>,
}

/// What `later` counted since `earlier`: never negative. A series new in
/// `later` counts whole (Synapse makes a series at its first request).
pub fn increase(earlier: &Scrape, later: &Scrape) -> Increase {
    let mut out = Increase::default();
    let restarted = match (earlier.process_start, later.process_start) {
        (Some(a), Some(b)) if (a - b).abs() > 0.5 => Some(format!(
            "Synapse restarted (its process start time moved {:+.0} s)",
            b - a
        )),
        _ => None,
    };
    let mut went_down = 0usize;
    for (key, (servlet, h)) in &later.series {
        let d = match (&restarted, earlier.series.get(key)) {
            (None, Some((_, before))) => match h.since(before) {
                Some(d) => d,
                None => {
                    went_down += 1;
                    h.clone()
                }
            },
            _ => h.clone(),
        };
        if d.is_empty() {
            continue;
        }
        out.servlets
            .entry(servlet.clone())
            .and_modify(|x| x.add(&d))
            .or_insert(d);
    }
    out.reset = restarted.or_else(|| {
        (went_down > 0).then(|| {
            format!("counts went down in {went_down} series: Synapse restarted (counter reset)")
        })
    });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn page(upload: [u64; 3], start: f64) -> String {
        format!(
            r#"# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 1234.0
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds {start}
# HELP synapse_http_server_response_time_seconds sec
# TYPE synapse_http_server_response_time_seconds histogram
synapse_http_server_response_time_seconds_bucket{{code="200",le="0.005",method="POST",servlet="KeyUploadServlet",tag=""}} {a}.0
synapse_http_server_response_time_seconds_bucket{{code="200",le="2.5",method="POST",servlet="KeyUploadServlet",tag=""}} {b}.0
synapse_http_server_response_time_seconds_bucket{{code="200",le="10.0",method="POST",servlet="KeyUploadServlet",tag=""}} {c}.0
synapse_http_server_response_time_seconds_bucket{{code="200",le="+Inf",method="POST",servlet="KeyUploadServlet",tag=""}} {c}.0
synapse_http_server_response_time_seconds_count{{code="200",method="POST",servlet="KeyUploadServlet",tag=""}} {c}.0
synapse_http_server_response_time_seconds_sum{{code="200",method="POST",servlet="KeyUploadServlet",tag=""}} 1.5
synapse_http_server_response_time_seconds_bucket{{code="200",le="0.005",method="GET",servlet="SyncRestServlet",tag="sync_v2"}} 1.0
synapse_http_server_response_time_seconds_bucket{{code="200",le="+Inf",method="GET",servlet="SyncRestServlet",tag="sync_v2"}} 4.0
"#,
            a = upload[0],
            b = upload[1],
            c = upload[2]
        )
    }

    #[test]
    fn a_synapse_page_gives_its_series_and_keeps_only_their_lines() {
        let s = parse(&page([1, 2, 3], 1.7e9)).unwrap();
        assert_eq!(s.series.len(), 2);
        let (servlet, h) = s
            .series
            .values()
            .find(|(n, _)| n == "KeyUploadServlet")
            .unwrap();
        assert_eq!(servlet, "KeyUploadServlet");
        assert_eq!(
            (h.le.clone(), h.cumulative.clone(), h.total),
            (vec![0.005, 2.5, 10.0], vec![1.0, 2.0, 3.0], 3.0)
        );
        assert_eq!(s.process_start, Some(1.7e9));
        assert!(!s.kept.contains("python_gc"), "{}", s.kept);
        assert!(s.kept.contains("_sum{") && s.kept.contains("# TYPE process_start_time_seconds"));
    }

    #[test]
    fn pages_that_are_not_synapses_metrics_say_so() {
        assert!(matches!(
            parse("<html><body>404</body></html>"),
            Err(ScrapeError::NotMetrics(h)) if h.contains("<html>")
        ));
        assert!(matches!(parse(""), Err(ScrapeError::NotMetrics(_))));
        assert_eq!(
            parse("# TYPE up gauge\nup 1\n"),
            Err(ScrapeError::NoHistogram)
        );
    }

    #[test]
    fn the_increase_is_per_servlet_and_survives_a_restart() {
        let a = parse(&page([1, 2, 3], 1.7e9)).unwrap();
        let b = parse(&page([2, 4, 7], 1.7e9)).unwrap();
        let d = increase(&a, &b);
        assert_eq!(d.reset, None);
        assert_eq!(
            d.servlets.keys().collect::<Vec<_>>(),
            vec!["KeyUploadServlet"],
            "the sync series did not move"
        );
        assert_eq!(d.servlets["KeyUploadServlet"].total, 4.0);
        // Restarted: the new process's counts are the increase.
        let c = parse(&page([1, 1, 2], 1.7e9 + 300.0)).unwrap();
        let d = increase(&b, &c);
        assert!(d.reset.unwrap().contains("restarted"));
        assert_eq!(d.servlets["KeyUploadServlet"].total, 2.0);
        // Without the start time, a count that went down says the same.
        let strip = |s: &Scrape| Scrape {
            process_start: None,
            ..s.clone()
        };
        let d = increase(&strip(&b), &strip(&c));
        assert!(d.reset.unwrap().contains("counter reset"));
        assert!(
            d.servlets
                .values()
                .all(|h| h.total >= 0.0 && h.cumulative.iter().all(|c| *c >= 0.0))
        );
    }
}
