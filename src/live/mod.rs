//! The live console's runner: starts the sources, the capture task and the
//! UI (or headless) loop, and writes the bundle on the way out.

pub mod capture_task;
pub mod replay;
mod replay_logs;
pub mod sources;
pub mod tui;

use crate::analyze::UsageError;
use crate::app::event::Event;
use crate::app::{App, Effect, Subject};
use crate::bundle::journal::{JOURNAL_PREFIX, Journal};
use crate::capture::{Capture, LogSpec};
use crate::config::Config;
use crate::model::journal_entry::JournalEntry;
use crate::model::server_logs::LogInfo;
use crate::sources::clock::Clock;
use capture_task::{CaptureTask, Control};
use chrono::Utc;
use replay::Recording;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot, watch};

pub enum Mode {
    /// The sources named in the config.
    Live { backfill: Option<u64> },
    /// A recorded session paced by its own timestamps.
    Replay {
        recording: Box<Recording>,
        speed: f64,
    },
}

pub struct LiveOptions {
    pub config: Config,
    pub out: PathBuf,
    pub headless: bool,
    pub mode: Mode,
    pub label: Option<String>,
    /// DEBUG loggers to raise for the capture and revert on the way out.
    pub debug_loggers: Option<crate::debug_loggers::Handle>,
}

/// Everything the loops share.
pub struct Session {
    pub app: App,
    pub clock: Clock,
    pub control: mpsc::Sender<Control>,
    pub events: mpsc::Receiver<Event>,
    pub shutdown: watch::Sender<bool>,
    /// KE-3 event ids so far, for the database poller's lookups.
    pub ke3_ids: watch::Sender<Vec<String>>,
    /// A source that cannot work at all (headless exits non-zero).
    pub fatal: mpsc::Receiver<String>,
    /// Questions for a key's passphrase (console only).
    pub passphrase: Option<mpsc::Receiver<crate::sources::ssh::PassphraseRequest>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub journal_dir: PathBuf,
    pub replay: bool,
    pub label: Option<String>,
    pub debug_loggers: Option<crate::debug_loggers::Handle>,
}

