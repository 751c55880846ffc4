//! `live --debug-loggers` against a real OpenSSH sshd (started by the
//! harness) on every way out: SIGINT and SIGHUP headless, `q` and Ctrl-C in
//! the console, a dropped SSH link (reconnect, then revert), a revert whose
//! reload fails (loud, and `callcap revert` finishes it), a second callcap
//! (refused), and a panic (the library's guard, as the console uses it).
//!
//! The log config is a copy of Synapse's default with comments; "Synapse"
//! is its reload command, which snapshots the file it would re-read, so
//! each reload's levels can be checked. The real Synapse is in lab_e2e.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pty.rs"]
mod pty;
#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/bundle.rs"]
mod support;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use support::*;

const LOG_CONFIG: &str = r#"# Synapse's log config (as --generate-config writes it), with an edit of ours.
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.handlers.TimedRotatingFileHandler
    formatter: precise
    filename: /var/log/matrix-synapse/homeserver.log
    when: midnight
    backupCount: 3   # three days
    encoding: utf8
loggers:
    synapse.storage.SQL:
        # beware: increasing this to DEBUG will make synapse log sensitive
        # information such as access tokens.
        level: INFO
    synapse.handlers.e2e_keys: {level: WARNING}
root:
    level: INFO
    handlers: [file]
disable_existing_loggers: false
"#;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    log: PathBuf,
    log_config: PathBuf,
    reloads: PathBuf,
    out: PathBuf,
    config: PathBuf,
}

/// A server-side folder (the sshd runs here, so paths are the same) and a
/// config; `reload_guard`: a file whose presence makes the reload fail.
fn setup(s: &sshd::Sshd) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let log = dir.join("homeserver.log");
    std::fs::write(
        &log,
        "2026-06-30 17:59:59,000 - synapse.handlers.e2e_keys - 324 - DEBUG - POST-0 - before the raise\n",
    )
    .unwrap();
    let log_config = dir.join("log.yaml");
    std::fs::write(&log_config, LOG_CONFIG).unwrap();
    let reloads = dir.join("reloads");
    std::fs::create_dir_all(&reloads).unwrap();
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, s.known_hosts_line() + "\n").unwrap();
    std::fs::write(dir.join("ssh_config"), "").unwrap();
    let out = dir.join("out");
    let reload = format!(
        "test ! -e {d}/reload-fails && cp {c} {r}/$(date +%s%N).yaml",
        d = dir.display(),
        c = log_config.display(),
        r = reloads.display()
    );
    let config = dir.join("callcap.toml");
    std::fs::write(
        &config,
        format!(
            r#"[ssh]
host = "127.0.0.1"
port = {port}
user = "root"
identity-file = "{key}"
known-hosts = "{kh}"
ssh-config = "{sc}"
identity-agent = "none"

[server-log]
path = "{log}"

[bundle]
out = "{out}"

[debug-loggers]
log-config = "{lc}"
reload = {reload:?}
"#,
            port = s.port,
            key = s.keys.client_key.display(),
            kh = known_hosts.display(),
            sc = dir.join("ssh_config").display(),
            log = log.display(),
            out = out.display(),
            lc = log_config.display(),
        ),
    )
    .unwrap();
    Setup {
        _tmp: tmp,
        dir,
        log,
        log_config,
        reloads,
        out,
        config,
    }
}

impl Setup {
    fn journal(&self) -> String {
        journal_file(&self.out, "journal.jsonl")
    }

    fn start(&self) -> Live {
        Live::start(
            &["--debug-loggers", "--config", self.config.to_str().unwrap()],
            "0",
        )
    }

    fn wait_raised(&self) {
        // The log source follows from where the file ends when it goes
        // live: a line appended before that is not the capture's.
        wait_until(
            "the raise and the live log",
            Duration::from_secs(30),
            || {
                let j = self.journal();
                j.contains("\"step\":\"raised\"") && j.contains("\"state\":\"live\"")
            },
        );
        let now = std::fs::read_to_string(&self.log_config).unwrap();
        assert!(
            now.starts_with("# callcap-debug-loggers: raised by callcap"),
            "{now}"
        );
        assert!(
            now.contains("synapse.handlers.e2e_keys: {level: DEBUG}"),
            "{now}"
        );
        assert!(now.contains("    backupCount: 3   # three days\n"), "{now}");
    }

