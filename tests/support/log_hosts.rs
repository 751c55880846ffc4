//! Real journald files and a real Docker engine for the log-source tests.
//!
//! journald: records in journal export format are appended to a journal
//! file by Debian's `systemd-journal-remote` (no running journald needed);
//! `journalctl -D DIR` reads and follows it. Docker: a `dockerd` of the
//! test's own (vfs storage, no network set-up) on a socket in a temp dir,
//! with an image imported from `busybox-static`; stopped by its pid.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// A journal directory written with `systemd-journal-remote`.
pub struct JournalDir {
    pub dir: tempfile::TempDir,
    monotonic: u64,
}

impl JournalDir {
    pub fn new() -> JournalDir {
        assert!(
            Path::new(JOURNAL_REMOTE).exists(),
            "{JOURNAL_REMOTE} is missing: apt-get install -y systemd-journal-remote"
        );
        JournalDir {
            dir: tempfile::Builder::new()
                .prefix("callcap-journal-dir-")
                .tempdir()
                .unwrap(),
            monotonic: 1,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends records of `unit` (each a MESSAGE and its time in µs since
    /// the epoch) to the journal file, with a `systemd-journal-remote` of
    /// their own.
    pub fn append(&mut self, unit: &str, records: &[(u64, String)]) {
        let export = export_format(unit, records, &mut self.monotonic);
        let mut child = self.writer();
        child.stdin.take().unwrap().write_all(&export).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "systemd-journal-remote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One `systemd-journal-remote` that appends what it is given as it
    /// comes, as journald does (one writer for the whole test).
    pub fn stream(&mut self) -> JournalStream {
        let mut child = self.writer();
        let stdin = child.stdin.take().unwrap();
        self.monotonic += 1_000_000;
        JournalStream {
            child,
            stdin,
            monotonic: self.monotonic,
        }
    }

    fn writer(&self) -> Child {
        Command::new(JOURNAL_REMOTE)
            .arg(format!(
                "--output={}",
                self.dir.path().join("remote.journal").display()
            ))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// What `journalctl -o json` prints for `unit`.
    pub fn export_json(&self, unit: &str) -> String {
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(self.dir.path())
            .args(["-u", unit, "-o", "json", "--all", "--no-pager"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Records in journal export format.
fn export_format(unit: &str, records: &[(u64, String)], monotonic: &mut u64) -> Vec<u8> {
    let mut export = Vec::new();
    for (at_us, message) in records {
        *monotonic += 1;
        write!(
            export,
            "__REALTIME_TIMESTAMP={at_us}\n__MONOTONIC_TIMESTAMP={monotonic}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_SYSTEMD_UNIT={unit}.service\n\
             SYSLOG_IDENTIFIER=python3\nPRIORITY=6\n"
        )
        .unwrap();
        if message.contains('\n') {
            // A multi-line MESSAGE is binary-safe: name, size, bytes.
            export.extend_from_slice(b"MESSAGE\n");
            export.extend_from_slice(&(message.len() as u64).to_le_bytes());
            export.extend_from_slice(message.as_bytes());
            export.push(b'\n');
        } else {
            writeln!(export, "MESSAGE={message}").unwrap();
        }
        export.push(b'\n');
    }
    export
}

/// A running `systemd-journal-remote` fed record by record.
pub struct JournalStream {
    child: Child,
    stdin: std::process::ChildStdin,
    monotonic: u64,
}

impl JournalStream {
    pub fn append(&mut self, unit: &str, records: &[(u64, String)]) {
        let export = export_format(unit, records, &mut self.monotonic);
        self.stdin.write_all(&export).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Ends the input and waits until everything is written.
    pub fn finish(self) {
        drop(self.stdin);
        let out = self.child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "systemd-journal-remote: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Microseconds since the epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A Docker engine of the test's own.
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Child,
}

pub const IMAGE: &str = "callcap-test-busybox:1";

impl Dockerd {
    pub fn start() -> Dockerd {
        for (bin, pkg) in [
            ("dockerd", "docker.io"),
            ("docker", "docker.io"),
            ("busybox", "busybox-static"),
        ] {
            assert!(
                which(bin),
                "{bin} is missing: apt-get install -y {pkg} (scripts/test installs it)"
            );
        }
        // A short path: the socket's path must fit a sockaddr_un.
        let dir = tempfile::Builder::new()
            .prefix("ccdk-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .args([
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
            .spawn()
            .unwrap();
        let engine = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine.import_busybox();
        engine
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// The engine's command line, as `docker-command` takes it.
    pub fn command(&self) -> String {
        format!("docker -H {}", self.host())
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn import_busybox(&self) {
        let root = self.dir.path().join("image");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "sleep", "cat", "usleep", "test", "["] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join("image.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ok(&["import", tar.to_str().unwrap(), IMAGE]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

fn busybox() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .unwrap()
}
