//! A log file read and scanned on a thread of its own while the caller
//! commits the buffer before: reading and matching overlap journaling and
//! the App, so `analyze` keeps both cores busy.

use super::{ScanContext, ScannedBuffer};
use std::io::{self, Read};

/// Why [`scan_file`] stopped.
#[derive(Debug)]
pub enum ScanFileError<E> {
    /// Reading the file failed.
    Read(io::Error),
    /// Scanning failed (a scanner thread panicked).
    Scan(io::Error),
    /// The caller's commit failed.
    Commit(E),
}

/// Reads `file` in buffers of about `chunk` bytes cut after a newline,
/// scans each with `ctx` and hands it to `commit` in order. Returns the
/// file's last line when it has no newline (for the capture's own
/// line handling).
pub fn scan_file<R: Read + Send, E>(
    file: R,
    ctx: ScanContext,
    chunk: usize,
    mut commit: impl FnMut(&[u8], ScannedBuffer) -> Result<(), E>,
) -> Result<Vec<u8>, ScanFileError<E>> {
    std::thread::scope(|s| {
        // One buffer waiting, one being scanned, one being committed.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<u8>, ScannedBuffer), Stop>>(1);
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = std::thread::Builder::new()
            .name("capture-read".into())
            .spawn_scoped(s, move || read_and_scan(file, &ctx, chunk, &tx, &spent_rx))
            .map_err(ScanFileError::Scan)?;
        for msg in rx.iter() {
            let (buf, scanned) = msg.map_err(|e| match e {
                Stop::Read(e) => ScanFileError::Read(e),
                Stop::Scan(e) => ScanFileError::Scan(e),
            })?;
            commit(&buf, scanned).map_err(ScanFileError::Commit)?;
            let _ = spent_tx.send(buf);
        }
        reader
            .join()
            .map_err(|_| ScanFileError::Scan(io::Error::other("the log reader thread panicked")))
    })
}

/// Why the reader stopped early; sent in place of a buffer.
enum Stop {
    Read(io::Error),
    Scan(io::Error),
}

type Sender = std::sync::mpsc::SyncSender<Result<(Vec<u8>, ScannedBuffer), Stop>>;

/// The reader thread: returns the unterminated last line. Errors go down
/// the channel, so the caller sees them in order.
fn read_and_scan<R: Read>(
    mut file: R,
    ctx: &ScanContext,
    chunk: usize,
    tx: &Sender,
    spent: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> Vec<u8> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(chunk + 64 * 1024));
        buf.clear();
        buf.append(&mut carry);
        let start = buf.len();
        // Into the buffer's spare room: no zeroing, no second copy.
        let n = match (&mut file).take(chunk as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(Stop::Read(e)));
                return Vec::new();
            }
        };
        if n == 0 {
            return buf; // what is left has no newline
        }
        // Complete lines go on; the incomplete last one waits.
        let Some(last_nl) = memchr::memrchr(b'\n', &buf[start..]).map(|i| start + i) else {
            carry = buf;
            continue;
        };
        carry.extend_from_slice(&buf[last_nl + 1..]);
        buf.truncate(last_nl + 1);
        let scanned = match ctx.scan(&buf) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(Stop::Scan(e)));
                return Vec::new();
            }
        };
        if tx.send(Ok((buf, scanned))).is_err() {
            return Vec::new(); // the caller stopped (and says why)
        }
    }
}