    /// What "Synapse" re-read at each reload, in order.
    fn reloads(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.reloads)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn append_log(&self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    }

    /// The file is as before and "Synapse" last re-read it with every
    /// logger's previous level written out.
    fn assert_reverted(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.log_config).unwrap(),
            LOG_CONFIG,
            "the log config is byte-identical"
        );
        let r = self.reloads();
        assert_eq!(r.len(), 2, "one reload to raise, one to revert");
        assert!(
            r[0].contains("synapse.rest.client.keys:\n      level: DEBUG"),
            "{}",
            r[0]
        );
        let last = &r[1];
        for want in [
            "synapse.handlers.e2e_keys: {level: WARNING}",
            "synapse.rest.client.keys:\n      level: NOTSET",
            "synapse.storage.databases.main.end_to_end_keys:\n      level: NOTSET",
            "synapse.handlers.devicemessage:\n      level: NOTSET",
        ] {
            assert!(
                last.contains(want),
                "{want:?} in the revert's reload:\n{last}"
            );
        }
        assert!(!last.contains("callcap-debug-loggers"), "{last}");
    }
}

#[test]
fn sigint_and_sighup_revert_and_the_bundle_says_so() {
    let s = sshd::Sshd::start();
    for signal in ["-INT", "-HUP"] {
        let t = setup(&s);
        let child = t.start();
        t.wait_raised();
        // A DEBUG line of a raised logger confirms the raise.
        t.append_log("2026-06-30 18:00:01,000 - synapse.handlers.e2e_keys - 324 - DEBUG - POST-1 - 0 destinations to query devices for\n");
        wait_until("the confirmation", Duration::from_secs(30), || {
            t.journal().contains("\"step\":\"confirmed\"")
        });
        let out = child.signal(signal);
        assert!(
            out.status.success(),
            "{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.assert_reverted();
        let bundle = bundle_path(&out);
        verify_checksums(&bundle);
        assert!(
            !bundle.join("debug-loggers").exists(),
            "no server config in the bundle"
        );
        let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
        assert!(report.contains("## DEBUG loggers"), "{report}");
        assert!(
            report.contains("- Confirmed:") && report.contains("`server/homeserver.log:1`"),
            "{report}"
        );
        assert!(report.contains("- Reverted:"), "{report}");
        assert!(!report.contains("REVERT FAILED"), "{report}");
        let checklist: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("checklist.json")).unwrap()).unwrap();
        let ev = |i: usize| checklist["steps"][i]["stamps"][0]["evidence"].to_string();
        assert!(ev(0).contains("DEBUG loggers raised"), "{}", ev(0));
        assert!(ev(9).contains("DEBUG loggers reverted"), "{}", ev(9));
    }
}

#[test]
fn a_dropped_ssh_link_is_reconnected_before_the_revert() {
    let mut s = sshd::Sshd::start();
    let t = setup(&s);
    let child = t.start();
    t.wait_raised();
    // The server goes away with every connection; it is back 2 s later.
    s.kill_all();
    child.send("-TERM");
    std::thread::sleep(Duration::from_secs(2));
    s.restart();
    let out = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.assert_reverted();
}

#[test]
fn a_failed_revert_is_loud_and_callcap_revert_finishes_it() {
    let s = sshd::Sshd::start();
    let t = setup(&s);
    let child = t.start();
    t.wait_raised();
    // Synapse cannot be reloaded any more.
    std::fs::write(t.dir.join("reload-fails"), "").unwrap();
    let out = child.signal("-TERM");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("REVERT FAILED"), "{stderr}");
    let bundle = bundle_path(&out);
    assert!(
        stderr.contains(&format!("callcap revert {}", bundle.display())),
        "{stderr}"
    );
    verify_checksums(&bundle);
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    assert!(report.contains("**REVERT FAILED**"), "{report}");
    assert!(
        report.contains(&format!("`callcap revert {}`", bundle.display())),
        "{report}"
    );
    let checklist = std::fs::read_to_string(bundle.join("checklist.json")).unwrap();
    let c: serde_json::Value = serde_json::from_str(&checklist).unwrap();
    assert!(
        c["never_done"].as_array().unwrap().iter().any(|v| v == 10),
        "step 10 is not done: {checklist}"
    );
    // The bundle keeps what the revert needs; with Synapse back, it works.
    assert!(bundle.join("debug-loggers/log-config.original").is_file());
    std::fs::remove_file(t.dir.join("reload-fails")).unwrap();
    let r = callcap(&["revert", bundle.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("DEBUG loggers reverted"));
    assert_eq!(std::fs::read_to_string(&t.log_config).unwrap(), LOG_CONFIG);
}

