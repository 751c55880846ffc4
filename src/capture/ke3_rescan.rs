//! KE-3 event ids that arrive after the lines naming them (with a client
//! report): the journal's server log is read again for them.

use super::display::{display_text, record_text};
use super::scan::Heads;
use super::{Capture, decoded};
use crate::app::event::{ServerBatch, ServerHit};
use crate::domain::log_format::Format;
use crate::domain::signatures::Matcher;
use crate::domain::synapse_log::{parse_record, parse_timestamp_prefix};
use crate::domain::{Ke, KeSet};
use crate::model::server_logs::line_number;
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
        if self.lines() == 0 {
            return Ok(None);
        }
        self.rescan_for(&new)
            .map(Some)
            .map_err(|e| format!("searching the journal for KE-3 ids: {e}"))
    }

    fn rescan_for(&mut self, ids: &[String]) -> io::Result<ServerBatch> {
        self.journal.flush()?;
        let finders: Vec<memchr::memmem::Finder> = ids
            .iter()
            .map(|i| memchr::memmem::Finder::new(i.as_bytes()))
            .collect();
        let mut batch = ServerBatch {
            source: self.logs.name(0).to_string(),
            ..Default::default()
        };
        for src in 0..self.sources.len() {
            self.rescan_log(src, &finders, &mut batch)?;
        }
        self.journal.flush()?;
        batch.lines_total = self.lines();
        batch.bytes_total = self.bytes();
        Ok(batch)
    }

    /// One log's journaled lines, searched for the ids.
    fn rescan_log(
        &mut self,
        src: usize,
        finders: &[memchr::memmem::Finder],
        batch: &mut ServerBatch,
    ) -> io::Result<()> {
        // Waits until the writer thread has put every line on disk.
        let _ = self.journal.server_file(src).facts();
        let path = self.journal.dir.join(&self.journal.server_files()[src]);
        let format = self.sources[src].format.unwrap_or(Format::Text);
        let clock = self.sources[src].scan_clock();
        let zone = self.sources[src].clock.zone_only();
        let mut carried = None;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut line = Vec::new();
        let mut n = 0u64;
        let mut last_at = None;
        let limit = self.sources[src].lines;
        use std::io::BufRead;
        while n < limit {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            n += 1;
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            // A decoded log's line is read as a record (for its time and
            // its display line) only when it names an id.
            if !format.is_decoded()
                && let Some(t) = parse_timestamp_prefix(l)
            {
                last_at = Some(clock.to_utc(t));
            }
            if !finders.iter().any(|f| f.find(l).is_some()) {
                continue;
            }
            let mut ke_line = self.name_prefix_of(src);
            let text = if format.is_decoded() {
                let d = decoded::decode(l, format, &zone, &mut carried);
                last_at = d.first_time().or(carried).map(|t| clock.to_utc(t));
                d.display(1, &mut ke_line);
                let body = d.body.strip_suffix(b"\n").unwrap_or(&d.body);
                match d.head(1, body) {
                    Some(h) => record_text(Some(&self.redactor), &h),
                    None => display_text(body),
                }
            } else {
                ke_line.extend_from_slice(l);
                match parse_record(l) {
                    Some(h) => record_text(Some(&self.redactor), &h),
                    None => display_text(l),
                }
            };
            let i = Ke::Ke3.index();
            self.ke_lines[i] += 1;
            let mut ke_line_no = [0u64; 4];
            ke_line_no[i] = self.ke_lines[i];
            if self.logs.several() {
                self.ke_order[i].push(super::ke_merge::key(last_at, src));
            }
            self.journal.ke[i].write(&ke_line)?;
            self.journal.ke[i].write(b"\n")?;
            let mut kes = KeSet::default();
            kes.insert(Ke::Ke3);
            let text = batch.add_text(&text);
            batch.hits.push(ServerHit {
                line_no: line_number(src, n),
                at: last_at,
                text,
                kes,
                ke_line_no,
                error: false,
                offending: None,
                request: None,
            });
        }
        Ok(())
    }
}
