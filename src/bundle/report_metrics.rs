//! `report.md`'s section on Synapse's own latency histogram: where it was
//! read, each minute with KE-4 timeouts side by side with the access log
//! (overall, the delayed-event servlets, the key servlets), where the two
//! disagree, and Synapse's restarts.

use crate::app::App;
use crate::app::metrics::{OVERALL, minute_floor};
use crate::app::stats::minute_of;
use crate::domain::histogram::{Histogram, Judgement};
use crate::domain::synapse_metrics::{DELAYED_EVENT_SERVLETS, KEY_SERVLETS};
use crate::model::metrics::{ANSWERS_FILE, LATENCY_CSV, MetricsKind, SCRAPES_FILE};
use crate::verdicts::metrics_judge;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Minutes listed.
const ROWS: usize = 60;

fn p99(h: Option<&Histogram>) -> String {
    match h.and_then(|h| h.quantile(0.99).map(|q| (q, h.total))) {
        Some((q, n)) if q.capped => format!("≥ {} s ({n:.0})", q.seconds),
        Some((q, n)) => format!("{:.3} s ({n:.0})", q.seconds),
        None => "–".into(),
    }
}

fn word(j: Judgement) -> &'static str {
    match j {
        Judgement::Slow => "slow",
        Judgement::Fast => "fast",
        Judgement::Unknown => "too few to judge",
    }
}

pub fn section(app: &App, r: &mut String) {
    let m = &app.metrics;
    let Some((kind, url)) = &m.source else {
        return;
    };
    let _ = writeln!(r, "\n## Synapse's latency histogram\n");
    let raw = match kind {
        MetricsKind::Scrape => SCRAPES_FILE,
        MetricsKind::Prometheus => ANSWERS_FILE,
    };
    let _ = writeln!(
        r,
        "`synapse_http_server_response_time_seconds`, {} `{url}`: {} reading(s), {} minute(s) in `{LATENCY_CSV}` (the raw {} in `{raw}`). The p99 is `histogram_quantile`'s (linear within a bucket; in the top bucket \"≥\" its bound); the overall p99 leaves out SyncRestServlet and SlidingSyncRestServlet, as Grafana's panel does. A minute is slow with its p99 above the timeout for certain and at least {} requests known that slow, fast with at least {} requests and its p99 below it for certain.\n",
        match kind {
            MetricsKind::Scrape => "scraped from",
            MetricsKind::Prometheus => "asked of the Prometheus at",
        },
        m.readings,
        m.minutes.len(),
        match kind {
            MetricsKind::Scrape => "scrapes",
            MetricsKind::Prometheus => "answers",
        },
        crate::verdicts::MIN_SLOW_REQUESTS,
        crate::verdicts::MIN_MINUTE_REQUESTS,
    );
    for (at, why) in &m.resets {
        let _ = writeln!(r, "- Reset at {}: {why}.", at.format("%H:%M:%S"));
    }
    for (from, to, n) in &m.unplaced {
        let _ = writeln!(
            r,
            "- {n:.0} requests between {} and {} are in no minute (no scrape in between).",
            from.format("%H:%M:%S"),
            to.format("%H:%M:%S")
        );
    }
    for p in &m.problems {
        let _ = writeln!(r, "- Left out: {p}.");
    }
    let timeouts: BTreeSet<_> = app.timeouts.iter().map(|t| minute_floor(t.at)).collect();
    let minutes: Vec<_> = if timeouts.is_empty() {
        m.minutes.keys().copied().collect()
    } else {
        timeouts.into_iter().collect()
    };
    if minutes.is_empty() {
        let _ = writeln!(r, "\nNo minute was read.");
        return;
    }
    let _ = writeln!(
        r,
        "\n{}\n\n| minute | access log p99 (requests) | histogram p99 (requests) | histogram says | delayed-event servlets | key servlets | row |\n|---|---:|---:|---|---:|---:|---|",
        if app.timeouts.is_empty() {
            "Every minute read:"
        } else {
            "The minutes with delayed-event timeouts:"
        }
    );
    for minute in minutes.iter().take(ROWS) {
        let access = app.latency.get(&minute_of(*minute)).map_or_else(
            || "–".to_string(),
            |l| format!("≈{} ms ({})", l.p99_ms(), l.n),
        );
        let overall = m.overall(*minute);
        let said = match &overall {
            Some(h) => {
                let j = metrics_judge(h, app.restart_timeout_ms);
                let a = app
                    .latency
                    .get(&minute_of(*minute))
                    .and_then(crate::verdicts::minute_verdict);
                match (a, j) {
                    (Some(true), Judgement::Fast) | (Some(false), Judgement::Slow) => {
                        format!("{}, **the access log disagrees**", word(j))
                    }
                    _ => word(j).to_string(),
                }
            }
            None => "not read".into(),
        };
        let row = m
            .csv_line(*minute, OVERALL)
            .map_or_else(String::new, |n| format!("`{LATENCY_CSV}:{n}`"));
        let _ = writeln!(
            r,
            "| {} | {access} | {} | {said} | {} | {} | {row} |",
            minute.format("%Y-%m-%d %H:%M"),
            p99(overall.as_ref()),
            p99(m.of_servlets(*minute, &DELAYED_EVENT_SERVLETS).as_ref()),
            p99(m.of_servlets(*minute, &KEY_SERVLETS).as_ref()),
        );
    }
    if minutes.len() > ROWS {
        let _ = writeln!(
            r,
            "\n… and {} more minutes (see `{LATENCY_CSV}`).",
            minutes.len() - ROWS
        );
    }
}
