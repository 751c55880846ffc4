//! The database poller through an SSH local forward (direct-tcpip), against
//! a real OpenSSH sshd and a real PostgreSQL, both started by the harness.
//!
//! The `[database] url` names a host this machine cannot resolve, as the
//! deployment's `10.10.10.44` is unreachable from the operator's workstation:
//! PostgreSQL is reached only through the SSH server, which connects to it
//! at 127.0.0.1 (the address "as seen from the SSH host"). The results must
//! equal a direct poll of the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/sshd.rs"]
mod sshd;

use callcap::config::{CallConfig, DatabaseConfig, HostKeyCheck, HumanDuration, SshConfig};
use callcap::sources::DbPoll;
use callcap::sources::db::{self, poll_once_with_notes};
use callcap::sources::ssh::{ForwardFrom, open_local_forward};
use postgres::{PgCluster, SYNAPSE_CURRENT};
use serde_json::{Value, json};
use sshd::Sshd;
use std::path::Path;
use std::time::Duration;

const ME: &str = "@alice:lotus.test";
const DEV: &str = "ALICEDEV";
const UNREACHABLE: &str = "synapse-db.callcap-test.invalid";

fn fixture() -> String {
    format!(
        "INSERT INTO e2e_one_time_keys_json VALUES \
           ('{ME}', '{DEV}', 'signed_curve25519', 'AAAAAAAAAFA', 1782850000000, '{{\"key\":\"k1\"}}'), \
           ('{ME}', '{DEV}', 'signed_curve25519', 'AAAAAAAAAFB', 1782850000001, '{{\"key\":\"k2\"}}');\n\
         INSERT INTO e2e_fallback_keys_json VALUES ('{ME}', '{DEV}', 'signed_curve25519', 'AAAAAAAAAFF', '{{\"key\":\"fb\"}}', true);\n\
         INSERT INTO devices VALUES ('{ME}', '{DEV}', 'Lotus web', 1782850000000, '10.0.0.5', 'Mozilla/5.0', false), \
           ('@bob:lotus.test', 'BOBDEV', 'Bob', 1782850000100, '10.0.0.6', 'Element X', false);\n\
         INSERT INTO device_inbox SELECT '{ME}', '{DEV}', g, '{{}}', 'master' FROM generate_series(1, 3) g;\n\
         INSERT INTO delayed_events (delay_id, user_localpart, device_id, delay, send_ts, room_id, event_type, state_key, content) VALUES \
           ('syd_alice', 'alice', '{DEV}', 8000, 1782850008000, '!call:lotus.test', 'org.matrix.msc3401.call.member', 'x', '{{}}');\n\
         INSERT INTO event_json VALUES ('$noalg', '!call:lotus.test', '{{}}', '{{\"type\":\"m.room.encrypted\",\"content\":{{\"ciphertext\":\"x\"}}}}', 3);\n\
         INSERT INTO events (topological_ordering, event_id, type, room_id, processed, outlier, origin_server_ts, sender, stream_ordering) VALUES \
           (1, '$noalg', 'm.room.encrypted', '!call:lotus.test', true, false, 1782850001000, '@bob:lotus.test', 1);\n"
    )
}

fn database(url: String) -> DatabaseConfig {
    DatabaseConfig {
        url,
        password_env: None,
        via_ssh: true,
        poll_interval: HumanDuration::from_secs(5),
        statement_timeout: HumanDuration::from_secs(10),
    }
}

fn call() -> CallConfig {
    CallConfig {
        user_id: Some(ME.into()),
        device_id: Some(DEV.into()),
        participants: vec!["@bob:lotus.test/BOBDEV".into()],
        event_ids: vec![],
    }
}

fn ssh_config(s: &Sshd, dir: &Path) -> SshConfig {
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, s.known_hosts_line() + "\n").unwrap();
    let empty = dir.join("ssh_config");
    std::fs::write(&empty, "").unwrap();
    SshConfig {
        host: s.listen.clone(),
        port: Some(s.port),
        user: Some("root".into()),
        identity_file: Some(s.keys.client_key.clone()),
        passphrase_env: None,
        known_hosts: Some(known_hosts),
        host_key_check: HostKeyCheck::Strict,
        jump: None,
        ssh_config: Some(empty),
        identity_agent: Some("none".into()),
        connect_timeout: Some(HumanDuration::from_secs(5)),
        keepalive_interval: Some(HumanDuration::from_secs(1)),
    }
}

