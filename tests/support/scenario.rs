//! The harness of the decision-tree tests: Synapse-shaped log lines, diag
//! report entries and database rows in the shapes the real sources write,
//! and a [`Scenario`] that runs the real binary's `callcap analyze` over
//! them and checks every `basis` reference resolves in the bundle.
//!
//! A test file includes it next to `bundle.rs` and `postgres.rs`; one
//! PostgreSQL cluster serves the whole file (a database per scenario).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::bundle::{self, assert_basis_resolves, bundle_path, callcap, manifest};
use super::postgres::{PgCluster, SYNAPSE_CURRENT};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

pub const ME: &str = "@alice:lotus.example";
pub const DEV: &str = "RWDSUMBAID";
pub const BOB: &str = "@bob:lotus.example";
pub const BOB_DEV: &str = "FRIENDDEV1";
/// 2026-06-30 18:00:00 UTC, the capture's start unless a test calls
/// [`recent_call`].
pub const T0_MS: i64 = 1_782_842_400_000;

thread_local! {
    /// This test's capture start (each test runs on its own thread).
    static CALL_START: std::cell::Cell<i64> = const { std::cell::Cell::new(T0_MS) };
}

/// The capture's start, in ms.
pub fn t0() -> i64 {
    CALL_START.with(|c| c.get())
}

/// Moves this test's call to a few minutes ago. `analyze --db-url` reads
/// the database when it runs; for a scenario whose database state stands
/// for the call, the call must have just ended (as when the runbook's SQL
/// is run right after the tail is stopped). On the fixed 2026-06-30 date the
/// same read is months later: current state, not the call's.
pub fn recent_call() {
    let now = chrono::Utc::now().timestamp_millis();
    // Minute-aligned, 3 minutes back: the scenarios' minutes stay whole.
    CALL_START.with(|c| c.set((now / 60_000 - 3) * 60_000));
}

/// Moves this test's call to start `minutes` ago (not minute-aligned).
pub fn call_started_minutes_ago(minutes: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    CALL_START.with(|c| c.set(now - minutes * 60_000));
}

