//! SFU logs into the capture: livekit-server's and lk-jwt-service's lines
//! are kept in the log's file (redacted) like every log's, numbered, and
//! read into participant states and token grants for the App instead of
//! being matched against the KE signatures (they are not Synapse's). A
//! journald or docker wrapper is taken off first. A line that is neither
//! stays in the file and is counted as not recognised.

use super::Capture;
use crate::app::event::{LkGrant, ServerBatch, SfuSighting};
use crate::domain::log_format::{self, Body, Format};
use crate::domain::sfu_log::{Service, parse_livekit, parse_lkjwt, sfu_event, sniff_service};
use crate::model::server_logs::line_number;
use std::borrow::Cow;

/// What a line of the log holds as the service wrote it: the wrapper's
/// message, or the line itself.
fn inner(format: Format, line: &[u8]) -> (Option<chrono::DateTime<chrono::Utc>>, String) {
    let rec = log_format::decode(format, line);
    let text = match rec.body {
        Body::Text(t) => String::from_utf8_lossy(&t).into_owned(),
        Body::Json(j) => j.message,
    };
    (rec.wrapper_at, text)
}

/// The service the first lines of a log are of (Synapse when they do
/// not say).
pub(super) fn detect(format: Format, buf: &[u8]) -> Service {
    let lines: Vec<String> = buf
        .split(|b| *b == b'\n')
        .take(50)
        .map(|l| inner(format, l).1)
        .collect();
    sniff_service(lines.iter().map(String::as_str)).unwrap_or(Service::Synapse)
}

impl Capture {
    /// Complete lines of an SFU log.
    pub(super) fn process_sfu(
        &mut self,
        src: usize,
        format: Format,
        service: Service,
        raw: &[u8],
        batch: &mut ServerBatch,
    ) -> std::io::Result<()> {
        self.sources[src].bytes += raw.len() as u64;
        let (red, tally) = self.redactor.redact_bytes(raw);
        let file = self.journal.server_file(src);
        match &red {
            Cow::Borrowed(_) => file.write_slice(raw)?,
            Cow::Owned(v) => file.write(v.clone())?,
        }
        file.redactions += tally.total();
        file.by_rule.add(&tally);
        batch.redactions += tally.total();
        let body = red.strip_suffix(b"\n").unwrap_or(&red);
        let mut line = self.sources[src].lines;
        for raw_line in body.split(|b| *b == b'\n') {
            line += 1;
            let line_no = line_number(src, line);
            let (wrapper_at, text) = inner(format, raw_line);
            let at = match service {
                Service::Livekit => match parse_livekit(&text).and_then(|l| sfu_event(&l)) {
                    Some(mut event) => {
                        event.at = event.at.or(wrapper_at);
                        let at = event.at;
                        let mut one = Vec::new();
                        log_format::one_line(text.as_bytes(), &mut one);
                        batch.sfu.push(SfuSighting {
                            line_no,
                            event,
                            text: String::from_utf8_lossy(&one).into_owned(),
                        });
                        at
                    }
                    None => {
                        batch.sfu_unread += 1;
                        parse_livekit(&text).and_then(|l| l.at).or(wrapper_at)
                    }
                },
                // A grant names who is who; its time (Go's local time, or
                // the wrapper's) places nothing on the capture's timeline.
                _ => {
                    match parse_lkjwt(&text) {
                        Some(mut l) => {
                            l.at = wrapper_at.or(l.at);
                            if l.matrix_id.is_some() || l.lk_id.is_some() || l.failure.is_some() {
                                batch.lk_grants.push(LkGrant { line_no, line: l });
                            }
                        }
                        None => batch.sfu_unread += 1,
                    }
                    None
                }
            };
            if let Some(t) = at {
                batch.first_at = Some(batch.first_at.map_or(t, |f| f.min(t)));
                self.sources[src].last_record_at = Some(t);
            }
        }
        self.sources[src].lines = line;
        batch.last_at = self.sources[src].last_record_at;
        Ok(())
    }
}
