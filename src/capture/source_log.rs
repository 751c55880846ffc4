//! One server log's own state in the capture: its clock, its format, the
//! line it has not finished yet, its counts, its last record's time and
//! its stall detector. Logs do not share any of these: a worker's line cut
//! in two by a chunk boundary waits for its own rest, whatever the other
//! logs send meanwhile.

use crate::domain::log_format::Format;
use crate::domain::sfu_log::Service;
use crate::domain::stall::StallDetector;
use crate::domain::synapse_log::LogClock;
use crate::model::server_logs::{DEFAULT_LOG_NAME, LogInfo};
use chrono::{DateTime, NaiveDateTime, Utc};

/// What the capture is told of a log.
#[derive(Debug, Clone)]
pub struct LogSpec {
    pub name: String,
    /// The log's time zone (and, later, its host's measured offset).
    pub clock: LogClock,
    /// `None`: told by the log's first lines (a file may be text or JSON).
    pub format: Option<Format>,
    /// `None`: told by the log's first lines (Synapse when they do not
    /// say).
    pub service: Option<Service>,
}

impl LogSpec {
    /// What the journal recorded of the logs (at least one: a capture
    /// without a server log has an empty one).
    pub fn from_infos(logs: &[LogInfo]) -> Result<Vec<LogSpec>, String> {
        let mut specs = logs
            .iter()
            .map(|l| {
                let clock = LogClock::new(&l.timezone)
                    .map_err(|e| format!("server log '{}': timezone: {e}", l.name))?;
                Ok(LogSpec {
                    name: l.name.clone(),
                    clock,
                    format: l.format.as_deref().and_then(Format::from_name),
                    service: l.service.as_deref().and_then(Service::from_name),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if specs.is_empty() {
            specs.push(LogSpec {
                name: DEFAULT_LOG_NAME.into(),
                clock: LogClock::utc(),
                format: None,
                service: None,
            });
        }
        Ok(specs)
    }
}

pub(super) struct SourceLog {
    pub clock: LogClock,
    pub format: Option<Format>,
    pub service: Option<Service>,
    /// An incomplete last line, waiting for the rest.
    pub partial: Vec<u8>,
    /// A line cut at [`super::LINE_CAP`], still going on.
    pub long_line: Option<super::long_line::LongLine>,
    pub lines: u64,
    pub bytes: u64,
    pub last_record_at: Option<DateTime<Utc>>,
    pub stalls: StallDetector,
    /// Decoded logs: the last record's time (UTC), for lines without one.
    pub carried: Option<NaiveDateTime>,
}

impl SourceLog {
    pub fn new(spec: LogSpec, restart_timeout_ms: u32) -> SourceLog {
        SourceLog {
            clock: spec.clock,
            format: spec.format,
            service: spec.service,
            partial: Vec::new(),
            long_line: None,
            lines: 0,
            bytes: 0,
            last_record_at: None,
            stalls: StallDetector::new(restart_timeout_ms),
            carried: None,
        }
    }

    /// The clock a scan of this log reads with: the log's zone for text,
    /// UTC (with the host's offset) for decoded records, whose times are
    /// made UTC when decoded.
    pub fn scan_clock(&self) -> LogClock {
        match self.format {
            Some(f) if f.is_decoded() => self.clock.utc_with_offset(),
            _ => self.clock.clone(),
        }
    }
}
