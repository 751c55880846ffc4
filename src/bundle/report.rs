//! `report.md`: for a human on the planning call. The decision tree comes
//! first, then the evidence it rests on, each item referenced as `file:line`.

use super::journal::FileFacts;
use super::manifest::rfc3339;
use crate::app::App;
use crate::app::stats::minute_of;
use crate::domain::Ke;
use crate::verdicts::Verdicts;
use crate::verdicts::quote::quote;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of per-minute counts over `[from, to]`, at most `width` wide.
pub fn sparkline(per_minute: &BTreeMap<i64, u32>, from: i64, to: i64, width: usize) -> String {
    if to < from || width == 0 {
        return String::new();
    }
    let minutes = (to - from + 1) as usize;
    let per_cell = minutes.div_ceil(width).max(1);
    let cells = minutes.div_ceil(per_cell);
    let mut v = vec![0u64; cells];
    for (m, n) in per_minute.range(from..=to) {
        v[((m - from) as usize) / per_cell] += *n as u64;
    }
    let max = v.iter().copied().max().unwrap_or(0);
    v.iter()
        .map(|&n| {
            if n == 0 {
                ' '
            } else {
                SPARK[((n * 7).div_ceil(max.max(1))) as usize % 8]
            }
        })
        .collect()
}

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map(rfc3339).unwrap_or_else(|| "–".into())
}

pub fn render(
    app: &App,
    label: &str,
    verdicts: &Verdicts,
    cited_lines: &BTreeMap<String, String>,
    facts: &BTreeMap<String, FileFacts>,
    sources: &[Value],
    now: DateTime<Utc>,
) -> String {
    let mut r = String::new();
    let (start, end) = app.span();
    let start = start.unwrap_or(now);
    let end = end.unwrap_or(now);
    header(&mut r, app, label, sources, (start, end));
    decision_tree(&mut r, app, verdicts, cited_lines);
    ke_counts(&mut r, app, (start, end));
    offending_keys(&mut r, app);
    ke3_event_ids(&mut r, app);
    timeouts(&mut r, app);
    super::report_metrics::section(app, &mut r);
    stalls(app, &mut r);
    markers(&mut r, app);
    checklist(&mut r, app);
    super::report_sections::client_artefacts(app, &mut r);
    super::report_sections::sfu(app, &mut r);
    super::report_sections::database(app, &mut r);
    files(&mut r, facts);
    r
}

/// The bundle, who it is about and what was read.
fn header(
    r: &mut String,
    app: &App,
    label: &str,
    sources: &[Value],
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) {
    let _ = writeln!(r, "# callcap evidence bundle `{label}`\n");
    let _ = writeln!(
        r,
        "- Window: {} → {} ({} min)",
        rfc3339(start),
        rfc3339(end),
        (end - start).num_minutes()
    );
    let _ = writeln!(
        r,
        "- User: {}",
        app.subject.user_id.as_deref().unwrap_or("(not set)")
    );
    let _ = writeln!(
        r,
        "- Device: {}{}",
        app.subject.device_id.as_deref().unwrap_or("(not set)"),
        match &app.subject_from {
            Some(f) => format!(" (as `{f}` names it; no --device-id or [call] device-id)"),
            None => String::new(),
        }
    );
    for w in &app.subject_warnings {
        let _ = writeln!(r, "- **Warning**: {w}");
    }
    if !app.subject.participants.is_empty() {
        let _ = writeln!(r, "- Participants: {}", app.subject.participants.join(", "));
    }
    let _ = writeln!(
        r,
        "- Server log: {} lines, {} bytes, {} secrets redacted",
        app.lines_total, app.bytes_total, app.server_redactions
    );
    for s in sources {
        let _ = writeln!(r, "- Source: `{}`", s);
    }
    // A source in error at the end has given nothing since.
    for (name, info) in &app.sources {
        if let crate::model::SourceStatus::Error { reason } = &info.status {
            let _ = writeln!(
                r,
                "- **Source failed**: `{name}` since {}: {reason} (nothing from it after that)",
                rfc3339(info.since)
            );
        }
    }
    if let Some(line) = super::report_sections::database_line(app) {
        let _ = writeln!(r, "{line}");
    }
    super::debug_loggers::report_section(app, r);
}

