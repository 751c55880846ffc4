//! Finishing a journal into a bundle: the derived files (markers, checklist,
//! timeline, database results, report, report.html, manifest) are written into the
//! journal folder, which is then renamed to the bundle's label. Until the
//! rename the folder keeps its journal name, so a half-written bundle is never
//! mistaken for a finished one.

use super::journal::{self, Journal};
use super::{html, manifest, redactions, report, timeline};
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

/// A bundle written, and what it lacks because it could not be written
/// (during the capture or now).
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub path: PathBuf,
    pub missing: Vec<String>,
}

/// A bundle was written, but not all of it (exit 1: the report and the
/// manifest say what is missing).
#[derive(Debug, thiserror::Error)]
#[error("the bundle '{}' is incomplete: {}", path.display(), missing.join("; "))]
pub struct Incomplete {
    pub path: PathBuf,
    pub missing: Vec<String>,
}

impl Exported {
    /// The path, or [`Incomplete`] when something is missing.
    pub fn complete(self) -> anyhow::Result<PathBuf> {
        if self.missing.is_empty() {
            Ok(self.path)
        } else {
            Err(Incomplete {
                path: self.path,
                missing: self.missing,
            }
            .into())
        }
    }
}

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

/// Writes the bundle and returns its final path with what could not be
/// written: a file that fails is listed (in `report.md` and the manifest's
/// `missing`) and the rest is still written. Only a bundle without its
/// manifest, or one that cannot be moved into place, is an error.
/// `read_client` reads a client artefact's entries again for the timeline
/// (the journal keeps a diag report's by reference to its copy).
pub fn export(
    app: &App,
    journal: &mut Journal,
    out_dir: &Path,
    label: &str,
    sources: &SourceDescriptions,
    read_client: timeline::ReadEntries<'_>,
    now: DateTime<Utc>,
) -> io::Result<Exported> {
    let mut missing = journal.problems.clone();
    let mut note = |what: &str, r: io::Result<()>| {
        if let Err(e) = r {
            missing.push(format!("{what}: {e}"));
        }
    };
    note("the journal", journal.flush());
    note("debug-loggers/", super::debug_loggers::settle(journal));
    note("db/", write_db_files(app, journal));
    if let Some(csv) = super::metrics_csv::render(app) {
        note(
            super::metrics_csv::LATENCY_CSV,
            journal.write_whole(super::metrics_csv::LATENCY_CSV, csv.as_bytes(), 0),
        );
    }
    let live_markers: Vec<_> = app.live_markers().cloned().collect();
    let markers = serde_json::to_value(&live_markers).map_err(io::Error::other)?;
    note(
        "markers.json",
        journal.write_whole("markers.json", &pretty(&markers), 0),
    );
    note(
        "checklist.json",
        journal.write_whole("checklist.json", &pretty(&checklist_json(app)), 0),
    );

    let entries = journal::read_entries(&journal.dir).unwrap_or_default();
    let mut unread = Vec::new();
    let tl = timeline::build(app, &entries, (&journal.dir, read_client), &mut unread);
    let mut buf = Vec::new();
    for line in &tl {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    note(
        "timeline.jsonl",
        journal.write_whole("timeline.jsonl", &buf, 0),
    );

    missing.extend(unread);
    let verdicts = verdicts::decide(app);
    let cited = cited_server_lines(&journal.dir, &verdicts).unwrap_or_default();
    let facts = settled_facts(journal, !missing.is_empty());
    let mut report = report::render(app, label, &verdicts, &cited, &facts, sources, now);
    report.push_str(&redactions::report_section(&facts, &journal.site_rules));
    let report = with_missing(report, &missing);
    if let Err(e) = journal.write_whole("report.md", report.as_bytes(), 0) {
        missing.push(format!("report.md: {e}"));
    }
    let html_started = std::time::Instant::now();
    let metrics = latency_metrics(app);
    let page = html::render(&html::Page {
        app,
        label,
        verdicts: &verdicts,
        cited_lines: &cited,
        entries: &entries,
        metrics: metrics.as_ref(),
        now,
    });
    if let Err(e) = journal.write_whole("report.html", page.as_bytes(), 0) {
        missing.push(format!("report.html: {e}"));
    }
    tracing::debug!(
        ms = html_started.elapsed().as_secs_f64() * 1000.0,
        bytes = page.len(),
        "report.html written"
    );

    let facts = settled_facts(journal, !missing.is_empty());
    let mut m = manifest::build(app, label, &verdicts, &facts, sources, now);
    if let Some(obj) = m.as_object_mut() {
        // Beside `redactions` (per file, as before): per rule.
        obj.insert(
            "redactions_by_rule".into(),
            redactions::by_rule(&facts, &journal.site_rules),
        );
        if !missing.is_empty() {
            obj.insert("missing".into(), json!(missing));
        }
    }
    let _ = journal.flush();
    fs::write(journal.dir.join("manifest.json"), pretty(&m))?;

    let target = free_name(out_dir, label);
    fs::rename(&journal.dir, &target)?;
    journal.dir = target.clone();
    Ok(Exported {
        path: target,
        missing,
    })
}

/// The files' facts; when something failed to be written, every file is
/// hashed again from disk, so the manifest's checksums hold for what is
/// there (a failed write may have left part of its bytes).
fn settled_facts(journal: &Journal, failed: bool) -> BTreeMap<String, journal::FileFacts> {
    let mut facts = journal.facts();
    if failed {
        for (path, f) in facts.iter_mut() {
            if let Ok(disk) = journal::hash_file(&journal.dir.join(path)) {
                f.bytes = disk.bytes;
                f.sha256 = disk.sha256;
            }
        }
    }
    facts
}

/// The report with what is missing at its top, under the title.
fn with_missing(report: String, missing: &[String]) -> String {
    if missing.is_empty() {
        return report;
    }
    let mut section = String::from(
        "\n## Missing from this bundle\n\n**This bundle is incomplete**: these could not be written, so the evidence below lacks them.\n\n",
    );
    for m in missing {
        section.push_str(&format!("- {m}\n"));
    }
    match report.find("\n\n") {
        Some(i) => format!("{}{section}{}", &report[..i + 1], &report[i + 1..]),
        None => format!("{section}{report}"),
    }
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

/// The figure's metrics input: Synapse's overall p99 per minute from the
/// capture's metrics source (a minute without requests is left out, a p99
/// in the top bucket is drawn at that bucket's bound), or `None` when the
/// capture read no metrics.
fn latency_metrics(app: &App) -> Option<html::LatencyMetrics> {
    let (kind, url) = app.metrics.source.as_ref()?;
    Some(html::LatencyMetrics {
        source: format!("{} {url}", kind.name()),
        p99_seconds: app
            .metrics
            .p99_series()
            .into_iter()
            .filter_map(|m| Some((m.minute, m.p99?.seconds)))
            .collect(),
    })
}
