//! Synapse's loggers raised to DEBUG for the capture and reverted on every
//! way out (runbook §0/§4).
//!
//! Raise: read the log config, refuse if another callcap's marker is in it,
//! record the original bytes and each logger's level in the journal folder
//! (synced), write the file with the loggers at DEBUG and a marker comment
//! (in place, only over the bytes read), reload Synapse, then wait for a
//! DEBUG line of one of them in the capture.
//!
//! Revert (quit, signals, a panic, `callcap recover` after `kill -9`): write
//! each logger's previous level explicitly (NOTSET where it had none) and
//! reload — Python's logging keeps the level of a logger whose entry is gone,
//! so deleting the entries would leave Synapse at DEBUG — then put the
//! original bytes back: the file ends byte-identical. A dropped SSH link is
//! reconnected for up to [`REVERT_DEADLINE`]; a failure is loud.

mod confirm;
pub mod shell;
pub mod state;
pub mod yaml;

use crate::app::event::Event;
use crate::config::{Config, SshConfig};
use crate::model::debug_loggers::DebugLoggersUpdate;
use crate::sources::ssh::{Credentials, HostKeys, PassphrasePrompt};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shell::{Shell, ShellError, sha256_hex};
use state::Record;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long a revert keeps reconnecting before it gives up (loudly).
pub const REVERT_DEADLINE: Duration = Duration::from_secs(60);
/// Tries of a raise whose link failed before anything was changed.
const RAISE_RETRIES: u32 = 3;
/// How long after the raise "no DEBUG line yet" is said.
const CONFIRM_NUDGE: Duration = Duration::from_secs(30);

/// Where the log config is and what to do with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// `None`: the file is on this machine.
    pub ssh: Option<SshConfig>,
    pub exec_prefix: Option<String>,
    pub log_config: String,
    pub loggers: Vec<String>,
    pub reload: String,
}

impl Target {
    pub fn from_config(cfg: &Config) -> Option<Target> {
        let dl = cfg.debug_loggers.as_ref()?;
        Some(Target {
            ssh: cfg.ssh.clone(),
            exec_prefix: cfg.server_log.first().and_then(|l| l.exec_prefix.clone()),
            log_config: dl.log_config.to_string_lossy().into_owned(),
            loggers: dl.loggers.clone(),
            reload: dl.reload.clone(),
        })
    }

    /// `user@host:port` (as configured) or `this machine`.
    pub fn host(&self) -> String {
        match &self.ssh {
            Some(s) => {
                let mut h = s.host.clone();
                if let Some(u) = &s.user {
                    h = format!("{u}@{h}");
                }
                if let Some(p) = s.port {
                    h = format!("{h}:{p}");
                }
                h
            }
            None => "this machine".into(),
        }
    }

    async fn shell(&self, creds: Option<&Credentials>) -> Result<Shell, ShellError> {
        Shell::open_with(
            self.ssh.as_ref(),
            self.exec_prefix.as_deref(),
            creds,
            HostKeys::AsConfigured,
        )
        .await
    }

    /// Credentials for this target's connections (`None` without `[ssh]`).
    pub fn credentials(
        &self,
        prompt: Option<PassphrasePrompt>,
    ) -> Result<Option<Credentials>, ShellError> {
        match &self.ssh {
            Some(ssh) => Ok(Some(Credentials::new(ssh, prompt)?)),
            None => Ok(None),
        }
    }
}

/// This machine's name, for the marker.
fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

/// The command that finishes a failed revert.
pub fn fix_command(folder: &Path) -> String {
    format!(
        "callcap revert {}",
        crate::sources::ssh::shell_quote(&folder.display().to_string())
    )
}

/// The raise, from the journal folder's record on: the raise (and its
/// immediate undo when the reload fails) or an error before any change.
async fn raise(
    target: &Target,
    journal: &Path,
    creds: Option<&Credentials>,
) -> Result<Vec<(String, Option<String>)>, RaiseError> {
    let sh = target.shell(creds).await.map_err(RaiseError::Before)?;
    let r = raise_on(&sh, target, journal).await;
    sh.close().await;
    r
}

#[derive(Debug)]
enum RaiseError {
    /// Nothing was changed.
    Before(ShellError),
    /// The file may have been changed: revert.
    After(String),
}

