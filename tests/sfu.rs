//! Q2's SFU branch with livekit-server's and lk-jwt-service's logs. No
//! livekit-server or lk-jwt-service binary can be installed here: their
//! lines are generated the way the upstream encoders write them — zap's
//! production JSON encoder and development console encoder as
//! livekit/protocol `logger.NewZapLogger` sets them up (field names from
//! livekit/livekit `pkg/rtc/utils.go` `LoggerWithParticipant`, both sid
//! keys, `starting RTC session`'s duplicate `room`), and lk-jwt-service's
//! `log.Printf` lines (tagged releases) and slog lines through slogcolor
//! (main) — and read by the real binary's `callcap analyze`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod bundle;
#[path = "support/log_hosts.rs"]
mod log_hosts;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/scenario.rs"]
mod scenario;

use base64::Engine;
use scenario::*;
use sha2::{Digest, Sha256};

const ROOM: &str = "!call:lotus.example";

fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(t0() + ms).unwrap()
}

/// A JSON string as Go's encoder writes it (the test values hold nothing
/// it escapes differently).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[derive(Clone, Copy)]
enum Zap {
    Json,
    Console,
}

/// Which sid key the server version writes.
#[derive(Clone, Copy)]
enum Sid {
    /// ≤ v1.9: `pID`.
    Old,
    /// ≥ v1.10: `participantID`.
    New,
}

/// One livekit-server line. The participant logger's fields first
/// (`room`, `roomID`, `participant`, the sid, `remote`), then the call's.
fn livekit(
    (zap, sid): (Zap, Sid),
    ms: i64,
    level: &str,
    caller: &str,
    msg: &str,
    identity: &str,
    fields: &[(&str, String)],
) -> String {
    let sid_key = match sid {
        Sid::Old => "pID",
        Sid::New => "participantID",
    };
    let mut kv: Vec<(&str, String)> = vec![
        ("room", js(ROOM)),
        ("roomID", js("RM_hK9xdcbd4Fq2")),
        ("participant", js(identity)),
        (sid_key, js("PA_3vQ8wM2nF7cJ")),
        ("remote", "false".into()),
    ];
    kv.extend(fields.iter().map(|(k, v)| (*k, v.clone())));
    let t = utc(ms);
    match zap {
        Zap::Json => {
            // zap's EpochTimeEncoder: seconds as a float, shortest form.
            let ts = t.timestamp_millis() as f64 / 1000.0;
            let mut s = format!(
                "{{\"level\":\"{level}\",\"ts\":{ts},\"logger\":\"livekit\",\"caller\":\"{caller}\",\"msg\":{}",
                js(msg)
            );
            for (k, v) in &kv {
                s.push_str(&format!(",\"{k}\":{v}"));
            }
            s + "}"
        }
        Zap::Console => {
            // ISO8601TimeEncoder, CapitalLevelEncoder, tabs, the fields
            // as one JSON object (spaced, as the console encoder writes it).
            let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!(
                "{}\t{}\tlivekit\t{caller}\t{msg}\t{{{}}}",
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                level.to_uppercase(),
                fields.join(", ")
            )
        }
    }
}

/// A participant's life in livekit-server's log: joined, active,
/// published; then, if `close` is given, closed with that reason at
/// `close_ms`. Lines of another participant and of unknown messages
/// around them.
fn sfu_log(zap: Zap, sid: Sid, ours: &str, close: Option<(i64, &str)>) -> Vec<String> {
    let bob = format!("{BOB}:{BOB_DEV}");
    let mut out = Vec::new();
    for (who, ms) in [(bob.as_str(), 200), (ours, 300)] {
        // starting RTC session carries `room` twice.
        out.push(livekit(
            (zap, sid),
            ms,
            "info",
            "service/roommanager.go:434",
            "starting RTC session",
            who,
            &[
                ("room", js(ROOM)),
                ("nodeID", js("ND_xYz")),
                ("numParticipants", "1".into()),
            ],
        ));
        out.push(livekit(
            (zap, sid),
            ms + 400,
            "info",
            "rtc/room.go:1283",
            "participant active",
            who,
            &[("connectionType", js("udp")), ("connectTime", js("180ms"))],
        ));
        out.push(livekit(
            (zap, sid),
            ms + 600,
            "info",
            "rtc/participant.go:2400",
            "mediaTrack published",
            who,
            &[("kind", js("video")), ("trackID", js("TR_vid1"))],
        ));
    }
    out.push(livekit(
        (zap, sid),
        2_000,
        "debug",
        "rtc/transport.go:1",
        "some message callcap does not know",
        ours,
        &[],
    ));
    if let Some((ms, reason)) = close {
        out.push(livekit(
            (zap, sid),
            ms - 200,
            "warn",
            "rtc/subscriptionmanager.go:543",
            "failed to subscribe, triggering error handler",
            ours,
            &[("error", js("no receiver")), ("trackID", js("TR_bob1"))],
        ));
        out.push(livekit(
            (zap, sid),
            ms,
            "info",
            "rtc/participant.go:1494",
            "participant closing",
            ours,
            &[
                ("sendLeave", "true".into()),
                ("reason", js(reason)),
                ("isExpectedToResume", "false".into()),
                ("kind", js("STANDARD")),
                ("sessionDuration", js("7.7s")),
            ],
        ));
    }
    out
}

