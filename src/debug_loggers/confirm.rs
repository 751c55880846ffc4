//! Did the raise take? The first DEBUG record of a raised logger that
//! reaches the capture after the reload says so. It is looked for in the
//! journal's `server/homeserver.log` (what was captured, whatever the
//! source), read as it grows.

use crate::domain::synapse_log::parse_record;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Reads a growing log from its start, counting lines, and finds the first
/// DEBUG record of one of `loggers` at or after byte `from`.
pub struct Scanner {
    loggers: Vec<String>,
    from: u64,
    offset: u64,
    line_no: u64,
    partial: Vec<u8>,
}

impl Scanner {
    pub fn new(loggers: &[String], from: u64) -> Scanner {
        Scanner {
            loggers: loggers.to_vec(),
            from,
            offset: 0,
            line_no: 0,
            partial: Vec::new(),
        }
    }

    /// Reads what was added to `log` since the last call; `Some((line
    /// number, text))` once a DEBUG record of a raised logger is found.
    pub fn poll(&mut self, log: &Path) -> std::io::Result<Option<(u64, String)>> {
        let mut f = match std::fs::File::open(log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(self.offset + self.partial.len() as u64))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.partial.extend_from_slice(&buf[..n]);
            while let Some(nl) = memchr::memchr(b'\n', &self.partial) {
                let start = self.offset;
                self.line_no += 1;
                self.offset += nl as u64 + 1;
                let line: Vec<u8> = self.partial.drain(..=nl).collect();
                if start < self.from {
                    continue;
                }
                if let Some(found) = self.debug_record(&line[..nl]) {
                    return Ok(Some((self.line_no, found)));
                }
            }
        }
    }

    fn debug_record(&self, line: &[u8]) -> Option<String> {
        let rec = parse_record(line)?;
        if rec.level != "DEBUG" || !self.loggers.iter().any(|l| l == rec.logger) {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        Some(text.chars().take(300).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn only_a_debug_record_of_a_raised_logger_after_the_raise_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("homeserver.log");
        let before =
            "2026-06-30 18:00:00,000 - synapse.handlers.e2e_keys - 324 - DEBUG - POST-1 - old\n";
        std::fs::write(&log, before).unwrap();
        let mut s = Scanner::new(
            &["synapse.handlers.e2e_keys".to_string()],
            before.len() as u64,
        );
        assert_eq!(s.poll(&log).unwrap(), None);
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(
            b"2026-06-30 18:00:01,000 - synapse.handlers.e2e_keys - 967 - INFO - POST-2 - Adding\n",
        )
        .unwrap();
        f.write_all(b"2026-06-30 18:00:01,500 - synapse.handlers.e2e_keys_x - 1 - DEBUG - POST-2 - other logger\n")
            .unwrap();
        f.write_all(b"2026-06-30 18:00:02,000 - synapse.handlers.e2e_keys - 324 - DEB")
            .unwrap();
        assert_eq!(s.poll(&log).unwrap(), None, "a half-written line waits");
        f.write_all(b"UG - POST-3 - 0 destinations to query devices for\n")
            .unwrap();
        let (line, text) = s.poll(&log).unwrap().unwrap();
        assert_eq!(line, 4);
        assert!(
            text.ends_with("0 destinations to query devices for"),
            "{text}"
        );
    }
}
