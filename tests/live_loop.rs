//! The console's loop and its capture task, driven as the console drives
//! them (`Session::next`, `Session::apply`, `Session::finish`): a flood of
//! inputs that are not log lines cannot stop them, and a task that dies is
//! an error status at once and in the bundle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callcap::app::event::Event;
use callcap::config::Config;
use callcap::live::{LiveOptions, Mode, Next, Session};
use callcap::model::SourceStatus;
use callcap::sources::Input;
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn options(dir: &Path) -> LiveOptions {
    let downloads = dir.join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let mut config = Config::default();
    config.client.downloads = Some(downloads);
    config.call.user_id = Some("@alice:lotus.example".into());
    config.call.device_id = Some("RWDSUMBAID".into());
    LiveOptions {
        config,
        out: dir.join("out"),
        headless: true,
        mode: Mode::Live { backfill: None },
        label: Some("loop".into()),
        debug_loggers: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A small diag report of the subject's, with one entry of each KE.
fn diag(path: &Path, n: usize) {
    let entries: Vec<String> = (0..4)
        .map(|k| {
            format!(
                r#"{{"ts": {}, "level": "error", "message": "{} #{n}"}}"#,
                1_782_842_416_000u64 + n as u64 * 1000 + k,
                [
                    "One time key signed_curve25519:AAAAAAAAAFA already exists",
                    "Error decrypting event MissingKey",
                    "DecryptionError: missing field `algorithm`",
                    "Restart delayed event timed out before the HS responded",
                ][k as usize]
            )
        })
        .collect();
    std::fs::write(
        path,
        format!(
            r#"{{"userId": "@alice:lotus.example", "deviceId": "RWDSUMBAID", "entries": [{}]}}"#,
            entries.join(",")
        ),
    )
    .unwrap();
}

fn journal_lines(bundle: &Path, kind: &str) -> usize {
    let needle = format!("\"kind\":\"{kind}\"");
    std::fs::read_to_string(bundle.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// Drives the loop the way the console does until `done` holds.
async fn drive(s: &mut Session, done: impl Fn(&Session) -> bool) {
    while !done(s) {
        match s.next().await {
            Next::Event(ev) => s.apply(ev),
            Next::Fatal(r) => panic!("fatal: {r}"),
            Next::Closed => panic!("the capture stopped"),
        }
    }
}

#[test]
fn a_flood_of_notes_statuses_and_downloads_does_not_stop_the_loop_while_it_sends_effects() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let downloads = opts.config.client.downloads.clone().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    const NOTES: usize = 4000;
    const STATUSES: usize = 4000;
    const CLIENT: usize = 400;
    const DROPPED: usize = 200;
    for n in 0..CLIENT {
        diag(&files.join(format!("lotus-crypto-diag-{n}.json")), n);
    }
    let rt = runtime();
    let bundle: PathBuf = rt.block_on(async {
        let (mut s, tx) = callcap::live::start_fed(opts).unwrap();
        // Files already in the folder when the watcher first looks are not
        // new downloads: drop the burst once it has looked.
        tokio::time::timeout(
            Duration::from_secs(60),
            drive(&mut s, |s| {
                s.app
                    .sources
                    .get("downloads")
                    .is_some_and(|i| i.status == SourceStatus::Live)
            }),
        )
        .await
        .expect("the downloads watcher goes live");
        // Every one of these makes the App send an effect (a journal entry)
        // back to the capture task.
        let flood = tokio::spawn(async move {
            for i in 0..NOTES.max(STATUSES).max(CLIENT) {
                let at = Utc::now();
                if i < NOTES {
                    let text = format!("note {i}");
                    tx.send(Input::note_now("flood", text)).await.unwrap();
                }
                if i < STATUSES {
                    let status = if i % 2 == 0 {
                        SourceStatus::Connecting
                    } else {
                        SourceStatus::Live
                    };
                    tx.send(Input::status_now("flood", status)).await.unwrap();
                }
                if i < CLIENT {
                    let path = files.join(format!("lotus-crypto-diag-{i}.json"));
                    tx.send(Input::ClientFile { path, at }).await.unwrap();
                }
            }
            tx.send(Input::note_now("flood", "the end".into()))
                .await
                .unwrap();
        });
        // And the real downloads watcher finds a burst of reports at once.
        for n in 0..DROPPED {
            diag(
                &downloads.join(format!("lotus-crypto-diag-x{n}.json")),
                1000 + n,
            );
        }
        let driven = tokio::time::timeout(Duration::from_secs(120), async {
            drive(&mut s, |s| {
                s.app.notes.iter().any(|(_, _, t)| t == "the end")
                    && s.app.artifacts.len() == CLIENT + DROPPED
            })
            .await;
        })
        .await;
        assert!(
            driven.is_ok(),
            "the loop stopped: {} notes, {} client files",
            s.app.notes.len(),
            s.app.artifacts.len()
        );
        flood.await.unwrap();
        tokio::time::timeout(Duration::from_secs(120), s.finish("loop".into()))
            .await
            .expect("the export finishes")
            .unwrap()
    });
    assert_eq!(journal_lines(&bundle, "note"), NOTES + 1);
    assert_eq!(journal_lines(&bundle, "client"), CLIENT + DROPPED);
    // Each status changes the source's state: every one is journaled.
    assert!(journal_lines(&bundle, "status") >= STATUSES);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["counts"]["client"]["KE-2"], (CLIENT + DROPPED) as u64);
    assert!(m.get("missing").is_none(), "{m}");
}

#[test]
fn a_task_that_panics_is_an_error_status_within_a_second_and_the_bundle_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let rt = runtime();
    let (bundle, report) = rt.block_on(async {
        let (mut s, _tx) = callcap::live::start_fed(opts).unwrap();
        // The downloads folder is watched: its source goes live.
        tokio::time::timeout(
            Duration::from_secs(30),
            drive(&mut s, |s| {
                s.app
                    .sources
                    .get("downloads")
                    .is_some_and(|i| i.status == SourceStatus::Live)
            }),
        )
        .await
        .expect("the downloads source goes live");
        s.tasks.spawn("server-log", async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let lines: Vec<u64> = Vec::new();
            // A defect: an index past the end.
            let n = lines.len() + 3;
            Err(format!("never reached {}", lines[n]))
        });
        let shown = tokio::time::timeout(
            Duration::from_secs(1) + Duration::from_millis(100),
            drive(&mut s, |s| {
                s.app
                    .sources
                    .get("server-log")
                    .is_some_and(|i| matches!(i.status, SourceStatus::Error { .. }))
            }),
        )
        .await;
        assert!(shown.is_ok(), "no error status within a second");
        let status = callcap::ui::status_bar::sources_line(&s.app, Utc::now()).to_string();
        assert!(
            status.contains(
                "✖ server-log error: the server-log task stopped: it panicked: index out of bounds"
            ),
            "{status}"
        );
        // The other sources go on.
        assert_eq!(s.app.sources["downloads"].status, SourceStatus::Live);
        s.apply(Event::Tick { now: Utc::now() });
        let bundle = s.finish("panicked".into()).await.unwrap();
        let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
        (bundle, report)
    });
    let journal = std::fs::read_to_string(bundle.join("journal.jsonl")).unwrap();
    assert!(
        journal.lines().any(|l| l.contains("\"kind\":\"status\"")
            && l.contains("\"source\":\"server-log\"")
            && l.contains("it panicked: index out of bounds")),
        "{journal}"
    );
    assert!(
        report.contains("- **Source failed**: `server-log`")
            && report.contains("it panicked: index out of bounds"),
        "{report}"
    );
}

