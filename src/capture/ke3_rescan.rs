//! KE-3 event ids that arrive after the lines naming them (with a client
//! report): the journal's server log is read again for them, only where
//! they may be (see `ke3_index.rs`): a later batch of ids does not read the
//! whole log again.

use super::display::{display_text, record_text};
use super::ke3_index::{BLOCK_BYTES, Building, IdIndex, key_of};
use super::scan::Heads;
use super::{Capture, decoded};
use crate::app::event::{ServerBatch, ServerHit};
use crate::domain::log_format::Format;
use crate::domain::signatures::Matcher;
use crate::domain::synapse_log::LogClock;
use crate::domain::synapse_log::{parse_record, parse_timestamp_prefix};
use crate::domain::{Ke, KeSet};
use crate::model::server_logs::line_number;
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
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
        // One automaton for all the ids: a report can name hundreds, and
        // each line is searched once, not once per id.
        let finders = aho_corasick::AhoCorasick::new(ids).map_err(io::Error::other)?;
        let keys: Vec<Option<u64>> = ids.iter().map(|i| key_of(i)).collect();
        let mut batch = ServerBatch {
            source: self.logs.name(0).to_string(),
            ..Default::default()
        };
        for src in 0..self.sources.len() {
            self.rescan_log(src, &finders, &keys, &mut batch)?;
        }
        self.journal.flush()?;
        batch.lines_total = self.lines();
        batch.bytes_total = self.bytes();
        Ok(batch)
    }

    /// One log's journaled lines, searched for the ids: the blocks an
    /// earlier rescan indexed that may name them, then the lines past them
    /// (indexed as they are read).
    fn rescan_log(
        &mut self,
        src: usize,
        finders: &aho_corasick::AhoCorasick,
        keys: &[Option<u64>],
        batch: &mut ServerBatch,
    ) -> io::Result<()> {
        // Waits until the writer thread has put every line on disk.
        let _ = self.journal.server_file(src).facts();
        let path = self.journal.dir.join(&self.journal.server_files()[src]);
        let format = self.sources[src].format.unwrap_or(Format::Text);
        let mut rd = Reading {
            src,
            format,
            clock: self.sources[src].scan_clock(),
            zone: self.sources[src].clock.zone_only(),
            carried: None,
            last_at: None,
            finders,
        };
        let mut file = File::open(path)?;
        let limit = self.sources[src].lines;
        if self.ke3_index.len() <= src {
            self.ke3_index.resize_with(src + 1, IdIndex::default);
        }
        let mut index = std::mem::take(&mut self.ke3_index[src]);
        let r = self.rescan_indexed(&mut file, &mut rd, &mut index, (keys, limit), batch);
        self.ke3_index[src] = index;
        r
    }

    fn rescan_indexed(
        &mut self,
        file: &mut File,
        rd: &mut Reading,
        index: &mut IdIndex,
        (keys, limit): (&[Option<u64>], u64),
        batch: &mut ServerBatch,
    ) -> io::Result<()> {
        let mut line = Vec::new();
        for b in index.blocks.iter().filter(|b| b.may_hold(keys)) {
            file.seek(SeekFrom::Start(b.start.offset))?;
            let mut reader = BufReader::with_capacity(1 << 16, &mut *file);
            let mut n = b.start.line;
            if !rd.format.is_decoded() {
                rd.last_at = b.start.last_at;
            }
            while n < b.end.line {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                n += 1;
                index.lines_read += 1;
                let l = line.strip_suffix(b"\n").unwrap_or(&line);
                self.rescan_line(rd, n, l, batch)?;
            }
        }
        // The rest, indexed as it is read; a last block not yet whole is
        // read again next time.
        let mut at = index.tail;
        file.seek(SeekFrom::Start(at.offset))?;
        let mut reader = BufReader::with_capacity(1 << 20, &mut *file);
        if !rd.format.is_decoded() {
            rd.last_at = at.last_at;
        }
        let mut building = Building::new(at);
        while at.line < limit {
            line.clear();
            let len = reader.read_until(b'\n', &mut line)?;
            if len == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            if !rd.format.is_decoded()
                && let Some(t) = parse_timestamp_prefix(l)
            {
                at.last_at = Some(rd.clock.to_utc(t));
            }
            building.add_line(l);
            self.rescan_line(rd, at.line + 1, l, batch)?;
            at.line += 1;
            at.offset += len as u64;
            index.lines_read += 1;
            if at.offset - building.start.offset >= BLOCK_BYTES {
                index
                    .blocks
                    .push(std::mem::replace(&mut building, Building::new(at)).close(at));
                index.tail = at;
            }
        }
        Ok(())
    }

    /// One journaled line (line `n` of its log): a KE-3 line when it names
    /// an id. Keeps the time of the last line with one.
    fn rescan_line(
        &mut self,
        rd: &mut Reading,
        n: u64,
        l: &[u8],
        batch: &mut ServerBatch,
    ) -> io::Result<()> {
        let src = rd.src;
        // A decoded log's line is read as a record (for its time and
        // its display line) only when it names an id.
        if !rd.format.is_decoded()
            && let Some(t) = parse_timestamp_prefix(l)
        {
            rd.last_at = Some(rd.clock.to_utc(t));
        }
        if !rd.finders.is_match(l) {
            return Ok(());
        }
        let mut ke_line = self.name_prefix_of(src);
        let text = if rd.format.is_decoded() {
            let d = decoded::decode(l, rd.format, &rd.zone, &mut rd.carried);
            rd.last_at = d.first_time().or(rd.carried).map(|t| rd.clock.to_utc(t));
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
            self.ke_order[i].push(super::ke_merge::key(rd.last_at, src));
        }
        self.journal.ke[i].write(&ke_line)?;
        self.journal.ke[i].write(b"\n")?;
        let mut kes = KeSet::default();
        kes.insert(Ke::Ke3);
        let text = batch.add_text(&text);
        batch.hits.push(ServerHit {
            line_no: line_number(src, n),
            at: rd.last_at,
            text,
            kes,
            ke_line_no,
            error: false,
            offending: None,
            request: None,
        });
        Ok(())
    }
}

