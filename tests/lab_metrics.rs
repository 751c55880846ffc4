//! Synapse's own latency metrics against the real thing: the lab's Synapse
//! with its metrics listener on loopback, and a real Prometheus (Debian's
//! `prometheus`) scraping it every second. One lab, four captures at once:
//! `[metrics] scrape` (through the SSH connection), `[metrics] prometheus`,
//! one without metrics that `analyze --prometheus` fills afterwards, and a
//! direct scrape killed with SIGKILL and recovered.
//!
//! Synapse is stopped (SIGSTOP) for 3 s while alice uploads keys and
//! restarts her delayed membership: the requests it had read wait out the
//! stop, so its histogram shows a p99 of at least 2.5 s in the stall's
//! minute, in `metrics/latency.csv` from either source alike, and Q4 cites
//! that row. Then Synapse restarts mid-capture: the scrape records the
//! reset and no value goes negative or absurd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/bundle.rs"]
mod support;

use chrono::{DateTime, Timelike, Utc};
use prometheus::Prometheus;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

/// The lab, stopped (with everything it started) on drop.
struct Lab {
    child: Child,
    dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("callcap-lab-metrics-")
            .tempdir_in("/tmp")
            .unwrap();
        let child = Command::new("python3")
            .arg(repo().join("scripts/lab"))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 scripts/lab");
        let mut lab = Lab { child, dir };
        let mut lines = BufReader::new(lab.child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("lab ready: ") => break,
                Some(Ok(_)) => {}
                _ => panic!("scripts/lab ended before it was ready"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        lab
    }

    fn info(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("lab.json")).unwrap())
            .unwrap()
    }

    fn s(&self, path: &[&str]) -> String {
        let mut v = self.info();
        for p in path {
            v = v[p].clone();
        }
        match v {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    fn driver(&self, args: &[&str]) -> String {
        let out = Command::new(self.s(&["synapse", "python"]))
            .arg(repo().join("scripts/lab_call.py"))
            .arg("--lab")
            .arg(self.dir.path().join("lab.json"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab_call.py {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGUSR1: the lab restarts Synapse; returns once the new one answers.
    fn restart_synapse(&self) {
        let before = self.s(&["synapse", "pid"]);
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-USR1", &pid])
                .status()
                .unwrap()
                .success()
        );
        wait_until("Synapse's restart", Duration::from_secs(120), || {
            self.s(&["synapse", "pid"]) != before
        });
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

/// A real Prometheus scraping Synapse's listener at `target` every
/// second, once it has scraped it.
fn prometheus(target: &str) -> Prometheus {
    let p = Prometheus::start(
        tempfile::tempdir().unwrap(),
        |_| {
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: synapse\n    metrics_path: /_synapse/metrics\n    static_configs: [{{targets: ['{target}']}}]\n"
            )
        },
        None,
        &[],
    );
    wait_until(
        "Prometheus to scrape Synapse",
        Duration::from_secs(60),
        || {
            p.get("/api/v1/query?query=up%7Bjob%3D%22synapse%22%7D")
                .is_some_and(|b| b.contains("\"value\"") && b.contains(",\"1\"]"))
        },
    );
    p
}

/// The lab's config with its `[metrics]` section replaced by `metrics`
/// (nothing: no metrics at all).
fn config(lab: &Lab, metrics: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.s(&["config"])).unwrap();
    let head = text.split("[metrics]").next().unwrap();
    let tail = text
        .split("[metrics]")
        .nth(1)
        .and_then(|t| t.find("\n[").map(|i| t[i..].to_string()))
        .unwrap_or_default();
    let path = lab.dir.path().join(name);
    std::fs::write(&path, format!("{head}{metrics}\n{tail}")).unwrap();
    path
}

/// `callcap live --headless` on `cfg`, writing under `out`; returns once
/// the log (and with `metrics` the metrics source) is live.
fn start(cfg: &Path, out: &Path, label: &str, metrics: bool) -> Live {
    let args = [
        "--label",
        label,
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let cc = Live::start(&args, "1");
    let sources: &[&str] = if metrics {
        &["server-log", "metrics"]
    } else {
        &["server-log"]
    };
    wait_live(
        out,
        sources,
        "the capture's sources",
        Duration::from_secs(60),
    );
    cc
}

/// `metrics/latency.csv` as (line number, fields by header name).
fn latency_rows(bundle: &Path) -> Vec<(usize, std::collections::BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(bundle.join("metrics/latency.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    for col in ["minute", "servlet", "p99_seconds", "requests"] {
        assert!(header.iter().any(|h| h == col), "no '{col}' in {header:?}");
    }
    lines
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "line {}: {l}", i + 2);
            (
                i + 2,
                header
                    .iter()
                    .cloned()
                    .zip(f.iter().map(|s| s.to_string()))
                    .collect(),
            )
        })
        .collect()
}

/// No negative, NaN or absurd number anywhere in the file: a p99 is
/// between 0 and 10 s (the top bucket), counts are whole and not negative.
fn assert_sane(bundle: &Path) {
    for (n, r) in latency_rows(bundle) {
        if !r["p99_seconds"].is_empty() {
            let p: f64 = r["p99_seconds"].parse().unwrap();
            assert!((0.0..=10.0).contains(&p), "line {n}: p99 {p}");
        }
        let q: f64 = r["requests"].parse().unwrap();
        assert!((0.0..100_000.0).contains(&q), "line {n}: {q} requests");
        assert_eq!(
            r["p99_seconds"].is_empty(),
            q == 0.0,
            "line {n}: an empty p99 is a minute without requests"
        );
    }
}

/// The rows of `minute` whose p99 is at least 2.5 s, with their lines.
fn slow_rows(bundle: &Path, minute: &str) -> Vec<usize> {
    latency_rows(bundle)
        .into_iter()
        .filter(|(_, r)| r["minute"] == minute)
        .filter(|(_, r)| r["p99_seconds"].parse::<f64>().is_ok_and(|p| p >= 2.5))
        .map(|(n, _)| n)
        .collect()
}

fn q4_cites(bundle: &Path, lines: &[usize]) -> bool {
    let m = manifest(bundle);
    m["verdicts"]["Q4"]["basis"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .any(|b| {
            lines
                .iter()
                .any(|n| b == format!("metrics/latency.csv:{n}"))
        })
}

#[test]
fn a_synapse_stall_shows_in_its_own_histogram_scraped_or_from_prometheus() {
    let lab = Lab::start();
    let metrics_url = lab.s(&["synapse", "metrics_url"]);
    let target = metrics_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let prom = prometheus(&target);
    let outs = tempfile::tempdir().unwrap();
    let scrape_cfg = config(
        &lab,
        &format!("[metrics]\nscrape = \"{metrics_url}\"\nvia-ssh = true\ninterval = \"1s\"\n"),
        "scrape.toml",
    );
    let prom_cfg = config(
        &lab,
        &format!(
            "[metrics]\nprometheus = \"{}\"\nselector = '{{job=\"synapse\"}}'\ninterval = \"2s\"\n",
            prom.url
        ),
        "prometheus.toml",
    );
    let bare_cfg = config(&lab, "", "bare.toml");
    // Scraped directly (not through SSH), and killed: recovered afterwards.
    let direct_cfg = config(
        &lab,
        &format!("[metrics]\nscrape = \"{metrics_url}\"\ninterval = \"1s\"\n"),
        "direct.toml",
    );
    let (o1, o2, o3, o4) = (
        outs.path().join("scrape"),
        outs.path().join("prometheus"),
        outs.path().join("bare"),
        outs.path().join("killed"),
    );
    let scrape = start(&scrape_cfg, &o1, "metrics-scrape", true);
    let asked = start(&prom_cfg, &o2, "metrics-prometheus", true);
    let bare = start(&bare_cfg, &o3, "no-metrics", false);
    let killed = start(&direct_cfg, &o4, "metrics-killed", true);

    // The phase takes about 12 s: keep it inside one minute.
    let now = Utc::now();
    if now.second() > 40 {
        std::thread::sleep(Duration::from_secs(u64::from(62 - now.second())));
    }
    let said = lab.driver(&["--stall-under-load", "3"]);
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(lab.dir.path().join("call-result.json")).unwrap(),
    )
    .unwrap();
    let stalled: DateTime<Utc> = result["stall"]["from"].as_str().unwrap().parse().unwrap();
    let minute = format!("{}", stalled.format("%Y-%m-%dT%H:%M:00Z"));
    assert!(result["restart_timeouts"].as_u64().unwrap() >= 1, "{said}");
    let diag = result["diag"].as_str().unwrap().to_string();
    for o in [&o1, &o2, &o3, &o4] {
        wait_until("the diag report", Duration::from_secs(30), || {
            journal_file(o, "journal.jsonl").contains(&diag)
        });
    }

    // Synapse restarts mid-capture, and is used again.
    lab.restart_synapse();
    lab.driver(&["--keys"]);
    for o in [&o1, &o4] {
        wait_until(
            "the scrape to see the restart",
            Duration::from_secs(30),
            || journal_file(o, "journal.jsonl").contains("Synapse restarted"),
        );
    }
    // The stall's minute must be over, and in Prometheus, before asking.
    let over = stalled.with_second(0).unwrap() + chrono::Duration::seconds(65);
    while Utc::now() < over {
        std::thread::sleep(Duration::from_millis(500));
    }
    // Synapse's INFO lines are buffered for up to 5 s.
    std::thread::sleep(Duration::from_secs(3));

    let b1 = scrape.stop();
    let b2 = asked.stop();
    let b3 = bare.stop();
    killed.kill_9(); // no export
    let out = callcap(&["recover", "--out", o4.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b5 = bundle_path(&out);

    for (bundle, source) in [(&b1, "scrape"), (&b2, "prometheus"), (&b5, "scrape")] {
        let m = manifest(bundle);
        assert_eq!(m["metrics"]["source"], source, "{}", m["metrics"]);
        assert!(
            m["metrics"]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
        // A recovered bundle names its journal as its source.
        assert!(
            bundle == &b5
                || m["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["name"] == "metrics" && s["kind"] == source),
            "{}",
            m["sources"]
        );
        assert_sane(bundle);
        let slow = slow_rows(bundle, &minute);
        // The figures, for whoever runs this with --nocapture.
        for (n, r) in latency_rows(bundle) {
            if r["minute"] == minute {
                eprintln!("{source} metrics/latency.csv:{n}: {r:?}");
            }
        }
        eprintln!("{source} Q4: {}", manifest(bundle)["verdicts"]["Q4"]);
        assert!(
            !slow.is_empty(),
            "{source}: no p99 ≥ 2.5 s at {minute}:\n{}",
            std::fs::read_to_string(bundle.join("metrics/latency.csv")).unwrap()
        );
        assert!(
            q4_cites(bundle, &slow),
            "{source}: Q4 cites none of lines {slow:?}: {}",
            m["verdicts"]["Q4"]
        );
        assert_basis_resolves(bundle);
        verify_checksums(bundle);
        let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
        assert!(
            report.contains("## Synapse's latency histogram"),
            "{report}"
        );
    }
    // The scrapes saw the restart, said so, and counted from zero after it
    // (the killed capture's journal too, recovered).
    for b in [&b1, &b5] {
        let j = std::fs::read_to_string(b.join("journal.jsonl")).unwrap();
        assert!(
            j.contains("\"reset\":\"Synapse restarted"),
            "no reset reading"
        );
        let report = std::fs::read_to_string(b.join("report.md")).unwrap();
        assert!(report.contains("- Reset at "), "{report}");
        assert!(
            std::fs::read_to_string(b.join("metrics/scrapes.prom"))
                .unwrap()
                .contains("# TYPE synapse_http_server_response_time_seconds histogram")
        );
    }
    assert!(
        std::fs::read_to_string(b2.join("metrics/prometheus.jsonl"))
            .unwrap()
            .contains("histogram_quantile(0.99")
    );

    // Captured without metrics; Prometheus asked afterwards.
    assert!(!b3.join("metrics").exists());
    let out = callcap(&[
        "analyze",
        "--log",
        b3.join("server/homeserver.log").to_str().unwrap(),
        "--diag",
        b3.join("client").to_str().unwrap(),
        "--out",
        outs.path().to_str().unwrap(),
        "--label",
        "afterwards",
        "--prometheus",
        &prom.url,
        "--selector",
        "{job=\"synapse\"}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b4 = bundle_path(&out);
    assert_eq!(manifest(&b4)["metrics"]["source"], "prometheus");
    assert_sane(&b4);
    let slow = slow_rows(&b4, &minute);
    assert!(
        !slow.is_empty(),
        "analyze --prometheus: no p99 ≥ 2.5 s at {minute}"
    );
    assert!(q4_cites(&b4, &slow), "{}", manifest(&b4)["verdicts"]["Q4"]);
    assert_basis_resolves(&b4);
}
