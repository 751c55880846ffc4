//! Client downloads into the capture: a diag report or HAR file is copied
//! into `client/` (redacted) and parsed into a client artefact.

use super::Capture;
use crate::app::event::{ArtifactKind, ClientArtifact, ClientEntry, HarConflict};
use crate::domain::Ke;
use crate::domain::diag::{ke3_event_id, parse_diag, parse_diag_reader};
use crate::domain::har::{self, redact_har, scan_har};
use crate::domain::redact::Redactor;
use crate::domain::redact::Tally;
use crate::domain::signatures::Matcher;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// A diag report larger than this is kept verbatim but not parsed.
const DIAG_PARSE_MAX: u64 = 64 * 1024 * 1024;

/// Reads a diag report's entries again from its copy in a bundle, where the
/// journal names it ([`crate::model::client::ClientCopy`]) instead of
/// keeping the entries; with the capture's signatures and redaction rules.
#[derive(Clone)]
pub struct CopyReader {
    matcher: Arc<Matcher>,
    redactor: Arc<Redactor>,
}

impl CopyReader {
    /// The artefact's entries: read from the copy in `bundle` its journal
    /// line names (checked against its size and sha256), or the ones the
    /// line holds (a journal written before entries were kept by reference).
    pub fn entries(&self, bundle: &Path, a: &ClientArtifact) -> Result<Vec<ClientEntry>, String> {
        let Some(copy) = &a.copy else {
            return Ok(a.entries.clone());
        };
        // Read as a stream, hashed on the way: the copy (tens of MiB for a
        // big report) is never in memory whole beside its entries.
        let file = File::open(bundle.join(&copy.path))
            .map_err(|e| format!("cannot read {}: {e}", copy.path))?;
        let mut hashed = HashingReader {
            inner: file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let parsed = parse_diag_reader(BufReader::new(&mut hashed), &self.matcher);
        io::copy(&mut hashed, &mut io::sink())
            .map_err(|e| format!("cannot read {}: {e}", copy.path))?;
        let sha = hex::encode(hashed.hasher.finalize());
        if hashed.bytes != copy.bytes || sha != copy.sha256 {
            return Err(format!(
                "{} is not the copy the journal names ({} bytes, sha256 {sha}; the journal: {} bytes, sha256 {})",
                copy.path, hashed.bytes, copy.bytes, copy.sha256
            ));
        }
        let mut art = ClientArtifact::new(a.file.clone(), a.kind, a.arrived_at);
        take_diag(&self.redactor, &self.matcher, parsed, &mut art);
        if art.entries.len() != copy.entries {
            return Err(format!(
                "{} gives {} entries, the journal counted {}",
                copy.path,
                art.entries.len(),
                copy.entries
            ));
        }
        Ok(art.entries)
    }
}

/// A diag report's entries (redacted, with their KE and whether they are
/// errors) and the KE-3 event ids they name. The report's bytes are let go
/// once parsed (a report may be tens of MiB).
fn read_diag(matcher: &Matcher, redactor: &Redactor, raw: Vec<u8>, art: &mut ClientArtifact) {
    let parsed = parse_diag(&raw, matcher);
    drop(raw);
    take_diag(redactor, matcher, parsed, art);
}

/// Bytes read through it are hashed and counted.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A parsed diag report into the artefact: its entries redacted, with
/// their KE and whether they are errors, and the KE-3 event ids they name.
fn take_diag(
    redactor: &Redactor,
    matcher: &Matcher,
    parsed: Result<crate::domain::diag::DiagReport, crate::domain::diag::DiagError>,
    art: &mut ClientArtifact,
) {
    match parsed {
        Ok(report) => {
            art.user_id = report.user_id.clone();
            art.device_id = report.device_id.clone();
            for e in report.entries {
                let msg = match redactor.redact_str(&e.message).0 {
                    std::borrow::Cow::Owned(red) => red,
                    std::borrow::Cow::Borrowed(_) => e.message,
                };
                if e.ke == Some(Ke::Ke3)
                    && let Some(id) = ke3_event_id(&msg)
                    && !art.ke3_event_ids.contains(&id)
                {
                    art.ke3_event_ids.push(id);
                }
                let error = matcher
                    .classify_client(&msg)
                    .map(|c| c.error)
                    .unwrap_or(e.ke.is_some());
                art.entries.push(ClientEntry {
                    file: art.file.clone(),
                    index: e.index,
                    at: e.ts,
                    level: e.level,
                    ke: e.ke,
                    error,
                    message: msg,
                    line: None,
                });
            }
        }
        Err(e) => art.unparsed = Some(e.to_string()),
    }
}

impl Capture {
    /// What reads diag reports' entries again from their copies.
    pub fn copy_reader(&self) -> CopyReader {
        CopyReader {
            matcher: self.matcher.clone(),
            redactor: self.redactor.clone(),
        }
    }

