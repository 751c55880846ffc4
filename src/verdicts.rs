//! The runbook's decision tree (§2, Q1–Q4), answered from the evidence the
//! App holds. Each answer cites its basis as references into the bundle and
//! says "insufficient-evidence" rather than guess.

use crate::app::event::ArtifactKind;
use crate::app::stats::minute_of;
use crate::app::{App, EvidenceRef, OffendingKeyInfo, Timeout};
use crate::domain::Ke;
use crate::sources::Row;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub answer: &'static str,
    pub summary: String,
    pub basis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub q1: Verdict,
    pub q2: Verdict,
    pub q3: Verdict,
    pub q4: Verdict,
}

impl Verdicts {
    pub fn iter(&self) -> [(&'static str, &Verdict); 4] {
        [
            ("Q1", &self.q1),
            ("Q2", &self.q2),
            ("Q3", &self.q3),
            ("Q4", &self.q4),
        ]
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (q, v) in self.iter() {
            m.insert(
                q.to_string(),
                json!({"answer": v.answer, "summary": v.summary, "basis": v.basis}),
            );
        }
        Value::Object(m)
    }
}

pub const INSUFFICIENT: &str = "insufficient-evidence";

pub fn decide(app: &App) -> Verdicts {
    Verdicts {
        q1: q1(app),
        q2: q2(app),
        q3: q3(app),
        q4: q4(app),
    }
}

fn refs(v: &[EvidenceRef], n: usize) -> Vec<String> {
    v.iter().take(n).map(|r| r.0.clone()).collect()
}

fn rows<'a>(app: &'a App, query: &str) -> Option<&'a Vec<Row>> {
    app.db.last.as_ref().and_then(|p| p.results.get(query))
}

fn s<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get(key).and_then(|v| v.as_str())
}

fn stored_key(row: &Row) -> Option<String> {
    let raw = row.get("key_json")?;
    let v: Value = match raw {
        Value::String(t) => serde_json::from_str(t).ok()?,
        other => other.clone(),
    };
    v.get("key").and_then(|k| k.as_str()).map(str::to_string)
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) => matches!(t.as_str(), "t" | "true" | "1"),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// What the database says about one offending key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    /// Stored with a `key` different from the one the client uploads.
    Diverged,
    /// Stored with the very key the client uploads.
    Same,
    NotStored,
    /// Stored, but one of the two values is unknown: cannot compare.
    Unknown,
}

fn key_state(inventory: &[Row], o: &OffendingKeyInfo) -> KeyState {
    let stored = inventory.iter().find(|r| {
        s(r, "algorithm") == Some(o.algorithm.as_str()) && s(r, "key_id") == Some(o.key_id.as_str())
    });
    match (stored.map(stored_key), o.uploaded_key.as_deref()) {
        (None, _) => KeyState::NotStored,
        (Some(Some(st)), Some(up)) if st != up => KeyState::Diverged,
        (Some(Some(_)), Some(_)) => KeyState::Same,
        _ => KeyState::Unknown,
    }
}

/// A key's evidence with one reference of each kind first (server line,
/// client report entry, HAR entry), so the basis shows every side.
fn key_basis(o: &OffendingKeyInfo, n: usize) -> Vec<String> {
    let kinds: [fn(&str) -> bool; 3] = [
        |r| r.starts_with("server/"),
        |r| r.contains("#entries["),
        |r| r.contains("#log.entries["),
    ];
    let mut out: Vec<String> = kinds
        .iter()
        .filter_map(|k| o.evidence.iter().find(|r| k(&r.0)).map(|r| r.0.clone()))
        .collect();
    for r in &o.evidence {
        if !out.contains(&r.0) {
            out.push(r.0.clone());
        }
    }
    out.truncate(n);
    out
}

/// Why the database's results for `query` are missing, for a summary.
fn db_missing(app: &App, query: &str) -> String {
    if app.db.polls == 0 {
        return "the database was not read".into();
    }
    let problem = app
        .db
        .problems
        .get_key_value(query)
        .or_else(|| app.db.problems.get_key_value("connection"))
        .or_else(|| app.db.problems.iter().next());
    match problem {
        Some((what, why)) => format!("the database could not be read ({what}: {why})"),
        None => format!("the database returned no {query} results"),
    }
}

