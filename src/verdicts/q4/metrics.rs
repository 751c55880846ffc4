//! Q4's second source: Synapse's own latency histogram (what Grafana's
//! panels show), per minute, from `metrics/latency.csv`. It decides what
//! the access log left undecided, under the same rule (a p99 counts only
//! with enough requests behind it, and only where the buckets are sure of
//! its side of the timeout); where both judge a minute and disagree, the
//! timeout is undecided and the summary says so rather than pick one.

use super::{Classified, MIN_MINUTE_REQUESTS, MIN_SLOW_REQUESTS, Why, minute_verdict};
use crate::app::App;
use crate::app::metrics::{OVERALL, minute_floor};
use crate::app::stats::minute_of;
use crate::domain::histogram::{Histogram, Judgement};
use crate::domain::synapse_metrics::{DELAYED_EVENT_SERVLETS, KEY_SERVLETS};
use crate::model::metrics::LATENCY_CSV;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// Minutes shown in the summary.
const MINUTES_SHOWN: usize = 3;

/// The histogram's word on a minute, by Q4's thresholds.
pub fn judge(h: &Histogram, timeout_ms: u32) -> Judgement {
    h.judge(
        f64::from(timeout_ms) / 1000.0,
        f64::from(MIN_SLOW_REQUESTS),
        f64::from(MIN_MINUTE_REQUESTS),
    )
}

/// `metrics/latency.csv:N` of a minute's row.
pub fn cite(app: &App, minute: DateTime<Utc>, servlet: &str) -> Option<String> {
    app.metrics
        .csv_line(minute, servlet)
        .map(|n| format!("{LATENCY_CSV}:{n}"))
}

/// The minutes a timeout's request was in flight in.
fn minutes_of(at: DateTime<Utc>, timeout_ms: u32) -> Vec<DateTime<Utc>> {
    let start = minute_floor(at - Duration::milliseconds(i64::from(timeout_ms)));
    let end = minute_floor(at);
    if start == end {
        vec![end]
    } else {
        vec![start, end]
    }
}

/// What the access log says of a minute: slow, fast or nothing.
fn access_verdict(app: &App, minute: DateTime<Utc>) -> Option<bool> {
    app.latency.get(&minute_of(minute)).and_then(minute_verdict)
}

fn metrics_verdict(app: &App, minute: DateTime<Utc>) -> Judgement {
    app.metrics
        .overall(minute)
        .map_or(Judgement::Unknown, |h| judge(&h, app.restart_timeout_ms))
}

/// Refines the access log's classification with the histogram: timeouts
/// it left undecided are judged by their minutes' delayed-event requests,
/// then by the minute's p99; a minute p99 the histogram contradicts makes
/// its timeout undecided.
pub(super) fn refine(app: &App, classified: &mut [Classified]) {
    if app.metrics.is_empty() {
        return;
    }
    let timeout = app.restart_timeout_ms;
    let timeout_s = f64::from(timeout) / 1000.0;
    for c in classified.iter_mut() {
        let at = c.ended;
        let minute = minute_floor(at);
        match c.why {
            Why::NoAccess | Why::TooFew => {
                let mut delayed = Histogram::default();
                let mut row = None;
                for m in minutes_of(at, timeout) {
                    if let Some(h) = app.metrics.of_servlets(m, &DELAYED_EVENT_SERVLETS) {
                        delayed.add(&h);
                        for s in DELAYED_EVENT_SERVLETS {
                            if app
                                .metrics
                                .minutes
                                .get(&m)
                                .is_some_and(|x| x.contains_key(s))
                            {
                                row = row.or_else(|| cite(app, m, s));
                            }
                        }
                    }
                }
                let all_fast =
                    !delayed.is_empty() && delayed.known_below(timeout_s) >= delayed.total;
                if all_fast {
                    c.retag(Why::MetricsFastDelayed, row);
                    continue;
                }
                match metrics_verdict(app, minute) {
                    Judgement::Slow => c.retag(Why::MetricsSlowMinute, cite(app, minute, OVERALL)),
                    Judgement::Fast => c.retag(Why::MetricsFastMinute, cite(app, minute, OVERALL)),
                    Judgement::Unknown => {}
                }
            }
            Why::SlowMinute | Why::FastMinute => {
                let disagree = match metrics_verdict(app, minute) {
                    Judgement::Slow => c.why == Why::FastMinute,
                    Judgement::Fast => c.why == Why::SlowMinute,
                    Judgement::Unknown => false,
                };
                if disagree {
                    c.retag(Why::Disagree, cite(app, minute, OVERALL));
                }
            }
            _ => {}
        }
    }
}