    /// Copies a client download into `client/` (redacted) and parses it.
    /// Never fails on bad content: unparsable files are kept verbatim.
    pub fn client_file(
        &mut self,
        path: &Path,
        arrived_at: DateTime<Utc>,
    ) -> io::Result<ClientArtifact> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "client-file".into());
        let name = self.unique_client_name(&name);
        let rel = format!("client/{name}");
        let lower = name.to_ascii_lowercase();
        if crate::domain::element_log::is_element_log_name(&lower) || path.is_dir() {
            return self.element_logs(path, &name, arrived_at);
        }
        let kind = if lower.ends_with(".har") {
            ArtifactKind::Har
        } else if lower.ends_with(".json") {
            ArtifactKind::Diag
        } else {
            ArtifactKind::Other
        };
        let mut art = ClientArtifact::new(name.clone(), kind, arrived_at);
        let meta = std::fs::metadata(path)?;
        art.bytes = meta.len();
        match kind {
            ArtifactKind::Har => self.har_file(path, &rel, &mut art)?,
            ArtifactKind::Diag | ArtifactKind::Other | ArtifactKind::ElementLog => {
                self.diag_file(path, &rel, &mut art, meta.len())?
            }
        }
        Ok(art)
    }

    /// A HAR file: copied redacted (structurally), its keys/upload
    /// conflicts read.
    fn har_file(&mut self, path: &Path, rel: &str, art: &mut ClientArtifact) -> io::Result<()> {
        let out_path = self.journal.dir.join(rel);
        let n = {
            let input = BufReader::new(File::open(path)?);
            let mut out = BufWriter::new(File::create(&out_path)?);
            let n = redact_har(input, &mut out, &self.redactor).map_err(io::Error::other)?;
            out.flush()?;
            n
        };
        let mut facts = crate::bundle::journal::hash_file(&out_path)?;
        facts.redactions = n.total();
        facts.by_rule = n.names();
        self.journal.adopt(rel, facts);
        art.redactions = n.total();
        art.redactions_by_rule = n.names();
        match scan_har(BufReader::new(File::open(path)?)) {
            Ok(sum) => {
                art.har_keys_upload = sum.keys_upload.len();
                art.token_users = sum.users;
                for x in sum.keys_upload {
                    let Some(off) = x.offending else { continue };
                    let id = format!("{}:{}", off.algorithm, off.key_id);
                    let uploaded = x
                        .request_keys
                        .iter()
                        .find(|(k, _)| *k == id)
                        .and_then(|(_, v)| har::key_of(v))
                        .or_else(|| off.new_key.as_ref().and_then(har::key_of));
                    art.har_conflicts.push(HarConflict {
                        entry_index: x.entry_index,
                        at: x.started,
                        status: x.status,
                        algorithm: off.algorithm.clone(),
                        key_id: off.key_id.clone(),
                        uploaded_key: uploaded,
                        stored_key: off.old_key.as_ref().and_then(har::key_of),
                    });
                }
            }
            Err(e) => art.unparsed = Some(e.to_string()),
        }
        Ok(())
    }

    /// A diag report (or another file): copied redacted, and a diag report
    /// no larger than [`DIAG_PARSE_MAX`] parsed.
    fn diag_file(
        &mut self,
        path: &Path,
        rel: &str,
        art: &mut ClientArtifact,
        len: u64,
    ) -> io::Result<()> {
        let kind = art.kind;
        let mut raw = Vec::with_capacity(len.min(DIAG_PARSE_MAX) as usize + 1);
        File::open(path)?
            .take(DIAG_PARSE_MAX)
            .read_to_end(&mut raw)?;
        let complete = (raw.len() as u64) >= len;
        let n = if complete {
            let (red, n) = self.redactor.redact_bytes(&raw);
            self.journal.write_redacted(rel, &red, &n)?;
            n
        } else {
            // Too big to parse: copy streaming, redacted per chunk.
            self.copy_redacted(path, rel)?
        };
        art.redactions = n.total();
        art.redactions_by_rule = n.names();
        if kind == ArtifactKind::Diag && complete {
            read_diag(&self.matcher, &self.redactor, raw, art);
        } else if kind == ArtifactKind::Diag {
            art.unparsed = Some(format!("larger than {DIAG_PARSE_MAX} bytes"));
        }
        Ok(())
    }

    /// A client entry from a message: redacted, its KE and whether it is an
    /// error from the client signatures; KE-3 event ids collected.
    pub(super) fn client_entry(
        &self,
        art: &mut ClientArtifact,
        file: &str,
        index: usize,
        (at, level, ke): (Option<DateTime<Utc>>, Option<String>, Option<Ke>),
        message: &str,
    ) -> ClientEntry {
        let (msg, _) = self.redactor.redact_str(message);
        let msg = msg.into_owned();
        if ke == Some(Ke::Ke3)
            && let Some(id) = ke3_event_id(&msg)
            && !art.ke3_event_ids.contains(&id)
        {
            art.ke3_event_ids.push(id);
        }
        let error = self
            .matcher
            .classify_client(&msg)
            .map(|c| c.error)
            .unwrap_or(ke.is_some());
        ClientEntry {
            file: file.to_string(),
            index,
            at,
            level,
            ke,
            error,
            message: msg,
            line: None,
        }
    }

    /// Copies a file too big to parse, redacted on the way (streaming).
    fn copy_redacted(&mut self, path: &Path, rel: &str) -> io::Result<Tally> {
        let out_path = self.journal.dir.join(rel);
        let mut w = self
            .redactor
            .writer(BufWriter::new(File::create(&out_path)?));
        io::copy(&mut File::open(path)?, &mut w)?;
        let (_, n) = w.finish()?;
        let mut facts = crate::bundle::journal::hash_file(&out_path)?;
        facts.redactions = n.total();
        facts.by_rule = n.names();
        self.journal.adopt(rel, facts);
        Ok(n)
    }

    pub(super) fn unique_client_name(&self, name: &str) -> String {
        let taken = |n: &str| self.journal.dir.join("client").join(n).exists();
        if !taken(name) {
            return name.to_string();
        }
        let (stem, ext) = match name.rfind('.') {
            Some(i) => (&name[..i], &name[i..]),
            None => (name, ""),
        };
        (2..)
            .map(|i| format!("{stem}-{i}{ext}"))
            .find(|n| !taken(n))
            .unwrap_or_else(|| name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_capture as capture;
    use crate::model::journal_entry::JournalEntry;

    #[test]
    fn the_journal_names_a_reports_copy_and_its_entries_are_read_back_from_it_unless_it_changed() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut c = capture(&tmp.path().join("j"));
        let report = tmp.path().join("lotus-crypto-diag-1.json");
        let entries: Vec<String> = (0..30)
            .map(|i| format!(r#"{{"ts": {}, "level": "error", "message": "MissingKey: missing key at index {i} for participant @bob:x"}}"#, 1_782_842_410_000u64 + i))
            .collect();
        std::fs::write(
            &report,
            format!(
                r#"{{"userId": "@a:x", "entries": [{}]}}"#,
                entries.join(",")
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let at = chrono::Utc::now();
        let art = c.client_file(&report, at).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(art.entries.len(), 30);
        c.journal
            .record(&JournalEntry::Client {
                at,
                artifact: Box::new(art.clone()),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = c.journal.dir.clone();
        let line = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap_or_default();
        assert!(!line.contains("MissingKey"), "{line}");
        let journaled = crate::bundle::journal::read_entries(&dir).unwrap_or_default();
        let Some(JournalEntry::Client { artifact, .. }) = journaled.last() else {
            panic!("{journaled:?}")
        };
        let copy = artifact
            .copy
            .clone()
            .unwrap_or_else(|| panic!("no copy named"));
        assert_eq!(
            (copy.path.as_str(), copy.entries),
            ("client/lotus-crypto-diag-1.json", 30)
        );
        assert!(artifact.entries.is_empty());
        let reader = c.copy_reader();
        assert_eq!(reader.entries(&dir, artifact), Ok(art.entries.clone()));
        // Inline entries (a journal of before) are taken as they are.
        assert_eq!(reader.entries(&dir, &art), Ok(art.entries.clone()));
        // A copy changed since: not read as the report's.
        std::fs::write(dir.join(&copy.path), b"{\"entries\": []}")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = reader.entries(&dir, artifact).err().unwrap_or_default();
        assert!(err.contains("is not the copy the journal names"), "{err}");
    }
}