/// livekit-server's log in which our participant `ours` is closed with
/// SUBSCRIPTION_ERROR at 8 s, after failing to subscribe.
fn our_subscriber_closed(zap: Zap, sid: Sid, ours: &str) -> Vec<String> {
    sfu_log(zap, sid, ours, Some((8_000, "SUBSCRIPTION_ERROR")))
}

/// Our device's LiveKit identity in the legacy form, `user:device`.
fn legacy_identity() -> String {
    format!("{ME}:{DEV}")
}

/// lk-jwt-service's `LiveKitIdentityFor`: unpadded base64 of SHA-256 over
/// the JSON array of user, device and member id.
fn hashed(user: &str, device: &str, member: &str) -> String {
    let json = serde_json::to_string(&[user, device, member]).unwrap();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

/// lk-jwt-service's main branch: slog through slogcolor without colour.
fn lkjwt_slog(ms: i64, user: &str, device: &str, lk_id: &str) -> String {
    format!(
        "{} INFO  handler.go:671 | Handler: generated SFU access token matrixId={user} claimedDeviceId={device} access=full matrixRoom={ROOM} MatrixRTCSlot=m.call#ROOM lkId={lk_id} room=QUxJQVM RemoteAddr=127.0.0.1:40512 Origin=https://call.lotus.example",
        utc(ms).format("%Y-%m-%d %H:%M:%S")
    )
}

/// lk-jwt-service's tagged releases: `log.Printf`.
fn lkjwt_printf(ms: i64, msg: &str) -> String {
    format!("{} {msg}", utc(ms).format("%Y/%m/%d %H:%M:%S"))
}

/// Keys reached our device, the client shows no KE-2 signature, a fault
/// was marked at 8 s.
fn keys_fine(name: &'static str) -> Scenario {
    let mut s = Scenario::new(name);
    s.log = (0..3u32)
        .flat_map(|i| delivered_to_us(1_000 + i as i64 * 5_000, 30 + i))
        .collect();
    s.diag = vec![restart_timed_out(4_000)];
    s.db = Db::Rows(inbox_rows(ME, DEV, 2));
    s.marks = vec![mark(8_500, "bob's video froze")];
    s
}

fn expect_closed(o: &Outcome, log: &str) {
    o.expect_q(
        "Q2",
        "sfu-downstream",
        &[
            "closed with SUBSCRIPTION_ERROR at 18:00:08",
            "failing to subscribe",
        ],
    );
    o.cites("Q2", &format!("server/{log}.log:"), "SUBSCRIPTION_ERROR");
    o.cites("Q2", "server/homeserver.log:", "Storing to-device messages");
}

#[test]
fn json_format_legacy_identity_our_subscriber_closed() {
    let mut s = keys_fine("sfu-json-closed");
    let ours = legacy_identity();
    s.extra_logs = vec![("livekit", our_subscriber_closed(Zap::Json, Sid::New, &ours))];
    let o = s.run();
    expect_closed(&o, "livekit");
    // Bob's participant is someone else's: never cited.
    assert!(!o.basis("Q2").iter().any(|b| b.contains("FRIENDDEV1")));
}

#[test]
fn console_format_old_sid_key_our_subscriber_closed() {
    let mut s = keys_fine("sfu-console-closed");
    let ours = legacy_identity();
    s.extra_logs = vec![(
        "livekit",
        our_subscriber_closed(Zap::Console, Sid::Old, &ours),
    )];
    expect_closed(&s.run(), "livekit");
}

#[test]
fn hashed_identity_mapped_by_lk_jwt_services_slog_line() {
    let mut s = keys_fine("sfu-hashed-closed");
    let ours = hashed(ME, DEV, "m1a2b3");
    let theirs = hashed(BOB, BOB_DEV, "m9z8y7");
    s.extra_logs = vec![
        ("livekit", our_subscriber_closed(Zap::Json, Sid::New, &ours)),
        (
            "lk-jwt",
            vec![
                "2026-06-30 17:59:00 INFO  main.go:40 | log level defaulting to info".into(),
                lkjwt_slog(100, BOB, BOB_DEV, &theirs),
                lkjwt_slog(250, ME, DEV, &ours),
            ],
        ),
    ];
    expect_closed(&s.run(), "livekit");
}

#[test]
fn hashed_identity_without_lk_jwt_service_says_what_would_settle_it() {
    let mut s = keys_fine("sfu-hashed-unmapped");
    let ours = hashed(ME, DEV, "m1a2b3");
    s.extra_logs = vec![("livekit", our_subscriber_closed(Zap::Json, Sid::New, &ours))];
    let o = s.run();
    o.expect_q(
        "Q2",
        "sfu-downstream",
        &["none known to be our device", "add lk-jwt-service's log"],
    );
    assert!(
        !o.summary("Q2").contains("closed with"),
        "{}",
        o.summary("Q2")
    );
}

#[test]
fn sfu_healthy_points_at_the_clients_rendering() {
    let mut s = keys_fine("sfu-healthy");
    let ours = legacy_identity();
    s.extra_logs = vec![
        ("livekit", sfu_log(Zap::Console, Sid::New, &ours, None)),
        (
            "lk-jwt",
            vec![
                lkjwt_printf(100, &format!("Got Matrix user info for {ME} (full access)")),
                lkjwt_printf(
                    150,
                    &format!(
                        "Created LiveKit room sid: RM_hK9xdcbd4Fq2 (alias: QUxJQVM) for full-access Matrix user {ME} (LiveKit identity: {ours})"
                    ),
                ),
            ],
        ),
    ];
    let o = s.run();
    o.expect_q(
        "Q2",
        "sfu-downstream",
        &[
            "the SFU delivered",
            "client's rendering",
            "publishing since 18:00:00",
        ],
    );
    o.cites("Q2", "server/livekit.log:", "mediaTrack published");
}

#[test]
fn keys_missing_the_sfu_is_irrelevant() {
    // Nothing was queued or traced for our device: Q2 is about the keys,
    // whatever the SFU says.
    let mut s = Scenario::new("sfu-keys-missing");
    s.log = (0..3u32)
        .map(|i| to_device_stored(1_000 + i as i64 * 5_000, 40 + i, BOB, BOB_DEV))
        .collect();
    s.diag = vec![restart_timed_out(4_000)];
    s.marks = vec![mark(8_500, "no video")];
    let ours = legacy_identity();
    s.extra_logs = vec![("livekit", our_subscriber_closed(Zap::Json, Sid::New, &ours))];
    let o = s.run();
    assert_ne!(o.answer("Q2"), "sfu-downstream", "{}", o.summary("Q2"));
    assert!(!o.summary("Q2").contains("SFU saw"), "{}", o.summary("Q2"));
    assert!(
        !o.basis("Q2")
            .iter()
            .any(|b| b.starts_with("server/livekit.log"))
    );
}

#[test]
fn through_a_real_journal_and_a_real_container() {
    // livekit-server as a systemd unit (its console lines in a real
    // journal file, exported by journalctl -o json) and lk-jwt-service in
    // a container (its slog lines as `docker logs --timestamps` prints
    // them), the identity hashed: the same answer as from plain files.
    let mut s = keys_fine("sfu-journal-docker");
    let ours = hashed(ME, DEV, "m1a2b3");
    let lines = our_subscriber_closed(Zap::Console, Sid::New, &ours);
    let mut journal = log_hosts::JournalDir::new();
    // journald's own time: a little after the line's (its stderr pipe).
    let records: Vec<(u64, String)> = lines
        .iter()
        .map(|l| {
            let at =
                chrono::DateTime::parse_from_str(&l[..24], "%Y-%m-%dT%H:%M:%S%.3f%#z").unwrap();
            (at.timestamp_micros() as u64 + 900, l.clone())
        })
        .collect();
    journal.append("livekit-server", &records);
    let exported: Vec<String> = journal
        .export_json("livekit-server")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        exported.len(),
        lines.len(),
        "journalctl exported every record"
    );

    let engine = log_hosts::Dockerd::start();
    let ctl = engine.dir.path().join("ctl");
    std::fs::create_dir_all(&ctl).unwrap();
    let grants = [
        lkjwt_slog(100, BOB, BOB_DEV, &hashed(BOB, BOB_DEV, "m9")),
        lkjwt_slog(250, ME, DEV, &ours),
    ];
    std::fs::write(ctl.join("lines"), grants.join("\n") + "\n").unwrap();
    engine.ok(&[
        "run",
        "--name",
        "lk-jwt-service",
        "--network",
        "none",
        "-v",
        &format!("{}:/ctl", ctl.display()),
        log_hosts::IMAGE,
        "sh",
        "-c",
        "cat /ctl/lines >&2",
    ]);
    let out = engine.docker(&["logs", "--timestamps", "lk-jwt-service"]);
    let docker_lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(docker_lines.len(), 2, "{docker_lines:?}");
    assert!(docker_lines[1].ends_with(&grants[1]), "{}", docker_lines[1]);
    s.extra_logs = vec![("livekit", exported), ("lk-jwt", docker_lines)];
    let o = s.run();
    expect_closed(&o, "livekit");
}

