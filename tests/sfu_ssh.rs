//! The console over a real sshd following Synapse's log, livekit-server's
//! (zap JSON, `format = "livekit"`) and lk-jwt-service's (slog, its format
//! told from its lines), with a hashed LiveKit identity: our subscriber is
//! closed with SUBSCRIPTION_ERROR while the client's diag report, saved
//! after the fault marker, shows no KE-2 signature. The SFU pane shows the
//! closing live, and Q2 answers `sfu-downstream` citing that line.
//! (livekit-server and lk-jwt-service cannot be installed here: their lines
//! are written as their encoders write them, see `tests/sfu.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pty.rs"]
mod pty;
#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/bundle.rs"]
mod support;

use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use support::*;

const ME: &str = "@alice:lotus.example";
const DEV: &str = "RWDSUMBAID";

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// zap's production JSON encoder, as livekit-server writes it with
/// `logging.json: true`.
fn livekit(msg: &str, identity: &str, extra: &str) -> String {
    let ts = now().timestamp_millis() as f64 / 1000.0;
    format!(
        "{{\"level\":\"info\",\"ts\":{ts},\"logger\":\"livekit\",\"caller\":\"rtc/participant.go:1\",\"msg\":\"{msg}\",\
         \"room\":\"!call:lotus.example\",\"roomID\":\"RM_hK9x\",\"participant\":\"{identity}\",\"participantID\":\"PA_3vQ8\",\"remote\":false{extra}}}"
    )
}

#[test]
fn an_sfu_over_ssh_closes_our_subscriber_and_q2_says_so() {
    let s = sshd::Sshd::start();
    let kh = s.dir.path().join("known_hosts");
    std::fs::write(&kh, s.known_hosts_line() + "\n").unwrap();
    let empty = s.dir.path().join("ssh_config");
    std::fs::write(&empty, "").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (hs, lk, jwt) = (
        tmp.path().join("homeserver.log"),
        tmp.path().join("livekit.log"),
        tmp.path().join("lk-jwt.log"),
    );
    for f in [&hs, &lk, &jwt] {
        std::fs::write(f, "").unwrap();
    }
    let downloads = tmp.path().join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let out = tmp.path().join("out");
    let cfg = tmp.path().join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ssh]\nhost = {:?}\nport = {}\nuser = \"root\"\nidentity-file = {:?}\nknown-hosts = {:?}\n\
             ssh-config = {:?}\nidentity-agent = \"none\"\n\n\
             [[server-log]]\nname = \"homeserver\"\npath = {hs:?}\n\n\
             [[server-log]]\nname = \"livekit\"\npath = {lk:?}\nformat = \"livekit\"\n\n\
             [[server-log]]\nname = \"lk-jwt\"\npath = {jwt:?}\n\n\
             [client]\ndownloads = {downloads:?}\n\n\
             [call]\nuser-id = \"{ME}\"\ndevice-id = \"{DEV}\"\n\n[bundle]\nout = {out:?}\n",
            s.listen, s.port, s.keys.client_key, kh, empty
        ),
    )
    .unwrap();
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["live", "--config", cfg.to_str().unwrap()],
        170,
        44,
    );
    wait_until("the three logs live", Duration::from_secs(60), || {
        let j = journal_file(&out, "journal.jsonl");
        ["homeserver", "livekit", "lk-jwt"].iter().all(|n| {
            j.contains(&format!(
                "\"source\":\"{n}\",\"status\":{{\"state\":\"live\""
            ))
        })
    });

    // lk-jwt-service's LiveKitIdentityFor.
    let json = serde_json::to_string(&[ME, DEV, "m1a2b3"]).unwrap();
    let ours = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(json));
    append(
        &jwt,
        &[format!(
            "{} INFO  handler.go:671 | Handler: generated SFU access token matrixId={ME} claimedDeviceId={DEV} access=full matrixRoom=!call:lotus.example MatrixRTCSlot=m.call#ROOM lkId={ours} room=QUxJQVM RemoteAddr=127.0.0.1:40512 Origin=https://call.lotus.example",
            now().format("%Y-%m-%d %H:%M:%S")
        )],
    );
    append(
        &lk,
        &[
            livekit(
                "starting RTC session",
                &ours,
                ",\"room\":\"!call:lotus.example\",\"nodeID\":\"ND_1\"",
            ),
            livekit("participant active", &ours, ",\"connectionType\":\"udp\""),
        ],
    );
    let hs_lines: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "{} - synapse.9533_debug - 800 - DEBUG - PUT-{i} - Storing to-device messages with stream_id {i}: ['{ME}/{DEV} (msgid m{i})']",
                now().format("%Y-%m-%d %H:%M:%S,%3f")
            )
        })
        .collect();
    append(&hs, &hs_lines);
    std::thread::sleep(Duration::from_millis(1200));
    append(
        &lk,
        &[livekit(
            "participant closing",
            &ours,
            ",\"sendLeave\":true,\"reason\":\"SUBSCRIPTION_ERROR\",\"isExpectedToResume\":false",
        )],
    );
    tui.wait_for("the SFU pane", Duration::from_secs(30), |sc| {
        sc.contains("▶ closing SUBSCRIPTION_ERROR · @alice")
    });
    tui.send(b"m");
    tui.wait_for("the marker prompt", Duration::from_secs(10), |sc| {
        sc.contains("Fault marked")
    });
    tui.send(b"\r");
    std::thread::sleep(Duration::from_millis(1200));
    // The client's report, saved after the fault: no KE-2 signature.
    let report = serde_json::json!({
        "sdkVersion": "41.6.0", "userId": ME, "deviceId": DEV, "entries": [
            {"ts": now().timestamp_millis(), "level": "info", "message": "MatrixRTC: joined the call"}
        ]
    });
    std::fs::write(
        downloads.join("lotus-crypto-diag-1.json"),
        serde_json::to_vec(&report).unwrap(),
    )
    .unwrap();
    tui.wait_for("the diag report", Duration::from_secs(30), |sc| {
        sc.contains("Client · 1 files")
    });
    tui.send(&[3]);
    assert_eq!(tui.wait_exit(Duration::from_secs(60)), Some(0));
    let bundle = find_bundle(&out);
    verify_checksums(&bundle);
    let cited = assert_basis_resolves(&bundle);
    let m = manifest(&bundle);
    assert_eq!(
        m["verdicts"]["Q2"]["answer"], "sfu-downstream",
        "{}",
        m["verdicts"]
    );
    let summary = m["verdicts"]["Q2"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("closed with SUBSCRIPTION_ERROR at"),
        "{summary}"
    );
    assert!(
        cited.iter().any(|(q, r, t)| q == "Q2"
            && r.starts_with("server/livekit.log:")
            && t.contains("SUBSCRIPTION_ERROR")),
        "{cited:?}"
    );
}
