//! `callcap analyze` end to end: the real binary on generated Synapse logs,
//! with grep as the oracle for the server counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use serde_json::json;
use std::path::Path;
use support::*;

const KE1: &str = "keys/upload|One time key .* already exists|OneTimeKey";
const KE2: &str = "io.element.call.encryption_keys|m.room.encrypted|/sendToDevice|to_device";
const KE4: &str = "delayed_event|msc4140|msc4157|update_delayed";
const EVENT_ID: &str = "$SASBBzoqjEvent1:lotus.example";

fn diag_report(dir: &Path, name: &str) -> std::path::PathBuf {
    let report = json!({
        "sdkVersion": "41.6.0-rc.0",
        "deviceId": "RWDSUMBAID",
        "userId": "@alice:lotus.example",
        "syncState": "SYNCING",
        "cryptoReady": true,
        "counts": {"KE-1": 1, "KE-2": 2, "KE-3": 1, "KE-4": 1},
        "entries": [
            {"ts": 1782842410000i64, "level": "error", "ke": "KE-1", "signature": "already exists",
             "message": "POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\"key\":\"stored\"}; new key: {'key': 'uploaded'}"},
            {"ts": 1782842411000i64, "level": "warn", "ke": "KE-2", "signature": "io.element.call.encryption_keys",
             "message": "WARN matrix_sdk_crypto::machine: Received an unexpected encrypted to-device event event_type=\"io.element.call.encryption_keys\""},
            {"ts": "2026-06-30T18:00:12.000Z", "level": "error", "signature": "MissingKey",
             "message": "MissingKey: missing key at index 3 for participant @bob:lotus.example"},
            {"ts": 1782842413000i64, "level": "warn", "ke": "KE-3", "signature": "DecryptionError",
             "message": format!("Error decrypting event (id={EVENT_ID} type=m.room.encrypted sender=@bob:lotus.example room=!r:lotus.example ts=1782842413000): DecryptionError[msg: missing field `algorithm` at line 1 column 138, sender_key: undefined, session_id: undefined]")},
            {"ts": 1782842414000i64, "level": "warn", "ke": "KE-4", "signature": "delayed event",
             "message": "[MembershipManager] Network local timeout error while sending event, immediate retry ((0/10)) AbortError: Restart delayed event timed out before the HS responded"}
        ]
    });
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    p
}

#[test]
fn counts_equal_grep_and_every_checksum_verifies_on_a_large_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    generate_log(&log, &["--lines", "120000", "--event-id", EVENT_ID]);
    let diag = diag_report(tmp.path(), "lotus-crypto-diag-1782842415000.json");
    let out_dir = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--diag",
        diag.to_str().unwrap(),
        "--user-id",
        "@alice:lotus.example",
        "--device-id",
        "RWDSUMBAID",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(bundle.starts_with(&out_dir), "{}", bundle.display());
    let m = manifest(&bundle);
    assert_eq!(m["format"], "callcap-bundle/1");
    let server = &m["counts"]["server"];
    assert_eq!(
        server["KE-1"].as_u64().unwrap(),
        grep_count(KE1, &log, false)
    );
    assert_eq!(
        server["KE-2"].as_u64().unwrap(),
        grep_count(KE2, &log, false)
    );
    assert_eq!(
        server["KE-3"].as_u64().unwrap(),
        grep_count(EVENT_ID, &log, true)
    );
    assert_eq!(
        server["KE-4"].as_u64().unwrap(),
        grep_count(KE4, &log, false)
    );
    assert!(
        server["KE-1"].as_u64().unwrap() > 1000,
        "the generator makes a KE-1 storm"
    );
    assert!(
        server["KE-3"].as_u64().unwrap() > 0,
        "the harvested KE-3 id is searched for"
    );
    let client = &m["counts"]["client"];
    assert_eq!(client, &json!({"KE-1": 1, "KE-2": 2, "KE-3": 1, "KE-4": 1}));

    verify_checksums(&bundle);
    let input = std::fs::read(&log).unwrap();
    let kept = std::fs::read(bundle.join("server/homeserver.log")).unwrap();
    assert_eq!(count_lines(&kept), count_lines(&input));
    assert_eq!(
        kept, input,
        "no secrets in this log: the copy is byte for byte"
    );
    for (i, pat) in [(1, KE1), (2, KE2), (4, KE4)] {
        let ke_log = std::fs::read(bundle.join(format!("server/KE-{i}.log"))).unwrap();
        assert_eq!(
            count_lines(&ke_log) as u64,
            grep_count(pat, &log, false),
            "KE-{i}.log"
        );
    }
    assert_eq!(m["label"].as_str().unwrap(), "call-20260630T180000Z");
    assert!(bundle.ends_with("call-20260630T180000Z"));
    assert!(
        m["started_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-06-30T18:00:00")
    );
    // The window is the evidence's: the diag report read today does not
    // stretch it to today.
    assert!(
        m["ended_at"].as_str().unwrap().starts_with("2026-06-30T"),
        "{}",
        m["ended_at"]
    );
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    let window = report.lines().find(|l| l.starts_with("- Window:")).unwrap();
    assert!(
        !window.contains(&chrono::Utc::now().format("%Y-%m-%d").to_string()),
        "{window}"
    );
    assert_eq!(m["user_id"], "@alice:lotus.example");
    for f in [
        "markers.json",
        "checklist.json",
        "timeline.jsonl",
        "report.md",
        "client/lotus-crypto-diag-1782842415000.json",
    ] {
        assert!(bundle.join(f).is_file(), "{f}");
    }
    // The timeline is time-sorted and every item has at/source/kind.
    let tl = std::fs::read_to_string(bundle.join("timeline.jsonl")).unwrap();
    let mut last = String::new();
    for line in tl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = v["at"].as_str().unwrap().to_string();
        assert!(v["source"].is_string() && v["kind"].is_string(), "{line}");
        assert!(at >= last, "timeline not sorted at {line}");
        last = at;
    }
    let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
    assert!(
        report.contains("signed_curve25519:AAAAAAAAAFA"),
        "offending key id in report"
    );
    assert!(report.contains(EVENT_ID), "KE-3 event id in report");
    assert!(report.contains("Decision tree"));
}

