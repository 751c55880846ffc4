//! Command-line interface.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "callcap",
    version,
    about = "Capture, line up and bundle the evidence of E2EE faults in a Matrix call",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Colour on the screen: `auto` follows NO_COLOR (no-color.org),
    /// `always` overrides it, `never` turns it off.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once, at start
pub enum Cmd {
    /// Analyse files that already exist (saved logs, diag reports, HARs) and write a bundle.
    Analyze(AnalyzeArgs),
    /// Run the console on the sources in the config (the default with a config present).
    Live(LiveArgs),
    /// Run the console on a recorded call that goes wrong (no network, no config).
    Demo(DemoArgs),
    /// Replay a bundle as if it were live; a headless replay writes a new bundle.
    Replay(ReplayArgs),
    /// Turn a journal left behind by a crash or `kill -9` into a bundle.
    Recover(RecoverArgs),
    /// Print the key bindings in force (built-in keymap plus your overrides).
    Keys,
    /// Print a commented example config, or check a config file.
    Config(ConfigArgs),
    /// Preflight: test everything the capture will need, one line per check.
    Check(CheckArgs),
    /// Put back DEBUG loggers a capture raised (from its journal or bundle).
    Revert(RevertArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file (default: ~/.config/callcap/config.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The journal (`.callcap-journal-*`) or bundle folder of the capture
    /// that raised them.
    pub folder: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print a commented example of every section.
    #[arg(long)]
    pub example: bool,
    /// Check this config file and say what is wrong with it.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The config file (default: ~/.config/callcap/config.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the journal and the bundle go (overrides `[bundle] out`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No UI: capture until SIGINT/SIGTERM/SIGHUP, then write the bundle.
    #[arg(long)]
    pub headless: bool,
    /// Start this many lines back in the server log instead of at the end.
    #[arg(long, value_name = "N")]
    pub backfill: Option<u64>,
    /// The bundle's label (default: `[bundle] label`, else call-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    pub label: Option<String>,
    /// Raise the `[debug-loggers]` to DEBUG for the capture, revert on exit.
    #[arg(long)]
    pub debug_loggers: bool,
    /// Also write `<label>.tar.gz` and `<label>.tar.gz.sha256` beside the bundle.
    #[arg(long)]
    pub archive: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Playback speed (2 = twice as fast as the recording).
    #[arg(long, default_value_t = 2.0)]
    pub speed: f64,
    /// Where the bundle goes (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No UI: play to the end, then write the bundle.
    #[arg(long)]
    pub headless: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The bundle folder to replay.
    pub bundle: PathBuf,
    /// Playback speed (10 = ten times as fast as the recording).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// No UI: play to the end, then write a new bundle and print its path.
    #[arg(long)]
    pub headless: bool,
    /// Where the new bundle goes (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The config file (for `[call]` and the keymap).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write `<label>.tar.gz` and `<label>.tar.gz.sha256` beside the bundle.
    #[arg(long)]
    pub archive: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The journal folder (default: the newest `.callcap-journal-*` in --out).
    pub journal: Option<PathBuf>,
    /// Where the bundle goes (default: the journal's folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A homeserver log; repeat for several, read in the order given (rotated first).
    #[arg(long = "log", value_name = "FILE", required = true)]
    pub logs: Vec<PathBuf>,
    /// A client diag report, or a folder of them.
    #[arg(long = "diag", value_name = "PATH")]
    pub diags: Vec<PathBuf>,
    /// Element Web's or Element Call's logs: `rageshake.tar`, a rageshake
    /// report folder (`details.log.gz`, `logs-0000.log.gz`, …), a
    /// `*.log.gz` or a plain `*.log` console export.
    #[arg(long = "client", value_name = "PATH")]
    pub clients: Vec<PathBuf>,
    /// A HAR file, or a folder of them.
    #[arg(long = "har", value_name = "PATH")]
    pub hars: Vec<PathBuf>,
    /// The Matrix user being investigated (`@user:server`).
    #[arg(long)]
    pub user_id: Option<String>,
    /// The device being investigated.
    #[arg(long)]
    pub device_id: Option<String>,
    /// Other participants of the call (repeatable).
    #[arg(long = "participant", value_name = "USER")]
    pub participants: Vec<String>,
    /// A KE-3 event id to look for, in addition to those in the diag reports.
    #[arg(long = "event-id", value_name = "ID")]
    pub event_ids: Vec<String>,
    /// Where the bundle goes (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The bundle's folder name (default: call-YYYYMMDDTHHMMSSZ of the first timestamp).
    #[arg(long)]
    pub label: Option<String>,
    /// Time zone of the log's timestamps (UTC, or an IANA name).
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// A signatures file overriding the embedded one.
    #[arg(long, value_name = "FILE")]
    pub signatures: Option<PathBuf>,
    /// Read the Synapse database once at the end (read-only), e.g.
    /// postgres://synapse@127.0.0.1:5432/synapse.
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// Environment variable holding the database password (else PGPASSWORD or ~/.pgpass).
    #[arg(long, value_name = "VAR")]
    pub db_password_env: Option<String>,
    /// Ask this Prometheus for Synapse's latency histogram over the
    /// capture's window (per minute and servlet), e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Label matchers added to every Prometheus query, e.g. '{job="synapse"}'.
    #[arg(long, value_name = "SELECTOR", requires = "prometheus")]
    pub selector: Option<String>,
    /// The client's delayed-event restart timeout, for Q4 (e.g. 2s).
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub restart_timeout: String,
    /// A fault the operator noted during the call (Q2 reads them), as
    /// `TIME` or `TIME=LABEL`; TIME is RFC 3339 or `YYYY-MM-DD HH:MM:SS`
    /// in --timezone. Repeatable.
    #[arg(long = "mark", value_name = "TIME[=LABEL]")]
    pub marks: Vec<String>,
    /// Also write `<label>.tar.gz` and `<label>.tar.gz.sha256` beside the bundle.
    #[arg(long)]
    pub archive: bool,
    /// A site rule: a regular expression for a secret only this deployment
    /// knows, redacted everywhere after the built-in rules (the first
    /// capture group if it has one, else the whole match). Repeatable; the
    /// config's `[redact] extra` patterns apply too.
    #[arg(long = "redact", value_name = "REGEX")]
    pub redact: Vec<String>,
}
