//! A log file read on one thread and scanned on several more, buffer by
//! buffer in turn, while the caller commits the buffers in order: reading
//! and matching overlap journaling and the App, so `analyze` keeps every
//! core it is given busy.

use super::{ScanContext, ScannedBuffer};
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

/// Scanner threads for this machine; buffers go to them in turn. One core
/// is left to committing and writing; at least two scanners, so that two
/// cores are kept busy; past four, scanning outruns the one thread that
/// writes and hashes the server log.
pub fn scanner_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().saturating_sub(1).clamp(2, 4))
}

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

/// What a commit gives back to be used again: a buffer to read into, and
/// the emptied scan for its scanner to fill (its memory is then neither
/// allocated again nor freed on the committing thread).
#[derive(Default)]
pub struct Spent {
    pub buf: Option<Vec<u8>>,
    pub scanned: Option<ScannedBuffer>,
}

/// Reads `file` in buffers of about `chunk` bytes cut after a newline,
/// scans each with `ctx` on one of `scanners` threads and hands it to
/// `commit` in order. Returns the file's last line when it has no newline
/// (for the capture's own line handling).
pub fn scan_file<R: Read + Send, E>(
    file: R,
    ctx: ScanContext,
    chunk: usize,
    scanners: usize,
    mut commit: impl FnMut(Vec<u8>, ScannedBuffer) -> Result<Spent, E>,
) -> Result<Vec<u8>, ScanFileError<E>> {
    std::thread::scope(|s| {
        let spawn_error = |e: io::Error| ScanFileError::Scan(e);
        let (spent_tx, spent_rx) = channel::<Vec<u8>>();
        let n = scanners.max(1);
        let mut to_scanners = Vec::with_capacity(n);
        let mut from_scanners = Vec::with_capacity(n);
        let mut scanners = Vec::with_capacity(n);
        let mut reuse = Vec::with_capacity(n);
        for i in 0..n {
            // Per scanner: one buffer waiting, one being scanned, one done.
            let (job_tx, job_rx) = sync_channel::<Result<Vec<u8>, Stop>>(1);
            let (done_tx, done_rx) = sync_channel::<Result<(Vec<u8>, ScannedBuffer), Stop>>(1);
            let (reuse_tx, reuse_rx) = channel::<ScannedBuffer>();
            reuse.push(reuse_tx);
            let ctx = ctx.clone();
            scanners.push(
                std::thread::Builder::new()
                    .name(format!("capture-scan-{i}"))
                    .spawn_scoped(s, move || scan_jobs(&ctx, job_rx, done_tx, reuse_rx))
                    .map_err(spawn_error)?,
            );
            to_scanners.push(job_tx);
            from_scanners.push(done_rx);
        }
        let reader = std::thread::Builder::new()
            .name("capture-read".into())
            .spawn_scoped(s, move || {
                read_buffers(file, chunk, &to_scanners, &spent_rx)
            })
            .map_err(spawn_error)?;
        // Buffer k comes back from scanner k % n; when the file is
        // done every scanner's channel closes after its last buffer.
        let committed = (|| {
            for (rx, reuse) in from_scanners.iter().zip(&reuse).cycle() {
                let Ok(msg) = rx.recv() else { break };
                let (buf, scanned) = msg.map_err(ScanFileError::Read)?;
                let spent = commit(buf, scanned).map_err(ScanFileError::Commit)?;
                if let Some(buf) = spent.buf {
                    let _ = spent_tx.send(buf);
                }
                if let Some(scanned) = spent.scanned {
                    let _ = reuse.send(scanned);
                }
            }
            Ok(())
        })();
        drop(from_scanners); // scanners and a reader still sending stop
        // Every thread is joined here, so that one that panicked is an
        // error, not a panic of the scope. A scanner that panicked closed
        // its channel early: that is an error, not the end of the file.
        // An error met first stands.
        // Each one joined (`all` would stop at the first that failed).
        let joined: Vec<bool> = scanners.into_iter().map(|t| t.join().is_ok()).collect();
        let scanners_ok = joined.iter().all(|&ok| ok);
        let tail = reader.join();
        committed?;
        let panicked = |what: &str| {
            ScanFileError::Scan(io::Error::other(format!("the log {what} thread panicked")))
        };
        if !scanners_ok {
            return Err(panicked("scanner"));
        }
        tail.map_err(|_| panicked("reader"))
    })
}

/// A read error, sent in place of a buffer.
type Stop = io::Error;

