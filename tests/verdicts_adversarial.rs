//! Captures that look like an answer of the runbook's tree without its
//! substance, each with the answer its evidence supports instead. The real
//! binary's `callcap analyze` runs over a Synapse-shaped log, diag reports,
//! sometimes a HAR, and fixture rows in a real PostgreSQL, as in
//! `tests/verdicts.rs`; every `basis` reference must resolve in the bundle.
//!
//! The first part holds the look-alikes (each gave the look-alike answer
//! before these rules); the last part holds the captures that must keep
//! their answer, so the rules do not over-correct, and both sides of the
//! thresholds callcap picks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/bundle.rs"]
mod bundle;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/scenario.rs"]
mod scenario;

use scenario::*;
use serde_json::Value;

/// A second user's device.
const CAROL: &str = "@carol:lotus.example";
/// Bob's Synapse access token (`syt_` + base64 "bob" + random + crc).
const BOB_TOKEN: &str = "syt_Ym9i_FakeRandomPartAbCdEf12_0aBcDe";
const EV_NOALG: &str = "$SASBBzoqjNoAlgorithm:lotus.example";
const EV_UISI: &str = "$NoMegolmSessionYet:lotus.example";

/// Fast requests every 5 s over `[from, to]` ms, none a sendToDevice.
fn fast_requests(from: i64, to: i64, seq: u32) -> Vec<String> {
    (0..)
        .map(|i| from + i * 5_000)
        .take_while(|ms| *ms <= to)
        .zip(seq..)
        .map(|(ms, n)| room_send(ms, n))
        .collect()
}

/// `n` requests spread over the minute at `minute_ms`, `slow` of them at 3 s.
fn minute_with(minute_ms: i64, seq: u32, n: u32, slow: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let ms = minute_ms + 500 + i as i64 * (58_000 / n as i64);
            let secs = if i < slow { 3.0 } else { 0.02 };
            room_send_taking(ms, seq + i, secs)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Q1 look-alikes

#[test]
fn q1_divergence_look_alike_a_row_stored_after_the_conflict_read_months_later() {
    // The log is months old; the database is read today. The key id is
    // stored with a value the client did not upload, but the row was added
    // today: it says nothing about what Synapse held at the conflict.
    let mut s = Scenario::new("adv-q1-late-row");
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED);
    let today = chrono::Utc::now().timestamp_millis();
    s.db = Db::Rows(format!(
        "{}{}",
        otk_row_added(KEY_ID, "Tm90VGhlQ29uZmxpY3RLZXk", today),
        fallback_row(false)
    ));
    let o = s.run();
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &[
            "days after the capture ended",
            "does not show it was stored at the first conflict",
        ],
    );
    assert!(
        o.report.contains("- Database: read ")
            && o.report.contains("too far from the call to stand for it"),
        "the report says when the database was read:\n{}",
        o.report
    );
}

#[test]
fn q1_divergence_look_alike_a_conflict_whose_owner_line_was_not_seen() {
    // Synapse's conflict and its 400, but not the `Adding one_time_keys …
    // for device` line: key ids like AAAAAAAAAFA repeat across devices, so
    // our device's inventory holding that id with another key proves nothing.
    recent_call();
    let mut s = Scenario::new("adv-q1-no-owner");
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED)
        .into_iter()
        .skip(1)
        .collect();
    s.db = Db::Rows(stored_key_and_unused_fallback());
    let o = s.run();
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &[
            "whose owner the log does not name",
            "synapse.handlers.e2e_keys",
        ],
    );
    o.cites("Q1", "server/KE-1.log:", "already exists");
}

#[test]
fn q1_exhaustion_look_alike_counts_read_months_after_the_call() {
    // No key left and the fallback used, as read today: the device may
    // have run out long after the call.
    let mut s = exhausted_device("adv-q1-late-exhaustion");
    s.diag = vec![ke1_entry(1_500)];
    let o = s.run();
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &[
            "no longer stored",
            "suggests divergence",
            "too far from the call",
        ],
    );
}

