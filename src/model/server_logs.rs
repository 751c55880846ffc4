//! The server logs of one capture (one homeserver log, or several: workers,
//! a journald unit, a container), and how a line of one of them is named.
//!
//! A server line's number is the 1-based line in its log's bundle file,
//! with the log's index in the top [`INDEX_SHIFT`] bits: the first log's
//! numbers are plain line numbers, so a capture of one log numbers its
//! lines as it always did, and every number still names one line of one
//! file (`server/<name>.log:N`).

use serde::{Deserialize, Serialize};

/// What the journal records of each server log when there are several (or
/// one in a known format), so that `recover` and `replay` read them back
/// as they were captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    pub name: String,
    pub timezone: String,
    /// `text`, `synapse-json`, `journald-json`, `docker`; absent: told by
    /// the log's first lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `synapse`, `livekit`, `lk-jwt`; absent: told by the log's first
    /// lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// Bits below the log's index.
const INDEX_SHIFT: u32 = 48;
const LINE_MASK: u64 = (1 << INDEX_SHIFT) - 1;

/// Line `line` (1-based) of the log at `index`.
pub fn line_number(index: usize, line: u64) -> u64 {
    ((index as u64) << INDEX_SHIFT) | (line & LINE_MASK)
}

/// The log's index and the line within it.
pub fn split_line_number(n: u64) -> (usize, u64) {
    ((n >> INDEX_SHIFT) as usize, n & LINE_MASK)
}

/// The bundle file of a capture's only server log.
pub const SINGLE_LOG_FILE: &str = "server/homeserver.log";

/// The name of the server log of a capture that follows one log and was
/// given no name (`[server-log]`, `analyze --log FILE`).
pub const DEFAULT_LOG_NAME: &str = "server-log";

/// The server logs by name, in the order their lines are numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLogs {
    names: Vec<String>,
}

impl Default for ServerLogs {
    fn default() -> Self {
        ServerLogs::single(DEFAULT_LOG_NAME)
    }
}

impl ServerLogs {
    pub fn single(name: &str) -> ServerLogs {
        ServerLogs {
            names: vec![name.to_string()],
        }
    }

    /// `names` in order (at least one; an empty list is the default log).
    pub fn new(names: Vec<String>) -> ServerLogs {
        if names.is_empty() {
            return ServerLogs::default();
        }
        ServerLogs { names }
    }

    /// More than one log: each has its own file, lines carry their log's name.
    pub fn several(&self) -> bool {
        self.names.len() > 1
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn is_server_log(&self, source: &str) -> bool {
        self.index_of(source).is_some()
    }

    pub fn name(&self, index: usize) -> &str {
        self.names
            .get(index)
            .map_or(DEFAULT_LOG_NAME, String::as_str)
    }

    /// The log's file in the bundle: `server/homeserver.log` for the only
    /// one, `server/<name>.log` for each of several.
    pub fn file(&self, index: usize) -> String {
        if self.several() {
            format!("server/{}.log", self.name(index))
        } else {
            SINGLE_LOG_FILE.to_string()
        }
    }

    /// The log a line number belongs to, by name; `None` for the only log.
    pub fn name_of_line(&self, n: u64) -> Option<&str> {
        self.several()
            .then(|| self.names.get(split_line_number(n).0).map(String::as_str))
            .flatten()
    }

    /// `server/<file>:<line>` of a line number.
    pub fn reference(&self, n: u64) -> String {
        let (index, line) = split_line_number(n);
        format!("{}:{line}", self.file(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_log_keeps_plain_numbers_and_its_file() {
        let one = ServerLogs::default();
        assert_eq!(line_number(0, 17), 17);
        assert_eq!(one.reference(17), "server/homeserver.log:17");
        assert_eq!(one.name_of_line(17), None);
    }

    #[test]
    fn several_logs_each_name_their_file() {
        let logs = ServerLogs::new(vec!["main".into(), "worker1".into()]);
        let n = line_number(1, 42);
        assert_eq!(split_line_number(n), (1, 42));
        assert_eq!(logs.reference(n), "server/worker1.log:42");
        assert_eq!(logs.reference(line_number(0, 3)), "server/main.log:3");
        assert_eq!(logs.name_of_line(n), Some("worker1"));
        assert!(n > line_number(0, 1_000_000_000));
    }
}