/// The runbook's four questions (§2), as the report asks them.
pub(crate) const QUESTIONS: [(&str, &str); 4] = [
    (
        "Q1",
        "Does the KE-1 offending key_id exist in e2e_one_time_keys_json with a different value?",
    ),
    (
        "Q2",
        "Are to-device events present for our device, and does the client fail to decrypt them?",
    ),
    (
        "Q3",
        "KE-3: is content.algorithm absent in event_json on the homeserver?",
    ),
    (
        "Q4",
        "Do delayed-event timeouts coincide with homeserver latency spikes?",
    ),
];

/// Each question of the runbook's tree, its answer and its evidence.
fn decision_tree(
    r: &mut String,
    app: &App,
    verdicts: &Verdicts,
    cited_lines: &BTreeMap<String, String>,
) {
    let _ = writeln!(r, "\n## Decision tree (runbook §2)\n");
    for ((q, question), (_, v)) in QUESTIONS.iter().zip(verdicts.iter()) {
        let _ = writeln!(r, "### {q}. {question}\n");
        let _ = writeln!(r, "**→ `{}`**: {}\n", v.answer, v.summary);
        if let Some(path) = path_taken(q, v.answer) {
            let _ = writeln!(r, "Path: {path}\n");
        }
        if !v.basis.is_empty() {
            let _ = writeln!(r, "Evidence:");
            for b in &v.basis {
                let _ = writeln!(r, "- `{b}`{}", quote(app, cited_lines, b));
            }
            let _ = writeln!(r);
        }
    }
}

/// Per-KE counts, with a sparkline over the capture's minutes.
fn ke_counts(r: &mut String, app: &App, (start, end): (DateTime<Utc>, DateTime<Utc>)) {
    let _ = writeln!(r, "## Per-KE counts\n");
    let (m0, m1) = (minute_of(start), minute_of(end));
    let _ = writeln!(
        r,
        "| KE | meaning | server | errors | client | first seen | last seen | per minute |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---|---|---|");
    for ke in Ke::ALL {
        let (s, c) = (&app.server[ke.index()], &app.client[ke.index()]);
        let (first, last) = first_last(app, ke);
        let mut merged = s.per_minute.clone();
        for (m, n) in &c.per_minute {
            *merged.entry(*m).or_default() += n;
        }
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} | {} | {} | `{}` |",
            ke,
            ke.meaning(),
            s.count,
            s.errors,
            c.count,
            t(first),
            t(last),
            sparkline(&merged, m0, m1, 60)
        );
    }
    let _ = writeln!(
        r,
        "\nServer lines per KE are in `server/KE-1.log` … `server/KE-4.log`; line N there is cited as `server/KE-n.log:N`."
    );
}

/// When a KE was first and last seen, server or client.
pub(crate) fn first_last(app: &App, ke: Ke) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let (s, c) = (&app.server[ke.index()], &app.client[ke.index()]);
    (
        [s.first, c.first].into_iter().flatten().min(),
        [s.last, c.last].into_iter().flatten().max(),
    )
}

