//! References to evidence, and what the App keeps about refused one-time
//! keys and KE-4 timeouts.

use crate::model::server_logs::ServerLogs;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A reference to evidence: `file:line` or `file#entries[N]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EvidenceRef(pub String);

/// A one-time key id the server refused, with what is known about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OffendingKeyInfo {
    pub algorithm: String,
    pub key_id: String,
    /// Conflicts seen in the server log, client reports and HAR files. One
    /// refused upload usually shows in all three, so they are not summed.
    pub seen: Sightings,
    pub first_at: Option<DateTime<Utc>>,
    /// The `key` the server said it holds (from the error text).
    pub stored_key: Option<String>,
    /// The `key` the client uploaded (error text or HAR request).
    pub uploaded_key: Option<String>,
    /// The first few references of each kind (server, client report, HAR),
    /// so a storm in the server log does not crowd out the client's side.
    pub evidence: Vec<EvidenceRef>,
}

/// How often an offending key was seen, per kind of evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sightings {
    pub server: u64,
    pub client: u64,
    pub har: u64,
}

/// References kept per kind of evidence for one offending key.
const OFFENDING_REFS_PER_KIND: usize = 3;

/// Where a sighting of an offending key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SightingKind {
    Server,
    Client,
    Har,
}

impl OffendingKeyInfo {
    /// Counts one sighting and keeps its reference while its kind has fewer
    /// than [`OFFENDING_REFS_PER_KIND`].
    pub fn sighting(&mut self, kind: SightingKind, r: EvidenceRef) {
        let n = match kind {
            SightingKind::Server => &mut self.seen.server,
            SightingKind::Client => &mut self.seen.client,
            SightingKind::Har => &mut self.seen.har,
        };
        *n += 1;
        if *n <= OFFENDING_REFS_PER_KIND as u64 {
            self.evidence.push(r);
        }
    }
}

/// A KE-4 timeout seen by the client or implied by a slow restart request.
/// A storm keeps thousands of them (up to `TIMEOUTS_CAP`), so a server
/// one holds its line's number, not its reference: 40 bytes each.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeout {
    pub at: DateTime<Utc>,
    seen: TimeoutSeen,
}

/// Where a timeout was seen.
#[derive(Debug, Clone, PartialEq)]
enum TimeoutSeen {
    /// A client entry saying the SDK's request timed out.
    Client(EvidenceRef),
    /// A restart request's access line, slower than the timeout.
    Server { line_no: u64, took_ms: u32 },
}

impl Timeout {
    pub fn client(at: DateTime<Utc>, evidence: EvidenceRef) -> Timeout {
        Timeout {
            at,
            seen: TimeoutSeen::Client(evidence),
        }
    }

    pub fn server(at: DateTime<Utc>, line_no: u64, took_ms: u32) -> Timeout {
        Timeout {
            at,
            seen: TimeoutSeen::Server { line_no, took_ms },
        }
    }

    /// `client` or `server`.
    pub fn origin(&self) -> &'static str {
        match self.seen {
            TimeoutSeen::Client(_) => "client",
            TimeoutSeen::Server { .. } => "server",
        }
    }

    /// For a server restart request: how long it took.
    pub fn took_ms(&self) -> Option<u32> {
        match self.seen {
            TimeoutSeen::Client(_) => None,
            TimeoutSeen::Server { took_ms, .. } => Some(took_ms),
        }
    }

    /// The client entry, or `server/homeserver.log:N` (with several logs
    /// `server/<name>.log:N`) of the restart request's line.
    pub fn evidence(&self, logs: &ServerLogs) -> String {
        match &self.seen {
            TimeoutSeen::Client(r) => r.0.clone(),
            TimeoutSeen::Server { line_no, .. } => logs.reference(*line_no),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_server_timeout_keeps_no_text_and_names_its_line_as_a_stall_does() {
        // The cap's worth of timeouts stays under half a MiB.
        assert!(std::mem::size_of::<Timeout>() <= 40);
        let t = Timeout::server(DateTime::UNIX_EPOCH, 17, 12_000);
        assert_eq!((t.origin(), t.took_ms()), ("server", Some(12_000)));
        assert_eq!(
            t.evidence(&ServerLogs::default()),
            "server/homeserver.log:17"
        );
        let c = Timeout::client(
            DateTime::UNIX_EPOCH,
            EvidenceRef("client/d.json#entries[3]".into()),
        );
        assert_eq!((c.origin(), c.took_ms()), ("client", None));
        assert_eq!(
            c.evidence(&ServerLogs::default()),
            "client/d.json#entries[3]"
        );
    }

    #[test]
    fn a_storm_of_one_kind_leaves_room_for_the_others() {
        let mut o = OffendingKeyInfo::default();
        for n in 1..=5 {
            o.sighting(
                SightingKind::Server,
                EvidenceRef(format!("server/KE-1.log:{n}")),
            );
        }
        o.sighting(
            SightingKind::Client,
            EvidenceRef("client/d.json#entries[0]".into()),
        );
        o.sighting(
            SightingKind::Har,
            EvidenceRef("client/h.har#log.entries[2]".into()),
        );
        assert_eq!(
            o.seen,
            Sightings {
                server: 5,
                client: 1,
                har: 1
            }
        );
        let refs: Vec<&str> = o.evidence.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            refs,
            [
                "server/KE-1.log:1",
                "server/KE-1.log:2",
                "server/KE-1.log:3",
                "client/d.json#entries[0]",
                "client/h.har#log.entries[2]"
            ]
        );
    }
}
