//! Q4 with Synapse's latency histogram: captures whose histogram looks like
//! an answer without its substance, each with the answer its evidence
//! supports instead, and the captures that must keep their answer.
//!
//! The histogram is a real Prometheus's (Debian's `prometheus`): the
//! series are written in the exposition format Synapse serves
//! (`synapse_http_server_response_time_seconds_bucket{servlet,method,code,le}`,
//! Synapse's default buckets), loaded with `promtool tsdb
//! create-blocks-from openmetrics` at the scenarios' fixed 2026 date, and
//! `callcap analyze --prometheus` asks that Prometheus over the evidence's
//! window, as it would a production one weeks later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod bundle;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/scenario.rs"]
mod scenario;

use prometheus::Prometheus;
use scenario::*;
use std::fmt::Write as _;
use std::process::Command;

/// Synapse's default buckets.
const LE: [&str; 15] = [
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
    "7.5", "10", "+Inf",
];

/// Requests to one servlet in one minute after T0, of one duration.
#[derive(Clone, Copy)]
struct Requests {
    job: &'static str,
    servlet: &'static str,
    minute: i64,
    n: u32,
    seconds: f64,
}

fn fast(servlet: &'static str, minute: i64, n: u32) -> Requests {
    Requests {
        job: "synapse",
        servlet,
        minute,
        n,
        seconds: 0.02,
    }
}

fn slow(servlet: &'static str, minute: i64, n: u32) -> Requests {
    Requests {
        seconds: 3.0,
        ..fast(servlet, minute, n)
    }
}

/// promtool reserves a whole chunk segment (512 MiB, `fallocate`) for each
/// block while it writes it and truncates it to the few KiB it holds at the
/// end. One promtool at a time, so that the suite never asks for more than
/// one such reservation.
static PROMTOOL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The scenario's directory: in memory (`/dev/shm`) where the machine has
/// it, so that promtool's reservation takes no disk; else the temp dir.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("callcap-prom-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

impl Prometheus {
    /// A real Prometheus holding `traffic` as Synapse's histogram, sampled
    /// every 5 s from five minutes before T0 to ten after (each minute's
    /// requests land at its 30th second).
    fn with(traffic: &[Requests]) -> Prometheus {
        let dir = scratch_dir();
        let t0 = T0_MS / 1000;
        let mut series: Vec<(&str, &str)> = traffic.iter().map(|r| (r.job, r.servlet)).collect();
        series.sort();
        series.dedup();
        let name = "synapse_http_server_response_time_seconds";
        let mut om =
            format!("# HELP {name} Time taken to send a response\n# TYPE {name} histogram\n");
        for (job, servlet) in &series {
            let labels = format!(
                "job=\"{job}\",instance=\"127.0.0.1:9000\",method=\"POST\",code=\"200\",servlet=\"{servlet}\",tag=\"\""
            );
            for t in (t0 - 300..=t0 + 600).step_by(5) {
                let done: Vec<&Requests> = traffic
                    .iter()
                    .filter(|r| (r.job, r.servlet) == (*job, *servlet))
                    .filter(|r| t0 + r.minute * 60 + 30 <= t)
                    .collect();
                for le in LE {
                    let bound: f64 = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    let c: u32 = done
                        .iter()
                        .filter(|r| r.seconds <= bound)
                        .map(|r| r.n)
                        .sum();
                    let _ = writeln!(om, "{name}_bucket{{{labels},le=\"{le}\"}} {c} {t}");
                }
                let count: u32 = done.iter().map(|r| r.n).sum();
                let sum: f64 = done.iter().map(|r| f64::from(r.n) * r.seconds).sum();
                let _ = writeln!(om, "{name}_count{{{labels}}} {count} {t}");
                let _ = writeln!(om, "{name}_sum{{{labels}}} {sum} {t}");
            }
        }
        om.push_str("# EOF\n");
        let file = dir.path().join("synapse.om");
        std::fs::write(&file, om).unwrap();
        let data = dir.path().join("data");
        let out = {
            let _one_at_a_time = PROMTOOL.lock().unwrap_or_else(|e| e.into_inner());
            Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&data)
                .output()
                .expect("promtool (Debian's prometheus package)")
        };
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The blocks are months old: keep them.
        Prometheus::start(
            dir,
            |_| "global: {scrape_interval: 15s}\n".to_string(),
            Some(&data),
            &["--storage.tsdb.retention.time=100y"],
        )
    }
}

