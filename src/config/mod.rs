//! The config file: TOML, kebab-case keys, unknown keys rejected.
//! Precedence is CLI > file > embedded defaults.

pub mod duration;
pub mod keymap;
mod server_log;
mod validate;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use duration::HumanDuration;
pub use server_log::{LogKind, ServerLogConfig, ServerLogsConfig, UNNAMED_LOG, check_name};

/// The commented example config (`callcap config --example`); a test proves
/// it parses and validates.
pub const EXAMPLE: &str = include_str!("../../assets/config.example.toml");

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
    pub server_log: ServerLogsConfig,
    pub client: ClientConfig,
    pub call: CallConfig,
    pub bundle: BundleConfig,
    pub database: Option<DatabaseConfig>,
    pub analysis: AnalysisConfig,
    pub signatures: SignaturesConfig,
    pub debug_loggers: Option<DebugLoggersConfig>,
    pub redact: RedactConfig,
    pub metrics: Option<MetricsConfig>,
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
    /// ssh-agent socket (OpenSSH's `IdentityAgent`): a path, or `none` to not
    /// use an agent. Default: `$SSH_AUTH_SOCK`.
    #[serde(default)]
    pub identity_agent: Option<PathBuf>,
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

pub(crate) fn default_timezone() -> String {
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
    /// Also write `<label>.tar.gz` and its `.sha256` beside the bundle.
    pub archive: bool,
}

/// `[debug-loggers]`: Synapse loggers raised to DEBUG for the capture and
/// reverted on every way out (runbook §0/§4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DebugLoggersConfig {
    /// Synapse's `log_config` file, on the server (over SSH, inside
    /// `[server-log] exec-prefix`) or local without `[ssh]`.
    pub log_config: PathBuf,
    #[serde(default = "default_debug_loggers")]
    pub loggers: Vec<String>,
    /// Makes Synapse re-read its log config (a shell command on the server).
    #[serde(default = "default_reload")]
    pub reload: String,
    /// Raise at every `live` start, as `--debug-loggers` does.
    #[serde(default)]
    pub raise: bool,
}

/// The loggers runbook §0 raises.
pub fn default_debug_loggers() -> Vec<String> {
    [
        "synapse.rest.client.keys",
        "synapse.handlers.e2e_keys",
        "synapse.storage.databases.main.end_to_end_keys",
        "synapse.handlers.devicemessage",
    ]
    .map(String::from)
    .to_vec()
}

pub fn default_reload() -> String {
    "systemctl reload matrix-synapse".to_string()
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

/// `[metrics]`: Synapse's latency histogram, read from its own metrics
/// listener (`scrape`) or from a Prometheus that scrapes it (`prometheus`):
/// exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// Synapse's metrics endpoint, e.g. `http://127.0.0.1:9000/_synapse/metrics`.
    pub scrape: Option<String>,
    /// Reach `scrape` (or `prometheus`) through the SSH connection
    /// (direct-tcpip), as the database can be.
    #[serde(default)]
    pub via_ssh: bool,
    /// How often to scrape (or ask Prometheus).
    #[serde(default = "default_metrics_interval")]
    pub interval: HumanDuration,
    /// A Prometheus's base URL, e.g. `http://127.0.0.1:9090`.
    pub prometheus: Option<String>,
    /// Label matchers added to every Prometheus query, e.g. `{job="synapse"}`.
    pub selector: Option<String>,
}

fn default_metrics_interval() -> HumanDuration {
    HumanDuration::from_secs(15)
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

/// `[redact]`: site rules, regular expressions for secrets only this
/// deployment knows, redacted everywhere after the built-in rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedactConfig {
    pub extra: Vec<String>,
}

impl RedactConfig {
    /// The site rules, named by where they are in the file.
    pub fn site_rules(&self) -> Vec<crate::domain::redact::SiteRule> {
        self.extra
            .iter()
            .enumerate()
            .map(|(i, p)| crate::domain::redact::SiteRule {
                origin: format!("[redact] extra[{i}]"),
                pattern: p.clone(),
            })
            .collect()
    }
}

/// The default config file: `~/.config/callcap/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "callcap").map(|d| d.config_dir().join("config.toml"))
}

/// The `[redact]` section of a config file on its own, checked, for
/// commands that read nothing else of the config (`analyze`, `recover`):
/// the rest of the file is not looked at beyond its TOML syntax.
pub fn load_redact_section(path: &Path) -> Result<RedactConfig, ConfigError> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        redact: RedactConfig,
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let only: Only = toml::from_str(&text).map_err(|e| match describe_toml_error(&text, &e) {
        (Some(key), message) => ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        },
        (None, message) => ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        },
    })?;
    validate::redact_section(&only.redact, path)?;
    Ok(only.redact)
}

impl Config {
    /// Parses TOML. Errors name the key when it can be located, and the
    /// line and column otherwise (syntax errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| match describe_toml_error(text, &e) {
            (Some(key), message) => ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                message,
            },
            (None, message) => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
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
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p.to_path_buf()
}

/// Splits a TOML error into the dotted key it is about (when its position
/// falls on a key or a value) and a one-line message, with serde's "field"
/// said as "key" and backticks as quotes, the way the rest of our errors
/// quote values. Without a key the message starts with the line and column.
pub(crate) fn describe_toml_error(text: &str, e: &toml::de::Error) -> (Option<String>, String) {
    let mut message = e
        .message()
        .trim()
        .replace('\n', " ")
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("expected u64", "expected a whole number")
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace('`', "'");
    // serde quotes a bad string as `string "x"`; quote it like every other value.
    if let Some(rest) = message.strip_prefix("invalid type: string \"")
        && let Some((value, tail)) = rest.split_once("\", ")
    {
        message = format!("invalid type: string '{value}', {tail}");
    }
    let Some(span) = e.span() else {
        return (None, message);
    };
    let key = toml::de::DeTable::parse(text)
        .ok()
        .and_then(|doc| key_at(doc.get_ref(), span.start, ""));
    match key {
        Some(key) => (Some(key), message),
        None => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (None, format!("line {line}, column {column}: {message}"))
        }
    }
}

/// The deepest key whose name or value covers byte `pos`. Table headers only
/// span `[name]`, so children are searched whether or not the parent covers
/// `pos`.
fn key_at(table: &toml::de::DeTable<'_>, pos: usize, prefix: &str) -> Option<String> {
    for (k, v) in table.iter() {
        let name = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if let Some(deeper) = key_in_value(v, pos, &name) {
            return Some(deeper);
        }
        if k.span().contains(&pos) || v.span().contains(&pos) {
            return Some(name);
        }
    }
    None
}

fn key_in_value(
    v: &toml::Spanned<toml::de::DeValue<'_>>,
    pos: usize,
    name: &str,
) -> Option<String> {
    match v.get_ref() {
        toml::de::DeValue::Table(t) => key_at(t, pos, name),
        toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let indexed = format!("{name}[{i}]");
            key_in_value(item, pos, &indexed)
                .or_else(|| item.span().contains(&pos).then_some(indexed))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
