//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol: a page is opened at a given window size with every console
//! message, uncaught exception and network request it causes recorded.
//!
//! The protocol is JSON over a websocket (tungstenite); Chromium is started
//! on a fresh profile with `--remote-debugging-port=0` and tells its port
//! in the profile's `DevToolsActivePort` file. Host names resolve nowhere
//! (`--host-resolver-rules`), so a page that reached for the network would
//! show a failed request, never a real one.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events received while waiting for replies, not yet looked at.
    events: Vec<Value>,
}

/// What loading a page did.
#[derive(Debug, Default)]
pub struct Load {
    pub session: String,
    /// Console messages of level error or warning, log entries of level
    /// error, and uncaught exceptions.
    pub errors: Vec<String>,
    /// Every request the page made (the document itself included).
    pub requests: Vec<String>,
}

impl Browser {
    pub fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromium (scripts/test installs Debian's chromium)");
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_string(), path.trim().to_string());
                }
            }
            assert!(Instant::now() < deadline, "chromium told no DevTools port");
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("DevTools websocket");
        Browser {
            child,
            _profile: profile,
            ws,
            next_id: 1,
            events: Vec::new(),
        }
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("DevTools message") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(_) => panic!("DevTools closed the connection"),
                _ => {}
            }
        }
    }

    /// Sends a command (to a page's session, or to the browser) and
    /// returns its result; events that arrive meanwhile are kept.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let v = self.read();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for the event `method` of `session`; events before it are kept.
    fn wait_event(&mut self, session: &str, method: &str) {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| e["method"] == method && e["sessionId"] == session)
        {
            self.events.remove(i);
            return;
        }
        loop {
            let v = self.read();
            if v["method"] == method && v["sessionId"] == session {
                return;
            }
            self.events.push(v);
        }
    }

    /// Opens `file` in a new tab of `width`×`height` CSS pixels and waits
    /// for its load event.
    pub fn open(&mut self, file: &Path, (width, height): (u32, u32)) -> Load {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let s = Some(session.as_str());
        for domain in ["Page", "Runtime", "Log", "Network"] {
            self.call(s, &format!("{domain}.enable"), json!({}));
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        );
        let url = format!("file://{}", file.canonicalize().unwrap().display());
        self.call(s, "Page.navigate", json!({"url": url}));
        self.wait_event(&session, "Page.loadEventFired");
        // Anything the page does right after its load event shows too.
        self.call(
            s,
            "Runtime.evaluate",
            json!({"expression": "new Promise(r => setTimeout(r, 300))", "awaitPromise": true}),
        );
        let mut load = Load {
            session: session.clone(),
            ..Load::default()
        };
        for e in std::mem::take(&mut self.events) {
            if e["sessionId"] != session.as_str() {
                self.events.push(e);
                continue;
            }
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Network.requestWillBeSent" => load
                    .requests
                    .push(p["request"]["url"].as_str().unwrap_or("").into()),
                "Runtime.consoleAPICalled"
                    if matches!(p["type"].as_str(), Some("error" | "warning" | "assert")) =>
                {
                    load.errors
                        .push(format!("console {}: {}", p["type"], p["args"]))
                }
                "Runtime.exceptionThrown" => load
                    .errors
                    .push(format!("exception: {}", p["exceptionDetails"])),
                "Log.entryAdded"
                    if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) =>
                {
                    load.errors.push(format!("log: {}", p["entry"]))
                }
                _ => {}
            }
        }
        load
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, session: &str, expression: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// A PNG of the page: the viewport, or the whole page when `full`.
    pub fn screenshot(&mut self, session: &str, full: bool) -> Vec<u8> {
        use base64::Engine;
        let r = self.call(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": full}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
