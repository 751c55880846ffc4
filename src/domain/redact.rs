//! Secrets that must never reach the screen, a log or a bundle.
//! Redacted text becomes `<redacted>`; patterns never cross a newline, so a
//! line stays a line.

use regex::bytes::{Captures, Regex};
use std::borrow::Cow;
use std::sync::LazyLock;

pub const REDACTED: &str = "<redacted>";

const B58: &str = "[1-9A-HJ-NP-Za-km-z]";

static SECRETS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let p = [
        // Matrix access and refresh tokens: syt_<base64 localpart>_<random>_<crc>.
        r"(?P<tok>\bsy[tr]_[A-Za-z0-9+/=_-]{8,})".to_string(),
        // Query parameters (also percent-encoded `_`), not already redacted.
        r#"(?P<qk>(?:access|client)(?:_|%5[Ff])(?:token|secret)=)(?P<qv>[^&\s"'<\\]+)"#.to_string(),
        // Header lines in logs and HAR text.
        r"(?P<hk>\b(?:Authorization|Proxy-Authorization|Cookie|Set-Cookie):[ \t]*)(?P<hv>[^<\s][^\r\n]*)".to_string(),
        r#"(?P<bk>\bBearer[ \t]+)(?P<bv>[^\s"'<,;\\]+)"#.to_string(),
        // JSON fields holding tokens or secrets.
        r#"(?P<jk>"(?:access_token|refresh_token|accessToken|refreshToken|client_secret|clientSecret|password|passphrase|recovery_key|recoveryKey)"[ \t]*:[ \t]*")(?P<jv>[^"<\\][^"\\]*)"#.to_string(),
        // Recovery keys: twelve groups of four base58 characters.
        format!(r"(?P<rk>\b{B58}{{4}}(?: {B58}{{4}}){{11}}\b)"),
    ];
    Regex::new(&format!("(?-u){}", p.join("|"))).ok()
});

/// Cheap literals that every secret above contains (recovery keys excepted).
static HINTS: LazyLock<Option<regex::bytes::Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i-u)sy[tr]_|token|secret|authorization|cookie|bearer|password|passphrase|recovery",
    )
    .ok()
});
static RECOVERY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"(?-u)\b{B58}{{4}}(?: {B58}{{4}}){{11}}\b")).ok());

#[derive(Debug, Clone, Default)]
pub struct Redactor {}

impl Redactor {
    pub fn new() -> Self {
        Redactor {}
    }

    /// Redacts a buffer of one or more lines; returns the text and how many
    /// secrets were replaced.
    pub fn redact_bytes<'a>(&self, buf: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        let (Some(re), Some(hints), Some(rec)) =
            (SECRETS.as_ref(), HINTS.as_ref(), RECOVERY.as_ref())
        else {
            return (Cow::Borrowed(buf), 0);
        };
        if !hints.is_match(buf) && !rec.is_match(buf) {
            return (Cow::Borrowed(buf), 0);
        }
        let mut n = 0usize;
        let out = re.replace_all(buf, |c: &Captures| {
            n += 1;
            let mut v: Vec<u8> = Vec::new();
            for k in ["qk", "hk", "bk", "jk"] {
                if let Some(m) = c.name(k) {
                    v.extend_from_slice(m.as_bytes());
                }
            }
            v.extend_from_slice(REDACTED.as_bytes());
            v
        });
        (out, n)
    }

    pub fn redact_str<'a>(&self, s: &'a str) -> (Cow<'a, str>, usize) {
        match self.redact_bytes(s.as_bytes()) {
            (Cow::Borrowed(_), n) => (Cow::Borrowed(s), n),
            (Cow::Owned(v), n) => (Cow::Owned(String::from_utf8_lossy(&v).into_owned()), n),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(s: &str) -> (String, usize) {
        let (o, n) = Redactor::new().redact_str(s);
        (o.into_owned(), n)
    }

    #[test]
    fn tokens_of_every_kind_are_replaced() {
        let cases = [
            (
                "GET /whoami?access_token=syt_YWxpY2U_abcDEF123_0aBcDe HTTP/1.1",
                "GET /whoami?access_token=<redacted> HTTP/1.1",
            ),
            (
                "token syt_YWxpY2U_abcDEF123_0aBcDe end",
                "token <redacted> end",
            ),
            ("refresh syr_YWxpY2U_xyz987654_1XyZ.", "refresh <redacted>."),
            (
                "POST /x?client_secret=hunter2&b=1",
                "POST /x?client_secret=<redacted>&b=1",
            ),
            (
                "GET /x?access%5Ftoken=abc123",
                "GET /x?access%5Ftoken=<redacted>",
            ),
            ("Authorization: Bearer abc.def", "Authorization: <redacted>"),
            ("sent Bearer abcdef123", "sent Bearer <redacted>"),
            (
                "{\"access_token\": \"opaque-mas-token\"}",
                "{\"access_token\": \"<redacted>\"}",
            ),
            (
                "key EsTc LW2K PGiF wKEA 3As5 aX4G gAXn q5Hb bzMF CFx7 9KXU Kd5N ok",
                "key <redacted> ok",
            ),
        ];
        for (input, want) in cases {
            let (got, n) = r(input);
            assert_eq!(got, want, "{input}");
            assert!(n >= 1, "{input}");
        }
    }

    #[test]
    fn already_redacted_values_stay_and_do_not_count() {
        let (got, n) = r("GET /x?access_token=<redacted>&y=1 Authorization: <redacted>");
        assert_eq!(n, 0);
        assert!(got.contains("access_token=<redacted>&y=1"));
    }

    #[test]
    fn lines_stay_lines_and_clean_text_is_untouched() {
        let text = "a access_token=secret1\nb Bearer tok2\r\nc plain line\n";
        let (got, n) = r(text);
        assert_eq!(n, 2);
        assert_eq!(got.lines().count(), text.lines().count());
        assert!(got.ends_with("c plain line\n"));
        let (o, n) = Redactor::new().redact_bytes(b"nothing secret here\n");
        assert!(matches!(o, Cow::Borrowed(_)));
        assert_eq!(n, 0);
    }

    #[test]
    fn invalid_utf8_is_kept() {
        let (o, n) = Redactor::new().redact_bytes(b"\xff access_token=abc \xfe\n");
        assert_eq!(n, 1);
        assert_eq!(&*o, b"\xff access_token=<redacted> \xfe\n");
    }
}
