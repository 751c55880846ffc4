//! Access lines (`Processed request`) reduced to what latency analysis
//! needs: the request's time, status and kind (long-poll, delayed-event
//! restart, `sendToDevice`).

use crate::app::event::AccessSample;
use crate::domain::synapse_log::AccessFields;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;

/// Whether a "Processed request" line is a long-poll (see
/// [`is_long_poll`]), told without parsing the line: only its request path
/// is looked at. `None` when the line has no request to look at.
pub(super) fn is_long_poll_line(line: &[u8]) -> Option<bool> {
    request_path(line).map(is_long_poll_path)
}

/// The path of a "Processed request" line's request (`"GET /path
/// HTTP/1.1"`), as `parse_access_fields` reads it: between the method and
/// the protocol.
fn request_path(line: &[u8]) -> Option<&[u8]> {
    static MARK: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(" Processed request: "));
    // Nothing before the status code of an access line is quoted (the head,
    // the client's address, the site, the requester): the first quote after
    // a status code opens the request. Any other line is read from the mark.
    let first = memchr::memchr(b'"', line)?;
    let open = if after_status(&line[..first]) {
        first
    } else {
        let from = MARK.find(line)? + MARK.needle().len();
        from + memchr::memchr(b'"', &line[from..])?
    };
    let request = &line[open + 1..];
    let request = &request[..memchr::memchr(b'"', request)?];
    // The method and the protocol are a few bytes: looked for in place,
    // without a search's set-up (this runs on every access line).
    let path = &request[request.iter().position(|&b| b == b' ')? + 1..];
    Some(match path.iter().rposition(|&b| b == b' ') {
        Some(i) => &path[..i],
        None => path,
    })
}

/// Whether `head` ends with a status code and its space (`… 200 `, or
/// `… 200! ` for a request the client gave up on).
fn after_status(head: &[u8]) -> bool {
    let Some(head) = head.strip_suffix(b" ") else {
        return false;
    };
    let head = head.strip_suffix(b"!").unwrap_or(head);
    head.len() > 3
        && head[head.len() - 3..].iter().all(u8::is_ascii_digit)
        && head[head.len() - 4] == b' '
}

/// Substring searchers for request paths, built once: a path is looked
/// at for nearly every access line.
struct PathNeedles {
    sliding_sync: memchr::memmem::Finder<'static>,
    notifications: memchr::memmem::Finder<'static>,
    send_to_device: memchr::memmem::Finder<'static>,
    delayed_events: memchr::memmem::Finder<'static>,
    msc4140_delay: memchr::memmem::Finder<'static>,
}

static PATH_NEEDLES: LazyLock<PathNeedles> = LazyLock::new(|| {
    let f = memchr::memmem::Finder::new;
    PathNeedles {
        sliding_sync: f("/org.matrix.simplified_msc3575/sync"),
        notifications: f("/notifications"),
        send_to_device: f("/sendToDevice/"),
        delayed_events: f("/delayed_events/"),
        msc4140_delay: f("msc4140.delay="),
    }
});

fn without_query(path: &str) -> &str {
    match memchr::memchr(b'?', path.as_bytes()) {
        Some(i) => &path[..i],
        None => path,
    }
}

/// `/sync`, sliding sync, the legacy `/events` and `/notifications`: the
/// requests that wait for news, excluded from latency.
fn is_long_poll(path: &str) -> bool {
    is_long_poll_path(path.as_bytes())
}

/// [`is_long_poll`] on a path's bytes.
fn is_long_poll_path(path: &[u8]) -> bool {
    let n = &*PATH_NEEDLES;
    let p = match memchr::memchr(b'?', path) {
        Some(i) => &path[..i],
        None => path,
    };
    // (The query is cut off first, so `/sync?…` is `/sync` here.)
    p.ends_with(b"/sync")
        || p.ends_with(b"/events")
        || n.sliding_sync.find(p).is_some()
        || n.notifications.find(p).is_some()
}

/// Whether a request is a delayed-event restart (path or body form), and
/// whether it is any delayed-event request: an endpoint under
/// `/delayed_events/` (restart, cancel, send) or an event sent with an
/// MSC4140 delay (the MatrixRTC delayed leave). One search of the path for
/// most lines; only a query is searched for the delay.
fn delayed_event(method: &str, path: &str) -> (bool, bool) {
    let p = without_query(path);
    match PATH_NEEDLES.delayed_events.find(p.as_bytes()) {
        Some(i) => {
            let rest = &p[i + "/delayed_events/".len()..];
            let restart = method == "POST" && (rest.ends_with("/restart") || !rest.contains('/'));
            (restart, true)
        }
        None => {
            let query = &path.as_bytes()[p.len()..];
            (false, PATH_NEEDLES.msc4140_delay.find(query).is_some())
        }
    }
}

