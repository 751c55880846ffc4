//! The capture stage between sources and the App: splits server bytes into
//! lines, matches every KE in one pass, redacts, journals, and hands the App
//! only what it shows or counts. Client files are copied (redacted) and parsed
//! here too. This is the hot path of `analyze` and of a log flood.

use crate::bundle::journal::Journal;
use crate::domain::har::ConflictMemo;
use crate::domain::redact::Redactor;
use crate::domain::signatures::{Matcher, Signatures};
use crate::domain::stall::StallDetector;
use crate::domain::synapse_log::LogClock;
use chrono::{DateTime, Utc};
pub use scan::{ScanContext, ScannedBuffer};

mod access;
mod client_ingest;
mod display;
mod file_scan;
mod ke3_rescan;
mod log_ingest;
mod long_line;
mod scan;
pub use file_scan::{ScanFileError, Spent, scan_file, scanner_threads};
pub use log_ingest::Committed;
pub use long_line::LINE_CAP;
#[cfg(test)]
use std::path::Path;
use std::sync::Arc;

/// How far back a continuation line looks for its record's time.
const LOOKBACK_LINES: usize = 2000;

pub struct Capture {
    pub journal: Journal,
    sigs: Signatures,
    matcher: Arc<Matcher>,
    redactor: Arc<Redactor>,
    clock: LogClock,
    /// Bumped whenever what a scan reads with (matcher, clock) changes.
    generation: u64,
    ke3_ids: Vec<String>,
    partial: Vec<u8>,
    /// A line cut at [`LINE_CAP`], still going on.
    long_line: Option<long_line::LongLine>,
    /// For the status line (a cut line), until taken.
    notes: Vec<String>,
    lines: u64,
    bytes: u64,
    ke_lines: [u64; 4],
    last_record_at: Option<DateTime<Utc>>,
    stalls: StallDetector,
    conflicts: ConflictMemo,
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
        let matcher = Matcher::new(&sigs, &ke3_ids)?;
        Ok(Capture {
            journal,
            sigs,
            matcher: Arc::new(matcher),
            redactor: Arc::new(Redactor::new()),
            clock,
            generation: 0,
            ke3_ids,
            partial: Vec::new(),
            long_line: None,
            notes: Vec::new(),
            lines: 0,
            bytes: 0,
            ke_lines: [0; 4],
            last_record_at: None,
            stalls: StallDetector::new(restart_timeout_ms),
            conflicts: ConflictMemo::default(),
        })
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

    /// A measured remote clock offset (remote minus local) applies to the
    /// server lines that follow.
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.clock.set_offset_ms(offset_ms);
        self.generation += 1; // scans made with the old clock are stale
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// What scanning needs, for a scan on another thread.
    pub fn scan_context(&self) -> ScanContext {
        ScanContext {
            matcher: self.matcher.clone(),
            redactor: self.redactor.clone(),
            clock: self.clock.clone(),
            generation: self.generation,
        }
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
