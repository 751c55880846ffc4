//! The on-disk journal: a folder laid out like the bundle, appended to as
//! data arrives, so memory stays flat and a crash loses nothing. Exporting
//! finishes the folder in place and renames it to the bundle's label.

use crate::domain::redact::Tally;
use crate::model::client::{ArtifactKind, ClientArtifact, ClientCopy};
use crate::model::journal_entry::JournalEntry;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const SERVER_LOG: &str = "server/homeserver.log";
pub const ENTRIES: &str = "journal.jsonl";
pub const KE_LOGS: [&str; 4] = [
    "server/KE-1.log",
    "server/KE-2.log",
    "server/KE-3.log",
    "server/KE-4.log",
];
/// Prefix of journal folders inside the output folder.
pub const JOURNAL_PREFIX: &str = ".callcap-journal-";

/// What the manifest says of a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileFacts {
    pub bytes: u64,
    pub sha256: String,
    pub redactions: u64,
    /// `redactions` by rule name (rules that replaced nothing left out).
    pub by_rule: BTreeMap<String, u64>,
}

/// An append-only file whose checksum is kept as it is written.
#[derive(Debug)]
pub struct HashedFile {
    out: BufWriter<File>,
    hasher: Sha256,
    pub bytes: u64,
    pub redactions: u64,
    pub by_rule: Tally,
}

impl HashedFile {
    pub fn create(path: &Path) -> io::Result<HashedFile> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(HashedFile {
            out: BufWriter::with_capacity(256 * 1024, f),
            hasher: Sha256::new(),
            bytes: 0,
            redactions: 0,
            by_rule: Tally::default(),
        })
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)?;
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn facts(&self) -> FileFacts {
        FileFacts {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.clone().finalize()),
            redactions: self.redactions,
            by_rule: self.by_rule.names(),
        }
    }
}

/// A [`HashedFile`] on its own thread: the server log is the bulk of what a
/// capture writes, and copying it into the page cache and hashing it runs
/// alongside the matching instead of after it.
#[derive(Debug)]
pub struct BackgroundFile {
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    /// Buffers the writer is done with, reused so a flood allocates nothing.
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The first write error, reported on the next call.
    error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    pub redactions: u64,
    pub by_rule: Tally,
}

enum Job {
    Write(Vec<u8>),
    Flush,
    Facts(std::sync::mpsc::Sender<FileFacts>),
}

impl BackgroundFile {
    pub fn create(path: &Path) -> io::Result<BackgroundFile> {
        let mut file = HashedFile::create(path)?;
        // A few chunks in flight: enough to overlap, little memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4);
        let (spent_tx, spent) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let err = error.clone();
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                for job in rx {
                    let r = match job {
                        Job::Write(buf) => {
                            let r = file.write(&buf);
                            let _ = spent_tx.try_send(buf);
                            r
                        }
                        Job::Flush => file.flush(),
                        Job::Facts(reply) => {
                            let r = file.flush();
                            let _ = reply.send(file.facts());
                            r
                        }
                    };
                    if let Err(e) = r
                        && let Ok(mut slot) = err.lock()
                    {
                        slot.get_or_insert(e.to_string());
                    }
                }
                let _ = file.flush();
            })?;
        Ok(BackgroundFile {
            tx: Some(tx),
            spent,
            thread: Some(thread),
            error,
            redactions: 0,
            by_rule: Tally::default(),
        })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        if let Some(e) = self.error.lock().ok().and_then(|s| s.clone()) {
            return Err(io::Error::other(e));
        }
        self.tx
            .as_ref()
            .ok_or_else(|| io::Error::other("journal writer stopped"))?
            .send(job)
            .map_err(|_| io::Error::other("journal writer stopped"))
    }

    pub fn write(&mut self, buf: Vec<u8>) -> io::Result<()> {
        self.send(Job::Write(buf))
    }

    /// Copies `data` into a reused buffer and hands it to the writer.
    pub fn write_slice(&mut self, data: &[u8]) -> io::Result<()> {
        let mut buf = self.spent.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        self.write(buf)
    }

    /// A buffer the writer is done with, if one is back.
    pub fn spare(&mut self) -> Option<Vec<u8>> {
        self.spent.try_recv().ok()
    }

    /// Asks the writer to push its buffer to the OS; does not wait.
    pub fn flush(&mut self) -> io::Result<()> {
        self.send(Job::Flush)
    }

    /// Waits until everything sent so far is written; then its facts.
    pub fn facts(&self) -> FileFacts {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.send(Job::Facts(tx)).is_err() {
            return FileFacts::default();
        }
        let mut f = rx.recv().unwrap_or_default();
        f.redactions = self.redactions;
        f.by_rule = self.by_rule.names();
        f
    }
}