/// Prepares the capture. Errors here come before the terminal is taken over.
pub fn start(opts: LiveOptions) -> anyhow::Result<Session> {
    let cfg = &opts.config;
    let file = cfg
        .signatures
        .file
        .as_deref()
        .map(crate::config::expand_tilde);
    let sigs = crate::analyze::load_signatures(file.as_deref())?;
    let (subject, timezone) = subject_and_timezone(cfg, &opts.mode);
    let logs = server_logs(cfg, &opts.mode);
    let specs = LogSpec::from_infos(&logs).map_err(UsageError)?;
    let (journal, journal_dir) = create_journal(&opts.out)?;
    let restart = cfg
        .analysis
        .restart_timeout
        .as_duration()
        .as_millis()
        .min(u32::MAX as u128) as u32;
    let mut capture = Capture::with_logs(journal, sigs, specs, cfg.call.event_ids.clone(), restart)
        .map_err(|e| UsageError(format!("signatures: {e}")))?;
    capture.set_redactor(
        crate::domain::redact::Redactor::with_site_rules(&cfg.redact.site_rules())
            .map_err(|e| UsageError(format!("{}: {e}", e.origin)))?,
    );
    let mut app = App::new(subject.clone(), restart);
    app.server_logs = capture.logs().clone();

    let (clock, replay) = match &opts.mode {
        Mode::Replay { recording, speed } => (Clock::virtual_from(recording.origin, *speed), true),
        Mode::Live { .. } => (Clock::Wall, false),
    };
    capture.journal.record(&JournalEntry::Start {
        at: clock.now(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        mode: if replay {
            "replay".into()
        } else {
            "live".into()
        },
        user_id: subject.user_id.clone(),
        device_id: subject.device_id.clone(),
        participants: subject.participants.clone(),
        timezone,
    })?;
    if logs.len() > 1 || logs.iter().any(|l| l.format.is_some()) {
        capture.journal.record(&JournalEntry::ServerLogs {
            at: clock.now(),
            logs: logs.clone(),
        })?;
    }
    if let Some(h) = &opts.debug_loggers {
        // Before any source can report: step 1 waits for the raise.
        let ev = Event::DebugLoggers {
            at: clock.now(),
            update: h.requested(),
        };
        for fx in app.update(ev) {
            if let Effect::Journal(e) = fx {
                capture.journal.record(&e)?;
            }
        }
    }

    let (input_tx, input_rx) = mpsc::channel(1024);
    let (control_tx, control_rx) = mpsc::channel(256);
    let (event_tx, event_rx) = mpsc::channel(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (ke3_tx, ke3_rx) = watch::channel(cfg.call.event_ids.clone());
    let (fatal_tx, fatal_rx) = mpsc::channel(4);
    let (prompt, passphrase_rx) = if opts.headless {
        (None, None)
    } else {
        let (p, rx) = crate::sources::ssh::PassphrasePrompt::channel();
        (Some(p), Some(rx))
    };

    let mut tasks = Vec::new();
    if let Some(h) = &opts.debug_loggers {
        tasks.push(h.start(
            journal_dir.clone(),
            journal_dir.join(&capture.journal.server_files()[0]),
            event_tx.clone(),
            prompt.clone(),
            shutdown_rx.clone(),
        ));
    }
    if matches!(opts.mode, Mode::Live { .. }) {
        tasks.push(background_checks(
            cfg.clone(),
            input_tx.clone(),
            shutdown_rx.clone(),
        ));
    }
    let context = sources::SourceContext {
        backfill: None,
        headless: opts.headless,
        tx: &input_tx,
        shutdown: &shutdown_rx,
        ke3_ids: &ke3_rx,
        fatal: &fatal_tx,
        prompt,
    };
    let descriptions = spawn_sources(opts.mode, cfg, &clock, context, &mut tasks)?;
    drop(input_tx);
    let task = CaptureTask {
        capture,
        out_dir: opts.out.clone(),
        sources: descriptions,
    };
    tokio::spawn(task.run(input_rx, control_rx, event_tx));

    Ok(Session {
        app,
        clock,
        control: control_tx,
        events: event_rx,
        shutdown: shutdown_tx,
        ke3_ids: ke3_tx,
        fatal: fatal_rx,
        passphrase: passphrase_rx,
        tasks,
        journal_dir,
        replay,
        label: opts.label,
        debug_loggers: opts.debug_loggers,
    })
}

/// `callcap check` at the start, its failures in the status line.
fn background_checks(
    cfg: Config,
    tx: mpsc::Sender<crate::sources::Input>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lines = tokio::select! {
            l = crate::check::run(&cfg, crate::check::Mode::Background) => l,
            _ = shutdown.changed() => return,
        };
        // One note, so the status line shows every failure at once.
        let failed: Vec<String> = lines.iter().filter(|l| !l.ok).map(|l| l.render()).collect();
        if !failed.is_empty() {
            let text = failed.join(" · ");
            let _ = tx
                .send(crate::sources::Input::note_now("check", text))
                .await;
        }
    })
}

