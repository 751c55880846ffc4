//! Demo and replay, headless: a replay ends by itself, writes its own bundle,
//! and its counts, markers and verdicts equal the original's, for every kind
//! of bundle (the demo, `analyze` with and without a database; a live
//! capture's is in `live_loop.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod bundle;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/scenario.rs"]
mod scenario;

use bundle::*;
use scenario::*;
use std::path::Path;

/// `callcap replay BUNDLE --headless` into `out`: the new bundle.
fn replay(bundle: &Path, out: &Path) -> std::path::PathBuf {
    let b = callcap_bundle(&[
        "replay",
        bundle.to_str().unwrap(),
        "--headless",
        "--speed",
        "1000",
        "--out",
        out.to_str().unwrap(),
    ]);
    verify_checksums(&b);
    b
}

/// The markers as the manifest lists them, without the checklist step
/// they were made at (a replay ticks "server log live" by itself, which an
/// `analyze` run never does).
fn markers(m: &serde_json::Value) -> Vec<serde_json::Value> {
    m["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut x = x.clone();
            x.as_object_mut().unwrap().remove("checklist_step");
            x
        })
        .collect()
}

/// The replay of `a` has its counts, markers, verdicts and server log.
fn assert_replays_the_same(a: &Path, b: &Path) {
    let (ma, mb) = (manifest(a), manifest(b));
    assert_eq!(ma["counts"], mb["counts"]);
    assert_eq!(markers(&ma), markers(&mb));
    assert_eq!(
        ma["verdicts"],
        mb["verdicts"],
        "{}\nreplayed:\n{}",
        serde_json::to_string_pretty(&ma["verdicts"]).unwrap(),
        serde_json::to_string_pretty(&mb["verdicts"]).unwrap()
    );
    assert_eq!(
        std::fs::read(a.join("server/homeserver.log")).unwrap(),
        std::fs::read(b.join("server/homeserver.log")).unwrap()
    );
    assert_basis_resolves(b);
}

/// A call where KE-1 and KE-2 go together (Q2 `linked`), a KE-3 id given by
/// hand, and a marker; the report is read today (its file time), months
/// after the call.
fn linked_call(name: &'static str) -> Scenario {
    let mut s = Scenario::new(name);
    let mut log = otk_conflict(500, 9, KEY_ID, STORED, UPLOADED);
    for i in 0..4u32 {
        let ms = 2_000 + i as i64 * 5_000;
        log.push(send_to_device(ms, 20 + i, BOB));
        log.push(to_device_stored(ms + 5, 20 + i, ME, DEV));
    }
    log.push(format!(
        "{} - synapse.handlers.message - 1021 - INFO - PUT-2 - Persisted event {EVENT} in room !call:lotus.example",
        ts(9_000)
    ));
    log.push(filler(30_000, 40));
    s.log = log;
    s.diag = vec![
        ke1_entry(600),
        unexpected_encrypted(2_100),
        missing_key(2_500),
        unexpected_encrypted(7_100),
    ];
    s.event_ids = vec![EVENT.to_string()];
    s.marks = vec![mark(8_000, "video froze"), mark(12_000, "")];
    s
}

const EVENT: &str = "$GivenByHand:lotus.example";

#[test]
fn an_analyze_bundle_without_a_database_replays_to_the_same_counts_markers_and_verdicts() {
    let o = linked_call("replay-no-db").run();
    assert_eq!(o.answer("Q2"), "linked", "{}", o.verdicts);
    let m = manifest(&o.bundle);
    assert_eq!(m["markers"].as_array().unwrap().len(), 2);
    assert!(m["counts"]["server"]["KE-3"].as_u64().unwrap() > 0);
    assert!(m["counts"]["client"]["KE-2"].as_u64().unwrap() > 0);
    let tmp = tempfile::tempdir().unwrap();
    let b = replay(&o.bundle, tmp.path());
    assert_replays_the_same(&o.bundle, &b);
    // And a replay of the replay.
    let c = replay(&b, &tmp.path().join("again"));
    assert_replays_the_same(&o.bundle, &c);
}

