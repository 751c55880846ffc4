//! The SSH log source against a real OpenSSH sshd on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sshd.rs"]
mod sshd;

use callcap::config::{HostKeyCheck, HumanDuration, ServerLogConfig, SshConfig};
use callcap::sources::ssh::{
    ForwardFrom, Passphrase, PassphrasePrompt, RunOptions, SshError, open_local_forward,
    run_server_log_with,
};
use callcap::sources::{Input, SourceStatus};
use sshd::{Agent, Keys, Options, Sshd, keygen, remote_processes};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const LONG: Duration = Duration::from_secs(30);

/// A remote log in a directory of its own: the directory is the marker
/// used to count the processes callcap runs "on the server".
struct Remote {
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("callcap-remote-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("homeserver.log");
        Remote { dir, log }
    }
    fn create(&self, text: &str) {
        std::fs::write(&self.log, text).unwrap();
    }
    fn content(&self) -> Vec<u8> {
        std::fs::read(&self.log).unwrap()
    }
    fn config(&self) -> ServerLogConfig {
        ServerLogConfig::file(self.log.clone())
    }
    /// Waits until nothing callcap started remains.
    async fn assert_no_processes(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = remote_processes(self.dir.path());
            if left.is_empty() && sshd::pgrep_count(self.dir.path()) == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "remote processes left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn ssh_config(s: &Sshd, known_hosts: &Path) -> SshConfig {
    let empty = s.dir.path().join("ssh_config");
    if !empty.exists() {
        std::fs::write(&empty, "").unwrap();
    }
    SshConfig {
        host: s.listen.clone(),
        port: Some(s.port),
        user: Some("root".into()),
        identity_file: Some(s.keys.client_key.clone()),
        passphrase_env: None,
        known_hosts: Some(known_hosts.to_path_buf()),
        host_key_check: HostKeyCheck::Strict,
        jump: None,
        ssh_config: Some(empty),
        identity_agent: Some(PathBuf::from("none")),
        connect_timeout: Some(HumanDuration::from_secs(2)),
        keepalive_interval: Some(HumanDuration::from_secs(1)),
    }
}

/// A known_hosts file that trusts `servers`.
fn trusting(dir: &Path, servers: &[&Sshd]) -> PathBuf {
    let p = dir.join("known_hosts");
    let text: String = servers
        .iter()
        .map(|s| s.known_hosts_line() + "\n")
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

fn options() -> RunOptions {
    RunOptions {
        watch_interval: Duration::from_millis(500),
        ..RunOptions::default()
    }
}

#[derive(Default)]
struct Seen {
    inputs: Vec<Input>,
    bytes: Vec<u8>,
    /// Arrival time of every complete line.
    line_times: Vec<Instant>,
}

impl Seen {
    fn statuses(&self) -> Vec<SourceStatus> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                Input::Status { status, .. } => Some(status.clone()),
                _ => None,
            })
            .collect()
    }
    fn count(&self, label: &str) -> usize {
        self.statuses()
            .iter()
            .filter(|s| s.label() == label)
            .count()
    }
    fn reasons(&self) -> Vec<String> {
        self.statuses()
            .into_iter()
            .filter_map(|s| match s {
                SourceStatus::Reconnecting { reason, .. }
                | SourceStatus::Error { reason }
                | SourceStatus::Stalled { reason } => Some(reason),
                _ => None,
            })
            .collect()
    }
    fn notes(&self) -> Vec<String> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                Input::Note { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
    fn gaps(&self) -> Vec<(u64, u64)> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                Input::Gap {
                    down_ms,
                    caught_up_bytes,
                    ..
                } => Some((*down_ms, *caught_up_bytes)),
                _ => None,
            })
            .collect()
    }
}

struct Run {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), SshError>>,
    /// Ends once the source has dropped its sender and everything is recorded.
    collector: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Seen>>,
}

