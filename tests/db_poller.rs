//! The database poller against a real PostgreSQL started by the harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;

use std::time::{Duration, Instant};

use callcap::config::{CallConfig, DatabaseConfig, HumanDuration};
use callcap::sources::db::{self, ConnectSpec, DbError, DbSession};
use callcap::sources::{DbPoll, Input, Row, SourceStatus};
use chrono::Utc;
use postgres::{Options, PgCluster, SYNAPSE_CURRENT, SYNAPSE_OLD};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

const ME: &str = "@alice:lotus.test";
const DEV: &str = "ALICEDEV";
/// Generous: the machine is shared and loaded; tests wait for events, not time.
const WAIT: Duration = Duration::from_secs(30);

fn db_config(url: String, interval_ms: u64, statement_timeout_ms: u64) -> DatabaseConfig {
    DatabaseConfig {
        url,
        password_env: None,
        via_ssh: false,
        poll_interval: HumanDuration(Duration::from_millis(interval_ms)),
        statement_timeout: HumanDuration(Duration::from_millis(statement_timeout_ms)),
    }
}

fn call() -> CallConfig {
    CallConfig {
        user_id: Some(ME.into()),
        device_id: Some(DEV.into()),
        participants: vec!["@bob:lotus.test/BOBDEV".into(), "@carol:remote.test".into()],
        event_ids: vec![],
    }
}

fn otk_row(user: &str, dev: &str, key_id: &str, ts: i64) -> String {
    format!(
        "('{user}', '{dev}', 'signed_curve25519', '{key_id}', {ts}, \
         '{{\"key\":\"k-{key_id}\",\"signatures\":{{\"{user}\":{{\"ed25519:{dev}\":\"sig\"}}}}}}')"
    )
}

/// Rows for alice (us), bob (participant on our HS), carol (other HS, but a
/// local `carol` exists too) and dave (not tracked).
fn fixture(old: bool) -> String {
    let mut s = format!(
        "INSERT INTO e2e_one_time_keys_json VALUES {}, {}, {};\n",
        otk_row(ME, DEV, "AAAAAAAAAFA", 1_782_850_000_000),
        otk_row(ME, DEV, "AAAAAAAAAFB", 1_782_850_000_001),
        otk_row("@bob:lotus.test", "BOBDEV", "B1", 1_782_850_000_002),
    );
    if old {
        s.push_str(
            "INSERT INTO e2e_fallback_keys_json (user_id, device_id, algorithm, key_id, key_json, used, ts_added_ms) VALUES \
             ('@alice:lotus.test', 'ALICEDEV', 'signed_curve25519', 'AAAAAAAAAFF', '{\"key\":\"fb\",\"fallback\":true}', true, 1782840000000);\n\
             INSERT INTO devices (user_id, device_id, display_name, last_seen, ip, user_agent, ts) VALUES \
             ('@alice:lotus.test', 'ALICEDEV', 'Lotus web', 1782850000000, '10.0.0.5', 'Mozilla/5.0', 1782800000000),\n\
             ('@bob:lotus.test', 'BOBDEV', 'Bob phone', 1782850000100, '10.0.0.6', 'Element X', 1782800000001),\n\
             ('@dave:lotus.test', 'DAVEDEV', 'Dave', 1, '10.0.0.7', 'curl', 1);\n",
        );
    } else {
        s.push_str(
            "INSERT INTO e2e_fallback_keys_json (user_id, device_id, algorithm, key_id, key_json, used) VALUES \
             ('@alice:lotus.test', 'ALICEDEV', 'signed_curve25519', 'AAAAAAAAAFF', '{\"key\":\"fb\",\"fallback\":true}', true);\n\
             INSERT INTO devices VALUES \
             ('@alice:lotus.test', 'ALICEDEV', 'Lotus web', 1782850000000, '10.0.0.5', 'Mozilla/5.0', false),\n\
             ('@bob:lotus.test', 'BOBDEV', 'Bob phone', 1782850000100, '10.0.0.6', 'Element X', false),\n\
             ('@dave:lotus.test', 'DAVEDEV', 'Dave', 1, '10.0.0.7', 'curl', false);\n\
             INSERT INTO delayed_events (delay_id, user_localpart, device_id, delay, send_ts, room_id, event_type, state_key, content) VALUES \
             ('syd_alice', 'alice', 'ALICEDEV', 8000, 1782850008000, '!call:lotus.test', 'org.matrix.msc3401.call.member', '_@alice:lotus.test_ALICEDEV_m.call', '{}'),\n\
             ('syd_localcarol', 'carol', 'C', 8000, 1782850008000, '!x:lotus.test', 'org.matrix.msc3401.call.member', 'x', '{}'),\n\
             ('syd_dave', 'dave', 'DAVEDEV', 8000, 1782850008000, '!x:lotus.test', 'org.matrix.msc3401.call.member', 'y', '{}');\n",
        );
    }
    s.push_str(
        "INSERT INTO device_inbox SELECT '@alice:lotus.test', 'ALICEDEV', g, '{\"type\":\"m.room.encrypted\"}', 'master' FROM generate_series(1, 3) g;\n\
         INSERT INTO device_inbox SELECT '@bob:lotus.test', 'BOBDEV', g, '{}', 'master' FROM generate_series(10, 11) g;\n\
         INSERT INTO device_inbox VALUES ('@dave:lotus.test', 'DAVEDEV', 20, '{}', 'master');\n\
         INSERT INTO event_json VALUES\n\
         ('$good', '!call:lotus.test', '{}', '{\"type\":\"m.room.encrypted\",\"content\":{\"algorithm\":\"m.megolm.v1.aes-sha2\",\"ciphertext\":\"x\"}}', 3),\n\
         ('$noalg', '!call:lotus.test', '{}', '{\"type\":\"m.room.encrypted\",\"content\":{\"ciphertext\":\"x\"}}', 3),\n\
         ('$nullalg', '!call:lotus.test', '{}', '{\"type\":\"m.room.encrypted\",\"content\":{\"algorithm\":null}}', 3);\n\
         INSERT INTO events (topological_ordering, event_id, type, room_id, processed, outlier, origin_server_ts, sender, stream_ordering) VALUES\n\
         (1, '$good', 'm.room.encrypted', '!call:lotus.test', true, false, 1782850001000, '@bob:lotus.test', 1),\n\
         (2, '$noalg', 'm.room.encrypted', '!call:lotus.test', true, false, 1782850002000, '@bob:lotus.test', 2),\n\
         (3, '$nullalg', 'm.room.encrypted', '!call:lotus.test', true, false, 1782850003000, '@bob:lotus.test', 3);\n",
    );
    s
}

