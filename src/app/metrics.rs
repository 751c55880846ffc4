//! Synapse's latency metrics in the App: per minute and servlet, the
//! histogram of the requests Synapse answered, whichever source read them
//! (its metrics listener or Prometheus). Everything that shows or weighs
//! them (the KE-4 pane, Q4, `metrics/latency.csv`, the report) reads
//! [`MetricsState`], the one place they are kept; its per-minute p99 series
//! is [`MetricsState::p99_series`].

use super::{App, Effect};
use crate::domain::histogram::{Histogram, Quantile};
use crate::domain::synapse_metrics::LONG_POLL_SERVLETS;
use crate::model::journal_entry::JournalEntry;
use crate::model::metrics::{MetricsKind, MetricsReading, MetricsReport};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// The overall row's servlet name.
pub const OVERALL: &str = "*";

/// An increase between two scrapes further apart than this is not put in
/// one minute (an outage in between: its requests may belong to several).
pub const MAX_PLACED_SECS: i64 = 65;

/// Problems and resets kept for the report (later ones are counted).
const KEPT: usize = 50;

/// The metrics as far as they were read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsState {
    /// Where they come from, and its URL (without a password).
    pub source: Option<(MetricsKind, String)>,
    /// Per minute (its start), per servlet: the requests of that minute.
    /// A minute present with no servlet was read and had no request; a
    /// minute absent was not read.
    pub minutes: BTreeMap<DateTime<Utc>, BTreeMap<String, Histogram>>,
    /// Prometheus's minute still running when last asked.
    pub partial: Option<DateTime<Utc>>,
    pub readings: u64,
    pub last_reading: Option<DateTime<Utc>>,
    /// Synapse restarts seen between scrapes: when, and why callcap thinks so.
    pub resets: Vec<(DateTime<Utc>, String)>,
    /// Requests between scrapes too far apart to place in a minute:
    /// (from, to, requests).
    pub unplaced: Vec<(DateTime<Utc>, DateTime<Utc>, f64)>,
    /// What the readings could not use.
    pub problems: Vec<String>,
}

/// One minute of [`MetricsState::p99_series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteP99 {
    /// The minute's start (UTC).
    pub minute: DateTime<Utc>,
    /// `None`: no request that minute. `capped`: in the top bucket, so
    /// "at least `seconds`".
    pub p99: Option<Quantile>,
    pub requests: f64,
}

/// One row of `metrics/latency.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    pub minute: DateTime<Utc>,
    /// A servlet's class name, or [`OVERALL`] (long polls left out).
    pub servlet: String,
    pub p99: Option<Quantile>,
    pub requests: f64,
    pub histogram: Histogram,
}

/// The start of the minute `t` falls in.
pub fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}

impl MetricsState {
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// Every servlet seen, in name order.
    pub fn servlets(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.minutes.values().flat_map(|m| m.keys()).collect();
        set.into_iter().cloned().collect()
    }

    /// The requests of `minute` over every servlet but the long polls.
    pub fn overall(&self, minute: DateTime<Utc>) -> Option<Histogram> {
        let m = self.minutes.get(&minute)?;
        let mut total = Histogram::default();
        for (servlet, h) in m {
            if !LONG_POLL_SERVLETS.contains(&servlet.as_str()) {
                if total.le.is_empty() && total.total == 0.0 {
                    total = h.clone();
                } else {
                    total.add(h);
                }
            }
        }
        Some(total)
    }

    /// The requests of `minute` to any of `servlets`.
    pub fn of_servlets(&self, minute: DateTime<Utc>, servlets: &[&str]) -> Option<Histogram> {
        let m = self.minutes.get(&minute)?;
        let mut total = Histogram::default();
        for s in servlets {
            if let Some(h) = m.get(*s) {
                if total.le.is_empty() && total.total == 0.0 {
                    total = h.clone();
                } else {
                    total.add(h);
                }
            }
        }
        Some(total)
    }

