//! `manifest.json`: the bundle's contract with other tools.

use super::journal::FileFacts;
use crate::app::App;
use crate::domain::Ke;
use crate::verdicts::Verdicts;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const FORMAT: &str = "callcap-bundle/1";

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn per_ke(counts: [u64; 4]) -> Value {
    let mut m = Map::new();
    for ke in Ke::ALL {
        m.insert(ke.name().to_string(), json!(counts[ke.index()]));
    }
    Value::Object(m)
}

pub fn build(
    app: &App,
    label: &str,
    verdicts: &Verdicts,
    facts: &BTreeMap<String, FileFacts>,
    sources: &[Value],
    now: DateTime<Utc>,
) -> Value {
    let (start, end) = app.span();
    let start = start.unwrap_or(now);
    let end = end.unwrap_or(now).max(start);
    let markers: Vec<Value> = app
        .live_markers()
        .map(|m| {
            json!({
                "id": m.id,
                "at": rfc3339(m.at),
                "label": m.label,
                "checklist_step": m.checklist_step,
                "last_lines": m.last_lines,
            })
        })
        .collect();
    let mut srcs: Vec<Value> = Vec::new();
    for d in sources {
        let mut d = d.clone();
        let name = d.get("name").and_then(|n| n.as_str()).map(str::to_string);
        if let (Some(obj), Some(name)) = (d.as_object_mut(), name)
            && let Some(info) = app.sources.get(&name)
        {
            obj.insert("status".into(), json!(info.status.label()));
            obj.insert("gaps".into(), json!(info.gaps));
            if let Some(o) = info.clock_offset_ms {
                obj.insert("clock_offset_ms".into(), json!(o));
                obj.insert("clock_offset_bound_ms".into(), json!(info.clock_bound_ms));
            }
        }
        srcs.push(d);
    }
    let mut redactions = Map::new();
    let mut files = Vec::new();
    for (path, f) in facts {
        redactions.insert(path.clone(), json!(f.redactions));
        files.push(json!({"path": path, "bytes": f.bytes, "sha256": f.sha256}));
    }
    let mut m = json!({
        "format": FORMAT,
        "label": label,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "started_at": rfc3339(start),
        "ended_at": rfc3339(end),
        "user_id": app.subject.user_id,
        "device_id": app.subject.device_id,
        "device_from": app.subject_from,
        "participants": app.subject.participants,
        "counts": {
            "server": per_ke(app.server_counts()),
            "client": per_ke(app.client_counts()),
        },
        "markers": markers,
        "sources": srcs,
        "verdicts": verdicts.to_json(),
        "redactions": redactions,
        "files": files,
    });
    // Which metrics source filled metrics/latency.csv, and its URL.
    if let (Some((kind, url)), Some(obj)) = (&app.metrics.source, m.as_object_mut()) {
        obj.insert(
            "metrics".into(),
            json!({
                "source": kind.name(),
                "url": url,
                "file": crate::model::metrics::LATENCY_CSV,
                "minutes": app.metrics.minutes.len(),
                "resets": app.metrics.resets.len(),
            }),
        );
    }
    m
}
