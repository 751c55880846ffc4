//! Element Web's and Element Call's logs into the capture: `rageshake.tar`
//! (`log-N.log`, `issue.txt`), a rageshake report folder (`details.log.gz`,
//! `logs-NNNN.log.gz`), single `*.log.gz` or plain `*.log` console exports.
//! Each log is written redacted under `client/<name>/` (or `client/<file>`
//! for a single log), its entries read by
//! [`crate::domain::element_log`]; entries with a KE signature become
//! client entries citing `client/<file>:<line>`. A truncated tar or gzip
//! keeps what was read, and says so; nothing read is dropped.

use super::Capture;
use crate::app::event::{ArtifactKind, ClientArtifact};
use crate::domain::element_log::{ClientMetadata, parse_console, parse_metadata};
use chrono::{DateTime, Utc};
use std::io::{self, Read};
use std::path::Path;

/// Logs larger than this (after decompression) are cut there, and say so
/// (Element Web keeps about 5 MB of logs).
const LOG_MAX: u64 = 256 * 1024 * 1024;

/// One file of the logs: its name inside the artefact and its bytes, or
/// why it could not be read whole.
struct Member {
    name: String,
    bytes: Vec<u8>,
    problem: Option<String>,
}

fn gunzip(raw: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::new();
    let r = flate2::read::GzDecoder::new(raw)
        .take(LOG_MAX)
        .read_to_end(&mut out);
    (out, r.err().map(|e| format!("gzip: {e}")))
}

/// A member's bytes, gunzipped when its name ends in `.gz`; the name
/// without `.gz`.
fn member(name: &str, raw: Vec<u8>, problem: Option<String>) -> Member {
    match name.strip_suffix(".gz") {
        Some(plain) => {
            let (bytes, gz) = gunzip(&raw);
            Member {
                name: plain.to_string(),
                bytes,
                problem: problem.or(gz),
            }
        }
        None => Member {
            name: name.to_string(),
            bytes: raw,
            problem,
        },
    }
}

fn read_tar(path: &Path) -> io::Result<(Vec<Member>, Option<String>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Ok((out, Some(format!("not a tar: {e}")))),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Ok((out, Some(format!("tar cut short: {e}")))),
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "member".into());
        let mut raw = Vec::new();
        let r = (&mut entry).take(LOG_MAX).read_to_end(&mut raw);
        let problem = r.err().map(|e| format!("tar member {name} cut short: {e}"));
        let cut = problem.is_some();
        out.push(member(&name, raw, problem));
        if cut {
            return Ok((out, Some("tar cut short".into())));
        }
    }
    Ok((out, None))
}

fn read_folder(path: &Path) -> io::Result<Vec<Member>> {
    let mut files: Vec<_> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut raw = Vec::new();
        std::fs::File::open(&f)?
            .take(LOG_MAX)
            .read_to_end(&mut raw)?;
        out.push(member(&name, raw, None));
    }
    Ok(out)
}

/// `issue.txt`, `details.log`: the reporter's metadata, not a console log.
fn is_metadata(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "issue.txt" || lower == "details.log" || lower == "details.txt"
}

impl Capture {
    /// Reads Element Web's / Element Call's logs at `path` (a tar, a
    /// folder, a `.log.gz` or a `.log`) into one artefact named `name`.
    pub(super) fn element_logs(
        &mut self,
        path: &Path,
        name: &str,
        arrived_at: DateTime<Utc>,
    ) -> io::Result<ClientArtifact> {
        let lower = name.to_ascii_lowercase();
        let (members, problem, folder) = if path.is_dir() {
            (read_folder(path)?, None, true)
        } else if lower.ends_with(".tar") {
            let (m, p) = read_tar(path)?;
            (m, p, true)
        } else {
            let mut raw = Vec::new();
            std::fs::File::open(path)?
                .take(LOG_MAX)
                .read_to_end(&mut raw)?;
            (vec![member(name, raw, None)], None, false)
        };
        let stem = name.strip_suffix(".tar").unwrap_or(name);
        let base = if folder {
            self.unique_client_name(stem)
        } else {
            self.unique_client_name(members.first().map_or(name, |m| m.name.as_str()))
        };
        let mut art = ClientArtifact::new(base.clone(), ArtifactKind::ElementLog, arrived_at);
        art.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let Some(p) = problem {
            art.warnings
                .push(format!("{name}: {p}; what was read is kept"));
        }
        if folder && members.is_empty() {
            art.unparsed = Some("no logs in it".into());
        }
        let mut meta = ClientMetadata::default();
        let mut timed = 0;
        let mut logs = 0;
        let mut entry_no = 0usize;
        for m in members {
            let file = if folder {
                format!("{base}/{}", m.name)
            } else {
                base.clone()
            };
            let (red, n) = self.redactor.redact_bytes(&m.bytes);
            self.journal
                .write_redacted(&format!("client/{file}"), &red, &n)?;
            art.redactions += n.total();
            for (rule, k) in n.names() {
                *art.redactions_by_rule.entry(rule).or_default() += k;
            }
            if let Some(p) = m.problem {
                art.warnings
                    .push(format!("{file}: {p}; what was read is kept"));
            }
            let text = String::from_utf8_lossy(&m.bytes);
            if is_metadata(&m.name) {
                let md = parse_metadata(&text);
                meta.user_id = meta.user_id.or(md.user_id);
                meta.device_id = meta.device_id.or(md.device_id);
                meta.device_keys = meta.device_keys.or(md.device_keys);
                continue;
            }
            if !m.name.to_ascii_lowercase().ends_with(".log") {
                continue;
            }
            logs += 1;
            let log = parse_console(&text);
            timed += log.timed;
            for e in log.entries {
                let index = entry_no;
                entry_no += 1;
                if let Some(t) = e.at {
                    art.first_at = Some(art.first_at.map_or(t, |f| f.min(t)));
                }
                let Some(ke) = self.matcher.classify_client(&e.message).map(|c| c.ke) else {
                    continue;
                };
                let level = e.level.map(str::to_string);
                let mut entry =
                    self.client_entry(&mut art, &file, index, (e.at, level, Some(ke)), &e.message);
                entry.line = Some(e.line);
                art.entries.push(entry);
            }
        }
        art.user_id = meta.user_id;
        art.device_id = meta.device_id;
        if logs > 0 && timed == 0 {
            art.warnings.push(format!(
                "{name}: no line starts with a console timestamp (2026-06-30T18:00:01.234Z I …): kept as raw lines, no times"
            ));
        }
        if logs == 0 && art.unparsed.is_none() {
            art.unparsed = Some("no console log (*.log) in it".into());
        }
        Ok(art)
    }
}
