//! A container's output: `docker logs --timestamps --follow` (or podman's),
//! stdout and stderr in the order written (Synapse's console handler
//! writes to stderr). It resumes `--since` the last line's timestamp,
//! which docker includes, skipping the lines of that same timestamp
//! already handed on (as stern does). A container that stops ends the
//! command; the supervisor starts it again until the container (or a new
//! one of the same name) runs. Without backfill the first command starts
//! `--since` the capture's start (not `--tail 0`, which starts wherever the
//! log ends when the command gets there).

use super::command::{Follow, Line};
use crate::domain::log_format::docker_time;
use chrono::{DateTime, SecondsFormat, Utc};

pub struct Docker {
    pub container: String,
    /// The engine's command, word by word (`docker`, `podman`, `docker -H …`).
    pub command: Vec<String>,
    pub backfill: u64,
    /// Without backfill, where the first command starts (the capture's
    /// start, read on the engine's host clock).
    pub since: Option<DateTime<Utc>>,
    /// While resuming: the position's time and how many of its lines are
    /// still to skip.
    skipping: Option<(DateTime<Utc>, u64)>,
}

/// The timestamp of the last line handed on and how many lines with that
/// timestamp were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub at: DateTime<Utc>,
    pub seen: u64,
}

impl Docker {
    pub fn new(container: &str, command: &str, backfill: u64) -> Docker {
        let mut words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            words.push("docker".into());
        }
        Docker {
            container: container.to_string(),
            command: words,
            backfill,
            since: None,
            skipping: None,
        }
    }
}

impl Follow for Docker {
    type Position = Since;

    fn argv(&self, position: Option<&Since>) -> Vec<String> {
        let mut argv = self.command.clone();
        argv.extend(["logs", "--timestamps", "--follow"].map(String::from));
        match position {
            Some(p) => {
                argv.push("--since".into());
                argv.push(p.at.to_rfc3339_opts(SecondsFormat::Nanos, true));
            }
            None => match self.since.filter(|_| self.backfill == 0) {
                Some(t) => {
                    argv.push("--since".into());
                    argv.push(t.to_rfc3339_opts(SecondsFormat::Nanos, true));
                }
                None => {
                    argv.push("--tail".into());
                    argv.push(self.backfill.to_string());
                }
            },
        }
        argv.push(self.container.clone());
        argv
    }

    fn merge_stderr(&self) -> bool {
        true
    }

    fn start(&mut self, position: Option<&Since>) {
        self.skipping = position.map(|p| (p.at, p.seen));
    }

    fn line(&mut self, line: &[u8], position: &mut Option<Since>) -> Line {
        let Some((at, _)) = docker_time(line) else {
            return Line::Diagnostic;
        };
        if let Some((since, left)) = &mut self.skipping {
            // `--since` includes its own instant: its lines come again.
            if at < *since || (at == *since && *left > 0) {
                *left = left.saturating_sub(1);
                return Line::Seen;
            }
            self.skipping = None;
        }
        match position {
            Some(p) if at == p.at => p.seen += 1,
            // Out of order (rare): the position stays at the latest time.
            Some(p) if at < p.at => {}
            _ => *position = Some(Since { at, seen: 1 }),
        }
        Line::Log
    }

    fn describe(position: &Since) -> serde_json::Value {
        serde_json::json!({
            "since": position.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "lines_at_since": position.seen,
        })
    }

    fn what(&self) -> String {
        format!("container {}", self.container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(d: &mut Docker, pos: &mut Option<Since>, lines: &[&str]) -> Vec<Line> {
        lines.iter().map(|l| d.line(l.as_bytes(), pos)).collect()
    }

    #[test]
    fn it_resumes_since_the_last_time_skipping_what_it_had() {
        let mut d = Docker::new("synapse", "docker -H unix:///d.sock", 0);
        assert_eq!(
            d.argv(None).join(" "),
            "docker -H unix:///d.sock logs --timestamps --follow --tail 0 synapse"
        );
        let mut pos = None;
        d.start(None);
        let a = "2026-06-30T18:00:00.000000001Z a";
        let b = "2026-06-30T18:00:00.000000002Z b";
        let b2 = "2026-06-30T18:00:00.000000002Z b2";
        let c = "2026-06-30T18:00:00.000000003Z c";
        assert_eq!(log(&mut d, &mut pos, &[a, b, b2]), vec![Line::Log; 3]);
        assert_eq!(pos.as_ref().map(|p| p.seen), Some(2));
        let argv = d.argv(pos.as_ref());
        assert_eq!(
            argv[argv.len() - 3..].join(" "),
            "--since 2026-06-30T18:00:00.000000002Z synapse"
        );
        // The resumed command prints both lines of that instant again.
        d.start(pos.as_ref());
        assert_eq!(
            log(&mut d, &mut pos, &[b, b2, c, "Error: x"]),
            vec![Line::Seen, Line::Seen, Line::Log, Line::Diagnostic]
        );
        assert_eq!(pos.as_ref().map(|p| p.seen), Some(1));
    }

    #[test]
    fn a_new_line_of_the_same_instant_after_a_resume_is_kept() {
        let mut d = Docker::new("s", "podman", 5);
        let b = "2026-06-30T18:00:00.000000002Z b";
        let b2 = "2026-06-30T18:00:00.000000002Z b2";
        let mut pos = None;
        d.start(None);
        assert_eq!(log(&mut d, &mut pos, &[b]), vec![Line::Log]);
        d.start(pos.as_ref());
        assert_eq!(log(&mut d, &mut pos, &[b, b2]), vec![Line::Seen, Line::Log]);
        assert_eq!(pos.as_ref().map(|p| p.seen), Some(2));
    }

    #[test]
    fn without_backfill_it_starts_at_the_capture_start() {
        let mut d = Docker::new("s", "docker", 0);
        d.since = DateTime::from_timestamp(1_782_842_400, 5);
        assert_eq!(
            d.argv(None).join(" "),
            "docker logs --timestamps --follow --since 2026-06-30T18:00:00.000000005Z s"
        );
        d.backfill = 3;
        assert!(d.argv(None).join(" ").ends_with("--tail 3 s"));
    }
}