#[test]
fn a_second_callcap_refuses_and_names_the_first() {
    let s = sshd::Sshd::start();
    let t = setup(&s);
    let first = t.start();
    t.wait_raised();
    let raised = std::fs::read(&t.log_config).unwrap();
    let second_out = t.dir.join("out2");
    let second = Live::start(
        &[
            "--debug-loggers",
            "--config",
            t.config.to_str().unwrap(),
            "--out",
            second_out.to_str().unwrap(),
        ],
        "0",
    );
    wait_until("the refusal", Duration::from_secs(30), || {
        journal_file(&second_out, "journal.jsonl").contains("\"step\":\"raise-failed\"")
    });
    let j = journal_file(&second_out, "journal.jsonl");
    assert!(
        j.contains("already has DEBUG loggers raised by another callcap")
            && j.contains(&format!("pid {}", first.id())),
        "{j}"
    );
    let out = second.signal("-TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&t.log_config).unwrap(),
        raised,
        "the second left it alone"
    );
    let out = first.signal("-TERM");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.assert_reverted();
}

#[test]
fn quitting_the_console_with_q_or_ctrl_c_reverts() {
    let s = sshd::Sshd::start();
    for keys in [&b"q"[..], &b"\x03"[..]] {
        let t = setup(&s);
        let mut tui = pty::Tui::spawn(
            &bin(),
            &[
                "live",
                "--debug-loggers",
                "--config",
                t.config.to_str().unwrap(),
            ],
            120,
            40,
        );
        tui.wait_for("the raise on screen", Duration::from_secs(30), |sc| {
            sc.contains("DEBUG loggers raised")
        });
        t.wait_raised();
        tui.send(keys);
        if keys == b"q" {
            tui.wait_for("the quit dialog", Duration::from_secs(10), |sc| {
                sc.contains("Bundle label")
            });
            tui.send(b"\r");
        }
        assert_eq!(
            tui.wait_exit(Duration::from_secs(60)),
            Some(0),
            "{}",
            tui.screen()
        );
        t.assert_reverted();
    }
}

/// A panic in the capture: the guard `callcap live` runs it in reverts
/// once the runtime is gone, then lets the panic go on.
#[test]
fn a_panic_in_the_capture_is_reverted_before_it_goes_on() {
    use callcap::debug_loggers::{Handle, Target, guarded, state};
    let tmp = tempfile::tempdir().unwrap();
    let log_config = tmp.path().join("log.yaml");
    std::fs::write(&log_config, LOG_CONFIG).unwrap();
    let journal = tmp.path().join(".callcap-journal-test");
    std::fs::create_dir_all(journal.join("server")).unwrap();
    let target = Target {
        ssh: None,
        exec_prefix: None,
        log_config: log_config.display().to_string(),
        loggers: callcap::config::default_debug_loggers(),
        reload: "true".into(),
    };
    let h = Handle::new(target);
    let h2 = h.clone();
    let j = journal.clone();
    let lc = log_config.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        guarded(
            Some(&h),
            |_, _, _| {},
            move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async move {
                    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
                    let log = j.join("server/homeserver.log");
                    let _task = h2.start(j, log, tx, None, stop_rx);
                    while let Some(ev) = rx.recv().await {
                        if format!("{ev:?}").contains("Raised") {
                            break;
                        }
                    }
                    assert!(
                        std::fs::read_to_string(&lc)
                            .unwrap()
                            .starts_with("# callcap-debug-loggers")
                    );
                    panic!("a bug in the capture");
                })
            },
        )
    }));
    assert!(r.is_err(), "the panic goes on");
    assert_eq!(std::fs::read_to_string(&log_config).unwrap(), LOG_CONFIG);
    assert!(state::done(&journal).is_some(), "recorded as put back");
}