/// A record of the homeserver log at 18:00:`s` on the day of [`diag`].
fn record(s: u32, text: &str) -> String {
    format!("2026-06-30 18:00:{s:02},000 - {text}\n")
}

#[test]
fn a_live_capture_replays_to_the_same_counts_markers_checklist_and_verdicts() {
    const EVENT: &str = "$TypedIn:lotus.example";
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let report = tmp.path().join("lotus-crypto-diag-1.json");
    diag(&report, 0);
    let mut before = String::new();
    let mut after = String::new();
    for s in 0..20u32 {
        // The operator acts between the two halves (18:00:10–16).
        let (log, t) = if s < 10 {
            (&mut before, s)
        } else {
            (&mut after, s + 10)
        };
        log.push_str(&record(
            t,
            &format!("synapse.handlers.e2e_keys - 1 - INFO - POST-{s} - One time key signed_curve25519:AAAAAAAAAFA already exists. Old key: {{\"key\":\"stored\"}}; new key: {{'key': 'uploaded'}}"),
        ));
        log.push_str(&record(
            t,
            &format!("synapse.access.http.8008 - 521 - INFO - PUT-{s} - 192.0.2.10 - 8008 - {{@bob:lotus.example}} Processed request: 0.004sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) 2B 200 \"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/t{s} HTTP/1.1\" \"Mozilla/5.0\" [0 dbevts]"),
        ));
    }
    after.push_str(&record(
        40,
        &format!("synapse.handlers.message - 1021 - INFO - PUT-2 - Persisted event {EVENT} in room !call:lotus.example"),
    ));
    let lines = (before.lines().count() + after.lines().count()) as u64;
    let at = |s: u32| {
        chrono::DateTime::parse_from_rfc3339(&format!("2026-06-30T18:00:{s:02}Z"))
            .unwrap()
            .with_timezone(&Utc)
    };
    let rt = runtime();
    let bundle = rt.block_on(async {
        let (mut s, tx) = callcap::live::start_fed(opts).unwrap();
        let chunk = |text: &str| Input::ServerChunk {
            source: "server-log".into(),
            bytes: text.as_bytes().to_vec(),
            at: Utc::now(),
        };
        tx.send(Input::status_now("server-log", SourceStatus::Live))
            .await
            .unwrap();
        // The server's clock runs 1.5 s ahead of ours.
        tx.send(Input::ClockOffset {
            source: "server-log".into(),
            offset_ms: 1500,
            bound_ms: 4,
            at: Utc::now(),
        })
        .await
        .unwrap();
        tx.send(chunk(&before)).await.unwrap();
        let wait = Duration::from_secs(30);
        tokio::time::timeout(wait, drive(&mut s, |s| s.app.lines_total == 20))
            .await
            .unwrap();
        // The operator marks a fault, relabels and deletes another, ticks a
        // step and types in a KE-3 event id.
        use callcap::app::event::Command;
        for (cmd, t) in [
            (
                Command::Mark {
                    label: "video froze".into(),
                },
                at(10),
            ),
            (Command::Mark { label: "".into() }, at(11)),
            (
                Command::Relabel {
                    id: 2,
                    label: "audio".into(),
                },
                at(12),
            ),
            (
                Command::Mark {
                    label: "oops".into(),
                },
                at(13),
            ),
            (Command::DeleteMarker { id: 3 }, at(14)),
            (
                Command::Checklist {
                    step: 2,
                    done: true,
                },
                at(15),
            ),
            (
                Command::AddEventIds {
                    ids: vec![EVENT.into()],
                },
                at(16),
            ),
        ] {
            s.apply(Event::Command { cmd, at: t });
        }
        tx.send(chunk(&after)).await.unwrap();
        tx.send(Input::ClientFile {
            path: report.clone(),
            at: Utc::now(),
        })
        .await
        .unwrap();
        tokio::time::timeout(
            wait,
            drive(&mut s, |s| {
                s.app.lines_total == lines && s.app.artifacts.len() == 1
            }),
        )
        .await
        .unwrap();
        s.finish("live".into()).await.unwrap()
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callcap"))
        .args(["replay", bundle.to_str().unwrap(), "--headless"])
        .args(["--speed", "1000", "--out"])
        .arg(tmp.path().join("replayed"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let manifest = |b: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap()
    };
    let (a, b) = (manifest(&bundle), manifest(&replayed));
    assert_eq!(a["counts"]["server"]["KE-3"], 1, "{a}");
    // The log's times are read on our clock, in the replay too.
    assert_eq!(a["started_at"], "2026-06-30T17:59:58.500Z");
    assert_eq!(a["started_at"], b["started_at"]);
    assert_eq!(a["counts"], b["counts"]);
    assert_eq!(a["markers"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["markers"], b["markers"]);
    assert_eq!(a["verdicts"], b["verdicts"]);
    // The operator's ticks, with their times.
    let operator = |b: &Path| -> Vec<String> {
        std::fs::read_to_string(b.join("journal.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"kind\":\"checklist\"") && l.contains("\"by\":\"operator\""))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(operator(&bundle).len(), 1);
    assert_eq!(operator(&bundle), operator(&replayed));
}

#[test]
fn a_server_line_without_end_is_cut_with_a_note_and_kept_whole_in_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    // A KE-1 line that goes on for 5 MiB (a binary file on the followed
    // path would too), then a line of its own.
    let mut line = b"2026-06-30 18:00:00,000 - synapse.http.server - 131 - INFO - POST-1 - One time key signed_curve25519:AAAAAAAAAFA already exists. ".to_vec();
    line.resize(5 << 20, b'x');
    let next = b"\n2026-06-30 18:00:01,000 - synapse.x - 1 - INFO - GET-2 - next\n";
    let cap = callcap::capture::LINE_CAP;
    let rt = runtime();
    let bundle = rt.block_on(async {
        let (mut s, tx) = callcap::live::start_fed(opts).unwrap();
        for piece in line.chunks(64 * 1024) {
            tx.send(Input::ServerChunk {
                source: "server-log".into(),
                bytes: piece.to_vec(),
                at: Utc::now(),
            })
            .await
            .unwrap();
        }
        // Shown and noted before the line ends.
        tokio::time::timeout(
            Duration::from_secs(30),
            drive(&mut s, |s| {
                s.app.server_counts()[0] == 1
                    && s.app.notes.iter().any(|(_, _, t)| t.contains("no newline"))
            }),
        )
        .await
        .expect("the cut line is matched and noted");
        let shown = &s.app.panes[0][0].text;
        assert!(shown.len() < cap, "{}", shown.len());
        tx.send(Input::ServerChunk {
            source: "server-log".into(),
            bytes: next.to_vec(),
            at: Utc::now(),
        })
        .await
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            drive(&mut s, |s| s.app.lines_total == 2),
        )
        .await
        .unwrap();
        s.finish("long".into()).await.unwrap()
    });
    let mut want = line.clone();
    want.extend_from_slice(next);
    assert!(
        std::fs::read(bundle.join("server/homeserver.log")).unwrap() == want,
        "the server log holds every byte"
    );
    let journal = std::fs::read_to_string(bundle.join("journal.jsonl")).unwrap();
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"kind\":\"note\"") && l.contains("has no newline after 1 MiB")),
        "the bundle says so"
    );
}