#[test]
fn q1_sdk_regression_look_alike_the_key_claimed_since() {
    // The issue's table: the offending key is no longer stored, other keys
    // remain, the fallback is unused; the error text shows stored ≠ uploaded.
    recent_call();
    let mut s = Scenario::new("adv-q1-claimed");
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED);
    s.db = Db::Rows(key_claimed_since());
    let o = s.run();
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &["is no longer stored", "suggests divergence"],
    );
}

#[test]
fn q1_sdk_regression_look_alike_the_key_past_the_inventory_row_cap() {
    // 10,001 keys sort before the offending one: the inventory is cut at
    // 10,000 rows and the key is not among them, though it is stored.
    recent_call();
    let late = "ZZZZZZZZZZA";
    let mut s = Scenario::new("adv-q1-cap");
    s.log = otk_conflict(1_000, 10, late, STORED, UPLOADED);
    s.db = Db::Rows(format!(
        "INSERT INTO e2e_one_time_keys_json SELECT '{ME}', '{DEV}', 'signed_curve25519', \
         'AAAA' || lpad(g::text, 7, '0'), {}, '{{\"key\":\"b3RoZXI\"}}' FROM generate_series(1, 10001) g;\n{}{}",
        t0(),
        otk_row(late, STORED),
        fallback_row(false)
    ));
    let o = s.run();
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &["is not among the first 10000 rows", "suggests divergence"],
    );
}

#[test]
fn q1_sdk_regression_look_alike_another_users_har() {
    // A HAR whose requests carry Bob's token: its keys/upload conflict is
    // his, even where our device stores the very key it uploaded.
    recent_call();
    let mut s = Scenario::new("adv-q1-their-har");
    s.log = vec![filler(0, 1), filler(3_000, 2)];
    s.har = Some(har_keys_upload_as(STORED, Some(BOB_TOKEN)));
    s.db = Db::Rows(stored_key_and_unused_fallback());
    let o = s.run();
    o.expect_q("Q1", INSUFFICIENT, &["No KE-1"]);
    assert!(
        o.report.contains("`client/lotus.har` (Har, ")
            && o.report
                .contains("**not the subject** (its requests' access tokens are bob's)"),
        "{}",
        o.report
    );
    let har = std::fs::read_to_string(o.bundle.join("client/lotus.har")).unwrap();
    assert!(
        !har.contains(BOB_TOKEN),
        "the token is redacted in the bundle"
    );
}

// ---------------------------------------------------------------------------
// Q2 look-alikes

#[test]
fn q2_linked_look_alike_ke2_without_any_ke1() {
    // The issue's table: keys reach our device, the client shows
    // MissingKey, no KE-1 anywhere. Q1 says no KE-1 was seen; Q2 must not
    // confirm a KE-1 ⇒ KE-2 link in the same bundle.
    let mut s = Scenario::new("adv-q2-no-ke1");
    s.log = delivered_to_us(2_000, 20);
    s.log.extend(delivered_to_us(7_000, 21));
    s.diag = vec![unexpected_encrypted(2_100), missing_key(2_500)];
    let o = s.run();
    o.expect_q("Q1", INSUFFICIENT, &["No KE-1"]);
    o.expect_q(
        "Q2",
        "unlinked",
        &["no KE-1 for our device was seen", "KE-2 without KE-1"],
    );
    o.cites("Q2", "client/", "MissingKey");
    assert!(
        o.decision_tree()
            .contains("KE-2 without KE-1: look elsewhere"),
        "{}",
        o.decision_tree()
    );
}

