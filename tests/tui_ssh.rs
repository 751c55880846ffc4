//! The console over a real sshd with a passphrase-protected key: the
//! passphrase is asked for in the console (masked), the log streams, and the
//! passphrase is nowhere in the bundle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pty.rs"]
mod pty;
#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/bundle.rs"]
mod support;

use std::io::Write;
use std::time::Duration;
use support::*;

#[test]
fn the_console_asks_for_the_key_passphrase_and_streams_the_remote_log() {
    let s = sshd::Sshd::start();
    let pass = "correct horse battery staple 42";
    let key = sshd::keygen(&s.dir.path().join("client_pass"), "ed25519", pass);
    s.keys.authorize(&key);
    let kh = s.dir.path().join("known_hosts");
    std::fs::write(&kh, s.known_hosts_line() + "\n").unwrap();
    let empty_ssh_config = s.dir.path().join("ssh_config");
    std::fs::write(&empty_ssh_config, "").unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let remote_log = tmp.path().join("homeserver.log");
    std::fs::write(
        &remote_log,
        "2026-06-30 17:59:59,000 - synapse.x - 1 - INFO - sentinel - before\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let cfg = tmp.path().join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ssh]\nhost = {:?}\nport = {}\nuser = \"root\"\nidentity-file = {:?}\nknown-hosts = {:?}\nssh-config = {:?}\nidentity-agent = \"none\"\n\n[server-log]\npath = {:?}\n\n[bundle]\nout = {:?}\n",
            s.listen, s.port, key, kh, empty_ssh_config, remote_log, out
        ),
    )
    .unwrap();
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["live", "--config", cfg.to_str().unwrap()],
        120,
        40,
    );
    tui.wait_for("the passphrase prompt", Duration::from_secs(30), |sc| {
        sc.contains("SSH key passphrase")
    });
    tui.send(pass.as_bytes());
    tui.wait_for("the masked passphrase", Duration::from_secs(10), |sc| {
        sc.contains(&"•".repeat(pass.chars().count()))
    });
    assert!(
        !tui.screen().contains("horse"),
        "the passphrase is never shown"
    );
    tui.send(b"\r");
    tui.wait_for("the stream to be live", Duration::from_secs(30), |sc| {
        sc.contains("server-log live")
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&remote_log)
        .unwrap();
    f.write_all(
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - over ssh keys/upload\n",
    )
    .unwrap();
    drop(f);
    tui.wait_for("the remote line in KE-1", Duration::from_secs(30), |sc| {
        sc.contains("over ssh keys/upload")
    });
    // The remote clock offset (three round trips, the fastest wins) is
    // measured soon after connecting.
    let start = std::time::Instant::now();
    while !std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            std::fs::read_to_string(e.path().join("journal.jsonl"))
                .is_ok_and(|t| t.contains("\"kind\":\"clock-offset\""))
        })
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no clock offset measured"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tui.send(&[3]); // Ctrl-C: export without asking
    assert_eq!(tui.wait_exit(Duration::from_secs(60)), Some(0));
    let bundle = find_bundle(&out);
    verify_checksums(&bundle);
    let m = manifest(&bundle);
    assert_eq!(m["counts"]["server"]["KE-1"], 1);
    // The remote clock offset is measured and recorded with its bound.
    let src = m["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "server-log")
        .unwrap();
    assert!(src["clock_offset_ms"].is_i64(), "{src}");
    assert!(src["clock_offset_bound_ms"].is_u64(), "{src}");
    // A file, followed over SSH (the manifest's kinds: file, journald, docker).
    assert_eq!(src["kind"], "file");
    assert_eq!(src["over"], "ssh");
    for f in walk(&bundle) {
        let data = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(
            !data.contains(pass),
            "the passphrase leaked into {}",
            f.display()
        );
    }
    assert!(!String::from_utf8_lossy(&tui.raw.lock().unwrap()).contains(pass));
}
