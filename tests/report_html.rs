//! `report.html`: in every bundle and its manifest, self-contained, its
//! figure's per-minute numbers those of the KE logs, its decision tree that
//! of `report.md`, and it loads in headless Chromium with no console error
//! and no network request, on a laptop and on a phone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/pty.rs"]
mod pty;
#[path = "support/bundle.rs"]
mod support;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

const EVENT_ID: &str = "$SASBBzoqjEvent1:lotus.example";

fn demo_diag() -> PathBuf {
    repo().join("assets/demo/lotus-crypto-diag-1782842680000.json")
}

fn html(bundle: &Path) -> String {
    std::fs::read_to_string(bundle.join("report.html")).unwrap()
}

/// The time a KE log's lines carry, walked beside the server log: a line
/// with a timestamp has its own, a continuation line (a traceback) that of
/// the record before it, as the server log has it. `tz` is the log's zone.
fn ke_line_times(bundle: &Path, ke: usize, tz: chrono_tz::Tz) -> Vec<DateTime<Utc>> {
    let read = |rel: &str| std::fs::read_to_string(bundle.join(rel)).unwrap();
    let (server, ke_log) = (
        read("server/homeserver.log"),
        read(&format!("server/KE-{ke}.log")),
    );
    let wanted: Vec<&str> = ke_log.lines().collect();
    let mut next = 0;
    let mut last: Option<DateTime<Utc>> = None;
    let mut out = Vec::new();
    for line in server.lines() {
        if let Some(t) = line
            .get(..23)
            .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S,%3f").ok())
        {
            last = Some(
                tz.from_local_datetime(&t)
                    .single()
                    .unwrap()
                    .with_timezone(&Utc),
            );
        }
        if next < wanted.len() && line == wanted[next] {
            out.push(last.expect("a KE line after the first record"));
            next += 1;
        }
    }
    assert_eq!(
        next,
        wanted.len(),
        "KE-{ke}.log is the server log's lines in order"
    );
    out
}

/// Counts per minute, as the data block lays them out: index `i` is the
/// minute `i` after `first`.
fn per_minute(
    times: impl Iterator<Item = DateTime<Utc>>,
    first: DateTime<Utc>,
    n: usize,
) -> Vec<u64> {
    let mut v = vec![0u64; n];
    for t in times {
        let i = (t - first).num_seconds().div_euclid(60);
        assert!(
            (0..n as i64).contains(&i),
            "{t} outside the figure's window"
        );
        v[i as usize] += 1;
    }
    v
}

fn series(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The figure's data against the KE logs, the manifest and the timeline.
fn check_figure_numbers(bundle: &Path, tz: chrono_tz::Tz) -> Value {
    let d = figure_data(bundle);
    let m = manifest(bundle);
    assert_eq!(d["format"], "callcap-report-figure/1");
    assert_eq!(d["bucket_seconds"], 60, "one number per minute");
    let first = time(&d["first_bucket"]);
    let n = d["buckets"].as_u64().unwrap() as usize;
    assert_eq!(first.timestamp() % 60, 0);
    assert!(first <= time(&m["started_at"]));
    assert!(first + chrono::Duration::minutes(n as i64) > time(&m["ended_at"]));
    // Client entries per minute, from the timeline's own entries.
    let timeline = std::fs::read_to_string(bundle.join("timeline.jsonl")).unwrap();
    let entries: Vec<Value> = timeline
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["source"] == "client" && v["kind"] == "entry")
        .collect();
    for ke in 1..=4 {
        let name = format!("KE-{ke}");
        let s = &d["ke"][&name];
        let times = ke_line_times(bundle, ke, tz);
        assert_eq!(
            series(&s["server"]),
            per_minute(times.iter().copied(), first, n),
            "{name}: the figure's server lines per minute are the KE log's"
        );
        assert_eq!(s["server_total"], m["counts"]["server"][&name], "{name}");
        assert_eq!(s["server_total"].as_u64().unwrap(), times.len() as u64);
        let client = entries
            .iter()
            .filter(|e| e["ke"] == name.as_str())
            .map(|e| time(&e["at"]));
        assert_eq!(
            series(&s["client"]),
            per_minute(client, first, n),
            "{name} client"
        );
        assert_eq!(s["client_total"], m["counts"]["client"][&name], "{name}");
    }
    // Latency per minute, as the timeline states it.
    let mut latency: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for l in timeline
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
    {
        if l["kind"] == "latency-minute" {
            let i = (time(&l["at"]) - first).num_minutes();
            latency.insert(
                i,
                (
                    l["requests"].as_u64().unwrap(),
                    l["p99_ms"].as_u64().unwrap(),
                ),
            );
        }
    }
    for i in 0..n {
        let want = latency.get(&(i as i64)).filter(|(r, _)| *r > 0);
        assert_eq!(
            d["latency"]["requests"][i].as_u64().unwrap(),
            want.map_or(0, |w| w.0)
        );
        assert_eq!(
            d["latency"]["p99_ms"][i].as_u64(),
            want.map(|w| w.1),
            "minute {i}"
        );
    }
    let marks: Vec<(&Value, &Value)> = m["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (&k["at"], &k["label"]))
        .collect();
    let drawn: Vec<(DateTime<Utc>, &Value)> = d["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (time(&k["at"]), &k["label"]))
        .collect();
    assert_eq!(marks.len(), drawn.len());
    for ((at, label), (t, l)) in marks.iter().zip(&drawn) {
        assert_eq!((time(at), *label), (*t, *l));
    }
    d
}

#[test]
fn the_figures_numbers_per_minute_are_the_ke_logs_and_the_tree_is_report_md_s() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    generate_log(&log, &["--lines", "40000", "--event-id", EVENT_ID]);
    let out = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--diag",
        demo_diag().to_str().unwrap(),
        "--user-id",
        "@alice:lotus.example",
        "--device-id",
        "RWDSUMBAID",
        "--mark",
        "2026-06-30T18:03:10Z=audio cut",
        "--out",
        out.to_str().unwrap(),
    ]);
    verify_checksums(&bundle);
    let d = check_figure_numbers(&bundle, chrono_tz::UTC);
    // A real storm: every KE has server lines in more than one minute.
    for ke in ["KE-1", "KE-2", "KE-4"] {
        let busy = series(&d["ke"][ke]["server"])
            .iter()
            .filter(|n| **n > 0)
            .count();
        assert!(busy > 5, "{ke}: {busy} minutes");
    }
    assert!(series(&d["ke"]["KE-2"]["client"]).iter().sum::<u64>() > 0);
    assert_eq!(d["metrics"], Value::Null);
    assert_eq!(d["missing"]["metrics"], "no metrics in this capture");
    assert_report_html_says_what_report_md_says(&bundle);
    let page = html(&bundle);
    assert!(page.contains("⚑ audio cut"), "the marker is drawn");
}

