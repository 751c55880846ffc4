//! A LiveKit participant identity and the Matrix device behind it.

use base64::Engine;
use sha2::{Digest, Sha256};

/// What a LiveKit identity says of its Matrix device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `@user:hs:DEVICE` (lk-jwt-service's legacy `/sfu/get`).
    Legacy {
        user: String,
        device: String,
    },
    /// 43 characters of unpadded base64: SHA-256 of
    /// `["@user:hs","DEVICE","<member id>"]` (`/get_token`, ≥ v0.4.3).
    Hashed(String),
    Other(String),
}

/// Reads an identity. A user id's server part may carry a port
/// (`@u:hs:8448:DEV`): the device is after the last colon.
pub fn identity_of(id: &str) -> Identity {
    if id.starts_with('@')
        && let Some((user, device)) = id.rsplit_once(':')
        && user.contains(':')
        && !device.is_empty()
        && !device.contains('/')
    {
        return Identity::Legacy {
            user: user.to_string(),
            device: device.to_string(),
        };
    }
    if id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Identity::Hashed(id.to_string());
    }
    Identity::Other(id.to_string())
}

/// A string as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c` … (HTML-safe), control characters as `\uXXXX`
/// except `\n`, `\r`, `\t`, `\b`, `\f`.
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// lk-jwt-service's `LiveKitIdentityFor(matrixID, deviceId, memberID)`:
/// unpadded standard base64 of SHA-256 over `json.Marshal([]string{…})`.
pub fn hashed_identity(user: &str, device: &str, member_id: &str) -> String {
    let mut json = String::from("[");
    for (i, s) in [user, device, member_id].iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        go_json_string(s, &mut json);
    }
    json.push(']');
    let hash = Sha256::digest(json.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn legacy_hashed_and_other_identities() {
        assert_eq!(
            identity_of("@alice:lotus.example:RWDSUMBAID"),
            Identity::Legacy {
                user: "@alice:lotus.example".into(),
                device: "RWDSUMBAID".into()
            }
        );
        assert_eq!(
            identity_of("@a:hs.example:8448:DEV"),
            Identity::Legacy {
                user: "@a:hs.example:8448".into(),
                device: "DEV".into()
            }
        );
        let h = hashed_identity("@alice:lotus.example", "RWDSUMBAID", "m1");
        assert_eq!(h.len(), 43);
        assert_eq!(identity_of(&h), Identity::Hashed(h.clone()));
        assert!(matches!(identity_of("bob"), Identity::Other(_)));
        assert!(matches!(identity_of("@alice:hs"), Identity::Other(_)));
    }

    #[test]
    fn the_hash_is_over_go_s_json_of_the_three_strings() {
        // sha256('["@a:hs","DEV","m"]'), base64 without padding.
        let want = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(Sha256::digest(br#"["@a:hs","DEV","m"]"#));
        assert_eq!(hashed_identity("@a:hs", "DEV", "m"), want);
        // Go's encoder escapes HTML characters.
        let want = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(Sha256::digest(br#"["@a\u003cb:hs","D\u0026V","m\"\\"]"#));
        assert_eq!(hashed_identity("@a<b:hs", "D&V", "m\"\\"), want);
    }
}