#[test]
fn q2_linked_look_alike_ke1_hours_before_ke2() {
    // KE-1 for our device two hours before the KE-2 signatures: not at the
    // same time. Four minutes before is.
    let ke1_before_ke2 = |name: &'static str, gap_ms: i64| {
        let mut s = Scenario::new(name);
        s.log = otk_conflict(0, 9, KEY_ID, STORED, UPLOADED);
        s.log.extend(delivered_to_us(gap_ms, 20));
        s.diag = vec![missing_key(gap_ms + 500)];
        s.run()
    };
    let o = ke1_before_ke2("adv-q2-ke1-long-before", 2 * 3_600_000);
    o.expect_q(
        "Q2",
        "unlinked",
        &["KE-1 for our device was seen only at 18:00:00–18:00:00, more than 5 min away"],
    );

    let o = ke1_before_ke2("adv-q2-ke1-just-before", 4 * 60_000);
    o.expect_q("Q2", "linked", &["link confirmed"]);
    o.cites("Q2", "server/KE-1.log:", "already exists");
}

#[test]
fn q2_linked_and_unlinked_look_alike_ke1_whose_owner_the_log_does_not_name() {
    // KE-1 conflicts at the time of the KE-2 signatures, but no owner line:
    // neither "our device's KE-1" (linked) nor "no KE-1 for this device"
    // (unlinked) is shown.
    let mut s = Scenario::new("adv-q2-undecided");
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED)
        .into_iter()
        .skip(1)
        .collect();
    s.log.extend(delivered_to_us(2_000, 20));
    s.diag = vec![missing_key(2_500)];
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["does not name their device", "synapse.handlers.e2e_keys"],
    );
    o.cites("Q2", "server/KE-1.log:", "already exists");
}

#[test]
fn another_users_diag_report_feeds_no_verdict() {
    // The issue's table: the only diag report in the downloads folder is
    // Bob's; its KE-1 and KE-2 entries are his.
    recent_call();
    let mut s = Scenario::new("adv-their-report");
    s.log = delivered_to_us(2_000, 20);
    s.log.extend(delivered_to_us(7_000, 21));
    s.no_diag = true;
    s.reports = vec![Report::of(
        "lotus-crypto-diag-bob.json",
        Some(BOB),
        Some(BOB_DEV),
        vec![
            ke1_entry(600),
            unexpected_encrypted(2_100),
            missing_key(2_500),
        ],
    )];
    s.db = Db::Rows(stored_key_and_unused_fallback() + &inbox_rows(ME, DEV, 2));
    let o = s.run();
    let aside = "1 client artefact(s) set aside as not the subject's: lotus-crypto-diag-bob.json";
    o.expect_q("Q1", INSUFFICIENT, &["No KE-1", aside]);
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["neither a client KE-2 signature nor a fault marker", aside],
    );
    assert!(
        o.report.contains("`client/lotus-crypto-diag-bob.json` (Diag, ")
            && o.report.contains(
                "**not the subject** (the report is @bob:lotus.example/FRIENDDEV1's): fed no verdict"
            ),
        "{}",
        o.report
    );
    // Still counted as what the files hold.
    let m = bundle::manifest(&o.bundle);
    assert_eq!(m["counts"]["client"]["KE-2"], 2, "{}", m["counts"]);
}

#[test]
fn q2_not_targeted_look_alike_no_device_known() {
    // The issue's table: no flags name a device and the diag report names
    // none either; nothing can be "ours", so nothing is "not sent to us".
    let mut s = Scenario::new("adv-q2-no-device");
    s.user_id = None;
    s.device_id = None;
    s.log = (0..3u32)
        .map(|i| to_device_stored(1_000 + i as i64 * 5_000, 40 + i, BOB, BOB_DEV))
        .collect();
    s.no_diag = true;
    s.reports = vec![Report::of(
        "lotus-crypto-diag-anon.json",
        None,
        None,
        vec![missing_key(2_000)],
    )];
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["no device id is known", "--device-id"],
    );
    assert!(
        !o.summary("Q2").contains("not sent to us"),
        "{}",
        o.summary("Q2")
    );
    // No verdict speaks of our device.
    o.expect_q("Q1", INSUFFICIENT, &["No KE-1"]);
    assert!(
        !o.summary("Q1").contains("our device"),
        "{}",
        o.summary("Q1")
    );
}

