//! The live console's runner: starts the sources, the capture task and the
//! UI (or headless) loop, and writes the bundle on the way out.

pub mod capture_task;
pub mod metrics;
pub mod replay;
mod replay_logs;
pub mod sources;
pub mod tasks;
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
use tasks::{Failure, TaskEnd, Tasks};
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
///
/// The loop and the capture task talk over two channels: events from the
/// capture task (bounded) and the App's effects to it (unbounded). Neither
/// side ever waits on the other while holding up its own receiver: the loop
/// hands effects over without waiting, and the capture task keeps taking
/// effects while its events wait for room. A flood of any kind of input can
/// slow the console down, never stop it.
pub struct Session {
    pub app: App,
    pub clock: Clock,
    pub control: mpsc::UnboundedSender<Control>,
    pub events: mpsc::Receiver<Event>,
    pub shutdown: watch::Sender<bool>,
    /// KE-3 event ids so far, for the database poller's lookups.
    pub ke3_ids: watch::Sender<Vec<String>>,
    /// Our user and device as the App knows them, for the database poller
    /// (a client file may name them after the start).
    pub subject: watch::Sender<crate::sources::db::LearntSubject>,
    /// Questions for a key's passphrase (console only).
    pub passphrase: Option<mpsc::Receiver<crate::sources::ssh::PassphraseRequest>>,
    /// The sources, checks and DEBUG loggers, supervised: a task that
    /// panics or gives up is an error status at once.
    pub tasks: Tasks,
    /// The capture task, watched on its own: it lives until the export.
    capture: Option<tokio::task::JoinHandle<()>>,
    pub journal_dir: PathBuf,
    pub replay: bool,
    pub headless: bool,
    pub label: Option<String>,
    pub debug_loggers: Option<crate::debug_loggers::Handle>,
}

/// What the loops wait for next.
pub enum Next {
    Event(Event),
    /// A source that cannot work at all: a headless capture stops.
    Fatal(String),
    /// Nothing more will come.
    Closed,
}

/// Prepares the capture. Errors here come before the terminal is taken over.
pub fn start(opts: LiveOptions) -> anyhow::Result<Session> {
    start_fed(opts).map(|(s, _)| s)
}

