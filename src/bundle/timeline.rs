//! `timeline.jsonl`: one JSON object a line, time-sorted, each with `at`
//! (RFC 3339 UTC), `source` and `kind`. Server matches appear as per-minute
//! summaries with a reference to their first line, so the file stays small
//! whatever the log's size; the lines themselves are in `server/KE-n.log`.

use super::manifest::rfc3339;
use crate::app::App;
use crate::app::stats::minute_start;
use crate::domain::Ke;
use crate::model::client::{ClientArtifact, ClientEntry};
use crate::model::journal_entry::JournalEntry;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::path::Path;

/// Reads a client artefact's entries: from the copy in the bundle (the
/// folder given) its journal line names, or from the line.
pub type ReadEntries<'a> = &'a dyn Fn(&Path, &ClientArtifact) -> Result<Vec<ClientEntry>, String>;

/// The timeline's lines (compact JSON objects, no newline), time-sorted.
/// The client entries are read with `read` from the bundle in `dir`; what
/// cannot be read is added to `problems`.
pub fn build(
    app: &App,
    entries: &[JournalEntry],
    (dir, read): (&Path, ReadEntries<'_>),
    problems: &mut Vec<String>,
) -> Vec<String> {
    let mut lines = Lines::default();
    for e in entries {
        if let JournalEntry::Client { artifact, .. } = e
            && artifact.copy.is_some()
        {
            // Read one report at a time, and let go once its lines are made.
            match read(dir, artifact) {
                Ok(client) => lines.client_entries(&client),
                Err(why) => problems.push(format!(
                    "timeline.jsonl: {}'s entries: {why}",
                    artifact.file
                )),
            }
        }
        lines.entry(e);
    }
    lines.server(app);
    lines.metrics(app);
    let mut items = lines.items;
    items.sort_by_key(|(t, _)| *t);
    items.into_iter().map(|(_, line)| line).collect()
}

/// The timeline's lines as they are made, with their times.
#[derive(Default)]
struct Lines {
    items: Vec<(DateTime<Utc>, String)>,
}

impl Lines {
    // Each object is serialized at once: thousands of slow restarts make
    // thousands of lines, and a map kept per line only costs memory.
    fn push(&mut self, at: DateTime<Utc>, source: &str, kind: &str, extra: Value) {
        let mut v = json!({"at": rfc3339(at), "source": source, "kind": kind});
        if let (Some(o), Value::Object(x)) = (v.as_object_mut(), extra) {
            o.extend(x);
        }
        self.items.push((at, v.to_string()));
    }

    /// A client artefact's entries with a KE and a time.
    fn client_entries(&mut self, entries: &[ClientEntry]) {
        for en in entries {
            if let (Some(t), Some(ke)) = (en.at, en.ke) {
                self.push(
                    t,
                    "client",
                    "entry",
                    json!({
                        "ke": ke,
                        "ref": en.reference(),
                        "message": en.message,
                    }),
                );
            }
        }
    }

    /// A journal entry: what happened, as it happened.
    fn entry(&mut self, e: &JournalEntry) {
        match e {
            JournalEntry::Start { at, mode, .. } => {
                self.push(*at, "callcap", "start", json!({"mode": mode}))
            }
            JournalEntry::ServerLogs { at, logs } => {
                self.push(*at, "callcap", "server-logs", json!({"logs": logs}))
            }
            JournalEntry::Status { at, source, status } => {
                self.push(*at, source, "status", json!({"status": status}))
            }
            JournalEntry::Gap {
                at,
                source,
                down_ms,
                caught_up_bytes,
            } => self.push(
                *at,
                source,
                "gap",
                json!({"down_ms": down_ms, "caught_up_bytes": caught_up_bytes}),
            ),
            JournalEntry::ClockOffset {
                at,
                source,
                offset_ms,
                bound_ms,
            } => self.push(
                *at,
                source,
                "clock-offset",
                json!({"offset_ms": offset_ms, "bound_ms": bound_ms}),
            ),
            JournalEntry::Client { at, artifact } => {
                self.push(
                    *at,
                    "client",
                    "artifact",
                    json!({"file": format!("client/{}", artifact.file), "type": artifact.kind}),
                );
                self.client_entries(&artifact.entries);
            }
            JournalEntry::Marker { at, id, label, .. } => {
                self.push(*at, "operator", "marker", json!({"id": id, "label": label}))
            }
            JournalEntry::MarkerRelabel { at, id, label } => self.push(
                *at,
                "operator",
                "marker-relabel",
                json!({"id": id, "label": label}),
            ),
            JournalEntry::MarkerDelete { at, id } => {
                self.push(*at, "operator", "marker-delete", json!({"id": id}))
            }
            JournalEntry::Checklist { step, stamp } => self.push(
                stamp.at,
                if stamp.by == "operator" {
                    "operator"
                } else {
                    "callcap"
                },
                "checklist",
                json!({"step": step, "done": stamp.done, "evidence": stamp.evidence}),
            ),
            JournalEntry::DbPoll {
                at,
                duration_ms,
                changes,
                problems,
            } => {
                if !changes.is_empty() || !problems.is_empty() {
                    self.push(
                        *at,
                        "database",
                        "poll",
                        json!({
                            "duration_ms": duration_ms,
                            "changed_queries": changes.iter().map(|c| c.query.clone()).collect::<Vec<_>>(),
                            "problems": problems,
                        }),
                    )
                }
            }
            JournalEntry::EventIds { at, ids } => {
                self.push(*at, "operator", "event-ids", json!({"ids": ids}))
            }
            JournalEntry::Note { at, source, text } => {
                self.push(*at, source, "note", json!({"text": text}))
            }
            JournalEntry::Exported { at, path } => {
                self.push(*at, "callcap", "exported", json!({"path": path}))
            }
            JournalEntry::DebugLoggers { at, update } => self.push(
                *at,
                "debug-loggers",
                "debug-loggers",
                serde_json::to_value(update).unwrap_or_default(),
            ),
            JournalEntry::Metrics { at, report } => {
                if let crate::model::metrics::MetricsReading::Increase {
                    reset: Some(why), ..
                } = &report.reading
                {
                    self.push(*at, "metrics", "metrics-reset", json!({"why": why}));
                }
            }
        }
    }

    /// Synapse's own p99 of each minute read, with its row in
    /// `metrics/latency.csv`.
    fn metrics(&mut self, app: &App) {
        let m = &app.metrics;
        for (n, r) in m.rows().iter().enumerate() {
            if r.servlet != crate::app::metrics::OVERALL {
                continue;
            }
            self.push(
                r.minute,
                "metrics",
                "metrics-minute",
                json!({
                    "ref": format!("{}:{}", super::metrics_csv::LATENCY_CSV, n + 2),
                    "requests": r.requests,
                    "p99_seconds": r.p99.map(|q| q.seconds),
                    "p99_capped": r.p99.is_some_and(|q| q.capped),
                }),
            );
        }
    }

    /// What the App made of the server log: KE lines per minute, slow
    /// restarts, stalls and the latency of each minute.
    fn server(&mut self, app: &App) {
        for ke in Ke::ALL {
            for (m, n) in &app.server[ke.index()].per_minute {
                self.push(
                    minute_start(*m),
                    "server",
                    "ke-minute",
                    json!({"ke": ke, "count": n}),
                );
            }
        }
        for t in &app.timeouts {
            if t.origin() == "server" {
                self.push(
                    t.at,
                    "server",
                    "slow-restart",
                    json!({"ref": t.evidence(&app.server_logs), "took_ms": t.took_ms()}),
                );
            }
        }
        for s in &app.stalls {
            self.push(
                s.from,
                "server",
                "stall",
                json!({
                    "ref": s.evidence(&app.server_logs),
                    "silence_ms": s.silence_ms(),
                    "resumed_at": rfc3339(s.to),
                    "burst": s.burst,
                    "delayed_restart_in_burst": s.delayed_restart,
                }),
            );
        }
        for (m, l) in &app.latency {
            self.push(
                minute_start(*m),
                "server",
                "latency-minute",
                json!({
                    "requests": l.n,
                    "p99_ms": l.p99_ms(),
                    "max_ms": l.max_ms,
                    "p99_at_or_above_restart_timeout": l.p99_at_or_above_timeout(),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report's line as a journal written before kept it (every entry
    /// inline, no `copy`).
    const INLINE: &str = r#"{"kind":"client","at":"2026-06-30T18:00:00Z","artifact":{"file":"d.json","kind":"diag","arrived_at":"2026-06-30T18:00:00Z","bytes":10,"unparsed":null,"user_id":null,"device_id":null,"entries":[{"file":"d.json","index":0,"at":"2026-06-30T18:00:01Z","level":"error","ke":"KE-2","error":true,"message":"MissingKey: inline"}],"ke3_event_ids":[],"har_conflicts":[],"har_keys_upload":0,"redactions":0}}"#;

    #[test]
    fn entries_come_from_the_copy_the_journal_names_or_inline_from_a_journal_of_before() {
        let app = App::new(Default::default(), 2_000);
        let old: JournalEntry = serde_json::from_str(INLINE).unwrap_or_else(|e| panic!("{e}"));
        let JournalEntry::Client { at, artifact } = &old else {
            panic!("{old:?}")
        };
        let copied = artifact.by_reference(crate::model::client::ClientCopy {
            path: "client/d.json".into(),
            sha256: "ab".into(),
            bytes: 10,
            entries: 1,
        });
        let mut from_copy = artifact.entries[0].clone();
        from_copy.message = "MissingKey: from the copy".into();
        let read = |dir: &Path, a: &ClientArtifact| -> Result<Vec<ClientEntry>, String> {
            assert_eq!(dir, Path::new("/bundle"));
            match &a.copy {
                Some(c) if c.sha256 == "ab" => Ok(vec![from_copy.clone()]),
                _ => Err("changed".into()),
            }
        };
        let new = JournalEntry::Client {
            at: *at,
            artifact: Box::new(copied.clone()),
        };
        let mut problems = Vec::new();
        let tl = build(
            &app,
            &[old.clone(), new],
            (Path::new("/bundle"), &read),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let entries: Vec<&String> = tl
            .iter()
            .filter(|l| l.contains(r#""kind":"entry""#))
            .collect();
        assert_eq!(entries.len(), 2, "{tl:?}");
        assert!(entries.iter().any(|l| l.contains("MissingKey: inline")));
        assert!(
            entries
                .iter()
                .any(|l| l.contains("MissingKey: from the copy"))
        );
        // A copy that is not the one named: its entries are missing, and said so.
        let mut other = copied;
        if let Some(c) = other.copy.as_mut() {
            c.sha256 = "cd".into();
        }
        let changed = JournalEntry::Client {
            at: *at,
            artifact: Box::new(other),
        };
        let tl = build(
            &app,
            &[changed],
            (Path::new("/bundle"), &read),
            &mut problems,
        );
        assert!(!tl.iter().any(|l| l.contains(r#""kind":"entry""#)));
        assert_eq!(problems, ["timeline.jsonl: d.json's entries: changed"]);
    }
}