#[test]
fn q2_not_targeted_look_alike_a_log_without_access_lines() {
    // The issue's table: federation traffic only and an empty inbox read
    // right after the call. A log without access lines cannot show that
    // nobody sent anything; the messages may have been delivered and
    // drained by /sync.
    recent_call();
    let mut s = Scenario::new("adv-q2-federation-only");
    s.log = (0..20).map(|i| filler(i * 3_000, 100 + i as u32)).collect();
    s.db = Db::Rows(String::new());
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["the server log has no access lines", "synapse.9533_debug"],
    );
}

#[test]
fn q2_not_targeted_look_alike_an_inbox_read_months_after_the_call() {
    // Access lines cover the call and show no sendToDevice, but the empty
    // inbox was read months later: it could have drained since.
    let mut s = Scenario::new("adv-q2-late-inbox");
    s.log = fast_requests(0, 60_000, 100);
    s.db = Db::Rows(String::new());
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["days after the capture ended", "too far from the call"],
    );
}

#[test]
fn q2_sfu_downstream_look_alike_a_report_downloaded_before_the_fault() {
    // Keys reach us and a fault is marked at 60 s, but our report was
    // downloaded at 5 s: it cannot show whether the client decrypted then.
    let mut s = Scenario::new("adv-q2-early-report");
    s.log = delivered_to_us(1_000, 30);
    s.no_diag = true;
    s.reports = vec![Report {
        downloaded_at_ms: Some(t0() + 5_000),
        ..Report::of(
            "lotus-crypto-diag-early.json",
            Some(ME),
            Some(DEV),
            vec![restart_timed_out(3_000)],
        )
    }];
    s.marks = vec![mark(60_000, "audio cut")];
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["no client diag report of our device, downloaded after the fault"],
    );
}

#[test]
fn q2_sfu_downstream_look_alike_someone_elses_report() {
    // Bob's report shows no KE-2 signature; ours is missing.
    let mut s = Scenario::new("adv-q2-their-clean-report");
    s.log = delivered_to_us(1_000, 30);
    s.no_diag = true;
    s.reports = vec![Report::of(
        "lotus-crypto-diag-bob.json",
        Some(BOB),
        Some(BOB_DEV),
        vec![restart_timed_out(3_000)],
    )];
    s.marks = vec![mark(9_000, "bob's video froze")];
    let o = s.run();
    o.expect_q("Q2", INSUFFICIENT, &["no client diag report of our device"]);
}

// ---------------------------------------------------------------------------
// Q3 look-alikes

#[test]
fn q3_malformed_event_look_alike_someone_elses_report() {
    // The event id comes from Carol's report only.
    recent_call();
    let mut s = Scenario::new("adv-q3-their-id");
    s.log = vec![filler(0, 1)];
    s.reports = vec![Report::of(
        "lotus-crypto-diag-carol.json",
        Some(CAROL),
        Some("CAROLDEV"),
        vec![decryption_error(1_000, EV_NOALG)],
    )];
    s.db = Db::Rows(event_row(
        EV_NOALG,
        1,
        r#"{"ciphertext":"x","session_id":"s"}"#,
    ));
    let o = s.run();
    o.expect_q(
        "Q3",
        INSUFFICIENT,
        &[
            "No KE-3 event id",
            "lotus-crypto-diag-carol.json: the report is @carol:lotus.example/CAROLDEV's",
        ],
    );
}

