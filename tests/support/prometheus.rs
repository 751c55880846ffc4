//! A real Prometheus (Debian's `prometheus` package) on loopback for the
//! metrics tests: started on a free port in its own temp dir, ready once
//! `/-/ready` answers 200, killed (by its pid) on drop.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus in `dir` with the `prometheus.yml` that `config`
    /// writes for Prometheus's own port, its TSDB in `data` (`None`: a new
    /// one in `dir`) and `args` besides; waits up to 60 s for it to be
    /// ready.
    pub fn start(
        dir: tempfile::TempDir,
        config: impl FnOnce(u16) -> String,
        data: Option<&Path>,
        args: &[&str],
    ) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config(port)).unwrap();
        let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian's package)");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(60);
        while !p.get("/-/ready").is_some_and(|b| b.contains(" 200 ")) {
            assert!(Instant::now() < end, "Prometheus was not ready within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// A GET over plain HTTP/1.0 (the test's own, not callcap's): the
    /// whole answer, status line and headers included.
    pub fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