/// A fresh sshd and remote empty log, followed with the default options
/// until the source is live.
async fn following_empty_log() -> (Sshd, Remote, Run) {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("");
    let kh = trusting(s.dir.path(), &[&s]);
    let run = start(ssh_config(&s, &kh), r.config(), options(), None);
    run.wait_live(1).await;
    (s, r, run)
}

fn start(
    ssh: SshConfig,
    log: ServerLogConfig,
    opts: RunOptions,
    prompt: Option<PassphrasePrompt>,
) -> Run {
    let (tx, mut rx) = mpsc::channel::<Input>(256);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let collector = tokio::spawn(async move {
        while let Some(i) = rx.recv().await {
            let now = Instant::now();
            let mut s = s2.lock().unwrap();
            if let Input::ServerChunk { bytes, .. } = &i {
                s.bytes.extend_from_slice(bytes);
                let n = bytes.iter().filter(|b| **b == b'\n').count();
                s.line_times.extend(std::iter::repeat_n(now, n));
            }
            s.inputs.push(i);
        }
    });
    let task = tokio::spawn(run_server_log_with(ssh, log, tx, shutdown_rx, prompt, opts));
    Run {
        shutdown,
        task,
        collector,
        seen,
    }
}

impl Run {
    async fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = self.seen.lock().unwrap();
                if pred(&s) {
                    return;
                }
                if Instant::now() > deadline {
                    panic!(
                        "timed out waiting for {what}; statuses: {:?}; notes: {:?}; {} bytes",
                        s.statuses(),
                        s.notes(),
                        s.bytes.len()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_live(&self, n: usize) {
        self.wait(&format!("live #{n}"), LONG, |s| s.count("live") >= n)
            .await;
    }

    async fn wait_bytes(&self, expected: &[u8]) {
        let len = expected.len();
        self.wait(&format!("{len} bytes"), LONG, |s| s.bytes.len() >= len)
            .await;
        let s = self.seen.lock().unwrap();
        assert_eq!(
            s.bytes.len(),
            len,
            "more bytes than the file holds (duplicates?)"
        );
        assert!(
            s.bytes == expected,
            "received bytes differ from the remote file"
        );
    }

    async fn stop(self) -> (Result<(), SshError>, Arc<Mutex<Seen>>) {
        let _ = self.shutdown.send(true);
        let r = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("source did not stop within 15 s")
            .expect("source task panicked");
        self.collector.await.unwrap();
        (r, self.seen)
    }

    /// Waits for the task to end by itself (fatal error).
    async fn finished(self) -> (Result<(), SshError>, Arc<Mutex<Seen>>) {
        let r = tokio::time::timeout(LONG, self.task)
            .await
            .expect("source did not give up")
            .expect("source task panicked");
        self.collector.await.unwrap();
        (r, self.seen)
    }
}

/// CPU time of this process so far (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Clock ticks are 100 Hz on Linux.
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_lines_arrive_in_order_and_latency_is_measured() {
    let (_sshd, r, run) = following_empty_log().await;

    // 2000 lines at ~2k lines/s: 10 lines every 5 ms, each line timestamped.
    let mut writes = Vec::new();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&r.log)
        .unwrap();
    let t0 = Instant::now();
    let cpu0 = cpu_time();
    for batch in 0..200 {
        for i in 0..10 {
            let n = batch * 10 + i;
            writes.push(Instant::now());
            f.write_all(
                format!("2026-06-30 12:00:00,000 - synapse.test - INFO - line {n:05}\n").as_bytes(),
            )
            .unwrap();
        }
        let next = t0 + Duration::from_millis(5 * (batch as u64 + 1));
        tokio::time::sleep_until(next.into()).await;
    }
    run.wait_bytes(&r.content()).await;
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let mut lat: Vec<Duration> = {
        let seen = run.seen.lock().unwrap();
        seen.line_times
            .iter()
            .zip(writes.iter())
            .map(|(got, put)| got.saturating_duration_since(*put))
            .collect()
    };
    lat.sort();
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
    );
    eprintln!(
        "append->ServerChunk latency over {} lines at ~2k lines/s: p50 {p50:?} p99 {p99:?} max {max:?}",
        lat.len()
    );
    eprintln!(
        "client CPU (this test process, debug build, incl. the writer): {cpu:?} over {wall:?} = {:.1}% of a core at 2k lines/s",
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()
    );
    assert!(p99 < Duration::from_secs(3), "p99 {p99:?}");

