//! What a KE pane shows of a server line: `request logger: message`,
//! redacted, a request's repr shortened, cut at [`DISPLAY_MAX`] characters.
//! The journal keeps the whole line.

use crate::domain::redact::Redactor;
use crate::domain::synapse_log::RecordHead;
use std::sync::LazyLock;

/// Display text of a line is cut here (the journal keeps the whole line).
const DISPLAY_MAX: usize = 1000;

/// What a pane shows of a record: `request logger: message`, redacted;
/// the journal keeps the whole line.
/// `redactor` is `None` for a line known to hold no secret.
pub(super) fn record_text(redactor: Option<&Redactor>, h: &RecordHead<'_>) -> String {
    let mut out = String::new();
    push_record_text(redactor, h, &mut out);
    out
}

/// [`record_text`], appended to `out`.
pub(super) fn push_record_text(redactor: Option<&Redactor>, h: &RecordHead<'_>, out: &mut String) {
    let logger = h.logger.rsplit('.').next().unwrap_or(h.logger);
    let red = match redactor {
        Some(r) => r.redact_bytes(h.message).0,
        None => std::borrow::Cow::Borrowed(h.message),
    };
    let msg = display_cow(&red);
    out.reserve(h.request.len() + logger.len() + 3 + msg.len());
    out.push_str(h.request);
    out.push(' ');
    out.push_str(logger);
    out.push_str(": ");
    push_compact_message(&msg, out);
}

/// Synapse prefixes request errors with the request's repr
/// (`<XForwardedForRequest at 0x… method='POST' uri='/…' clientproto=… site=…>`):
/// shown as `POST /…` so the error itself fits in a pane. Appends to `out`.
fn push_compact_message(msg: &str, out: &mut String) {
    // Searchers built once: floods of these lines are common, and a
    // substring search sets one up per call.
    use memchr::memmem::Finder;
    static END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("> "));
    static METHOD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("method='"));
    static URI: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("uri='"));
    let compact = msg
        .starts_with('<')
        .then(|| END.find(msg.as_bytes()))
        .flatten()
        .and_then(|end| {
            let repr = &msg[..end];
            let field = |key: &Finder| {
                let i = key.find(repr.as_bytes())? + key.needle().len();
                let j = memchr::memchr(b'\'', &repr.as_bytes()[i..])?;
                Some(&repr[i..i + j])
            };
            Some((field(&METHOD)?, field(&URI)?, &msg[end + 2..]))
        });
    match compact {
        Some((m, u, rest)) => {
            out.push_str(m);
            out.push(' ');
            out.push_str(u);
            out.push(' ');
            out.push_str(rest);
        }
        None => out.push_str(msg),
    }
}

pub(super) fn display_text(line: &[u8]) -> String {
    display_cow(line).into_owned()
}

/// [`display_text`], borrowed when the line is valid UTF-8 and short.
pub(super) fn display_cow(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let cut = &line[..line.len().min(DISPLAY_MAX * 4)];
    let s = lossy(cut);
    // No more bytes than the limit means no more characters either.
    if s.len() <= DISPLAY_MAX {
        return s;
    }
    match s.char_indices().nth(DISPLAY_MAX) {
        None => s,
        Some((i, _)) => {
            let mut t = String::with_capacity(i + '…'.len_utf8());
            t.push_str(&s[..i]);
            t.push('…');
            std::borrow::Cow::Owned(t)
        }
    }
}

/// `String::from_utf8_lossy`, with a faster check for the usual valid text.
pub(super) fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_text_is_cut_at_the_limit_in_characters() {
        let short = "é".repeat(DISPLAY_MAX);
        assert_eq!(display_text(short.as_bytes()), short);
        let long = format!("{short}x\r");
        assert_eq!(display_text(long.as_bytes()), format!("{short}…"));
        assert_eq!(display_text(b"ab\r"), "ab");
        assert_eq!(display_text(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn a_request_repr_is_shown_as_method_and_uri() {
        let mut out = String::new();
        push_compact_message(
            "<XForwardedForRequest at 0x7f method='POST' uri='/k?x' clientproto='HTTP/1.1' site='8008'> SynapseError: 400",
            &mut out,
        );
        assert_eq!(out, "POST /k?x SynapseError: 400");
        for kept in ["<no end", "<a> b", "plain"] {
            out.clear();
            push_compact_message(kept, &mut out);
            assert_eq!(out, kept);
        }
    }
}
