//! `callcap live --headless` on local sources: a followed log file and a
//! watched downloads folder; SIGTERM and SIGHUP write the bundle with every
//! line captured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

fn journal_text(out: &Path) -> String {
    journal_file(out, "journal.jsonl")
}

fn start(dir: &Path) -> (Live, PathBuf, PathBuf, PathBuf) {
    let log = dir.join("homeserver.log");
    std::fs::write(&log, "2026-06-30 17:59:59,000 - synapse.x - 1 - INFO - sentinel - before the capture keys/upload\n").unwrap();
    let downloads = dir.join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let out = dir.join("out");
    let cfg = dir.join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server-log]\npath = {:?}\n\n[client]\ndownloads = {:?}\n\n[call]\nuser-id = \"@alice:lotus.example\"\ndevice-id = \"RWDSUMBAID\"\n\n[bundle]\nout = {:?}\n",
            log, downloads, out
        ),
    )
    .unwrap();
    let child = Live::start(&["--config", cfg.to_str().unwrap()], "0");
    wait_followed(&out);
    (child, log, downloads, out)
}

fn wait_followed(out: &Path) {
    wait_live(
        out,
        &["server-log"],
        "the log to be followed",
        Duration::from_secs(30),
    );
}

#[test]
fn sigterm_writes_a_bundle_with_every_line_and_the_download() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, log, downloads, out) = start(tmp.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut written = String::new();
    for i in 0..2000 {
        let line = format!(
            "2026-06-30 18:00:{:02},{:03} - synapse.http.server - 131 - INFO - POST-{i} - One time key signed_curve25519:AAAA already exists. Old key: {{\"key\":\"a\"}}; new key: {{'key': 'b'}}\n",
            i / 100 % 60,
            i % 1000
        );
        f.write_all(line.as_bytes()).unwrap();
        written.push_str(&line);
    }
    // The last line is still being written when the capture stops.
    f.write_all(b"2026-06-30 18:01:00,000 - synapse.x - 1 - INFO - sentinel - half")
        .unwrap();
    written.push_str("2026-06-30 18:01:00,000 - synapse.x - 1 - INFO - sentinel - half");
    drop(f);
    // A browser download: partial name first, grown, then renamed.
    let part = downloads.join("lotus-crypto-diag-1782842680000.json.crdownload");
    std::fs::write(
        &part,
        b"{\"userId\": \"@alice:lotus.example\", \"entries\": [",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut p = std::fs::OpenOptions::new()
        .append(true)
        .open(&part)
        .unwrap();
    p.write_all(br#"{"ts": 1782842410000, "level": "error", "message": "MissingKey: missing key at index 2 for participant @bob:lotus.example"}]}"#).unwrap();
    drop(p);
    std::fs::rename(
        &part,
        downloads.join("lotus-crypto-diag-1782842680000.json"),
    )
    .unwrap();
    wait_until(
        "the download and all lines to be journaled",
        Duration::from_secs(30),
        || {
            let j = journal_text(&out);
            j.contains("lotus-crypto-diag-1782842680000.json")
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let bundle = child.stop();
    verify_checksums(&bundle);
    let kept = std::fs::read_to_string(bundle.join("server/homeserver.log")).unwrap();
    assert_eq!(
        kept, written,
        "every byte after the start, nothing before it"
    );
    let m = manifest(&bundle);
    assert_eq!(m["counts"]["server"]["KE-1"], 2000);
    assert_eq!(m["counts"]["client"]["KE-2"], 1);
    assert!(
        bundle
            .join("client/lotus-crypto-diag-1782842680000.json")
            .is_file()
    );
    let checklist: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("checklist.json")).unwrap())
            .unwrap();
    let done: Vec<u64> = checklist["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["done"] == true)
        .map(|s| s["step"].as_u64().unwrap())
        .collect();
    assert!(
        done.contains(&1) && done.contains(&7) && done.contains(&10),
        "auto-ticked steps: {done:?}"
    );
}

#[test]
fn sighup_also_writes_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, log, _downloads, out) = start(tmp.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - after delayed_event\n",
    )
    .unwrap();
    drop(f);
    wait_until("the line to be journaled", Duration::from_secs(30), || {
        std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                std::fs::read_to_string(e.path().join("server/homeserver.log"))
                    .is_ok_and(|t| t.contains("after delayed_event"))
            })
    });
    let bundle = child.stop_with("-HUP");
    assert_eq!(manifest(&bundle)["counts"]["server"]["KE-4"], 1);
}