#[test]
fn an_analyze_bundle_with_a_database_replays_to_the_same_counts_markers_and_verdicts() {
    recent_call();
    let mut s = linked_call("replay-with-db");
    s.db = Db::Rows(format!(
        "{}{}{}",
        otk_row(KEY_ID, STORED),
        fallback_row(false),
        inbox_rows(ME, DEV, 4)
    ));
    let o = s.run();
    o.expect(["divergence", "linked", INSUFFICIENT, INSUFFICIENT]);
    let tmp = tempfile::tempdir().unwrap();
    let b = replay(&o.bundle, tmp.path());
    assert_replays_the_same(&o.bundle, &b);
    assert_eq!(
        std::fs::read(o.bundle.join("db/last.json")).unwrap(),
        std::fs::read(b.join("db/last.json")).unwrap()
    );
}

#[test]
fn a_headless_replay_of_the_demo_bundle_reproduces_its_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let a_out = tmp.path().join("a");
    let a = callcap_bundle(&[
        "demo",
        "--headless",
        "--speed",
        "400",
        "--out",
        a_out.to_str().unwrap(),
    ]);
    verify_checksums(&a);
    let ma = manifest(&a);
    let server = &ma["counts"]["server"];
    for ke in ["KE-1", "KE-2", "KE-3", "KE-4"] {
        assert!(
            server[ke].as_u64().unwrap() > 0,
            "the demo shows {ke} on the server: {server}"
        );
        assert!(
            ma["counts"]["client"][ke].as_u64().unwrap() > 0,
            "the demo shows {ke} in the client"
        );
    }
    // The demo walks the runbook's chain end to end.
    let v = &ma["verdicts"];
    assert_eq!(v["Q1"]["answer"], "divergence", "{v}");
    assert_eq!(v["Q2"]["answer"], "linked", "{v}");
    assert_eq!(v["Q3"]["answer"], "malformed-event", "{v}");
    assert_eq!(v["Q4"]["answer"], "homeserver-latency", "{v}");

    let b_out = tmp.path().join("b");
    let b = callcap_bundle(&[
        "replay",
        a.to_str().unwrap(),
        "--headless",
        "--speed",
        "400",
        "--out",
        b_out.to_str().unwrap(),
    ]);
    assert!(b.starts_with(&b_out));
    verify_checksums(&b);
    let mb = manifest(&b);
    assert_eq!(ma["counts"], mb["counts"]);
    assert_eq!(
        std::fs::read(a.join("server/homeserver.log")).unwrap(),
        std::fs::read(b.join("server/homeserver.log")).unwrap()
    );
    assert_eq!(ma["verdicts"], mb["verdicts"]);
    // Both pages draw the same minutes. The window ends when each run
    // stopped: at 400x a few real milliseconds more are a minute more of
    // virtual time, so trailing empty minutes may differ; none with data.
    let (fa, fb) = (figure_data(&a), figure_data(&b));
    assert_eq!(fa["first_bucket"], fb["first_bucket"]);
    assert_eq!(ke_minutes(&fa), ke_minutes(&fb));
}

/// Each KE's per-minute server and client counts, trailing empty minutes
/// left out.
fn ke_minutes(fig: &serde_json::Value) -> Vec<(String, Vec<u64>, Vec<u64>)> {
    let trim = |v: &serde_json::Value| {
        let mut n: Vec<u64> = v
            .as_array()
            .expect("a series")
            .iter()
            .map(|x| x.as_u64().expect("a count"))
            .collect();
        while n.last() == Some(&0) {
            n.pop();
        }
        n
    };
    let ke = fig["ke"].as_object().expect("the KE series");
    assert_eq!(ke.len(), 4, "{ke:?}");
    ke.iter()
        .map(|(k, s)| (k.clone(), trim(&s["server"]), trim(&s["client"])))
        .collect()
}

