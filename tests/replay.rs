//! Demo and replay, headless: a replay ends by itself, writes its own bundle,
//! and its counts equal the original's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod support;

use support::*;

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
    // Both pages draw the same minutes.
    assert_eq!(figure_data(&a)["ke"], figure_data(&b)["ke"]);
}

#[test]
fn replaying_something_that_is_not_a_bundle_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = callcap(&["replay", tmp.path().to_str().unwrap(), "--headless"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a callcap bundle"));
}