async fn raise_on(
    sh: &Shell,
    target: &Target,
    journal: &Path,
) -> Result<Vec<(String, Option<String>)>, RaiseError> {
    let before = |m: String| {
        RaiseError::Before(ShellError {
            message: m,
            retry: false,
        })
    };
    let path = &target.log_config;
    let original = sh.read(path).await.map_err(RaiseError::Before)?;
    let text = String::from_utf8(original.clone())
        .map_err(|_| before(format!("'{path}' is not UTF-8 text")))?;
    if let Some(m) = yaml::find_marker(&text) {
        return Err(before(format!(
            "'{path}' on {} already has DEBUG loggers raised by another callcap: \"{}\"; that one reverts them when it exits (after a crash: `callcap recover` on its journal)",
            sh.label(),
            m.trim_start_matches(yaml::MARKER_PREFIX).trim()
        )));
    }
    let marker = format!(
        "{} raised by callcap {} pid {} on {} at {}; journal {}; it puts this file back byte for byte when it exits (after a crash: callcap recover {})",
        yaml::MARKER_PREFIX,
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        local_host(),
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        journal.display(),
        crate::sources::ssh::shell_quote(&journal.display().to_string()),
    );
    let raised = yaml::raise(&text, &target.loggers, &marker)
        .map_err(|e| before(format!("'{path}': {e}")))?;
    let explicit = yaml::explicit_levels(&text, &raised.previous)
        .map_err(|e| before(format!("'{path}': {e}")))?;
    let rec = Record::new(
        target.clone(),
        marker,
        raised.previous.clone(),
        [
            sha256_hex(&original),
            sha256_hex(raised.text.as_bytes()),
            sha256_hex(explicit.as_bytes()),
        ],
    );
    // In the journal before anything is changed.
    state::save(journal, &rec, &original).map_err(|e| {
        before(format!(
            "cannot record the log config in the journal '{}': {e}",
            journal.display()
        ))
    })?;
    if let Err(e) = sh
        .write(path, &[&rec.original_sha256], raised.text.as_bytes())
        .await
    {
        // The write script stops before touching the file but for its
        // last step; without an exit status nobody knows.
        return Err(if e.retry || e.message.contains("does not hold") {
            RaiseError::After(e.message)
        } else {
            let _ = state::mark_done(journal, "not raised: the log config was not changed");
            RaiseError::Before(e)
        });
    }
    sh.reload(&target.reload)
        .await
        .map_err(|e| RaiseError::After(e.message))?;
    Ok(raised.previous)
}

/// One revert attempt on a fresh connection.
async fn revert_once(
    rec: &Record,
    original: &[u8],
    creds: Option<&Credentials>,
) -> Result<String, ShellError> {
    let t = &rec.target;
    let text = String::from_utf8(original.to_vec()).map_err(|_| ShellError {
        message: "the recorded log config is not UTF-8".into(),
        retry: false,
    })?;
    let explicit = yaml::explicit_levels(&text, &rec.previous).map_err(|e| ShellError {
        message: e.to_string(),
        retry: false,
    })?;
    let explicit_sha = sha256_hex(explicit.as_bytes());
    let sh = t.shell(creds).await?;
    let r = async {
        let accepted = [
            rec.original_sha256.as_str(),
            rec.raised_sha256.as_str(),
            explicit_sha.as_str(),
        ];
        sh.write(&t.log_config, &accepted, explicit.as_bytes())
            .await?;
        sh.reload(&t.reload).await?;
        sh.write(&t.log_config, &[&explicit_sha], original).await?;
        Ok::<_, ShellError>(format!(
            "Synapse reloaded with each logger's previous level ({}), then '{}' on {} put back byte for byte",
            yaml::describe(&rec.previous),
            t.log_config,
            sh.label()
        ))
    }
    .await;
    sh.close().await;
    r
}

/// Reverts, reconnecting after a dropped link until `deadline`.
async fn revert_until(
    rec: &Record,
    original: &[u8],
    creds: Option<&Credentials>,
    deadline: Duration,
) -> Result<String, String> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        // An attempt that hangs (a link that stalls) ends at the deadline.
        let left = deadline.saturating_sub(started.elapsed()) + Duration::from_secs(5);
        let once = match tokio::time::timeout(left, revert_once(rec, original, creds)).await {
            Ok(r) => r,
            Err(_) => Err(ShellError {
                message: format!(
                    "no answer from {} within {}s",
                    rec.target.host(),
                    left.as_secs()
                ),
                retry: false,
            }),
        };
        match once {
            Ok(d) => return Ok(d),
            Err(e) if e.retry && started.elapsed() < deadline => {
                attempt += 1;
                tracing::info!(attempt, reason = %e, "revert failed, trying again");
                tokio::time::sleep(crate::sources::db::backoff(attempt)).await;
            }
            Err(e) => return Err(e.message),
        }
    }
}