#[test]
fn planted_secrets_never_reach_the_bundle_and_lines_stay_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hs.log");
    let token = "syt_YWxpY2U_PlantedTokenAbc123_0aBcDe";
    let refresh = "syr_YWxpY2U_RefreshSecret99_1XyZ";
    let recovery = "EsTc LW2K PGiF wKEA 3As5 aX4G gAXn q5Hb bzMF CFx7 9KXU Kd5N";
    let text = format!(
        "2026-06-30 18:00:00,001 - synapse.http.client - 460 - INFO - GET-1 - GET https://hs/_matrix/client/v3/account/whoami?access_token={token}\n\
         2026-06-30 18:00:00,002 - synapse.access.http.8008 - 521 - INFO - POST-2 - 192.0.2.1 - 8008 - {{@a:hs}} Processed request: 0.006sec/0.000sec (0.002sec, 0.000sec) (0.000sec/0.004sec/3) 528B 400 \"POST /_matrix/client/v3/keys/upload?client_secret=hunter2secret HTTP/1.0\" \"UA\" [0 dbevts]\n\
         refresh {refresh} and recovery key {recovery}\n\
         Authorization: Bearer {token}\n"
    );
    std::fs::write(&log, &text).unwrap();
    let diag = tmp.path().join("lotus-crypto-diag-1.json");
    std::fs::write(&diag, serde_json::to_vec(&json!({"userId": "@a:hs", "accessToken": token,
        "entries": [{"ts": 1782842410000i64, "level": "error", "message": format!("keys/upload already exists access_token={token}")}]})).unwrap()).unwrap();
    let har = tmp.path().join("call.har");
    std::fs::write(&har, serde_json::to_vec_pretty(&json!({"log": {"version": "1.2", "entries": [{
        "startedDateTime": "2026-06-30T18:00:01.000Z",
        "request": {"method": "POST", "url": format!("https://hs/_matrix/client/v3/keys/upload?access_token={token}"),
            "headers": [{"name": "Authorization", "value": format!("Bearer {token}")}, {"name": "Cookie", "value": "session=abcdef123456"}],
            "postData": {"mimeType": "application/json", "text": "{\"one_time_keys\":{\"signed_curve25519:AAAAAAAAAFA\":{\"key\":\"uploaded\"}}}"}},
        "response": {"status": 400, "headers": [{"name": "Set-Cookie", "value": "session=abcdef123456"}],
            "content": {"mimeType": "application/json", "text": "{\"errcode\":\"M_UNKNOWN\",\"error\":\"One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {\\\"key\\\":\\\"stored\\\"}; new key: {'key': 'uploaded'}\"}"}}
    }]}})).unwrap()).unwrap();
    let out_dir = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--diag",
        diag.to_str().unwrap(),
        "--har",
        har.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--label",
        "secrets",
    ]);
    assert!(bundle.ends_with("secrets"));
    for f in walk(&bundle) {
        let data = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for secret in [token, refresh, recovery, "hunter2secret", "abcdef123456"] {
            assert!(
                !data.contains(secret),
                "{secret} leaked into {}",
                f.display()
            );
        }
    }
    let kept = std::fs::read(bundle.join("server/homeserver.log")).unwrap();
    assert_eq!(count_lines(&kept), count_lines(text.as_bytes()));
    let m = manifest(&bundle);
    assert!(m["redactions"]["server/homeserver.log"].as_u64().unwrap() >= 4);
    assert!(m["redactions"]["client/call.har"].as_u64().unwrap() >= 3);
    verify_checksums(&bundle);
    let manifest_text = std::fs::read_to_string(bundle.join("manifest.json")).unwrap();
    assert!(!manifest_text.contains(token));
}

#[test]
fn several_logs_are_read_in_the_order_given() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("homeserver.log.2026-06-29");
    let b = tmp.path().join("homeserver.log");
    // The rotated file lacks its final newline: the next file still starts a line.
    std::fs::write(&a, "2026-06-29 23:59:59,000 - synapse.x - 1 - INFO - sentinel - first keys/upload\n2026-06-29 23:59:59,500 - synapse.x - 1 - INFO - sentinel - second").unwrap();
    std::fs::write(
        &b,
        "2026-06-30 00:00:00,000 - synapse.x - 1 - INFO - sentinel - third keys/upload\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        a.to_str().unwrap(),
        "--log",
        b.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let kept = std::fs::read_to_string(bundle.join("server/homeserver.log")).unwrap();
    let lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].ends_with("first keys/upload") && lines[2].ends_with("third keys/upload"));
    assert_eq!(manifest(&bundle)["counts"]["server"]["KE-1"], 2);
    assert_eq!(manifest(&bundle)["label"], "call-20260629T235959Z");
}