impl Drop for BackgroundFile {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checksums a file already on disk.
pub fn hash_file(path: &Path) -> io::Result<FileFacts> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let bytes = io::copy(&mut f, &mut h)?;
    Ok(FileFacts {
        bytes,
        sha256: hex::encode(h.finalize()),
        redactions: 0,
        by_rule: BTreeMap::new(),
    })
}

#[derive(Debug)]
pub struct Journal {
    pub dir: PathBuf,
    /// The (first) server log's file.
    pub server: BackgroundFile,
    /// The other server logs' files, when there are several.
    more_servers: Vec<BackgroundFile>,
    /// Every server log's bundle path, in order.
    server_files: Vec<String>,
    pub ke: [HashedFile; 4],
    entries: HashedFile,
    /// Files written whole (client copies, db results): path → facts.
    pub written: BTreeMap<String, FileFacts>,
    db_changes: Option<HashedFile>,
    /// Files appended to as their data arrives (the metrics' raw scrapes
    /// and answers): path → file.
    appended: BTreeMap<String, HashedFile>,
    /// Where each site rule in force came from (`site-1` first), for the
    /// manifest and the report.
    pub site_rules: Vec<String>,
    /// What could not be written (the first of each kind): the bundle
    /// says it is missing.
    pub problems: Vec<String>,
}

/// Problems kept: the first ones say what broke.
const PROBLEMS_MAX: usize = 20;

