//! A throwaway PostgreSQL cluster for integration tests: initdb into a temp
//! dir under /tmp, start on a free 127.0.0.1 port with fsync off, stop with
//! `pg_ctl` on drop. As root the server runs as `postgres` (initdb refuses
//! root); otherwise as the current user. Installs `postgresql` with apt-get
//! when no server binaries are found and we are root.
//!
//! Include with `#[path = "support/postgres.rs"] mod postgres;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};

/// The tables of a fresh current Synapse.
pub const SYNAPSE_CURRENT: &str = include_str!("../fixtures/synapse_current.sql");
/// An older layout: fallback keys with ts_added_ms, devices with ts, no delayed_events.
pub const SYNAPSE_OLD: &str = include_str!("../fixtures/synapse_old.sql");

#[derive(Debug, Default, Clone)]
pub struct Options {
    /// pg_hba.conf lines placed before the catch-all `trust` lines.
    pub hba: Vec<String>,
    /// Serve TLS with a self-signed certificate for localhost/127.0.0.1.
    pub tls: bool,
}

pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    as_postgres: bool,
    running: bool,
    // Last: removed after the server is stopped in Drop.
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn is_root() -> bool {
    let out = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// The newest `/usr/lib/postgresql/<v>/bin`, installing the package if needed.
fn server_bin() -> PathBuf {
    fn find() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, b)| b)
    }
    if let Some(b) = find() {
        return b;
    }
    assert!(
        is_root(),
        "PostgreSQL server binaries not found under /usr/lib/postgresql; install `postgresql`"
    );
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .status
        .success()
    };
    if !install() {
        run(Command::new("apt-get").arg("update"));
        assert!(install(), "apt-get install -y postgresql failed");
    }
    find().expect("postgresql installed but initdb not found")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl PgCluster {
    pub fn start() -> PgCluster {
        PgCluster::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> PgCluster {
        let bin = server_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("callcap-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        if as_postgres {
            let ok = run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))
            .status
            .success();
            assert!(ok, "chown postgres {}", dir.path().display());
        }
        let mut c = PgCluster {
            port: 0,
            bin,
            data,
            sock,
            log: dir.path().join("server.log"),
            as_postgres,
            running: false,
            dir,
        };
        let out = c.pg_cmd("initdb", |cmd| {
            cmd.arg("-D").arg(&c.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]);
        });
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut hba = opts.hba.join("\n");
        hba.push_str("\nlocal all all trust\nhost all all 127.0.0.1/32 trust\n");
        std::fs::write(c.data.join("pg_hba.conf"), hba).unwrap();
        if opts.tls {
            c.make_certificate();
            let conf = c.data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).unwrap();
            text.push_str(
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            );
            std::fs::write(conf, text).unwrap();
        }
        c.chown_data();
        // The port is picked then released: retry if another test took it.
        for attempt in 0..5 {
            c.port = free_port();
            if c.try_start() {
                return c;
            }
            eprintln!(
                "postgres did not start on port {} (attempt {attempt})",
                c.port
            );
        }
        panic!("postgres did not start: {}", c.server_log());
    }

    fn chown_data(&self) {
        if self.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(self.dir.path()));
        }
    }

    /// A test CA and a server certificate it signs for localhost/127.0.0.1
    /// (rustls refuses a self-signed CA certificate as the server's own).
    fn make_certificate(&self) {
        let d = &self.data;
        let ssl = |args: &[&str]| {
            let out = run(Command::new("openssl").current_dir(d).args(args));
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        ssl(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=callcap test CA",
            ],
        ]
        .concat());
        ssl(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat());
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }

    /// The CA that signed the server certificate, when started with `tls`.
    pub fn certificate(&self) -> PathBuf {
        self.data.join("ca.crt")
    }

    fn pg_cmd(&self, tool: &str, f: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        cmd.current_dir("/tmp");
        f(&mut cmd);
        run(&mut cmd)
    }

    fn try_start(&mut self) -> bool {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.sock.display()
        );
        let out = self.pg_cmd("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o", &opts, "start"]);
        });
        self.running = out.status.success();
        self.running
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = self.pg_cmd("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        });
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        assert!(!self.running);
        assert!(self.try_start(), "restart failed: {}", self.server_log());
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `postgres://user@127.0.0.1:port/db` (TLS off unless `extra` says).
    pub fn url(&self, user: &str, db: &str) -> String {
        format!(
            "postgres://{user}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A superuser connection to `db`, over the Unix socket (so pg_hba
    /// lines for TCP do not get in the way).
    pub async fn superuser(&self, db: &str) -> PgConnection {
        let opts = PgConnectOptions::new_without_pgpass()
            .socket(&self.sock)
            .port(self.port)
            .username("postgres")
            .database(db);
        opts.connect().await.unwrap()
    }

    /// Runs `sql` (several statements allowed) as superuser in `db`.
    pub async fn exec(&self, db: &str, sql: &str) {
        let mut c = self.superuser(db).await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- in:\n{sql}"));
        c.close().await.unwrap();
    }

    /// Creates `db` holding the Synapse tables of `schema`.
    pub async fn create_synapse_db(&self, db: &str, schema: &str) {
        self.exec("postgres", &format!("CREATE DATABASE {db}"))
            .await;
        self.exec(db, schema).await;
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the cluster for the rest of the test process (for one cluster
    /// shared by every test of a file, held in a static that is never
    /// dropped). A detached watchdog stops the server and removes its folder
    /// once this process has exited, however it exits.
    pub fn stop_when_process_exits(self) -> &'static PgCluster {
        use std::os::unix::process::CommandExt;
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- '{}' -D '{}' -m immediate -w stop",
                pg_ctl.display(),
                self.data.display()
            )
        } else {
            format!(
                "'{}' -D '{}' -m immediate -w stop",
                pg_ctl.display(),
                self.data.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.path().display()
        );
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/tmp")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group: a Ctrl-C to the test run does not stop it.
            .process_group(0)
            .spawn()
            .expect("start the cluster's watchdog");
        // It outlives this process; the thread only keeps it from being a zombie.
        std::thread::spawn(move || watchdog.wait());
        Box::leak(Box::new(self))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_cmd("pg_ctl", |cmd| {
                cmd.arg("-D")
                    .arg(&self.data)
                    .args(["-m", "immediate", "-w", "stop"]);
            });
        }
    }
}