async fn cluster_with(schema: &str, old: bool, opts: Options) -> PgCluster {
    let c = tokio::task::spawn_blocking(move || PgCluster::start_with(opts))
        .await
        .unwrap();
    c.create_synapse_db("synapse", schema).await;
    c.exec("synapse", &fixture(old)).await;
    c
}

async fn cluster(schema: &str, old: bool) -> PgCluster {
    cluster_with(schema, old, Options::default()).await
}

fn rows<'a>(p: &'a DbPoll, q: &str) -> &'a Vec<Row> {
    p.results.get(q).unwrap_or_else(|| {
        panic!(
            "no {q} in {:?} (problems {:?})",
            p.results.keys(),
            p.problems
        )
    })
}

fn find<'a>(rows: &'a [Row], col: &str, val: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.get(col) == Some(&Value::from(val)))
        .unwrap_or_else(|| panic!("no row with {col}={val} in {rows:?}"))
}

fn col(rows: &[Row], col: &str) -> Vec<Value> {
    rows.iter()
        .map(|r| r.get(col).cloned().unwrap_or(Value::Null))
        .collect()
}

/// A running poller and everything it sends.
struct Running {
    rx: mpsc::Receiver<Input>,
    seen: Vec<String>,
    shutdown: watch::Sender<bool>,
    ids: watch::Sender<Vec<String>>,
    task: tokio::task::JoinHandle<()>,
}

fn describe(i: &Input) -> String {
    match i {
        Input::Status { status, .. } => format!("status {status:?}"),
        Input::Note { text, .. } => format!("note {text}"),
        Input::DbPoll(p) => format!(
            "poll at {} changes {:?} problems {:?}",
            p.at,
            p.changes.iter().map(|c| &c.query).collect::<Vec<_>>(),
            p.problems
        ),
        other => format!("{other:?}"),
    }
}

