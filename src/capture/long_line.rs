//! A server log line that does not end: a binary file or a huge traceback
//! on the followed path. Past [`LINE_CAP`] bytes without a newline the
//! waiting line is not held any longer: its first `LINE_CAP` bytes are
//! taken as the line (numbered, matched, shown, with a note saying it was
//! cut), and all of its bytes, those and the rest up to its newline, go to
//! the server log as they come, redacted by the streaming redactor (which
//! keeps a secret that spans a cut whole). Memory stays bounded; nothing
//! is lost on disk; the line is one line in the log.

use super::Capture;
use super::LogWrite;
use crate::app::event::ServerBatch;
use crate::domain::redact::RedactingWriter;
use std::io::{self, Write};

/// Bytes an unterminated line may hold before it is cut.
pub const LINE_CAP: usize = 1 << 20;

/// Bytes past the cap looked at for a secret the cut would split (longer
/// than any secret, as the streaming redactor holds back).
const SECRET_SPAN: usize = 4096;

/// The rest of a cut line, on its way to the server log.
pub(super) struct LongLine {
    writer: RedactingWriter<Vec<u8>>,
}

impl Capture {
    /// While a cut line goes on: its bytes up to the newline go to the
    /// server log; returns what follows the line.
    pub(super) fn pass_long_line<'b>(
        &mut self,
        src: usize,
        bytes: &'b [u8],
        batch: &mut ServerBatch,
    ) -> io::Result<&'b [u8]> {
        let Some(long) = self.sources[src].long_line.as_mut() else {
            return Ok(bytes);
        };
        let (part, rest) = match memchr::memchr(b'\n', bytes) {
            Some(i) => (&bytes[..=i], &bytes[i + 1..]),
            None => (bytes, &[][..]),
        };
        long.writer.write_all(part)?;
        self.sources[src].bytes += part.len() as u64;
        self.journal_long_line(src, batch, part.ends_with(b"\n"))?;
        Ok(rest)
    }

    /// Cuts the waiting line once it has grown past [`LINE_CAP`].
    pub(super) fn cut_long_line(&mut self, src: usize, batch: &mut ServerBatch) -> io::Result<()> {
        let log = &mut self.sources[src];
        if log.partial.len() <= LINE_CAP || log.long_line.is_some() {
            return Ok(());
        }
        let line = std::mem::take(&mut log.partial);
        // The head is the line as far as matching and the panes go (cut
        // before a secret that spans the cap, so none shows in part); all
        // its bytes reach the server log through the writer below.
        let window = &line[..line.len().min(LINE_CAP + SECRET_SPAN)];
        let head = self.redactor.cut_before_secret(window, LINE_CAP);
        self.process_with(src, &line[..head], batch, LogWrite::Skip)?;
        let mut writer = self.redactor.writer(Vec::new());
        writer.write_all(&line)?;
        let log = &mut self.sources[src];
        log.bytes += (line.len() - head) as u64;
        log.long_line = Some(LongLine { writer });
        let lines = log.lines;
        let file = self
            .journal
            .server_files()
            .get(src)
            .map_or(crate::bundle::journal::SERVER_LOG, String::as_str);
        self.notes.push(format!(
            "{file}:{lines} has no newline after {} MiB: matched and shown by its first {} MiB; all of it goes to the log",
            LINE_CAP >> 20,
            LINE_CAP >> 20
        ));
        self.journal_long_line(src, batch, false)
    }

    /// Ends a cut line at the end of the input (`terminate`: with a
    /// newline, as between files).
    pub(super) fn end_long_line(
        &mut self,
        src: usize,
        batch: &mut ServerBatch,
        terminate: bool,
    ) -> io::Result<()> {
        let log = &mut self.sources[src];
        if let Some(long) = log.long_line.as_mut()
            && terminate
        {
            long.writer.write_all(b"\n")?;
            log.bytes += 1;
        }
        self.journal_long_line(src, batch, true)
    }

    /// What the writer let through goes to the server log; at the line's
    /// end, the rest and its redaction counts.
    fn journal_long_line(
        &mut self,
        src: usize,
        batch: &mut ServerBatch,
        end: bool,
    ) -> io::Result<()> {
        if end {
            let Some(long) = self.sources[src].long_line.take() else {
                return Ok(());
            };
            let (out, tally) = long.writer.finish()?;
            let n = tally.total();
            let file = self.journal.server_file(src);
            file.redactions += n;
            file.by_rule.add(&tally);
            batch.redactions += n;
            if !out.is_empty() {
                file.write(out)?;
            }
        } else if let Some(long) = self.sources[src].long_line.as_mut() {
            let out = std::mem::take(long.writer.get_mut());
            if !out.is_empty() {
                self.journal.server_file(src).write(out)?;
            }
        }
        Ok(())
    }

    /// Notes for the status line (a line cut), taken once.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_capture as capture;
    use super::*;
    use crate::bundle::journal::SERVER_LOG;
    use crate::domain::Ke;

    #[test]
    fn a_line_without_end_is_cut_for_matching_and_kept_whole_on_disk() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut c = capture(&tmp.path().join("j"));
        let token = "syt_YWxpY2U_abcdefghijklmnopqrst_0AbCdE";
        // A KE-1 line that goes on for 3 MiB: a secret sits across the
        // cut, another far beyond it.
        let mut line = b"2026-06-30 18:00:00,000 - synapse.http.server - 131 - INFO - POST-1 - One time key signed_curve25519:AAAAAAAAAFA already exists. ".to_vec();
        line.resize(LINE_CAP - 20, b'x');
        line.extend_from_slice(format!(" access_token={token} ").as_bytes());
        line.resize(2 * LINE_CAP, b'y');
        line.extend_from_slice(format!(" Bearer {token} ").as_bytes());
        line.resize(3 * LINE_CAP, b'z');
        let mut hits = Vec::new();
        let mut notes = Vec::new();
        for piece in line.chunks(64 * 1024) {
            let b = c
                .server_chunk("server-log", piece)
                .unwrap_or_else(|e| panic!("{e}"));
            hits.extend(b.hits.iter().map(|h| (h.line_no, h.kes.contains(Ke::Ke1))));
            notes.extend(c.take_notes());
            // Never much more than the cap waits in memory.
            assert!(c.sources[0].partial.len() <= LINE_CAP + 64 * 1024);
        }
        // Matched and noted before the line ends.
        assert_eq!(hits, [(1, true)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("server/homeserver.log:1 has no newline after 1 MiB"));
        let on_disk = c.journal.server.facts().bytes;
        assert!(
            on_disk >= 3 * LINE_CAP as u64 - (LINE_CAP as u64 + 8192),
            "{on_disk}"
        );
        let b = c
            .server_chunk(
                "server-log",
                b"zz\n2026-06-30 18:00:01,000 - synapse.x - 1 - INFO - GET-2 - next\n",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.redactions, 2);
        assert_eq!(c.lines(), 2);
        let _ = c.journal.server.facts();
        let kept = std::fs::read(c.journal.dir.join(SERVER_LOG)).unwrap_or_default();
        let text = String::from_utf8_lossy(&kept);
        assert!(!text.contains(token), "a secret reached the disk");
        assert_eq!(text.matches("<redacted>").count(), 2);
        let mut expected = String::from_utf8_lossy(&line).replace(token, "<redacted>");
        expected.push_str("zz\n2026-06-30 18:00:01,000 - synapse.x - 1 - INFO - GET-2 - next\n");
        assert!(text == expected, "the log differs from its input");
        // Its KE-1 line is the head, cut before the secret that spans the
        // cap, so no part of it shows.
        let ke1 = std::fs::read(c.journal.dir.join("server/KE-1.log")).unwrap_or_default();
        let head = LINE_CAP - 20 + 1;
        assert_eq!(ke1.len(), head + 1);
        assert_eq!(&ke1[..head], &line[..head]);
    }

    #[test]
    fn a_cut_line_that_ends_with_the_input_is_ended_there() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut c = capture(&tmp.path().join("j"));
        let line = vec![0xffu8; LINE_CAP + 10];
        let _ = c.server_chunk("server-log", &line);
        let _ = c.end_of_input("server-log", true);
        let _ = c.server_chunk("server-log", b"after\n");
        let _ = c.journal.server.facts();
        let kept = std::fs::read(c.journal.dir.join(SERVER_LOG)).unwrap_or_default();
        assert_eq!(kept.len(), LINE_CAP + 10 + 1 + 6);
        assert_eq!(&kept[LINE_CAP + 10..], b"\nafter\n");
        assert_eq!(c.lines(), 2);
    }
}
