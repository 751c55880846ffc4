//! Element Call's SFU beside Synapse: livekit-server's log and
//! lk-jwt-service's, read into what the SFU said about each participant.
//!
//! livekit-server logs through zap (livekit/protocol `logger/logger.go`,
//! `NewZapLogger`): with `logging.json: true` zap's production JSON encoder,
//! one object per line, `{"level":"info","ts":<epoch s, float>,"logger":
//! "livekit.…","caller":"rtc/participant.go:N","msg":"…",<fields>}`;
//! otherwise zap's development console encoder: `2006-01-02T15:04:05.000Z0700`,
//! `INFO`, the logger, the caller and the message separated by tabs, then
//! one JSON object of the fields. The participant's fields come from
//! `LoggerWithParticipant` (livekit/livekit `pkg/rtc/utils.go`):
//! `participant` (the identity) and the sid under `participantID` (≥ v1.10;
//! `pID` before); `starting RTC session` (`pkg/service/roommanager.go`)
//! carries `room` twice. Messages are matched on `msg`, never on `caller`.
//!
//! lk-jwt-service (element-hq/lk-jwt-service): tagged releases ≤ v0.5 log
//! with Go's `log.Printf` (`2025/05/10 17:09:54 Got Matrix user info for
//! @u:hs (full access)`, `… LiveKit room sid: … for full-access Matrix user
//! @u:hs (LiveKit identity: …)`); its main branch with slog through
//! slogcolor (`Handler: generated SFU access token matrixId=…
//! claimedDeviceId=… lkId=…`, no colour when not on a terminal). The
//! identity is `@user:hs:DEVICE` on the legacy `/sfu/get`, and from v0.4.3
//! on `/get_token` the unpadded base64 of SHA-256 over the JSON array
//! `["@user:hs","DEVICE","<member id>"]` (`LiveKitIdentityFor`, `helper.go`).

mod identity;
mod livekit;
mod lkjwt;

pub use identity::{Identity, hashed_identity, identity_of};
pub use livekit::{SfuEvent, SfuLine, SfuState, parse_livekit, sfu_event};
pub use lkjwt::{LkJwtLine, parse_lkjwt};

/// Which service a log is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Synapse,
    Livekit,
    LkJwt,
}

impl Service {
    /// The name `format = "…"` of a `[[server-log]]` entry uses.
    pub fn name(self) -> &'static str {
        match self {
            Service::Synapse => "synapse",
            Service::Livekit => "livekit",
            Service::LkJwt => "lk-jwt",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        [Service::Synapse, Service::Livekit, Service::LkJwt]
            .into_iter()
            .find(|s| s.name() == name)
    }

    pub fn is_sfu(self) -> bool {
        self != Service::Synapse
    }
}

/// Which service the first lines (as the service wrote them, outside any
/// journald or docker wrapper) are of; `None` when none says.
pub fn sniff_service<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Service> {
    for line in lines.into_iter().take(50) {
        if line.trim().is_empty() {
            continue;
        }
        if crate::domain::synapse_log::parse_timestamp_prefix(line.as_bytes()).is_some() {
            return Some(Service::Synapse);
        }
        if parse_livekit(line).is_some() {
            return Some(Service::Livekit);
        }
        if parse_lkjwt(line).is_some() {
            return Some(Service::LkJwt);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_told_by_its_first_lines() {
        let synapse = "2026-06-30 18:00:00,000 - synapse.access.http.8008 - 1 - INFO - GET-1 - x";
        assert_eq!(sniff_service(["", synapse]), Some(Service::Synapse));
        let lk = "{\"level\":\"info\",\"ts\":1.5,\"logger\":\"livekit\",\"msg\":\"x\"}";
        assert_eq!(sniff_service(["  ", lk]), Some(Service::Livekit));
        assert_eq!(
            sniff_service(["2025/05/10 17:09:54 Got Matrix user info for @u:hs (full access)"]),
            Some(Service::LkJwt)
        );
        assert_eq!(sniff_service(["Traceback (most recent call last):"]), None);
        for s in [Service::Synapse, Service::Livekit, Service::LkJwt] {
            assert_eq!(Service::from_name(s.name()), Some(s));
        }
    }
}
