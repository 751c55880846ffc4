//! KE-3 event ids that arrive after the lines naming them (with a client
//! report): the journal's server log is read again for them.

use super::Capture;
use super::display::{display_text, record_text};
use crate::app::event::{ServerBatch, ServerHit};
use crate::domain::signatures::Matcher;
use crate::domain::synapse_log::{parse_record, parse_timestamp_prefix};
use crate::domain::{Ke, KeSet};
use std::fs::File;
use std::io;
use std::sync::Arc;

impl Capture {
    /// Adds KE-3 event ids to the server pattern. Lines already journaled
    /// are searched for the new ids once (ids arrive with client reports,
    /// usually after the lines they name), so KE-3 holds every line that
    /// names them. Returns those earlier lines as a batch for the App.
    pub fn add_ke3_ids(&mut self, ids: &[String]) -> Result<Option<ServerBatch>, String> {
        let new: Vec<String> = ids
            .iter()
            .filter(|id| !id.is_empty() && !self.ke3_ids.contains(id))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(None);
        }
        self.ke3_ids.extend(new.iter().cloned());
        self.matcher = Arc::new(Matcher::new(&self.sigs, &self.ke3_ids)?);
        self.generation += 1;
        if self.lines == 0 {
            return Ok(None);
        }
        self.rescan_for(&new)
            .map(Some)
            .map_err(|e| format!("searching the journal for KE-3 ids: {e}"))
    }

    fn rescan_for(&mut self, ids: &[String]) -> io::Result<ServerBatch> {
        self.journal.flush()?;
        // Waits until the writer thread has put every line on disk.
        let _ = self.journal.server.facts();
        let path = self.journal.dir.join(crate::bundle::journal::SERVER_LOG);
        let finders: Vec<memchr::memmem::Finder> = ids
            .iter()
            .map(|i| memchr::memmem::Finder::new(i.as_bytes()))
            .collect();
        let mut batch = ServerBatch {
            source: "server-log".into(),
            ..Default::default()
        };
        let mut reader = std::io::BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut line = Vec::new();
        let mut n = 0u64;
        let mut last_at = None;
        let limit = self.lines;
        use std::io::BufRead;
        while n < limit {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            n += 1;
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            if let Some(t) = parse_timestamp_prefix(l) {
                last_at = Some(self.clock.to_utc(t));
            }
            if !finders.iter().any(|f| f.find(l).is_some()) {
                continue;
            }
            let i = Ke::Ke3.index();
            self.ke_lines[i] += 1;
            let mut ke_line_no = [0u64; 4];
            ke_line_no[i] = self.ke_lines[i];
            self.journal.ke[i].write(l)?;
            self.journal.ke[i].write(b"\n")?;
            let mut kes = KeSet::default();
            kes.insert(Ke::Ke3);
            let text = batch.add_text(&match parse_record(l) {
                Some(h) => record_text(Some(&self.redactor), &h),
                None => display_text(l),
            });
            batch.hits.push(ServerHit {
                line_no: n,
                at: last_at,
                text,
                kes,
                ke_line_no,
                error: false,
                offending: None,
                request: None,
            });
        }
        self.journal.flush()?;
        batch.lines_total = self.lines;
        batch.bytes_total = self.bytes;
        Ok(batch)
    }
}