#[test]
fn a_config_error_exits_2_before_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "[server-log]\npath = \"/x\"\ncolour = \"red\"\n").unwrap();
    let out = callcap(&["live", "--headless", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("colour"), "{err}");
}

#[test]
fn a_journal_left_by_kill_9_is_recovered_into_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, log, _downloads, out) = start(tmp.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut written = String::new();
    for i in 0..500 {
        let line = format!(
            "2026-06-30 18:00:{:02},000 - synapse.x - 1 - INFO - sentinel - line {i} keys/upload\n",
            i % 60
        );
        f.write_all(line.as_bytes()).unwrap();
        written.push_str(&line);
    }
    drop(f);
    wait_until("the lines to be journaled", Duration::from_secs(30), || {
        std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                std::fs::read_to_string(e.path().join("server/homeserver.log"))
                    .is_ok_and(|t| t.contains("line 499 "))
            })
    });
    child.kill_9(); // no export
    let o = callcap(&["recover", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bundle = bundle_path(&o);
    verify_checksums(&bundle);
    assert_eq!(
        std::fs::read_to_string(bundle.join("server/homeserver.log")).unwrap(),
        written
    );
    assert_eq!(manifest(&bundle)["counts"]["server"]["KE-1"], 500);
    // A recovered bundle has its report.html, the minute drawn from the journal.
    let d = figure_data(&bundle);
    assert_eq!(d["ke"]["KE-1"]["server"][0], 500, "{}", d["ke"]);
    // The journal is marked recovered, so a second recover finds nothing.
    let again = callcap(&["recover", "--out", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
}

/// A real failure to write: the capture runs with a file-size limit
/// (`ulimit -f`, SIGXFSZ ignored, as a full disk or a quota would make
/// writes fail), so the server log's copy cannot grow past 64 KiB. The
/// console goes on, says so, and the bundle is written with what is there,
/// says what is missing, and exits 1.
#[test]
fn a_journal_that_cannot_be_written_gives_an_incomplete_bundle_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = dir.join("homeserver.log");
    std::fs::write(&log, "").unwrap();
    let out = dir.join("out");
    let cfg = dir.join("callcap.toml");
    std::fs::write(
        &cfg,
        format!("[server-log]\npath = {log:?}\n\n[bundle]\nout = {out:?}\n"),
    )
    .unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec {:?} live --headless --config {:?}",
        bin(),
        cfg
    );
    let child = Live::spawn(
        Command::new("bash")
            .args(["-c", &script])
            .env("RUST_BACKTRACE", "0"),
    );
    wait_followed(&out);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..3000 {
        writeln!(
            f,
            "2026-06-30 18:00:{:02},{:03} - synapse.x - 1 - INFO - GET-{i} - a line of the homeserver's log keys/upload",
            i / 100 % 60,
            i % 1000
        )
        .unwrap();
    }
    drop(f);
    wait_until("the write to fail", Duration::from_secs(30), || {
        journal_text(&out).contains("File too large")
    });
    let o = child.signal("-TERM");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is incomplete") && stderr.contains("server/homeserver.log"),
        "{stderr}"
    );
    let bundle = bundle_path(&o);
    // What is there is checksummed as it is.
    verify_checksums(&bundle);
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    let section = report
        .split("## Missing from this bundle")
        .nth(1)
        .unwrap_or_else(|| panic!("no missing section: {report}"));
    assert!(
        section.contains("server/homeserver.log: cannot write the server log")
            && section.contains("File too large"),
        "{section}"
    );
    let m = manifest(&bundle);
    assert!(
        m["missing"].as_array().is_some_and(|a| a.iter().any(|x| x
            .as_str()
            .is_some_and(|x| x.starts_with("server/homeserver.log")))),
        "{m}"
    );
    let kept = std::fs::metadata(bundle.join("server/homeserver.log"))
        .unwrap()
        .len();
    assert!(kept <= 64 * 1024, "{kept}");
}