/// A log with no access line (Synapse's INFO lines of another module)
/// over `[0, to_ms]`: the access log cannot measure the homeserver.
fn no_access_lines(to_ms: i64) -> Vec<String> {
    (0..)
        .map(|i| 1_000 + i * 10_000)
        .take_while(|ms| *ms <= to_ms)
        .zip(500u32..)
        .map(|(ms, n)| filler(ms, n))
        .collect()
}

/// Our client's two restart timeouts in the first minute, the log over
/// `[0, log_to_ms]`, the histogram from `prom` (with `selector`).
fn scenario(
    name: &'static str,
    prom: &Prometheus,
    selector: Option<&str>,
    log_to_ms: i64,
) -> Scenario {
    let mut s = Scenario::new(name);
    s.log = no_access_lines(log_to_ms);
    s.diag = vec![restart_timed_out(20_000), restart_timed_out(40_000)];
    s.prometheus = Some((prom.url.clone(), selector.map(String::from)));
    s
}

/// `metrics/latency.csv`'s line `n` (1-based).
fn csv_line(o: &Outcome, n: usize) -> String {
    let text = std::fs::read_to_string(o.bundle.join("metrics/latency.csv")).unwrap();
    text.lines().nth(n - 1).unwrap_or_default().to_string()
}

/// The `metrics/latency.csv` lines Q4 cites.
fn cited_rows(o: &Outcome) -> Vec<String> {
    o.basis("Q4")
        .into_iter()
        .filter_map(|b| b.strip_prefix("metrics/latency.csv:"))
        .map(|n| csv_line(o, n.parse().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------
// Look-alikes

#[test]
fn q4_homeserver_latency_look_alike_long_polls_in_the_histogram() {
    // Thirty 30-second /sync long polls sit in the top bucket: over every
    // servlet the minute's p99 is "≥ 10 s", but a long poll is not latency
    // (Grafana's panel leaves them out too). The forty key uploads beside
    // them were fast.
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 40),
        Requests {
            seconds: 30.0,
            ..fast("SyncRestServlet", 0, 30)
        },
    ]);
    let o = scenario("adv-metrics-long-polls", &prom, None, 59_000).run();
    o.expect_q(
        "Q4",
        "client-retry",
        &["p99 in Synapse's histogram stayed under it"],
    );
    let rows = cited_rows(&o);
    assert!(
        rows.iter().any(|r| r.contains(",*,")),
        "the overall row: {rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r.contains("SyncRestServlet")),
        "{rows:?}"
    );
    // The long polls are in the file, with their own capped p99.
    let text = std::fs::read_to_string(o.bundle.join("metrics/latency.csv")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(",SyncRestServlet,10,>=10,30,")),
        "{text}"
    );
}

#[test]
fn q4_homeserver_latency_look_alike_another_homeservers_spike() {
    // The Prometheus scrapes two homeservers; the other one was slow. With
    // the selector only ours counts, and ours was fast; without it the same
    // answers say homeserver-latency (so the selector is what decides).
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 40),
        Requests {
            job: "synapse-staging",
            ..slow("KeyUploadServlet", 0, 40)
        },
    ]);
    let o = scenario(
        "adv-metrics-other-homeserver",
        &prom,
        Some("{job=\"synapse\"}"),
        59_000,
    )
    .run();
    o.expect_q("Q4", "client-retry", &[]);
    let unselected = scenario("adv-metrics-both-homeservers", &prom, None, 59_000).run();
    unselected.expect_q(
        "Q4",
        "homeserver-latency",
        &["p99 in Synapse's histogram was at or above 2000 ms"],
    );
}