fn q1(app: &App) -> Verdict {
    let ke1_errors = app.own_ke1_errors + app.client[Ke::Ke1.index()].count;
    let mut basis: Vec<String> = app
        .offending
        .values()
        .flat_map(|o| key_basis(o, 3))
        .take(6)
        .collect();
    if ke1_errors == 0 && app.offending.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "No KE-1 one-time-key conflict was seen for our device in the server log, the client reports or a HAR{}.",
                if app.foreign_conflicts > 0 {
                    format!(
                        " ({} conflict(s) of other devices were set aside)",
                        app.foreign_conflicts
                    )
                } else {
                    String::new()
                }
            ),
            basis,
        };
    }
    if app.offending.is_empty() {
        // Errors such as a bare `400 POST …/keys/upload`: no key id to look up.
        let mut errors = refs(&app.own_ke1_error_refs, 3);
        errors.extend(
            app.client_errors
                .iter()
                .filter(|(k, _, _)| *k == Ke::Ke1)
                .take(2)
                .map(|(_, r, _)| r.0.clone()),
        );
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{ke1_errors} KE-1 error(s) were seen but none names the offending one-time key (the 'One time key … already exists' text): save a failing keys/upload response, e.g. in a HAR."
            ),
            basis: errors,
        };
    }
    let Some(inventory) = rows(app, "otk_inventory") else {
        let hint = match app
            .offending
            .values()
            .find(|o| o.stored_key.is_some() && o.uploaded_key.is_some())
        {
            Some(o) if o.stored_key != o.uploaded_key => format!(
                "the server's error for {}:{} shows a stored key different from the uploaded one, which suggests divergence",
                o.algorithm, o.key_id
            ),
            _ => {
                "the error text alone cannot tell divergence from exhaustion or an SDK loop".into()
            }
        };
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "KE-1 conflicts were seen but {}; {hint}.",
                db_missing(app, "otk_inventory")
            ),
            basis,
        };
    };
    let states: Vec<(&OffendingKeyInfo, KeyState)> = app
        .offending
        .values()
        .map(|o| (o, key_state(inventory, o)))
        .collect();
    if let Some((o, _)) = states.iter().find(|(_, st)| *st == KeyState::Diverged) {
        let mut basis = key_basis(o, 3);
        basis.push("db/last.json#otk_inventory".into());
        return Verdict {
            answer: "divergence",
            summary: format!(
                "One-time key {}:{} is stored on the homeserver with a different key than the client keeps uploading: the OTK state has diverged (KE-1 root).",
                o.algorithm, o.key_id
            ),
            basis,
        };
    }
    basis.push("db/last.json#otk_inventory".into());
    if let Some((o, _)) = states.iter().find(|(_, st)| *st == KeyState::Unknown) {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "One-time key {}:{} is stored on the homeserver, but the key the client uploads for it is unknown (no error text or HAR request body shows it): divergence can be neither confirmed nor ruled out.",
                o.algorithm, o.key_id
            ),
            basis,
        };
    }
    let otk_zero = rows(app, "otk_counts").is_some_and(|r| {
        r.iter()
            .filter(|x| s(x, "algorithm") == Some("signed_curve25519"))
            .filter_map(|x| x.get("count").and_then(|c| c.as_i64()))
            .sum::<i64>()
            == 0
    });
    let fallback_used =
        rows(app, "fallback_keys").is_some_and(|r| r.iter().any(|x| truthy(x.get("used"))));
    if otk_zero && fallback_used {
        basis.push("db/last.json#otk_counts".into());
        basis.push("db/last.json#fallback_keys".into());
        return Verdict {
            answer: "exhaustion",
            summary: "No offending key is stored with a different value, the device has 0 signed_curve25519 one-time keys and its fallback key is used: OTK exhaustion, not divergence.".into(),
            basis,
        };
    }
    let same = states
        .iter()
        .filter(|(_, st)| *st == KeyState::Same)
        .count();
    let why = if same > 0 {
        format!("{same} offending key(s) are stored with the very key the client uploads")
    } else {
        "the offending key is no longer stored".to_string()
    };
    Verdict {
        answer: "sdk-regression",
        summary: format!(
            "KE-1 conflicts were seen, {why}, and the keys are not exhausted: suspect the SDK's upload loop."
        ),
        basis,
    }
}