#[test]
fn q3_client_deserialization_look_alike_a_missing_megolm_session() {
    // KE-3's signature, DecryptionError, also catches a plain undecryptable
    // event (no Megolm session yet). The homeserver holds it with its
    // algorithm, but the client never failed to deserialize it.
    let mut s = Scenario::new("adv-q3-uisi");
    s.log = vec![filler(0, 1)];
    s.diag = vec![entry(
        1_000,
        "warn",
        "KE-3",
        "DecryptionError",
        &format!(
            "Error decrypting event (id={EV_UISI} type=m.room.encrypted sender={BOB} \
             room=!call:lotus.example ts={}): DecryptionError[msg: The sender's device has not sent \
             us the keys for this message., sender_key: c2VuZGVy, session_id: c2Vzc2lvbg]",
            t0() + 1_000
        ),
    )];
    s.db = Db::Rows(event_row(
        EV_UISI,
        1,
        r#"{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"x"}"#,
    ));
    let o = s.run();
    o.expect_q("Q3", INSUFFICIENT, &["do not say `algorithm` is missing"]);
}

// ---------------------------------------------------------------------------
// Q4 look-alikes

#[test]
fn q4_homeserver_latency_look_alike_one_slow_download_in_a_quiet_minute() {
    // The issue's table: every delayed-event restart takes 20 ms; one 4.2 s
    // media download in the same minute of fewer than 100 requests makes
    // its nearest-rank p99 4.2 s.
    let mut s = Scenario::new("adv-q4-one-download");
    let mut log: Vec<String> = (0..12u32)
        .map(|i| restart_by(1_000 + i as i64 * 5_000, 200 + i, 0.02, ME))
        .collect();
    log.extend(fast_requests(2_000, 57_000, 300));
    log.push(media_download(30_000, 400, 4.2));
    log.sort_by_key(|l| l[..23].to_string());
    s.log = log;
    s.diag = vec![restart_timed_out(20_000), restart_timed_out(40_000)];
    let o = s.run();
    o.expect_q(
        "Q4",
        "client-retry",
        &[
            "0 of 2",
            "whose delayed-event requests all took under 2000 ms",
        ],
    );
    o.cites("Q4", "server/homeserver.log:", "delayed_events/syd_");
    assert!(
        !o.cited
            .iter()
            .any(|(q, _, t)| q == "Q4" && t.contains("media/download")),
        "the download is not what Q4 rests on"
    );
}

#[test]
fn q4_homeserver_latency_look_alike_lines_that_merely_say_timeout() {
    // KE-4 client lines that mention a timeout value are not timeouts; the
    // minute is slow, but nothing timed out.
    let mut s = Scenario::new("adv-q4-not-timeouts");
    s.log = minute_with(0, 100, 30, 5);
    s.diag = vec![
        entry(
            10_000,
            "info",
            "KE-4",
            "delayed event",
            "[MembershipManager] scheduling delayed event restart, timeout=2000ms",
        ),
        entry(
            30_000,
            "info",
            "KE-4",
            "update_delayed_event",
            "update_delayed_event sent; local timeout 2000 ms",
        ),
    ];
    let o = s.run();
    o.expect_q("Q4", INSUFFICIENT, &["No delayed-event timeout was seen"]);
}

#[test]
fn q4_homeserver_latency_look_alike_someone_elses_timeouts() {
    // Carol's client timed out in a slow minute; ours did not report any.
    let mut s = Scenario::new("adv-q4-their-timeouts");
    s.log = minute_with(0, 100, 30, 5);
    s.reports = vec![Report::of(
        "lotus-crypto-diag-carol.json",
        Some(CAROL),
        Some("CAROLDEV"),
        vec![restart_timed_out(10_000), restart_timed_out(30_000)],
    )];
    let o = s.run();
    o.expect_q(
        "Q4",
        INSUFFICIENT,
        &[
            "No delayed-event timeout was seen",
            "set aside as not the subject's",
        ],
    );
}

#[test]
fn q4_client_retry_look_alike_a_handful_of_fast_requests() {
    // Five fast requests in the minute, none a delayed-event request: too
    // few to say the homeserver was healthy when the restarts timed out.
    let mut s = Scenario::new("adv-q4-handful");
    s.log = minute_with(0, 100, 5, 0);
    s.diag = vec![restart_timed_out(20_000), restart_timed_out(40_000)];
    let o = s.run();
    o.expect_q(
        "Q4",
        INSUFFICIENT,
        &["too few requests to judge (fewer than 20"],
    );
}