#[test]
fn q4_homeserver_latency_look_alike_a_spike_the_minute_after() {
    // Synapse was slow in the minute after the timeouts; the minute they
    // happened in was fast.
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 40),
        slow("KeyUploadServlet", 1, 40),
    ]);
    let o = scenario("adv-metrics-minute-after", &prom, None, 100_000).run();
    o.expect_q("Q4", "client-retry", &[]);
    let rows = cited_rows(&o);
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.starts_with("2026-06-30T18:00:00Z,")),
        "only the timeouts' minute: {rows:?}"
    );
    // The spike is in the file all the same.
    let text = std::fs::read_to_string(o.bundle.join("metrics/latency.csv")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("2026-06-30T18:01:00Z,*,") && l.contains(",40,40,")),
        "{text}"
    );
}

#[test]
fn q4_homeserver_latency_look_alike_two_slow_uploads_in_a_quiet_minute() {
    // Two slow requests of thirty-two put the p99 above the timeout, but
    // two are too few to call the homeserver slow.
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 30),
        slow("KeyUploadServlet", 0, 2),
    ]);
    let o = scenario("adv-metrics-two-slow", &prom, None, 59_000).run();
    o.expect_q(
        "Q4",
        INSUFFICIENT,
        &["Synapse's histogram could not judge their minutes either"],
    );
    // Three make it slow.
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 30),
        slow("KeyUploadServlet", 0, 3),
    ]);
    let o = scenario("adv-metrics-three-slow", &prom, None, 59_000).run();
    o.expect_q("Q4", "homeserver-latency", &[]);
}

#[test]
fn q4_client_retry_look_alike_fast_state_puts() {
    // Fast state PUTs in the timeouts' minute look like the membership's
    // delayed PUT answered at once, but RoomStateEventRestServlet serves
    // plain state events too: only the access log tells them apart. Twelve
    // requests are too few to judge the minute.
    let prom = Prometheus::with(&[fast("RoomStateEventRestServlet", 0, 12)]);
    let o = scenario("adv-metrics-state-puts", &prom, None, 59_000).run();
    o.expect_q("Q4", INSUFFICIENT, &[]);
    // The MSC4140 restarts themselves, fast: the client gave up early.
    let prom = Prometheus::with(&[fast("RestartDelayedEventServlet", 0, 4)]);
    let o = scenario("adv-metrics-fast-restarts", &prom, None, 59_000).run();
    o.expect_q(
        "Q4",
        "client-retry",
        &["delayed-event requests all took under 2000 ms by Synapse's histogram"],
    );
    assert!(
        cited_rows(&o)
            .iter()
            .any(|r| r.contains(",RestartDelayedEventServlet,")),
        "{:?}",
        o.basis("Q4")
    );
}

#[test]
fn q4_either_answer_look_alike_the_two_sources_disagree() {
    // The access log's minute is slow (5 of 30 requests at 3 s); Synapse's
    // histogram of the same minute says 300 fast requests. Neither is
    // picked: the summary says they disagree.
    let prom = Prometheus::with(&[fast("KeyUploadServlet", 0, 300)]);
    let mut s = Scenario::new("adv-metrics-disagree");
    s.log = (0..30u32)
        .map(|i| {
            access(
                500 + i64::from(i) * 1_900,
                100 + i,
                "PUT",
                "/_matrix/client/v3/rooms/!call:lotus.example/send/m.room.message/t1",
                200,
                if i < 5 { 3.0 } else { 0.02 },
                BOB,
            )
        })
        .collect();
    s.diag = vec![restart_timed_out(20_000), restart_timed_out(40_000)];
    s.prometheus = Some((prom.url.clone(), None));
    let o = s.run();
    o.expect_q(
        "Q4",
        INSUFFICIENT,
        &[
            "judge differently",
            "access log's p99 is slow and the histogram's fast",
        ],
    );
}

// ---------------------------------------------------------------------------
// Not over-corrected

