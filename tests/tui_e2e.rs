//! The real binary in a pseudo-terminal, read through a terminal emulator:
//! the operator's path from the demo to a bundle with a marker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pty.rs"]
mod pty;
#[path = "support/bundle.rs"]
mod support;

use std::time::Duration;
use support::*;

/// The count in the KE-1 pane's title: `KE-1 <meaning> · <count> · …`.
/// The KE-1 pane's headline: its error count (`· 544 errors ·`).
fn ke1_count(screen: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains("KE-1 "))?;
    let after = &line[line.find("KE-1 ")?..];
    let (count, what) = after.split(" · ").nth(1)?.split_once(' ')?;
    what.starts_with("error").then(|| count.parse().ok())?
}

/// Drops terminal escape sequences (the cursor is shown again right before
/// the path is printed).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.trim().to_string()
}

#[test]
fn demo_mark_a_fault_and_quit_writes_a_bundle_with_the_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["demo", "--speed", "20", "--out", out.to_str().unwrap()],
        120,
        40,
    );
    tui.wait_for("KE-1 to count", Duration::from_secs(60), |s| {
        ke1_count(s).is_some_and(|n| n > 0)
    });
    tui.send(b"m");
    tui.wait_for("the marker prompt", Duration::from_secs(10), |s| {
        s.to_lowercase().contains("audio cut")
    });
    tui.send(b"audio cut");
    std::thread::sleep(Duration::from_millis(200));
    tui.send(b"\r");
    tui.wait_for("the prompt to close", Duration::from_secs(10), |s| {
        !s.contains("Symptom") && !s.contains("symptom")
    });
    tui.send(b"q");
    tui.wait_for("the quit dialog", Duration::from_secs(10), |s| {
        s.contains("call-")
    });
    tui.send(b"\r");
    let code = tui.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "screen:\n{}", tui.screen());
    assert!(tui.left_alternate_screen(), "the terminal was restored");
    let printed = tui.output_after_restore();
    let last = printed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    let bundle = std::path::PathBuf::from(strip_ansi(&last));
    assert!(bundle.starts_with(&out), "printed path {bundle:?}");
    verify_checksums(&bundle);
    let m = manifest(&bundle);
    let markers = m["markers"].as_array().unwrap();
    assert_eq!(markers.len(), 1, "{markers:?}");
    assert_eq!(markers[0]["label"], "audio cut");
    let at = markers[0]["at"].as_str().unwrap();
    assert!(
        at >= m["started_at"].as_str().unwrap() && at <= m["ended_at"].as_str().unwrap(),
        "marker {at} inside the window"
    );
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("markers.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk[0]["label"], "audio cut");
}

#[test]
fn sigterm_during_the_console_exports_and_restores_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["demo", "--speed", "50", "--out", out.to_str().unwrap()],
        120,
        40,
    );
    let screen = tui.wait_for("KE-1 to count", Duration::from_secs(60), |s| {
        ke1_count(s).is_some_and(|n| n > 0)
    });
    let pid = tui.child.process_id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let code = tui.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0));
    assert!(tui.left_alternate_screen());
    let bundle = find_bundle(&out);
    verify_checksums(&bundle);
    let m = manifest(&bundle);
    assert!(
        m["counts"]["server"]["KE-1"].as_u64().unwrap() > 0,
        "{}\nscreen:\n{screen}",
        m["counts"]
    );
    // Every line the capture took is in the bundle.
    let lines = count_lines(&std::fs::read(bundle.join("server/homeserver.log")).unwrap());
    assert!(lines > 0);
}

#[test]
fn a_terminal_too_small_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut tui = pty::Tui::spawn(
        &bin(),
        &["demo", "--speed", "1", "--out", out.to_str().unwrap()],
        60,
        15,
    );
    tui.wait_for("the too-small message", Duration::from_secs(30), |s| {
        s.to_lowercase().contains("too small")
    });
    tui.send(&[3]); // Ctrl-C exports without asking
    assert_eq!(tui.wait_exit(Duration::from_secs(60)), Some(0));
}

/// Runs the demo in a 120x32 terminal for a few seconds of screens, then
/// quits through the dialog with `label` typed; returns the colour
/// sequences seen and the bundle path printed.
fn demo_frames(
    args: &[&str],
    env: &[(&str, Option<&str>)],
    label: &str,
) -> (usize, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut all = vec!["demo", "--speed", "20", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut tui = pty::Tui::spawn_env(&bin(), &all, env, 120, 32);
    tui.wait_for("KE-1 to count", Duration::from_secs(60), |s| {
        ke1_count(s).is_some_and(|n| n > 0)
    });
    std::thread::sleep(Duration::from_secs(3));
    tui.send(b"q");
    tui.wait_for("the quit dialog", Duration::from_secs(10), |s| {
        s.contains("Bundle label")
    });
    tui.send(label.as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    tui.send(b"\r");
    assert_eq!(
        tui.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        tui.screen()
    );
    let printed = tui.output_after_restore();
    let last = printed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    let bundle = std::path::PathBuf::from(strip_ansi(&last));
    assert!(bundle.is_dir(), "{bundle:?}");
    let n = tui.colour_sequences();
    // Keep the bundle's folder name; the temp dir goes.
    let name = bundle.strip_prefix(&out).unwrap().to_path_buf();
    (n, name)
}

#[test]
fn no_color_paints_no_colour_and_color_always_overrides_it() {
    // NO_COLOR (any non-empty value): not one colour sequence in any frame;
    // the quit dialog's typed label replaces the suggested one.
    let (n, name) = demo_frames(&[], &[("NO_COLOR", Some("1"))], "lab-audio-cut");
    assert_eq!(n, 0, "colour sequences with NO_COLOR=1");
    assert_eq!(name, std::path::PathBuf::from("lab-audio-cut"));
    // --color always wins over NO_COLOR (so the count above could fail).
    let (n, _) = demo_frames(&["--color", "always"], &[("NO_COLOR", Some("1"))], "x");
    assert!(n > 50, "{n} colour sequences with --color always");
    // --color never without NO_COLOR.
    let (n, _) = demo_frames(&["--color", "never"], &[("NO_COLOR", None)], "y");
    assert_eq!(n, 0, "colour sequences with --color never");
}