// ---------------------------------------------------------------------------
// Not over-corrected, and both sides of the thresholds

#[test]
fn q2_not_targeted_when_access_lines_cover_the_call_and_the_inbox_is_empty() {
    // The access log covers the call and shows no sendToDevice from any
    // participant; our device is known and its inbox, read right after the
    // call, is empty: the access log would have recorded the messages.
    recent_call();
    let mut s = Scenario::new("adv-ok-not-targeted");
    s.log = fast_requests(0, 120_000, 100);
    s.diag = vec![missing_key(30_000)];
    s.db = Db::Rows(inbox_rows(BOB, BOB_DEV, 3));
    let o = s.run();
    o.expect_q(
        "Q2",
        "not-targeted",
        &[
            "the access log, which covers the capture, shows no sendToDevice",
            "after the capture ended: its current state then",
        ],
    );
    // Uncovered minutes in the middle of the call: not any more.
    let mut s = Scenario::new("adv-ok-not-targeted-gap");
    let mut log = fast_requests(0, 20_000, 100);
    log.extend(fast_requests(9 * 60_000, 9 * 60_000 + 20_000, 200));
    s.log = log;
    s.db = Db::Rows(String::new());
    let o = s.run();
    o.expect_q(
        "Q2",
        INSUFFICIENT,
        &["access lines do not cover the whole capture"],
    );
}

#[test]
fn q1_divergence_on_an_old_log_when_the_row_predates_the_conflict() {
    // Read months later, but the row was added before the conflict: OTK
    // rows are never rewritten, so it is the row Synapse compared with.
    let mut s = Scenario::new("adv-ok-old-divergence");
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED);
    s.db = Db::Rows(format!(
        "{}{}",
        otk_row_added(KEY_ID, STORED, t0() - 60_000),
        fallback_row(false)
    ));
    let o = s.run();
    o.expect_q(
        "Q1",
        "divergence",
        &["before the first conflict, so it was stored then"],
    );
    o.cites("Q1", "db/last.json#otk_inventory", STORED);
}

#[test]
fn a_database_read_within_15_minutes_of_the_call_is_current_state_and_not_beyond() {
    let run = |name: &'static str, minutes_ago: i64| {
        call_started_minutes_ago(minutes_ago);
        exhausted_device(name).run()
    };
    // The capture ended 2 s after it started: 15 min 58 s before the
    // read is too far.
    let o = run("adv-ok-db-16min", 16);
    o.expect_q(
        "Q1",
        INSUFFICIENT,
        &["min after the capture ended: current state, too far"],
    );
    // 13 min 58 s: current state, weighed and said so.
    let o = run("adv-ok-db-14min", 14);
    o.expect_q(
        "Q1",
        "exhaustion",
        &["min after the capture ended: its current state then"],
    );
}

#[test]
fn q4_minute_thresholds_both_sides() {
    let run = |name: &'static str, n: u32, slow: u32| -> Value {
        let mut s = Scenario::new(name);
        s.log = minute_with(0, 100, n, slow);
        s.diag = vec![restart_timed_out(20_000), restart_timed_out(40_000)];
        s.run().verdicts["Q4"].clone()
    };
    let answer = |v: &Value| v["answer"].as_str().unwrap().to_string();
    // Two slow requests of fifty decide nothing; three make the minute slow.
    let v = run("adv-q4-two-slow", 50, 2);
    assert_eq!(answer(&v), INSUFFICIENT, "{v}");
    let v = run("adv-q4-three-slow", 50, 3);
    assert_eq!(answer(&v), "homeserver-latency", "{v}");
    // Nineteen fast requests are too few; twenty make the minute fast.
    let v = run("adv-q4-nineteen", 19, 0);
    assert_eq!(answer(&v), INSUFFICIENT, "{v}");
    let v = run("adv-q4-twenty", 20, 0);
    assert_eq!(answer(&v), "client-retry", "{v}");
}
