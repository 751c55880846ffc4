//! `--archive`: `<label>.tar.gz` and `<label>.tar.gz.sha256` beside the
//! bundle folder. `sha256sum -c` accepts the sidecar, and the archive
//! unpacks (with `tar`) to the bundle folder byte for byte; the folder
//! stays as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use support::*;

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn analyze_with_archive_writes_a_checked_tarball_of_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            "2026-06-30 18:{:02}:{:02},000 - synapse.http.server - 131 - INFO - POST-{i} - One time key signed_curve25519:AAAA{i} already exists. Old key: {{\"key\":\"a\"}}; new key: {{'key': 'b'}}\n",
            i / 60 % 60,
            i % 60
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let out = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--label",
        "lab-audio-cut",
        "--archive",
    ]);
    assert_eq!(bundle, out.join("lab-audio-cut"));
    verify_checksums(&bundle);
    let tar_gz = out.join("lab-audio-cut.tar.gz");
    let sidecar = out.join("lab-audio-cut.tar.gz.sha256");
    assert!(tar_gz.is_file() && sidecar.is_file());
    let line = std::fs::read_to_string(&sidecar).unwrap();
    assert!(line.ends_with("  lab-audio-cut.tar.gz\n"), "{line:?}");

    // sha256sum -c, run where the files are, as the recipient would.
    let c = sha256sum_check(&out, "lab-audio-cut.tar.gz.sha256");
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
    assert!(String::from_utf8_lossy(&c.stdout).contains("lab-audio-cut.tar.gz: OK"));

    // Unpacked elsewhere, it is the bundle folder, byte for byte.
    let unpack = tmp.path().join("unpack");
    std::fs::create_dir_all(&unpack).unwrap();
    let x = Command::new("tar")
        .arg("-xzf")
        .arg(&tar_gz)
        .arg("-C")
        .arg(&unpack)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let unpacked = unpack.join("lab-audio-cut");
    assert_eq!(files(&unpacked), files(&bundle));
    assert!(files(&bundle).len() > 5);

    // A headless replay of the bundle archives its own bundle too.
    let out2 = tmp.path().join("out2");
    let replayed = callcap_bundle(&[
        "replay",
        bundle.to_str().unwrap(),
        "--headless",
        "--speed",
        "100000",
        "--out",
        out2.to_str().unwrap(),
        "--archive",
    ]);
    let name = replayed.file_name().unwrap().to_string_lossy().into_owned();
    let c = sha256sum_check(&out2, &format!("{name}.tar.gz.sha256"));
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));

    // A damaged archive fails the check.
    let mut data = std::fs::read(&tar_gz).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&tar_gz, data).unwrap();
    let c = sha256sum_check(&out, "lab-audio-cut.tar.gz.sha256");
    assert!(!c.status.success());
}

#[test]
fn without_archive_no_tarball_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    std::fs::write(
        &log,
        "2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - hello\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let bundle = callcap_bundle(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [bundle.file_name().unwrap().to_string_lossy().into_owned()]
    );
}
