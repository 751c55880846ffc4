//! The config file: TOML, kebab-case keys, unknown keys rejected.
//! Precedence is CLI > file > embedded defaults.

pub mod duration;
pub mod keymap;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use duration::HumanDuration;

/// Errors that say what to fix: the file, the key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file '{path}': {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file '{path}': key '{key}': {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub ssh: Option<SshConfig>,
    pub server_log: Option<ServerLogConfig>,
    pub client: ClientConfig,
    pub call: CallConfig,
    pub bundle: BundleConfig,
    pub database: Option<DatabaseConfig>,
    pub analysis: AnalysisConfig,
    pub signatures: SignaturesConfig,
}

/// `[ssh]`: how to reach the Synapse host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SshConfig {
    /// A host name, an address, or a `Host` alias from `~/.ssh/config`.
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    /// Name of an environment variable that holds the key's passphrase.
    pub passphrase_env: Option<String>,
    pub known_hosts: Option<PathBuf>,
    #[serde(default)]
    pub host_key_check: HostKeyCheck,
    /// `user@host:port` of a bastion (ProxyJump).
    pub jump: Option<String>,
    /// `~/.ssh/config` to read `Host` aliases from (default: `~/.ssh/config`).
    pub ssh_config: Option<PathBuf>,
    pub connect_timeout: Option<HumanDuration>,
    pub keepalive_interval: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    #[default]
    Strict,
    AcceptNew,
}

/// `[server-log]`: the homeserver log, remote (with `[ssh]`) or local.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerLogConfig {
    pub path: PathBuf,
    /// Prefix for remote commands, e.g. `pct exec 151 --`.
    pub exec_prefix: Option<String>,
    /// Time zone of the log's timestamps: `UTC`, an IANA name or `+02:00`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Start this many lines back instead of at the end.
    #[serde(default)]
    pub backfill: u64,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// `[client]`: where the browser puts downloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientConfig {
    pub downloads: Option<PathBuf>,
    /// Also pick up matching files that were already in the folder at start.
    pub include_existing: bool,
}

/// `[call]`: who is being watched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CallConfig {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Other users (or `@user:hs/DEVICE`) in the call.
    pub participants: Vec<String>,
    /// Extra KE-3 event ids to look for in the server log.
    pub event_ids: Vec<String>,
}

/// `[bundle]`: where evidence goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BundleConfig {
    pub out: Option<PathBuf>,
    pub label: Option<String>,
}

/// `[database]`: the Synapse database, read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseConfig {
    pub url: String,
    pub password_env: Option<String>,
    #[serde(default)]
    pub via_ssh: bool,
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: HumanDuration,
}

fn default_poll_interval() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_statement_timeout() -> HumanDuration {
    HumanDuration::from_secs(2)
}

/// `[analysis]`: thresholds of the decision tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnalysisConfig {
    /// The client's delayed-event restart timeout (matrix-js-sdk default 2 s).
    pub restart_timeout: HumanDuration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            restart_timeout: HumanDuration::from_secs(2),
        }
    }
}

/// `[signatures]`: a user file that overrides the embedded KE signatures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignaturesConfig {
    pub file: Option<PathBuf>,
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }
}

/// Expands a leading `~/` to the home directory.
pub fn expand_tilde(p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    p.to_path_buf()
}