/// `--mark` for `ms` after the capture's start (UTC).
pub fn mark(ms: i64, label: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(t0() + ms).unwrap();
    format!("{}={label}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

pub const KEY_ID: &str = "AAAAAAAAAFA";
pub const STORED: &str = "Sm9zZXBoU3RvcmVkS2V5T25UaGVTZXJ2ZXIwMDAwMDAw";
pub const UPLOADED: &str = "Q2xpZW50VXBsb2FkZWRLZXlGcm9tUnVzdENyeXB0bzAw";

pub fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<&'static PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| PgCluster::start().stop_when_process_exits())
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---------------------------------------------------------------------------
// Synapse log lines, in the shapes Synapse writes (shared/reference §2).

/// `2026-06-30 18:MM:SS,mmm` for `ms` after T0.
pub fn ts(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(t0() + ms).unwrap();
    t.format("%Y-%m-%d %H:%M:%S,%3f").to_string()
}

pub fn access(
    ms: i64,
    seq: u32,
    method: &str,
    path: &str,
    status: u16,
    secs: f64,
    who: &str,
) -> String {
    format!(
        "{} - synapse.access.http.8008 - 521 - INFO - {method}-{seq} - 192.0.2.10 - 8008 - {{{who}}} \
         Processed request: {secs:.3}sec/0.000sec ru=(0.001sec, 0.000sec) db=(0.000sec/0.001sec/1) \
         2B {status} \"{method} {path} HTTP/1.1\" \"Mozilla/5.0 (X11; Linux x86_64) Chrome/138.0\" [0 dbevts]",
        ts(ms)
    )
}

/// The OTK conflict as `synapse.http.server` logs it, then its access line.
pub fn otk_conflict(ms: i64, seq: u32, key_id: &str, stored: &str, uploaded: &str) -> Vec<String> {
    otk_conflict_of(ms, seq, ME, DEV, key_id, stored, uploaded)
}

/// The same for any user and device: the `Adding one_time_keys` line (the
/// only one naming the device), the error, the access line.
pub fn otk_conflict_of(
    ms: i64,
    seq: u32,
    user: &str,
    device: &str,
    key_id: &str,
    stored: &str,
    uploaded: &str,
) -> Vec<String> {
    vec![
        format!(
            "{} - synapse.handlers.e2e_keys - 955 - INFO - POST-{seq} - Adding one_time_keys \
             dict_keys(['signed_curve25519:{key_id}']) for device '{device}' for user '{user}' at {}",
            ts(ms),
            t0() + ms
        ),
        format!(
            "{} - synapse.http.server - 131 - INFO - POST-{seq} - <XForwardedForRequest at 0x7f3a2c1d0e50 \
             method='POST' uri='/_matrix/client/v3/keys/upload' clientproto='HTTP/1.1' site='8008'> \
             SynapseError: 400 - One time key signed_curve25519:{key_id} already exists. \
             Old key: {{\"key\":\"{stored}\",\"signatures\":{{\"{user}\":{{\"ed25519:{device}\":\"c2lnMQ\"}}}}}}; \
             new key: {{'key': '{uploaded}', 'signatures': {{'{user}': {{'ed25519:{device}': 'c2lnMg'}}}}}}",
            ts(ms)
        ),
        access(
            ms,
            seq,
            "POST",
            "/_matrix/client/v3/keys/upload",
            400,
            0.012,
            user,
        ),
    ]
}

/// `synapse.9533_debug` to-device tracing for one recipient device.
pub fn to_device_stored(ms: i64, seq: u32, user: &str, device: &str) -> String {
    format!(
        "{} - synapse.9533_debug - 800 - DEBUG - PUT-{seq} - Storing to-device messages with \
         stream_id {}: ['{user}/{device} (msgid m{seq})']",
        ts(ms),
        seq * 3
    )
}

/// Our device's to-device delivery as Bob's client sends it and Synapse
/// traces it, at `ms`.
pub fn delivered_to_us(ms: i64, seq: u32) -> Vec<String> {
    vec![
        send_to_device(ms, seq, BOB),
        to_device_stored(ms + 5, seq, ME, DEV),
    ]
}

pub fn send_to_device(ms: i64, seq: u32, from: &str) -> String {
    access(
        ms,
        seq,
        "PUT",
        &format!("/_matrix/client/v3/sendToDevice/m.room.encrypted/m{seq}.0"),
        200,
        0.011,
        from,
    )
}

pub fn restart(ms: i64, seq: u32, secs: f64) -> String {
    restart_by(ms, seq, secs, ME)
}

/// A delayed-event restart of `who`'s.
pub fn restart_by(ms: i64, seq: u32, secs: f64, who: &str) -> String {
    access(
        ms,
        seq,
        "POST",
        &format!("/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_{seq}/restart"),
        200,
        secs,
        who,
    )
}

/// A media download (slow for reasons of its own: size, a remote server).
pub fn media_download(ms: i64, seq: u32, secs: f64) -> String {
    access(
        ms,
        seq,
        "GET",
        &format!("/_matrix/client/v1/media/download/matrix.org/Clip{seq}"),
        200,
        secs,
        ME,
    )
}

/// A fast request of another kind.
pub fn room_send(ms: i64, seq: u32) -> String {
    room_send_taking(ms, seq, 0.02)
}

/// Bob's message send into the call's room, taking `secs`.
pub fn room_send_taking(ms: i64, seq: u32, secs: f64) -> String {
    access(
        ms,
        seq,
        "PUT",
        "/_matrix/client/v3/rooms/!call:lotus.example/send/m.room.message/t1",
        200,
        secs,
        BOB,
    )
}

pub fn filler(ms: i64, seq: u32) -> String {
    format!(
        "{} - synapse.federation.transport.server.federation - 108 - INFO - PUT-{seq} - \
         Received txn {seq} from matrix.org. (PDUs: 1, EDUs: 0)",
        ts(ms)
    )
}

// ---------------------------------------------------------------------------
// Client diag report entries (shared/reference §3 strings).

pub fn entry(ms: i64, level: &str, ke: &str, signature: &str, message: &str) -> Value {
    json!({"ts": t0() + ms, "level": level, "ke": ke, "signature": signature, "message": message})
}

pub fn ke1_entry(ms: i64) -> Value {
    entry(
        ms,
        "error",
        "KE-1",
        "already exists",
        &format!(
            "POST /_matrix/client/v3/keys/upload 400 M_UNKNOWN: One time key signed_curve25519:{KEY_ID} \
             already exists. Old key: {{\"key\":\"{STORED}\"}}; new key: {{'key': '{UPLOADED}'}}"
        ),
    )
}

pub fn unexpected_encrypted(ms: i64) -> Value {
    entry(
        ms,
        "warn",
        "KE-2",
        "io.element.call.encryption_keys",
        "WARN matrix_sdk_crypto::machine: Received an unexpected encrypted to-device event \
         event_type=\"io.element.call.encryption_keys\"",
    )
}

pub fn missing_key(ms: i64) -> Value {
    entry(
        ms,
        "error",
        "KE-2",
        "MissingKey",
        &format!("MissingKey: missing key at index 3 for participant {BOB}:{BOB_DEV}"),
    )
}

pub fn decryption_error(ms: i64, event_id: &str) -> Value {
    entry(
        ms,
        "warn",
        "KE-3",
        "DecryptionError",
        &format!(
            "Error decrypting event (id={event_id} type=m.room.encrypted sender={BOB} \
             room=!call:lotus.example ts={}): DecryptionError[msg: missing field `algorithm` at line 1 \
             column 138, sender_key: undefined, session_id: undefined]",
            t0() + ms
        ),
    )
}

pub fn restart_timed_out(ms: i64) -> Value {
    entry(
        ms,
        "warn",
        "KE-4",
        "delayed event",
        "[MembershipManager] Network local timeout error while sending event, immediate retry ((0/10)) \
         AbortError: Restart delayed event timed out before the HS responded",
    )
}

// ---------------------------------------------------------------------------
// Database fixture rows (Synapse's current schema).

/// A one-time key of our device, added at the capture's start.
pub fn otk_row(key_id: &str, key: &str) -> String {
    otk_row_added(key_id, key, t0())
}

/// A one-time key of our device with its `ts_added_ms`.
pub fn otk_row_added(key_id: &str, key: &str, added_ms: i64) -> String {
    format!(
        "INSERT INTO e2e_one_time_keys_json VALUES ('{ME}', '{DEV}', 'signed_curve25519', '{key_id}', {added_ms}, \
         '{{\"key\":\"{key}\",\"signatures\":{{\"{ME}\":{{\"ed25519:{DEV}\":\"c2lnMQ\"}}}}}}');\n"
    )
}

/// Our device's `KEY_ID` stored as `STORED`, and its fallback key unused.
pub fn stored_key_and_unused_fallback() -> String {
    format!("{}{}", otk_row(KEY_ID, STORED), fallback_row(false))
}

/// The offending `KEY_ID` claimed since: another key of our device still
/// stored, and its fallback key unused.
pub fn key_claimed_since() -> String {
    format!(
        "{}{}",
        otk_row("AAAAAAAAAFB", "b3RoZXI"),
        fallback_row(false)
    )
}

pub fn fallback_row(used: bool) -> String {
    format!(
        "INSERT INTO e2e_fallback_keys_json VALUES ('{ME}', '{DEV}', 'signed_curve25519', 'AAAAAAAAAFF', \
         '{{\"key\":\"ZmFsbGJhY2s\",\"fallback\":true}}', {used});\n"
    )
}

pub fn inbox_rows(user: &str, device: &str, n: u32) -> String {
    format!(
        "INSERT INTO device_inbox SELECT '{user}', '{device}', g, \
         '{{\"type\":\"m.room.encrypted\",\"content\":{{\"algorithm\":\"m.olm.v1.curve25519-aes-sha2\"}}}}', 'master' \
         FROM generate_series(1, {n}) g;\n"
    )
}

pub fn event_row(event_id: &str, n: u32, content: &str) -> String {
    format!(
        "INSERT INTO event_json VALUES ('{event_id}', '!call:lotus.example', '{{}}', \
         '{{\"type\":\"m.room.encrypted\",\"content\":{content}}}', 3);\n\
         INSERT INTO events (topological_ordering, event_id, type, room_id, processed, outlier, \
         origin_server_ts, sender, stream_ordering) VALUES ({n}, '{event_id}', 'm.room.encrypted', \
         '!call:lotus.example', true, false, {T0_MS}, '{BOB}', {n});\n"
    )
}

pub fn devices_rows() -> String {
    format!(
        "INSERT INTO devices VALUES ('{ME}', '{DEV}', 'Lotus web', {T0_MS}, '192.0.2.10', 'Mozilla/5.0', false), \
         ('{BOB}', '{BOB_DEV}', 'Bob', {T0_MS}, '192.0.2.11', 'Element X', false);\n"
    )
}

// ---------------------------------------------------------------------------

pub enum Db {
    /// No `--db-url`.
    None,
    /// `--db-url` names a port where nothing listens.
    Unreachable,
    /// A fresh database with these rows (plus both devices).
    Rows(String),
}

/// A client diag report: who it says it is, its entries, and optionally
/// when it was downloaded (its file time; `analyze` takes that for its
/// arrival).
pub struct Report {
    pub name: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub entries: Vec<Value>,
    pub downloaded_at_ms: Option<i64>,
}

impl Report {
    /// A report of `user`/`device` (JSON null when `None`).
    pub fn of(name: &str, user: Option<&str>, device: Option<&str>, entries: Vec<Value>) -> Report {
        Report {
            name: name.to_string(),
            user_id: user.map(str::to_string),
            device_id: device.map(str::to_string),
            entries,
            downloaded_at_ms: None,
        }
    }
}

pub struct Scenario {
    pub name: &'static str,
    pub log: Vec<String>,
    /// A log from `bench/gen_synapse_log.py` instead (args after OUT).
    pub generated: Option<Vec<&'static str>>,
    /// Entries of our client's diag report (`userId` ME, `deviceId` DEV).
    pub diag: Vec<Value>,
    /// More reports (someone else's, or ours downloaded at a given time).
    pub reports: Vec<Report>,
    pub har: Option<Value>,
    pub db: Db,
    pub marks: Vec<String>,
    /// Pass no diag report of ours at all.
    pub no_diag: bool,
    /// Our client's evidence as Element Web's `rageshake.tar` (`log-0.log`
    /// in its console format, `issue.txt` naming ME/DEV) instead of the
    /// diag report, made with `tar`.
    pub rageshake: bool,
    /// More logs, `--log NAME=FILE` (livekit-server's, lk-jwt-service's).
    pub extra_logs: Vec<(&'static str, Vec<String>)>,
    /// `--user-id` and `--device-id` (ME and DEV unless changed).
    pub user_id: Option<&'static str>,
    pub device_id: Option<&'static str>,
    pub event_ids: Vec<String>,
    /// `--prometheus URL` and its optional `--selector`.
    pub prometheus: Option<(String, Option<String>)>,
}

impl Scenario {
    pub fn new(name: &'static str) -> Scenario {
        Scenario {
            name,
            log: Vec::new(),
            generated: None,
            diag: Vec::new(),
            reports: Vec::new(),
            har: None,
            db: Db::None,
            marks: Vec::new(),
            no_diag: false,
            rageshake: false,
            extra_logs: Vec::new(),
            user_id: Some(ME),
            device_id: Some(DEV),
            event_ids: Vec::new(),
            prometheus: None,
        }
    }

    pub fn run(self) -> Outcome {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("homeserver.log");
        match &self.generated {
            Some(args) => bundle::generate_log(&log, args),
            None => std::fs::write(&log, self.log.join("\n") + "\n").unwrap(),
        }
        let out_dir = tmp.path().join("out");
        let mut args: Vec<String> = [
            "analyze",
            "--log",
            log.to_str().unwrap(),
            "--participant",
            &format!("{BOB}/{BOB_DEV}"),
            "--restart-timeout",
            "2s",
            "--label",
            self.name,
            "--out",
            out_dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (name, lines) in &self.extra_logs {
            let p = tmp.path().join(format!("{name}.log"));
            std::fs::write(&p, lines.join("\n") + "\n").unwrap();
            args.extend(["--log".into(), format!("{name}={}", p.display())]);
        }
        if let Some(u) = self.user_id {
            args.extend(["--user-id".into(), u.into()]);
        }
        if let Some(d) = self.device_id {
            args.extend(["--device-id".into(), d.into()]);
        }
        for id in &self.event_ids {
            args.extend(["--event-id".into(), id.clone()]);
        }
        let mut reports = self.reports;
        if self.rageshake {
            let tar = write_rageshake(tmp.path(), &self.diag);
            args.extend(["--client".into(), tar.to_str().unwrap().into()]);
        } else if !self.no_diag {
            reports.insert(
                0,
                Report::of(
                    "lotus-crypto-diag-1782842700000.json",
                    Some(ME),
                    Some(DEV),
                    self.diag,
                ),
            );
        }
        for r in &reports {
            let p = tmp.path().join(&r.name);
            let report = json!({
                "sdkVersion": "41.6.0-rc.0", "deviceId": r.device_id, "userId": r.user_id,
                "syncState": "SYNCING", "cryptoReady": true, "entries": r.entries,
            });
            std::fs::write(&p, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
            if let Some(ms) = r.downloaded_at_ms {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
                std::fs::File::options()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_modified(at)
                    .unwrap();
            }
            args.extend(["--diag".into(), p.to_str().unwrap().into()]);
        }
        if let Some(har) = &self.har {
            let p = tmp.path().join("lotus.har");
            std::fs::write(&p, serde_json::to_vec_pretty(har).unwrap()).unwrap();
            args.extend(["--har".into(), p.to_str().unwrap().into()]);
        }
        for m in &self.marks {
            args.extend(["--mark".into(), m.clone()]);
        }
        if let Some((url, selector)) = &self.prometheus {
            args.extend(["--prometheus".into(), url.clone()]);
            if let Some(s) = selector {
                args.extend(["--selector".into(), s.clone()]);
            }
        }
        match &self.db {
            Db::None => {}
            Db::Unreachable => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                args.extend([
                    "--db-url".into(),
                    format!("postgres://postgres@127.0.0.1:{port}/synapse?sslmode=disable"),
                ]);
            }
            Db::Rows(sql) => {
                let c = cluster();
                let db = format!("synapse_{}", self.name.replace('-', "_"));
                let rows = format!("{}{sql}", devices_rows());
                block_on(async {
                    c.exec("postgres", &format!("DROP DATABASE IF EXISTS {db}"))
                        .await;
                    c.create_synapse_db(&db, SYNAPSE_CURRENT).await;
                    c.exec(&db, &rows).await;
                });
                args.extend(["--db-url".into(), c.url("postgres", &db)]);
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = callcap(&argv);
        assert!(
            out.status.success(),
            "{}: callcap analyze failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let bundle = bundle_path(&out);
        let m = manifest(&bundle);
        let cited = assert_basis_resolves(&bundle);
        bundle::verify_checksums(&bundle);
        bundle::assert_report_html_says_what_report_md_says(&bundle);
        let report = std::fs::read_to_string(bundle.join("report.md")).unwrap();
        Outcome {
            _tmp: tmp,
            bundle,
            verdicts: m["verdicts"].clone(),
            cited,
            report,
        }
    }
}

/// A device that ran out of one-time keys: its upload of `KEY_ID` refused
/// twice (1 s and 2 s into the call), none of its keys left in the
/// database and its fallback key used.
pub fn exhausted_device(name: &'static str) -> Scenario {
    let mut s = Scenario::new(name);
    s.log = otk_conflict(1_000, 10, KEY_ID, STORED, UPLOADED);
    s.log
        .extend(otk_conflict(2_000, 11, KEY_ID, STORED, UPLOADED));
    s.db = Db::Rows(fallback_row(true));
    s
}

/// Element Web's console line for a diag entry, as its `ConsoleLogger`
/// writes it (element-hq/element-web `src/rageshake/rageshake.ts`):
/// `${toISOString()} ${level} ${args.join(" ")}`, level I/W/E.
pub fn console_line(e: &Value) -> String {
    let at = chrono::DateTime::from_timestamp_millis(e["ts"].as_i64().unwrap()).unwrap();
    let level = match e["level"].as_str() {
        Some("error") => "E",
        Some("warn") => "W",
        _ => "I",
    };
    format!(
        "{} {level} {}",
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        e["message"].as_str().unwrap()
    )
}

/// `rageshake.tar` as Element Web's "Download logs" saves it: `log-0.log`
/// (with some ordinary lines around the entries, and an error with its
/// stack) and `issue.txt` naming ME/DEV, written by the real `tar`.
pub fn write_rageshake(dir: &std::path::Path, entries: &[Value]) -> PathBuf {
    let mut log = vec![format!(
        "{} I Starting load of AsyncWrapper for modal",
        chrono::DateTime::from_timestamp_millis(t0() - 60_000)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )];
    for e in entries {
        log.push(console_line(e));
        log.push("    at Object.decryptEvent (crypto-api.ts:120:9)".into());
    }
    let issue = format!(
        "user_id = {ME}\ndevice_id = {DEV}\ndevice_keys = curve25519:Y3VydmU, ed25519:ZWQyNTUxOQ\napp = element-web\n"
    );
    bundle::rageshake_tar(dir, &issue, &(log.join("\n") + "\n"))
}

pub struct Outcome {
    _tmp: tempfile::TempDir,
    pub bundle: PathBuf,
    pub verdicts: Value,
    pub cited: Vec<(String, String, String)>,
    pub report: String,
}

impl Outcome {
    pub fn answer(&self, q: &str) -> &str {
        self.verdicts[q]["answer"].as_str().unwrap()
    }

    pub fn summary(&self, q: &str) -> &str {
        self.verdicts[q]["summary"].as_str().unwrap()
    }

    pub fn basis(&self, q: &str) -> Vec<&str> {
        self.verdicts[q]["basis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    }

    /// Asserts the four answers, printing all verdicts when one differs.
    pub fn expect(&self, answers: [&str; 4]) {
        let got: Vec<&str> = ["Q1", "Q2", "Q3", "Q4"]
            .iter()
            .map(|q| self.answer(q))
            .collect();
        assert_eq!(
            got,
            answers,
            "verdicts:\n{}",
            serde_json::to_string_pretty(&self.verdicts).unwrap()
        );
    }

    /// Asserts one answer, and that its summary holds each of `says`.
    pub fn expect_q(&self, q: &str, answer: &str, says: &[&str]) {
        assert_eq!(
            self.answer(q),
            answer,
            "{q}:\n{}",
            serde_json::to_string_pretty(&self.verdicts).unwrap()
        );
        for s in says {
            assert!(
                self.summary(q).contains(s),
                "{q}'s summary does not say '{s}': {}",
                self.summary(q)
            );
        }
    }

    /// Some basis reference of `q` starts with `prefix` and cites text
    /// containing `needle`.
    pub fn cites(&self, q: &str, prefix: &str, needle: &str) {
        assert!(
            self.cited
                .iter()
                .any(|(qq, r, t)| qq == q && r.starts_with(prefix) && t.contains(needle)),
            "{q} cites nothing under '{prefix}' containing '{needle}': {:?}",
            self.cited
                .iter()
                .filter(|(qq, _, _)| qq == q)
                .collect::<Vec<_>>()
        );
    }

    /// The report's decision tree section, up to the next `## `.
    pub fn decision_tree(&self) -> &str {
        let start = self.report.find("## Decision tree").expect("decision tree");
        let rest = &self.report[start..];
        let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
        &rest[..end]
    }
}

pub const INSUFFICIENT: &str = "insufficient-evidence";

pub fn har_keys_upload(request_key: &str) -> Value {
    har_keys_upload_as(request_key, None)
}

/// The same, the keys/upload request carrying `Authorization: Bearer token`.
pub fn har_keys_upload_as(request_key: &str, token: Option<&str>) -> Value {
    let headers: Vec<Value> = token
        .map(|t| json!({"name": "Authorization", "value": format!("Bearer {t}")}))
        .into_iter()
        .collect();
    let error = format!(
        "One time key signed_curve25519:{KEY_ID} already exists. Old key: {{\"key\":\"{STORED}\"}}; \
         new key: {{'key': '{request_key}'}}"
    );
    json!({"log": {"version": "1.2", "creator": {"name": "Chrome", "version": "138"}, "entries": [
        {"startedDateTime": "2026-06-30T18:00:01.000Z", "time": 20,
         "request": {"method": "GET", "url": "https://lotus.example/_matrix/client/v3/sync?timeout=30000",
                     "headers": []},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}},
        {"startedDateTime": "2026-06-30T18:00:02.000Z", "time": 12,
         "request": {"method": "POST", "url": "https://lotus.example/_matrix/client/v3/keys/upload", "headers": headers,
                     "postData": {"mimeType": "application/json",
                                  "text": json!({"one_time_keys": {format!("signed_curve25519:{KEY_ID}"): {"key": request_key}}}).to_string()}},
         "response": {"status": 400, "headers": [],
                      "content": {"mimeType": "application/json",
                                  "text": json!({"errcode": "M_UNKNOWN", "error": error}).to_string()}}}
    ]}})
}
