//! The capture stage between sources and the App: splits server bytes into
//! lines, matches every KE in one pass, redacts, journals, and hands the App
//! only what it shows or counts. Client files are copied (redacted) and parsed
//! here too. This is the hot path of `analyze` and of a log flood.

use crate::bundle::journal::Journal;
use crate::domain::har::ConflictMemo;
use crate::domain::redact::Redactor;
use crate::domain::signatures::{Matcher, Signatures};
use crate::domain::synapse_log::LogClock;
use crate::model::server_logs::ServerLogs;
pub use scan::{ScanContext, ScannedBuffer};

mod access;
mod client_ingest;
pub use client_ingest::CopyReader;
mod decoded;
mod display;
mod element_ingest;
mod file_scan;
mod ke3_index;
mod ke3_rescan;
mod ke_merge;
mod log_ingest;
mod long_line;
mod scan;
mod sfu_ingest;
mod source_log;
pub use file_scan::{ScanFileError, Spent, scan_file, scanner_threads};
pub use log_ingest::Committed;
pub use long_line::LINE_CAP;
pub use source_log::LogSpec;
use source_log::SourceLog;
#[cfg(test)]
use std::path::Path;
use std::sync::Arc;

/// Who writes a committed buffer's lines to the log's file, and what the
/// KE logs get.
enum LogWrite<'d> {
    /// The capture copies the clean bytes to the journal writer.
    Copy,
    /// The caller hands the whole buffer over when it is clean.
    Caller,
    /// The buffer holds decoded records' bodies; their raw lines are
    /// journaled already, and a KE log gets each record's display line.
    Decoded(&'d decoded::Decoded),
    /// Nothing of it: the bytes go to the log another way, redacted there
    /// (a cut line's head, see `long_line.rs`).
    Skip,
}

/// How far back a continuation line looks for its record's time.
const LOOKBACK_LINES: usize = 2000;

pub struct Capture {
    pub journal: Journal,
    sigs: Signatures,
    matcher: Arc<Matcher>,
    redactor: Arc<Redactor>,
    /// Bumped whenever what a scan reads with (matcher, clock) changes.
    generation: u64,
    ke3_ids: Vec<String>,
    /// The server logs by name; their line numbers carry their index.
    logs: ServerLogs,
    /// Each server log's own state, in the order of `logs`.
    sources: Vec<SourceLog>,
    /// For the status line (a cut line), until taken.
    notes: Vec<String>,
    ke_lines: [u64; 4],
    /// With several logs: each KE line's time and log, in the order
    /// written, to merge the KE logs in time order at the end.
    ke_order: [Vec<ke_merge::Key>; 4],
    conflicts: ConflictMemo,
    /// Per server log, what KE-3 rescans learned of where `$`s are.
    ke3_index: Vec<ke3_index::IdIndex>,
    /// Whether hits carry their pane text (see [`Capture::without_pane_texts`]).
    pane_texts: bool,
}

impl Capture {
    /// `restart_timeout_ms` is the client's delayed-event restart timeout:
    /// a longer silence of the log may be a homeserver stall.
    pub fn new(
        journal: Journal,
        sigs: Signatures,
        clock: LogClock,
        ke3_ids: Vec<String>,
        restart_timeout_ms: u32,
    ) -> Result<Capture, String> {
        let one = LogSpec {
            name: crate::model::server_logs::DEFAULT_LOG_NAME.to_string(),
            clock,
            format: None,
            service: None,
        };
        Capture::with_logs(journal, sigs, vec![one], ke3_ids, restart_timeout_ms)
    }

    /// A capture of several server logs (or one with a name or a known
    /// format), each with its own clock; their files are made in the
    /// journal.
    pub fn with_logs(
        mut journal: Journal,
        sigs: Signatures,
        specs: Vec<LogSpec>,
        ke3_ids: Vec<String>,
        restart_timeout_ms: u32,
    ) -> Result<Capture, String> {
        let matcher = Matcher::new(&sigs, &ke3_ids)?;
        let logs = ServerLogs::new(specs.iter().map(|s| s.name.clone()).collect());
        let files: Vec<String> = (0..logs.len()).map(|i| logs.file(i)).collect();
        journal
            .set_server_files(&files)
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        let sources = specs
            .into_iter()
            .map(|s| SourceLog::new(s, restart_timeout_ms))
            .collect();
        Ok(Capture {
            journal,
            sigs,
            matcher: Arc::new(matcher),
            redactor: Arc::new(Redactor::new()),
            generation: 0,
            ke3_ids,
            logs,
            sources,
            notes: Vec::new(),
            ke_lines: [0; 4],
            ke_order: Default::default(),
            conflicts: ConflictMemo::default(),
            ke3_index: Vec::new(),
            pane_texts: true,
        })
    }

    /// The server logs by name.
    pub fn logs(&self) -> &ServerLogs {
        &self.logs
    }

    /// The log a source name feeds (an unknown name: the first log).
    fn source_index(&self, name: &str) -> usize {
        self.logs.index_of(name).unwrap_or(0)
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Redacts with `redactor` from now on (site rules added to the
    /// built-in ones); the journal notes where its site rules came from.
    pub fn set_redactor(&mut self, redactor: Redactor) {
        self.journal.site_rules = redactor.site_origins().to_vec();
        self.redactor = Arc::new(redactor);
        self.generation += 1; // scans made with the old rules are stale
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// A measured remote clock offset (remote minus local) of the host a
    /// log is read from applies to that log's lines that follow.
    pub fn set_clock_offset_ms(&mut self, source: &str, offset_ms: i64) {
        let Some(i) = self.logs.index_of(source) else {
            return;
        };
        self.sources[i].clock.set_offset_ms(offset_ms);
        self.generation += 1; // scans made with the old clock are stale
    }

    /// Lines of every server log so far.
    pub fn lines(&self) -> u64 {
        self.sources.iter().map(|s| s.lines).sum()
    }

    /// Lines of one server log so far.
    pub fn lines_of(&self, source: &str) -> u64 {
        self.logs
            .index_of(source)
            .map_or(0, |i| self.sources[i].lines)
    }

    fn bytes(&self) -> u64 {
        self.sources.iter().map(|s| s.bytes).sum()
    }

    /// What scanning the first log's text needs, for a scan on another
    /// thread.
    pub fn scan_context(&self) -> ScanContext {
        self.scan_context_of(0)
    }

    /// What scanning a log's text needs (its clock).
    pub fn scan_context_for(&self, source: &str) -> ScanContext {
        self.scan_context_of(self.source_index(source))
    }

    fn scan_context_of(&self, index: usize) -> ScanContext {
        ScanContext {
            matcher: self.matcher.clone(),
            redactor: self.redactor.clone(),
            clock: self.sources[index].scan_clock(),
            generation: self.generation,
            pane_texts: self.pane_texts,
        }
    }

    /// For a capture no view shows (`analyze`): hits carry no pane text,
    /// except KE-1's, which the capture reads for the key ids a conflict
    /// names.
    pub fn without_pane_texts(&mut self) {
        self.pane_texts = false;
    }
}

/// A capture on the embedded signatures, journaling into `dir` (tests).
#[cfg(test)]
fn test_capture(dir: &Path) -> Capture {
    let journal = Journal::create(dir).unwrap_or_else(|e| panic!("journal: {e}"));
    Capture::new(
        journal,
        Signatures::embedded(),
        LogClock::utc(),
        Vec::new(),
        2_000,
    )
    .unwrap_or_else(|e| panic!("capture: {e}"))
}