/// [`start`], also returning a sender into the sources' channel: what the
/// caller sends there is captured as if a source had sent it.
pub fn start_fed(
    opts: LiveOptions,
) -> anyhow::Result<(Session, mpsc::Sender<crate::sources::Input>)> {
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
    if let Mode::Replay { recording, .. } = &opts.mode {
        // As its recording: an `analyze` bundle's window is its evidence's.
        app.wall_clock_span = !recording.offline;
    }
    app.server_logs = capture.logs().clone();

    let (clock, replay) = match &opts.mode {
        Mode::Replay { recording, speed } => (Clock::virtual_from(recording.origin, *speed), true),
        Mode::Live { .. } => (Clock::Wall, false),
    };
    capture.journal.record(&JournalEntry::Start {
        at: clock.now(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        mode: match &opts.mode {
            Mode::Replay { recording, .. } => recording.replay_mode().into(),
            Mode::Live { .. } => "live".into(),
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
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (ke3_tx, ke3_rx) = watch::channel(cfg.call.event_ids.clone());
    let (subject_tx, subject_rx) =
        watch::channel((app.subject.user_id.clone(), app.subject.device_id.clone()));
    let (prompt, passphrase_rx) = if opts.headless {
        (None, None)
    } else {
        let (p, rx) = crate::sources::ssh::PassphrasePrompt::channel();
        (Some(p), Some(rx))
    };

    let mut tasks = Tasks::new();
    if let Some(h) = &opts.debug_loggers {
        tasks.adopt(
            "debug-loggers",
            h.start(
                journal_dir.clone(),
                journal_dir.join(&capture.journal.server_files()[0]),
                event_tx.clone(),
                prompt.clone(),
                shutdown_rx.clone(),
            ),
        );
    }
    if matches!(opts.mode, Mode::Live { .. }) {
        tasks.spawn(
            "check",
            background_checks(cfg.clone(), input_tx.clone(), shutdown_rx.clone()),
        );
    }
    let context = sources::SourceContext {
        backfill: None,
        headless: opts.headless,
        tx: &input_tx,
        shutdown: &shutdown_rx,
        ke3_ids: &ke3_rx,
        subject: &subject_rx,
        prompt,
    };
    let descriptions = spawn_sources(opts.mode, cfg, &clock, context, &mut tasks)?;
    let task = CaptureTask {
        capture,
        out_dir: opts.out.clone(),
        sources: descriptions,
    };
    let capture = tokio::spawn(task.run(input_rx, control_rx, event_tx));

    let session = Session {
        app,
        clock,
        control: control_tx,
        events: event_rx,
        shutdown: shutdown_tx,
        ke3_ids: ke3_tx,
        subject: subject_tx,
        passphrase: passphrase_rx,
        tasks,
        capture: Some(capture),
        journal_dir,
        replay,
        headless: opts.headless,
        label: opts.label,
        debug_loggers: opts.debug_loggers,
    };
    Ok((session, input_tx))
}

/// `callcap check` at the start, its failures in the status line.
async fn background_checks(
    cfg: Config,
    tx: mpsc::Sender<crate::sources::Input>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let lines = tokio::select! {
        l = crate::check::run(&cfg, crate::check::Mode::Background) => l,
        _ = shutdown.changed() => return Ok(()),
    };
    // One note, so the status line shows every failure at once.
    let failed: Vec<String> = lines.iter().filter(|l| !l.ok).map(|l| l.render()).collect();
    if !failed.is_empty() {
        let text = failed.join(" · ");
        let _ = tx
            .send(crate::sources::Input::note_now("check", text))
            .await;
    }
    Ok(())
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
    tasks: &mut Tasks,
) -> anyhow::Result<Vec<serde_json::Value>> {
    match mode {
        Mode::Replay { recording, .. } => {
            let desc = vec![serde_json::json!({
                "name": "server-log", "kind": "replay", "path": recording.dir.display().to_string(),
            })];
            let run = recording.run(clock.clone(), context.tx.clone(), context.shutdown.clone());
            tasks.spawn(replay::SOURCE, async move {
                run.await;
                Ok(())
            });
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
    /// Applies an event and hands the App's effects to the capture task,
    /// without waiting: the loop never blocks on the capture.
    pub fn apply(&mut self, ev: Event) {
        let fxs = self.app.update(ev);
        let s = &self.app.subject;
        self.subject.send_if_modified(|v| {
            let changed = v.0 != s.user_id || v.1 != s.device_id;
            if changed {
                *v = (s.user_id.clone(), s.device_id.clone());
            }
            changed
        });
        for fx in fxs {
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
            if let Err(mpsc::error::SendError(Control::Effect(Effect::Journal(entry)))) =
                self.control.send(Control::Effect(fx))
            {
                // The capture task is gone (it panicked): what the App
                // journals goes straight to the journal's file.
                let _ = crate::bundle::journal::append_entry(&self.journal_dir, &entry);
            }
        }
    }

    /// The next event for the App; a task that failed arrives as its
    /// source's error status (and a note), at once.
    pub async fn next(&mut self) -> Next {
        tokio::select! {
            ev = self.events.recv() => match ev {
                Some(ev) => Next::Event(ev),
                None => Next::Closed,
            },
            end = self.tasks.next_failure() => self.task_ended(end),
            r = wait_for(&mut self.capture) => {
                self.capture = None;
                match r {
                    Err(e) if e.is_panic() => {
                        let msg = tasks::panic_text(e.into_panic());
                        self.task_ended(TaskEnd {
                            name: "capture".into(),
                            failure: Failure::Panicked(format!(
                                "{msg} (nothing more is captured; the journal is in '{}')",
                                self.journal_dir.display()
                            )),
                        })
                    }
                    _ => Next::Closed,
                }
            }
        }
    }

    /// A task that ended badly: its error in the status line and the
    /// journal. One that gave up stops a headless capture.
    fn task_ended(&mut self, end: TaskEnd) -> Next {
        let at = self.clock.now();
        let reason = end.reason();
        tracing::error!(task = %end.name, %reason, "task ended");
        self.apply(Event::Status {
            source: end.name.clone(),
            status: crate::sources::SourceStatus::Error {
                reason: reason.clone(),
            },
            at,
        });
        let fatal = matches!(end.failure, Failure::Failed(_)) && self.headless;
        let text = match end.failure {
            Failure::Failed(_) => format!("{}: {reason}", end.name),
            Failure::Panicked(_) => reason,
        };
        if fatal {
            return Next::Fatal(text);
        }
        Next::Event(Event::Note {
            source: end.name,
            text,
            at,
        })
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
    /// bundle and returns its path ([`crate::bundle::export::Incomplete`]
    /// when parts of it could not be written).
    pub async fn finish(mut self, label: String) -> anyhow::Result<PathBuf> {
        // The DEBUG loggers go back first, so the bundle says how it went.
        if let Some(h) = self.debug_loggers.clone()
            && let Some((at, update)) = h.revert().await
        {
            self.apply(Event::DebugLoggers { at, update });
        }
        let _ = self.shutdown.send(true);
        // The sources send what they still have: take it while they end.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(ev) => self.apply(ev),
                    None => break,
                },
                end = tokio::time::timeout_at(deadline, self.tasks.join_next()) => match end {
                    Ok(Some(Some(end))) => {
                        if let Next::Event(ev) = self.task_ended(end) {
                            self.apply(ev);
                        }
                    }
                    Ok(Some(None)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        self.tasks.abort_all();
                        break;
                    }
                },
            }
        }
        // Events already produced but not yet seen by the App; what the
        // capture task could not hand over now, it adds at the export.
        self.events.close();
        while let Ok(Some(ev)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), self.events.recv()).await
        {
            self.apply(ev);
        }
        let gone = || {
            anyhow::anyhow!(
                "the capture task stopped; the journal is in '{}' (try `callcap recover`)",
                self.journal_dir.display()
            )
        };
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Export {
                app: Box::new(self.app.clone()),
                label,
                reply: tx,
            })
            .map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(done)) => done.complete(),
            Ok(Err(e)) => Err(anyhow::anyhow!(
                "writing the bundle failed: {e}; the journal is kept in '{}' (try `callcap recover`)",
                self.journal_dir.display()
            )),
            Err(_) => Err(gone()),
        }
    }
}

/// Waits for a task that may already be gone.
async fn wait_for(
    h: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<(), tokio::task::JoinError> {
    match h.as_mut() {
        Some(h) => h.await,
        None => std::future::pending().await,
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
            next = s.next() => match next {
                Next::Event(ev) => {
                    s.apply(ev);
                    if s.replay_finished() {
                        break;
                    }
                }
                Next::Fatal(reason) => {
                    let _ = s.shutdown.send(true);
                    return Err(anyhow::anyhow!(
                        "{reason} (the journal is kept in '{}')",
                        s.journal_dir.display()
                    ));
                }
                Next::Closed => break,
            },
            _ = tick.tick() => {
                let now = s.clock.now();
                s.apply(Event::Tick { now });
            }
        }
    }
    let label = s.default_label();
    s.finish(label).await
}
