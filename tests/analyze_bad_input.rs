//! Bad input gets a clear error and loses nothing; nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use std::path::Path;
use support::*;

fn analyze_ok(args: &[&str]) -> std::path::PathBuf {
    let out = callcap(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let b = bundle_path(&out);
    verify_checksums(&b);
    b
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn garbage_invalid_utf8_long_lines_crlf_and_empty_files_are_kept_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data: Vec<u8> = Vec::new();
    data.extend_from_slice(
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - keys/upload ok\r\n",
    );
    data.extend_from_slice(&[
        0xff, 0xfe, 0x00, 0x80, b' ', b'k', b'e', b'y', b's', b'/', b'u', b'p', b'l', b'o', b'a',
        b'd', b'\n',
    ]);
    data.extend((0..10 * 1024 * 1024).map(|i| b"abcdefghij"[i % 10]));
    data.extend_from_slice(b" to_device\n");
    data.extend_from_slice(b"\x00\x01\x02 binary \xc3\x28 garbage\n");
    data.extend_from_slice(b"no newline at the end delayed_event");
    let log = tmp.path().join("mixed.log");
    std::fs::write(&log, &data).unwrap();
    let out_dir = tmp.path().join("out");
    let b = analyze_ok(&["analyze", "--log", s(&log), "--out", s(&out_dir)]);
    assert_eq!(
        std::fs::read(b.join("server/homeserver.log")).unwrap(),
        data
    );
    let m = manifest(&b);
    assert_eq!(
        m["counts"]["server"]["KE-1"],
        grep_count("keys/upload", &log, false)
    );
    assert_eq!(m["counts"]["server"]["KE-2"], 1);
    assert_eq!(m["counts"]["server"]["KE-4"], 1);

    let empty = tmp.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let b = analyze_ok(&[
        "analyze",
        "--log",
        s(&empty),
        "--out",
        s(&out_dir),
        "--label",
        "empty",
    ]);
    assert_eq!(
        std::fs::read(b.join("server/homeserver.log"))
            .unwrap()
            .len(),
        0
    );

    let norecords = tmp.path().join("norecords.log");
    std::fs::write(&norecords, b"just text\nmore text keys/upload\n").unwrap();
    let b = analyze_ok(&[
        "analyze",
        "--log",
        s(&norecords),
        "--out",
        s(&out_dir),
        "--label",
        "norecords",
    ]);
    assert_eq!(manifest(&b)["counts"]["server"]["KE-1"], 1);
}

#[test]
fn truncated_or_non_json_diag_reports_are_kept_verbatim_and_listed_as_unparsed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hs.log");
    std::fs::write(
        &log,
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - hello\n",
    )
    .unwrap();
    let dl = tmp.path().join("downloads");
    std::fs::create_dir(&dl).unwrap();
    let truncated = b"{\"userId\": \"@a:hs\", \"entries\": [{\"ts\": 1, \"message\": \"Missing";
    std::fs::write(dl.join("lotus-crypto-diag-1.json"), truncated).unwrap();
    std::fs::write(
        dl.join("lotus-crypto-diag-2.json"),
        b"<html>not json</html>",
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let b = analyze_ok(&[
        "analyze",
        "--log",
        s(&log),
        "--diag",
        s(&dl),
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(
        std::fs::read(b.join("client/lotus-crypto-diag-1.json")).unwrap(),
        truncated
    );
    assert_eq!(
        std::fs::read(b.join("client/lotus-crypto-diag-2.json")).unwrap(),
        b"<html>not json</html>"
    );
    let report = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert_eq!(report.matches("**unparsed**").count(), 2, "{report}");
}

#[test]
fn missing_or_unreadable_inputs_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let missing = tmp.path().join("nope.log");
    let out = callcap(&["analyze", "--log", s(&missing), "--out", s(&out_dir)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("nope.log") && err.contains("No such file"),
        "{err}"
    );
    assert!(!out_dir.exists(), "no work was done");

    let out = callcap(&["analyze", "--log", s(tmp.path()), "--out", s(&out_dir)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));

    let log = tmp.path().join("hs.log");
    std::fs::write(&log, b"x\n").unwrap();
    let out = callcap(&[
        "analyze",
        "--log",
        s(&log),
        "--diag",
        s(&tmp.path().join("gone.json")),
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gone.json"));
}

#[test]
fn an_unwritable_out_exits_2_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hs.log");
    std::fs::write(&log, b"x\n").unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = callcap(&["analyze", "--log", s(&log), "--out", s(&file.join("sub"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--out") && err.contains("a-file"), "{err}");
}

#[test]
fn a_large_har_is_streamed_and_its_conflicts_found() {
    let tmp = tempfile::tempdir().unwrap();
    let har = tmp.path().join("big.har");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&har).unwrap());
        write!(f, "{{\"log\":{{\"version\":\"1.2\",\"entries\":[").unwrap();
        let filler = "x".repeat(4000);
        for i in 0..8000 {
            if i > 0 {
                write!(f, ",").unwrap();
            }
            let (url, status, body) = if i == 7000 {
                ("https://hs/_matrix/client/v3/keys/upload", 400,
                 "{\\\"errcode\\\":\\\"M_UNKNOWN\\\",\\\"error\\\":\\\"One time key signed_curve25519:AAAAAAAAAJ4 already exists. Old key: {\\\\\\\"key\\\\\\\":\\\\\\\"old\\\\\\\"}; new key: {'key': 'new'}\\\"}".to_string())
            } else {
                ("https://hs/_matrix/client/v3/sync", 200, filler.clone())
            };
            write!(f, "{{\"startedDateTime\":\"2026-06-30T18:00:01.000Z\",\"request\":{{\"method\":\"POST\",\"url\":\"{url}\",\"headers\":[{{\"name\":\"authorization\",\"value\":\"Bearer syt_abc_def_ghi\"}}],\"postData\":{{\"text\":\"{{\\\"one_time_keys\\\":{{\\\"signed_curve25519:AAAAAAAAAJ4\\\":{{\\\"key\\\":\\\"new\\\"}}}}}}\"}}}},\"response\":{{\"status\":{status},\"headers\":[],\"content\":{{\"text\":\"{body}\"}}}}}}").unwrap();
        }
        write!(f, "]}}}}").unwrap();
    }
    let log = tmp.path().join("hs.log");
    std::fs::write(
        &log,
        b"2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - hello\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let b = analyze_ok(&[
        "analyze",
        "--log",
        s(&log),
        "--har",
        s(&har),
        "--out",
        s(&out_dir),
    ]);
    let report = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(
        report.contains("signed_curve25519:AAAAAAAAAJ4"),
        "conflict from the HAR is reported"
    );
    let copy = std::fs::read_to_string(b.join("client/big.har")).unwrap();
    assert!(!copy.contains("syt_abc_def_ghi"));
    let v: serde_json::Value = serde_json::from_str(&copy).expect("the redacted HAR is still JSON");
    assert_eq!(v["log"]["entries"].as_array().unwrap().len(), 8000);
}

/// Element Web's console log lines (its `ConsoleLogger` format).
const CONSOLE: &str = "2026-06-30T18:00:01.000Z I Starting load of AsyncWrapper for modal\n\
2026-06-30T18:00:02.000Z E Failed to decrypt: MissingKey: missing key at index 3\n\
    at decrypt (crypto.ts:1:2)\n\
2026-06-30T18:00:03.000Z W Received an unexpected encrypted to-device event event_type=\"io.element.call.encryption_keys\"\n";

#[test]
fn a_cut_rageshake_tar_a_cut_gzip_and_a_log_without_times_are_kept_and_said() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("homeserver.log");
    std::fs::write(
        &log,
        "2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - - up\n",
    )
    .unwrap();
    // A rageshake.tar written by tar, then cut inside its second member.
    let big: String = (0..2000).map(|_| CONSOLE).collect();
    let tar = rageshake_tar(tmp.path(), "user_id = @a:hs\ndevice_id = DEV\n", &big);
    let whole = std::fs::read(&tar).unwrap();
    std::fs::write(&tar, &whole[..whole.len() / 2]).unwrap();
    // A gzip cut short, and a log without any timestamp.
    let gz = tmp.path().join("logs-0000.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, CONSOLE.as_bytes()).unwrap();
    let packed = enc.finish().unwrap();
    std::fs::write(&gz, &packed[..packed.len() - 12]).unwrap();
    let plain = tmp.path().join("console.log");
    std::fs::write(&plain, "no times here\nMissingKey somewhere\n").unwrap();
    let out_dir = tmp.path().join("out");
    let b = analyze_ok(&[
        "analyze",
        "--log",
        s(&log),
        "--client",
        s(&tar),
        "--client",
        s(&gz),
        "--client",
        s(&plain),
        "--out",
        s(&out_dir),
    ]);
    let report = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(report.contains("tar cut short"), "{report}");
    assert!(report.contains("gzip:"), "{report}");
    assert!(
        report.contains("console.log: no line starts with a console timestamp"),
        "{report}"
    );
    // What was read is kept: the metadata, the first half of the log, the
    // gzip's readable part, the raw lines.
    assert!(b.join("client/rageshake/issue.txt").is_file());
    let kept = std::fs::read_to_string(b.join("client/rageshake/log-0.log")).unwrap();
    assert!(
        kept.len() > 1000 && big.starts_with(&kept),
        "{}",
        kept.len()
    );
    assert_eq!(
        std::fs::read_to_string(b.join("client/console.log")).unwrap(),
        "no times here\nMissingKey somewhere\n"
    );
    let m = manifest(&b);
    assert_eq!(m["device_id"], "DEV", "{m}");
    // Identical entries count once; the raw line without a time counts too.
    assert_eq!(m["counts"]["client"]["KE-2"], 3, "{}", m["counts"]);
}
