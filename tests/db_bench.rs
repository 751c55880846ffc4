//! How long one poll of every query takes with 100k one-time keys and 100k
//! queued to-device messages. Ignored by default; run with
//! `cargo test --release --test db_bench -- --ignored --nocapture`
//! (or `bench/db-poll.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;

use std::time::{Duration, Instant};

use callcap::config::{CallConfig, DatabaseConfig, HumanDuration};
use callcap::sources::db::{self, ConnectSpec, DbSession, Differ, Tracked};
use postgres::{PgCluster, SYNAPSE_CURRENT};

const ME: &str = "@alice:lotus.test";
const DEV: &str = "ALICEDEV";
const POLLS: usize = 10;

/// `otk_where`: whose keys the 100k OTK rows are; same for the inbox.
async fn load(pg: &PgCluster, db: &str, ours_only: bool) {
    pg.create_synapse_db(db, SYNAPSE_CURRENT).await;
    let (otk_user, otk_dev) = if ours_only {
        (format!("'{ME}'"), format!("'{DEV}'"))
    } else {
        // 1000 devices of 1000 users, 100 keys each; ours is device 0.
        (
            format!(
                "CASE WHEN g % 1000 = 0 THEN '{ME}' ELSE '@u' || (g % 1000) || ':lotus.test' END"
            ),
            format!("CASE WHEN g % 1000 = 0 THEN '{DEV}' ELSE 'DEV' || (g % 1000) END"),
        )
    };
    let sql = format!(
        "INSERT INTO e2e_one_time_keys_json \
           SELECT {otk_user}, {otk_dev}, 'signed_curve25519', lpad(to_hex(g), 11, 'A'), 1782850000000 + g, \
                  '{{\"key\":\"' || md5(g::text) || md5(g::text) || '\",\"signatures\":{{\"{ME}\":{{\"ed25519:{DEV}\":\"' || md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || '\"}}}}}}' \
           FROM generate_series(1, 100000) g;\n\
         INSERT INTO device_inbox \
           SELECT CASE WHEN {inbox_ours} THEN '{ME}' ELSE '@u' || (g % 1000) || ':lotus.test' END, \
                  CASE WHEN {inbox_ours} THEN '{DEV}' ELSE 'DEV' || (g % 1000) END, \
                  g, '{{\"type\":\"m.room.encrypted\",\"content\":{{\"ciphertext\":\"' || repeat('x', 200) || '\"}}}}', 'master' \
           FROM generate_series(1, 100000) g;\n\
         INSERT INTO e2e_fallback_keys_json VALUES ('{ME}', '{DEV}', 'signed_curve25519', 'FB', '{{\"key\":\"fb\"}}', false);\n\
         INSERT INTO devices SELECT '{ME}', 'D' || g, 'dev', 1, '10.0.0.1', 'ua', false FROM generate_series(1, 50) g;\n\
         ANALYZE;",
        inbox_ours = if ours_only { "true" } else { "g % 2 = 0" },
    );
    pg.exec(db, &sql).await;
}

async fn measure(pg: &PgCluster, db: &str, label: &str) {
    let cfg = DatabaseConfig {
        url: pg.url("postgres", db),
        password_env: None,
        via_ssh: false,
        poll_interval: HumanDuration::from_secs(5),
        statement_timeout: HumanDuration::from_secs(2),
    };
    let call = CallConfig {
        user_id: Some(ME.into()),
        device_id: Some(DEV.into()),
        participants: vec!["@u1:lotus.test".into(), "@u2:lotus.test".into()],
        event_ids: vec![],
    };
    let specs = db::query_specs().unwrap();
    let spec = ConnectSpec::new(&cfg, None, &|_| None).unwrap();
    let (mut session, _) = DbSession::open(&spec, &specs).await.unwrap();
    let tracked = Tracked::from_call(&call);
    let keys = specs
        .iter()
        .map(|s| (s.name.clone(), s.key.clone()))
        .collect();
    let mut differ = Differ::new(keys, &[]);
    let mut totals = Vec::new();
    let mut queries = Vec::new();
    let mut rows = 0;
    for _ in 0..POLLS {
        let t = Instant::now();
        let raw = session.poll(&tracked, &[]).await.unwrap();
        let changes = differ.apply(&raw.results);
        totals.push(t.elapsed());
        queries.push(Duration::from_millis(raw.duration_ms));
        assert!(changes.is_empty());
        assert!(
            raw.problems.keys().all(|q| q == db::OTK_INVENTORY),
            "{:?}",
            raw.problems
        );
        rows = raw.results.values().map(Vec::len).sum::<usize>();
    }
    session.close().await;
    totals.sort();
    queries.sort();
    println!(
        "{label}: {rows} rows returned; poll incl. decode+diff: median {:?}, max {:?} (queries+decode median {:?}) over {POLLS} polls",
        totals[POLLS / 2],
        totals[POLLS - 1],
        queries[POLLS / 2]
    );
    assert!(totals[POLLS / 2] < cfg.poll_interval.as_duration() / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn poll_time_with_100k_otk_rows_and_100k_device_inbox_rows() {
    let pg = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    load(&pg, "spread", false).await;
    load(&pg, "ours", true).await;
    measure(
        &pg,
        "spread",
        "100k OTKs over 1000 devices (100 ours), 100k inbox rows (50k ours)",
    )
    .await;
    measure(
        &pg,
        "ours",
        "100k OTKs all ours (capped at 10k rows), 100k inbox rows all ours",
    )
    .await;
}
