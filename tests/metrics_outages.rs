//! `callcap live --headless` with a `[metrics]` source that cannot give
//! Synapse's histogram: an endpoint nobody listens on, a page that is not
//! a metrics page, a metrics page without Synapse's histogram (a real
//! Prometheus's own `/metrics`: what `enable_metrics: false` looks like
//! from outside), a Prometheus with no such series, and a Prometheus that
//! refuses the query. Each says why in its status (what the status bar
//! shows), and the capture goes on: a log line written meanwhile is in the
//! bundle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/bundle.rs"]
mod support;

use prometheus::Prometheus;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

/// A real Prometheus on loopback scraping only itself.
fn prometheus_alone() -> Prometheus {
    Prometheus::start(
        tempfile::tempdir().unwrap(),
        |port| {
            format!(
                "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
            )
        },
        None,
        &[],
    )
}

/// A running capture, killed if the test fails first.
struct Capture {
    live: Live,
    log: PathBuf,
    out: PathBuf,
}

fn start(dir: &Path, metrics: &str) -> Capture {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("homeserver.log");
    std::fs::write(
        &log,
        "2026-06-30 17:59:59,000 - synapse.x - 1 - INFO - sentinel - before the capture\n",
    )
    .unwrap();
    let out = dir.join("out");
    let cfg = dir.join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server-log]\npath = {log:?}\n\n[bundle]\nout = {out:?}\n\n[metrics]\n{metrics}interval = \"1s\"\n"
        ),
    )
    .unwrap();
    Capture {
        live: Live::start(&["--config", cfg.to_str().unwrap()], "0"),
        log,
        out,
    }
}

#[test]
fn a_metrics_source_that_cannot_give_the_histogram_says_why_and_the_capture_goes_on() {
    let prom = prometheus_alone();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unreachable",
            format!("scrape = \"http://127.0.0.1:{closed}/_synapse/metrics\"\n"),
            "reconnecting",
            "unreachable",
        ),
        (
            "not-metrics",
            format!("scrape = \"{}/-/ready\"\n", prom.url),
            "error",
            "not a Prometheus metrics page",
        ),
        (
            "no-histogram",
            format!("scrape = \"{}/metrics\"\n", prom.url),
            "error",
            "enable_metrics: true",
        ),
        (
            "no-series",
            format!(
                "prometheus = \"{}\"\nselector = '{{job=\"synapse\"}}'\n",
                prom.url
            ),
            "stalled",
            "has no synapse_http_server_response_time_seconds series",
        ),
        (
            "refused",
            format!(
                "prometheus = \"{}\"\nselector = '{{job=~\"(\"}}'\n",
                prom.url
            ),
            "error",
            "error parsing regexp",
        ),
    ];
    let captures: Vec<Capture> = cases
        .iter()
        .map(|(name, metrics, _, _)| start(&tmp.path().join(name), metrics))
        .collect();
    for ((name, _, state, says), c) in cases.iter().zip(&captures) {
        wait_until(
            &format!("{name}: the metrics source's '{state}' status saying '{says}'"),
            Duration::from_secs(60),
            || {
                let j = journal_file(&c.out, "journal.jsonl");
                j.lines().any(|l| {
                    l.contains(&format!(
                        "\"source\":\"metrics\",\"status\":{{\"state\":\"{state}\""
                    )) && l.contains(says)
                })
            },
        );
        // The log is followed all the same.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&c.log)
            .unwrap();
        writeln!(
            f,
            "2026-06-30 18:00:01,000 - synapse.x - 1 - INFO - {name} - captured while the metrics are out"
        )
        .unwrap();
    }
    for ((name, _, _, _), c) in cases.iter().zip(captures) {
        let out = c.out.clone();
        wait_until(
            &format!("{name}: the line"),
            Duration::from_secs(30),
            || journal_file(&out, "server/homeserver.log").contains("captured while the metrics"),
        );
        let b = c.live.stop();
        let log = std::fs::read_to_string(b.join("server/homeserver.log")).unwrap();
        assert!(
            log.contains(&format!("{name} - captured while the metrics are out")),
            "{name}: {log}"
        );
        verify_checksums(&b);
        // No minute was read: no row, and nothing made up.
        let csv = std::fs::read_to_string(b.join("metrics/latency.csv")).unwrap_or_default();
        assert!(csv.lines().count() <= 1, "{name}: {csv}");
    }
}