fn offending_keys(r: &mut String, app: &App) {
    let _ = writeln!(r, "\n## KE-1: offending one-time keys\n");
    if app.offending.is_empty() {
        let _ = writeln!(r, "None seen.");
    } else {
        let _ = writeln!(
            r,
            "| key | conflicts (server / client / HAR) | first | stored key (server) | uploaded key (client) | evidence |"
        );
        let _ = writeln!(r, "|---|---|---|---|---|---|");
        for (k, o) in &app.offending {
            let _ = writeln!(
                r,
                "| `{k}` | {} / {} / {} | {} | `{}` | `{}` | {} |",
                o.seen.server,
                o.seen.client,
                o.seen.har,
                t(o.first_at),
                o.stored_key.as_deref().unwrap_or("?"),
                o.uploaded_key.as_deref().unwrap_or("?"),
                o.evidence
                    .iter()
                    .map(|e| format!("`{}`", e.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }

    if app.foreign_conflicts + app.attribution.ke1_undecided_conflicts > 0 {
        let _ = writeln!(
            r,
            "\nNot counted as ours: {} conflict(s) whose owner line names another user or device, {} whose owner the log does not name (no `Adding one_time_keys … for device` line of the same request){}.",
            app.foreign_conflicts,
            app.attribution.ke1_undecided_conflicts,
            app.attribution
                .ke1_undecided_refs
                .iter()
                .map(|e| format!(" `{}`", e.0))
                .collect::<String>()
        );
    }
}

fn ke3_event_ids(r: &mut String, app: &App) {
    let _ = writeln!(r, "\n## KE-3: event ids\n");
    if app.ke3_ids.is_empty() {
        let _ = writeln!(r, "None harvested.");
    }
    for (id, refs) in &app.ke3_ids {
        let _ = writeln!(
            r,
            "- `{id}` {}",
            refs.iter()
                .map(|e| format!("`{}`", e.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// KE-4 timeouts next to the homeserver's latency in their minute.
fn timeouts(r: &mut String, app: &App) {
    let _ = writeln!(r, "\n## KE-4: timeouts and homeserver latency\n");
    let _ = writeln!(
        r,
        "Restart timeout: {} ms. Latency is the p99 of \"Processed request\" times in the same minute, /sync and other long-polls excluded; a minute counts as slow with at least {} requests at or above the timeout, as fast with at least {} requests and a p99 below it. The delayed-event requests of a timeout's minute come first: all answered under the timeout, the homeserver was not slow for them.\n",
        app.restart_timeout_ms,
        crate::verdicts::MIN_SLOW_REQUESTS,
        crate::verdicts::MIN_MINUTE_REQUESTS
    );
    if app.timeouts.is_empty() {
        let _ = writeln!(r, "No timeouts seen.");
    } else {
        let _ = writeln!(
            r,
            "| time | origin | took | minute p99 | requests | p99 ≥ timeout | minute counts as | delayed-event requests | evidence |"
        );
        let _ = writeln!(r, "|---|---|---:|---:|---:|---|---|---|---|");
        for to in app.timeouts.iter().take(200) {
            let l = app.latency.get(&minute_of(to.at));
            let judged = match l.and_then(crate::verdicts::minute_verdict) {
                Some(true) => "slow",
                Some(false) => "fast",
                None => "too few to judge",
            };
            let delayed = l.map(|l| l.delayed).filter(|d| d.n > 0).map_or_else(
                || "none".to_string(),
                |d| format!("{}, slowest {} ms", d.n, d.max_ms),
            );
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} | {} | {} | {judged} | {delayed} | `{}` |",
                rfc3339(to.at),
                to.origin(),
                to.took_ms()
                    .map(|m| format!("{m} ms"))
                    .unwrap_or_else(|| "–".into()),
                l.map(|l| format!("≈{} ms", l.p99_ms()))
                    .unwrap_or_else(|| "no requests".into()),
                l.map(|l| l.n).unwrap_or(0),
                if l.is_some_and(|l| l.p99_at_or_above_timeout()) {
                    "yes"
                } else {
                    "no"
                },
                to.evidence(&app.server_logs)
            );
        }
        if app.timeouts.len() > 200 {
            let _ = writeln!(
                r,
                "\n… and {} more (see `timeline.jsonl`).",
                app.timeouts.len() - 200
            );
        }
    }
}

fn markers(r: &mut String, app: &App) {
    let _ = writeln!(r, "\n## Fault markers\n");
    let markers: Vec<_> = app.live_markers().collect();
    if markers.is_empty() {
        let _ = writeln!(r, "None set.");
    }
    for m in markers {
        let _ = writeln!(
            r,
            "- {} **{}** (marker {}, checklist step {}, server line {})",
            rfc3339(m.at),
            m.label,
            m.id,
            m.checklist_step
                .map(|s| s.to_string())
                .unwrap_or_else(|| "–".into()),
            m.last_lines.get("server-log").copied().unwrap_or(0)
        );
    }
}

fn checklist(r: &mut String, app: &App) {
    let _ = writeln!(r, "\n## Capture checklist (runbook §4)\n");
    for s in &app.checklist.steps {
        let stamps = s
            .stamps
            .iter()
            .map(stamp_text)
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            r,
            "- [{}] {}. {}{}",
            if s.done { "x" } else { " " },
            s.number,
            s.title,
            if s.stamps.is_empty() {
                " — never done".to_string()
            } else {
                format!(" — {stamps}")
            }
        );
    }
}

/// `ticked <time> by <who> (<evidence>)`.
pub(crate) fn stamp_text(st: &crate::model::checklist::Stamp) -> String {
    format!(
        "{} {} by {}{}",
        if st.done { "ticked" } else { "unticked" },
        rfc3339(st.at),
        st.by,
        st.evidence
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )
}

/// Every file of the bundle with its size, checksum and redactions.
fn files(r: &mut String, facts: &BTreeMap<String, FileFacts>) {
    let _ = writeln!(r, "\n## Files\n");
    for (p, f) in facts {
        let _ = writeln!(
            r,
            "- `{p}`: {} bytes, sha256 `{}`{}",
            f.bytes,
            f.sha256,
            if f.redactions > 0 {
                format!(", {} redactions", f.redactions)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(r, "- `manifest.json`: checksums above");
}

/// Homeserver stalls, next to the latency table: request times do not
/// show them.
fn stalls(app: &App, r: &mut String) {
    let _ = writeln!(
        r,
        "\nStalls: the log silent for longer than the restart timeout, then at least 3 records within 1 s. Synapse times a request from when it has read it, so a stalled process shows healthy request times while clients time out.\n"
    );
    if app.stalls.is_empty() {
        let _ = writeln!(r, "No stalls seen.");
        return;
    }
    let _ = writeln!(
        r,
        "| silent from | resumed | silence | burst | restart in burst | evidence |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---|---|");
    for s in app.stalls.iter().take(50) {
        let _ = writeln!(
            r,
            "| {} | {} | {:.1} s | {} | {} | `{}` |",
            rfc3339(s.from),
            rfc3339(s.to),
            s.silence_ms() as f64 / 1000.0,
            s.burst,
            if s.delayed_restart { "yes" } else { "no" },
            s.evidence(&app.server_logs)
        );
    }
    if app.stalls_seen > 50 {
        let _ = writeln!(
            r,
            "\n… and {} more; `timeline.jsonl` lists {} of them.",
            app.stalls_seen - 50,
            app.stalls.len().saturating_sub(50)
        );
    }
}

/// The runbook's branch (§2) an answer stands for; none when the question
/// stays open.
pub(crate) fn path_taken(q: &str, answer: &str) -> Option<&'static str> {
    Some(match (q, answer) {
        ("Q1", "divergence") => "YES → OTK divergence confirmed (KE-1 root). Go to Q2.",
        ("Q1", "exhaustion") => {
            "NO → OTK counts at 0 with the fallback key used? YES → OTK exhaustion, not divergence: a different remediation."
        }
        ("Q1", "sdk-regression") => {
            "NO → OTK counts at 0 with the fallback key used? NO → suspect the RC-SDK 41.6.0-rc.0 upload-loop regression (runbook §3)."
        }
        ("Q2", "linked") => {
            "YES + client shows \"unexpected encrypted\"/MissingKey → KE-1 ⇒ KE-2 link confirmed (events delivered, no Olm session to open them)."
        }
        ("Q2", "unlinked") => {
            "YES + client shows MissingKey, but no KE-1 for this device at the time → KE-2 without KE-1: look elsewhere (the runbook reaches Q2 only from Q1's YES)."
        }
        ("Q2", "sfu-downstream") => {
            "YES + client decrypts fine, but media still cut out → KE-2 is downstream of LiveKit/SFU, not KE-1. Decouple from crypto."
        }
        ("Q2", "not-targeted") => {
            "NO (nothing queued/targeted our device) → media keys never sent to us: stale device id / membership (see KE-4); weakly linked to KE-1."
        }
        ("Q3", "malformed-event") => {
            "YES → malformed persisted event (sender/federation). Independent of KE-1."
        }
        ("Q3", "client-deserialization") => {
            "NO → client-side RC-SDK deserialization bug. Independent of KE-1."
        }
        ("Q4", "homeserver-latency") => {
            "YES → homeserver responsiveness/load. Independent of KE-1..KE-3."
        }
        ("Q4", "client-retry") => "NO → client MembershipManager retry behaviour. Independent.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_busiest_cell() {
        let mut m = BTreeMap::new();
        m.insert(10, 1);
        m.insert(12, 8);
        let s = sparkline(&m, 10, 13, 10);
        assert_eq!(s.chars().count(), 4);
        assert_eq!(s.chars().nth(2), Some('█'));
        assert_eq!(s.chars().nth(1), Some(' '));
    }
}