/// `0.05 s` / `≥ 10 s` / `–`.
fn p99_text(h: &Histogram) -> String {
    match h.quantile(0.99) {
        Some(q) if q.capped => format!("≥ {} s", q.seconds),
        Some(q) => format!("{:.2} s", q.seconds),
        None => "no request".into(),
    }
}

/// The minutes with timeouts, oldest first.
fn timeout_minutes(classified: &[Classified]) -> Vec<DateTime<Utc>> {
    let set: BTreeSet<DateTime<Utc>> = classified.iter().map(|c| minute_floor(c.ended)).collect();
    set.into_iter().collect()
}

/// What the histogram says of each minute with timeouts, for the summary,
/// and the rows it cites: each minute's overall row, and the delayed-event
/// and key servlets' rows whose p99 reached the timeout.
pub(super) fn annotate(app: &App, classified: &[Classified]) -> (String, Vec<String>) {
    let Some((kind, _)) = &app.metrics.source else {
        return (String::new(), Vec::new());
    };
    let timeout = app.restart_timeout_ms;
    let timeout_s = f64::from(timeout) / 1000.0;
    let minutes = timeout_minutes(classified);
    let mut shown = Vec::new();
    let mut unread = 0;
    let mut disagree = Vec::new();
    let mut basis = Vec::new();
    for m in &minutes {
        let Some(h) = app.metrics.overall(*m) else {
            unread += 1;
            continue;
        };
        let row = cite(app, *m, OVERALL).unwrap_or_default();
        if shown.len() < MINUTES_SHOWN {
            // The delayed-event and key servlets' own p99 beside it.
            let mut by_kind = String::new();
            for (what, servlets) in [
                ("delayed events", &DELAYED_EVENT_SERVLETS[..]),
                ("keys", &KEY_SERVLETS[..]),
            ] {
                if let Some(x) = app.metrics.of_servlets(*m, servlets)
                    && x.total > 0.0
                {
                    by_kind.push_str(&format!(", {what} {} over {:.0}", p99_text(&x), x.total));
                }
            }
            shown.push(format!(
                "{} p99 {} over {:.0} requests{by_kind} ({row})",
                m.format("%H:%M"),
                p99_text(&h),
                h.total
            ));
            basis.push(row.clone());
            for s in DELAYED_EVENT_SERVLETS.iter().chain(KEY_SERVLETS.iter()) {
                let slow = app.metrics.minutes[m]
                    .get(*s)
                    .and_then(|x| x.quantile(0.99))
                    .is_some_and(|q| q.seconds >= timeout_s);
                if slow && let Some(r) = cite(app, *m, s) {
                    basis.push(r);
                }
            }
        }
        let (a, b) = (access_verdict(app, *m), judge(&h, timeout));
        match (a, b) {
            (Some(true), Judgement::Fast) => disagree.push(format!(
                "at {} the access log's p99 is slow and the histogram's fast ({row})",
                m.format("%H:%M")
            )),
            (Some(false), Judgement::Slow) => disagree.push(format!(
                "at {} the histogram shows a spike the access log does not ({row})",
                m.format("%H:%M")
            )),
            _ => {}
        }
    }
    if minutes.is_empty() {
        return (String::new(), basis);
    }
    let mut s = format!(" Synapse's own histogram ({}):", kind.name());
    if shown.is_empty() {
        s.push_str(" no reading covers the minutes with timeouts.");
    } else {
        s.push(' ');
        s.push_str(&shown.join("; "));
        if minutes.len() > shown.len() + unread {
            s.push_str(&format!(
                "; {} more minutes",
                minutes.len() - shown.len() - unread
            ));
        }
        if unread > 0 {
            s.push_str(&format!("; {unread} minute(s) with timeouts were not read"));
        }
        s.push('.');
    }
    if !disagree.is_empty() {
        s.push_str(&format!(
            " The access log and the histogram disagree: {}.",
            disagree.join("; ")
        ));
    }
    (s, basis)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::q4;
    use super::*;
    use crate::app::event::Event;
    use crate::app::{EvidenceRef, Timeout};
    use crate::model::metrics::{MetricsKind, MetricsReading, MetricsReport, MinuteHistograms};
    use crate::verdicts::{INSUFFICIENT, test_app as app};

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_782_842_400_000 + ms).unwrap()
    }

    /// `fast` requests under 0.1 s and `slow` in (2.5, 5] s.
    fn hist(fast: f64, slow: f64) -> Histogram {
        Histogram::from_buckets(vec![
            (0.1, fast),
            (1.0, fast),
            (2.5, fast),
            (5.0, fast + slow),
            (10.0, fast + slow),
            (f64::INFINITY, fast + slow),
        ])
        .unwrap()
    }

    /// Prometheus's answer for the minute of `ms`.
    fn read(a: &mut App, ms: i64, servlets: &[(&str, Histogram)]) {
        a.update(Event::Metrics {
            at: at(ms),
            report: Box::new(MetricsReport {
                kind: MetricsKind::Prometheus,
                url: "http://127.0.0.1:9090".into(),
                reading: MetricsReading::Minutes {
                    minutes: vec![MinuteHistograms {
                        minute: minute_floor(at(ms)),
                        servlets: servlets
                            .iter()
                            .map(|(s, h)| (s.to_string(), h.clone()))
                            .collect(),
                    }],
                    partial: None,
                    problems: vec![],
                },
                raw: None,
            }),
        });
    }

    fn client(a: &mut App, ms: i64, n: usize) {
        a.timeouts.push(Timeout::client(
            at(ms),
            EvidenceRef(format!("client/d.json#entries[{n}]")),
        ));
    }

    /// `n` access lines in the minute of `ms`, `slow` of them at 3 s.
    fn access(a: &mut App, ms: i64, n: u32, slow: u32) {
        let l = a.latency.entry(minute_of(at(ms))).or_default();
        for i in 0..n {
            l.add(if i < slow { 3_000 } else { 20 }, 2_000);
        }
    }

    #[test]
    fn without_access_lines_the_histogram_decides_and_is_cited() {
        let mut a = app();
        client(&mut a, 30_000, 0);
        client(&mut a, 40_000, 1);
        assert_eq!(q4(&a).answer, INSUFFICIENT);
        // 40 requests, 3 of them over 2.5 s: slow, with its row cited.
        read(&mut a, 30_000, &[("KeyUploadServlet", hist(37.0, 3.0))]);
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(
            v.summary
                .contains("p99 in Synapse's histogram was at or above 2000 ms"),
            "{}",
            v.summary
        );
        assert!(
            v.summary
                .contains("Synapse's own histogram (prometheus): 18:00 p99"),
            "{}",
            v.summary
        );
        assert!(
            v.summary
                .contains(", keys 4.67 s over 40 (metrics/latency.csv:2)"),
            "the key servlets' own p99: {}",
            v.summary
        );
        assert!(!v.summary.contains("delayed events"), "{}", v.summary);
        assert!(
            v.basis.contains(&"metrics/latency.csv:2".to_string()),
            "{:?}",
            v.basis
        );
        assert!(
            v.basis.contains(&"metrics/latency.csv:3".to_string()),
            "the slow servlet's row: {:?}",
            v.basis
        );
    }

    #[test]
    fn a_histogram_p99_from_too_few_requests_or_straddling_the_timeout_decides_nothing() {
        for h in [
            // Two slow requests: the p99 is slow, but rests on too few.
            hist(10.0, 2.0),
            // Fast, but only 12 requests.
            hist(12.0, 0.0),
            // The p99 in (1, 2.5]: which side of 2 s is unknown.
            Histogram::from_buckets(vec![(1.0, 50.0), (2.5, 53.0), (f64::INFINITY, 53.0)]).unwrap(),
        ] {
            let mut a = app();
            client(&mut a, 30_000, 0);
            read(&mut a, 30_000, &[("KeyUploadServlet", h.clone())]);
            assert_eq!(q4(&a).answer, INSUFFICIENT, "{h:?}");
        }
        // NaN never reaches a histogram; an empty minute is no request.
        let mut a = app();
        client(&mut a, 30_000, 0);
        read(&mut a, 30_000, &[]);
        let v = q4(&a);
        assert_eq!(v.answer, INSUFFICIENT);
        assert!(
            v.summary.contains("p99 no request over 0 requests"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn fast_delayed_event_requests_in_the_histogram_say_fast() {
        let mut a = app();
        client(&mut a, 30_000, 0);
        read(
            &mut a,
            30_000,
            &[
                ("RestartDelayedEventServlet", hist(4.0, 0.0)),
                ("KeyUploadServlet", hist(5.0, 0.0)),
            ],
        );
        let v = q4(&a);
        assert_eq!(v.answer, "client-retry", "{v:?}");
        assert!(
            v.summary
                .contains("delayed-event requests all took under 2000 ms by Synapse's histogram"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn when_the_access_log_and_the_histogram_disagree_the_summary_says_so_and_decides_nothing() {
        // The access log: 300 fast requests. The histogram: a spike.
        let mut a = app();
        access(&mut a, 0, 300, 0);
        client(&mut a, 30_000, 0);
        let before = q4(&a);
        assert_eq!(before.answer, "client-retry");
        read(&mut a, 30_000, &[("KeyUploadServlet", hist(100.0, 10.0))]);
        let v = q4(&a);
        assert_eq!(v.answer, INSUFFICIENT, "{v:?}");
        assert!(v.summary.contains("judge differently"), "{}", v.summary);
        assert!(
            v.summary.contains(
                "the histogram shows a spike the access log does not (metrics/latency.csv:2)"
            ),
            "{}",
            v.summary
        );
        // The reverse: a slow access-log minute the histogram calls fast.
        let mut a = app();
        access(&mut a, 0, 30, 5);
        client(&mut a, 30_000, 0);
        assert_eq!(q4(&a).answer, "homeserver-latency");
        read(&mut a, 30_000, &[("KeyUploadServlet", hist(300.0, 0.0))]);
        let v = q4(&a);
        assert_eq!(v.answer, INSUFFICIENT, "{v:?}");
        assert!(
            v.summary
                .contains("access log's p99 is slow and the histogram's fast"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn two_timeouts_citing_the_same_entry_are_each_judged_in_their_own_minute() {
        // Two timeouts that name one client entry (a capture never makes
        // such a pair; a hand-built App can), five minutes apart: the
        // first minute slow in the histogram, the second fast.
        let mut a = app();
        client(&mut a, 30_000, 0);
        client(&mut a, 330_000, 0);
        read(&mut a, 30_000, &[("KeyUploadServlet", hist(37.0, 3.0))]);
        read(&mut a, 330_000, &[("KeyUploadServlet", hist(300.0, 0.0))]);
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(
            v.summary
                .contains("1 of 2 delayed-event timeouts were the homeserver's latency"),
            "{}",
            v.summary
        );
        assert!(
            v.summary.contains("18:00 p99") && v.summary.contains("18:05 p99"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_stall_stays_homeserver_latency_and_cites_the_histograms_row_of_its_minute() {
        let mut a = app();
        access(&mut a, 0, 300, 0);
        a.stalls.push(crate::app::event::ServerStall {
            from: at(5_000),
            to: at(11_000),
            line_no: 40,
            burst: 5,
            delayed_restart: false,
        });
        client(&mut a, 10_000, 0);
        read(&mut a, 10_000, &[("KeyUploadServlet", hist(20.0, 2.0))]);
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(
            v.basis.contains(&"metrics/latency.csv:2".to_string()),
            "{:?}",
            v.basis
        );
        assert!(v.basis.contains(&"server/homeserver.log:40".to_string()));
    }
}
