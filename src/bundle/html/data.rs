//! The figure's numbers, built once from what the App counted (the counts
//! whose totals `manifest.json` gives) and the journal's entries: per-minute
//! series over the capture window, the polls, markers, checklist stamps and
//! the interruptions. The drawing is made from this and nothing else, and
//! the page carries it as JSON, so every bar can be checked.

use super::LatencyMetrics;
use crate::app::App;
use crate::app::stats::{minute_of, minute_start};
use crate::domain::Ke;
use crate::model::SourceStatus;
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The JSON block's format name.
pub const FORMAT: &str = "callcap-report-figure/1";

/// At most this many time buckets in a series: a capture up to 15 days is
/// kept per minute, a longer one in wider buckets.
const MAX_BUCKETS: i64 = 21_600;

#[derive(Debug, Clone, Serialize)]
pub struct FigureData {
    pub format: &'static str,
    /// 60: every series holds one number per minute (wider only for
    /// captures longer than 15 days).
    pub bucket_seconds: i64,
    /// The start of the first bucket; bucket `i` starts
    /// `i * bucket_seconds` later.
    pub first_bucket: DateTime<Utc>,
    pub buckets: usize,
    pub window: Window,
    /// The log's time zone when it is not UTC (the axis stays in UTC).
    pub timezone: Option<String>,
    /// `KE-1` … `KE-4`: server lines and client entries per bucket.
    pub ke: BTreeMap<&'static str, KeSeries>,
    pub latency: Latency,
    /// Per-bucket p99 from the metrics, when the capture has them.
    pub metrics: Option<Metrics>,
    /// The client's delayed-event timeouts per bucket.
    pub client_timeouts: Vec<u32>,
    pub db: Db,
    pub markers: Vec<MarkerItem>,
    pub checklist: Vec<StampItem>,
    /// Where a source was down, stalled or reconnecting.
    pub interruptions: Vec<Span>,
    /// Homeserver stalls (the log silent past the restart timeout).
    pub stalls: Vec<Span>,
    /// Why a lane has nothing to draw, by lane.
    pub missing: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KeSeries {
    pub server: Vec<u32>,
    pub client: Vec<u32>,
    /// As in the manifest's `counts` (lines without a time are counted
    /// there but fall in no minute).
    pub server_total: u64,
    pub client_total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub restart_timeout_ms: u32,
    /// Access lines per bucket (long polls such as /sync excluded).
    pub requests: Vec<u32>,
    /// Their p99 in ms (the worst minute's, in a wider bucket).
    pub p99_ms: Vec<Option<u32>>,
    /// How Q4 judges the minute: `slow`, `fast` or null (too few).
    pub judged: Vec<Option<&'static str>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub source: String,
    pub p99_seconds: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Db {
    pub polls: u64,
    /// `[time, count]` at each poll where the count changed, and the last.
    pub otk: Vec<(DateTime<Utc>, i64)>,
    pub backlog: Vec<(DateTime<Utc>, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MarkerItem {
    pub id: u32,
    pub at: DateTime<Utc>,
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StampItem {
    pub step: u8,
    pub at: DateTime<Utc>,
    pub done: bool,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub source: String,
    pub kind: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl FigureData {
    pub fn build(
        app: &App,
        entries: &[JournalEntry],
        metrics: Option<&LatencyMetrics>,
        now: DateTime<Utc>,
    ) -> FigureData {
        let (start, end) = app.span();
        let start = start.unwrap_or(now);
        let end = end.unwrap_or(now).max(start);
        let (m0, m1) = (minute_of(start), minute_of(end));
        let per = ((m1 - m0 + 1) + MAX_BUCKETS - 1) / MAX_BUCKETS;
        let first = m0 - m0.rem_euclid(per);
        let buckets = ((m1 - first) / per + 1) as usize;
        let grid = Grid {
            first,
            per,
            buckets,
        };
        let mut ke = BTreeMap::new();
        for k in Ke::ALL {
            let (s, c) = (&app.server[k.index()], &app.client[k.index()]);
            ke.insert(
                k.name(),
                KeSeries {
                    server: grid.sum(&s.per_minute),
                    client: grid.sum(&c.per_minute),
                    server_total: s.count,
                    client_total: c.count,
                },
            );
        }
        let mut client_timeouts = vec![0u32; buckets];
        for t in app.timeouts.iter().filter(|t| t.origin() == "client") {
            if let Some(i) = grid.index(minute_of(t.at)) {
                client_timeouts[i] += 1;
            }
        }
        FigureData {
            format: FORMAT,
            bucket_seconds: per * 60,
            first_bucket: minute_start(first),
            buckets,
            window: Window { start, end },
            timezone: timezone(entries),
            ke,
            latency: latency(app, &grid),
            metrics: metrics.map(|m| Metrics {
                source: m.source.clone(),
                p99_seconds: grid.worst(m.p99_seconds.iter().map(|(t, s)| (minute_of(*t), *s))),
            }),
            client_timeouts,
            db: Db {
                polls: app.db.polls,
                otk: changes(&app.db.otk_series),
                backlog: changes(&app.db.backlog_series),
            },
            markers: app
                .live_markers()
                .map(|m| MarkerItem {
                    id: m.id,
                    at: m.at,
                    label: m.label.clone(),
                })
                .collect(),
            checklist: app
                .checklist
                .steps
                .iter()
                .flat_map(|s| {
                    s.stamps.iter().map(|st| StampItem {
                        step: s.number,
                        at: st.at,
                        done: st.done,
                        by: st.by.clone(),
                    })
                })
                .collect(),
            interruptions: interruptions(entries, end),
            stalls: app
                .stalls
                .iter()
                .map(|s| Span {
                    source: "homeserver".into(),
                    kind: "stall".into(),
                    from: s.from,
                    to: s.to,
                })
                .collect(),
            missing: missing(app, metrics.is_some()),
        }
    }

    /// A window of `buckets` empty minutes, for tests of the drawing.
    #[cfg(test)]
    pub fn empty_for_tests(buckets: usize) -> FigureData {
        let app = App::new(crate::app::Subject::default(), 2000);
        let start = DateTime::from_timestamp(1_782_842_400, 0).unwrap_or_default();
        let mut d = FigureData::build(&app, &[], None, start);
        d.buckets = buckets;
        d
    }

    /// The time bucket `i` starts at.
    pub fn bucket_start(&self, i: usize) -> DateTime<Utc> {
        self.first_bucket + chrono::Duration::seconds(self.bucket_seconds * i as i64)
    }

    /// The end of the last bucket.
    pub fn end(&self) -> DateTime<Utc> {
        self.bucket_start(self.buckets)
    }

    /// The JSON for the page's data block, safe inside `<script>`: no `<`,
    /// `>` or `&` is left in it (they can only stand in strings, where
    /// `\u003c` … read back the same).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| "null".into())
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }
}

/// Minutes into buckets of `per` minutes from minute `first`.
struct Grid {
    first: i64,
    per: i64,
    buckets: usize,
}

impl Grid {
    fn index(&self, minute: i64) -> Option<usize> {
        let i = (minute - self.first).div_euclid(self.per);
        (0..self.buckets as i64).contains(&i).then_some(i as usize)
    }

    fn sum(&self, per_minute: &BTreeMap<i64, u32>) -> Vec<u32> {
        let mut v = vec![0u32; self.buckets];
        for (m, n) in per_minute {
            if let Some(i) = self.index(*m) {
                v[i] += n;
            }
        }
        v
    }

    fn worst<T: PartialOrd + Copy>(
        &self,
        values: impl Iterator<Item = (i64, T)>,
    ) -> Vec<Option<T>> {
        let mut v: Vec<Option<T>> = vec![None; self.buckets];
        for (m, x) in values {
            if let Some(i) = self.index(m) {
                v[i] = match v[i] {
                    Some(y) if y >= x => Some(y),
                    _ => Some(x),
                };
            }
        }
        v
    }
}

fn latency(app: &App, grid: &Grid) -> Latency {
    let mut l = Latency {
        restart_timeout_ms: app.restart_timeout_ms,
        requests: vec![0; grid.buckets],
        p99_ms: grid.worst(
            app.latency
                .iter()
                .filter(|(_, l)| l.n > 0)
                .map(|(m, l)| (*m, l.p99_ms())),
        ),
        judged: vec![None; grid.buckets],
    };
    for (m, ml) in &app.latency {
        let Some(i) = grid.index(*m) else { continue };
        l.requests[i] += ml.n;
        match crate::verdicts::minute_verdict(ml) {
            Some(true) => l.judged[i] = Some("slow"),
            Some(false) if l.judged[i].is_none() => l.judged[i] = Some("fast"),
            _ => {}
        }
    }
    l
}

/// A poll series kept where it changes, and its last point.
fn changes(series: &[(DateTime<Utc>, i64)]) -> Vec<(DateTime<Utc>, i64)> {
    let mut out: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for (i, &(at, n)) in series.iter().enumerate() {
        if out.last().map(|p| p.1) != Some(n) || i + 1 == series.len() {
            out.push((at, n));
        }
    }
    out
}

fn timezone(entries: &[JournalEntry]) -> Option<String> {
    entries.iter().find_map(|e| match e {
        JournalEntry::Start { timezone, .. } if !timezone.eq_ignore_ascii_case("utc") => {
            Some(timezone.clone())
        }
        _ => None,
    })
}

/// Where each source was down: a gap's link-down time, and from a status
/// of stalled, reconnecting or error to the next live (or stop, or the end).
fn interruptions(entries: &[JournalEntry], end: DateTime<Utc>) -> Vec<Span> {
    let mut out = Vec::new();
    let mut down: BTreeMap<&str, (DateTime<Utc>, &'static str)> = BTreeMap::new();
    for e in entries {
        match e {
            JournalEntry::Gap {
                at,
                source,
                down_ms,
                ..
            } => out.push(Span {
                source: source.clone(),
                kind: "gap".into(),
                from: *at - chrono::Duration::milliseconds(*down_ms as i64),
                to: *at,
            }),
            JournalEntry::Status { at, source, status } => {
                let kind = match status {
                    SourceStatus::Stalled { .. } => Some("stalled"),
                    SourceStatus::Reconnecting { .. } => Some("reconnecting"),
                    SourceStatus::Error { .. } => Some("error"),
                    _ => None,
                };
                match kind {
                    Some(k) => {
                        down.entry(source.as_str()).or_insert((*at, k));
                    }
                    None => {
                        if let Some((from, k)) = down.remove(source.as_str()) {
                            out.push(Span {
                                source: source.clone(),
                                kind: k.into(),
                                from,
                                to: *at,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (source, (from, k)) in down {
        out.push(Span {
            source: source.to_string(),
            kind: k.into(),
            from,
            to: end.max(from),
        });
    }
    out.sort_by_key(|s| s.from);
    out
}

/// Why lanes are empty: no server log, no client files, no access lines,
/// no database, no metrics.
fn missing(app: &App, metrics: bool) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    if app.lines_total == 0 {
        m.insert("server", "no server log lines in this capture".to_string());
    }
    if app.artifacts.is_empty() {
        m.insert(
            "client",
            "no client files in this capture (no diag report, no HAR)".to_string(),
        );
    } else if app
        .artifacts
        .iter()
        .all(|a| app.not_subject.contains_key(&a.file))
    {
        m.insert(
            "client",
            "the client files in this capture are someone else's".to_string(),
        );
    }
    if app.access_lines == 0 {
        m.insert(
            "latency",
            if app.lines_total == 0 {
                "no server log lines in this capture".to_string()
            } else {
                "no access lines (synapse.access.http) in the server log".to_string()
            },
        );
    }
    if !metrics {
        m.insert("metrics", "no metrics in this capture".to_string());
    }
    if app.db.polls == 0 {
        m.insert("db", "no database in this capture".to_string());
    } else if app.db.last_ok_at.is_none() {
        let why = app
            .db
            .problems
            .iter()
            .next()
            .map(|(q, p)| format!(": {q}: {p}"))
            .unwrap_or_default();
        m.insert("db", format!("the database could not be read{why}"));
    }
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_gap_and_a_reconnect_become_spans_and_an_open_stall_runs_to_the_end() {
        let e = vec![
            JournalEntry::Status {
                at: t("2026-06-30T18:01:00Z"),
                source: "server-log".into(),
                status: SourceStatus::Reconnecting {
                    attempt: 1,
                    next_try_ms: 500,
                    reason: "eof".into(),
                },
            },
            JournalEntry::Status {
                at: t("2026-06-30T18:01:30Z"),
                source: "server-log".into(),
                status: SourceStatus::Live,
            },
            JournalEntry::Gap {
                at: t("2026-06-30T18:01:30Z"),
                source: "server-log".into(),
                down_ms: 30_000,
                caught_up_bytes: 10,
            },
            JournalEntry::Status {
                at: t("2026-06-30T18:03:00Z"),
                source: "database".into(),
                status: SourceStatus::Stalled {
                    reason: "no answer".into(),
                },
            },
        ];
        let s = interruptions(&e, t("2026-06-30T18:05:00Z"));
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(
            (s[0].kind.as_str(), s[0].to),
            ("reconnecting", t("2026-06-30T18:01:30Z"))
        );
        assert_eq!(
            (s[1].kind.as_str(), s[1].from),
            ("gap", t("2026-06-30T18:01:00Z"))
        );
        assert_eq!(
            (s[2].source.as_str(), s[2].to),
            ("database", t("2026-06-30T18:05:00Z"))
        );
    }

    #[test]
    fn polls_keep_their_changes_and_the_last() {
        let p = |m: u32, n| (t(&format!("2026-06-30T18:{m:02}:00Z")), n);
        let c = changes(&[p(0, 50), p(1, 50), p(2, 49), p(3, 49), p(4, 49)]);
        assert_eq!(c, vec![p(0, 50), p(2, 49), p(4, 49)]);
    }

    #[test]
    fn a_long_window_is_bucketed_and_counts_are_kept() {
        let g = Grid {
            first: 0,
            per: 3,
            buckets: 2,
        };
        let m = BTreeMap::from([(0, 1), (2, 2), (3, 4), (9, 100)]);
        assert_eq!(g.sum(&m), vec![3, 4]);
        assert_eq!(
            g.worst([(0, 5u32), (1, 9), (4, 2)].into_iter()),
            vec![Some(9), Some(2)]
        );
    }
}
