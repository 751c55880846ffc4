//! `callcap check` against a real OpenSSH sshd and a real PostgreSQL with
//! Synapse's tables (both started by the harness): everything passes on a
//! good config, and each broken thing fails with its own line: a wrong host
//! key, a missing log path, a database role that can INSERT, a missing
//! downloads folder. (`lab_e2e` runs it on the lab's config too.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/bundle.rs"]
mod support;

use postgres::{PgCluster, SYNAPSE_CURRENT};
use std::path::Path;
use support::*;

struct Paths<'a> {
    known_hosts: &'a Path,
    log: &'a Path,
    downloads: &'a Path,
}

fn config(dir: &Path, s: &sshd::Sshd, pg: &PgCluster, p: &Paths) -> std::path::PathBuf {
    std::fs::write(dir.join("ssh_config"), "").unwrap();
    let text = format!(
        r#"[ssh]
host = "127.0.0.1"
port = {port}
user = "root"
identity-file = "{key}"
known-hosts = "{kh}"
ssh-config = "{sc}"
identity-agent = "none"

[server-log]
path = "{log}"

[client]
downloads = "{dl}"

[call]
user-id = "@alice:lotus.test"
device-id = "ALICEDEV"

[database]
url = "postgres://callcap_ro@127.0.0.1:{pg}/synapse?sslmode=disable"
via-ssh = true
"#,
        port = s.port,
        key = s.keys.client_key.display(),
        kh = p.known_hosts.display(),
        sc = dir.join("ssh_config").display(),
        log = p.log.display(),
        dl = p.downloads.display(),
        pg = pg.port,
    );
    let path = dir.join(format!("callcap-{}.toml", rand_suffix()));
    std::fs::write(&path, text).unwrap();
    path
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `(exit code, stdout lines)`.
fn check(cfg: &Path) -> (Option<i32>, Vec<String>, String) {
    let out = callcap(&["check", "--config", cfg.to_str().unwrap()]);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn failed(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with('✗')).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_good_config_and_names_each_broken_thing() {
    let (pg, s) = tokio::join!(
        tokio::task::spawn_blocking(PgCluster::start),
        tokio::task::spawn_blocking(sshd::Sshd::start)
    );
    let (pg, s) = (pg.unwrap(), s.unwrap());
    pg.create_synapse_db("synapse", SYNAPSE_CURRENT).await;
    pg.exec(
        "synapse",
        "CREATE ROLE callcap_ro LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO callcap_ro;",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = dir.join("homeserver.log");
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S,%3f");
    std::fs::write(
        &log,
        format!("{now} - synapse.access.http.8008 - 643 - INFO - GET-1 - 127.0.0.1 - 8008 - {{None}} Processed request\n"),
    )
    .unwrap();
    let downloads = dir.join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, s.known_hosts_line() + "\n").unwrap();
    let good = Paths {
        known_hosts: &known_hosts,
        log: &log,
        downloads: &downloads,
    };

    let (code, lines, stderr) = tokio::task::block_in_place(|| check(&config(dir, &s, &pg, &good)));
    assert_eq!(code, Some(0), "{lines:#?}\n{stderr}");
    let checks: Vec<&String> = lines.iter().filter(|l| l.starts_with('✓')).collect();
    for what in [
        "✓ SSH:",
        "✓ server log:",
        "✓ log time zone:",
        "✓ clock offset:",
        "✓ database: connected through the SSH tunnel",
        "✓ database tables:",
        "✓ database role: 'callcap_ro' cannot INSERT",
        "✓ downloads folder:",
    ] {
        assert!(
            checks.iter().any(|l| l.starts_with(what)),
            "{what} in {lines:#?}"
        );
    }

    // A host key that is not the server's.
    let other = sshd::Keys::generate();
    let wrong = dir.join("known_hosts_wrong");
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{} {}\n",
            s.port,
            sshd::pub_key(&other.host_pub())
        ),
    )
    .unwrap();
    let cfg = config(
        dir,
        &s,
        &pg,
        &Paths {
            known_hosts: &wrong,
            ..good
        },
    );
    let (code, lines, stderr) = tokio::task::block_in_place(|| check(&cfg));
    assert_eq!(code, Some(1), "{lines:#?}");
    let f = failed(&lines);
    assert!(
        f[0].starts_with("✗ SSH: HOST KEY CHANGED for [127.0.0.1]:"),
        "{f:#?}"
    );
    assert!(
        f[0].contains("SHA256:") && f[0].contains("— fix: "),
        "{f:#?}"
    );
    assert!(stderr.contains("checks failed"), "{stderr}");

    // A log path that does not exist.
    let missing = dir.join("nope/homeserver.log");
    let cfg = config(
        dir,
        &s,
        &pg,
        &Paths {
            log: &missing,
            ..good
        },
    );
    let (code, lines, _) = tokio::task::block_in_place(|| check(&cfg));
    assert_eq!(code, Some(1));
    let f = failed(&lines);
    assert_eq!(f.len(), 1, "{lines:#?}");
    assert!(
        f[0].starts_with(&format!(
            "✗ server log: '{}' does not exist",
            missing.display()
        )),
        "{f:#?}"
    );
    assert!(f[0].contains("— fix: set [server-log] path"), "{f:#?}");

    // A downloads folder that does not exist.
    let nodl = dir.join("NoDownloads");
    let cfg = config(
        dir,
        &s,
        &pg,
        &Paths {
            downloads: &nodl,
            ..good
        },
    );
    let (code, lines, _) = tokio::task::block_in_place(|| check(&cfg));
    assert_eq!(code, Some(1));
    let f = failed(&lines);
    assert_eq!(f.len(), 1, "{lines:#?}");
    assert!(
        f[0].starts_with("✗ downloads folder:") && f[0].contains("does not exist"),
        "{f:#?}"
    );

    // A role that can write.
    pg.exec("synapse", "GRANT INSERT ON devices TO callcap_ro;")
        .await;
    let cfg = config(dir, &s, &pg, &good);
    let (code, lines, _) = tokio::task::block_in_place(|| check(&cfg));
    assert_eq!(code, Some(1));
    let f = failed(&lines);
    assert_eq!(f.len(), 1, "{lines:#?}");
    assert!(
        f[0].starts_with("✗ database role: role 'callcap_ro' holds write privileges")
            && f[0].contains("devices (INSERT)")
            && f[0].contains("docs/db-readonly-role.md"),
        "{f:#?}"
    );
}