#[test]
fn a_capture_without_database_or_client_files_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    generate_log(&log, &["--lines", "6000", "--seed", "3"]);
    let out = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--timezone",
        "Europe/Berlin",
        "--out",
        out.to_str().unwrap(),
    ]);
    verify_checksums(&bundle);
    let d = check_figure_numbers(&bundle, chrono_tz::Europe::Berlin);
    assert_eq!(d["timezone"], "Europe/Berlin");
    assert_eq!(d["missing"]["db"], "no database in this capture");
    assert_eq!(
        d["missing"]["client"],
        "no client files in this capture (no diag report, no HAR)"
    );
    let page = html(&bundle);
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    for said in [
        "no database in this capture",
        "no client files in this capture",
        "no fault markers set",
        "no metrics in this capture",
        "no KE-3 lines in the server log",
    ] {
        assert!(svg.contains(said), "the figure says '{said}'");
    }
    assert!(
        page.contains("the server log's time zone Europe/Berlin is UTC+02:00"),
        "the caption names the log's time zone"
    );
    assert_report_html_says_what_report_md_says(&bundle);
}

/// The page is one file: nothing it refers to is fetched, no script runs.
fn assert_self_contained(page: &str) {
    let lower = page.to_lowercase();
    for never in [
        "<link",
        "<img",
        "<iframe",
        "@import",
        "url(",
        " src=",
        "href=\"http",
        "<object",
        "<embed",
    ] {
        assert!(!lower.contains(never), "report.html holds '{never}'");
    }
    let scripts = lower.matches("<script").count();
    let data = lower.matches(r#"<script type="application/json""#).count();
    assert_eq!((scripts, data), (1, 1), "only the data block is a <script>");
    assert!(page.contains("prefers-color-scheme: dark") && page.contains("@media print"));
}

/// The capture's clock on the console's status line (`18:01:42 UTC`).
fn clock(screen: &str) -> Option<String> {
    let i = screen.find(" UTC")?;
    let t = screen.get(i.checked_sub(8)?..i)?;
    (t.len() == 8 && t.as_bytes()[2] == b':').then(|| t.to_string())
}

/// The demo, marked and quit in a terminal, as the operator does it.
fn demo_bundle_with_a_marker(out: &Path) -> PathBuf {
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["demo", "--speed", "20", "--out", out.to_str().unwrap()],
        120,
        40,
    );
    // The KE-2 failures run from the first minute on: mark in the second.
    tui.wait_for("the second minute", Duration::from_secs(60), |s| {
        clock(s).is_some_and(|t| t.as_str() >= "18:01:40")
    });
    tui.send(b"m");
    tui.wait_for("the marker prompt", Duration::from_secs(10), |s| {
        s.to_lowercase().contains("audio cut")
    });
    tui.send(b"audio cut");
    std::thread::sleep(Duration::from_millis(200));
    tui.send(b"\r");
    tui.wait_for("the prompt to close", Duration::from_secs(10), |s| {
        !s.contains("Symptom") && !s.contains("symptom")
    });
    // To the end of the recording, then quit.
    tui.wait_for("the recording's end", Duration::from_secs(60), |s| {
        clock(s).is_some_and(|t| t.as_str() >= "18:05:02")
    });
    tui.send(b"q");
    tui.wait_for("the quit dialog", Duration::from_secs(10), |s| {
        s.contains("call-")
    });
    tui.send(b"\r");
    assert_eq!(
        tui.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        tui.screen()
    );
    find_bundle(out)
}