/// What reading one log for the ids carries from line to line.
struct Reading<'f> {
    src: usize,
    format: Format,
    clock: LogClock,
    zone: LogClock,
    /// A decoded log's last record time (for a record without one).
    carried: Option<chrono::NaiveDateTime>,
    last_at: Option<DateTime<Utc>>,
    finders: &'f aho_corasick::AhoCorasick,
}

#[cfg(test)]
mod tests {
    use super::super::test_capture as capture;
    use crate::app::event::ServerBatch;

    const FIRST: &str = "$FirstBatchAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const EARLY: &str = "$EarlyIdBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    const LATE: &str = "$LateIdCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";

    /// About 7.6 MiB of log (seven blocks and a tail): records naming other events, `FIRST` early,
    /// `EARLY` on continuation lines around the first block's end (so a
    /// block starts with one), `LATE` near the end.
    fn log() -> String {
        let mut out = String::new();
        let mut i = 0u64;
        while out.len() < 8_000_000 {
            let s = i % 60;
            out.push_str(&format!(
                "2026-06-30 18:{:02}:{s:02},000 - synapse.handlers.message - 1 - INFO - PUT-{i} - Persisted event ${i:043} in room !r:x\n",
                (i / 60) % 60
            ));
            if i == 20 {
                out.push_str(&format!("  the first: {FIRST}\n"));
            }
            if (1_040_000..1_060_000).contains(&out.len()) {
                for _ in 0..5 {
                    out.push_str(&format!("  a continuation naming {EARLY}\n"));
                }
            }
            if (7_900_000..7_900_200).contains(&out.len()) {
                out.push_str(&format!(
                    "2026-06-30 19:00:00,000 - synapse.x - 1 - WARNING - GET-1 - {LATE}\n"
                ));
            }
            i += 1;
        }
        out
    }

    fn hits(b: &ServerBatch) -> Vec<(u64, Option<chrono::DateTime<chrono::Utc>>, String)> {
        b.hits
            .iter()
            .map(|h| (h.line_no, h.at, b.texts[h.text.clone()].to_string()))
            .collect()
    }

    #[test]
    fn a_later_batch_of_ids_reads_only_the_blocks_that_may_name_them_and_finds_what_a_whole_read_finds()
     {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = log();
        let feed = |c: &mut super::Capture| {
            for chunk in log.as_bytes().chunks(300_000) {
                c.server_chunk("server-log", chunk)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        };
        let lines = log.lines().count() as u64;
        // Indexed by a first batch, then asked for two more ids.
        let mut c = capture(&tmp.path().join("a"));
        feed(&mut c);
        let first = c
            .add_ke3_ids(&[FIRST.to_string()])
            .ok()
            .flatten()
            .unwrap_or_default();
        assert_eq!(first.hits.len(), 1);
        assert_eq!(c.ke3_index[0].lines_read, lines);
        assert!(c.ke3_index[0].blocks.len() >= 3);
        // The second block starts with a line without a time of its own.
        let second = c.ke3_index[0].blocks[1].start.line as usize;
        let starts = log.lines().nth(second).unwrap_or_default();
        assert!(starts.starts_with("  a continuation"), "{starts}");
        let later = c
            .add_ke3_ids(&[EARLY.to_string(), LATE.to_string()])
            .ok()
            .flatten()
            .unwrap_or_default();
        let second_read = c.ke3_index[0].lines_read - lines;
        assert!(
            second_read < lines / 2,
            "the second batch read {second_read} of {lines} lines"
        );
        // What a capture that reads the whole log for them finds.
        let mut whole = capture(&tmp.path().join("b"));
        feed(&mut whole);
        let expected = whole
            .add_ke3_ids(&[EARLY.to_string(), LATE.to_string()])
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(expected.hits.len() > 50, "{}", expected.hits.len());
        assert!(expected.hits.iter().all(|h| h.at.is_some()));
        assert_eq!(hits(&later), hits(&expected));
    }
}
