//! `[server-log]` (one log, as it always was) or `[[server-log]]` entries
//! (several: workers, a journald unit, a container), each reading exactly
//! one of a file (`path`), a systemd unit's journal (`journal-unit`) or a
//! container's output (`container`).

use crate::domain::synapse_log::LogClock;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// The name of a log that was given none (the only one).
pub const UNNAMED_LOG: &str = "server-log";

/// Source names the capture already uses: a log may not take one.
const RESERVED_NAMES: &[&str] = &[
    "database",
    "downloads",
    "client",
    "journal",
    "bundle",
    "check",
    "debug-loggers",
];

/// One log the capture follows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerLogConfig {
    /// Shown in panes, the status bar, the timeline and the bundle
    /// (`server/<name>.log`); needed when there are several logs.
    pub name: Option<String>,
    /// A log file (kind "file").
    pub path: Option<PathBuf>,
    /// A systemd unit whose journal is followed (kind "journald").
    pub journal_unit: Option<String>,
    /// A container whose output is followed (kind "docker").
    pub container: Option<String>,
    /// journalctl's `-D`: a journal directory (copied from another machine).
    pub journal_directory: Option<PathBuf>,
    /// The container engine's command (default `docker`; `podman` works the
    /// same). Words separated by spaces, e.g. `docker -H unix:///run/d.sock`.
    pub docker_command: Option<String>,
    /// Prefix for remote commands, e.g. `pct exec 151 --`.
    pub exec_prefix: Option<String>,
    /// Time zone of the log's timestamps: `UTC`, an IANA name or `+02:00`.
    #[serde(default = "super::default_timezone")]
    pub timezone: String,
    /// What writes the log: `synapse`, `livekit` (livekit-server) or
    /// `lk-jwt` (lk-jwt-service); told by its first lines when absent.
    pub format: Option<String>,
    /// Start this many lines back instead of at the end.
    #[serde(default)]
    pub backfill: u64,
}

/// What a log entry reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind<'a> {
    File(&'a Path),
    Journal {
        unit: &'a str,
        directory: Option<&'a Path>,
    },
    Docker {
        container: &'a str,
        command: &'a str,
    },
}

impl LogKind<'_> {
    /// `file`, `journald` or `docker`, as the manifest says.
    pub fn name(&self) -> &'static str {
        match self {
            LogKind::File(_) => "file",
            LogKind::Journal { .. } => "journald",
            LogKind::Docker { .. } => "docker",
        }
    }
}

impl ServerLogConfig {
    /// A log file, with the defaults for everything else.
    pub fn file(path: impl Into<PathBuf>) -> ServerLogConfig {
        ServerLogConfig {
            path: Some(path.into()),
            timezone: super::default_timezone(),
            ..ServerLogConfig::default()
        }
    }

    /// What the entry reads (a validated entry sets exactly one of them).
    pub fn kind(&self) -> LogKind<'_> {
        match (&self.path, &self.journal_unit, &self.container) {
            (_, Some(unit), _) => LogKind::Journal {
                unit,
                directory: self.journal_directory.as_deref(),
            },
            (_, _, Some(container)) => LogKind::Docker {
                container,
                command: self.docker_command.as_deref().unwrap_or("docker"),
            },
            (path, _, _) => LogKind::File(path.as_deref().unwrap_or(Path::new(""))),
        }
    }
}

/// Every log entry, in the order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerLogsConfig {
    pub entries: Vec<ServerLogConfig>,
    /// Written as one `[server-log]` table (not `[[server-log]]`).
    pub table: bool,
}

