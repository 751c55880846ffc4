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
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Analyse files that already exist (saved logs, diag reports, HARs) and write a bundle.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A homeserver log; repeat for several, read in the order given (rotated first).
    #[arg(long = "log", value_name = "FILE", required = true)]
    pub logs: Vec<PathBuf>,
    /// A client diag report, or a folder of them.
    #[arg(long = "diag", value_name = "PATH")]
    pub diags: Vec<PathBuf>,
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
    /// The client's delayed-event restart timeout, for Q4 (e.g. 2s).
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub restart_timeout: String,
}