#[test]
fn lk_jwt_service_names_our_device_when_nothing_else_does() {
    // --user-id only; the diag report names the user but no device;
    // lk-jwt-service issued our user a token for one device: that is ours,
    // and the to-device lines read before it are judged again.
    let mut s = keys_fine("sfu-device-from-lk-jwt");
    s.device_id = None;
    s.no_diag = true;
    s.reports = vec![Report::of(
        "lotus-crypto-diag-1782842700000.json",
        Some(ME),
        None,
        vec![restart_timed_out(4_000)],
    )];
    let ours = hashed(ME, DEV, "m1a2b3");
    s.extra_logs = vec![
        ("livekit", our_subscriber_closed(Zap::Json, Sid::New, &ours)),
        ("lk-jwt", vec![lkjwt_slog(250, ME, DEV, &ours)]),
    ];
    let o = s.run();
    expect_closed(&o, "livekit");
    let m = bundle::manifest(&o.bundle);
    assert_eq!(m["device_id"], DEV);
    assert_eq!(m["device_from"], "server/lk-jwt.log:1");
}

#[test]
fn a_livekit_log_alone_is_read_as_one_and_the_report_lists_the_participants() {
    // `analyze --log livekit.log` without a name or a Synapse log: told
    // from its first lines, every line kept, none matched as Synapse's.
    let tmp = tempfile::tempdir().unwrap();
    let ours = legacy_identity();
    let lines = our_subscriber_closed(Zap::Console, Sid::New, &ours);
    let log = tmp.path().join("livekit.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out_dir = tmp.path().join("out");
    let out = bundle::callcap(&[
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--user-id",
        ME,
        "--device-id",
        DEV,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = bundle::bundle_path(&out);
    assert_eq!(
        std::fs::read_to_string(b.join("server/homeserver.log")).unwrap(),
        lines.join("\n") + "\n"
    );
    let report = std::fs::read_to_string(b.join("report.md")).unwrap();
    assert!(report.contains("## SFU"), "{report}");
    assert!(
        report.contains(&format!("`{ours}` {ME}/{DEV} — **our device**"))
            && report.contains("closing SUBSCRIPTION_ERROR"),
        "{report}"
    );
    assert!(report.contains("1 line(s) not recognised"), "{report}");
    let m = bundle::manifest(&b);
    assert_eq!(m["counts"]["server"]["KE-2"], 0);
}
