//! The whole capture against a real homeserver: `scripts/lab` starts
//! PostgreSQL, Synapse (pinned, from PyPI) and sshd on loopback;
//! `callcap live --headless` follows Synapse's log over SSH and polls its
//! database through the SSH tunnel while `scripts/lab_call.py` drives a call
//! through the runbook's fault chain with the real client-server API. After
//! SIGTERM the bundle must hold what Synapse really logged and stored, and
//! the verdicts the runbook's tree gives for that call.
//!
//! A second call stalls Synapse (SIGSTOP/SIGCONT) instead of slowing its
//! database: its request times stay healthy, and Q4 must still say
//! homeserver latency.
//!
//! Then, on the same lab: `--debug-loggers` raises the runbook's loggers in
//! Synapse's real log config (reloaded with SIGHUP), the bundle holds DEBUG
//! lines of `synapse.handlers.e2e_keys`, and after SIGTERM — and after
//! `kill -9` followed by `callcap recover` — the file is byte-identical and
//! Synapse logs no DEBUG line of those loggers for the same requests. And
//! `callcap check` passes on the lab's config.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// The lab, stopped (and everything it started with it) on drop.
struct Lab {
    child: Child,
    dir: tempfile::TempDir,
    info: Value,
}

impl Lab {
    fn start() -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("callcap-lab-test-")
            .tempdir_in("/tmp")
            .unwrap();
        let child = Command::new("python3")
            .arg(repo().join("scripts/lab"))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 scripts/lab");
        // From here on, a failure stops the lab (Drop).
        let mut lab = Lab {
            child,
            dir,
            info: Value::Null,
        };
        let stdout = lab.child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Creating the virtualenv the first time takes a while.
        let start = Instant::now();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("lab ready: ") => break,
                Some(Ok(_)) => {}
                _ => panic!(
                    "scripts/lab ended before it was ready ({:?}; status {:?})",
                    start.elapsed(),
                    lab.child.try_wait()
                ),
            }
        }
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        lab.info = serde_json::from_str(
            &std::fs::read_to_string(lab.dir.path().join("lab.json")).unwrap(),
        )
        .unwrap();
        lab
    }

    fn s(&self, path: &[&str]) -> String {
        let mut v = &self.info;
        for p in path {
            v = &v[p];
        }
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn synapse_log(&self) -> String {
        std::fs::read_to_string(self.s(&["synapse", "log"])).unwrap()
    }

    /// A /keys/upload and a /keys/query by alice: the requests the raised
    /// loggers log DEBUG lines on (in Synapse 1.163, /keys/query's
    /// `synapse.handlers.e2e_keys` "… destinations to query devices for").
    fn keys(&self) {
        let out = Command::new(self.s(&["synapse", "python"]))
            .arg(repo().join("scripts/lab_call.py"))
            .arg("--lab")
            .arg(self.dir.path().join("lab.json"))
            .arg("--keys")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab_call.py --keys: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DEBUG lines of the runbook's four loggers in `text`.
    fn debug_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| {
                DEBUG_LOGGERS
                    .iter()
                    .any(|n| l.contains(&format!(" - {n} - ")) && l.contains(" - DEBUG - "))
            })
            .collect()
    }

    /// Makes the /keys requests and waits until Synapse has logged them
    /// (its INFO lines are buffered for up to 5 s, DEBUG lines with them);
    /// returns what it logged from `from` on.
    fn keys_logged(&self, from: usize) -> String {
        self.keys();
        let mut text = String::new();
        wait_until(
            "Synapse's lines of the /keys requests",
            Duration::from_secs(30),
            || {
                text = self.synapse_log()[from..].to_string();
                text.contains("\"POST /_matrix/client/v3/keys/query")
            },
        );
        text
    }

    /// Runs the call driver; returns its call-result.json.
    fn call(&self, ke4: &str) -> Value {
        let out = Command::new(self.s(&["synapse", "python"]))
            .arg(repo().join("scripts/lab_call.py"))
            .arg("--lab")
            .arg(self.dir.path().join("lab.json"))
            .args(["--ke4", ke4])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "call driver failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("call-result.json")).unwrap(),
        )
        .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

fn journal(out: &Path) -> String {
    journal_file(out, "journal.jsonl")
}

/// The server log captured so far (the journal's `server/homeserver.log`).
fn journal_log(out: &Path) -> String {
    journal_file(out, "server/homeserver.log")
}