/// The console runs the same checks at its start: what failed is in the
/// status line (a note, journaled). `[bundle] archive = true` archives the
/// bundle written on SIGTERM.
#[test]
fn the_console_runs_the_checks_at_its_start_and_archives_by_config() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let log = dir.join("homeserver.log");
    std::fs::write(
        &log,
        "2026-06-30 18:00:00,000 - synapse.x - 1 - INFO - sentinel - hi\n",
    )
    .unwrap();
    let out = dir.join("out");
    let missing = dir.join("no-such/log.yaml");
    let cfg = dir.join("callcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server-log]\npath = {log:?}\n\n[bundle]\nout = {out:?}\narchive = true\n\n[debug-loggers]\nlog-config = {missing:?}\nreload = \"true\"\n"
        ),
    )
    .unwrap();
    let console = Live::start(&["--config", cfg.to_str().unwrap()], "0");
    wait_until("the check's note", Duration::from_secs(30), || {
        journal_file(&out, "journal.jsonl").contains("\"source\":\"check\"")
    });
    let j = journal_file(&out, "journal.jsonl");
    assert!(
        j.contains(&format!(
            "✗ debug loggers: '{}' does not exist",
            missing.display()
        )),
        "{j}"
    );
    // Nothing was raised: no --debug-loggers, no `raise = true`.
    assert!(!j.contains("\"kind\":\"debug-loggers\""), "{j}");
    let bundle = console.stop();
    let name = bundle.file_name().unwrap().to_string_lossy().into_owned();
    let c = sha256sum_check(&out, &format!("{name}.tar.gz.sha256"));
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
}
