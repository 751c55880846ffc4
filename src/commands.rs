//! The console commands: live, demo, replay, recover.

use crate::analyze::UsageError;
use crate::cli::Cmd;
use crate::config::{Config, expand_tilde};
use crate::live::{self, LiveOptions, Mode};
use crate::sources::replay::Recording;
use std::path::{Path, PathBuf};

/// The default config file: `~/.config/callcap/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    crate::config::default_path()
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => checked(p),
        None => match default_config_path().filter(|p| p.is_file()) {
            Some(p) => checked(&p),
            None => Ok(Config::default()),
        },
    }
}

fn checked(p: &Path) -> anyhow::Result<Config> {
    let cfg = Config::load(p).map_err(|e| UsageError(e.to_string()))?;
    cfg.validate(p).map_err(|e| UsageError(e.to_string()))?;
    Ok(cfg)
}

fn out_dir(cli: Option<&PathBuf>, cfg: &Config) -> PathBuf {
    cli.cloned()
        .or_else(|| cfg.bundle.out.as_ref().map(|p| expand_tilde(p)))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
        )
        .enable_all()
        .build()?)
}

/// Runs a console command; returns the bundle path to print.
pub fn run(cmd: Option<Cmd>) -> anyhow::Result<Option<PathBuf>> {
    match cmd {
        None => {
            let Some(p) = default_config_path().filter(|p| p.is_file()) else {
                return Err(UsageError(
                    "no config found (~/.config/callcap/config.toml): try `callcap demo`, `callcap live --config FILE` or `callcap --help`".into(),
                )
                .into());
            };
            let cfg = load_config(Some(&p))?;
            let out = out_dir(None, &cfg);
            console(LiveOptions {
                config: cfg,
                out,
                headless: false,
                mode: Mode::Live { backfill: None },
                label: None,
            })
        }
        Some(Cmd::Live(a)) => {
            let cfg = load_config(a.config.as_deref())?;
            let out = out_dir(a.out.as_ref(), &cfg);
            console(LiveOptions {
                config: cfg,
                out,
                headless: a.headless,
                mode: Mode::Live {
                    backfill: a.backfill,
                },
                label: a.label,
            })
        }
        Some(Cmd::Demo(a)) => {
            let tmp = tempfile::tempdir()?;
            let recording = crate::demo::materialize(tmp.path())?;
            let cfg = Config::default();
            let out = out_dir(a.out.as_ref(), &cfg);
            let r = replay_console(recording, cfg, out, a.headless, a.speed);
            drop(tmp);
            r
        }
        Some(Cmd::Replay(a)) => {
            let recording = Recording::open(&a.bundle).map_err(UsageError)?;
            let cfg = load_config(a.config.as_deref())?;
            let out = out_dir(a.out.as_ref(), &cfg);
            replay_console(recording, cfg, out, a.headless, a.speed)
        }
        Some(Cmd::Recover(a)) => {
            let cfg = load_config(None).unwrap_or_default();
            let out = out_dir(a.out.as_ref(), &cfg);
            let journal = match a.journal {
                Some(j) => j,
                None => crate::bundle::recover::newest_journal(&out).ok_or_else(|| {
                    UsageError(format!(
                        "no unfinished journal (.callcap-journal-*) in '{}'",
                        out.display()
                    ))
                })?,
            };
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| journal.parent().map(Path::to_path_buf).unwrap_or(out));
            let restart = cfg.analysis.restart_timeout.as_duration().as_millis() as u32;
            // Site rules apply to what is recovered too; a config that
            // cannot be read otherwise still gives its [redact] section.
            let site = match default_config_path().filter(|p| p.is_file()) {
                Some(p) => crate::config::load_redact_section(&p)
                    .map_err(|e| UsageError(e.to_string()))?
                    .site_rules(),
                None => Vec::new(),
            };
            crate::bundle::recover::recover(&journal, &out, a.label.as_deref(), restart, &site)
                .map(Some)
        }
        Some(Cmd::Analyze(a)) => crate::analyze::run(&a).map(Some),
        Some(Cmd::Keys) => {
            let keymap = crate::config::keymap::Keymap::load_user()
                .map_err(|e| UsageError(e.to_string()))?;
            print!("{}", keymap.to_table());
            Ok(None)
        }
        Some(Cmd::Config(a)) => {
            if let Some(p) = &a.check {
                checked(p)?;
                println!("{}: ok", p.display());
            } else if a.example {
                print!("{}", crate::config::EXAMPLE);
            } else {
                return Err(UsageError("give --example or --check FILE".into()).into());
            }
            Ok(None)
        }
    }
}

/// `tracing` goes to a file, never to the terminal the console owns:
/// `~/.local/state/callcap/callcap.log` (level from `CALLCAP_LOG`, default
/// `info`), through the same redaction as the bundle. Failing to open it
/// only loses the debug log.
fn init_log(redactor: crate::domain::redact::Redactor) {
    let Some(dir) = directories::ProjectDirs::from("", "", "callcap")
        .map(|d| d.state_dir().unwrap_or(d.data_local_dir()).to_path_buf())
    else {
        return;
    };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("callcap.log"))
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CALLCAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(redactor.writer(file)))
        .try_init();
}

/// The console (or headless run) on a recording instead of live sources.
fn replay_console(
    recording: Recording,
    config: Config,
    out: PathBuf,
    headless: bool,
    speed: f64,
) -> anyhow::Result<Option<PathBuf>> {
    console(LiveOptions {
        config,
        out,
        headless,
        mode: Mode::Replay {
            recording: Box::new(recording),
            speed,
        },
        label: None,
    })
}

fn console(opts: LiveOptions) -> anyhow::Result<Option<PathBuf>> {
    let redactor =
        crate::domain::redact::Redactor::with_site_rules(&opts.config.redact.site_rules())
            .map_err(|e| UsageError(format!("{}: {e}", e.origin)))?;
    init_log(redactor);
    let headless = opts.headless;
    // A bad keymap is an error before the terminal is taken over.
    let keymap = if headless {
        None
    } else {
        Some(crate::config::keymap::Keymap::load_user().map_err(|e| UsageError(e.to_string()))?)
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let session = live::start(opts)?;
        let path = match keymap {
            Some(k) => live::tui::run(session, k).await?,
            None => live::run_headless(session).await?,
        };
        Ok(Some(path))
    })
}