/// What a poll read, without its timing.
fn results(p: &DbPoll) -> Value {
    json!({"results": p.results, "problems": p.problems, "sql": p.sql})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_through_the_ssh_tunnel_equal_a_direct_poll() {
    let (pg, s) = tokio::join!(
        tokio::task::spawn_blocking(PgCluster::start),
        tokio::task::spawn_blocking(Sshd::start)
    );
    let (pg, s) = (pg.unwrap(), s.unwrap());
    pg.create_synapse_db("synapse", SYNAPSE_CURRENT).await;
    pg.exec("synapse", &fixture()).await;
    let ids = vec!["$noalg".to_string()];

    let direct = database(pg.url("postgres", "synapse"));
    let (direct_poll, _) = poll_once_with_notes(&direct, &call(), &ids, None)
        .await
        .expect("direct poll");
    // Not trivially equal: every query returned what the fixture holds.
    let r = &direct_poll.results;
    assert!(
        direct_poll.problems.is_empty(),
        "{:?}",
        direct_poll.problems
    );
    assert_eq!(r[db::OTK_INVENTORY].len(), 2);
    assert_eq!(r[db::OTK_COUNTS][0]["count"], json!(2));
    assert_eq!(r[db::FALLBACK_KEYS][0]["used"], json!(true));
    assert_eq!(r[db::DEVICE_INBOX_PENDING][0]["pending"], json!(3));
    assert_eq!(r[db::DELAYED_EVENTS][0]["delay_id"], json!("syd_alice"));
    assert_eq!(r[db::EVENT_LOOKUP][0]["algorithm_present"], json!(false));

    // The URL as the deployment's config would hold it: not reachable from here.
    let remote = database(format!(
        "postgres://postgres@{UNREACHABLE}:{}/synapse?sslmode=disable",
        pg.port
    ));
    let refused = db::poll_once(&remote, &call(), &ids).await;
    assert!(
        refused.is_err(),
        "the URL's host must not be reachable directly"
    );
    let (_, target_port) = db::database_target(&remote).unwrap();
    assert_eq!(target_port, pg.port);

    let mut cfg = ssh_config(&s, s.dir.path());
    for from in [ForwardFrom::SshHost, ForwardFrom::JumpHost] {
        if from == ForwardFrom::JumpHost {
            cfg.jump = Some(format!("root@{}:{}", s.listen, s.port));
        }
        // The SSH server reaches the database at 127.0.0.1 (its own view).
        let fwd = open_local_forward(&cfg, "127.0.0.1", target_port, from, None)
            .await
            .unwrap_or_else(|e| panic!("forward from {from:?}: {e}"));
        let local = fwd.local_addr();
        assert!(local.ip().is_loopback());
        assert_ne!(local.port(), pg.port);
        let (tunnelled, notes) = poll_once_with_notes(
            &remote,
            &call(),
            &ids,
            Some(("127.0.0.1".into(), local.port())),
        )
        .await
        .unwrap_or_else(|e| panic!("poll through the tunnel from {from:?}: {e}"));
        assert_eq!(
            results(&tunnelled),
            results(&direct_poll),
            "through the tunnel from {from:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains(&format!("via tunnel 127.0.0.1:{}", local.port()))),
            "notes name the tunnel: {notes:?}"
        );
        // The tunnel carries every connection: once closed, nothing answers.
        fwd.close().await;
        let closed = tokio::time::timeout(
            Duration::from_secs(30),
            poll_once_with_notes(
                &remote,
                &call(),
                &ids,
                Some(("127.0.0.1".into(), local.port())),
            ),
        )
        .await
        .expect("a closed tunnel fails promptly");
        assert!(
            closed.is_err(),
            "polled through a closed tunnel from {from:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tunnel_reconnects_after_the_ssh_server_restarts_between_polls() {
    let (pg, s) = tokio::join!(
        tokio::task::spawn_blocking(PgCluster::start),
        tokio::task::spawn_blocking(Sshd::start)
    );
    let (pg, mut s) = (pg.unwrap(), s.unwrap());
    pg.create_synapse_db("synapse", SYNAPSE_CURRENT).await;
    pg.exec("synapse", &fixture()).await;
    let remote = database(format!(
        "postgres://postgres@{UNREACHABLE}:{}/synapse?sslmode=disable",
        pg.port
    ));
    let cfg = ssh_config(&s, s.dir.path());
    let fwd = open_local_forward(&cfg, "127.0.0.1", pg.port, ForwardFrom::SshHost, None)
        .await
        .unwrap();
    let endpoint = Some(("127.0.0.1".to_string(), fwd.local_addr().port()));
    let (first, _) = poll_once_with_notes(&remote, &call(), &[], endpoint.clone())
        .await
        .unwrap();
    // The SSH server crashes and comes back (same port, same host key):
    // the forward's next connection opens a new SSH connection.
    tokio::task::block_in_place(|| s.restart());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let second = loop {
        match poll_once_with_notes(&remote, &call(), &[], endpoint.clone()).await {
            Ok((p, _)) => break p,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no poll through the tunnel after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(results(&second), results(&first));
    fwd.close().await;
}