impl ServerLogsConfig {
    pub fn one(log: ServerLogConfig) -> ServerLogsConfig {
        ServerLogsConfig {
            entries: vec![log],
            table: true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServerLogConfig> {
        self.entries.iter()
    }

    pub fn first(&self) -> Option<&ServerLogConfig> {
        self.entries.first()
    }

    /// Each entry's name: its own, or [`UNNAMED_LOG`] for an only log
    /// given none.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.name.clone().unwrap_or_else(|| UNNAMED_LOG.to_string()))
            .collect()
    }

    /// How an error names entry `i`: `server-log`, or `server-log[i]`.
    fn key(&self, i: usize) -> String {
        if self.table {
            "server-log".to_string()
        } else {
            format!("server-log[{i}]")
        }
    }

    /// Checks each entry: exactly one of `path`, `journal-unit`,
    /// `container`; options only where their kind reads them; names
    /// present when there are several, unique, and fit for a file name.
    /// Returns the key and the message of the first problem.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        let several = self.entries.len() > 1;
        let mut seen: Vec<String> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let key = self.key(i);
            let who = e
                .name
                .as_deref()
                .map_or_else(|| format!("entry {i}"), |n| format!("'{n}'"));
            let set: Vec<&str> = [
                ("path", e.path.is_some()),
                ("journal-unit", e.journal_unit.is_some()),
                ("container", e.container.is_some()),
            ]
            .into_iter()
            .filter_map(|(k, on)| on.then_some(k))
            .collect();
            match set.len() {
                1 => {}
                0 if self.table => {
                    return Err((
                        key,
                        "missing key 'path' (or 'journal-unit', or 'container')".into(),
                    ));
                }
                0 => {
                    return Err((
                        key,
                        format!(
                            "{who} sets none of 'path', 'journal-unit', 'container': give exactly one"
                        ),
                    ));
                }
                _ => {
                    return Err((
                        key,
                        format!(
                            "{who} sets {}: give exactly one of 'path', 'journal-unit', 'container'",
                            set.iter()
                                .map(|k| format!("'{k}'"))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ),
                    ));
                }
            }
            let field = |k: &str| format!("{key}.{k}");
            if e.journal_directory.is_some() && e.journal_unit.is_none() {
                return Err((
                    field("journal-directory"),
                    format!("{who}: only a 'journal-unit' reads a journal directory"),
                ));
            }
            if e.docker_command.is_some() && e.container.is_none() {
                return Err((
                    field("docker-command"),
                    format!("{who}: only a 'container' is read with a docker command"),
                ));
            }
            let empty = |v: Option<&str>, k: &str, example: &str| match v {
                Some(s) if s.trim().is_empty() => Err((
                    field(k),
                    format!("must not be empty (leave it out, or e.g. {example})"),
                )),
                _ => Ok(()),
            };
            empty(
                e.path.as_deref().and_then(Path::to_str),
                "path",
                "\"/var/log/matrix-synapse/homeserver.log\"",
            )?;
            empty(
                e.journal_unit.as_deref(),
                "journal-unit",
                "\"matrix-synapse\"",
            )?;
            empty(e.container.as_deref(), "container", "\"synapse\"")?;
            empty(e.docker_command.as_deref(), "docker-command", "\"podman\"")?;
            empty(
                e.journal_directory.as_deref().and_then(Path::to_str),
                "journal-directory",
                "\"/var/log/journal\"",
            )?;
            empty(
                e.exec_prefix.as_deref(),
                "exec-prefix",
                "\"pct exec 151 --\"",
            )?;
            LogClock::new(&e.timezone).map_err(|m| (field("timezone"), m))?;
            if let Some(f) = &e.format
                && crate::domain::sfu_log::Service::from_name(f).is_none()
            {
                return Err((
                    field("format"),
                    format!(
                        "'{f}' is not a log format: use \"synapse\", \"livekit\" or \"lk-jwt\" (or leave it out to tell it from the log)"
                    ),
                ));
            }
            match &e.name {
                None if several => {
                    return Err((
                        field("name"),
                        "missing: each of several logs needs a name (e.g. \"main\", \"worker1\")"
                            .into(),
                    ));
                }
                None => {}
                Some(n) => {
                    check_name(n).map_err(|m| (field("name"), format!("'{n}' {m}")))?;
                    if seen.iter().any(|s| s == n) {
                        return Err((
                            field("name"),
                            format!("'{n}' names another log too: each log needs its own name"),
                        ));
                    }
                    seen.push(n.clone());
                }
            }
        }
        Ok(())
    }
}

/// A log's name becomes a file name (`server/<name>.log`) and a source name.
pub fn check_name(n: &str) -> Result<(), String> {
    let ok_chars = n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if n.is_empty() || n.len() > 64 || !ok_chars || !n.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(
            "is not a log name (letters, digits, '.', '_', '-', starting with a letter or digit, at most 64)"
                .into(),
        );
    }
    if n.len() == 4 && n[..3].eq_ignore_ascii_case("ke-") {
        return Err("would clash with the KE logs' files".into());
    }
    if RESERVED_NAMES.contains(&n) {
        return Err("is the name of another source".into());
    }
    Ok(())
}

impl Serialize for ServerLogsConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.table, self.entries.first()) {
            (true, Some(one)) if self.entries.len() == 1 => one.serialize(s),
            _ => self.entries.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ServerLogsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = ServerLogsConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [server-log] table or [[server-log]] entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = ServerLogConfig::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ServerLogsConfig::one(one))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(e) = seq.next_element::<ServerLogConfig>()? {
                    entries.push(e);
                }
                Ok(ServerLogsConfig {
                    entries,
                    table: false,
                })
            }
        }
        d.deserialize_any(Entries)
    }
}