fn q2(app: &App) -> Verdict {
    let backlog_max = app
        .db
        .backlog_series
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let db_read = !app.db.backlog_series.is_empty();
    let db_ref =
        rows(app, "device_inbox_pending").map(|_| "db/last.json#device_inbox_pending".to_string());
    let queued = backlog_max > 0;
    let traced = app.to_device_for_us_count > 0;
    let present = queued || traced;
    let ke2: Vec<&(Ke, EvidenceRef, String)> = app
        .client_errors
        .iter()
        .filter(|(k, _, _)| *k == Ke::Ke2)
        .collect();
    let markers = app.live_markers().count();
    let diag_read = app
        .artifacts
        .iter()
        .any(|a| a.kind == ArtifactKind::Diag && a.unparsed.is_none());

    if present {
        let mut basis: Vec<String> = db_ref.iter().filter(|_| queued).cloned().collect();
        basis.extend(refs(&app.to_device_for_us, 3));
        let how = match (queued, traced) {
            (true, true) => format!(
                "queued in device_inbox (up to {backlog_max}) and traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
            (true, false) => format!("queued in device_inbox (up to {backlog_max})"),
            _ => format!(
                "traced {} time(s) in the server log",
                app.to_device_for_us_count
            ),
        };
        if !ke2.is_empty() {
            basis.extend(ke2.iter().take(3).map(|(_, r, _)| r.0.clone()));
            return Verdict {
                answer: "linked",
                summary: format!(
                    "To-device messages for our device were {how}; the client shows {} KE-2 signature(s): KE-1 ⇒ KE-2 link confirmed.",
                    ke2.len()
                ),
                basis,
            };
        }
        if markers > 0 && diag_read {
            return Verdict {
                answer: "sfu-downstream",
                summary: format!(
                    "To-device messages for our device were {how}; the client report shows no KE-2 signature, yet {markers} fault marker(s) were set: look at LiveKit/SFU, not crypto."
                ),
                basis,
            };
        }
        return Verdict {
            answer: INSUFFICIENT,
            summary: if markers > 0 {
                format!(
                    "To-device messages for our device were {how} and {markers} fault marker(s) were set, but no client diag report shows whether the client decrypted them."
                )
            } else {
                format!(
                    "To-device messages for our device were {how}, but there is neither a client KE-2 signature nor a fault marker."
                )
            },
            basis,
        };
    }

    if app.to_device_traces > 0 {
        // The tracing is on and names other devices only.
        let mut basis: Vec<String> = db_ref.into_iter().collect();
        basis.extend(refs(&app.to_device_other, 2));
        return Verdict {
            answer: "not-targeted",
            summary: format!(
                "Synapse's to-device tracing logged {} delivery(ies), none to our device{}: the media keys were not sent to us (stale device id or membership, see KE-4).",
                app.to_device_traces,
                if db_read {
                    ", and none is queued for it"
                } else {
                    ""
                }
            ),
            basis,
        };
    }
    if db_read && app.send_to_device == 0 {
        return Verdict {
            answer: "not-targeted",
            summary: "No to-device message for our device was queued in device_inbox and no participant sent any: the media keys were not sent to us (stale device id or membership, see KE-4).".into(),
            basis: db_ref.into_iter().collect(),
        };
    }
    if db_read {
        // Rows leave device_inbox as soon as the device syncs: an empty
        // inbox after participants sent to-device messages proves nothing.
        let mut basis = refs(&app.send_to_device_refs, 3);
        basis.extend(db_ref);
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "Participants made {} sendToDevice request(s), but nothing is queued for our device and the log has no to-device tracing: they may have reached us and been drained by /sync. Enable synapse.9533_debug (DEBUG) to see the recipients.",
                app.send_to_device
            ),
            basis,
        };
    }
    Verdict {
        answer: INSUFFICIENT,
        summary: format!(
            "Whether to-device messages reached our device is unknown: {} and the server log has no to-device tracing (synapse.9533_debug).",
            db_missing(app, "device_inbox_pending")
        ),
        basis: refs(&app.send_to_device_refs, 3),
    }
}

fn q3(app: &App) -> Verdict {
    let mut basis: Vec<String> = app
        .ke3_ids
        .values()
        .flat_map(|v| v.iter().take(1).map(|r| r.0.clone()))
        .take(5)
        .collect();
    if app.ke3_ids.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: "No KE-3 event id was harvested from the client reports.".into(),
            basis,
        };
    }
    // Rows for events the homeserver does not have (`found = false`) are not
    // lookups that succeeded.
    let lookups: Vec<&Row> = rows(app, "event_lookup")
        .map(|r| {
            r.iter()
                .filter(|x| s(x, "event_id").is_some_and(|id| app.ke3_ids.contains_key(id)))
                .filter(|x| x.get("found").is_none_or(|f| truthy(Some(f))))
                .collect()
        })
        .unwrap_or_default();
    if lookups.is_empty() {
        return Verdict {
            answer: INSUFFICIENT,
            summary: format!(
                "{} KE-3 event id(s) were harvested but none could be looked up in event_json.",
                app.ke3_ids.len()
            ),
            basis,
        };
    }
    basis.push("db/last.json#event_lookup".into());
    let has_alg = |r: &Row| -> bool {
        for k in ["algorithm_present", "has_algorithm"] {
            if let Some(v) = r.get(k) {
                return truthy(Some(v));
            }
        }
        !matches!(r.get("algorithm"), None | Some(Value::Null))
    };
    if let Some(bad) = lookups.iter().find(|r| !has_alg(r)) {
        return Verdict {
            answer: "malformed-event",
            summary: format!(
                "Event {} is stored on the homeserver without content.algorithm: a malformed event was persisted (sender or federation), independent of KE-1.",
                s(bad, "event_id").unwrap_or("?")
            ),
            basis,
        };
    }
    Verdict {
        answer: "client-deserialization",
        summary: format!(
            "All {} looked-up KE-3 event(s) have content.algorithm on the homeserver: the client fails to deserialize them.",
            lookups.len()
        ),
        basis,
    }
}

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

fn q4(app: &App) -> Verdict {
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
    use crate::app::Subject;
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

    #[test]
    fn tracing_for_other_devices_only_is_not_targeted_without_a_database() {
        let mut a = app();
        a.to_device_traces = 3;
        a.to_device_other
            .push(EvidenceRef("server/homeserver.log:4".into()));
        let v = q2(&a);
        assert_eq!(v.answer, "not-targeted");
        assert_eq!(v.basis, vec!["server/homeserver.log:4".to_string()]);
        a.to_device_traces = 0;
        a.to_device_other.clear();
        assert_eq!(q2(&a).answer, INSUFFICIENT);
    }
}