    /// The overall p99 of each of the `n` minutes ending with the one that
    /// holds `now`, oldest first (`None`: not read, or no request).
    pub fn p99_per_minute(&self, now: DateTime<Utc>, n: usize) -> Vec<Option<Quantile>> {
        let last = minute_floor(now);
        (0..n)
            .rev()
            .map(|k| {
                let m = last - Duration::minutes(k as i64);
                self.overall(m).and_then(|h| h.quantile(0.99))
            })
            .collect()
    }

    /// Synapse's overall p99 (long polls left out) of every minute read,
    /// oldest first, with its request count: the per-minute series from
    /// the metrics, as the `*` rows of `metrics/latency.csv` hold it. A
    /// minute with no request has no p99; a minute not read is absent.
    pub fn p99_series(&self) -> Vec<MinuteP99> {
        self.minutes
            .keys()
            .filter_map(|&minute| {
                let h = self.overall(minute)?;
                Some(MinuteP99 {
                    minute,
                    p99: h.quantile(0.99),
                    requests: h.total,
                })
            })
            .collect()
    }

    /// The rows of `metrics/latency.csv`, in file order: per minute the
    /// overall row, then every servlet seen.
    pub fn rows(&self) -> Vec<LatencyRow> {
        let servlets = self.servlets();
        let mut out = Vec::with_capacity(self.minutes.len() * (servlets.len() + 1));
        for (&minute, m) in &self.minutes {
            let overall = self.overall(minute).unwrap_or_default();
            out.push(row(minute, OVERALL, overall));
            for s in &servlets {
                out.push(row(minute, s, m.get(s).cloned().unwrap_or_default()));
            }
        }
        out
    }

    /// The line of `metrics/latency.csv` (1-based, the header is line 1)
    /// holding `minute` and `servlet`.
    pub fn csv_line(&self, minute: DateTime<Utc>, servlet: &str) -> Option<usize> {
        let i = self.minutes.range(..minute).count();
        self.minutes.get(&minute)?;
        let servlets = self.servlets();
        let j = if servlet == OVERALL {
            0
        } else {
            1 + servlets.iter().position(|s| s == servlet)?
        };
        Some(2 + i * (servlets.len() + 1) + j)
    }

    fn keep_problem(&mut self, p: String) {
        if self.problems.len() < KEPT {
            self.problems.push(p);
        }
    }
}

fn row(minute: DateTime<Utc>, servlet: &str, h: Histogram) -> LatencyRow {
    LatencyRow {
        minute,
        servlet: servlet.to_string(),
        p99: h.quantile(0.99),
        requests: h.total,
        histogram: h,
    }
}

impl App {
    pub(super) fn on_metrics(
        &mut self,
        at: DateTime<Utc>,
        report: Box<MetricsReport>,
        fx: &mut Vec<Effect>,
    ) {
        self.apply_metrics(at, &report);
        fx.push(Effect::Journal(JournalEntry::Metrics { at, report }));
    }

