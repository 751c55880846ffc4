//! Finishing a journal into a bundle: the derived files (markers, checklist,
//! timeline, database results, report, manifest) are written into the
//! journal folder, which is then renamed to the bundle's label. Until the
//! rename the folder keeps its journal name, so a half-written bundle is never
//! mistaken for a finished one.

use super::journal::{self, Journal};
use super::{manifest, redactions, report, timeline};
use crate::app::App;
pub use crate::app::default_label;
use crate::verdicts;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the runner knows about its sources (paths, hosts), for the manifest.
pub type SourceDescriptions = Vec<Value>;

/// Records where a log source stopped in its description.
pub fn set_position(sources: &mut SourceDescriptions, name: &str, position: Value) {
    if let Some(obj) = sources
        .iter_mut()
        .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        .and_then(Value::as_object_mut)
    {
        obj.insert("position".into(), position);
    }
}

/// Writes the bundle and returns its final path.
pub fn export(
    app: &App,
    journal: &mut Journal,
    out_dir: &Path,
    label: &str,
    sources: &SourceDescriptions,
    now: DateTime<Utc>,
) -> io::Result<PathBuf> {
    journal.flush()?;
    super::debug_loggers::settle(journal)?;
    write_db_files(app, journal)?;
    let live_markers: Vec<_> = app.live_markers().cloned().collect();
    journal.write_whole(
        "markers.json",
        &pretty(&serde_json::to_value(&live_markers).map_err(io::Error::other)?),
        0,
    )?;
    journal.write_whole("checklist.json", &pretty(&checklist_json(app)), 0)?;

    let entries = journal::read_entries(&journal.dir).unwrap_or_default();
    let tl = timeline::build(app, &entries);
    let mut buf = Vec::new();
    for line in &tl {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    journal.write_whole("timeline.jsonl", &buf, 0)?;

    let verdicts = verdicts::decide(app);
    let facts = journal.facts();
    let cited = cited_server_lines(&journal.dir, &verdicts).unwrap_or_default();
    let mut report = report::render(app, label, &verdicts, &cited, &facts, sources, now);
    report.push_str(&redactions::report_section(&facts, &journal.site_rules));
    journal.write_whole("report.md", report.as_bytes(), 0)?;

    let facts = journal.facts();
    let mut m = manifest::build(app, label, &verdicts, &facts, sources, now);
    // Beside `redactions` (per file, as before): per rule.
    if let Some(obj) = m.as_object_mut() {
        obj.insert(
            "redactions_by_rule".into(),
            redactions::by_rule(&facts, &journal.site_rules),
        );
    }
    journal.flush()?;
    fs::write(journal.dir.join("manifest.json"), pretty(&m))?;

    let target = free_name(out_dir, label);
    fs::rename(&journal.dir, &target)?;
    journal.dir = target.clone();
    Ok(target)
}

/// The text of the `server/homeserver.log` lines the verdicts cite, for the
/// report's quotes (the App keeps only lines a KE matched): one pass that
/// stops at the last cited line.
fn cited_server_lines(
    dir: &Path,
    verdicts: &verdicts::Verdicts,
) -> io::Result<BTreeMap<String, String>> {
    use std::io::BufRead;
    let prefix = format!("{}:", journal::SERVER_LOG);
    let wanted: BTreeMap<u64, String> = verdicts
        .iter()
        .iter()
        .flat_map(|(_, v)| v.basis.iter())
        .filter_map(|r| {
            let n = r.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((n, r.clone()))
        })
        .collect();
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.keys().next_back() else {
        return Ok(out);
    };
    let mut reader =
        io::BufReader::with_capacity(1 << 20, fs::File::open(dir.join(journal::SERVER_LOG))?);
    let mut line = Vec::new();
    for n in 1..=last {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let Some(r) = wanted.get(&n) {
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            let l = &l[..l.len().min(4096)];
            out.insert(r.clone(), String::from_utf8_lossy(l).into_owned());
        }
    }
    Ok(out)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

fn write_db_files(app: &App, journal: &mut Journal) -> io::Result<()> {
    let (Some(first), Some(last)) = (&app.db.first, &app.db.last) else {
        return Ok(());
    };
    let to_obj = |p: &crate::model::DbPoll| -> Value {
        serde_json::to_value(&p.results).unwrap_or(Value::Null)
    };
    journal.write_whole("db/first.json", &pretty(&to_obj(first)), 0)?;
    journal.write_whole("db/last.json", &pretty(&to_obj(last)), 0)?;
    let mut sql = String::new();
    for (name, q) in &last.sql {
        sql.push_str(&format!("-- name: {name}\n{}\n\n", q.trim_end()));
    }
    journal.write_whole("db/queries.sql", sql.as_bytes(), 0)?;
    Ok(())
}

pub fn checklist_json(app: &App) -> Value {
    let steps: Vec<Value> = app
        .checklist
        .steps
        .iter()
        .map(|s| {
            json!({
                "step": s.number,
                "title": s.title,
                "detail": s.detail,
                "done": s.done,
                "auto": s.auto,
                "stamps": s.stamps,
            })
        })
        .collect();
    let never: Vec<u8> = app
        .checklist
        .steps
        .iter()
        .filter(|s| s.stamps.is_empty())
        .map(|s| s.number)
        .collect();
    json!({ "steps": steps, "never_done": never })
}

/// `<out>/<label>`, or `<label>-2`, `-3` … when taken.
pub fn free_name(out_dir: &Path, label: &str) -> PathBuf {
    let base = out_dir.join(label);
    if !base.exists() {
        return base;
    }
    (2..)
        .map(|i| out_dir.join(format!("{label}-{i}")))
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// Labels become folder names: keep them to a safe alphabet.
pub fn sanitize_label(label: &str) -> String {
    let s: String = label
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() { "call".to_string() } else { s }
}
