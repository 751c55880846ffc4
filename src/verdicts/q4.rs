//! Q4: are the delayed-event timeouts homeserver latency? Judged by the
//! delayed-event requests themselves, homeserver stalls, and a minute's
//! p99 only where enough requests stand behind it.

pub mod metrics;

use super::{INSUFFICIENT, Verdict, set_aside_artefacts};
use crate::app::event::ServerStall;
use crate::app::stats::{DelayedLatency, MinuteLatency, minute_of};
use crate::app::{App, Timeout};
use crate::domain::stall::BURST_WINDOW_MS;
use chrono::{DateTime, Utc};

/// How far apart (ms) a client timeout's request start and a server restart
/// request's start may be and still be the same request: under half the
/// client's 5 s restart interval, so a neighbouring restart does not match.
const MATCH_SLACK_MS: i64 = 2_500;

/// A minute is slow only when its p99 is at or above the timeout and at
/// least this many requests took that long: below 100 requests the
/// nearest-rank p99 is the minute's slowest request, and one or two slow
/// requests (a large media download) say nothing about the homeserver.
pub const MIN_SLOW_REQUESTS: u32 = 3;

/// A minute is fast only when it holds at least this many requests (long
/// polls excluded) and its p99 is below the timeout.
pub const MIN_MINUTE_REQUESTS: u32 = 20;

/// One timeout as Q4 classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latency {
    /// Its restart request took the timeout or longer, the homeserver
    /// stalled while it waited, or it fell in a slow minute.
    Slow,
    /// The homeserver answered the delayed-event requests of its minute
    /// under the timeout, or it fell in a fast minute.
    Fast,
    /// Nothing of the above can be said.
    Unknown,
}

/// Why a timeout was classified as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    SlowRequest,
    Stall,
    SlowMinute,
    FastDelayed,
    FastMinute,
    /// The minute has no access lines at all.
    NoAccess,
    /// The minute has access lines, but too few to judge and no
    /// delayed-event request.
    TooFew,
    /// Synapse's histogram: the delayed-event requests of its minutes all
    /// took under the timeout.
    MetricsFastDelayed,
    /// Synapse's histogram: its minute was slow.
    MetricsSlowMinute,
    /// Synapse's histogram: its minute was fast.
    MetricsFastMinute,
    /// The access log's p99 and Synapse's histogram judge its minute
    /// differently.
    Disagree,
}

/// A classified timeout with the references it rests on.
#[derive(Debug, Clone, PartialEq)]
struct Classified {
    latency: Latency,
    why: Why,
    /// When the timeout ended: its client entry's time or its slow
    /// restart's access line's, or the end of the silence of a stall that
    /// is a timeout of its own. Synapse's histogram judges its minutes.
    ended: DateTime<Utc>,
    evidence: Vec<String>,
    /// Slow because the homeserver stalled: the stall's silence in ms.
    stall_ms: Option<i64>,
}

impl Classified {
    fn new(why: Why, ended: DateTime<Utc>, evidence: Vec<String>) -> Classified {
        let latency = match why {
            Why::SlowRequest | Why::Stall | Why::SlowMinute | Why::MetricsSlowMinute => {
                Latency::Slow
            }
            Why::FastDelayed
            | Why::FastMinute
            | Why::MetricsFastDelayed
            | Why::MetricsFastMinute => Latency::Fast,
            Why::NoAccess | Why::TooFew | Why::Disagree => Latency::Unknown,
        };
        Classified {
            latency,
            why,
            ended,
            evidence,
            stall_ms: None,
        }
    }

    /// Classified again, for another reason, citing one more row.
    fn retag(&mut self, why: Why, more: Option<String>) {
        let mut evidence = std::mem::take(&mut self.evidence);
        evidence.extend(more);
        *self = Classified {
            stall_ms: self.stall_ms,
            ..Classified::new(why, self.ended, evidence)
        };
    }

    fn stalled(ended: DateTime<Utc>, evidence: Vec<String>, stall: &ServerStall) -> Classified {
        Classified {
            stall_ms: Some(stall.silence_ms()),
            ..Classified::new(Why::Stall, ended, evidence)
        }
    }
}

/// A minute's verdict: slow, fast, or too few requests to say.
pub fn minute_verdict(l: &MinuteLatency) -> Option<bool> {
    let p99_slow = l.p99_at_or_above_timeout();
    if p99_slow && l.at_or_above_timeout >= MIN_SLOW_REQUESTS {
        Some(true)
    } else if !p99_slow && l.n >= MIN_MINUTE_REQUESTS {
        Some(false)
    } else {
        None
    }
}

