//! journald and Docker log sources against the real things: journal files
//! written by `systemd-journal-remote` and followed with `journalctl -D`,
//! a container of a `dockerd` the test starts, both read over the test
//! sshd by `callcap live --headless`, with the SSH link cut twice while
//! both logs grow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod bundle;
#[path = "support/log_hosts.rs"]
mod log_hosts;
#[path = "support/sshd.rs"]
mod sshd;

use bundle::*;
use log_hosts::{Dockerd, IMAGE, JournalDir, now_us};
use sshd::Sshd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const UNIT: &str = "matrix-synapse-worker@generic1";
const CONTAINER: &str = "synapse-federation";
const LONG: Duration = Duration::from_secs(60);

/// A Synapse text line; even sequence numbers are KE-1 conflicts.
fn synapse_line(worker: &str, seq: u64, when: &str) -> String {
    if seq.is_multiple_of(2) {
        format!(
            "{when} - synapse.handlers.e2e_keys - 131 - INFO - POST-{worker}-{seq} - One time key signed_curve25519:AAAAAQ already exists. Old key: {{\"key\":\"a\"}}; new key: {{'key': 'b'}}"
        )
    } else {
        format!(
            "{when} - synapse.access.http.8008 - 473 - INFO - POST-{worker}-{seq} - 127.0.0.1 - 8008 - {{@alice:lotus.example}} Processed request: 0.004sec/0.000sec (0.000sec, 0.000sec) (0.000sec/0.000sec/0) 2B 200 \"GET /_matrix/client/v3/sync HTTP/1.1\" \"curl\" [0 dbevts]"
        )
    }
}

/// How many times `"source":NAME` went live, in the capture's journal.
fn lives(out: &Path, name: &str) -> usize {
    journal_file(out, "journal.jsonl")
        .matches(&format!(
            "\"source\":\"{name}\",\"status\":{{\"state\":\"live\""
        ))
        .count()
}

/// The sequence numbers `POST-worker-N` in `text`, each with how often.
fn seqs(text: &str, worker: &str) -> BTreeMap<u64, usize> {
    let pat = format!("POST-{worker}-");
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if let Some(i) = line.find(&pat) {
            let rest = &line[i + pat.len()..];
            let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            *m.entry(n.parse::<u64>().unwrap()).or_insert(0) += 1;
        }
    }
    m
}

fn assert_each_once(text: &str, worker: &str, n: u64) {
    let s = seqs(text, worker);
    let dup: Vec<_> = s.iter().filter(|(_, c)| **c != 1).collect();
    assert!(dup.is_empty(), "{worker}: lines not exactly once: {dup:?}");
    let missing: Vec<u64> = (0..n).filter(|k| !s.contains_key(k)).collect();
    assert!(
        missing.is_empty(),
        "{worker}: {} of {n} lines missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(s.len() as u64, n, "{worker}: lines beyond those written");
}

/// A test that fails leaves no capture running.
struct Capture {
    live: Live,
    out: PathBuf,
}

fn start_capture(dir: &Path, s: &Sshd, journal: &Path, engine: &Dockerd) -> Capture {
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, s.known_hosts_line() + "\n").unwrap();
    let empty = dir.join("ssh_config");
    std::fs::write(&empty, "").unwrap();
    let out = dir.join("out");
    let cfg = dir.join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ssh]\nhost = {:?}\nport = {}\nuser = \"root\"\nidentity-file = {:?}\nknown-hosts = {:?}\n\
             ssh-config = {:?}\nidentity-agent = \"none\"\nconnect-timeout = \"2s\"\nkeepalive-interval = \"1s\"\n\n\
             [[server-log]]\nname = \"worker1\"\njournal-unit = {UNIT:?}\njournal-directory = {:?}\n\n\
             [[server-log]]\nname = \"federation\"\ncontainer = {CONTAINER:?}\ndocker-command = {:?}\n\n\
             [call]\nuser-id = \"@alice:lotus.example\"\ndevice-id = \"RWDSUMBAID\"\n\n[bundle]\nout = {:?}\n",
            s.listen,
            s.port,
            s.keys.client_key,
            kh,
            empty,
            journal,
            engine.command(),
            out
        ),
    )
    .unwrap();
    Capture {
        live: Live::start(&["--config", cfg.to_str().unwrap()], "0"),
        out,
    }
}

