//! Runs the real binary in a pseudo-terminal and reads its screen with a
//! terminal emulator (vt100), the way an operator sees it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Tui {
    pub parser: Arc<Mutex<vt100::Parser>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl Tui {
    pub fn spawn(bin: &std::path::Path, args: &[&str], cols: u16, rows: u16) -> Tui {
        Tui::spawn_env(bin, args, &[], cols, rows)
    }

    /// `spawn` with environment variables set (`Some`) or removed (`None`).
    pub fn spawn_env(
        bin: &std::path::Path,
        args: &[&str],
        env: &[(&str, Option<&str>)],
        cols: u16,
        rows: u16,
    ) -> Tui {
        let pty = native_pty_system();
        let pair = pty
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new(bin);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("RUST_BACKTRACE", "0");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            }
        }
        if let Ok(cwd) = std::env::current_dir() {
            cmd.cwd(cwd);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn in pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Tui {
            parser,
            raw,
            writer,
            child,
            _master: pair.master,
        }
    }

    pub fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `pred(screen)` holds; panics with the screen on timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<u32> {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.exit_code());
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// All bytes written after the alternate screen was left, as text.
    pub fn output_after_restore(&self) -> String {
        let raw = self.raw.lock().unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        match text.rfind("\x1b[?1049l") {
            Some(i) => text[i + 8..].to_string(),
            None => text,
        }
    }

    /// SGR sequences (`ESC [ … m`) that set a colour, in all output so far.
    pub fn colour_sequences(&self) -> usize {
        let raw = self.raw.lock().unwrap();
        let mut n = 0;
        let mut i = 0;
        while i + 1 < raw.len() {
            if raw[i] == 0x1b && raw[i + 1] == b'[' {
                let start = i + 2;
                let mut j = start;
                while j < raw.len() && (raw[j].is_ascii_digit() || raw[j] == b';' || raw[j] == b':')
                {
                    j += 1;
                }
                if j < raw.len() && raw[j] == b'm' {
                    let params = String::from_utf8_lossy(&raw[start..j]);
                    let colour = params.split([';', ':']).any(|p| {
                        matches!(
                            p.parse::<u32>(),
                            Ok(30..=39 | 40..=49 | 58 | 59 | 90..=97 | 100..=107)
                        )
                    });
                    if colour {
                        n += 1;
                    }
                }
                i = j;
            } else {
                i += 1;
            }
        }
        n
    }

    pub fn left_alternate_screen(&self) -> bool {
        let raw = self.raw.lock().unwrap();
        let text = String::from_utf8_lossy(&raw);
        text.contains("\x1b[?1049h") && text.rfind("\x1b[?1049l") > text.rfind("\x1b[?1049h")
    }
}