/// Loads `page` at each size: no console error, no request but the page.
fn load_cleanly(
    browser: &mut cdp::Browser,
    page: &Path,
    size: (u32, u32),
    shots: Option<&Path>,
    name: &str,
) -> String {
    let load = browser.open(page, size);
    assert!(
        load.errors.is_empty(),
        "{name} at {size:?}: {:#?}",
        load.errors
    );
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    assert_eq!(
        load.requests,
        vec![url],
        "{name} at {size:?}: only the page itself is read"
    );
    let s = load.session.as_str();
    // The figure is drawn and visible; the page itself never scrolls
    // sideways (the figure scrolls inside its box on a phone).
    let fig = browser.eval(s, "(() => { const r = document.querySelector('.figure svg').getBoundingClientRect(); return [r.width, r.height, r.top]; })()");
    assert!(
        fig[0].as_f64().unwrap() > 300.0 && fig[1].as_f64().unwrap() > 300.0,
        "{name} at {size:?}: figure {fig}"
    );
    let wide = browser.eval(
        s,
        "document.documentElement.scrollWidth - window.innerWidth",
    );
    assert!(
        wide.as_f64().unwrap() <= 1.0,
        "{name} at {size:?}: the page is {wide} px too wide"
    );
    if let Some(dir) = shots {
        std::fs::create_dir_all(dir).unwrap();
        let png = browser.screenshot(s, false);
        std::fs::write(dir.join(format!("{name}-{}x{}.png", size.0, size.1)), png).unwrap();
    }
    browser
        .eval(s, "document.querySelector('.figure svg').textContent")
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_marked_demo_and_a_bare_capture_load_in_chromium_offline_without_errors_or_requests() {
    // CALLCAP_SCREENSHOTS=DIR keeps what Chromium showed, to look at.
    let shots = std::env::var_os("CALLCAP_SCREENSHOTS").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_bundle_with_a_marker(&tmp.path().join("demo"));
    verify_checksums(&demo);
    let m = manifest(&demo);
    let listed = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"] == "report.html");
    assert!(listed, "the manifest lists report.html");
    assert_self_contained(&html(&demo));
    assert_report_html_says_what_report_md_says(&demo);
    // The storm, the failures, the marker and the latency on one axis.
    let d = figure_data(&demo);
    assert!(series(&d["ke"]["KE-1"]["server"]).iter().max().unwrap() > &100);
    assert!(series(&d["ke"]["KE-2"]["client"]).iter().sum::<u64>() >= 10);
    assert_eq!(d["markers"][0]["label"], "audio cut");
    assert!(
        d["latency"]["p99_ms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_u64().unwrap_or(0) >= 2000)
    );

    let bare_log = tmp.path().join("homeserver.log");
    generate_log(&bare_log, &["--lines", "3000"]);
    let bare = callcap_bundle(&[
        "analyze",
        "--log",
        bare_log.to_str().unwrap(),
        "--out",
        tmp.path().join("bare").to_str().unwrap(),
    ]);
    assert_self_contained(&html(&bare));

    let mut browser = cdp::Browser::launch();
    // The check itself sees what it must not find: a page that logs an
    // error and reaches for the network.
    let bad = tmp.path().join("bad.html");
    std::fs::write(
        &bad,
        r#"<!DOCTYPE html><title>x</title><img src="http://callcap.invalid/x.png"><script>console.error("boom")</script>"#,
    )
    .unwrap();
    let load = browser.open(&bad, (1280, 800));
    assert!(
        load.errors.iter().any(|e| e.contains("boom")),
        "{:?}",
        load.errors
    );
    assert!(
        load.requests
            .iter()
            .any(|r| r.starts_with("http://callcap.invalid/")),
        "{:?}",
        load.requests
    );
    for size in [(1280, 800), (390, 844)] {
        let text = load_cleanly(
            &mut browser,
            &demo.join("report.html"),
            size,
            shots.as_deref(),
            "demo",
        );
        for said in [
            "KE-1",
            "KE-2",
            "Latency",
            "⚑ audio cut",
            "restart timeout 2.0 s",
        ] {
            assert!(text.contains(said), "the demo's figure shows '{said}'");
        }
        let text = load_cleanly(
            &mut browser,
            &bare.join("report.html"),
            size,
            shots.as_deref(),
            "bare",
        );
        for said in [
            "no database in this capture",
            "no client files in this capture",
        ] {
            assert!(
                text.contains(said),
                "the bare capture's figure says '{said}'"
            );
        }
    }
}