impl Journal {
    /// Creates a fresh journal folder `dir` (must not exist).
    pub fn create(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
        fs::create_dir(dir)?;
        for sub in ["server", "client", "db"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let ke = [
            HashedFile::create(&dir.join(KE_LOGS[0]))?,
            HashedFile::create(&dir.join(KE_LOGS[1]))?,
            HashedFile::create(&dir.join(KE_LOGS[2]))?,
            HashedFile::create(&dir.join(KE_LOGS[3]))?,
        ];
        Ok(Journal {
            dir: dir.to_path_buf(),
            server: BackgroundFile::create(&dir.join(SERVER_LOG))?,
            more_servers: Vec::new(),
            server_files: vec![SERVER_LOG.to_string()],
            ke,
            entries: HashedFile::create(&dir.join(ENTRIES))?,
            written: BTreeMap::new(),
            db_changes: None,
            appended: BTreeMap::new(),
            site_rules: Vec::new(),
            problems: Vec::new(),
        })
    }

    /// Remembers that something could not be written (once per text).
    pub fn problem(&mut self, what: &str) {
        if self.problems.len() < PROBLEMS_MAX && !self.problems.iter().any(|p| p == what) {
            self.problems.push(what.to_string());
        }
    }

    /// The server logs' files, by bundle path (`server/homeserver.log` for
    /// the only one; `server/<name>.log` for each of several). Called
    /// before anything is written to them.
    pub fn set_server_files(&mut self, files: &[String]) -> io::Result<()> {
        if files == self.server_files.as_slice() || files.is_empty() {
            return Ok(());
        }
        let mut made = files
            .iter()
            .map(|f| BackgroundFile::create(&self.dir.join(f)))
            .collect::<io::Result<Vec<_>>>()?;
        if !files.iter().any(|f| f == SERVER_LOG) {
            let _ = fs::remove_file(self.dir.join(SERVER_LOG));
        }
        self.server = made.remove(0);
        self.more_servers = made;
        self.server_files = files.to_vec();
        Ok(())
    }

    /// Replaces KE log `i` with `data` (the same lines in another order),
    /// keeping its redaction counts.
    pub fn replace_ke(&mut self, i: usize, data: &[u8]) -> io::Result<()> {
        self.ke[i].flush()?;
        let mut f = HashedFile::create(&self.dir.join(KE_LOGS[i]))?;
        f.write(data)?;
        f.flush()?;
        f.redactions = self.ke[i].redactions;
        f.by_rule = std::mem::take(&mut self.ke[i].by_rule);
        self.ke[i] = f;
        Ok(())
    }

    /// Every server log's bundle path, in order.
    pub fn server_files(&self) -> &[String] {
        &self.server_files
    }

    /// The file of server log `index`.
    pub fn server_file(&mut self, index: usize) -> &mut BackgroundFile {
        match index
            .checked_sub(1)
            .and_then(|i| self.more_servers.get_mut(i))
        {
            Some(f) => f,
            None => &mut self.server,
        }
    }

    /// Every server log's file, with its bundle path.
    fn servers(&self) -> impl Iterator<Item = (&String, &BackgroundFile)> {
        self.server_files
            .iter()
            .zip(std::iter::once(&self.server).chain(self.more_servers.iter()))
    }

    /// Appends a structured entry to `journal.jsonl`. A diag report's
    /// entries are not written again: its line names the report's copy in
    /// `client/` (path, sha256, size) instead, the entries being in it.
    pub fn record(&mut self, entry: &JournalEntry) -> io::Result<()> {
        let by_ref = match entry {
            JournalEntry::Client { at, artifact } => {
                self.client_copy(artifact).map(|copy| JournalEntry::Client {
                    at: *at,
                    artifact: Box::new(artifact.by_reference(copy)),
                })
            }
            _ => None,
        };
        let entry = by_ref.as_ref().unwrap_or(entry);
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.entries.write(&line)?;
        // Structured entries are rare and precious: make them durable now.
        self.entries.flush()
    }

    /// The copy a diag report's entries can be read again from: one this
    /// journal wrote whole.
    fn client_copy(&self, a: &ClientArtifact) -> Option<ClientCopy> {
        if a.kind != ArtifactKind::Diag || a.entries.is_empty() || a.copy.is_some() {
            return None;
        }
        let path = format!("client/{}", a.file);
        let facts = self.written.get(&path)?;
        Some(ClientCopy {
            sha256: facts.sha256.clone(),
            bytes: facts.bytes,
            entries: a.entries.len(),
            path,
        })
    }

    /// Appends one change line to `db/changes.jsonl`.
    pub fn db_change(&mut self, line: &serde_json::Value) -> io::Result<()> {
        if self.db_changes.is_none() {
            self.db_changes = Some(HashedFile::create(&self.dir.join("db/changes.jsonl"))?);
        }
        if let Some(f) = self.db_changes.as_mut() {
            let mut buf = serde_json::to_vec(line).map_err(io::Error::other)?;
            buf.push(b'\n');
            f.write(&buf)?;
            f.flush()?;
        }
        Ok(())
    }

    /// Appends `data` to the file `rel` (made on first use), durably;
    /// returns the offset it starts at.
    pub fn append(&mut self, rel: &str, data: &[u8]) -> io::Result<u64> {
        if !self.appended.contains_key(rel) {
            let path = self.dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            self.appended
                .insert(rel.to_string(), HashedFile::create(&path)?);
        }
        let f = self
            .appended
            .get_mut(rel)
            .ok_or_else(|| io::Error::other("no such file"))?;
        let offset = f.facts().bytes;
        f.write(data)?;
        f.flush()?;
        Ok(offset)
    }

    /// Writes a whole file (replacing it) and remembers its facts.
    pub fn write_whole(&mut self, rel: &str, data: &[u8], redactions: u64) -> io::Result<()> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("partial");
        fs::write(&tmp, data)?;
        fs::rename(&tmp, &path)?;
        let mut h = Sha256::new();
        h.update(data);
        self.written.insert(
            rel.to_string(),
            FileFacts {
                bytes: data.len() as u64,
                sha256: hex::encode(h.finalize()),
                redactions,
                by_rule: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// [`Journal::write_whole`] of redacted text, with what each rule
    /// replaced in it.
    pub fn write_redacted(&mut self, rel: &str, data: &[u8], tally: &Tally) -> io::Result<()> {
        self.write_whole(rel, data, tally.total())?;
        if let Some(f) = self.written.get_mut(rel) {
            f.by_rule = tally.names();
        }
        Ok(())
    }

    /// Remembers the facts of a file written by someone else into the folder.
    pub fn adopt(&mut self, rel: &str, facts: FileFacts) {
        self.written.insert(rel.to_string(), facts);
    }

    /// Pushes buffered bytes to the OS (called after each batch).
    pub fn flush(&mut self) -> io::Result<()> {
        self.server.flush()?;
        for f in &mut self.more_servers {
            f.flush()?;
        }
        for k in &mut self.ke {
            k.flush()?;
        }
        self.entries.flush()
    }

    /// Facts of every file the journal wrote, keyed by bundle path.
    pub fn facts(&self) -> BTreeMap<String, FileFacts> {
        let mut m = self.written.clone();
        for (path, f) in self.servers() {
            m.insert(path.clone(), f.facts());
        }
        for (i, k) in self.ke.iter().enumerate() {
            m.insert(KE_LOGS[i].to_string(), k.facts());
        }
        m.insert(ENTRIES.to_string(), self.entries.facts());
        if let Some(f) = &self.db_changes {
            m.insert("db/changes.jsonl".to_string(), f.facts());
        }
        for (rel, f) in &self.appended {
            m.insert(rel.clone(), f.facts());
        }
        m
    }
}

/// Appends one entry to the `journal.jsonl` in `dir` directly, for when the
/// [`Journal`] that writes it is gone (its task panicked).
pub fn append_entry(dir: &Path, entry: &JournalEntry) -> io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().append(true).open(dir.join(ENTRIES))?;
    f.write_all(&line)?;
    f.sync_data()
}

/// Reads `journal.jsonl`, skipping a torn last line (a crash mid-write).
pub fn read_entries(dir: &Path) -> io::Result<Vec<JournalEntry>> {
    let text = fs::read(dir.join(ENTRIES))?;
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Ok(e) = serde_json::from_slice::<JournalEntry>(line) {
            out.push(e);
        }
    }
    Ok(out)
}
