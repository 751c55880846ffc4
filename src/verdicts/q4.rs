//! Q4: are the delayed-event timeouts homeserver latency?

use super::{INSUFFICIENT, Verdict};
use crate::app::stats::minute_of;
use crate::app::{App, Timeout};

/// How far apart (ms) a client timeout's request start and a server restart
/// request's start may be and still be the same request: under half the
/// client's 5 s restart interval, so a neighbouring restart does not match.
const MATCH_SLACK_MS: i64 = 2_500;

/// One timeout as Q4 classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latency {
    /// In a minute whose p99 is at or above the timeout, or its restart
    /// request took that long.
    Slow,
    /// In a minute with access lines and a p99 below the timeout.
    Fast,
    /// In a minute the log has no access lines for.
    Unknown,
}

/// Classifies every timeout. A client timeout and the server restart
/// request it gave up on are one timeout, not two: pairs whose request
/// starts lie within [`MATCH_SLACK_MS`] are matched nearest first, each
/// request to at most one timeout. Returns `(class, evidence)` per timeout.
fn classify_timeouts(app: &App) -> Vec<(Latency, Vec<String>)> {
    let timeout = i64::from(app.restart_timeout_ms);
    let client: Vec<&Timeout> = app
        .timeouts
        .iter()
        .filter(|t| t.took_ms.is_none())
        .collect();
    let server: Vec<&Timeout> = app
        .timeouts
        .iter()
        .filter(|t| t.took_ms.is_some())
        .collect();
    let started = |t: &Timeout| t.at.timestamp_millis() - t.took_ms.map_or(timeout, i64::from);
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
    let mut out = Vec::new();
    for (c, m) in client.iter().zip(&client_match) {
        if let Some(si) = m {
            out.push((
                Latency::Slow,
                vec![c.evidence.0.clone(), server[*si].evidence.0.clone()],
            ));
            continue;
        }
        let class = match app.latency.get(&minute_of(c.at)) {
            None => Latency::Unknown,
            Some(l) if l.p99_at_or_above_timeout() => Latency::Slow,
            Some(_) => Latency::Fast,
        };
        out.push((class, vec![c.evidence.0.clone()]));
    }
    // Unmatched slow restarts are timeouts of their own (they took at least
    // the timeout by construction).
    for (s, _) in server.iter().zip(&server_used).filter(|(_, used)| !**used) {
        out.push((Latency::Slow, vec![s.evidence.0.clone()]));
    }
    out
}

pub(super) fn q4(app: &App) -> Verdict {
    let timeout = app.restart_timeout_ms;
    if app.timeouts.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary:
                "No delayed-event timeout was seen (client KE-4 timeouts or slow restart requests)."
                    .into(),
            basis: Vec::new(),
        };
    }
    let classified = classify_timeouts(app);
    let total = classified.len();
    let count = |c: Latency| classified.iter().filter(|(x, _)| *x == c).count();
    let (slow, fast, unknown) = (
        count(Latency::Slow),
        count(Latency::Fast),
        count(Latency::Unknown),
    );
    let cite = |c: Latency| -> Vec<String> {
        classified
            .iter()
            .filter(|(x, _)| *x == c)
            .flat_map(|(_, r)| r.iter().cloned())
            .take(6)
            .collect()
    };
    if app.latency.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{total} delayed-event timeout(s) were seen, but the server log has no access lines to measure the homeserver's latency."
            ),
            basis: cite(Latency::Unknown).into_iter().take(5).collect(),
        };
    }
    if slow * 2 >= total {
        Verdict {
            answer: "homeserver-latency",
            summary: format!(
                "{slow} of {total} delayed-event timeouts fall in minutes where the homeserver's p99 (excluding /sync) was at or above {timeout} ms or match a restart request that took that long."
            ),
            basis: cite(Latency::Slow),
        }
    } else if (slow + unknown) * 2 < total {
        Verdict {
            answer: "client-retry",
            summary: format!(
                "Only {slow} of {total} delayed-event timeouts fall in minutes of homeserver latency at or above {timeout} ms{}: suspect the client's MembershipManager retries.",
                if unknown > 0 {
                    format!(" ({unknown} in minutes without access lines)")
                } else {
                    String::new()
                }
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
                "Of {total} delayed-event timeouts {slow} fall in slow minutes and {fast} in fast ones, but {unknown} fall in minutes the server log has no access lines for, which could tip the answer either way."
            ),
            basis,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::{EvidenceRef, Subject};
    use chrono::{DateTime, Utc};

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_782_842_400_000 + ms).unwrap()
    }

    fn app() -> App {
        App::new(
            Subject {
                user_id: Some("@a:hs".into()),
                device_id: Some("DEV".into()),
                participants: vec![],
            },
            2_000,
        )
    }

    fn client(app: &mut App, ms: i64, n: usize) {
        app.timeouts.push(Timeout {
            at: at(ms),
            origin: "client",
            evidence: EvidenceRef(format!("client/d.json#entries[{n}]")),
            took_ms: None,
        });
    }

    fn server(app: &mut App, end_ms: i64, took: u32, line: u64) {
        app.timeouts.push(Timeout {
            at: at(end_ms),
            origin: "server",
            evidence: EvidenceRef(format!("server/homeserver.log:{line}")),
            took_ms: Some(took),
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
            (
                Latency::Slow,
                vec![
                    "client/d.json#entries[0]".to_string(),
                    "server/homeserver.log:7".to_string()
                ]
            )
        );
        assert_eq!(c[1].0, Latency::Fast);
        assert_eq!(
            c[2],
            (Latency::Slow, vec!["server/homeserver.log:9".to_string()])
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
        assert_eq!(c[0].0, Latency::Fast, "{c:?}");
        assert_eq!(c[1].0, Latency::Slow, "{c:?}");
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
        assert!(v.summary.contains("1 in minutes without access lines"));
        minute(&mut a, 600_000, 10, 10);
        minute(&mut a, 700_000, 10, 10);
        client(&mut a, 700_000, 3);
        // 2 slow of 4.
        assert_eq!(q4(&a).answer, "homeserver-latency");
    }
}