/// The delayed-event requests of the minutes a request was in flight in
/// (`from`..=`to` in ms, widened by the clock slack).
fn delayed_requests(app: &App, from_ms: i64, to_ms: i64) -> DelayedLatency {
    let minute = |ms| DateTime::from_timestamp_millis(ms).map(minute_of);
    let mut d = DelayedLatency::default();
    let (Some(lo), Some(hi)) = (
        minute(from_ms - MATCH_SLACK_MS),
        minute(to_ms + MATCH_SLACK_MS),
    ) else {
        return d;
    };
    for (_, l) in app.latency.range(lo..=hi.max(lo)) {
        let x = l.delayed;
        if x.n > 0 && (d.n == 0 || x.max_ms > d.max_ms) {
            d.max_ms = x.max_ms;
            d.max_line = x.max_line;
        }
        d.n += x.n;
        d.at_or_above_timeout += x.at_or_above_timeout;
    }
    d
}

/// A client timeout no slow restart or stall accounts for: the
/// delayed-event requests of its minutes, else its minute's p99.
fn by_minute(app: &App, c: &Timeout, start_ms: i64) -> Classified {
    let me = c.evidence(&app.server_logs);
    let d = delayed_requests(app, start_ms, c.at.timestamp_millis());
    if d.n > 0 && d.at_or_above_timeout == 0 {
        return Classified::new(Why::FastDelayed, c.at, vec![me, app.server_ref(d.max_line)]);
    }
    match app.latency.get(&minute_of(c.at)) {
        None => Classified::new(Why::NoAccess, c.at, vec![me]),
        Some(l) => match minute_verdict(l) {
            Some(true) => {
                let mut ev = vec![me];
                ev.extend(l.slow_lines().map(|n| app.server_ref(n)));
                Classified::new(Why::SlowMinute, c.at, ev)
            }
            Some(false) => Classified::new(Why::FastMinute, c.at, vec![me]),
            None => Classified::new(Why::TooFew, c.at, vec![me]),
        },
    }
}

/// Classifies every timeout. A client timeout and the server restart
/// request it gave up on are one timeout, not two: pairs whose request
/// starts lie within [`MATCH_SLACK_MS`] are matched nearest first, each
/// request to at most one timeout.
///
/// Synapse times a request from when it has read it, so a stall shows no
/// slow request: a client timeout whose request was in flight during a
/// stall's silence is slow. A stall no client timeout fell in, whose burst
/// holds a restart request, is a timeout of its own (the restart waited
/// out the silence), unless a slow restart already counted ends in it.
fn classify_timeouts(app: &App) -> Vec<Classified> {
    let timeout = i64::from(app.restart_timeout_ms);
    let client: Vec<&Timeout> = app
        .timeouts
        .iter()
        .filter(|t| t.took_ms().is_none())
        .collect();
    let server: Vec<&Timeout> = app
        .timeouts
        .iter()
        .filter(|t| t.took_ms().is_some())
        .collect();
    let started = |t: &Timeout| t.at.timestamp_millis() - t.took_ms().map_or(timeout, i64::from);
    let client_starts: Vec<i64> = client.iter().map(|c| started(c)).collect();
    let server_starts: Vec<i64> = server.iter().map(|s| started(s)).collect();
    let (client_match, server_used) = match_nearest(&client_starts, &server_starts);
    let stalls = StallIndex::new(&app.stalls);
    let mut stall_used = vec![false; app.stalls.len()];
    let mut out = Vec::new();
    for (c, m) in client.iter().zip(&client_match) {
        // In flight from `at - timeout` to `at`, during the silence.
        let stall = stalls.first_overlapping(started(c), c.at.timestamp_millis());
        if let Some(i) = stall {
            stall_used[i] = true;
        }
        if let Some(si) = m {
            out.push(Classified::new(
                Why::SlowRequest,
                c.at,
                vec![
                    c.evidence(&app.server_logs),
                    server[*si].evidence(&app.server_logs),
                ],
            ));
            continue;
        }
        if let Some(st) = stall.map(|i| &app.stalls[i]) {
            out.push(Classified::stalled(
                c.at,
                vec![c.evidence(&app.server_logs), st.evidence(&app.server_logs)],
                st,
            ));
            continue;
        }
        out.push(by_minute(app, c, started(c)));
    }
    // Unmatched slow restarts are timeouts of their own (they took at least
    // the timeout by construction).
    for (s, _) in server.iter().zip(&server_used).filter(|(_, used)| !**used) {
        out.push(Classified::new(
            Why::SlowRequest,
            s.at,
            vec![s.evidence(&app.server_logs)],
        ));
    }
    // A slow restart that ends in a stall's burst: sorted by end, searched.
    let mut ends: Vec<DateTime<chrono::Utc>> = server.iter().map(|t| t.at).collect();
    ends.sort_unstable();
    let in_burst = |st: &ServerStall| {
        let one = chrono::Duration::milliseconds(1);
        let from = ends.partition_point(|t| *t < st.to - one);
        ends[from..]
            .iter()
            .take_while(|t| **t <= st.to + chrono::Duration::milliseconds(BURST_WINDOW_MS) + one)
            .any(|t| (0..=BURST_WINDOW_MS).contains(&(*t - st.to).num_milliseconds()))
    };
    for (st, _) in app
        .stalls
        .iter()
        .zip(&stall_used)
        .filter(|(_, used)| !**used)
    {
        if st.delayed_restart && !in_burst(st) {
            out.push(Classified::stalled(
                st.to,
                vec![st.evidence(&app.server_logs)],
                st,
            ));
        }
    }
    out
}

