//! The console commands: live, demo, replay, recover.

use crate::analyze::UsageError;
use crate::cli::Cmd;
use crate::config::{Config, expand_tilde};
use crate::live::replay::Recording;
use crate::live::{self, LiveOptions, Mode};
use crate::model::debug_loggers::DebugLoggersUpdate;
use std::path::{Path, PathBuf};

/// The DEBUG loggers to raise, when `--debug-loggers` or `raise = true` asks.
fn debug_loggers(cfg: &Config, flag: bool) -> anyhow::Result<Option<crate::debug_loggers::Handle>> {
    let wanted = flag || cfg.debug_loggers.as_ref().is_some_and(|d| d.raise);
    if !wanted {
        return Ok(None);
    }
    let target = crate::debug_loggers::Target::from_config(cfg).ok_or_else(|| {
        UsageError(
            "--debug-loggers needs a [debug-loggers] section naming Synapse's log config (log-config = \"/etc/matrix-synapse/log.yaml\")".into(),
        )
    })?;
    Ok(Some(crate::debug_loggers::Handle::new(target)))
}

/// Writes the bundle's archive when asked; a progress line on the terminal
/// for big bundles. The bundle's path stays the last line of stdout.
pub fn archive_if(archive: bool, path: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    let Some(bundle) = path else {
        return Ok(None);
    };
    if !archive {
        return Ok(Some(bundle));
    }
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    let mut shown = false;
    let name = crate::bundle::archive::paths(&bundle)
        .map(|(_, p, _)| p.display().to_string())
        .unwrap_or_default();
    let a = crate::bundle::archive::write(&bundle, &mut |done, total| {
        if tty && total >= 64 << 20 && (last.elapsed().as_millis() >= 200 || done == total) {
            last = std::time::Instant::now();
            shown = true;
            let mut e = std::io::stderr();
            let _ = write!(
                e,
                "\rarchiving {name}: {}% ({} of {} MB)",
                done * 100 / total.max(1),
                done >> 20,
                total >> 20
            );
            let _ = e.flush();
        }
    })
    .map_err(|e| anyhow::anyhow!("writing the archive of '{}' failed: {e}", bundle.display()))?;
    if shown {
        eprintln!();
    }
    eprintln!(
        "archive: {} ({} bytes), checksum in {}",
        a.tar_gz.display(),
        a.bytes,
        a.sha256_file.display()
    );
    Ok(Some(bundle))
}

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
            let archive = cfg.bundle.archive;
            let debug_loggers = debug_loggers(&cfg, false)?;
            let label = cfg.bundle.label.clone();
            let path = console(LiveOptions {
                config: cfg,
                out,
                headless: false,
                mode: Mode::Live { backfill: None },
                label,
                debug_loggers,
            })?;
            archive_if(archive, path)
        }
        Some(Cmd::Live(a)) => {
            let cfg = load_config(a.config.as_deref())?;
            let out = out_dir(a.out.as_ref(), &cfg);
            let archive = a.archive || cfg.bundle.archive;
            let debug_loggers = debug_loggers(&cfg, a.debug_loggers)?;
            let label = a.label.or_else(|| cfg.bundle.label.clone());
            let path = console(LiveOptions {
                config: cfg,
                out,
                headless: a.headless,
                mode: Mode::Live {
                    backfill: a.backfill,
                },
                label,
                debug_loggers,
            })?;
            archive_if(archive, path)
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
            let archive = a.archive || cfg.bundle.archive;
            let path = replay_console(recording, cfg, out, a.headless, a.speed)?;
            archive_if(archive, path)
        }
        Some(Cmd::Recover(a)) => {
            let cfg = load_config(None).unwrap_or_default();
            let out = out_dir(a.out.as_ref(), &cfg);
            let journal = match a.journal {
                Some(j) => j,
                None => crate::recover::newest_journal(&out).ok_or_else(|| {
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
            // DEBUG loggers the crashed capture left raised go back first.
            let reverted = runtime()?.block_on(crate::debug_loggers::revert_folder(
                &journal,
                None,
                crate::debug_loggers::REVERT_DEADLINE,
            ));
            let path = crate::recover::recover(
                &journal,
                &out,
                a.label.as_deref(),
                restart,
                reverted.clone(),
                &site,
            )?;
            match reverted {
                Some((_, DebugLoggersUpdate::RevertFailed { reason, fix })) => {
                    println!("{}", path.display());
                    Err(anyhow::anyhow!(
                        "REVERT FAILED: {reason}; to put the DEBUG loggers back run: {fix}"
                    ))
                }
                Some((_, DebugLoggersUpdate::Reverted { detail })) => {
                    eprintln!("callcap: DEBUG loggers reverted: {detail}");
                    Ok(Some(path))
                }
                _ => Ok(Some(path)),
            }
        }
        Some(Cmd::Analyze(a)) => {
            let archive = a.archive;
            archive_if(archive, Some(crate::analyze::run(&a)?))
        }
        Some(Cmd::Check(a)) => {
            let path = a
                .config
                .clone()
                .or_else(|| default_config_path().filter(|p| p.is_file()));
            let Some(path) = path else {
                return Err(UsageError(
                    "no config found (~/.config/callcap/config.toml): give --config FILE".into(),
                )
                .into());
            };
            let cfg = checked(&path)?;
            runtime()?.block_on(crate::check::run_and_print(&cfg, &path))?;
            Ok(None)
        }
        Some(Cmd::Revert(a)) => {
            let r = runtime()?.block_on(crate::debug_loggers::revert_folder(
                &a.folder,
                None,
                crate::debug_loggers::REVERT_DEADLINE,
            ));
            match r {
                None => {
                    if crate::debug_loggers::state::load(&a.folder)
                        .map_err(|e| UsageError(format!("'{}': {e}", a.folder.display())))?
                        .is_none()
                    {
                        return Err(UsageError(format!(
                            "'{}' holds no raise of DEBUG loggers (no {}/{})",
                            a.folder.display(),
                            crate::debug_loggers::state::DIR,
                            crate::debug_loggers::state::STATE
                        ))
                        .into());
                    }
                    println!("nothing to revert: the DEBUG loggers were already put back");
                    Ok(None)
                }
                Some((_, DebugLoggersUpdate::Reverted { detail })) => {
                    println!("DEBUG loggers reverted: {detail}");
                    Ok(None)
                }
                Some((_, DebugLoggersUpdate::RevertFailed { reason, .. })) => {
                    Err(anyhow::anyhow!("REVERT FAILED: {reason}"))
                }
                Some(_) => Ok(None),
            }
        }
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
        debug_loggers: None,
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
    let debug = opts.debug_loggers.clone();
    // Every way out that did not revert (a panic, a source that failed, a
    // failed export) reverts once the runtime is gone.
    let record = crate::bundle::debug_loggers::journal_late;
    let (result, _) = crate::debug_loggers::guarded(debug.as_ref(), record, move || {
        runtime()?.block_on(async move {
            let session = live::start(opts)?;
            let path = match keymap {
                Some(k) => live::tui::run(session, k).await?,
                None => live::run_headless(session).await?,
            };
            Ok::<_, anyhow::Error>(Some(path))
        })
    });
    let Some(h) = debug else {
        return result;
    };
    if let Some(f) = h.failure() {
        // The bundle holds the raise's record now, else the journal does.
        let incomplete = result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<crate::bundle::export::Incomplete>());
        let folder = match (&result, incomplete) {
            (Ok(Some(p)), _) => {
                println!("{}", p.display());
                p.clone()
            }
            (_, Some(inc)) => {
                println!("{}", inc.path.display());
                inc.path.clone()
            }
            _ => h.journal().map(Path::to_path_buf).unwrap_or_default(),
        };
        return Err(anyhow::anyhow!(
            "REVERT FAILED: {f}; the DEBUG loggers may still be raised on the server: run {}",
            crate::debug_loggers::fix_command(&folder)
        ));
    }
    result
}
