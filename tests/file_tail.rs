//! The local file tail against the real file system: appends, rotation by
//! rename, deletion, truncation, a file created late and backfill. Every test
//! compares the concatenation of the received chunks with what was written.

use callcap::sources::file::{SOURCE, run_file_tail};
use callcap::sources::{Input, SourceStatus};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Generous: the machine running the tests may be loaded.
const DEADLINE: Duration = Duration::from_secs(15);

struct Tailing {
    rx: mpsc::Receiver<Input>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    bytes: Vec<u8>,
    statuses: Vec<SourceStatus>,
    notes: Vec<String>,
}

impl Tailing {
    fn start(path: &Path, backfill: u64) -> Tailing {
        let (tx, rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(run_file_tail(path.to_path_buf(), backfill, tx, shutdown_rx));
        Tailing {
            rx,
            shutdown,
            task,
            bytes: Vec::new(),
            statuses: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn absorb(&mut self, input: Input) {
        match input {
            Input::ServerChunk { source, bytes, .. } => {
                assert_eq!(source, SOURCE);
                self.bytes.extend_from_slice(&bytes);
            }
            Input::Status { source, status, .. } => {
                assert_eq!(source, SOURCE);
                self.statuses.push(status);
            }
            Input::Note { text, .. } => self.notes.push(text),
            // Where it stopped, for the manifest.
            Input::Position { source, .. } => assert_eq!(source, SOURCE),
            other => panic!("unexpected input {other:?}"),
        }
    }

    /// Receives until `cond` holds, failing with what was received so far.
    async fn wait_for(&mut self, what: &str, cond: impl Fn(&Tailing) -> bool) -> Result {
        let deadline = Instant::now() + DEADLINE;
        while !cond(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(input)) => self.absorb(input),
                Ok(None) => return Err(format!("channel closed waiting for {what}").into()),
                Err(_) => {
                    return Err(format!(
                        "timed out waiting for {what}: {} bytes, statuses {:?}, notes {:?}",
                        self.bytes.len(),
                        self.statuses,
                        self.notes
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    async fn wait_for_bytes(&mut self, want: &[u8]) -> Result {
        let n = want.len();
        self.wait_for(&format!("{n} bytes"), |t| t.bytes.len() >= n)
            .await?;
        assert!(
            self.bytes == want,
            "received bytes differ from written bytes ({} received, {} written)",
            self.bytes.len(),
            want.len()
        );
        Ok(())
    }

    fn live_count(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| **s == SourceStatus::Live)
            .count()
    }

    fn error_count(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| matches!(s, SourceStatus::Error { .. }))
            .count()
    }

    /// Shuts down, collects the rest and checks the task ends with `Stopped`.
    async fn stop(mut self) -> Result<Vec<u8>> {
        self.shutdown.send(true)?;
        self.wait_for("stopped", |t| {
            t.statuses.last() == Some(&SourceStatus::Stopped)
        })
        .await?;
        tokio::time::timeout(DEADLINE, &mut self.task).await??;
        while let Ok(input) = self.rx.try_recv() {
            self.absorb(input);
        }
        Ok(self.bytes)
    }
}

fn append(path: &Path, data: &[u8]) -> Result {
    let mut f = OpenOptions::new().append(true).create(true).open(path)?;
    f.write_all(data)?;
    Ok(())
}

/// Deterministic log-like bytes of varying line lengths.
fn log_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let b = (x >> 33) as u8;
        out.push(if b.is_multiple_of(61) {
            b'\n'
        } else {
            b'a' + b % 26
        });
    }
    out
}

/// Chunk sizes from 1 byte to ~100 KiB, so reads straddle every boundary.
fn chunk_sizes(total: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = total;
    let mut x = 7u64;
    while left > 0 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n = match x >> 62 {
            0 => 1 + (x >> 40) as usize % 16,
            1 => 1 + (x >> 40) as usize % 4096,
            _ => 1 + (x >> 40) as usize % 100_000,
        }
        .min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("homeserver.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_chunks_arrive_once_in_order_starting_at_the_end() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    fs::write(&path, b"old line one\nold line two\n")?;
    let mut t = Tailing::start(&path, 0);
    t.wait_for("live", |t| t.live_count() == 1).await?;

    let data = log_bytes(1, 1_500_000);
    let mut off = 0;
    for (i, n) in chunk_sizes(data.len()).into_iter().enumerate() {
        append(&path, &data[off..off + n])?;
        off += n;
        if i % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    t.wait_for_bytes(&data).await?;
    let got = t.stop().await?;
    assert_eq!(got, data, "nothing arrives twice after shutdown");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_reads_old_file_to_its_end_then_new_file_from_start() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    let rotated = dir.path().join("homeserver.log.1");
    fs::write(&path, b"before start\n")?;
    let mut t = Tailing::start(&path, 0);
    t.wait_for("live", |t| t.live_count() == 1).await?;

    let a = log_bytes(2, 200_000);
    let b = log_bytes(3, 50_000);
    let c = log_bytes(4, 120_000);
    let d = log_bytes(5, 30_000);
    // A writer holding the file open keeps writing to it after the rename,
    // as a logger does until it reopens.
    let mut writer = OpenOptions::new().append(true).open(&path)?;
    writer.write_all(&a)?;
    fs::rename(&path, &rotated)?;
    writer.write_all(&b)?;
    drop(writer);
    append(&path, &c)?;
    append(&path, &d)?;

    let want = [a, b, c, d].concat();
    t.wait_for_bytes(&want).await?;
    assert!(
        t.notes.iter().any(|n| n.contains("rotated")),
        "notes: {:?}",
        t.notes
    );

    // Rotate twice more in a row; each file keeps its bytes.
    let e = log_bytes(6, 10_000);
    let f = log_bytes(7, 10_000);
    fs::rename(&path, dir.path().join("homeserver.log.2"))?;
    append(&path, &e)?;
    t.wait_for_bytes(&[want.clone(), e.clone()].concat())
        .await?;
    fs::rename(&path, dir.path().join("homeserver.log.3"))?;
    append(&path, &f)?;
    let want = [want, e, f].concat();
    t.wait_for_bytes(&want).await?;
    assert_eq!(t.stop().await?, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_reports_error_and_is_followed_from_start_when_recreated() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    fs::write(&path, b"")?;
    let mut t = Tailing::start(&path, 0);
    t.wait_for("live", |t| t.live_count() == 1).await?;
    let a = log_bytes(8, 5_000);
    append(&path, &a)?;
    t.wait_for_bytes(&a).await?;

    fs::remove_file(&path)?;
    t.wait_for("error", |t| t.error_count() == 1).await?;
    let Some(SourceStatus::Error { reason }) = t.statuses.last() else {
        return Err(format!("statuses: {:?}", t.statuses).into());
    };
    assert!(reason.contains(&*path.to_string_lossy()), "{reason}");

    let b = log_bytes(9, 7_000);
    append(&path, &b)?;
    let want = [a, b].concat();
    t.wait_for_bytes(&want).await?;
    t.wait_for("live again", |t| t.live_count() == 2).await?;
    assert_eq!(t.stop().await?, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_restarts_at_byte_zero() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    fs::write(&path, b"")?;
    let mut t = Tailing::start(&path, 0);
    t.wait_for("live", |t| t.live_count() == 1).await?;
    let a = log_bytes(10, 80_000);
    append(&path, &a)?;
    t.wait_for_bytes(&a).await?;

    // `> homeserver.log` followed by new, shorter content.
    let b = log_bytes(11, 20_000);
    {
        let mut f = OpenOptions::new().write(true).truncate(true).open(&path)?;
        f.write_all(&b)?;
    }
    let ab = [a, b].concat();
    t.wait_for_bytes(&ab).await?;
    assert!(
        t.notes.iter().any(|n| n.contains("truncated")),
        "notes: {:?}",
        t.notes
    );

    // Appends after the truncation continue from where the new content ends.
    let c = log_bytes(12, 30_000);
    append(&path, &c)?;
    let want = [ab, c].concat();
    t.wait_for_bytes(&want).await?;
    assert_eq!(t.stop().await?, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_file_is_an_error_until_created_then_read_from_start() -> Result {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("later.log");
    let mut t = Tailing::start(&path, 5);
    t.wait_for("error", |t| t.error_count() == 1).await?;
    let Some(SourceStatus::Error { reason }) = t.statuses.first() else {
        return Err(format!("statuses: {:?}", t.statuses).into());
    };
    assert!(
        reason.starts_with(&format!("cannot open '{}'", path.display())),
        "{reason}"
    );
    assert!(t.bytes.is_empty());

    // Everything in a file that appears later is new, backfill or not.
    let a = log_bytes(13, 40_000);
    append(&path, &a)?;
    t.wait_for_bytes(&a).await?;
    t.wait_for("live", |t| t.live_count() == 1).await?;
    assert_eq!(
        t.error_count(),
        1,
        "the error is reported once, not per retry"
    );
    let b = log_bytes(14, 1_000);
    append(&path, &b)?;
    let want = [a, b].concat();
    t.wait_for_bytes(&want).await?;
    assert_eq!(t.stop().await?, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_starts_that_many_lines_before_the_end() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    let lines: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    fs::write(&path, &lines)?;
    let mut t = Tailing::start(&path, 3);
    let backfilled = b"line 48\nline 49\nline 50\n".to_vec();
    t.wait_for_bytes(&backfilled).await?;
    append(&path, b"line 51\n")?;
    let want = [backfilled, b"line 51\n".to_vec()].concat();
    t.wait_for_bytes(&want).await?;
    assert_eq!(t.stop().await?, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reads_what_was_written_before_it() -> Result {
    let dir = tempfile::tempdir()?;
    let path = log_path(&dir);
    fs::write(&path, b"")?;
    let mut t = Tailing::start(&path, 0);
    t.wait_for("live", |t| t.live_count() == 1).await?;
    let a = log_bytes(15, 3_000_000);
    append(&path, &a)?;
    // No waiting: the final drain must pick up everything.
    assert_eq!(t.stop().await?, a);
    Ok(())
}