impl Capture {
    fn wait_live(&self, n: usize) {
        wait_until(&format!("both logs live #{n}"), LONG, || {
            lives(&self.out, "worker1") >= n && lives(&self.out, "federation") >= n
        });
    }

    fn stop(self) -> PathBuf {
        self.live.stop()
    }
}

/// Both logs grow while the link is down and after it is back (first cut),
/// then stop while it is down (second cut): the commands started after it
/// must print the whole backlog without anything written after it (a
/// `journalctl -f --after-cursor=` without `-n all` prints ten records
/// and waits). On a failure the test prints what it found (the records
/// after the last cursor, journalctl's state).
#[test]
fn a_journald_unit_and_a_container_over_ssh_with_the_link_cut_twice_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Sshd::start();
    let mut journal = JournalDir::new();
    // A record from before the capture: not captured (no backfill).
    journal.append(UNIT, &[(now_us(), "before the capture".into())]);
    let engine = Dockerd::start();
    let ctl = engine.dir.path().join("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    // Synapse's console handler writes to stderr; one line every few ms
    // until told to stop, then it idles.
    let ke = synapse_line("fed", 0, "$(date -u '+%Y-%m-%d %H:%M:%S'),000")
        .replace("POST-fed-0", "POST-fed-$i")
        .replace('"', "\\\"");
    let other = synapse_line("fed", 1, "$(date -u '+%Y-%m-%d %H:%M:%S'),000")
        .replace("POST-fed-1", "POST-fed-$i")
        .replace('"', "\\\"");
    let script = format!(
        "while [ ! -e /ctl/go ]; do usleep 20000; done; i=0; while [ ! -e /ctl/stop ]; do \
         if [ $((i % 2)) -eq 0 ]; then echo \"{ke}\" >&2; else echo \"{other}\" >&2; fi; \
         i=$((i+1)); usleep 2000; done; echo \"wrote $i\" >&2; exec sleep 1000"
    );
    engine.ok(&[
        "run",
        "-d",
        "--name",
        CONTAINER,
        "--network",
        "none",
        "-v",
        &format!("{}:/ctl", ctl.display()),
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);

    let cap = start_capture(tmp.path(), &s, journal.path(), &engine);
    cap.wait_live(1);

    // The journal grows by a few records every few ms, in its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let so_far = Arc::new(AtomicU64::new(0));
    let mut stream = journal.stream();
    let writer = {
        let (stop, so_far) = (stop.clone(), so_far.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<(u64, String)> = (0..5)
                    .map(|k| {
                        let at = now_us();
                        let when = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f");
                        (at, synapse_line("w1", seq + k, &when.to_string()))
                    })
                    .collect();
                stream.append(UNIT, &batch);
                seq += 5;
                so_far.store(seq, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(15));
            }
            stream.finish();
            seq
        })
    };
    std::fs::write(ctl.join("go"), "").unwrap();
    wait_until("lines of both logs", LONG, || {
        let w = journal_file(&cap.out, "server/worker1.log");
        let f = journal_file(&cap.out, "server/federation.log");
        w.lines().count() > 200 && f.lines().count() > 200
    });

    let wrote = |engine: &Dockerd| -> Option<u64> {
        let out = engine.docker(&["logs", CONTAINER]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.lines()
            .find_map(|l| l.strip_prefix("wrote ").map(|n| n.trim().parse().unwrap()))
    };
    // The first cut: both logs keep growing while the link is down and
    // after it is back. The second: both stop while the link is down, so
    // the commands started after it find a backlog of hundreds of records
    // and nothing written after them (a busy minute, then a quiet server):
    // `journalctl -f --after-cursor=` alone prints ten and waits for the
    // journal to change.
    let mut writer = Some(writer);
    let mut written = 0;
    let mut fed_written = 0;
    for cut in 1..=2 {
        let before = so_far.load(Ordering::Relaxed);
        s.kill_all(); // the link drops
        std::thread::sleep(Duration::from_millis(800));
        if cut == 2 {
            stop.store(true, Ordering::Relaxed);
            written = writer.take().unwrap().join().unwrap();
            std::fs::write(ctl.join("stop"), "").unwrap();
            wait_until("the container to finish writing", LONG, || {
                wrote(&engine).is_some()
            });
            fed_written = wrote(&engine).unwrap();
            assert!(
                written - before > 50,
                "only {} records written while the link was down",
                written - before
            );
        }
        s.restart();
        cap.wait_live(cut + 1);
        std::thread::sleep(Duration::from_millis(500));
    }
    let all_in = || {
        journal_file(&cap.out, "server/worker1.log").contains(&format!("POST-w1-{} ", written - 1))
            && journal_file(&cap.out, "server/federation.log").contains("wrote ")
    };
    let deadline = std::time::Instant::now() + LONG;
    while !all_in() {
        if std::time::Instant::now() > deadline {
            let w = journal_file(&cap.out, "server/worker1.log");
            let f = journal_file(&cap.out, "server/federation.log");
            let j = journal_file(&cap.out, "journal.jsonl");
            let statuses: Vec<&str> = j
                .lines()
                .filter(|l| l.contains("\"status\"") || l.contains("note") || l.contains("gap"))
                .collect();
            let last_cursor = w
                .lines()
                .last()
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .and_then(|v| v["__CURSOR"].as_str().map(String::from))
                .unwrap_or_default();
            let after = Command::new("journalctl")
                .arg("-D")
                .arg(journal.path())
                .args(["-u", UNIT, "-o", "cat", "--no-pager"])
                .arg(format!("--after-cursor={last_cursor}"))
                .output()
                .unwrap();
            let files: Vec<_> = std::fs::read_dir(journal.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let procs = Command::new("sh")
                .args(["-c", "for p in $(pgrep -x journalctl); do echo $p $(cat /proc/$p/wchan) $(ls -l /proc/$p/fd/1 | sed 's/.*-> //') $(grep -E 'rchar|wchar' /proc/$p/io | tr '\\n' ' '); done"])
                .output()
                .unwrap();
            eprintln!(
                "journalctl after the last cursor: {} lines, stderr {}; files {files:?}; processes:\n{}",
                String::from_utf8_lossy(&after.stdout).lines().count(),
                String::from_utf8_lossy(&after.stderr),
                String::from_utf8_lossy(&procs.stdout)
            );
            panic!(
                "not every line captured: worker1 {} of {written} ({} twice) (last {:?}), federation {} of {fed_written}, wrote line {}; journal: {statuses:#?}",
                seqs(&w, "w1").len(),
                seqs(&w, "w1").values().filter(|c| **c > 1).count(),
                seqs(&w, "w1").keys().last(),
                seqs(&f, "fed").len(),
                f.contains("wrote "),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let b = cap.stop();
    verify_checksums(&b);

    // Every record of the journal exactly once, as journalctl prints it.
    let w1 = std::fs::read_to_string(b.join("server/worker1.log")).unwrap();
    assert_each_once(&w1, "w1", written);
    // (journalctl prints a record's fields in no fixed order.)
    let records = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let exported = records(&journal.export_json(UNIT));
    let captured = records(&w1);
    assert_eq!(captured.len() + 1, exported.len());
    assert!(
        captured == exported[1..],
        "the captured records differ from journalctl's"
    );
    assert!(!w1.contains("before the capture"));

    // Every line of the container exactly once, as docker prints it.
    let fed = std::fs::read_to_string(b.join("server/federation.log")).unwrap();
    assert_each_once(&fed, "fed", fed_written);
    let out = engine.docker(&["logs", "--timestamps", CONTAINER]);
    let docker_lines = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(fed.lines().count(), docker_lines.lines().count());
    assert!(
        fed == docker_lines,
        "the captured lines differ from docker's"
    );

    // KE-1 holds both logs' conflicts, each once, named, in time order.
    let ke1 = std::fs::read_to_string(b.join("server/KE-1.log")).unwrap();
    let w1_ke = written.div_ceil(2);
    let fed_ke = fed_written.div_ceil(2);
    assert_eq!(seqs(&ke1, "w1").len() as u64, w1_ke);
    assert_eq!(seqs(&ke1, "fed").len() as u64, fed_ke);
    assert_eq!(ke1.lines().count() as u64, w1_ke + fed_ke);
    let m = manifest(&b);
    assert_eq!(m["counts"]["server"]["KE-1"], w1_ke + fed_ke);
    // `NAME | TIME LINE`, TIME the journal's or docker's, put in order
    // after each host's measured clock offset: in order within what the
    // offsets and their bounds allow (both logs come from this machine).
    let sources = m["sources"].as_array().unwrap();
    let slack_ms: i64 = sources
        .iter()
        .map(|s| {
            s["clock_offset_ms"].as_i64().unwrap_or(0).abs()
                + s["clock_offset_bound_ms"].as_i64().unwrap_or(0)
        })
        .sum();
    assert!(slack_ms < 50, "clock offsets measured badly: {sources:?}");
    let mut last: Option<chrono::DateTime<chrono::FixedOffset>> = None;
    let mut prev = "";
    let mut names = std::collections::BTreeSet::new();
    for line in ke1.lines() {
        let (name, rest) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("a KE line without its log's name: {line}"));
        names.insert(name.to_string());
        let t = rest.split_whitespace().next().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(l) = last {
            assert!(
                t + chrono::Duration::milliseconds(slack_ms) >= l,
                "KE-1 out of time order:\n{prev}\n{line}"
            );
        }
        last = Some(last.map_or(t, |l| l.max(t)));
        prev = line;
    }
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["federation", "worker1"]
    );

    // The manifest lists both with their kind, resume position and gaps.
    let src = |n: &str| sources.iter().find(|s| s["name"] == n).unwrap().clone();
    let (w, f) = (src("worker1"), src("federation"));
    assert_eq!(w["kind"], "journald", "{w}");
    assert_eq!(f["kind"], "docker", "{f}");
    assert!(w["position"]["cursor"].as_str().is_some(), "{w}");
    assert!(f["position"]["since"].as_str().is_some(), "{f}");
    for s in [&w, &f] {
        let gaps = s["gaps"]
            .as_u64()
            .or(s["gaps"].as_array().map(|a| a.len() as u64));
        assert_eq!(gaps, Some(2), "two cuts, two gaps: {s}");
    }
    eprintln!(
        "journald: {written} records, docker: {fed_written} lines, KE-1 {}",
        w1_ke + fed_ke
    );
}

#[test]
fn check_runs_each_logs_command_over_ssh_and_names_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = Sshd::start();
    let mut journal = JournalDir::new();
    journal.append(UNIT, &[(now_us() - 3_000_000, "a record".into())]);
    let engine = Dockerd::start();
    engine.ok(&[
        "run",
        "-d",
        "--name",
        CONTAINER,
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);
    engine.ok(&[
        "create",
        "--name",
        "stopped",
        "--network",
        "none",
        IMAGE,
        "true",
    ]);
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, s.known_hosts_line() + "\n").unwrap();
    std::fs::write(dir.join("ssh_config"), "").unwrap();
    let cfg = dir.join("callcap.toml");
    let entry = |name: &str, what: &str| format!("[[server-log]]\nname = {name:?}\n{what}\n");
    let docker = format!("docker-command = {:?}", engine.command());
    let journal_dir = format!("journal-directory = {:?}", journal.path());
    std::fs::write(
        &cfg,
        format!(
            "[ssh]\nhost = {:?}\nport = {}\nuser = \"root\"\nidentity-file = {:?}\nknown-hosts = {:?}\n\
             ssh-config = {:?}\nidentity-agent = \"none\"\n\n{}{}{}{}{}",
            s.listen,
            s.port,
            s.keys.client_key,
            kh,
            dir.join("ssh_config"),
            entry("worker1", &format!("journal-unit = {UNIT:?}\n{journal_dir}")),
            entry("idle", &format!("journal-unit = \"no-such-unit\"\n{journal_dir}")),
            entry("federation", &format!("container = {CONTAINER:?}\n{docker}")),
            entry("stopped", &format!("container = \"stopped\"\n{docker}")),
            entry("ghost", &format!("container = \"no-such-container\"\n{docker}")),
        ),
    )
    .unwrap();
    let out = callcap(&["check", "--config", cfg.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |needle: &str| -> String {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}: {stdout}"))
            .to_string()
    };
    let ok = line(&format!("the journal of '{UNIT}'"));
    assert!(ok.starts_with('✓') && ok.contains("readable"), "{ok}");
    let idle = line("no record of unit 'no-such-unit'");
    assert!(idle.starts_with('✗') && idle.contains("fix:"), "{idle}");
    let running = line(&format!("container '{CONTAINER}'"));
    assert!(
        running.starts_with('✓') && running.contains("running"),
        "{running}"
    );
    let stopped = line("container 'stopped'");
    assert!(
        stopped.starts_with('✗') && stopped.contains("created"),
        "{stopped}"
    );
    let ghost = line("no-such-container");
    assert!(ghost.starts_with('✗'), "{ghost}");
}

/// A container that writes `count` numbered lines (`POST-tag-N`), then idles.
fn run_writer(engine: &Dockerd, tag: &str, count: u32) {
    let line = synapse_line(tag, 0, "$(date -u '+%Y-%m-%d %H:%M:%S'),000")
        .replace(&format!("POST-{tag}-0"), &format!("POST-{tag}-$i"))
        .replace('"', "\\\"");
    let script = format!(
        "i=0; while [ $i -lt {count} ]; do echo \"{line}\" >&2; i=$((i+1)); usleep 5000; done; \
         exec sleep 1000"
    );
    engine.ok(&[
        "run",
        "-d",
        "--name",
        CONTAINER,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);
}

#[test]
fn a_container_replaced_mid_capture_is_followed_on_this_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = Dockerd::start();
    run_writer(&engine, "old", 0);
    let out = tmp.path().join("out");
    let cfg = tmp.path().join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server-log]\ncontainer = {CONTAINER:?}\ndocker-command = {:?}\n\n[bundle]\nout = {:?}\n",
            engine.command(),
            out
        ),
    )
    .unwrap();
    let cap = Capture {
        live: Live::start(&["--config", cfg.to_str().unwrap()], "0"),
        out,
    };
    wait_until("the container followed", LONG, || {
        lives(&cap.out, "server-log") >= 1
    });
    // Replaced (docker compose up after a pull does this) while writing.
    engine.ok(&["rm", "-f", CONTAINER]);
    run_writer(&engine, "first", 200);
    wait_until("lines of the new container", LONG, || {
        journal_file(&cap.out, "server/homeserver.log").contains("POST-first-150 ")
    });
    engine.ok(&["rm", "-f", CONTAINER]);
    run_writer(&engine, "second", 200);
    wait_until("every line of the second container", LONG, || {
        journal_file(&cap.out, "server/homeserver.log").contains("POST-second-199 ")
    });
    let b = cap.stop();
    let kept = std::fs::read_to_string(b.join("server/homeserver.log")).unwrap();
    assert_each_once(&kept, "second", 200);
    // The first container's lines up to its removal, each once.
    let first = seqs(&kept, "first");
    assert!(first.values().all(|c| *c == 1), "{first:?}");
    let n = first.len() as u64;
    assert!(n > 150, "{n}");
    assert_each_once(&kept, "first", n);
    let m = manifest(&b);
    assert_eq!(m["sources"][0]["kind"], "docker");
    // Every line written is a KE-1 conflict.
    assert_eq!(m["counts"]["server"]["KE-1"], 200 + n);
}