    /// Folds a reading into the state (also when restoring a journal).
    pub(super) fn apply_metrics(&mut self, at: DateTime<Utc>, report: &MetricsReport) {
        if self.wall_clock_span {
            self.tick(at);
        }
        let m = &mut self.metrics;
        m.source = Some((report.kind, report.url.clone()));
        m.readings += 1;
        m.last_reading = Some(at);
        let mut notes = Vec::new();
        match &report.reading {
            MetricsReading::Baseline => {}
            MetricsReading::Increase {
                since,
                servlets,
                reset,
            } => {
                if let Some(why) = reset {
                    if m.resets.len() < KEPT {
                        m.resets.push((at, why.clone()));
                    }
                    notes.push(format!(
                        "{why}; counted from zero since (never a negative rate)"
                    ));
                }
                if (at - *since).num_seconds() <= MAX_PLACED_SECS {
                    let minute = m.minutes.entry(minute_floor(at)).or_default();
                    for (s, h) in servlets {
                        minute
                            .entry(s.clone())
                            .and_modify(|x| x.add(h))
                            .or_insert_with(|| h.clone());
                    }
                } else {
                    let n: f64 = servlets.values().map(|h| h.total).sum();
                    m.unplaced.push((*since, at, n));
                    notes.push(format!(
                        "{n:.0} requests between scrapes {} s apart are in no minute",
                        (at - *since).num_seconds()
                    ));
                }
            }
            MetricsReading::Minutes {
                minutes,
                partial,
                problems,
            } => {
                for mh in minutes {
                    m.minutes.insert(mh.minute, mh.servlets.clone());
                }
                m.partial = *partial;
                for p in problems {
                    m.keep_problem(p.clone());
                }
            }
        }
        for n in notes {
            self.note(at, "metrics", n);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::Subject;
    use crate::app::event::Event;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap()
    }

    fn hist(fast: f64, slow: f64) -> Histogram {
        Histogram::from_buckets(vec![
            (0.1, fast),
            (2.5, fast),
            (5.0, fast + slow),
            (f64::INFINITY, fast + slow),
        ])
        .unwrap()
    }

    fn increase(since: i64, servlets: &[(&str, Histogram)], reset: bool) -> Box<MetricsReport> {
        Box::new(MetricsReport {
            kind: MetricsKind::Scrape,
            url: "http://127.0.0.1:9000/_synapse/metrics".into(),
            reading: MetricsReading::Increase {
                since: t(since),
                servlets: servlets
                    .iter()
                    .map(|(s, h)| (s.to_string(), h.clone()))
                    .collect(),
                reset: reset.then(|| "Synapse restarted".to_string()),
            },
            raw: None,
        })
    }

    #[test]
    fn increases_fill_their_minute_and_the_rows_follow_the_csv_order() {
        let mut app = App::new(Subject::default(), 2000);
        let fx = app.update(Event::Metrics {
            at: t(15),
            report: increase(0, &[("KeyUploadServlet", hist(10.0, 0.0))], false),
        });
        assert!(matches!(
            fx[0],
            Effect::Journal(JournalEntry::Metrics { .. })
        ));
        app.update(Event::Metrics {
            at: t(30),
            report: increase(
                15,
                &[
                    ("KeyUploadServlet", hist(5.0, 1.0)),
                    ("SyncRestServlet", hist(0.0, 9.0)),
                ],
                false,
            ),
        });
        // A minute read with no request at all.
        app.update(Event::Metrics {
            at: t(75),
            report: increase(60, &[], false),
        });
        let m = &app.metrics;
        assert_eq!(m.minutes.len(), 2);
        let rows = m.rows();
        let names: Vec<(i64, &str)> = rows
            .iter()
            .map(|r| (r.minute.timestamp() - t(0).timestamp(), r.servlet.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (0, "*"),
                (0, "KeyUploadServlet"),
                (0, "SyncRestServlet"),
                (60, "*"),
                (60, "KeyUploadServlet"),
                (60, "SyncRestServlet"),
            ]
        );
        // The overall row leaves the long poll out.
        assert_eq!(rows[0].requests, 16.0);
        assert!(rows[0].p99.unwrap().seconds > 2.5);
        assert_eq!(rows[3].requests, 0.0);
        assert_eq!(rows[3].p99, None);
        assert_eq!(m.csv_line(t(60), "*"), Some(5));
        assert_eq!(m.csv_line(t(0), "SyncRestServlet"), Some(4));
        assert_eq!(m.csv_line(t(120), "*"), None);
        // The per-minute series is the overall rows'.
        let series = m.p99_series();
        assert_eq!(series.len(), 2);
        assert_eq!(
            (series[0].minute, series[0].p99, series[0].requests),
            (rows[0].minute, rows[0].p99, rows[0].requests)
        );
        assert_eq!((series[1].minute, series[1].p99), (t(60), None));
    }

    #[test]
    fn a_reset_is_noted_and_an_increase_over_an_outage_is_in_no_minute() {
        let mut app = App::new(Subject::default(), 2000);
        app.update(Event::Metrics {
            at: t(200),
            report: increase(20, &[("KeyUploadServlet", hist(30.0, 0.0))], true),
        });
        assert!(app.metrics.minutes.is_empty());
        assert_eq!(app.metrics.unplaced.len(), 1);
        assert_eq!(app.metrics.resets.len(), 1);
        assert!(
            app.notes
                .iter()
                .any(|(_, s, n)| s == "metrics" && n.contains("never a negative"))
        );
    }
}
