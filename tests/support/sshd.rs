//! A throwaway OpenSSH server for integration tests: `/usr/sbin/sshd -D -e`
//! on a free loopback port, keys made by `ssh-keygen` in a temp dir,
//! `StrictModes no` (keys live under /tmp), stopped by PID on drop.
//!
//! Include with `#[path = "support/sshd.rs"] mod sshd;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Runs a command, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ssh-keygen -t <kind> -N <pass> -f <path>`; returns the private key path.
pub fn keygen(path: &Path, kind: &str, passphrase: &str) -> PathBuf {
    let mut c = Command::new("ssh-keygen");
    c.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "callcap-test",
        "-f",
    ])
    .arg(path);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    run(&mut c);
    path.to_path_buf()
}

/// `SHA256:…` of a public key file, as `ssh-keygen -l` prints it.
pub fn fingerprint(pub_path: &Path) -> String {
    let out = run(Command::new("ssh-keygen").arg("-lf").arg(pub_path));
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// `<type> <base64>` of a public key file.
pub fn pub_key(pub_path: &Path) -> String {
    let text = std::fs::read_to_string(pub_path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Host and client keys, shareable between several servers.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub host_key: PathBuf,
    pub client_key: PathBuf,
    pub authorized_keys: PathBuf,
}

impl Keys {
    pub fn generate() -> Arc<Keys> {
        let dir = tempfile::Builder::new()
            .prefix("callcap-keys-")
            .tempdir()
            .unwrap();
        let host_key = keygen(&dir.path().join("host_ed25519"), "ed25519", "");
        let client_key = keygen(&dir.path().join("client_ed25519"), "ed25519", "");
        let authorized_keys = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized_keys).unwrap();
        Arc::new(Keys {
            dir,
            host_key,
            client_key,
            authorized_keys,
        })
    }

    /// Lets the key whose public half is `<key>.pub` log in too.
    pub fn authorize(&self, key: &Path) {
        let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.authorized_keys)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }

    pub fn host_pub(&self) -> PathBuf {
        self.host_key.with_extension("pub")
    }
}

pub struct Options {
    pub listen: String,
    pub keys: Option<Arc<Keys>>,
    /// Lines put first (sshd keeps the first value of a keyword).
    pub extra_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: "127.0.0.1".into(),
            keys: None,
            extra_config: String::new(),
        }
    }
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub keys: Arc<Keys>,
    pub listen: String,
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

fn free_port(listen: &str) -> u16 {
    std::net::TcpListener::bind((listen, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this machine can bind an address (e.g. 127.0.0.2).
pub fn can_bind(addr: &str) -> bool {
    std::net::TcpListener::bind((addr, 0)).is_ok()
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install -y openssh-server"
        );
        std::fs::create_dir_all("/run/sshd").ok();
        let keys = opts.keys.unwrap_or_else(Keys::generate);
        let dir = tempfile::Builder::new()
            .prefix("callcap-sshd-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("sshd_config");
        let log = dir.path().join("sshd.log");
        let mut last_err = String::new();
        // Picking a port and releasing it is racy: retry on a lost race.
        for _ in 0..5 {
            let port = free_port(&opts.listen);
            let text = format!(
                "{extra}\nPort {port}\nListenAddress {listen}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 AllowTcpForwarding yes\nPidFile {pid}\nLogLevel VERBOSE\n",
                listen = opts.listen,
                hk = keys.host_key.display(),
                ak = keys.authorized_keys.display(),
                pid = dir.path().join("sshd.pid").display(),
                extra = opts.extra_config,
            );
            std::fs::write(&config, text).unwrap();
            match spawn_sshd(&config, &log, &opts.listen, port) {
                Ok(child) => {
                    return Sshd {
                        dir,
                        keys,
                        listen: opts.listen,
                        port,
                        config,
                        log,
                        child: Some(child),
                    };
                }
                Err(e) => last_err = e,
            }
        }
        panic!("sshd did not start: {last_err}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.child = Some(spawn_sshd(
            &self.config,
            &self.log,
            &self.listen,
            self.port,
        )?);
        Ok(())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The listener and every process it forked (connection handlers).
    pub fn processes(&self) -> Vec<u32> {
        let Some(root) = self.pid() else {
            return Vec::new();
        };
        let mut all = vec![root];
        descendants(root, &mut all);
        all
    }

    /// Only the sshd processes (not the shells they run).
    fn sshd_processes(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .map(|c| c.trim() == "sshd")
                    .unwrap_or(false)
            })
            .collect()
    }

    fn signal(pids: &[u32], sig: &str) {
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .args(pids.iter().map(|p| p.to_string()))
            .stderr(Stdio::null())
            .status();
    }

    /// Freezes the server and its connections (a stalled link).
    pub fn stop_signal(&self) {
        Self::signal(&self.sshd_processes(), "STOP");
    }

    pub fn cont_signal(&self) {
        Self::signal(&self.sshd_processes(), "CONT");
    }

    /// SIGKILL to the listener and all connection processes (a crash).
    pub fn kill_all(&mut self) {
        let pids = self.sshd_processes();
        Self::signal(&pids, "CONT");
        Self::signal(&pids, "KILL");
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the same config.
    pub fn restart(&mut self) {
        self.kill_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("sshd restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The known_hosts line for this server.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[{}]:{} {}",
            self.listen,
            self.port,
            pub_key(&self.keys.host_pub())
        )
    }
}

fn spawn_sshd(config: &Path, log: &Path, listen: &str, port: u16) -> Result<Child, String> {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(logf))
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("sshd exited ({st}): {text}"));
        }
        if TcpStream::connect((listen, port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("sshd did not listen within 10 s".into())
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn descendants(root: u32, out: &mut Vec<u32>) {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(root) && !out.contains(&pid) {
            out.push(pid);
            descendants(pid, out);
        }
    }
}

/// Processes (other than this test process) whose command line mentions
/// `marker` or that hold a file under `marker` open: what callcap left
/// running "on the server". `pgrep -f marker` sees the shells; the fd scan
/// also sees `tail`, whose argv is `/dev/fd/3`.
pub fn remote_processes(marker: &Path) -> Vec<String> {
    let me = std::process::id();
    let m = marker.to_string_lossy().to_string();
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.contains(") Z ") {
            continue; // zombie awaiting its reaper: not running
        }
        let mut hit = cmd.contains(&m);
        if !hit && let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            hit = fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .map(|l| l.to_string_lossy().starts_with(&m))
                    .unwrap_or(false)
            });
        }
        if hit {
            found.push(format!(
                "{pid}: {}",
                cmd.chars().take(80).collect::<String>()
            ));
        }
    }
    found
}

/// `pgrep -f <marker>` count (the brief's check; shells only).
pub fn pgrep_count(marker: &Path) -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(marker)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| {
            l.trim()
                .parse::<u32>()
                .map(|p| p != std::process::id())
                .unwrap_or(false)
        })
        .count()
}

/// A running `ssh-agent -D -a <sock>`, killed on drop.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start() -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("callcap-agent-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { dir, sock, child }
    }

    pub fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.sock)
            .arg("-q")
            .arg(key));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