/// The revert of the raise recorded in `folder` (a journal or a bundle):
/// `None` when there is nothing to put back.
pub async fn revert_folder(
    folder: &Path,
    creds: Option<Credentials>,
    deadline: Duration,
) -> Option<(DateTime<Utc>, DebugLoggersUpdate)> {
    if state::done(folder).is_some() {
        return None;
    }
    let fail = |reason: String| {
        Some((
            Utc::now(),
            DebugLoggersUpdate::RevertFailed {
                reason,
                fix: fix_command(folder),
            },
        ))
    };
    let (rec, original) = match state::load(folder) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => return fail(format!("cannot read the raise's record: {e}")),
    };
    // Without the capture's credentials (recover, revert): the agent,
    // passphrase-env or an unencrypted key; nobody is asked.
    let creds = match creds {
        Some(c) => Some(c),
        None => match rec.target.credentials(None) {
            Ok(c) => c,
            Err(e) => return fail(e.message),
        },
    };
    match revert_until(&rec, &original, creds.as_ref(), deadline).await {
        Ok(detail) => {
            let _ = state::mark_done(folder, &detail);
            Some((Utc::now(), DebugLoggersUpdate::Reverted { detail }))
        }
        Err(reason) => fail(reason),
    }
}

/// The DEBUG loggers of one capture: the raise runs in the background from
/// [`Handle::start`]; [`Handle::revert`] runs once, on whichever way out
/// comes first, after a raise under way has finished.
#[derive(Clone)]
pub struct Handle(Arc<Inner>);

struct Inner {
    target: Target,
    journal: std::sync::OnceLock<PathBuf>,
    /// `true` once reverted (or asked to before any raise).
    done: tokio::sync::Mutex<bool>,
    failure: std::sync::Mutex<Option<String>>,
    creds: std::sync::Mutex<Option<Credentials>>,
    deadline: Duration,
}

impl Handle {
    pub fn new(target: Target) -> Handle {
        Handle::with_deadline(target, REVERT_DEADLINE)
    }

    pub fn with_deadline(target: Target, deadline: Duration) -> Handle {
        Handle(Arc::new(Inner {
            target,
            journal: std::sync::OnceLock::new(),
            done: tokio::sync::Mutex::new(false),
            failure: std::sync::Mutex::new(None),
            creds: std::sync::Mutex::new(None),
            deadline,
        }))
    }

    pub fn target(&self) -> &Target {
        &self.0.target
    }

    /// The `Requested` step, for the App before anything else happens.
    pub fn requested(&self) -> DebugLoggersUpdate {
        DebugLoggersUpdate::Requested {
            log_config: self.0.target.log_config.clone(),
            loggers: self.0.target.loggers.clone(),
            host: self.0.target.host(),
        }
    }

    /// Starts the raise for the capture journaled in `journal`; its steps
    /// go to `events`. Then waits for a DEBUG line in `log` (what the
    /// capture took of the server log) until `shutdown`.
    pub fn start(
        &self,
        journal: PathBuf,
        log: PathBuf,
        events: mpsc::Sender<Event>,
        prompt: Option<PassphrasePrompt>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let _ = self.0.journal.set(journal.clone());
        // One set of keys for the raise and the revert: a passphrase typed
        // for the raise is not asked again when the console has gone.
        let creds = self.0.target.credentials(prompt);
        if let (Ok(Some(c)), Ok(mut slot)) = (&creds, self.0.creds.lock()) {
            *slot = Some(c.clone());
        }
        let h = self.clone();
        tokio::spawn(async move { h.run(journal, log, events, creds, shutdown).await })
    }

    fn creds(&self) -> Option<Credentials> {
        self.0.creds.lock().ok().and_then(|c| c.clone())
    }