/// Pairs client timeouts with server restarts whose request starts (ms)
/// lie within [`MATCH_SLACK_MS`], nearest first (ties: the earlier client,
/// then the earlier server, in the App's order), each at most once; returns
/// each client's server and whether each server was taken.
///
/// Sort and sweep: the servers sorted by start, each client looks only at
/// the window of servers within the slack, so the work grows with the
/// pairs that can match, not with clients × servers.
fn match_nearest(client: &[i64], server: &[i64]) -> (Vec<Option<usize>>, Vec<bool>) {
    let mut by_start: Vec<usize> = (0..server.len()).collect();
    by_start.sort_unstable_by_key(|&i| (server[i], i));
    let mut clients: Vec<usize> = (0..client.len()).collect();
    clients.sort_unstable_by_key(|&i| (client[i], i));
    let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
    let mut lo = 0;
    for ci in clients {
        let c = client[ci];
        while lo < by_start.len() && server[by_start[lo]] < c - MATCH_SLACK_MS {
            lo += 1;
        }
        for &si in by_start[lo..]
            .iter()
            .take_while(|&&si| server[si] <= c + MATCH_SLACK_MS)
        {
            pairs.push(((server[si] - c).abs(), ci, si));
        }
    }
    pairs.sort_unstable();
    let mut client_match: Vec<Option<usize>> = vec![None; client.len()];
    let mut server_used = vec![false; server.len()];
    for (_, ci, si) in pairs {
        if client_match[ci].is_none() && !server_used[si] {
            client_match[ci] = Some(si);
            server_used[si] = true;
        }
    }
    (client_match, server_used)
}

/// The stalls, for "the first one a request was in flight during".
struct StallIndex<'a> {
    stalls: &'a [ServerStall],
    /// In log order, silences one after another (as a log's are): the
    /// first overlapping one is found by a search, not a scan.
    ordered: bool,
}

