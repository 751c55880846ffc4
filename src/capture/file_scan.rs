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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::event::ServerBatch;
    use crate::bundle::journal::{Journal, SERVER_LOG};
    use crate::capture::Capture;
    use crate::domain::signatures::Signatures;
    use crate::domain::synapse_log::LogClock;
    use std::path::Path;

    fn capture(dir: &Path) -> Capture {
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

    /// What a batch says, in a comparable form.
    fn digest(b: &ServerBatch) -> Vec<String> {
        let mut out: Vec<String> = b
            .hits
            .iter()
            .map(|h| format!("hit {} {:?} {:?} {}", h.line_no, h.at, h.ke_line_no, h.text))
            .collect();
        out.extend(
            b.access
                .iter()
                .map(|a| format!("access {} {:?}", a.line_no, a.at)),
        );
        out.extend(b.to_device.iter().map(|t| format!("trace {}", t.line_no)));
        out.extend(
            b.stalls
                .iter()
                .map(|s| format!("stall {} {}", s.line_no, s.burst)),
        );
        out
    }

    fn log() -> Vec<u8> {
        let mut log = Vec::new();
        for i in 0..400u32 {
            let (s, ms) = (i / 10 + if i >= 200 { 5 } else { 0 }, (i % 10) * 100);
            let t = format!("2026-06-30 18:{:02}:{:02},{ms:03}", s / 60, s % 60);
            let line = match i % 7 {
                0 => format!(
                    "{t} - synapse.handlers.e2e_keys - 1 - INFO - POST-{i} - One time key signed_curve25519:AAAA{i} already exists. Old key: x new key: y\n"
                ),
                1 => "  File \"/x.py\", line 1, in to_device\n".to_string(),
                2 => format!(
                    "{t} - synapse.access.http.8008 - 521 - INFO - PUT-{i} - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 0.012sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 200 \"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/t{i} HTTP/1.1\" \"-\" [0 dbevts]\r\n"
                ),
                3 => format!(
                    "{t} - synapse.9533_debug - 1 - DEBUG - PUT-{i} - Storing to-device messages for @b:hs D1\n"
                ),
                4 => "x".repeat(90) + "\n",
                _ => format!(
                    "{t} - synapse.x - 1 - INFO - GET-{i} - delayed_event {i} access_token=syt_secret_{i}\n"
                ),
            };
            log.extend_from_slice(line.as_bytes());
        }
        log.extend_from_slice(
            b"2026-06-30 18:01:00,000 - synapse.x - 1 - INFO - GET-9 - no newline",
        );
        log
    }

    #[test]
    fn scanning_on_the_reader_thread_gives_what_the_direct_path_gives() {
        let log = log();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut direct = capture(&tmp.path().join("direct"));
        let mut want = digest(&direct.server_chunk("s", &log).unwrap_or_default());
        want.extend(digest(&direct.end_of_input("s", false).unwrap_or_default()));
        want.sort();
        let want_lines = direct.lines();
        let want_log = {
            let _ = direct.journal.flush();
            let _ = direct.journal.server.facts();
            std::fs::read(tmp.path().join("direct").join(SERVER_LOG)).unwrap_or_default()
        };
        assert!(want.iter().any(|l| l.starts_with("stall")), "{want:?}");
        // Chunks smaller than a line, around a line, and larger than the log.
        for chunk in [7, 64, 150, 1000, 1 << 20] {
            let dir = tmp.path().join(format!("piped-{chunk}"));
            let mut c = capture(&dir);
            let mut got = Vec::new();
            let ctx = c.scan_context();
            let tail = scan_file(&log[..], ctx, chunk, |buf, scanned| {
                c.server_scanned("s", buf, scanned)
                    .map(|b| got.extend(digest(&b)))
            })
            .unwrap_or_else(|e| panic!("chunk {chunk}: {e:?}"));
            got.extend(digest(&c.server_chunk("s", &tail).unwrap_or_default()));
            got.extend(digest(&c.end_of_input("s", false).unwrap_or_default()));
            got.sort();
            let first_difference = got.iter().zip(&want).find(|(g, w)| g != w);
            assert_eq!(first_difference, None, "chunk {chunk}");
            assert_eq!(got.len(), want.len(), "chunk {chunk}");
            assert_eq!(c.lines(), want_lines, "chunk {chunk}");
            let _ = c.journal.flush();
            let _ = c.journal.server.facts();
            let written = std::fs::read(dir.join(SERVER_LOG)).unwrap_or_default();
            assert!(written == want_log, "chunk {chunk}: journaled log differs");
        }
    }

    /// Fails after handing out `ok` bytes.
    struct Failing<'a> {
        data: &'a [u8],
        ok: usize,
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::other("disk went away"));
            }
            let n = buf.len().min(self.ok).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.ok -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_arrives_after_the_buffers_read_before_it() {
        let log = log();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut c = capture(&tmp.path().join("j"));
        let ctx = c.scan_context();
        let mut committed = 0;
        let r = scan_file(
            Failing {
                data: &log,
                ok: 3000,
            },
            ctx,
            1000,
            |buf, scanned| {
                committed += buf.len();
                c.server_scanned("s", buf, scanned).map(|_| ())
            },
        );
        assert!(
            matches!(&r, Err(ScanFileError::Read(e)) if e.to_string() == "disk went away"),
            "{r:?}"
        );
        // Every complete line of the 3000 bytes read was committed first.
        let last_nl = log[..3000].iter().rposition(|&b| b == b'\n').unwrap_or(0);
        assert_eq!(committed, last_nl + 1);
    }

    #[test]
    fn a_commit_error_stops_the_reader() {
        let log = log();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = capture(&tmp.path().join("j"));
        let mut calls = 0;
        let r = scan_file(&log[..], c.scan_context(), 100, |_, _| {
            calls += 1;
            Err("full disk")
        });
        assert!(matches!(r, Err(ScanFileError::Commit("full disk"))));
        assert_eq!(calls, 1);
    }
}
