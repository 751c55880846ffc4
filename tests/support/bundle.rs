//! Helpers for tests that run the real binary and check the bundle it wrote.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_callcap"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `callcap` with args; backtraces off so stderr is stable.
pub fn callcap(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run callcap")
}

/// Runs `callcap` with args, which must succeed; returns the bundle path it
/// printed.
pub fn callcap_bundle(args: &[&str]) -> PathBuf {
    let out = callcap(args);
    assert!(
        out.status.success(),
        "callcap {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle_path(&out)
}

/// `rageshake.tar` in `dir` as Element Web's "Download logs" saves it:
/// `issue.txt` and `log-0.log` with these contents, written by the real
/// `tar`.
pub fn rageshake_tar(dir: &Path, issue_txt: &str, log_0: &str) -> PathBuf {
    let src = dir.join("rageshake-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("issue.txt"), issue_txt).unwrap();
    std::fs::write(src.join("log-0.log"), log_0).unwrap();
    let tar = dir.join("rageshake.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .args(["issue.txt", "log-0.log"])
        .status()
        .unwrap();
    assert!(st.success(), "tar failed");
    tar
}

/// The bundle path: the last line of stdout.
pub fn bundle_path(out: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    PathBuf::from(last.trim())
}

pub fn manifest(bundle: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(bundle.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// Every file's checksum in the manifest matches the file as written, and
/// every file in the folder (but the manifest) is listed.
pub fn verify_checksums(bundle: &Path) {
    let m = manifest(bundle);
    let files = m["files"].as_array().expect("files");
    let mut listed = std::collections::BTreeSet::new();
    for f in files {
        let rel = f["path"].as_str().unwrap();
        let data = std::fs::read(bundle.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            f["bytes"].as_u64().unwrap(),
            data.len() as u64,
            "{rel} bytes"
        );
        let sum = hex::encode(Sha256::digest(&data));
        assert_eq!(f["sha256"].as_str().unwrap(), sum, "{rel} sha256");
        listed.insert(rel.to_string());
    }
    for entry in walk(bundle) {
        let rel = entry
            .strip_prefix(bundle)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel != "manifest.json" {
            assert!(
                listed.contains(&rel),
                "{rel} is in the bundle but not in the manifest"
            );
        }
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn count_lines(data: &[u8]) -> usize {
    let n = data.iter().filter(|b| **b == b'\n').count();
    if !data.is_empty() && !data.ends_with(b"\n") {
        n + 1
    } else {
        n
    }
}

/// `LC_ALL=C grep -cE pattern file`, the oracle for server counts.
pub fn grep_count(pattern: &str, file: &Path, fixed: bool) -> u64 {
    let out = Command::new("grep")
        .env("LC_ALL", "C")
        .arg("-c")
        .arg(if fixed { "-F" } else { "-E" })
        .arg("-e")
        .arg(pattern)
        .arg(file)
        .output()
        .expect("grep");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Runs the repository's log generator.
pub fn generate_log(out: &Path, args: &[&str]) {
    let st = Command::new("python3")
        .arg(repo().join("bench/gen_synapse_log.py"))
        .arg(out)
        .args(args)
        .status()
        .expect("python3");
    assert!(st.success());
}

/// What a verdict's `basis` reference points at inside `bundle`, or why it
/// does not resolve. Forms (see the manifest contract):
/// - `path:N`: line N (1-based) of a file in the bundle;
/// - `path#entries[N]`, `path#log.entries[N]`, `db/last.json#query`: a value
///   inside a JSON file, as a dotted path whose segments may end in `[N]`.
///
/// Returns the cited line, or the cited JSON value as text.
pub fn resolve_basis(bundle: &Path, reference: &str) -> Result<String, String> {
    let inside = |rel: &str| -> Result<PathBuf, String> {
        if rel.is_empty()
            || rel.starts_with('/')
            || rel.split('/').any(|c| c == ".." || c.is_empty())
        {
            return Err(format!("'{rel}' is not a path inside the bundle"));
        }
        let p = bundle.join(rel);
        if !p.is_file() {
            return Err(format!("'{rel}' is not a file in the bundle"));
        }
        Ok(p)
    };
    if let Some((rel, pointer)) = reference.split_once('#') {
        let p = inside(rel)?;
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{rel}: {e}"))?;
        let mut v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{rel} is not JSON: {e}"))?;
        for seg in pointer.split('.') {
            let (name, index) = match seg.split_once('[') {
                Some((name, rest)) => {
                    let n = rest
                        .strip_suffix(']')
                        .and_then(|n| n.parse::<usize>().ok())
                        .ok_or_else(|| format!("bad index in '{seg}' of '{reference}'"))?;
                    (name, Some(n))
                }
                None => (seg, None),
            };
            v = v
                .get(name)
                .cloned()
                .ok_or_else(|| format!("{rel} has no '{name}' (from '{reference}')"))?;
            if let Some(n) = index {
                let len = v.as_array().map(Vec::len);
                v = v.get(n).cloned().ok_or_else(|| {
                    format!("{rel}: '{name}' has no element {n} (length {len:?})")
                })?;
            }
        }
        return Ok(v.to_string());
    }
    let (rel, line) = reference
        .rsplit_once(':')
        .ok_or_else(|| format!("'{reference}' is neither path:N nor path#pointer"))?;
    let n: usize = line
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("'{reference}': line '{line}' is not a number ≥ 1"))?;
    let p = inside(rel)?;
    let data = std::fs::read(&p).map_err(|e| format!("{rel}: {e}"))?;
    let lines = count_lines(&data);
    data.split(|b| *b == b'\n')
        .nth(n - 1)
        .filter(|_| n <= lines)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .ok_or_else(|| format!("{rel} has {lines} lines, '{reference}' cites line {n}"))
}

/// Every `basis` reference of every verdict in the manifest resolves to a
/// real line or value in the bundle. Returns `(question, reference, cited
/// text)` for further checks.
pub fn assert_basis_resolves(bundle: &Path) -> Vec<(String, String, String)> {
    let m = manifest(bundle);
    let verdicts = m["verdicts"].as_object().expect("manifest has verdicts");
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (q, v) in verdicts {
        for r in v["basis"].as_array().expect("basis is a list") {
            let r = r.as_str().expect("a basis reference is a string");
            match resolve_basis(bundle, r) {
                Ok(text) => out.push((q.clone(), r.to_string(), text)),
                Err(e) => bad.push(format!("{q}: {e}")),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "unresolvable basis references in {}:\n{}",
        bundle.display(),
        bad.join("\n")
    );
    out
}

/// The one bundle (`call-…`) a capture wrote into `out`.
pub fn find_bundle(out: &Path) -> PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("call-")
        })
        .expect("a bundle")
}

/// Polls `f` every 50 ms until it holds, panicking after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The text of `file` in every live journal (`.callcap-journal-*`) under
/// `out`, read lossily; empty while there is none.
pub fn journal_file(out: &Path, file: &str) -> String {
    std::fs::read_dir(out)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".callcap-journal-")
        })
        .filter_map(|e| std::fs::read(e.path().join(file)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// The journal text says `source` went live (its status line).
pub fn says_live(journal: &str, source: &str) -> bool {
    journal.contains(&format!(
        "\"source\":\"{source}\",\"status\":{{\"state\":\"live\""
    ))
}

/// Waits until the journal under `out` says each of `sources` is live.
pub fn wait_live(out: &Path, sources: &[&str], what: &str, timeout: std::time::Duration) {
    wait_until(what, timeout, || {
        let j = journal_file(out, "journal.jsonl");
        sources.iter().all(|s| says_live(&j, s))
    });
}

/// A running `callcap live --headless` (stdout and stderr piped), killed
/// if the test fails before it is stopped.
pub struct Live(Option<std::process::Child>);

impl Live {
    /// `callcap live --headless ARGS` with `RUST_BACKTRACE` set to
    /// `backtrace`.
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S], backtrace: &str) -> Live {
        Live::spawn(
            Command::new(bin())
                .args(["live", "--headless"])
                .args(args)
                .env("RUST_BACKTRACE", backtrace),
        )
    }

    /// Runs `cmd`, which execs the console, with stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Live {
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Live(Some(child))
    }

    /// The console's pid.
    pub fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Sends `signal` (`-TERM`, `-HUP`, `-INT`).
    pub fn send(&self, signal: &str) {
        assert!(
            Command::new("kill")
                .args([signal, &self.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the console to exit.
    pub fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    /// Sends `signal` and waits for the console to exit.
    pub fn signal(self, signal: &str) -> Output {
        self.send(signal);
        self.wait()
    }

    /// `signal`; the console must exit 0: the bundle its last stdout line
    /// names.
    pub fn stop_with(self, signal: &str) -> PathBuf {
        let out = self.signal(signal);
        assert!(
            out.status.success(),
            "callcap exited {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        bundle_path(&out)
    }

    /// SIGTERM; the console must exit 0: the bundle.
    pub fn stop(self) -> PathBuf {
        self.stop_with("-TERM")
    }

    /// SIGKILL: the console writes nothing on its way out.
    pub fn kill_9(mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `sha256sum -c NAME` in `dir`, as the recipient of an archive runs it.
pub fn sha256sum_check(dir: &Path, sidecar: &str) -> Output {
    Command::new("sha256sum")
        .arg("-c")
        .arg(sidecar)
        .current_dir(dir)
        .output()
        .expect("sha256sum")
}

/// The figure's numbers in `report.html`: its JSON data block.
pub fn figure_data(bundle: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(bundle.join("report.html")).expect("report.html");
    let open = r#"<script type="application/json" id="callcap-figure-data">"#;
    let start = html.find(open).expect("the figure's data block") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    serde_json::from_str(&html[start..end]).expect("the data block is JSON")
}

/// One question of the decision tree as a report states it: the question,
/// its answer, summary, the runbook's path, and each cited reference with
/// its quote (code spans written with backticks, as in `report.md`).
#[derive(Debug, PartialEq)]
pub struct TreeAnswer {
    pub q: String,
    pub answer: String,
    pub summary: String,
    pub path: Option<String>,
    pub evidence: Vec<(String, String)>,
}

/// The decision tree of `report.md`.
pub fn tree_of_report_md(md: &str) -> Vec<TreeAnswer> {
    let start = md.find("## Decision tree").expect("decision tree");
    let rest = &md[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    let mut out: Vec<TreeAnswer> = Vec::new();
    for line in rest[..end].lines() {
        if let Some(h) = line.strip_prefix("### ") {
            out.push(TreeAnswer {
                q: h[..2].to_string(),
                answer: String::new(),
                summary: String::new(),
                path: None,
                evidence: Vec::new(),
            });
        } else if let Some(a) = line.strip_prefix("**→ `") {
            let (answer, summary) = a.split_once("`**: ").expect("answer line");
            let last = out.last_mut().expect("a question first");
            last.answer = answer.to_string();
            last.summary = summary.to_string();
        } else if let Some(p) = line.strip_prefix("Path: ") {
            out.last_mut().expect("a question first").path = Some(p.to_string());
        } else if let Some(e) = line.strip_prefix("- `") {
            let (r, quote) = e.split_once('`').expect("a reference");
            out.last_mut()
                .expect("a question first")
                .evidence
                .push((r.to_string(), quote.to_string()));
        }
    }
    out
}

/// HTML text back to what it says: `<code>` as backticks, entities decoded.
fn html_text(s: &str) -> String {
    s.replace("<code>", "`")
        .replace("</code>", "`")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text between `open` (searched from `from`) and the next `close`.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)?;
    Some(&s[i..i + j])
}

/// The decision tree of `report.html`.
pub fn tree_of_report_html(html: &str) -> Vec<TreeAnswer> {
    let mut out = Vec::new();
    for part in html.split(r#"<section class="question""#).skip(1) {
        let part = &part[..part.find("</section>").expect("section end")];
        let q = between(part, r#"data-question=""#, "\"").expect("data-question");
        let answer = between(part, r#"data-answer=""#, "\"").expect("data-answer");
        let summary = between(part, r#"<span class="summary">"#, "</span>").expect("summary");
        let path = between(part, r#"<p class="path">Path: "#, "</p>").map(html_text);
        let evidence = part
            .split("<li data-ref=\"")
            .skip(1)
            .map(|li| {
                let r = &li[..li.find('"').unwrap()];
                let quote = between(li, r#"<span class="quote">"#, "</span></li>").unwrap();
                (html_text(r), html_text(quote))
            })
            .collect();
        out.push(TreeAnswer {
            q: q.to_string(),
            answer: html_text(answer),
            summary: html_text(summary),
            path,
            evidence,
        });
    }
    out
}

/// `report.html` states the decision tree as `report.md` does: the same
/// answers, summaries, paths, references and quoted lines (redacted alike).
pub fn assert_report_html_says_what_report_md_says(bundle: &Path) {
    let md = std::fs::read_to_string(bundle.join("report.md")).expect("report.md");
    let html = std::fs::read_to_string(bundle.join("report.html")).expect("report.html");
    let (a, b) = (tree_of_report_md(&md), tree_of_report_html(&html));
    assert_eq!(a.len(), 4, "report.md's tree: {a:?}");
    assert_eq!(a, b, "report.html's decision tree differs from report.md's");
}