    let (res, _) = run.stop().await;
    res.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_an_unknown_host_key_and_shows_its_fingerprint() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let kh = s.dir.path().join("empty_known_hosts");
    let run = start(ssh_config(&s, &kh), r.config(), options(), None);
    let (res, seen) = run.finished().await;
    let msg = res.unwrap_err().to_string();
    eprintln!("reason: {msg}");
    let fp = sshd::fingerprint(&s.keys.host_pub());
    assert!(msg.contains(&fp), "{msg}");
    assert!(
        msg.contains("accept-new") && msg.contains("ssh-keyscan"),
        "{msg}"
    );
    assert!(
        msg.contains(&s.known_hosts_line()),
        "the line to add: {msg}"
    );
    assert!(!msg.contains('\n'), "one line");
    let last = seen.lock().unwrap().statuses().last().cloned();
    assert!(matches!(last, Some(SourceStatus::Error { reason }) if reason.contains(&fp)));
    assert!(!kh.exists(), "strict must not write known_hosts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_a_changed_host_key() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let other = keygen(&s.dir.path().join("other_host"), "ed25519", "");
    let kh = s.dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "# old key\n[{}]:{} {}\n",
            s.listen,
            s.port,
            sshd::pub_key(&other.with_extension("pub"))
        ),
    )
    .unwrap();
    let run = start(ssh_config(&s, &kh), r.config(), options(), None);
    let (res, _) = run.finished().await;
    let msg = res.unwrap_err().to_string();
    eprintln!("reason: {msg}");
    assert!(msg.contains("CHANGED"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
    assert!(
        msg.contains(&sshd::fingerprint(&s.keys.host_pub())),
        "{msg}"
    );
    assert!(msg.contains("ssh-keygen -R"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_records_the_key_and_hashed_entries_match() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let kh = s.dir.path().join("sub").join("known_hosts");
    let mut cfg = ssh_config(&s, &kh);
    cfg.host_key_check = HostKeyCheck::AcceptNew;
    let run = start(cfg.clone(), r.config(), options(), None);
    run.wait_live(1).await;
    let (res, seen) = run.stop().await;
    res.unwrap();
    let text = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(text, s.known_hosts_line() + "\n");
    assert!(
        seen.lock()
            .unwrap()
            .notes()
            .iter()
            .any(|n| n.contains("recorded"))
    );

    // Hash it like `HashKnownHosts yes` would and connect strictly.
    sshd::run(
        std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&kh),
    );
    let hashed = std::fs::read_to_string(&kh).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    cfg.host_key_check = HostKeyCheck::Strict;
    let run = start(cfg, r.config(), options(), None);
    run.wait_live(1).await;
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_authentication() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let agent = Agent::start();
    agent.add(&s.keys.client_key);
    let kh = trusting(s.dir.path(), &[&s]);
    let mut cfg = ssh_config(&s, &kh);
    cfg.identity_file = None;
    cfg.identity_agent = Some(agent.sock.clone());
    let run = start(cfg, r.config(), options(), None);
    run.wait_live(1).await;
    run.stop().await.0.unwrap();
    assert!(s.log_text().contains("Accepted publickey for root"));
}

/// An environment variable that is set in every test run (the test cannot
/// set one: `set_var` is unsafe and the crate forbids unsafe code).
fn some_env_var() -> (String, String) {
    for name in ["CARGO_MANIFEST_DIR", "HOME", "PATH"] {
        if let Ok(v) = std::env::var(name)
            && v.len() >= 5
        {
            return (name.to_string(), v);
        }
    }
    panic!("no usable environment variable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_protected_key_from_env_and_from_the_console_prompt() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let (var, pass) = some_env_var();
    let key = keygen(&s.dir.path().join("client_pass"), "ed25519", &pass);
    s.keys.authorize(&key);
    let kh = trusting(s.dir.path(), &[&s]);

    let mut cfg = ssh_config(&s, &kh);
    cfg.identity_file = Some(key.clone());
    cfg.passphrase_env = Some(var);
    let run = start(cfg.clone(), r.config(), options(), None);
    run.wait_live(1).await;
    run.stop().await.0.unwrap();

    // From the console: a wrong answer first, then the right one.
    cfg.passphrase_env = None;
    let (prompt, mut questions) = PassphrasePrompt::channel();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a2 = asked.clone();
    tokio::spawn(async move {
        while let Some(q) = questions.recv().await {
            a2.lock().unwrap().push((q.key_path.clone(), q.attempt));
            let answer = if q.attempt == 1 {
                "wrong".to_string()
            } else {
                pass.clone()
            };
            let _ = q.reply.send(Some(Passphrase::new(answer)));
        }
    });
    let run = start(cfg, r.config(), options(), Some(prompt));
    run.wait_live(1).await;
    run.stop().await.0.unwrap();
    assert_eq!(*asked.lock().unwrap(), vec![(key.clone(), 1), (key, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_and_rsa_keys_authenticate() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let kh = trusting(s.dir.path(), &[&s]);
    for kind in ["ecdsa", "rsa"] {
        // ssh-key 0.7.0-rc (pinned by russh) rejects about 1 in 256 OpenSSH
        // nistp256 keys ("length invalid": a private scalar with a leading
        // zero byte). That is a known limitation, documented in the README;
        // this test is about authentication, so it uses a key the library
        // can load rather than failing at random.
        let mut key = keygen(&s.dir.path().join(format!("client_{kind}")), kind, "");
        for i in 0..8 {
            if russh::keys::load_secret_key(&key, None).is_ok() {
                break;
            }
            key = keygen(&s.dir.path().join(format!("client_{kind}_{i}")), kind, "");
        }
        s.keys.authorize(&key);
        let mut cfg = ssh_config(&s, &kh);
        cfg.identity_file = Some(key);
        let run = start(cfg, r.config(), options(), None);
        run.wait_live(1).await;
        run.stop().await.0.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jump_host_reaches_the_log_server_through_a_direct_tcpip_channel() {
    let keys = Keys::generate();
    let jump = Sshd::start_with(Options {
        keys: Some(keys.clone()),
        extra_config: "LogLevel DEBUG1".into(),
        ..Options::default()
    });
    let listen = if sshd::can_bind("127.0.0.2") {
        "127.0.0.2"
    } else {
        "127.0.0.1"
    };
    let inner = Sshd::start_with(Options {
        listen: listen.into(),
        keys: Some(keys),
        ..Options::default()
    });
    let r = Remote::new();
    r.create("before\n");
    let kh = trusting(jump.dir.path(), &[&jump, &inner]);
    let mut cfg = ssh_config(&inner, &kh);
    cfg.jump = Some(format!("root@127.0.0.1:{}", jump.port));
    let run = start(cfg, r.config(), options(), None);
    run.wait_live(1).await;
    append(&r.log, "through the bastion\n");
    run.wait_bytes(b"through the bastion\n").await;
    run.stop().await.0.unwrap();
    let log = jump.log_text();
    assert!(
        log.contains(&format!("target {listen} port {}", inner.port)),
        "the jump host did not forward: {log}"
    );
    r.assert_no_processes().await;
}

/// Appends numbered lines every 2 ms from a thread, holding the file open
/// like a logger does.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(path: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let path = path.to_path_buf();
        let handle = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            let mut n = 0u64;
            while !s2.load(Ordering::Relaxed) {
                f.write_all(
                    format!("seq {n:08} some payload to make the line longer\n").as_bytes(),
                )
                .unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        });
        Writer {
            stop,
            handle: Some(handle),
        }
    }
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_resumes_at_byte_offset_without_loss_or_duplicates() {
    let (mut s, r, run) = following_empty_log().await;
    let w = Writer::start(&r.log);
    run.wait("some lines", LONG, |x| x.bytes.len() > 2000).await;

    s.kill_all(); // sshd crashes mid-stream; lines keep coming
    run.wait("reconnecting", LONG, |x| x.count("reconnecting") >= 1)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // let the writer get ahead
    s.restart();
    run.wait_live(2).await;
    // The killed session's remote processes are gone: only the current three
    // (script, watcher, tail) remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote_processes(r.dir.path()).len() != 3 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            remote_processes(r.dir.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = w.finish();
    run.wait_bytes(&r.content()).await;
    let gaps = run.seen.lock().unwrap().gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].0 > 0 && gaps[0].1 > 0, "{gaps:?}");
    eprintln!(
        "kill/restart: {lines} lines written, gap {} ms, {} bytes caught up",
        gaps[0].0, gaps[0].1
    );
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_mid_stream_loses_nothing() {
    let (_sshd, r, run) = following_empty_log().await;

    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(&r.log)
        .unwrap();
    for i in 0..200 {
        old.write_all(format!("old {i}\n").as_bytes()).unwrap();
    }
    run.wait("first lines", LONG, |x| x.bytes.len() > 100).await;
    let rotated = r.dir.path().join("homeserver.log.2026-06-30");
    std::fs::rename(&r.log, &rotated).unwrap();
    for i in 200..250 {
        old.write_all(format!("old {i} (after the rename)\n").as_bytes())
            .unwrap();
    }
    drop(old);
    let mut new = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&r.log)
        .unwrap();
    for i in 0..100 {
        new.write_all(format!("new {i}\n").as_bytes()).unwrap();
    }
    let mut expected = std::fs::read(&rotated).unwrap();
    expected.extend(r.content());
    run.wait_bytes(&expected).await;
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_is_detected_and_recovered_after_sigcont() {
    let (s, r, run) = following_empty_log().await;
    append(&r.log, "before the stall\n");
    run.wait("first line", LONG, |x| !x.bytes.is_empty()).await;

    s.stop_signal();
    let t = Instant::now();
    run.wait("stalled", LONG, |x| x.count("stalled") >= 1).await;
    let detect = t.elapsed();
    append(&r.log, "during the stall\n");
    s.cont_signal();
    run.wait_live(2).await;
    append(&r.log, "after the stall\n");
    run.wait_bytes(&r.content()).await;
    eprintln!("stall detected after {detect:?} (keepalive-interval 1s)");
    eprintln!("statuses: {:?}", run.seen.lock().unwrap().statuses());
    let seen = run.seen.lock().unwrap().statuses();
    let stalled = seen.iter().position(|x| x.label() == "stalled").unwrap();
    assert!(seen[..stalled].iter().any(|x| x.label() == "live"));
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_100k_lines_all_arrive() {
    let (_sshd, r, run) = following_empty_log().await;
    let mut burst = String::with_capacity(100_000 * 80);
    for i in 0..100_000 {
        burst.push_str(&format!(
            "2026-06-30 12:00:00,000 - synapse.burst - 42 - INFO - line {i:06} - to-device\n"
        ));
    }
    let t = Instant::now();
    append(&r.log, &burst);
    run.wait_bytes(burst.as_bytes()).await;
    let took = t.elapsed();
    eprintln!(
        "100k lines ({} bytes) received in {took:?} ({:.0} lines/s)",
        burst.len(),
        100_000.0 / took.as_secs_f64()
    );
    assert_eq!(run.seen.lock().unwrap().line_times.len(), 100_000);
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_file_and_failing_exec_prefix_are_reported_and_retried() {
    let s = Sshd::start();
    let r = Remote::new();
    let kh = trusting(s.dir.path(), &[&s]);
    let run = start(ssh_config(&s, &kh), r.config(), options(), None);
    run.wait("missing file reason", LONG, |x| {
        x.reasons().iter().any(|m| m.contains("does not exist"))
    })
    .await;
    assert_eq!(
        run.seen.lock().unwrap().count("live"),
        0,
        "never live without the file"
    );
    r.create("finally\n");
    run.wait_live(1).await;
    run.stop().await.0.unwrap();

    let mut log = r.config();
    log.exec_prefix = Some("callcap-no-such-command --".into());
    let run = start(ssh_config(&s, &kh), log.clone(), options(), None);
    run.wait("exec-prefix stderr", LONG, |x| {
        x.reasons()
            .iter()
            .any(|m| m.contains("callcap-no-such-command") && m.contains("not found"))
    })
    .await;
    assert_eq!(run.seen.lock().unwrap().count("live"), 0);
    run.stop().await.0.unwrap();

    log.exec_prefix = Some("env --".into());
    let run = start(ssh_config(&s, &kh), log, options(), None);
    run.wait_live(1).await;
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_starts_n_lines_back_and_the_clock_offset_is_measured() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n");
    let kh = trusting(s.dir.path(), &[&s]);
    let mut log = r.config();
    log.backfill = 3;
    let run = start(ssh_config(&s, &kh), log, options(), None);
    run.wait_bytes(b"l8\nl9\nl10\n").await;
    run.wait("clock offset", LONG, |x| {
        x.inputs
            .iter()
            .any(|i| matches!(i, Input::ClockOffset { .. }))
    })
    .await;
    let (offset, bound) = run
        .seen
        .lock()
        .unwrap()
        .inputs
        .iter()
        .find_map(|i| match i {
            Input::ClockOffset {
                offset_ms,
                bound_ms,
                ..
            } => Some((*offset_ms, *bound_ms)),
            _ => None,
        })
        .unwrap();
    eprintln!("clock offset {offset} ms ± {bound} ms (same machine: 0)");
    assert!(offset.unsigned_abs() <= bound + 2, "{offset} ± {bound}");
    run.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_alias_from_ssh_config() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let kh = trusting(s.dir.path(), &[&s]);
    let cfg_file = s.dir.path().join("alias_config");
    std::fs::write(
        &cfg_file,
        format!(
            "Host synapse-test\n  HostName {}\n  Port {}\n  User root\n  IdentityFile {}\n",
            s.listen,
            s.port,
            s.keys.client_key.display()
        ),
    )
    .unwrap();
    let mut cfg = ssh_config(&s, &kh);
    cfg.host = "synapse-test".into();
    cfg.port = None;
    cfg.user = None;
    cfg.identity_file = None;
    cfg.ssh_config = Some(cfg_file);
    let run = start(cfg, r.config(), options(), None);
    run.wait_live(1).await;
    run.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_reports_refused_and_unresolvable_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = SshConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        user: Some("root".into()),
        identity_file: None,
        passphrase_env: None,
        known_hosts: Some(dir.path().join("kh")),
        host_key_check: HostKeyCheck::Strict,
        jump: None,
        ssh_config: Some(dir.path().join("none")),
        identity_agent: Some("none".into()),
        connect_timeout: Some(HumanDuration::from_secs(2)),
        keepalive_interval: None,
    };
    std::fs::write(dir.path().join("none"), "").unwrap();
    let log = ServerLogConfig::file("/var/log/x.log");
    let opts = RunOptions {
        fail_fast: true,
        ..options()
    };
    let (res, _) = start(base.clone(), log.clone(), opts.clone(), None)
        .finished()
        .await;
    let msg = res.unwrap_err().to_string();
    eprintln!("reason: {msg}");
    assert!(msg.contains("refused"), "{msg}");

    let mut dns = base;
    dns.host = "callcap-test.invalid".into();
    let (res, _) = start(dns, log, opts, None).finished().await;
    let msg = res.unwrap_err().to_string();
    eprintln!("reason: {msg}");
    assert!(
        msg.contains("cannot resolve 'callcap-test.invalid'"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forward_pipes_tcp_through_ssh() {
    let s = Sshd::start();
    let kh = trusting(s.dir.path(), &[&s]);
    // An echo server standing in for PostgreSQL.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = ssh_config(&s, &kh);
    for from in [ForwardFrom::SshHost, ForwardFrom::JumpHost] {
        if from == ForwardFrom::JumpHost {
            cfg.jump = Some(format!("root@127.0.0.1:{}", s.port));
        }
        let fwd = open_local_forward(&cfg, "127.0.0.1", echo_port, from, None)
            .await
            .unwrap();
        assert!(fwd.local_addr().ip().is_loopback());
        for round in 0..3 {
            let mut c = tokio::net::TcpStream::connect(fwd.local_addr())
                .await
                .unwrap();
            let msg = format!("hello {round} via {from:?}");
            c.write_all(msg.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; msg.len()];
            tokio::time::timeout(LONG, c.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(buf, msg.as_bytes());
        }
        fwd.close().await;
    }
    assert!(s.log_text().contains(&format!("port {echo_port}")) || !s.log_text().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_line_and_invalid_utf8_pass_through_unchanged() {
    let (_sshd, r, run) = following_empty_log().await;
    let mut data = vec![b'x'; 10 * 1024 * 1024];
    data.extend_from_slice(b"\n\xff\xfe not utf-8 \xc3\x28\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&r.log)
        .unwrap()
        .write_all(&data)
        .unwrap();
    run.wait_bytes(&data).await;
    let (res, seen) = run.stop().await;
    res.unwrap();
    assert_eq!(
        seen.lock().unwrap().statuses().last(),
        Some(&SourceStatus::Stopped)
    );
    r.assert_no_processes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failure_is_fatal_with_a_one_line_reason() {
    let s = Sshd::start();
    let r = Remote::new();
    r.create("x\n");
    let kh = trusting(s.dir.path(), &[&s]);
    let stranger = keygen(&s.dir.path().join("stranger"), "ed25519", "");
    let mut cfg = ssh_config(&s, &kh);
    cfg.identity_file = Some(stranger.clone());
    let (res, seen) = start(cfg, r.config(), options(), None).finished().await;
    let err = res.unwrap_err();
    let msg = err.to_string();
    eprintln!("reason: {msg}");
    assert!(err.is_fatal());
    assert!(
        msg.starts_with(&format!(
            "authentication failed for root@127.0.0.1:{}",
            s.port
        )),
        "{msg}"
    );
    assert!(msg.contains(&stranger.display().to_string()), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(matches!(
        seen.lock().unwrap().statuses().last(),
        Some(SourceStatus::Error { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_disconnected_reads_the_rest_of_the_old_file_then_the_new_one() {
    let (mut s, r, run) = following_empty_log().await;
    append(&r.log, "old 1\nold 2\n");
    run.wait_bytes(b"old 1\nold 2\n").await;

    s.kill_all();
    run.wait("reconnecting", LONG, |x| x.count("reconnecting") >= 1)
        .await;
    append(&r.log, "old 3 (while down)\n");
    let rotated = r.dir.path().join("homeserver.log.1");
    std::fs::rename(&r.log, &rotated).unwrap();
    append(&rotated, "old 4 (after the rename)\n");
    append(&r.log, "new 1\nnew 2\n");
    s.restart();
    run.wait_live(2).await;

    let mut expected = std::fs::read(&rotated).unwrap();
    expected.extend(r.content());
    run.wait_bytes(&expected).await;
    let gaps = run.seen.lock().unwrap().gaps();
    let rest = "old 3 (while down)\nold 4 (after the rename)\n".len() as u64;
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].1, rest + "new 1\nnew 2\n".len() as u64, "{gaps:?}");
    run.stop().await.0.unwrap();
    r.assert_no_processes().await;
}
