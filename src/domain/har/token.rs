//! Whose requests a HAR holds: Synapse's access tokens name their user.
//! A token is `syt_<base64 localpart>_<random>_<crc>` (Synapse
//! `handlers/auth.py`, standard unpadded base64), so the localpart can be
//! read back without keeping the token. Other servers' tokens (MAS `mat_…`,
//! Conduit, Dendrite) name nobody and give nothing.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The localpart a Synapse access or refresh token (`syt_…`, `syr_…`) names.
pub fn token_localpart(token: &str) -> Option<String> {
    let rest = token
        .strip_prefix("syt_")
        .or_else(|| token.strip_prefix("syr_"))?;
    // The base64 alphabet has no `_`, so the localpart is the first part.
    let (encoded, tail) = rest.split_once('_')?;
    if encoded.is_empty() || tail.is_empty() {
        return None;
    }
    let bytes = B64.decode(encoded).ok()?;
    let localpart = String::from_utf8(bytes).ok()?;
    let plausible = localpart
        .chars()
        .all(|c| c.is_ascii_graphic() && c != ':' && c != '@');
    plausible.then_some(localpart)
}

/// The localpart of the token a HAR entry's request carries: the
/// `Authorization: Bearer` header, else an `access_token` query parameter.
pub fn entry_localpart(entry: &Value) -> Option<String> {
    let request = entry.get("request")?;
    let header = request
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|h| {
            h.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
        })
        .filter_map(|h| h.get("value").and_then(Value::as_str))
        .find_map(|v| {
            let v = v.trim();
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token_localpart(token.trim()))
                .flatten()
        });
    header.or_else(|| {
        let url = request.get("url").and_then(Value::as_str)?;
        let query = url.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .filter(|(k, _)| *k == "access_token")
            .find_map(|(_, v)| token_localpart(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_synapse_token_names_its_localpart() {
        // "alice" and "bob.smith" in unpadded standard base64.
        assert_eq!(
            token_localpart("syt_YWxpY2U_PlantedTokenAbc123_0aBcDe").as_deref(),
            Some("alice")
        );
        assert_eq!(
            token_localpart("syt_Ym9iLnNtaXRo_xQzJmWkLpOoRrTtUuVvW_1BWpEn").as_deref(),
            Some("bob.smith")
        );
        for other in [
            "mat_abcdefghijklmnop_0123",
            "syt__x_y",
            "syt_YWxpY2U",
            "syt_!!!_x_y",
            "MDAxOGxvY2F0aW9uIGxvdHVz",
        ] {
            assert_eq!(token_localpart(other), None, "{other}");
        }
    }

    #[test]
    fn an_entry_names_the_user_of_its_bearer_token_or_query_token() {
        let header = json!({"request": {"url": "https://hs/_matrix/client/v3/keys/upload",
            "headers": [{"name": "authorization", "value": "Bearer syt_Ym9i_abc_def"}]}});
        assert_eq!(entry_localpart(&header).as_deref(), Some("bob"));
        let query = json!({"request": {"url": "https://hs/_matrix/client/v3/sync?since=s1&access_token=syt_YWxpY2U_abc_def",
            "headers": []}});
        assert_eq!(entry_localpart(&query).as_deref(), Some("alice"));
        let none = json!({"request": {"url": "https://hs/_matrix/client/v3/keys/upload",
            "headers": [{"name": "Authorization", "value": "Bearer <redacted>"}]}});
        assert_eq!(entry_localpart(&none), None);
    }
}