    async fn run(
        self,
        journal: PathBuf,
        log: PathBuf,
        events: mpsc::Sender<Event>,
        creds: Result<Option<Credentials>, ShellError>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let send = |update: DebugLoggersUpdate| {
            let events = events.clone();
            async move {
                let _ = events
                    .send(Event::DebugLoggers {
                        at: Utc::now(),
                        update,
                    })
                    .await;
            }
        };
        let raised_from = {
            let mut done = self.0.done.lock().await;
            if *done {
                return;
            }
            // A link that is not up yet gets a few more tries (nothing was
            // changed); a refusal or a bad file does not.
            let creds = match creds {
                Ok(c) => c,
                Err(e) => {
                    send(DebugLoggersUpdate::RaiseFailed { reason: e.message }).await;
                    return;
                }
            };
            let mut attempt = 0u32;
            let raised = loop {
                match raise(&self.0.target, &journal, creds.as_ref()).await {
                    Err(RaiseError::Before(e))
                        if e.retry && attempt < RAISE_RETRIES && !*shutdown.borrow() =>
                    {
                        attempt += 1;
                        tracing::info!(attempt, reason = %e, "raising the DEBUG loggers failed, trying again");
                        tokio::time::sleep(crate::sources::db::backoff(attempt)).await;
                    }
                    r => break r,
                }
            };
            match raised {
                Ok(previous) => {
                    let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
                    send(DebugLoggersUpdate::Raised { previous }).await;
                    from
                }
                Err(RaiseError::Before(e)) => {
                    send(DebugLoggersUpdate::RaiseFailed { reason: e.message }).await;
                    return;
                }
                Err(RaiseError::After(reason)) => {
                    send(DebugLoggersUpdate::RaiseFailed {
                        reason: format!("{reason}; putting the log config back"),
                    })
                    .await;
                    *done = true;
                    if let Some((_, update)) =
                        revert_folder(&journal, creds.clone(), self.0.deadline).await
                    {
                        self.note_failure(&update);
                        send(update).await;
                    }
                    return;
                }
            }
        };
        let mut scan = confirm::Scanner::new(&self.0.target.loggers, raised_from);
        let since = Instant::now();
        let mut nudged = false;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
            match scan.poll(&log) {
                Ok(Some((line, text))) => {
                    send(DebugLoggersUpdate::Confirmed { line, text }).await;
                    return;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading the journal's log"),
            }
            if !nudged && since.elapsed() >= CONFIRM_NUDGE {
                nudged = true;
                send(DebugLoggersUpdate::Waiting {
                    seconds: since.elapsed().as_secs(),
                })
                .await;
            }
        }
    }

    fn note_failure(&self, update: &DebugLoggersUpdate) {
        if let DebugLoggersUpdate::RevertFailed { reason, fix } = update
            && let Ok(mut f) = self.0.failure.lock()
        {
            let _ = fix;
            *f = Some(reason.clone());
        }
    }

    /// Puts the loggers back if they were raised (once; a raise under way
    /// is waited for). `None` when there was nothing to do.
    pub async fn revert(&self) -> Option<(DateTime<Utc>, DebugLoggersUpdate)> {
        let mut done = self.0.done.lock().await;
        if *done {
            return None;
        }
        *done = true;
        let journal = self.0.journal.get()?.clone();
        let creds = self.creds();
        // The console may be gone: nobody is there to type a passphrase.
        if let Some(c) = &creds {
            c.stop_asking().await;
        }
        let r = revert_folder(&journal, creds, self.0.deadline).await;
        if let Some((_, u)) = &r {
            self.note_failure(u);
        }
        r
    }

    /// [`Handle::revert`] where no runtime runs any more (after a panic):
    /// on a runtime of its own, on a thread of its own.
    pub fn revert_blocking(&self) -> Option<(DateTime<Utc>, DebugLoggersUpdate)> {
        let h = self.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(h.revert())
        })
        .join()
        .ok()
        .flatten()
    }

    /// Why the revert failed (see [`fix_command`] for what fixes it).
    pub fn failure(&self) -> Option<String> {
        self.0.failure.lock().ok().and_then(|f| f.clone())
    }

    pub fn journal(&self) -> Option<&Path> {
        self.0.journal.get().map(PathBuf::as_path)
    }
}

/// Runs the capture `f` and, however it ends — a value or a panic —
/// reverts what is still raised (`f` owns and drops its runtime, so nothing
/// of it runs any more). The late revert's step goes to `record` (with the
/// journal folder) and stderr, and is returned with `f`'s value; a panic
/// goes on after the revert.
pub fn guarded<T>(
    h: Option<&Handle>,
    record: impl FnOnce(&Path, DateTime<Utc>, &DebugLoggersUpdate),
    f: impl FnOnce() -> T,
) -> (T, Option<(DateTime<Utc>, DebugLoggersUpdate)>) {
    let Some(h) = h else {
        return (f(), None);
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let late = h.revert_blocking();
    if let Some((at, update)) = &late {
        if let Some(j) = h.journal() {
            record(j, *at, update);
        }
        match update {
            DebugLoggersUpdate::Reverted { detail } => {
                eprintln!("callcap: DEBUG loggers reverted: {detail}")
            }
            DebugLoggersUpdate::RevertFailed { reason, .. } => {
                eprintln!("callcap: REVERT FAILED: {reason}")
            }
            _ => {}
        }
    }
    match run {
        Ok(v) => (v, late),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