#[test]
fn replaying_something_that_is_not_a_bundle_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = callcap(&["replay", tmp.path().to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a callcap bundle"));
}

/// A big diag report (about 2 MB of 10 KB entries): the journal names its
/// copy in `client/` (path, sha256, size) and does not hold its entries;
/// the timeline still has them; a replay and a recovery of the bundle,
/// which read them from the copy, give the same counts and verdicts.
#[test]
fn a_big_diag_report_is_journaled_by_its_copy_and_replays_and_recovers_the_same() {
    let mut s = linked_call("diag-by-reference");
    let stack =
        "    at decryptEvent (https://call.lotus.example/assets/index.js:1:2)\n".repeat(150);
    for i in 0..200 {
        let mut e = missing_key(2_600 + i * 10);
        let m = format!("{} (entry {i})\n{stack}", e["message"].as_str().unwrap());
        e["message"] = m.into();
        s.diag.push(e);
    }
    let entries = s.diag.len();
    let o = s.run();
    assert_eq!(o.answer("Q2"), "linked", "{}", o.verdicts);
    let m = manifest(&o.bundle);
    assert_eq!(
        m["counts"]["client"]["KE-2"].as_u64(),
        Some(entries as u64 - 1)
    );
    let copy = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .starts_with("client/lotus-crypto-diag")
        })
        .expect("the report's copy")
        .clone();
    assert!(copy["bytes"].as_u64().unwrap() > 2_000_000);
    let journal = std::fs::read_to_string(o.bundle.join("journal.jsonl")).unwrap();
    assert!(
        (journal.len() as u64) < copy["bytes"].as_u64().unwrap() / 20,
        "the journal ({} bytes) holds the report's entries",
        journal.len()
    );
    assert!(
        !journal.contains("(entry 7)"),
        "an entry's text is in the journal"
    );
    let line: serde_json::Value = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "client")
        .expect("the report's journal line");
    let named = &line["artifact"]["copy"];
    assert_eq!(named["path"], copy["path"]);
    assert_eq!(named["sha256"], copy["sha256"]);
    assert_eq!(named["bytes"], copy["bytes"]);
    assert_eq!(named["entries"].as_u64(), Some(entries as u64));
    assert_eq!(line["artifact"]["entries"], serde_json::json!([]));
    // The timeline has every entry still, read from the copy.
    let timeline = std::fs::read_to_string(o.bundle.join("timeline.jsonl")).unwrap();
    let client_lines = timeline
        .lines()
        .filter(|l| l.contains(r#""kind":"entry""#))
        .count();
    assert_eq!(client_lines, entries);
    assert!(timeline.contains("(entry 7)"));

    let tmp = tempfile::tempdir().unwrap();
    let b = replay(&o.bundle, tmp.path());
    assert_replays_the_same(&o.bundle, &b);
    assert_eq!(
        std::fs::read_to_string(b.join("timeline.jsonl"))
            .unwrap()
            .matches(r#""kind":"entry""#)
            .count(),
        entries
    );
    // A recovery of the same folder (as a journal a crash left) reads the
    // entries from the copy too.
    let journal_dir = tmp.path().join("callcap-journal-left");
    std::fs::create_dir(&journal_dir).unwrap();
    for f in walk(&o.bundle) {
        let rel = f.strip_prefix(&o.bundle).unwrap();
        let to = journal_dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let r = callcap_bundle(&[
        "recover",
        journal_dir.to_str().unwrap(),
        "--out",
        tmp.path().join("recovered").to_str().unwrap(),
    ]);
    verify_checksums(&r);
    let mr = manifest(&r);
    assert_eq!(m["counts"]["client"], mr["counts"]["client"]);
    assert_eq!(m["verdicts"], mr["verdicts"]);
}
