//! Redaction of a stream: client files too big to read at once, HAR copies,
//! callcap's own debug log.

use super::{Redactor, Secret, Tally, apply};
use std::io::{self, Write};

/// Redacts a stream. Complete lines are redacted as they arrive; a line
/// longer than [`RedactingWriter::MAX_PENDING`] is redacted in pieces, each
/// cut kept clear of any secret that might not have fully arrived.
/// Call [`RedactingWriter::finish`] to flush the last partial line.
pub struct RedactingWriter<W: Write> {
    redactor: Redactor,
    inner: W,
    pending: Vec<u8>,
    /// `pending[..scanned]` has no `\n`.
    scanned: usize,
    tally: Tally,
}

impl<W: Write> RedactingWriter<W> {
    /// A line piece longer than this is redacted without waiting for its end.
    pub const MAX_PENDING: usize = 1 << 20;
    /// Bytes held back at a cut (longer than any secret).
    const HOLD: usize = 4096;

    pub(super) fn new(redactor: Redactor, inner: W) -> Self {
        RedactingWriter {
            redactor,
            inner,
            pending: Vec::new(),
            scanned: 0,
            tally: Tally::default(),
        }
    }

    /// The writer redacted text goes to (what it holds so far is final).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Secrets replaced so far.
    pub fn count(&self) -> usize {
        self.tally.total() as usize
    }

    /// Redacts and writes what is left; returns the inner writer and how
    /// many secrets each rule replaced.
    pub fn finish(mut self) -> io::Result<(W, Tally)> {
        let rest = std::mem::take(&mut self.pending);
        self.emit(&rest)?;
        self.inner.flush()?;
        Ok((self.inner, self.tally))
    }

    fn emit(&mut self, chunk: &[u8]) -> io::Result<()> {
        let (out, n) = self.redactor.redact_bytes(chunk);
        self.tally.add(&n);
        self.inner.write_all(&out)
    }

    fn drain(&mut self) -> io::Result<()> {
        if let Some(i) = memchr::memrchr(b'\n', &self.pending[self.scanned..]) {
            let cut = self.scanned + i + 1;
            let head: Vec<u8> = self.pending.drain(..cut).collect();
            self.emit(&head)?;
            self.scanned = 0;
        } else {
            self.scanned = self.pending.len();
        }
        if self.pending.len() > Self::MAX_PENDING {
            let mut cut = self.pending.len() - Self::HOLD;
            let secrets = self.redactor.find(&self.pending);
            if let Some(s) = secrets.iter().find(|s| s.end > cut) {
                cut = cut.min(s.start);
            }
            if cut > 0 {
                let mut out = Vec::with_capacity(cut + 64);
                let before: Vec<Secret> = secrets.into_iter().filter(|s| s.end <= cut).collect();
                apply(&self.pending[..cut], &before, &mut out, &mut self.tally);
                self.inner.write_all(&out)?;
                self.pending.drain(..cut);
                self.scanned = self.pending.len();
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.drain()?;
        Ok(buf.len())
    }

    /// Flushes the inner writer; a partial line stays pending until more
    /// text or [`RedactingWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