/// The journal folder in `out`, named by the time and the process.
fn create_journal(out: &Path) -> anyhow::Result<(Journal, PathBuf)> {
    let journal_dir = out.join(format!(
        "{JOURNAL_PREFIX}{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    ));
    let journal = Journal::create(&journal_dir).map_err(|e| {
        UsageError(format!(
            "cannot write to the bundle folder '{}': {e}",
            out.display()
        ))
    })?;
    Ok((journal, journal_dir))
}

/// Starts the sources: the recording when replaying, else those the config
/// names. Returns their descriptions for the manifest.
fn spawn_sources(
    mode: Mode,
    cfg: &Config,
    clock: &Clock,
    context: sources::SourceContext<'_>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<Vec<serde_json::Value>> {
    match mode {
        Mode::Replay { recording, .. } => {
            let desc = vec![serde_json::json!({
                "name": "server-log", "kind": "replay", "path": recording.dir.display().to_string(),
            })];
            tasks.push(tokio::spawn(recording.run(
                clock.clone(),
                context.tx.clone(),
                context.shutdown.clone(),
            )));
            Ok(desc)
        }
        Mode::Live { backfill } => sources::spawn_all(
            cfg,
            sources::SourceContext {
                backfill,
                ..context
            },
            tasks,
        ),
    }
}

/// The server logs the capture reads: the config's, or the recording's.
fn server_logs(cfg: &Config, mode: &Mode) -> Vec<LogInfo> {
    use crate::config::LogKind;
    use crate::domain::log_format::Format;
    match mode {
        Mode::Replay { recording, .. } => recording.logs.clone(),
        Mode::Live { .. } => cfg
            .server_log
            .iter()
            .zip(cfg.server_log.names())
            .map(|(l, name)| LogInfo {
                name,
                timezone: l.timezone.clone(),
                format: match l.kind() {
                    LogKind::File(_) => None,
                    LogKind::Journal { .. } => Some(Format::Journal.name().to_string()),
                    LogKind::Docker { .. } => Some(Format::Docker.name().to_string()),
                },
                service: l.format.clone(),
            })
            .collect(),
    }
}

/// Who the capture is about and the log's time zone: from the config, the
/// recording filling in what it leaves out when replaying.
fn subject_and_timezone(cfg: &Config, mode: &Mode) -> (Subject, String) {
    match mode {
        Mode::Replay { recording, .. } => (
            Subject {
                user_id: cfg.call.user_id.clone().or(recording.user_id.clone()),
                device_id: cfg.call.device_id.clone().or(recording.device_id.clone()),
                participants: if cfg.call.participants.is_empty() {
                    recording.participants.clone()
                } else {
                    cfg.call.participants.clone()
                },
            },
            recording.timezone.clone(),
        ),
        Mode::Live { .. } => (
            Subject {
                user_id: cfg.call.user_id.clone(),
                device_id: cfg.call.device_id.clone(),
                participants: cfg.call.participants.clone(),
            },
            cfg.server_log
                .first()
                .map(|s| s.timezone.clone())
                .unwrap_or_else(|| "UTC".into()),
        ),
    }
}

impl Session {
    /// Applies an event and forwards the App's effects to the capture task.
    pub async fn apply(&mut self, ev: Event) {
        for fx in self.app.update(ev) {
            match &fx {
                Effect::Export { .. } => continue,
                Effect::Ke3Ids(ids) => self.ke3_ids.send_modify(|v| {
                    for id in ids {
                        if !v.contains(id) {
                            v.push(id.clone());
                        }
                    }
                }),
                Effect::Journal(_) => {}
            }
            let _ = self.control.send(Control::Effect(fx)).await;
        }
    }

    /// True once a replay has delivered everything.
    pub fn replay_finished(&self) -> bool {
        self.replay
            && self
                .app
                .sources
                .get(replay::SOURCE)
                .is_some_and(|s| s.status == crate::sources::SourceStatus::Stopped)
    }

    pub fn default_label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| crate::bundle::export::default_label(&self.app))
    }

    /// Stops the sources, lets the capture take what they sent, writes the
    /// bundle and returns its path.
    pub async fn finish(mut self, label: String) -> anyhow::Result<PathBuf> {
        // The DEBUG loggers go back first, so the bundle says how it went.
        if let Some(h) = self.debug_loggers.clone()
            && let Some((at, update)) = h.revert().await
        {
            self.apply(Event::DebugLoggers { at, update }).await;
        }
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
        // Events already produced but not yet seen by the App.
        while let Ok(ev) = self.events.try_recv() {
            self.apply(ev).await;
        }
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Export {
                app: Box::new(self.app.clone()),
                label,
                reply: tx,
            })
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the capture task stopped; the journal is in '{}'",
                    self.journal_dir.display()
                )
            })?;
        match rx.await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(e)) => Err(anyhow::anyhow!(
                "writing the bundle failed: {e}; the journal is kept in '{}' (try `callcap recover`)",
                self.journal_dir.display()
            )),
            Err(_) => Err(anyhow::anyhow!(
                "the capture task stopped; the journal is in '{}'",
                self.journal_dir.display()
            )),
        }
    }
}

/// Runs without a terminal until SIGINT/SIGTERM/SIGHUP (or a replay's end).
pub async fn run_headless(mut s: Session) -> anyhow::Result<PathBuf> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = hup.recv() => break,
            _ = int.recv() => break,
            Some(reason) = s.fatal.recv() => {
                let _ = s.shutdown.send(true);
                return Err(anyhow::anyhow!(
                    "{reason} (the journal is kept in '{}')",
                    s.journal_dir.display()
                ));
            }
            ev = s.events.recv() => match ev {
                Some(ev) => {
                    s.apply(ev).await;
                    if s.replay_finished() {
                        break;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = s.clock.now();
                s.apply(Event::Tick { now }).await;
            }
        }
    }
    let label = s.default_label();
    s.finish(label).await
}