/// What the App needs of an access line. `long_poll`: what
/// [`is_long_poll_line`] said of it, if it was asked.
pub(super) fn access_sample(
    line_no: u64,
    at: DateTime<Utc>,
    a: &AccessFields<'_>,
    long_poll: Option<bool>,
) -> AccessSample {
    let ms = (a.processing_s * 1000.0).round();
    let send_to_device = PATH_NEEDLES
        .send_to_device
        .find(a.path.as_bytes())
        .is_some();
    let (delayed_restart, delayed_event) = delayed_event(a.method, a.path);
    AccessSample {
        line_no,
        at,
        processing_ms: if ms.is_finite() && ms > 0.0 {
            ms.min(u32::MAX as f64) as u32
        } else {
            0
        },
        status: a.status,
        long_poll: long_poll.unwrap_or_else(|| is_long_poll(a.path)),
        delayed_restart,
        delayed_event,
        send_to_device,
        requester: if send_to_device {
            a.requester.map(str::to_string)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_poll_lines_are_sync_and_events_requests() {
        let line = |path: &str| {
            format!("… Processed request: 30.001sec/0.000sec 200 \"GET {path} HTTP/1.1\" \"x\"")
        };
        for poll in [
            "/_matrix/client/v3/sync?since=s1&timeout=30000",
            "/_matrix/client/r0/sync",
            "/_matrix/client/v3/events?from=s1",
            "/_matrix/client/v3/events",
            "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=1",
            "/_matrix/client/v3/notifications?limit=1",
        ] {
            assert_eq!(
                is_long_poll_line(line(poll).as_bytes()),
                Some(true),
                "{poll}"
            );
            // The line and its parsed path agree.
            assert!(is_long_poll(poll), "{poll}");
        }
        for other in [
            "/_matrix/client/v3/keys/upload",
            "/_matrix/client/v3/synchronise",
            "/_matrix/client/v3/rooms/!r/sync_state",
            "/_matrix/client/v3/rooms/!r/messages?from=/events?x",
            "/_matrix/client/v3/keys/upload?next=/sync%20x",
        ] {
            assert_eq!(
                is_long_poll_line(line(other).as_bytes()),
                Some(false),
                "{other}"
            );
            assert!(!is_long_poll(other), "{other}");
        }
        // What the user agent says is not the request.
        let agent = "… Processed request: 0.004sec/0.000sec 200 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\" \"app /events?x /sync y\" [0 dbevts]";
        assert_eq!(is_long_poll_line(agent.as_bytes()), Some(false));
        assert_eq!(is_long_poll_line(b"no request here"), None);
        // A quote before the mark (not Synapse's access line, but the
        // request is still the one after the mark).
        let quoted = "x \"GET /sync HTTP/1.1\" 1 … Processed request: 0.004sec/0.000sec 200 \"POST /_matrix/client/v3/keys/upload HTTP/1.1\" \"x\"";
        assert_eq!(is_long_poll_line(quoted.as_bytes()), Some(false));
        let gave_up = line("/_matrix/client/v3/sync").replace(" 200 ", " 200! ");
        assert_eq!(is_long_poll_line(gave_up.as_bytes()), Some(true));
    }

    #[test]
    fn delayed_event_requests_are_the_msc4140_endpoints_and_delayed_sends() {
        for yes in [
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/restart",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a",
            "/_matrix/client/v3/rooms/!r/state/org.matrix.msc3401.call.member/_x?org.matrix.msc4140.delay=8000",
        ] {
            assert!(delayed_event("GET", yes).1, "{yes}");
        }
        for no in [
            "/_matrix/client/v1/media/download/matrix.org/clip",
            "/_matrix/client/v3/rooms/!r/send/m.room.message/t1",
        ] {
            assert!(!delayed_event("GET", no).1, "{no}");
        }
        let restart = |m, p| delayed_event(m, p).0;
        assert!(restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/restart"
        ));
        assert!(restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a"
        ));
        assert!(!restart(
            "GET",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a"
        ));
        assert!(!restart(
            "POST",
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_a/cancel"
        ));
    }
}