impl<'a> StallIndex<'a> {
    fn new(stalls: &'a [ServerStall]) -> StallIndex<'a> {
        let ordered = stalls
            .windows(2)
            .all(|w| w[0].from <= w[1].from && w[0].to <= w[1].to);
        StallIndex { stalls, ordered }
    }

    /// The first stall (in the App's order) whose silence overlaps the
    /// request from `start` to `end` (ms).
    fn first_overlapping(&self, start: i64, end: i64) -> Option<usize> {
        let overlaps =
            |s: &ServerStall| start < s.to.timestamp_millis() && end > s.from.timestamp_millis();
        if !self.ordered {
            return self.stalls.iter().position(overlaps);
        }
        // Those ending after `start` are a tail; its first one begins
        // earliest, so if it does not begin before `end`, none does.
        let i = self
            .stalls
            .partition_point(|s| s.to.timestamp_millis() <= start);
        self.stalls.get(i).filter(|s| overlaps(s)).map(|_| i)
    }
}

/// `, including N during homeserver stalls (…)` when stalls made any
/// timeout slow, else nothing.
fn stall_clause(classified: &[Classified]) -> String {
    let silences: Vec<i64> = classified.iter().filter_map(|c| c.stall_ms).collect();
    match silences.iter().min() {
        // Tenths of a second, rounded down: "≥" stays true.
        Some(min) => format!(
            ", including {} during homeserver stalls (log silent ≥ {:.1} s while requests were outstanding)",
            silences.len(),
            (min / 100) as f64 / 10.0
        ),
        None => String::new(),
    }
}

/// `2 a, 1 b` of the parts that are not zero.
fn parts(items: &[(usize, String)]) -> String {
    items
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn q4(app: &App) -> Verdict {
    answer(app, classify_timeouts(app))
}

/// The answer from the classified timeouts.
fn answer(app: &App, mut classified: Vec<Classified>) -> Verdict {
    let timeout = app.restart_timeout_ms;
    metrics::refine(app, &mut classified);
    let (from_metrics, metrics_basis) = metrics::annotate(app, &classified);
    let mut v = decide(app, &classified, timeout);
    if !classified.is_empty() {
        v.summary.push_str(&from_metrics);
        for b in metrics_basis {
            if !v.basis.contains(&b) {
                v.basis.push(b);
            }
        }
    }
    v
}

fn decide(app: &App, classified: &[Classified], timeout: u32) -> Verdict {
    if classified.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "No delayed-event timeout was seen (the SDK's restart timeouts in our client's reports, slow restart requests or restarts held up by a homeserver stall){}.",
                set_aside_artefacts(app)
            ),
            basis: Vec::new(),
        };
    }
    let total = classified.len();
    let count = |c: Latency| classified.iter().filter(|x| x.latency == c).count();
    let why = |w: Why| classified.iter().filter(|x| x.why == w).count();
    let (slow, fast, unknown) = (
        count(Latency::Slow),
        count(Latency::Fast),
        count(Latency::Unknown),
    );
    let stalls = stall_clause(classified);
    let cite = |c: Latency| -> Vec<String> {
        classified
            .iter()
            .filter(|x| x.latency == c)
            .flat_map(|x| x.evidence.iter().cloned())
            .take(6)
            .collect()
    };
    // Without access lines only a stall (or Synapse's histogram) can say
    // anything.
    let by_metrics = classified.iter().any(|c| {
        matches!(
            c.why,
            Why::MetricsFastDelayed | Why::MetricsSlowMinute | Why::MetricsFastMinute
        )
    });
    if app.latency.is_empty() && stalls.is_empty() && !by_metrics {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{total} delayed-event timeout(s) were seen, but the server log has no access lines to measure the homeserver's latency{}.",
                if app.metrics.source.is_some() {
                    ", and Synapse's histogram could not judge their minutes either"
                } else {
                    ""
                }
            ),
            basis: cite(Latency::Unknown).into_iter().take(5).collect(),
        };
    }
    let slow_parts = parts(&[
        (
            why(Why::SlowRequest),
            format!("match a delayed-event restart that took {timeout} ms or longer"),
        ),
        (
            why(Why::SlowMinute),
            format!(
                "fall in minutes whose p99 (excluding /sync) was at or above {timeout} ms, with at least {MIN_SLOW_REQUESTS} requests that slow"
            ),
        ),
        (
            why(Why::MetricsSlowMinute),
            format!(
                "fall in minutes whose p99 in Synapse's histogram was at or above {timeout} ms, with at least {MIN_SLOW_REQUESTS} requests known that slow"
            ),
        ),
    ]);
    let fast_parts = parts(&[
        (
            why(Why::FastDelayed),
            format!("fall in minutes whose delayed-event requests all took under {timeout} ms"),
        ),
        (
            why(Why::FastMinute),
            format!(
                "fall in minutes whose p99 over at least {MIN_MINUTE_REQUESTS} requests stayed under it"
            ),
        ),
        (
            why(Why::MetricsFastDelayed),
            format!(
                "fall in minutes whose delayed-event requests all took under {timeout} ms by Synapse's histogram"
            ),
        ),
        (
            why(Why::MetricsFastMinute),
            format!(
                "fall in minutes whose p99 in Synapse's histogram stayed under it over at least {MIN_MINUTE_REQUESTS} requests"
            ),
        ),
    ]);
    let unknown_parts = parts(&[
        (
            why(Why::NoAccess),
            "fall in minutes the server log has no access lines for".to_string(),
        ),
        (
            why(Why::TooFew),
            format!(
                "fall in minutes with no delayed-event request and too few requests to judge (fewer than {MIN_MINUTE_REQUESTS}, or a p99 resting on fewer than {MIN_SLOW_REQUESTS} slow ones)"
            ),
        ),
        (
            why(Why::Disagree),
            "fall in minutes the access log and Synapse's histogram judge differently".to_string(),
        ),
    ]);
    let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
        (false, false) => format!("{a}; {b}"),
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
    };
    if slow * 2 >= total {
        Verdict {
            answer: "homeserver-latency",
            summary: format!(
                "{slow} of {total} delayed-event timeouts were the homeserver's latency{}{stalls}.",
                if slow_parts.is_empty() {
                    String::new()
                } else {
                    format!(": {slow_parts}")
                }
            ),
            basis: cite(Latency::Slow),
        }
    } else if (slow + unknown) * 2 < total {
        Verdict {
            answer: "client-retry",
            summary: format!(
                "Only {slow} of {total} delayed-event timeouts met homeserver latency at or above {timeout} ms{stalls}: {}: suspect the client's MembershipManager retries.",
                join(&fast_parts, &unknown_parts)
            ),
            basis: cite(Latency::Fast),
        }
    } else {
        let mut basis = cite(Latency::Unknown);
        basis.truncate(4);
        basis.extend(cite(Latency::Fast).into_iter().take(2));
        Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "Of {total} delayed-event timeouts {slow} met homeserver latency{stalls} and {fast} did not, but {unknown_parts}, which could tip the answer either way."
            ),
            basis,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::EvidenceRef;
    use chrono::{DateTime, Utc};

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_782_842_400_000 + ms).unwrap()
    }

    use crate::verdicts::test_app as app;

    fn client(app: &mut App, ms: i64, n: usize) {
        app.timeouts.push(Timeout::client(
            at(ms),
            EvidenceRef(format!("client/d.json#entries[{n}]")),
        ));
    }

    fn server(app: &mut App, end_ms: i64, took: u32, line: u64) {
        app.timeouts.push(Timeout::server(at(end_ms), line, took));
    }

    fn stall(app: &mut App, from_ms: i64, to_ms: i64, line: u64, restart: bool) {
        app.stalls.push(ServerStall {
            from: at(from_ms),
            to: at(to_ms),
            line_no: line,
            burst: 5,
            delayed_restart: restart,
        });
    }

    /// `n` requests in the minute of `ms`, `slow` of them at 3 s.
    fn minute(app: &mut App, ms: i64, n: u32, slow: u32) {
        let l = app.latency.entry(minute_of(at(ms))).or_default();
        for i in 0..n {
            l.add(if i < slow { 3_000 } else { 20 }, 2_000);
        }
    }

    #[test]
    fn a_client_timeout_and_its_slow_restart_count_once() {
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        // Started at 8 s (10 s minus the 2 s timeout), ended at 10.6 s.
        client(&mut a, 10_000, 0);
        server(&mut a, 10_600, 2_600, 7);
        // A slow restart that started 4 s off is another request.
        client(&mut a, 30_000, 1);
        server(&mut a, 34_000 + 2_100, 2_100, 9);
        let c = classify_timeouts(&a);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(
            c[0],
            Classified::new(
                Why::SlowRequest,
                at(10_000),
                vec![
                    "client/d.json#entries[0]".to_string(),
                    "server/homeserver.log:7".to_string()
                ]
            )
        );
        assert_eq!(c[1].latency, Latency::Fast);
        assert_eq!(
            c[2],
            Classified::new(
                Why::SlowRequest,
                at(36_100),
                vec!["server/homeserver.log:9".to_string()]
            )
        );
        // 2 of 3 slow.
        assert_eq!(q4(&a).answer, "homeserver-latency");
    }

    #[test]
    fn each_slow_restart_matches_one_client_timeout_the_nearest() {
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        client(&mut a, 10_000, 0);
        client(&mut a, 10_400, 1);
        server(&mut a, 10_400 + 500, 2_500, 3);
        let c = classify_timeouts(&a);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].latency, Latency::Fast, "{c:?}");
        assert_eq!(c[1].latency, Latency::Slow, "{c:?}");
    }

    #[test]
    fn timeouts_in_unlogged_minutes_decide_nothing() {
        let mut a = app();
        minute(&mut a, 0, 100, 0);
        client(&mut a, 5_000, 0);
        client(&mut a, 600_000, 1);
        // 0 slow, 1 fast, 1 unknown: the unknown one could make it half.
        assert_eq!(q4(&a).answer, INSUFFICIENT);
        client(&mut a, 10_000, 2);
        // 0 slow, 2 fast, 1 unknown: fewer than half even if it were slow.
        let v = q4(&a);
        assert_eq!(v.answer, "client-retry");
        assert!(
            v.summary
                .contains("1 fall in minutes the server log has no access lines for"),
            "{}",
            v.summary
        );
        minute(&mut a, 600_000, 10, 10);
        minute(&mut a, 700_000, 10, 10);
        client(&mut a, 700_000, 3);
        // 2 slow of 4.
        assert_eq!(q4(&a).answer, "homeserver-latency");
    }

    #[test]
    fn a_client_timeout_in_flight_during_a_stall_is_slow_though_its_minute_is_fast() {
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        // Silent from 5 s to 11 s; the request ran from 8 s to 10 s.
        stall(&mut a, 5_000, 11_000, 40, false);
        client(&mut a, 10_000, 0);
        client(&mut a, 30_000, 1);
        let c = classify_timeouts(&a);
        assert_eq!(
            c[0],
            Classified {
                stall_ms: Some(6_000),
                ..Classified::new(
                    Why::Stall,
                    at(10_000),
                    vec![
                        "client/d.json#entries[0]".to_string(),
                        "server/homeserver.log:40".to_string()
                    ]
                )
            }
        );
        assert_eq!(
            c[1],
            Classified::new(
                Why::FastMinute,
                at(30_000),
                vec!["client/d.json#entries[1]".into()]
            )
        );
        assert_eq!(c.len(), 2);
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(
            v.summary
                .contains("1 of 2 delayed-event timeouts were the homeserver's latency")
                && v.summary.contains(
                "including 1 during homeserver stalls (log silent ≥ 6.0 s while requests were outstanding)"
            ),
            "{}",
            v.summary
        );
        assert_eq!(
            v.basis,
            vec!["client/d.json#entries[0]", "server/homeserver.log:40"]
        );
    }

    #[test]
    fn a_stall_no_timeout_was_in_flight_during_changes_nothing() {
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        client(&mut a, 10_000, 0);
        client(&mut a, 30_000, 1);
        let before = (classify_timeouts(&a), q4(&a));
        // Ends before the first request starts (8 s); starts as the second
        // one gives up (30 s): neither was in flight during the silence.
        stall(&mut a, 2_000, 8_000, 12, false);
        stall(&mut a, 30_000, 36_000, 50, false);
        assert_eq!((classify_timeouts(&a), q4(&a)), before);
        assert_eq!(before.1.answer, "client-retry");
        assert!(!before.1.summary.contains("stall"), "{}", before.1.summary);
    }

    #[test]
    fn a_stall_with_a_restart_in_its_burst_is_a_timeout_of_its_own() {
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        stall(&mut a, 20_000, 26_000, 77, true);
        let c = classify_timeouts(&a);
        assert_eq!(
            c,
            vec![Classified {
                stall_ms: Some(6_000),
                ..Classified::new(
                    Why::Stall,
                    at(26_000),
                    vec!["server/homeserver.log:77".into()]
                )
            }]
        );
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(
            v.summary.contains("1 of 1")
                && v.summary.contains("including 1 during homeserver stalls")
        );
        // A client timeout in flight during it is that timeout: one, not two.
        client(&mut a, 21_000, 0);
        let c = classify_timeouts(&a);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].evidence,
            vec!["client/d.json#entries[0]", "server/homeserver.log:77"]
        );
        // So is a slow restart request that ends in its burst.
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        stall(&mut a, 20_000, 26_000, 77, true);
        server(&mut a, 26_300, 6_200, 80);
        let c = classify_timeouts(&a);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].evidence, vec!["server/homeserver.log:80"]);
        // Without a restart in its burst, a stall alone is no timeout.
        let mut a = app();
        minute(&mut a, 0, 300, 0);
        stall(&mut a, 20_000, 26_000, 77, false);
        assert_eq!(classify_timeouts(&a), vec![]);
        assert_eq!(q4(&a).answer, INSUFFICIENT);
    }

    #[test]
    fn a_stall_decides_even_without_access_lines() {
        let mut a = app();
        client(&mut a, 10_000, 0);
        client(&mut a, 40_000, 1);
        // No access lines, no stall: nothing to measure with.
        let v = q4(&a);
        assert_eq!(v.answer, INSUFFICIENT);
        assert!(v.summary.contains("no access lines"), "{}", v.summary);
        stall(&mut a, 7_000, 13_500, 9, false);
        let v = q4(&a);
        // One slow, one unknown of two: half are slow.
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert!(v.summary.contains("log silent ≥ 6.5 s"), "{}", v.summary);
    }

    /// A minute of `n` requests at 20 ms and `slow` at 3 s, as `minute`,
    /// with a client timeout in it.
    fn one_minute(n: u32, slow: u32) -> Classified {
        let mut a = app();
        minute(&mut a, 0, n, slow);
        client(&mut a, 30_000, 0);
        let c = classify_timeouts(&a);
        assert_eq!(c.len(), 1);
        c[0].clone()
    }

    #[test]
    fn a_minute_is_slow_only_with_enough_slow_requests_and_fast_only_with_enough_requests() {
        // Below 100 requests the p99 is the slowest one: one or two slow
        // requests decide nothing, three do.
        assert_eq!(one_minute(50, 1).why, Why::TooFew);
        assert_eq!(one_minute(50, MIN_SLOW_REQUESTS - 1).why, Why::TooFew);
        assert_eq!(one_minute(50, MIN_SLOW_REQUESTS).why, Why::SlowMinute);
        assert_eq!(one_minute(3, 3).why, Why::SlowMinute);
        // A fast p99 needs enough requests behind it.
        assert_eq!(one_minute(MIN_MINUTE_REQUESTS - 1, 0).why, Why::TooFew);
        assert_eq!(one_minute(MIN_MINUTE_REQUESTS, 0).why, Why::FastMinute);
        // 1 slow in 150: the p99 is fast.
        assert_eq!(one_minute(150, 1).why, Why::FastMinute);
    }

    #[test]
    fn a_slow_minute_cites_the_requests_that_make_it_slow() {
        let mut a = app();
        let l = a.latency.entry(minute_of(at(0))).or_default();
        for i in 0..30u64 {
            l.add_line(if i % 10 == 3 { 2_500 } else { 20 }, 2_000, 100 + i);
        }
        client(&mut a, 30_000, 0);
        let v = q4(&a);
        assert_eq!(v.answer, "homeserver-latency", "{v:?}");
        assert_eq!(
            v.basis,
            vec![
                "client/d.json#entries[0]",
                "server/homeserver.log:103",
                "server/homeserver.log:113",
                "server/homeserver.log:123"
            ]
        );
    }

    #[test]
    fn fast_delayed_event_requests_outweigh_a_slow_minute() {
        // One 4.2 s request of another kind and 20 ms restarts: the restarts
        // say how the homeserver answered delayed events.
        let mut a = app();
        let l = a.latency.entry(minute_of(at(0))).or_default();
        l.add_line(4_200, 2_000, 7);
        for i in 0..4u64 {
            l.add_line(20, 2_000, 10 + i);
            l.add_delayed(20 + i as u32, 2_000, 10 + i);
        }
        client(&mut a, 30_000, 0);
        let c = classify_timeouts(&a);
        assert_eq!(
            c,
            vec![Classified::new(
                Why::FastDelayed,
                at(30_000),
                vec![
                    "client/d.json#entries[0]".into(),
                    "server/homeserver.log:13".into()
                ]
            )]
        );
        let v = q4(&a);
        assert_eq!(v.answer, "client-retry", "{v:?}");
        assert!(
            v.summary
                .contains("1 fall in minutes whose delayed-event requests all took under 2000 ms"),
            "{}",
            v.summary
        );
        // A slow delayed-event request in those minutes: they no longer say
        // the homeserver was fast; the minute (5 requests) decides nothing.
        a.latency
            .get_mut(&minute_of(at(0)))
            .unwrap()
            .add_delayed(2_100, 2_000, 20);
        assert_eq!(classify_timeouts(&a)[0].why, Why::TooFew);
    }

    /// The pairing and the stall lookups as they were first written:
    /// every client against every server, every stall scanned.
    fn nested(app: &App) -> Vec<Classified> {
        let timeout = i64::from(app.restart_timeout_ms);
        let client: Vec<&Timeout> = app
            .timeouts
            .iter()
            .filter(|t| t.took_ms().is_none())
            .collect();
        let server: Vec<&Timeout> = app
            .timeouts
            .iter()
            .filter(|t| t.took_ms().is_some())
            .collect();
        let started =
            |t: &Timeout| t.at.timestamp_millis() - t.took_ms().map_or(timeout, i64::from);
        let mut pairs: Vec<(i64, usize, usize)> = Vec::new();
        for (ci, c) in client.iter().enumerate() {
            for (si, s) in server.iter().enumerate() {
                let d = (started(s) - started(c)).abs();
                if d <= MATCH_SLACK_MS {
                    pairs.push((d, ci, si));
                }
            }
        }
        pairs.sort_unstable();
        let mut client_match: Vec<Option<usize>> = vec![None; client.len()];
        let mut server_used = vec![false; server.len()];
        for (_, ci, si) in pairs {
            if client_match[ci].is_none() && !server_used[si] {
                client_match[ci] = Some(si);
                server_used[si] = true;
            }
        }
        let in_stall = |c: &Timeout| {
            let (start, end) = (started(c), c.at.timestamp_millis());
            app.stalls
                .iter()
                .position(|s| start < s.to.timestamp_millis() && end > s.from.timestamp_millis())
        };
        let mut stall_used = vec![false; app.stalls.len()];
        let mut out = Vec::new();
        for (c, m) in client.iter().zip(&client_match) {
            let stall = in_stall(c);
            if let Some(i) = stall {
                stall_used[i] = true;
            }
            if let Some(si) = m {
                out.push(Classified::new(
                    Why::SlowRequest,
                    c.at,
                    vec![
                        c.evidence(&app.server_logs),
                        server[*si].evidence(&app.server_logs),
                    ],
                ));
                continue;
            }
            if let Some(st) = stall.map(|i| &app.stalls[i]) {
                out.push(Classified::stalled(
                    c.at,
                    vec![c.evidence(&app.server_logs), st.evidence(&app.server_logs)],
                    st,
                ));
                continue;
            }
            out.push(by_minute(app, c, started(c)));
        }
        for (s, _) in server.iter().zip(&server_used).filter(|(_, used)| !**used) {
            out.push(Classified::new(
                Why::SlowRequest,
                s.at,
                vec![s.evidence(&app.server_logs)],
            ));
        }
        let in_burst = |st: &ServerStall, t: &Timeout| {
            let d = (t.at - st.to).num_milliseconds();
            (0..=BURST_WINDOW_MS).contains(&d)
        };
        for (st, _) in app
            .stalls
            .iter()
            .zip(&stall_used)
            .filter(|(_, used)| !**used)
        {
            if st.delayed_restart && !server.iter().any(|t| in_burst(st, t)) {
                out.push(Classified::stalled(
                    st.to,
                    vec![st.evidence(&app.server_logs)],
                    st,
                ));
            }
        }
        out
    }

    /// A small seeded generator (xorshift): the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n.max(1)) as i64
        }
    }

    /// Timeouts, slow restarts and stalls crowded into a few minutes, on
    /// whole milliseconds and on ties (equal starts, equal distances), some
    /// times with sub-millisecond parts, stalls in log order or not.
    fn generated(r: &mut Rng) -> App {
        let mut a = app();
        let span = [6_000, 20_000, 120_000][r.below(3) as usize];
        let grid = [1, 250, 500][r.below(3) as usize];
        let on_grid = |r: &mut Rng| r.below((span / grid) as u64) * grid;
        for m in 0..3 {
            if r.below(4) > 0 {
                minute(&mut a, m * 60_000, r.below(60) as u32, r.below(6) as u32);
                let l = a.latency.entry(minute_of(at(m * 60_000))).or_default();
                for k in 0..r.below(4) {
                    l.add_delayed(
                        [20, 1_900, 2_400][r.below(3) as usize],
                        2_000,
                        500 + k as u64,
                    );
                }
            }
        }
        for n in 0..r.below(40) {
            let mut t = at(on_grid(r));
            if r.below(5) == 0 {
                t += chrono::Duration::microseconds(r.below(1_000));
            }
            if r.below(2) == 0 {
                a.timeouts.push(Timeout::client(
                    t,
                    EvidenceRef(format!("client/d.json#entries[{n}]")),
                ));
            } else {
                a.timeouts.push(Timeout::server(
                    t,
                    n as u64,
                    2_000 + r.below(3) as u32 * [1, 250, 500][r.below(3) as usize],
                ));
            }
        }
        let mut from = 0;
        for n in 0..r.below(6) {
            from += r.below((span / 4) as u64);
            let to = from + 2_000 + r.below(4_000);
            stall(&mut a, from, to, 900 + n as u64, r.below(2) == 0);
            from = to;
        }
        if r.below(4) == 0 {
            a.stalls.reverse();
        }
        a
    }

    #[test]
    fn each_timeout_ends_when_the_entry_its_first_reference_names_does() {
        // Each reference names one timeout or stall (a capture numbers its
        // lines and names its client files uniquely): the end a timeout
        // carries is that entry's, as a lookup by its first reference
        // (timeouts before stalls) finds it.
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut checked = [0usize; 3];
        for case in 0..2_000 {
            let a = generated(&mut r);
            let mut ends: std::collections::HashMap<String, DateTime<Utc>> =
                std::collections::HashMap::new();
            for t in &a.timeouts {
                ends.entry(t.evidence(&a.server_logs)).or_insert(t.at);
            }
            for s in &a.stalls {
                ends.entry(s.evidence(&a.server_logs)).or_insert(s.to);
            }
            for c in classify_timeouts(&a) {
                assert_eq!(
                    Some(&c.ended),
                    ends.get(&c.evidence[0]),
                    "case {case}: {c:?}"
                );
                let first = &c.evidence[0];
                checked[if first.starts_with("client/") {
                    0
                } else if a
                    .timeouts
                    .iter()
                    .any(|t| t.evidence(&a.server_logs) == *first)
                {
                    1
                } else {
                    2
                }] += 1;
            }
        }
        // Client timeouts, lone slow restarts and lone stalls all occur.
        assert!(checked.iter().all(|n| *n > 100), "{checked:?}");
    }

    #[test]
    fn the_sweep_classifies_and_answers_as_the_nested_loops_did() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut matched = 0;
        for case in 0..5_000 {
            let a = generated(&mut r);
            let (ours, theirs) = (classify_timeouts(&a), nested(&a));
            assert_eq!(ours, theirs, "case {case}: {:?} {:?}", a.timeouts, a.stalls);
            assert_eq!(q4(&a), answer(&a, theirs), "case {case}");
            matched += ours.iter().filter(|c| c.evidence.len() == 2).count();
        }
        // The cases do pair timeouts with restarts and stalls.
        assert!(matched > 10_000, "{matched}");
    }
}
