//! With several server logs, each KE log holds every log's lines in time
//! order, each with its log's name: lines are written as they arrive (so a
//! crash keeps them) and put in order when the capture ends. Lines of the
//! same time keep the order they came in.

use super::Capture;
use crate::bundle::journal::KE_LOGS;
use chrono::{DateTime, Utc};
use std::io;

/// A KE line's time in µs (before any: first).
pub(super) type Key = i64;

pub(super) fn key(at: Option<DateTime<Utc>>, _log: usize) -> Key {
    at.map_or(i64::MIN, |t| t.timestamp_micros())
}

impl Capture {
    /// Puts each KE log in time order (several logs only; one log's lines
    /// are in its own order already).
    pub(super) fn merge_ke_logs(&mut self) -> io::Result<()> {
        if !self.logs.several() {
            return Ok(());
        }
        for (i, rel) in KE_LOGS.iter().enumerate() {
            let keys = std::mem::take(&mut self.ke_order[i]);
            if keys.is_sorted() {
                continue;
            }
            self.journal.ke[i].flush()?;
            let data = std::fs::read(self.journal.dir.join(rel))?;
            let lines: Vec<&[u8]> = data.split_inclusive(|b| *b == b'\n').collect();
            if lines.len() != keys.len() {
                tracing::warn!(
                    ke = rel,
                    "KE log and its keys differ; left in arrival order"
                );
                continue;
            }
            let mut order: Vec<usize> = (0..lines.len()).collect();
            order.sort_by_key(|&k| keys[k]);
            let mut out = Vec::with_capacity(data.len());
            for k in order {
                out.extend_from_slice(lines[k]);
            }
            self.journal.replace_ke(i, &out)?;
        }
        Ok(())
    }

    /// Ends every log's input (a last line without its newline is a line;
    /// stalls being counted are complete) and puts the KE logs in order:
    /// the capture takes no more server input. Returns the logs' last
    /// batches.
    pub fn finish(&mut self) -> io::Result<Vec<crate::app::event::ServerBatch>> {
        let names: Vec<String> = self.logs.names().to_vec();
        let mut out = Vec::with_capacity(names.len());
        for n in &names {
            out.push(self.end_of_input(n, false)?);
        }
        self.merge_ke_logs()?;
        self.journal.flush()?;
        Ok(out)
    }
}
