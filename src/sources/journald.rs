//! A systemd unit's journal: `journalctl -u UNIT -f -o json --all`,
//! resumed after the last record's `__CURSOR` (`--after-cursor`). `--all`
//! keeps long fields (journalctl shows a field over 4 KiB as `null`
//! without it); `-D` reads a journal directory instead of the system's.
//! `-n all` goes with `--after-cursor`: `-f` without `-n` means `-n 10`,
//! and after a cursor journalctl then prints ten records of the backlog
//! and the rest only once the journal changes again (on a server gone
//! quiet after the link dropped: never).
//! Without backfill the first command starts at the capture's start
//! (`--since`), not at the end of the journal when the command gets there:
//! records written while the command starts are the capture's.

use super::command::{Follow, Line};
use crate::domain::log_format::journal_cursor;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub struct Journald {
    pub unit: String,
    pub directory: Option<PathBuf>,
    /// Records before the end to start with.
    pub backfill: u64,
    /// Without backfill, where the first command starts (the capture's
    /// start, read on the journal's host clock).
    pub since: Option<DateTime<Utc>>,
}

/// The cursor of the last record handed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Journald {
    /// The command's words up to the position (also what the preflight
    /// check runs, with `-n 1` and without `-f`).
    pub fn base_argv(&self) -> Vec<String> {
        let mut argv = vec!["journalctl".to_string()];
        if let Some(d) = &self.directory {
            argv.push("-D".into());
            argv.push(d.display().to_string());
        }
        argv.extend(
            ["-u", &self.unit, "-o", "json", "--all", "--no-pager"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv
    }
}

impl Follow for Journald {
    type Position = Cursor;

    fn argv(&self, position: Option<&Cursor>) -> Vec<String> {
        let mut argv = self.base_argv();
        argv.push("-f".into());
        match position {
            Some(Cursor(c)) => {
                argv.push(format!("--after-cursor={c}"));
                argv.push("-n".into());
                argv.push("all".into());
            }
            None => match self.since.filter(|_| self.backfill == 0) {
                Some(t) => {
                    argv.push(format!(
                        "--since=@{}.{:06}",
                        t.timestamp(),
                        t.timestamp_subsec_micros()
                    ));
                    argv.push("-n".into());
                    argv.push("all".into());
                }
                None => {
                    argv.push("-n".into());
                    argv.push(self.backfill.to_string());
                }
            },
        }
        argv
    }

    fn line(&mut self, line: &[u8], position: &mut Option<Cursor>) -> Line {
        if line.first() != Some(&b'{') {
            return Line::Diagnostic;
        }
        match journal_cursor(line) {
            Some(c) => {
                *position = Some(Cursor(c.into_owned()));
                Line::Log
            }
            // A record without a cursor cannot be resumed after, but is log.
            None => Line::Log,
        }
    }

    fn describe(position: &Cursor) -> serde_json::Value {
        serde_json::json!({"cursor": position.0})
    }

    fn what(&self) -> String {
        format!("the journal of {}", self.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_the_end_or_resumes_after_the_cursor() {
        let mut j = Journald {
            unit: "matrix-synapse".into(),
            directory: Some("/srv/journal".into()),
            backfill: 0,
            since: None,
        };
        assert_eq!(
            j.argv(None).join(" "),
            "journalctl -D /srv/journal -u matrix-synapse -o json --all --no-pager -f -n 0"
        );
        let mut pos = None;
        assert_eq!(
            j.line(br#"{"__CURSOR":"s=1;i=2","MESSAGE":"x"}"#, &mut pos),
            Line::Log
        );
        assert_eq!(pos, Some(Cursor("s=1;i=2".into())));
        assert!(
            j.argv(pos.as_ref())
                .join(" ")
                .ends_with(" -f --after-cursor=s=1;i=2 -n all")
        );
        assert_eq!(j.line(b"-- No entries --", &mut pos), Line::Diagnostic);
        j.since = chrono::DateTime::from_timestamp_micros(1_782_842_400_000_123);
        assert!(
            j.argv(None)
                .join(" ")
                .ends_with("-f --since=@1782842400.000123 -n all")
        );
        j.backfill = 10;
        assert!(j.argv(None).join(" ").ends_with("-f -n 10"));
    }
}
