//! The MatrixRTC MembershipManager's own messages (matrix-js-sdk
//! `src/matrixrtc/MembershipManager.ts`): which client lines are a
//! delayed-event request the client gave up on.

/// The SDK's words for a delayed-event request it timed out on: the
/// restart's local timeout (`AbortError: Restart delayed event timed out
/// before the HS responded`), the warning that wraps it (`Network local
/// timeout error while sending event, immediate retry ((n/10))`) and its
/// sibling for a delayed-event update (`delayed event update timeout error,
/// retrying in 3s`). Any other line that merely contains "timeout" (a
/// `timeout=30000` query, a config dump) is not one.
const SDK_TIMEOUTS: [&str; 3] = [
    "delayed event timed out before the HS responded",
    "Network local timeout error while sending event",
    "delayed event update timeout error",
];

/// Whether a client console line is one of the SDK's delayed-event timeouts.
pub fn is_sdk_timeout(message: &str) -> bool {
    SDK_TIMEOUTS.iter().any(|t| message.contains(t))
}

#[cfg(test)]
mod tests {
    use super::is_sdk_timeout;

    #[test]
    fn only_the_sdks_own_timeout_messages_count() {
        for yes in [
            "[MembershipManager] Network local timeout error while sending event, immediate retry ((0/10)) AbortError: Restart delayed event timed out before the HS responded",
            "AbortError: Restart delayed event timed out before the HS responded",
            "[MembershipManager] delayed event update timeout error, retrying in 3s (1/10)",
        ] {
            assert!(is_sdk_timeout(yes), "{yes}");
        }
        for no in [
            "[MembershipManager] sending delayed event with timeout=8000",
            "update_delayed_event: delayedLeaveEventRestartLocalTimeoutMs=2000",
            "GET /_matrix/client/v3/sync?timeout=30000 took 30012 ms",
            "[MembershipManager] Rate limited by server, retrying in 3000ms (timeout)",
        ] {
            assert!(!is_sdk_timeout(no), "{no}");
        }
    }
}