/// A scanner thread: scans each buffer it is given, whole.
fn scan_jobs(
    ctx: &ScanContext,
    jobs: Receiver<Result<Vec<u8>, Stop>>,
    done: SyncSender<Result<(Vec<u8>, ScannedBuffer), Stop>>,
    reuse: Receiver<ScannedBuffer>,
) {
    for job in jobs {
        let out = job.map(|buf| {
            let scanned = ctx.scan_whole(&buf, reuse.try_recv().ok());
            (buf, scanned)
        });
        if done.send(out).is_err() {
            return; // the caller stopped (and says why)
        }
    }
}

/// The reader thread: hands buffers of complete lines to the scanners in
/// turn; returns the unterminated last line. A read error goes to the
/// next buffer's scanner, so the caller sees it in order, after the
/// complete lines read before it.
fn read_buffers<R: Read>(
    mut file: R,
    chunk: usize,
    scanners: &[SyncSender<Result<Vec<u8>, Stop>>],
    spent: &Receiver<Vec<u8>>,
) -> Vec<u8> {
    let mut carry: Vec<u8> = Vec::new();
    let mut turns = scanners.iter().cycle();
    while let Some(to) = turns.next() {
        let mut buf = spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(chunk + 64 * 1024));
        buf.clear();
        buf.append(&mut carry);
        // Read until the buffer holds a complete line (a line may be longer
        // than a chunk): each scanner's turn gets one buffer.
        let last_nl = loop {
            let start = buf.len();
            // Into the buffer's spare room: no zeroing, no second copy.
            match (&mut file).take(chunk as u64).read_to_end(&mut buf) {
                Ok(0) => return buf, // what is left has no newline
                Ok(_) => {}
                Err(e) => {
                    // Lines that arrived before the error are kept (a read
                    // can fail after part of a chunk came in).
                    let to = match memchr::memrchr(b'\n', &buf) {
                        Some(i) => {
                            buf.truncate(i + 1);
                            if to.send(Ok(buf)).is_err() {
                                return Vec::new();
                            }
                            turns.next().unwrap_or(to)
                        }
                        None => to,
                    };
                    let _ = to.send(Err(e));
                    return Vec::new();
                }
            }
            if let Some(i) = memchr::memrchr(b'\n', &buf[start..]) {
                break start + i;
            }
        };
        // Complete lines go on; the incomplete last one waits.
        carry.extend_from_slice(&buf[last_nl + 1..]);
        buf.truncate(last_nl + 1);
        if to.send(Ok(buf)).is_err() {
            return Vec::new(); // the caller stopped (and says why)
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::event::ServerBatch;
    use crate::bundle::journal::SERVER_LOG;
    use crate::capture::test_capture as capture;

    /// What a batch says, in a comparable form.
    fn digest(b: &ServerBatch) -> Vec<String> {
        let mut out: Vec<String> = b
            .hits
            .iter()
            .map(|h| {
                let offending = h.offending.as_deref().map(|o| format!("{o:?}"));
                format!(
                    "hit {} {:?} {:?} {} {:?} {} {offending:?}",
                    h.line_no,
                    h.at,
                    h.ke_line_no,
                    b.text(h),
                    h.request,
                    h.error
                )
            })
            .collect();
        out.extend(b.access.iter().map(|a| format!("access {a:?}")));
        out.extend(b.to_device.iter().map(|t| format!("trace {t:?}")));
        out.extend(b.otk_uploads.iter().map(|u| format!("upload {u:?}")));
        out.extend(
            b.stalls
                .iter()
                .map(|s| format!("stall {} {}", s.line_no, s.burst)),
        );
        out
    }

    fn log() -> Vec<u8> {
        let mut log = Vec::new();
        // Over `SPLIT_MIN`: the direct path scans it in two halves.
        for i in 0..5000u32 {
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
    fn scanning_on_the_scanner_threads_gives_what_the_direct_path_gives() {
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
        // Chunks smaller than a line, around a line, and larger than the
        // log; one scanner thread and more than two.
        for (chunk, scanners) in [(7, 2), (64, 3), (150, 2), (150, 1), (1000, 3), (1 << 20, 2)] {
            let dir = tmp.path().join(format!("piped-{chunk}-{scanners}"));
            // On a thread of its own, so that a stuck pipeline fails the
            // test instead of hanging it.
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let (log, dir2) = (log.clone(), dir.clone());
            std::thread::spawn(move || {
                let mut c = capture(&dir2);
                let mut got = Vec::new();
                let ctx = c.scan_context();
                let tail = scan_file(&log[..], ctx, chunk, scanners, |buf, scanned| {
                    let done = c.server_scanned("s", buf, scanned)?;
                    got.extend(digest(&done.batch));
                    Ok::<_, io::Error>(Spent {
                        buf: done.spare,
                        scanned: Some(done.scanned),
                    })
                })
                .unwrap_or_else(|e| panic!("chunk {chunk}, {scanners} scanners: {e:?}"));
                got.extend(digest(&c.server_chunk("s", &tail).unwrap_or_default()));
                got.extend(digest(&c.end_of_input("s", false).unwrap_or_default()));
                let _ = c.journal.flush();
                let _ = c.journal.server.facts();
                let _ = done_tx.send((got, c.lines()));
            });
            let (mut got, lines) = done_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("chunk {chunk}, {scanners} scanners: no result ({e})"));
            got.sort();
            let first_difference = got.iter().zip(&want).find(|(g, w)| g != w);
            assert_eq!(first_difference, None, "chunk {chunk}, {scanners} scanners");
            assert_eq!(got.len(), want.len(), "chunk {chunk}, {scanners} scanners");
            assert_eq!(lines, want_lines, "chunk {chunk}, {scanners} scanners");
            let written = std::fs::read(dir.join(SERVER_LOG)).unwrap_or_default();
            assert!(
                written == want_log,
                "chunk {chunk}, {scanners} scanners: journaled log differs"
            );
        }
    }

    /// Fails after handing out `ok` bytes, at most `step` a read.
    struct Failing<'a> {
        data: &'a [u8],
        ok: usize,
        step: usize,
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::other("disk went away"));
            }
            let n = buf.len().min(self.ok).min(self.data.len()).min(self.step);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.ok -= n;
            Ok(n)
        }
    }

    /// Runs `f` on a thread of its own: a stuck pipeline fails the test
    /// instead of hanging it.
    fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no result within a minute ({e})"))
    }

    #[test]
    fn a_read_error_arrives_after_the_lines_read_before_it() {
        let log = log();
        // Reads of a whole chunk, and short reads that fail part way into
        // a chunk; with one scanner and with several.
        for (chunk, step, scanners) in [
            (1000, 1000, 2),
            (4000, 700, 2),
            (4000, 700, 1),
            (4000, 300, 3),
        ] {
            let (r, committed) = within_a_minute({
                let log = log.clone();
                move || {
                    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
                    let mut c = capture(&tmp.path().join("j"));
                    let ctx = c.scan_context();
                    let mut committed = 0;
                    let failing = Failing {
                        data: &log,
                        ok: 3000,
                        step,
                    };
                    let r = scan_file(failing, ctx, chunk, scanners, |buf, scanned| {
                        committed += buf.len();
                        c.server_scanned("s", buf, scanned)
                            .map(|_| Spent::default())
                    });
                    (r.map_err(|e| format!("{e:?}")), committed)
                }
            });
            let case = format!("chunk {chunk}, reads of {step}, {scanners} scanners");
            assert!(
                matches!(&r, Err(e) if e.contains("disk went away") && e.starts_with("Read")),
                "{case}: {r:?}"
            );
            // Every complete line of the 3000 bytes read was committed first.
            let last_nl = log[..3000].iter().rposition(|&b| b == b'\n').unwrap_or(0);
            assert_eq!(committed, last_nl + 1, "{case}");
        }
    }

    /// Panics once `ok` bytes are handed out (a thread of the pipeline
    /// that panics).
    struct Panicking<'a> {
        data: &'a [u8],
        ok: usize,
    }

    impl Read for Panicking<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(self.ok > 0, "a reader that panics");
            let n = buf.len().min(self.ok).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.ok -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_thread_that_panics_is_an_error_and_an_earlier_error_stands() {
        let log = log();
        // The first 1000 bytes make a buffer; the next read panics.
        let run = |fail_commit: bool| {
            let log = log.clone();
            within_a_minute(move || {
                let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
                let mut c = capture(&tmp.path().join("j"));
                let ctx = c.scan_context();
                let reader = Panicking {
                    data: &log,
                    ok: 1000,
                };
                scan_file(reader, ctx, 1000, 2, |buf, scanned| {
                    if fail_commit {
                        return Err("full disk".to_string());
                    }
                    c.server_scanned("s", buf, scanned)
                        .map(|_| Spent::default())
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| format!("{e:?}"))
            })
        };
        let r = run(false);
        assert!(
            matches!(&r, Err(e) if e.starts_with("Scan") && e.contains("reader thread panicked")),
            "{r:?}"
        );
        assert_eq!(run(true), Err("Commit(\"full disk\")".to_string()));
    }

    #[test]
    fn a_commit_error_stops_the_reader() {
        let (r, calls) = within_a_minute(|| {
            let log = log();
            let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let c = capture(&tmp.path().join("j"));
            let mut calls = 0;
            let r = scan_file(&log[..], c.scan_context(), 100, 2, |_, _| {
                calls += 1;
                Err::<Spent, _>("full disk")
            });
            (r.map_err(|e| format!("{e:?}")), calls)
        });
        assert_eq!(r, Err("Commit(\"full disk\")".to_string()));
        assert_eq!(calls, 1);
    }
}
