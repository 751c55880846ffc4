//! The downloads-folder watcher against the real file system, with files
//! written the way browsers write them.

use callcap::sources::downloads::{SOURCE, run_downloads};
use callcap::sources::{Input, SourceStatus};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const DEADLINE: Duration = Duration::from_secs(15);

/// Long enough for several settle periods and rescans: nothing more may come.
const QUIET: Duration = Duration::from_millis(1500);

struct Watching {
    rx: mpsc::Receiver<Input>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Each picked-up file with its content at the moment it was reported.
    files: Vec<(PathBuf, Vec<u8>)>,
    statuses: Vec<SourceStatus>,
}

impl Watching {
    fn start(dir: &Path, include_existing: bool) -> Watching {
        let (tx, rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(run_downloads(
            dir.to_path_buf(),
            include_existing,
            tx,
            shutdown_rx,
        ));
        Watching {
            rx,
            shutdown,
            task,
            files: Vec::new(),
            statuses: Vec::new(),
        }
    }

    fn absorb(&mut self, input: Input) {
        match input {
            Input::ClientFile { path, .. } => {
                let content = fs::read(&path).unwrap_or_default();
                self.files.push((path, content));
            }
            Input::Status { source, status, .. } => {
                assert_eq!(source, SOURCE);
                self.statuses.push(status);
            }
            Input::Note { .. } => {}
            other => panic!("unexpected input {other:?}"),
        }
    }

    async fn wait_for(&mut self, what: &str, cond: impl Fn(&Watching) -> bool) -> Result {
        let deadline = Instant::now() + DEADLINE;
        while !cond(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(input)) => self.absorb(input),
                Ok(None) => return Err(format!("channel closed waiting for {what}").into()),
                Err(_) => {
                    return Err(format!(
                        "timed out waiting for {what}: files {:?}, statuses {:?}",
                        self.names(),
                        self.statuses
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Receives for `QUIET` and fails if a file arrives.
    async fn expect_no_more_files(&mut self) -> Result {
        let before = self.files.len();
        let until = Instant::now() + QUIET;
        while let Ok(Some(input)) = tokio::time::timeout_at(until, self.rx.recv()).await {
            self.absorb(input);
        }
        if self.files.len() != before {
            return Err(format!("unexpected files: {:?}", &self.names()[before..]).into());
        }
        Ok(())
    }

    /// Takes what has already arrived, without waiting.
    fn drain(&mut self) {
        while let Ok(input) = self.rx.try_recv() {
            self.absorb(input);
        }
    }

    fn names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|(p, _)| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn count(&self, f: impl Fn(&SourceStatus) -> bool) -> usize {
        self.statuses.iter().filter(|s| f(s)).count()
    }

    async fn stop(mut self) -> Result {
        self.shutdown.send(true)?;
        self.wait_for("stopped", |w| {
            w.statuses.last() == Some(&SourceStatus::Stopped)
        })
        .await?;
        tokio::time::timeout(DEADLINE, &mut self.task).await??;
        Ok(())
    }
}

fn is_live(s: &SourceStatus) -> bool {
    *s == SourceStatus::Live
}

fn is_error(s: &SourceStatus) -> bool {
    matches!(s, SourceStatus::Error { .. })
}

fn report(n: usize) -> Vec<u8> {
    let entries: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"ts":{i},"level":"warn","ke":"KE-1","message":"One time key signed_curve25519:AAAA{i} already exists"}}"#))
        .collect();
    format!(
        r#"{{"deviceId":"ABCDEF","entries":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// Writes `data` to `path` in `parts` appends with a pause after each, as a
/// browser writes a download.
async fn grow(path: &Path, data: &[u8], parts: usize, pause: Duration) -> Result {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    for chunk in data.chunks(data.len().div_ceil(parts)) {
        f.write_all(chunk)?;
        f.flush()?;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrome_download_is_picked_up_once_after_the_rename_with_full_content() -> Result {
    let dir = tempfile::tempdir()?;
    let mut w = Watching::start(dir.path(), false);
    w.wait_for("live", |w| w.count(is_live) == 1).await?;

    let data = report(2_000);
    let partial = dir.path().join("lotus-crypto-diag-123.json.crdownload");
    let done = dir.path().join("lotus-crypto-diag-123.json");
    // Pauses longer than the settle period: a stable partial file must still
    // not be taken.
    grow(&partial, &data, 4, Duration::from_millis(400)).await?;
    w.drain();
    assert!(
        w.files.is_empty(),
        "picked up before the rename: {:?}",
        w.names()
    );
    fs::rename(&partial, &done)?;

    w.wait_for("the report", |w| !w.files.is_empty()).await?;
    assert_eq!(w.files[0].0, done);
    assert!(
        w.files[0].1 == data,
        "content differs from what was downloaded"
    );
    w.expect_no_more_files().await?;
    w.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_placeholder_is_not_taken_and_the_finished_file_is_taken_once() -> Result {
    let dir = tempfile::tempdir()?;
    let mut w = Watching::start(dir.path(), false);
    w.wait_for("live", |w| w.count(is_live) == 1).await?;

    let data = report(500);
    let done = dir.path().join("lotus-crypto-diag-456.json");
    let partial = dir.path().join("lotus-crypto-diag-456.json.part");
    fs::write(&done, b"")?;
    grow(&partial, &data, 3, Duration::from_millis(400)).await?;
    w.drain();
    assert!(w.files.is_empty(), "picked up too early: {:?}", w.names());
    fs::rename(&partial, &done)?;

    w.wait_for("the report", |w| !w.files.is_empty()).await?;
    assert_eq!(w.files[0].0, done);
    assert!(w.files[0].1 == data);
    w.expect_no_more_files().await?;
    w.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_files_are_ignored_and_har_files_are_picked_up() -> Result {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("lotus-crypto-diag-1.json"), report(3))?;
    fs::write(dir.path().join("old.har"), b"{\"log\":{}}")?;
    let mut w = Watching::start(dir.path(), false);
    w.wait_for("live", |w| w.count(is_live) == 1).await?;

    // Not evidence: never reported.
    fs::write(dir.path().join("notes.json"), b"{}")?;
    fs::write(dir.path().join("call.txt"), b"x")?;
    let har = dir.path().join("Call-Window.HAR");
    let partial = dir.path().join("Call-Window.HAR.download");
    fs::write(&partial, b"{\"log\":{\"entries\":[]}}")?;
    fs::rename(&partial, &har)?;

    w.wait_for("the HAR", |w| !w.files.is_empty()).await?;
    assert_eq!(w.names(), ["Call-Window.HAR"]);
    // Touching an ignored file does not make it new.
    fs::write(
        dir.path().join("old.har"),
        b"{\"log\":{\"version\":\"1.2\"}}",
    )?;
    w.expect_no_more_files().await?;
    w.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_files_are_picked_up_when_asked() -> Result {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("lotus-crypto-diag-1.json"), report(3))?;
    fs::write(dir.path().join("old.har"), b"{\"log\":{}}")?;
    fs::write(dir.path().join("unrelated.json"), b"{}")?;
    let mut w = Watching::start(dir.path(), true);
    w.wait_for("both files", |w| w.files.len() == 2).await?;
    let mut names = w.names();
    names.sort();
    assert_eq!(names, ["lotus-crypto-diag-1.json", "old.har"]);
    w.expect_no_more_files().await?;
    w.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_missing_or_deleted_is_an_error_and_watching_resumes_when_it_returns() -> Result {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("Downloads");
    let mut w = Watching::start(&dir, false);
    w.wait_for("error", |w| w.count(is_error) == 1).await?;
    let Some(SourceStatus::Error { reason }) = w.statuses.first() else {
        return Err(format!("statuses: {:?}", w.statuses).into());
    };
    assert!(
        reason.starts_with(&format!("downloads folder '{}'", dir.display())),
        "{reason}"
    );

    // Appears later: files in it are new, not "already there".
    fs::create_dir(&dir)?;
    fs::write(dir.join("a.har"), b"{\"log\":{}}")?;
    w.wait_for("a.har", |w| w.files.len() == 1).await?;
    assert_eq!(w.count(is_live), 1);

    // Deleted: an error; recreated: works again.
    fs::remove_dir_all(&dir)?;
    w.wait_for("second error", |w| w.count(is_error) == 2)
        .await?;
    fs::create_dir(&dir)?;
    w.wait_for("live again", |w| w.count(is_live) == 2).await?;
    let partial = dir.join("lotus-crypto-diag-9.json.crdownload");
    fs::write(&partial, report(10))?;
    fs::rename(&partial, dir.join("lotus-crypto-diag-9.json"))?;
    w.wait_for("the report", |w| w.files.len() == 2).await?;
    assert_eq!(w.names(), ["a.har", "lotus-crypto-diag-9.json"]);
    assert!(w.files[1].1 == report(10));
    w.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_webs_rageshake_tar_is_picked_up_after_the_rename() -> Result {
    let dir = tempfile::tempdir()?;
    let mut w = Watching::start(dir.path(), false);
    w.wait_for("live", |w| w.count(is_live) == 1).await?;
    // "Download logs" in Element Web: rageshake.tar, written by the
    // browser under a temporary name first; a console export as *.log.
    let src = tempfile::tempdir()?;
    fs::write(
        src.path().join("log-0.log"),
        "2026-06-30T18:00:02.000Z E MissingKey\n",
    )?;
    fs::write(src.path().join("issue.txt"), "user_id = @a:hs\n")?;
    let tar = src.path().join("rageshake.tar");
    let st = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(src.path())
        .args(["issue.txt", "log-0.log"])
        .status()?;
    assert!(st.success());
    let data = fs::read(&tar)?;
    let partial = dir.path().join("rageshake.tar.crdownload");
    grow(&partial, &data, 3, Duration::from_millis(300)).await?;
    w.drain();
    assert!(w.files.is_empty(), "picked up too early: {:?}", w.names());
    fs::rename(&partial, dir.path().join("rageshake.tar"))?;
    fs::write(
        dir.path().join("element-call-console.log"),
        "2026-06-30T18:00:03.000Z 3 MatrixRTCSession x\n",
    )?;
    w.wait_for("both", |w| w.files.len() == 2).await?;
    let mut names = w.names();
    names.sort();
    assert_eq!(names, ["element-call-console.log", "rageshake.tar"]);
    assert!(w.files.iter().any(|(_, d)| *d == data));
    w.expect_no_more_files().await?;
    w.stop().await
}
