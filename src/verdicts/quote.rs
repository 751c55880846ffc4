//! Quoting the evidence a verdict cites, for `report.md` and the console's
//! verdict view: the line, entry or rows behind a reference.

use crate::app::App;
use crate::domain::Ke;
use serde_json::Value;
use std::collections::BTreeMap;

/// The cited evidence as the App holds it (for the console's verdict view):
/// `": <quote>"`, or empty when it has scrolled out of memory.
pub fn quote_held(app: &App, reference: &str) -> String {
    quote(app, &BTreeMap::new(), reference)
}

/// A short quote of the cited evidence where the App still holds it, or
/// the cited server line as read back from the journal.
pub fn quote(app: &App, cited_lines: &BTreeMap<String, String>, reference: &str) -> String {
    if let Some(line) = cited_lines.get(reference) {
        return format!(": {}", clip_record(line));
    }
    if let Some(query) = reference.strip_prefix("db/last.json#") {
        return quote_rows(app, query);
    }
    if let Some(rest) = reference.strip_prefix("server/KE-") {
        let (ke, line) = rest.split_once(".log:").unwrap_or(("", ""));
        let (Some(ke), Ok(n)) = (Ke::parse(ke), line.parse::<u64>()) else {
            return String::new();
        };
        if let Some(l) = app.panes[ke.index()]
            .iter()
            .find(|l| l.origin == "server" && l.ke_line_no == n)
        {
            return format!(": {}", clip_record(&l.text));
        }
    }
    if let Some((_, r, msg)) = app.client_errors.iter().find(|(_, r, _)| r.0 == reference) {
        let _ = r;
        // A console entry's first line (its stack follows on the next).
        return match msg.split_once('\n') {
            Some((first, _)) => format!(": {} …", clip(first)),
            None => format!(": {}", clip(msg)),
        };
    }
    String::new()
}

/// The database rows a verdict cites: for the OTK inventory the rows of the
/// offending key ids, else every row (a few) without bulky JSON columns.
fn quote_rows(app: &App, query: &str) -> String {
    let Some(rows) = app.db.last.as_ref().and_then(|p| p.results.get(query)) else {
        return String::new();
    };
    let offending = |r: &&crate::model::Row| {
        app.offending.values().any(|o| {
            r.get("key_id").and_then(|v| v.as_str()) == Some(o.key_id.as_str())
                && r.get("algorithm").and_then(|v| v.as_str()) == Some(o.algorithm.as_str())
        })
    };
    let shown: Vec<&crate::model::Row> = if query == "otk_inventory" {
        rows.iter().filter(offending).collect()
    } else {
        rows.iter().collect()
    };
    let mut parts: Vec<String> = shown
        .iter()
        .take(3)
        .map(|r| {
            let mut r = (*r).clone();
            r.remove("content");
            if query != "device_inbox_pending" && query != "devices" {
                // The subject's own rows: the user id adds nothing.
                r.remove("user_id");
            }
            clip(&Value::Object(r).to_string())
        })
        .collect();
    if query == "otk_inventory" && shown.is_empty() {
        parts.push("no row for the offending key id".into());
    }
    format!(": {} row(s); {}", rows.len(), parts.join(", "))
}

/// A Synapse log line quoted by what matters: its time and message,
/// without the logger/line/level/request head, from `SynapseError` on for
/// an error the request's repr precedes.
fn clip_record(line: &str) -> String {
    let Some(head) = crate::domain::synapse_log::parse_record(line.as_bytes()) else {
        return clip(line);
    };
    let time = head.at.format("%H:%M:%S%.3f");
    let message = String::from_utf8_lossy(head.message);
    if let Some(a) = crate::domain::synapse_log::parse_access(&message) {
        return clip(&format!(
            "{time} {} {} by {} → {} in {:.3} s",
            a.method,
            a.path,
            a.requester.as_deref().unwrap_or("(no user)"),
            a.status,
            a.processing_s
        ));
    }
    let message = match message.find("SynapseError: ") {
        Some(i) => &message[i..],
        None => &message[..],
    };
    // The OTK conflict: the two keys are the point, the signatures are not.
    if let Some(off) = crate::domain::har::parse_otk_conflict(message) {
        let key = |v: Option<&Value>| {
            v.and_then(|v| v.get("key"))
                .and_then(|k| k.as_str())
                .unwrap_or("?")
                .to_string()
        };
        let head = message.split(" Old key:").next().unwrap_or(message);
        return clip(&format!(
            "{time} {head} Old key: {{\"key\":\"{}\", …}}; new key: {{'key': '{}', …}}",
            key(off.old_key.as_ref()),
            key(off.new_key.as_ref())
        ));
    }
    clip(&format!("{time} {message}"))
}

fn clip(s: &str) -> String {
    let s: String = s.chars().take(240).collect();
    format!("`{}`", s.replace('`', "'"))
}