impl Running {
    fn start(db: DatabaseConfig, call: CallConfig, tunnel: Option<(String, u16)>) -> Running {
        let (tx, rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (ids, ids_rx) = watch::channel(Vec::new());
        let task = tokio::spawn(db::run_poller(db, call, tx, shutdown_rx, tunnel, ids_rx));
        Running {
            rx,
            seen: Vec::new(),
            shutdown,
            ids,
            task,
        }
    }

    /// The next input matching `f`, within [`WAIT`].
    async fn until<T>(&mut self, what: &str, mut f: impl FnMut(&Input) -> Option<T>) -> T {
        let end = Instant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(i)) => {
                    self.seen.push(describe(&i));
                    if let Some(t) = f(&i) {
                        return t;
                    }
                }
                Ok(None) => panic!(
                    "poller ended while waiting for {what}; saw:\n{}",
                    self.seen.join("\n")
                ),
                Err(_) => panic!(
                    "timed out waiting for {what}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    async fn poll(&mut self) -> DbPoll {
        self.until("a poll", |i| match i {
            Input::DbPoll(p) => Some((**p).clone()),
            _ => None,
        })
        .await
    }

    async fn stop(self) {
        let Running {
            shutdown,
            task,
            mut rx,
            ..
        } = self;
        shutdown.send(true).unwrap();
        // Keep draining so the poller is never stuck on a full channel.
        let drain = tokio::spawn(async move {
            let mut last = None;
            while let Some(i) = rx.recv().await {
                if let Input::Status { status, .. } = i {
                    last = Some(status);
                }
            }
            last
        });
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        assert_eq!(drain.await.unwrap(), Some(SourceStatus::Stopped));
    }
}

fn change_rows<'a>(p: &'a DbPoll, q: &str, kind: &str) -> Vec<&'a Row> {
    p.changes
        .iter()
        .filter(|c| c.query == q)
        .flat_map(|c| match kind {
            "added" => c.added.iter(),
            "removed" => c.removed.iter(),
            _ => c.changed.iter(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_schema_poll_once_reads_every_query_with_parameters() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    let cfg = db_config(pg.url("postgres", "synapse"), 5000, 2000);
    let ids: Vec<String> = ["$good", "$noalg", "$nullalg", "$missing"]
        .map(String::from)
        .into();
    let p = db::poll_once(&cfg, &call(), &ids).await.unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert!(p.changes.is_empty());

    let inv = rows(&p, db::OTK_INVENTORY);
    assert_eq!(
        col(inv, "key_id"),
        [json!("AAAAAAAAAFA"), json!("AAAAAAAAAFB")]
    );
    let afa = find(inv, "key_id", "AAAAAAAAAFA");
    assert_eq!(afa["ts_added_ms"], json!(1_782_850_000_000_i64));
    assert_eq!(afa["user_id"], json!(ME));
    let stored = afa["key_json"].as_str().unwrap();
    assert_eq!(db::stored_key(stored).as_deref(), Some("k-AAAAAAAAAFA"));

    assert_eq!(
        rows(&p, db::OTK_COUNTS),
        &vec![
            json!({"algorithm": "signed_curve25519", "count": 2})
                .as_object()
                .unwrap()
                .clone()
        ]
    );

    let fb = rows(&p, db::FALLBACK_KEYS);
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0]["used"], json!(true));
    assert_eq!(fb[0]["key_id"], json!("AAAAAAAAAFF"));
    assert!(
        !fb[0].contains_key("ts_added_ms"),
        "current schema has none"
    );
    assert!(
        p.sql[db::FALLBACK_KEYS].contains("-- adapted: column e2e_fallback_keys_json.ts_added_ms")
    );

    let inbox = rows(&p, db::DEVICE_INBOX_PENDING);
    assert_eq!(col(inbox, "user_id"), [json!(ME), json!("@bob:lotus.test")]);
    assert_eq!(col(inbox, "pending"), [json!(3), json!(2)]);
    assert_eq!(col(inbox, "max_stream_id"), [json!(3), json!(11)]);

    let devices = rows(&p, db::DEVICES);
    assert_eq!(
        col(devices, "device_id"),
        [json!("ALICEDEV"), json!("BOBDEV")]
    );
    assert_eq!(devices[0]["last_seen"], json!(1_782_850_000_000_i64));
    assert_eq!(devices[0]["ip"], json!("10.0.0.5"));
    assert!(!devices[0].contains_key("ts"));

    // Localparts of our homeserver only: the local `carol` is not the participant.
    let delayed = rows(&p, db::DELAYED_EVENTS);
    assert_eq!(col(delayed, "delay_id"), [json!("syd_alice")]);
    assert_eq!(delayed[0]["send_ts"], json!(1_782_850_008_000_i64));

    let ev = rows(&p, db::EVENT_LOOKUP);
    assert_eq!(ev.len(), 4);
    let good = find(ev, "event_id", "$good");
    assert_eq!(good["found"], json!(true));
    assert_eq!(good["algorithm_present"], json!(true));
    assert_eq!(good["algorithm"], json!("m.megolm.v1.aes-sha2"));
    assert_eq!(good["type"], json!("m.room.encrypted"));
    assert_eq!(good["sender"], json!("@bob:lotus.test"));
    assert_eq!(good["origin_server_ts"], json!(1_782_850_001_000_i64));
    assert_eq!(good["redacted"], json!(false));
    assert_eq!(
        find(ev, "event_id", "$noalg")["algorithm_present"],
        json!(false)
    );
    assert_eq!(
        find(ev, "event_id", "$noalg")["content"],
        json!({"ciphertext": "x"})
    );
    assert_eq!(
        find(ev, "event_id", "$nullalg")["algorithm_present"],
        json!(false)
    );
    let missing = find(ev, "event_id", "$missing");
    assert_eq!(missing["found"], json!(false));
    assert_eq!(missing["algorithm_present"], Value::Null);

    // Ids are parameters, never part of the SQL text.
    for sql in p.sql.values() {
        assert!(!sql.contains("alice") && !sql.contains("$good"), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_schema_keeps_extra_columns_and_reports_missing_delayed_events() {
    let pg = cluster(SYNAPSE_OLD, true).await;
    let cfg = db_config(pg.url("postgres", "synapse"), 5000, 2000);
    let (p, notes) = db::poll_once_with_notes(&cfg, &call(), &[], None)
        .await
        .unwrap();

    let fb = rows(&p, db::FALLBACK_KEYS);
    assert_eq!(fb[0]["ts_added_ms"], json!(1_782_840_000_000_i64));
    let devices = rows(&p, db::DEVICES);
    assert_eq!(devices[0]["ts"], json!(1_782_800_000_000_i64));
    assert!(!devices[0].contains_key("hidden"));
    assert!(p.sql[db::DEVICES].contains("-- adapted: column devices.hidden is absent"));

    let why = &p.problems[db::DELAYED_EVENTS];
    assert!(why.contains("table delayed_events not found"), "{why}");
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(!p.results.contains_key(db::DELAYED_EVENTS));
    assert!(
        !p.results.contains_key(db::EVENT_LOOKUP),
        "no ids, no lookup"
    );
    assert!(
        notes.iter().any(|n| n.contains("delayed_events: skipped")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("devices: column devices.hidden is absent")),
        "{notes:?}"
    );

    // A device without one-time keys still reports signed_curve25519: 0.
    let mut other = call();
    other.device_id = Some("NEWDEV".into());
    let p = db::poll_once(&cfg, &other, &[]).await.unwrap();
    assert_eq!(
        rows(&p, db::OTK_COUNTS),
        &vec![
            json!({"algorithm": "signed_curve25519", "count": 0})
                .as_object()
                .unwrap()
                .clone()
        ]
    );
    assert!(rows(&p, db::OTK_INVENTORY).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otk_inserts_and_deletes_between_polls_appear_once_at_the_poll_that_saw_them() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    let mut run = Running::start(
        db_config(pg.url("postgres", "synapse"), 100, 2000),
        call(),
        None,
    );
    run.until("connecting", |i| {
        matches!(
            i,
            Input::Status {
                status: SourceStatus::Connecting,
                ..
            }
        )
        .then_some(())
    })
    .await;
    // Superuser: the role could write, and the pane is told so.
    let warning = run
        .until("the privilege warning", |i| match i {
            Input::Note { text, source, .. }
                if source == "database" && text.starts_with("warning:") =>
            {
                Some(text.clone())
            }
            _ => None,
        })
        .await;
    assert!(
        warning.contains("role 'postgres' is a superuser"),
        "{warning}"
    );
    assert!(
        warning.contains("e2e_one_time_keys_json (INSERT/UPDATE/DELETE/TRUNCATE)"),
        "{warning}"
    );
    run.until("live", |i| {
        matches!(
            i,
            Input::Status {
                status: SourceStatus::Live,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let first = run.poll().await;
    assert!(first.changes.is_empty(), "the first poll is the baseline");
    assert_eq!(rows(&first, db::OTK_INVENTORY).len(), 2);

    pg.exec(
        "synapse",
        &format!(
            "INSERT INTO e2e_one_time_keys_json VALUES {}",
            otk_row(ME, DEV, "AAAAAAAAAFC", 1_782_850_000_009)
        ),
    )
    .await;
    let committed = Utc::now();
    let mut polls = Vec::new();
    let seen = loop {
        let p = run.poll().await;
        if !change_rows(&p, db::OTK_INVENTORY, "added").is_empty() {
            break p;
        }
        polls.push(p);
    };
    let received = Utc::now();
    let added = change_rows(&seen, db::OTK_INVENTORY, "added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["key_id"], json!("AAAAAAAAAFC"));
    assert_eq!(added[0]["ts_added_ms"], json!(1_782_850_000_009_i64));
    // The change carries the time of the poll that first saw it: that poll
    // ended after the commit, and every poll that started after the commit
    // saw the row (none missed it).
    let seen_end = seen.at + chrono::Duration::milliseconds(seen.duration_ms as i64);
    assert!(seen_end >= committed, "{seen_end} < {committed}");
    assert!(seen.at <= received);
    for p in &polls {
        assert!(
            p.at <= committed,
            "a poll at {} after the commit missed the row",
            p.at
        );
    }
    let counts = change_rows(&seen, db::OTK_COUNTS, "changed");
    assert_eq!(counts[0]["count"], json!(3));

    pg.exec(
        "synapse",
        "DELETE FROM e2e_one_time_keys_json WHERE key_id = 'AAAAAAAAAFA'",
    )
    .await;
    let removed = loop {
        let p = run.poll().await;
        assert!(
            change_rows(&p, db::OTK_INVENTORY, "added").is_empty(),
            "reported twice"
        );
        let r: Vec<Row> = change_rows(&p, db::OTK_INVENTORY, "removed")
            .into_iter()
            .cloned()
            .collect();
        if !r.is_empty() {
            break r;
        }
    };
    assert_eq!(col(&removed, "key_id"), [json!("AAAAAAAAAFA")]);
    // Nothing more to report afterwards.
    for _ in 0..3 {
        let p = run.poll().await;
        assert!(p.changes.is_empty(), "{:?}", p.changes);
        assert_eq!(rows(&p, db::OTK_INVENTORY).len(), 2);
    }
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_event_ids_on_the_watch_channel_are_looked_up_once() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    let mut c = call();
    c.event_ids = vec!["$nullalg".into()];
    // A long interval: lookups must not wait for the timer.
    let mut run = Running::start(
        db_config(pg.url("postgres", "synapse"), 60_000, 2000),
        c,
        None,
    );
    let first = run.poll().await;
    let ev = rows(&first, db::EVENT_LOOKUP);
    assert_eq!(
        col(ev, "event_id"),
        [json!("$nullalg")],
        "config ids are looked up at start"
    );
    assert_eq!(change_rows(&first, db::EVENT_LOOKUP, "added").len(), 1);

    run.ids
        .send(vec!["$good".into(), "$missing".into()])
        .unwrap();
    let p = run.poll().await;
    let added = change_rows(&p, db::EVENT_LOOKUP, "added");
    assert_eq!(
        col(&added.into_iter().cloned().collect::<Vec<_>>(), "event_id"),
        [json!("$good"), json!("$missing")]
    );
    assert!(p.sql.contains_key(db::EVENT_LOOKUP));

    // The same ids again plus one: only the new one is looked up.
    run.ids
        .send(vec!["$good".into(), "$missing".into(), "$noalg".into()])
        .unwrap();
    let p = run.poll().await;
    let added = change_rows(&p, db::EVENT_LOOKUP, "added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["event_id"], json!("$noalg"));
    assert_eq!(
        rows(&p, db::EVENT_LOOKUP).len(),
        4,
        "results hold every lookup so far"
    );
    run.stop().await;
}

async fn open(cfg: &DatabaseConfig) -> (DbSession, Vec<String>) {
    let spec = ConnectSpec::new(cfg, None, &|_| None).unwrap();
    DbSession::open(&spec, &db::query_specs().unwrap())
        .await
        .unwrap()
}

fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()).unwrap_or_default(),
        other => panic!("not a database error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_poller_connection_are_refused() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    // Even as superuser: the session and the transaction are read-only.
    let (mut s, notes) = open(&db_config(pg.url("postgres", "synapse"), 5000, 2000)).await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("is a superuser and could write")),
        "{notes:?}"
    );
    let insert = format!(
        "INSERT INTO e2e_one_time_keys_json VALUES {}",
        otk_row(ME, DEV, "EVIL", 1)
    );
    let e = s.execute_in_poll_transaction(&insert).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25006", "{e}");
    let e = s
        .execute_in_session("DELETE FROM devices")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25006", "{e}");
    let e = s
        .execute_in_session("UPDATE e2e_fallback_keys_json SET used = false")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25006", "{e}");
    s.close().await;
    let mut su = pg.superuser("synapse").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

/// The ```sql blocks of docs/db-readonly-role.md, in order.
fn role_sql_from_docs() -> Vec<String> {
    let doc = include_str!("../docs/db-readonly-role.md");
    doc.split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_only_role_from_the_docs_reads_everything_and_cannot_write() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    let blocks = role_sql_from_docs();
    assert_eq!(blocks.len(), 2);
    for b in &blocks {
        pg.exec("synapse", b).await;
    }
    let cfg = db_config(pg.url("callcap_ro", "synapse"), 5000, 2000);
    let (mut s, notes) = open(&cfg).await;
    assert!(!notes.iter().any(|n| n.contains("warning")), "{notes:?}");
    assert!(notes[0].contains("as 'callcap_ro'"), "{notes:?}");
    // Exactly the tables read: every query runs, nothing is missing.
    let p = db::poll_once(&cfg, &call(), &["$good".to_string()])
        .await
        .unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.results.len(), 7);

    // Switching the session default off does not help: the role cannot write.
    s.execute_in_session("SET default_transaction_read_only = off")
        .await
        .unwrap();
    let insert = format!(
        "INSERT INTO e2e_one_time_keys_json VALUES {}",
        otk_row(ME, DEV, "EVIL", 1)
    );
    let e = s.execute_in_session(&insert).await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e}");
    let e = s
        .execute_in_session("DELETE FROM device_inbox")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e}");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_is_a_problem_and_the_other_queries_still_read() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    // Another session holds a lock that makes `devices` wait.
    let mut locker = pg.superuser("synapse").await;
    sqlx::raw_sql("BEGIN; LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let cfg = db_config(pg.url("postgres", "synapse"), 5000, 300);
    let p = db::poll_once(&cfg, &call(), &["$good".to_string()])
        .await
        .unwrap();
    let why = &p.problems[db::DEVICES];
    assert!(
        why.contains("statement timeout") && why.contains("300 ms"),
        "{why}"
    );
    assert!(!p.results.contains_key(db::DEVICES));
    for q in [
        db::OTK_INVENTORY,
        db::OTK_COUNTS,
        db::FALLBACK_KEYS,
        db::DEVICE_INBOX_PENDING,
        db::DELAYED_EVENTS,
        db::EVENT_LOOKUP,
    ] {
        assert!(
            p.results.contains_key(q),
            "{q} missing; problems {:?}",
            p.problems
        );
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_mid_capture_reports_errors_then_polling_resumes() {
    let mut pg = cluster(SYNAPSE_CURRENT, false).await;
    let mut run = Running::start(
        db_config(pg.url("postgres", "synapse"), 100, 2000),
        call(),
        None,
    );
    let first = run.poll().await;
    assert_eq!(rows(&first, db::OTK_INVENTORY).len(), 2);

    let mut pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let (attempt, reason) = run
        .until("reconnecting", |i| match i {
            Input::Status {
                status:
                    SourceStatus::Reconnecting {
                        attempt, reason, ..
                    },
                ..
            } => Some((*attempt, reason.clone())),
            _ => None,
        })
        .await;
    assert_eq!(attempt, 1);
    assert!(!reason.is_empty());
    // While it is down, attempts go on and say why (connection refused).
    let reason = run
        .until("a failed reconnect", |i| match i {
            Input::Status {
                status:
                    SourceStatus::Reconnecting {
                        attempt: 2, reason, ..
                    },
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(
        reason.contains("cannot connect to 127.0.0.1:")
            && reason.to_lowercase().contains("refused"),
        "{reason}"
    );

    let pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .unwrap();
    // A key arrives while the poller is still backing off: it is reported
    // once, against the baseline from before the restart.
    pg.exec(
        "synapse",
        &format!(
            "INSERT INTO e2e_one_time_keys_json VALUES {}",
            otk_row(ME, DEV, "AAAAAAAAAFD", 5)
        ),
    )
    .await;
    run.until("live again", |i| {
        matches!(
            i,
            Input::Status {
                status: SourceStatus::Live,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let mut reported = 0;
    for _ in 0..4 {
        let p = run.poll().await;
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        reported += change_rows(&p, db::OTK_INVENTORY, "added").len();
    }
    assert_eq!(reported, 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unreachable_server_are_reported_and_retried() {
    let pg = cluster_with(
        SYNAPSE_CURRENT,
        false,
        Options {
            hba: vec!["host all pwuser 127.0.0.1/32 scram-sha-256".into()],
            ..Options::default()
        },
    )
    .await;
    pg.exec("synapse", "CREATE ROLE pwuser LOGIN PASSWORD 'right-pw'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO pwuser")
        .await;
    let url = format!(
        "postgres://pwuser:wrong-pw@127.0.0.1:{}/synapse?sslmode=disable",
        pg.port
    );
    let mut run = Running::start(db_config(url, 100, 2000), call(), None);
    let reason = run
        .until("attempt 2", |i| match i {
            Input::Status {
                status:
                    SourceStatus::Reconnecting {
                        attempt: 2, reason, ..
                    },
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(
        reason.contains("login to 127.0.0.1:") && reason.contains("as 'pwuser' refused"),
        "{reason}"
    );
    assert!(
        reason.contains("password authentication failed"),
        "{reason}"
    );
    assert!(reason.contains("password from the URL"), "{reason}");
    assert!(
        !reason.contains("wrong-pw"),
        "the password leaked: {reason}"
    );
    assert!(
        run.seen.iter().all(|s| !s.contains("wrong-pw")),
        "{:?}",
        run.seen
    );
    run.stop().await;

    let right = format!(
        "postgres://pwuser:right-pw@127.0.0.1:{}/synapse?sslmode=disable",
        pg.port
    );
    let p = db::poll_once(&db_config(right, 5000, 2000), &call(), &[])
        .await
        .unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);

    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = db::poll_once(
        &db_config(format!("postgres://x@127.0.0.1:{dead}/synapse"), 5000, 2000),
        &call(),
        &[],
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DbError::Connect { .. }), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_override_reaches_the_database_through_a_local_forward() {
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    // A plain TCP forward stands in for the SSH tunnel.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fwd_port = listener.local_addr().unwrap().port();
    let pg_port = pg.port;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", pg_port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    // The URL names the real (here unreachable) host, as in the deployment.
    let cfg = DatabaseConfig {
        via_ssh: true,
        ..db_config(
            "postgres://postgres@10.255.255.1:5432/synapse?sslmode=disable".into(),
            100,
            2000,
        )
    };
    let direct = db::poll_once(
        &db_config(pg.url("postgres", "synapse"), 100, 2000),
        &call(),
        &[],
    )
    .await
    .unwrap();
    let mut run = Running::start(cfg, call(), Some(("127.0.0.1".into(), fwd_port)));
    let note = run
        .until("connected note", |i| match i {
            Input::Note { text, .. } if text.starts_with("connected to") => Some(text.clone()),
            _ => None,
        })
        .await;
    assert!(
        note.contains(&format!(
            "10.255.255.1:5432/synapse via tunnel 127.0.0.1:{fwd_port}"
        )),
        "{note}"
    );
    let tunneled = run.poll().await;
    assert_eq!(tunneled.results, direct.results);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sslmode_comes_from_the_url() {
    let pg = cluster_with(
        SYNAPSE_CURRENT,
        false,
        Options {
            hba: vec!["hostnossl all all 127.0.0.1/32 reject".into()],
            tls: true,
        },
    )
    .await;
    let base = format!("postgres://postgres@127.0.0.1:{}/synapse", pg.port);
    let e = db::poll_once(
        &db_config(format!("{base}?sslmode=disable"), 5000, 2000),
        &call(),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("the server wants TLS: add ?sslmode=require"),
        "{e}"
    );
    let p = db::poll_once(
        &db_config(format!("{base}?sslmode=require"), 5000, 2000),
        &call(),
        &[],
    )
    .await
    .unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let ca = pg.certificate();
    let p = db::poll_once(
        &db_config(
            format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()),
            5000,
            2000,
        ),
        &call(),
        &[],
    )
    .await
    .unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
}

/// Run in a child process so environment variables can be set for it alone.
#[tokio::test]
#[ignore = "run by password_env_and_pgpass_file_supply_the_password"]
async fn child_poll_once() {
    let Ok(url) = std::env::var("CALLCAP_CHILD_URL") else {
        return;
    };
    let mut cfg = db_config(url, 5000, 2000);
    cfg.password_env = std::env::var("CALLCAP_CHILD_PASSWORD_ENV").ok();
    match db::poll_once_with_notes(&cfg, &call(), &[], None).await {
        Ok((p, notes)) => println!("CHILD ok problems={} notes={notes:?}", p.problems.len()),
        Err(e) => println!("CHILD err {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_env_and_pgpass_file_supply_the_password() {
    use std::os::unix::fs::PermissionsExt;
    let pg = cluster_with(
        SYNAPSE_CURRENT,
        false,
        Options {
            hba: vec!["host all pwuser 127.0.0.1/32 scram-sha-256".into()],
            ..Options::default()
        },
    )
    .await;
    pg.exec("synapse", "CREATE ROLE pwuser LOGIN PASSWORD 'right-pw'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO pwuser")
        .await;
    let url = format!(
        "postgres://pwuser@127.0.0.1:{}/synapse?sslmode=disable",
        pg.port
    );
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# callcap test\n127.0.0.1:{}:synapse:pwuser:right-pw\n",
            pg.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();

    let child = |envs: Vec<(&str, String)>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "child_poll_once",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CALLCAP_CHILD_URL", &url)
        .env("HOME", home.path())
        .env_remove("PGPASSFILE")
        .env_remove("PGPASSWORD")
        .env_remove("CALLCAP_TEST_PW");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // libtest may print "test child_poll_once ... " on the same line.
        let at = stdout
            .find("CHILD ")
            .unwrap_or_else(|| panic!("no child result: {stdout}"));
        stdout[at..].lines().next().unwrap_or_default().to_string()
    };

    let r = child(vec![
        ("CALLCAP_CHILD_PASSWORD_ENV", "CALLCAP_TEST_PW".into()),
        ("CALLCAP_TEST_PW", "right-pw".into()),
    ]);
    assert!(r.starts_with("CHILD ok problems=0"), "{r}");
    let r = child(vec![("PGPASSFILE", pgpass.display().to_string())]);
    assert!(r.starts_with("CHILD ok problems=0"), "{r}");
    // password-env set but empty: falls back to the password file, with a note.
    let r = child(vec![
        ("CALLCAP_CHILD_PASSWORD_ENV", "CALLCAP_TEST_PW".into()),
        ("PGPASSFILE", pgpass.display().to_string()),
    ]);
    assert!(
        r.starts_with("CHILD ok") && r.contains("$CALLCAP_TEST_PW, which is not set"),
        "{r}"
    );
    // Nothing supplies a password.
    let r = child(vec![]);
    assert!(
        r.starts_with("CHILD err login to") && r.contains("PGPASSFILE or ~/.pgpass"),
        "{r}"
    );
    // A password file others can read is ignored, and callcap says why.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = child(vec![("PGPASSFILE", pgpass.display().to_string())]);
    assert!(
        r.starts_with("CHILD err") && r.contains("permissions 0644 let others read it"),
        "{r}"
    );
    assert!(!r.contains("right-pw"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_change_mid_capture_refits_the_queries_on_the_same_connection() {
    let pg = cluster(SYNAPSE_OLD, true).await;
    let mut run = Running::start(
        db_config(pg.url("postgres", "synapse"), 100, 2000),
        call(),
        None,
    );
    let first = run.poll().await;
    assert!(first.problems.contains_key(db::DELAYED_EVENTS));
    assert!(rows(&first, db::DEVICES)[0].contains_key("ts"));

    // Synapse upgraded under us: devices.ts goes, delayed_events appears.
    let delayed = SYNAPSE_CURRENT
        .split("CREATE TABLE delayed_events")
        .nth(1)
        .unwrap();
    pg.exec(
        "synapse",
        &format!(
            "ALTER TABLE devices DROP COLUMN ts; CREATE TABLE delayed_events{delayed}\n\
             INSERT INTO delayed_events (delay_id, user_localpart, delay, send_ts, room_id, event_type, content) \
             VALUES ('syd_new', 'alice', 8000, 5, '!r:lotus.test', 'org.matrix.msc3401.call.member', '{{}}');"
        ),
    )
    .await;
    let p = run
        .until("delayed_events read", |i| match i {
            Input::DbPoll(p) if p.results.contains_key(db::DELAYED_EVENTS) => Some((**p).clone()),
            _ => None,
        })
        .await;
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        col(rows(&p, db::DELAYED_EVENTS), "delay_id"),
        [json!("syd_new")]
    );
    assert!(!rows(&p, db::DEVICES)[0].contains_key("ts"));
    assert_eq!(
        rows(&p, db::DEVICES).len(),
        2,
        "devices kept its other columns"
    );
    assert!(
        run.seen
            .iter()
            .any(|s| s.contains("devices: column devices.ts is absent here")),
        "{:?}",
        run.seen
    );
    assert!(
        !run.seen.iter().any(|s| s.contains("status Reconnecting")),
        "refitting needs no reconnect: {:?}",
        run.seen
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_learnt_after_the_start_is_polled_from_then_on() {
    // [call] names no device; a client file names it later (the App tells
    // the poller): its own rows are read from the next poll, at once.
    let pg = cluster(SYNAPSE_CURRENT, false).await;
    let mut c = call();
    c.user_id = None;
    c.device_id = None;
    let (tx, rx) = mpsc::channel(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (ids, ids_rx) = watch::channel(Vec::new());
    let (subject, subject_rx) = watch::channel((None, None));
    let task = tokio::spawn(db::run_poller_learning(
        db_config(pg.url("postgres", "synapse"), 60_000, 2000),
        c,
        tx,
        shutdown_rx,
        None,
        ids_rx,
        subject_rx,
    ));
    let mut run = Running {
        rx,
        seen: Vec::new(),
        shutdown,
        ids,
        task,
    };
    let first = run.poll().await;
    assert!(
        first
            .problems
            .get(db::OTK_INVENTORY)
            .is_some_and(|p| p.contains("not set")),
        "{:?}",
        first.problems
    );
    subject
        .send((Some(ME.to_string()), Some(DEV.to_string())))
        .unwrap();
    // A long interval: the next poll comes from the learnt device.
    let p = run.poll().await;
    assert!(
        !p.problems.contains_key(db::OTK_INVENTORY),
        "{:?}",
        p.problems
    );
    assert_eq!(
        col(rows(&p, db::OTK_INVENTORY), "key_id"),
        [json!("AAAAAAAAAFA"), json!("AAAAAAAAAFB")]
    );
    run.stop().await;
}