const DEBUG_LOGGERS: [&str; 4] = [
    "synapse.rest.client.keys",
    "synapse.handlers.e2e_keys",
    "synapse.storage.databases.main.end_to_end_keys",
    "synapse.handlers.devicemessage",
];

/// `callcap live --headless` on the lab's config, writing under `out`;
/// returns once the log is followed over SSH and the database was read.
fn start_callcap(lab: &Lab, out: &Path, label: &str) -> Live {
    start_callcap_with(lab, out, label, &[])
}

fn start_callcap_with(lab: &Lab, out: &Path, label: &str, extra: &[&str]) -> Live {
    let config = lab.s(&["config"]);
    let mut args = vec!["--label", label];
    args.extend(extra);
    args.extend(["--config", &config, "--out", out.to_str().unwrap()]);
    let cc = Live::start(&args, "1");
    wait_live(
        out,
        &["server-log", "database"],
        "the log over SSH and the database through the tunnel",
        Duration::from_secs(60),
    );
    cc
}

fn verdict(m: &Value, q: &str) -> (String, String) {
    (
        m["verdicts"][q]["answer"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        m["verdicts"][q]["summary"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

/// Lines of `text` that contain `needle`.
fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_real_synapse_call_through_the_whole_fault_chain() {
    let lab = Lab::start();
    let outs = tempfile::tempdir().unwrap();

    // --- Call 1: the runbook's chain, the database made slow by a lock. ---
    let out1 = outs.path().join("call1");
    let before = lab.synapse_log().len();
    let cc = start_callcap(&lab, &out1, "lab-lock");
    let result = lab.call("lock");
    let diag = result["diag"].as_str().unwrap().to_string();
    wait_until(
        "the diag report and HAR to be captured",
        Duration::from_secs(30),
        || {
            let j = journal(&out1);
            j.contains(&diag) && j.contains("127.0.0.1.har")
        },
    );
    // Synapse buffers INFO lines for up to 5 s: wait until every conflict
    // it logged has reached the capture.
    let result_conflicts = result["ke1_conflicts"].as_u64().unwrap() as usize;
    wait_until(
        "Synapse's last lines in the capture",
        Duration::from_secs(30),
        || {
            count(&lab.synapse_log()[before..], "already exists") == result_conflicts
                && count(&journal_log(&out1), "already exists") == result_conflicts
        },
    );
    // Two more polls, so the last snapshot has the final state.
    std::thread::sleep(Duration::from_millis(2500));
    let bundle = cc.stop();
    let m = manifest(&bundle);
    verify_checksums(&bundle);
    let log = lab.synapse_log();
    let during = &log[before..];

    // Every KE-1 conflict Synapse logged (and the driver saw) is in KE-1.log.
    let conflicts = count(during, "already exists");
    assert!(conflicts >= 5, "{conflicts} conflicts in Synapse's log");
    assert_eq!(
        conflicts as u64,
        result["ke1_conflicts"].as_u64().unwrap(),
        "the driver's 400s"
    );
    let ke1 = std::fs::read_to_string(bundle.join("server/KE-1.log")).unwrap();
    assert_eq!(count(&ke1, "already exists"), conflicts, "KE-1.log");
    // What was captured is one unbroken run of Synapse's log: nothing
    // dropped, reordered or altered (it holds no secret to redact).
    let hs = std::fs::read_to_string(bundle.join("server/homeserver.log")).unwrap();
    assert_eq!(m["redactions"]["server/homeserver.log"].as_u64(), Some(0));
    assert!(count_lines(hs.as_bytes()) > 100, "{hs}");
    assert!(
        during.contains(&hs),
        "the captured log is not a contiguous run of Synapse's"
    );

    // The client's report and HAR, with the real tokens redacted everywhere.
    assert!(bundle.join("client").join(&diag).is_file());
    assert!(bundle.join("client/127.0.0.1.har").is_file());
    let har: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("client/127.0.0.1.har")).unwrap())
            .unwrap();
    let auth: Vec<&Value> = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["request"]["headers"].as_array().unwrap())
        .filter(|h| h["name"] == "Authorization")
        .map(|h| &h["value"])
        .collect();
    assert!(!auth.is_empty(), "the HAR lost its Authorization headers");
    assert!(auth.iter().all(|v| *v == "<redacted>"), "{auth:?}");
    for token in result["tokens"].as_array().unwrap() {
        let token = token.as_str().unwrap();
        assert!(token.starts_with("syt_"), "{token}");
        for f in walk(&bundle) {
            let data = std::fs::read(&f).unwrap();
            assert!(
                !data.windows(token.len()).any(|w| w == token.as_bytes()),
                "the access token leaked into {}",
                f.display()
            );
        }
    }
    assert!(m["redactions"]["client/127.0.0.1.har"].as_u64().unwrap() >= 1);
    // Synapse's real tokens name their user (the token itself is kept
    // nowhere): the HAR is alice's, the subject's, and feeds the verdicts.
    let entries = std::fs::read_to_string(bundle.join("journal.jsonl")).unwrap();
    assert!(
        entries.contains(r#""token_users":["alice"]"#),
        "the HAR's requests were not read as alice's"
    );
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    assert!(!report.contains("not the subject"), "{report}");

    // The database's view changed during the call: the driver's one-time
    // keys appeared and to-device messages piled up for alice's device.
    let changes = std::fs::read_to_string(bundle.join("db/changes.jsonl")).unwrap();
    let conflict_id = result["conflict_key_id"].as_str().unwrap();
    assert!(
        changes
            .lines()
            .any(|l| l.contains("otk_inventory") && l.contains(conflict_id)),
        "otk_inventory change for {conflict_id}:\n{changes}"
    );
    assert!(
        changes.lines().any(|l| l.contains("device_inbox_pending")),
        "device_inbox_pending change:\n{changes}"
    );

    // The runbook's decision tree for this call.
    let expect = [
        ("Q1", "divergence"),
        ("Q2", "linked"),
        ("Q3", "malformed-event"),
        ("Q4", "homeserver-latency"),
    ];
    for (q, want) in expect {
        let (answer, summary) = verdict(&m, q);
        assert_eq!(answer, want, "{q}: {summary}");
    }
    // Q1 cites each side of the conflict: Synapse's error, the client's
    // report and the HAR exchange, however long the server's storm.
    let q1_basis: Vec<&str> = m["verdicts"]["Q1"]["basis"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    for kind in ["server/KE-1.log:", "#entries[", ".har#log.entries["] {
        assert!(
            q1_basis.iter().any(|b| b.contains(kind)),
            "Q1 cites no {kind}: {q1_basis:?}"
        );
    }
    // Synapse 1.163's schema lacks columns the runbook's queries name: the
    // poller says so and adapts.
    let journaled = std::fs::read_to_string(bundle.join("journal.jsonl")).unwrap();
    for col in ["e2e_fallback_keys_json.ts_added_ms", "devices.ts"] {
        assert!(
            journaled.contains(&format!("column {col} is absent here")),
            "no adaptation note for {col}"
        );
    }
    let (_, q3) = verdict(&m, "Q3");
    assert!(
        q3.contains(result["ke3_event_id"].as_str().unwrap()),
        "{q3}"
    );
    assert_basis_resolves(&bundle);

    // --- Call 2: Synapse stalls; its own request times stay healthy. ---
    let out2 = outs.path().join("call2");
    let before = lab.synapse_log().len();
    let cc = start_callcap(&lab, &out2, "lab-stall");
    let result = lab.call("stall");
    assert!(
        result["restart_timeouts"].as_u64().unwrap() >= 1,
        "{result}"
    );
    let diag = result["diag"].as_str().unwrap().to_string();
    wait_until("the second diag report", Duration::from_secs(30), || {
        journal(&out2).contains(&diag)
    });
    let bundle = cc.stop();
    let log = lab.synapse_log();
    let during = &log[before..];
    // No restart request took as long as the client's timeout...
    for l in during
        .lines()
        .filter(|l| l.contains("Processed request") && l.contains("delayed_events"))
    {
        let secs: f64 = l
            .split("Processed request: ")
            .nth(1)
            .and_then(|r| r.split("sec").next())
            .and_then(|t| t.parse().ok())
            .unwrap();
        assert!(secs < 2.0, "a slow restart in a stall-only call: {l}");
    }
    // ...yet the timeouts are the homeserver's.
    let m = manifest(&bundle);
    let (answer, summary) = verdict(&m, "Q4");
    assert_eq!(answer, "homeserver-latency", "Q4: {summary}");
    assert!(summary.contains("stall"), "{summary}");
    assert_basis_resolves(&bundle);

    debug_loggers_on_a_real_synapse(&lab, outs.path());
    check_on_the_labs_config(&lab);

    // Stopping the lab stops everything it started.
    let pid = lab.s(&["synapse", "pid"]);
    let ports = [lab.s(&["ssh", "port"]), lab.s(&["postgres", "port"])];
    drop(lab);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "Synapse (pid {pid}) outlived the lab"
    );
    for port in ports {
        assert!(
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
            "something still listens on 127.0.0.1:{port}"
        );
    }
}

/// `--debug-loggers` against Synapse's real log config: raised and
/// confirmed during the capture; after SIGTERM, and after `kill -9` plus
/// `callcap recover`, the file is byte-identical and Synapse no longer logs
/// those loggers at DEBUG (deleting their entries would not do that: on
/// reload Python keeps a level whose entry is gone).
fn debug_loggers_on_a_real_synapse(lab: &Lab, outs: &Path) {
    let log_config = PathBuf::from(lab.s(&["synapse", "log_config"]));
    let original = std::fs::read(&log_config).unwrap();
    // Nothing logs them at DEBUG before the raise.
    let from = lab.synapse_log().len();
    let before = lab.keys_logged(from);
    assert_eq!(
        Lab::debug_lines(&before),
        Vec::<&str>::new(),
        "DEBUG before the raise"
    );

    // --- SIGTERM ---
    let out = outs.join("debug-sigterm");
    let cc = start_callcap_with(lab, &out, "lab-debug", &["--debug-loggers"]);
    wait_until("the raise", Duration::from_secs(30), || {
        journal(&out).contains("\"step\":\"raised\"")
    });
    let raised = std::fs::read_to_string(&log_config).unwrap();
    assert!(
        raised.starts_with("# callcap-debug-loggers: raised by callcap"),
        "{raised}"
    );
    lab.keys();
    wait_until(
        "a DEBUG line of e2e_keys in the capture",
        Duration::from_secs(30),
        || journal(&out).contains("\"step\":\"confirmed\""),
    );
    let bundle = cc.stop();
    assert_eq!(
        std::fs::read(&log_config).unwrap(),
        original,
        "byte-identical after SIGTERM"
    );
    let captured = std::fs::read_to_string(bundle.join("server/homeserver.log")).unwrap();
    assert!(
        Lab::debug_lines(&captured)
            .iter()
            .any(|l| l.contains(" - synapse.handlers.e2e_keys - ")),
        "no DEBUG line of synapse.handlers.e2e_keys in the bundle"
    );
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    assert!(
        report.contains("- Reverted:") && !report.contains("REVERT FAILED"),
        "{report}"
    );
    verify_checksums(&bundle);
    let from = lab.synapse_log().len();
    let after = lab.keys_logged(from);
    assert_eq!(
        Lab::debug_lines(&after),
        Vec::<&str>::new(),
        "DEBUG after the revert"
    );

    // --- kill -9, then callcap recover ---
    let out = outs.join("debug-kill9");
    let cc = start_callcap_with(lab, &out, "lab-debug-9", &["--debug-loggers"]);
    wait_until("the raise", Duration::from_secs(30), || {
        journal(&out).contains("\"step\":\"raised\"")
    });
    cc.kill_9();
    assert_ne!(
        std::fs::read(&log_config).unwrap(),
        original,
        "still raised after kill -9"
    );
    let from = lab.synapse_log().len();
    let raised_logs = lab.keys_logged(from);
    assert!(
        !Lab::debug_lines(&raised_logs).is_empty(),
        "Synapse still logs DEBUG before recover"
    );
    let r = callcap(&["recover", "--out", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("DEBUG loggers reverted"));
    assert_eq!(
        std::fs::read(&log_config).unwrap(),
        original,
        "byte-identical after recover"
    );
    let recovered = bundle_path(&r);
    let report = std::fs::read_to_string(recovered.join("report.md")).unwrap();
    assert!(report.contains("- Reverted:"), "{report}");
    verify_checksums(&recovered);
    let from = lab.synapse_log().len();
    let after = lab.keys_logged(from);
    assert_eq!(
        Lab::debug_lines(&after),
        Vec::<&str>::new(),
        "DEBUG after recover"
    );
}

/// `callcap check` on the config scripts/lab wrote: every check passes.
fn check_on_the_labs_config(lab: &Lab) {
    let out = callcap(&["check", "--config", &lab.s(&["config"])]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(['✓', '✗']))
        .collect();
    assert!(lines.len() >= 9, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with('✓')), "{stdout}");
    assert!(stdout.contains("✓ debug loggers:"), "{stdout}");
}