#[test]
fn q4_homeserver_latency_from_the_histogram_alone_cites_its_rows() {
    // No access line; the histogram's minute has 45 requests, 8 of them at
    // 3 s, three of those delayed-event restarts.
    let prom = Prometheus::with(&[
        fast("KeyUploadServlet", 0, 37),
        slow("KeyUploadServlet", 0, 5),
        slow("RestartDelayedEventServlet", 0, 3),
    ]);
    let o = scenario("adv-metrics-slow-minute", &prom, None, 59_000).run();
    o.expect_q(
        "Q4",
        "homeserver-latency",
        &["Synapse's own histogram (prometheus): 18:00 p99"],
    );
    let rows = cited_rows(&o);
    for servlet in ["*", "KeyUploadServlet", "RestartDelayedEventServlet"] {
        assert!(
            rows.iter()
                .any(|r| r.starts_with(&format!("2026-06-30T18:00:00Z,{servlet},"))),
            "{servlet}: {rows:?}"
        );
    }
    assert_eq!(o.verdicts["Q4"]["answer"], "homeserver-latency");
    assert_eq!(
        bundle::manifest(&o.bundle)["metrics"]["source"],
        "prometheus"
    );
    // report.html's latency lane draws the same overall p99 as the `*` row.
    let star: f64 = csv_line(&o, 1 + csv_row(&o, "2026-06-30T18:00:00Z,*,"))
        .split(',')
        .nth(2)
        .and_then(|p| p.parse().ok())
        .expect("the minute's overall p99");
    let fig = bundle::figure_data(&o.bundle);
    let first: chrono::DateTime<chrono::Utc> =
        fig["first_bucket"].as_str().unwrap().parse().unwrap();
    let minute: chrono::DateTime<chrono::Utc> = "2026-06-30T18:00:00Z".parse().unwrap();
    let i =
        usize::try_from((minute - first).num_seconds() / fig["bucket_seconds"].as_i64().unwrap())
            .unwrap();
    let drawn = fig["metrics"]["p99_seconds"][i].as_f64();
    assert!(
        // latency.csv gives 4 decimals.
        drawn.is_some_and(|d| (d - star).abs() <= 5e-5),
        "figure {drawn:?} vs latency.csv {star}: {}",
        fig["metrics"]
    );
    assert!(
        fig["metrics"]["source"]
            .as_str()
            .unwrap()
            .contains("prometheus")
    );
}

/// The 0-based index of the first `metrics/latency.csv` line starting with `prefix`.
fn csv_row(o: &Outcome, prefix: &str) -> usize {
    let text = std::fs::read_to_string(o.bundle.join("metrics/latency.csv")).unwrap();
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect(prefix)
}

// ---------------------------------------------------------------------------
// Bad input: the analysis goes on, without the numbers, and says why

#[test]
fn a_prometheus_that_refuses_or_is_not_there_leaves_the_rest_of_the_analysis() {
    let prom = Prometheus::with(&[fast("KeyUploadServlet", 0, 40)]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (name, url, selector, says) in [
        (
            "adv-metrics-refused",
            prom.url.clone(),
            // A selector Prometheus refuses: its own error is shown.
            Some("{job=~\"(\"}"),
            "error parsing regexp",
        ),
        (
            "adv-metrics-unreachable",
            format!("http://127.0.0.1:{closed}"),
            None,
            "unreachable",
        ),
        (
            // Prometheus's web UI, not its API: not a query_range answer.
            "adv-metrics-not-the-api",
            format!("{}/graph", prom.url),
            None,
            "not a Prometheus API answer",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("homeserver.log");
        std::fs::write(&log, no_access_lines(59_000).join("\n") + "\n").unwrap();
        let mut args = vec![
            "analyze".to_string(),
            "--log".into(),
            log.to_str().unwrap().into(),
            "--label".into(),
            name.into(),
            "--out".into(),
            tmp.path().to_str().unwrap().into(),
            "--prometheus".into(),
            url,
        ];
        if let Some(s) = selector {
            args.extend(["--selector".into(), s.into()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bundle::callcap(&argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        let b = bundle::bundle_path(&out);
        bundle::verify_checksums(&b);
        bundle::assert_basis_resolves(&b);
        assert!(b.join("server/homeserver.log").exists(), "{name}");
        let csv = std::fs::read_to_string(b.join("metrics/latency.csv")).unwrap_or_default();
        assert!(csv.lines().count() <= 1, "{name}: no rows: {csv}");
        let report = std::fs::read_to_string(b.join("report.md")).unwrap();
        assert!(report.contains("asking failed: "), "{name}: {report}");
    }
}
