//! What redaction knows: the built-in rules, the one list of secret names
//! every carrier uses, and the text pattern built from them.
//!
//! Shapes (a secret recognisable without a name next to it):
//! - Synapse: `syt_…` access, `syr_…` refresh and `syl_…` login tokens
//!   (`synapse/handlers/auth.py`: `<prefix>_<base64 localpart>_<random>_<crc>`);
//! - matrix-authentication-service: `mat_` access, `mar_` refresh, `mct_`
//!   compat access, `mcr_` compat refresh and `mpt_` personal access tokens
//!   (`crates/data-model/src/tokens.rs`: prefix, 30 random alphanumerics,
//!   `_`, a 6-character base62 CRC-32);
//! - JSON Web Tokens, signed (`eyJ….….…`) or encrypted (five parts): the
//!   LiveKit token of lk-jwt-service, OIDC `id_token`s;
//! - macaroons (`MDAx…`), Synapse's older access and login tokens, still
//!   valid for sessions that predate `syt_`;
//! - `Bearer` values and recovery keys (12 groups of 4 base58 characters).
//!
//! Names (case-insensitive; a name ending in one of them counts, so
//! `access_token`, `loginToken`, `client_secret`, `new_password` all do):
//! `password`, `passwd`, `passphrase`, `credential`, `token`, `jwt`,
//! `device_code`, `secret`, `code_verifier`, `csrf`, `authorization`,
//! `cookie`; in a URL's query or a form body also `code` (OAuth's
//! authorization code). A Matrix error code (`M_UNKNOWN_TOKEN`) is not a
//! name. Never `key`: public keys are evidence.

/// A built-in rule. Site rules (`[redact] extra`, `--redact`) follow them,
/// named `site-1`, `site-2`, … in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    SynapseToken,
    MasToken,
    Jwt,
    Macaroon,
    Bearer,
    Password,
    Token,
    Secret,
    Authorization,
    Cookie,
    RecoveryKey,
    /// A HAR body or WebSocket frame that could not be read (binary or bad
    /// base64): replaced whole.
    Body,
}

/// How many built-in rules there are.
pub const BUILTIN: usize = 12;

impl Rule {
    pub const ALL: [Rule; BUILTIN] = [
        Rule::SynapseToken,
        Rule::MasToken,
        Rule::Jwt,
        Rule::Macaroon,
        Rule::Bearer,
        Rule::Password,
        Rule::Token,
        Rule::Secret,
        Rule::Authorization,
        Rule::Cookie,
        Rule::RecoveryKey,
        Rule::Body,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The rule's name in the manifest and the report.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SynapseToken => "synapse-token",
            Rule::MasToken => "mas-token",
            Rule::Jwt => "jwt",
            Rule::Macaroon => "macaroon",
            Rule::Bearer => "bearer",
            Rule::Password => "password",
            Rule::Token => "token",
            Rule::Secret => "secret",
            Rule::Authorization => "authorization",
            Rule::Cookie => "cookie",
            Rule::RecoveryKey => "recovery-key",
            Rule::Body => "unreadable-body",
        }
    }

    /// What the rule replaces, in a few words (for the report).
    pub fn covers(self) -> &'static str {
        match self {
            Rule::SynapseToken => {
                "Synapse access, refresh and login tokens (`syt_`, `syr_`, `syl_`)"
            }
            Rule::MasToken => {
                "MAS tokens (`mat_`, `mar_`, `mct_`, `mcr_`, `mpt_`), with or without a name"
            }
            Rule::Jwt => "JSON Web Tokens (`eyJ…`): LiveKit tokens, OIDC id tokens",
            Rule::Macaroon => "Synapse macaroon tokens (`MDAx…`)",
            Rule::Bearer => "`Bearer` values",
            Rule::Password => "values named password, passwd, passphrase, credential",
            Rule::Token => "values named …token, jwt, device_code, and `code` in URLs and forms",
            Rule::Secret => "values named …secret, code_verifier, csrf",
            Rule::Authorization => "Authorization and Proxy-Authorization values",
            Rule::Cookie => "Cookie and Set-Cookie headers, HAR cookies",
            Rule::RecoveryKey => "recovery keys (12 groups of 4 base58 characters)",
            Rule::Body => "HAR bodies and WebSocket frames that could not be read, whole",
        }
    }
}

const PASSWORD_ENDINGS: [&str; 4] = ["password", "passwd", "passphrase", "credential"];
const TOKEN_ENDINGS: [&str; 4] = ["token", "jwt", "device_code", "devicecode"];
const SECRET_ENDINGS: [&str; 4] = ["secret", "code_verifier", "codeverifier", "csrf"];

/// The rule for a value named `name` (any carrier: JSON keys, HAR header,
/// query and form names, free text), if its value is a secret.
pub fn name_rule(name: &str) -> Option<Rule> {
    // Matrix error codes (`M_UNKNOWN_TOKEN: Invalid access token`) name an
    // error, and what follows them is its message.
    if name.starts_with("M_") {
        return None;
    }
    let lower = name.to_ascii_lowercase().replace("%5f", "_");
    let ends = |list: &[&str]| list.iter().any(|e| lower.ends_with(e));
    if ends(&PASSWORD_ENDINGS) {
        Some(Rule::Password)
    } else if ends(&TOKEN_ENDINGS) {
        Some(Rule::Token)
    } else if ends(&SECRET_ENDINGS) {
        Some(Rule::Secret)
    } else if lower.ends_with("authorization") {
        Some(Rule::Authorization)
    } else if lower.ends_with("cookie") {
        Some(Rule::Cookie)
    } else {
        None
    }
}

/// [`name_rule`] for a URL query or form parameter: OAuth's authorization
/// `code` is a credential there (and only there: elsewhere `code` is an
/// HTTP status or an error number).
pub fn param_rule(name: &str) -> Option<Rule> {
    name_rule(name).or_else(|| name.eq_ignore_ascii_case("code").then_some(Rule::Token))
}

/// Literals every built-in text match contains (recovery keys aside), as
/// the server log's literal search spells them: names in lower, Capitalised
/// and UPPER case (camelCase joins such as `loginToken` hold the
/// Capitalised form). The capture's matcher searches for them in the same
/// pass as the KEs' and hands the lines over; elsewhere the redactor
/// searches for [`ANY_CASE_LITERALS`] itself, ignoring case.
///
/// None is shorter than four bytes: the literal search fingerprints the
/// first four bytes of each literal only when no literal is shorter, and a
/// three-byte one made it several times slower. So a JWT is found by `.eyJ`
/// (its JSON payload) or `eyJhbGci` (a header that starts with `alg`), a
/// `jwt` field by its value, `password`, `passwd` and `passphrase` by
/// `pass`, and `device_code`, `code_verifier` and OAuth's `code=` by `code`.
pub const SECRET_LITERALS: [&str; 35] = [
    "syt_",
    "syr_",
    "syl_",
    "mat_",
    "mar_",
    "mct_",
    "mcr_",
    "mpt_",
    ".eyJ",
    "eyJhbGci",
    "MDAx",
    "earer",
    "EARER",
    "pass",
    "Pass",
    "PASS",
    "credential",
    "Credential",
    "CREDENTIAL",
    "token",
    "Token",
    "TOKEN",
    "code",
    "Code",
    "CODE",
    "secret",
    "Secret",
    "SECRET",
    "csrf",
    "Csrf",
    "CSRF",
    "uthorization",
    "UTHORIZATION",
    "ookie",
    "OOKIE",
];

/// What the redactor searches for on its own (client files, HAR copies,
/// callcap's own log), ignoring case: [`SECRET_LITERALS`] in one spelling,
/// and `jwt`, which is too short for the server log's search.
pub const ANY_CASE_LITERALS: [&str; 20] = [
    "syt_",
    "syr_",
    "syl_",
    "mat_",
    "mar_",
    "mct_",
    "mcr_",
    "mpt_",
    "eyJ",
    "MDAx",
    "bearer",
    "pass",
    "credential",
    "token",
    "code",
    "secret",
    "csrf",
    "authorization",
    "cookie",
    "jwt",
];

/// What an alternative of the text pattern found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// A secret of this rule.
    Rule(Rule),
    /// A named value: the rule follows from the name group.
    Named,
}

/// The text pattern's alternatives: (name group, value group, form).
pub(super) const GROUPS: [(Option<&str>, &str, Form); 19] = [
    (None, "st", Form::Rule(Rule::SynapseToken)),
    (None, "mt", Form::Rule(Rule::MasToken)),
    (None, "jw", Form::Rule(Rule::Jwt)),
    (None, "mc", Form::Rule(Rule::Macaroon)),
    (None, "be", Form::Rule(Rule::Bearer)),
    (Some("n1"), "v1", Form::Named),
    (Some("n2"), "v2", Form::Named),
    (Some("n3"), "v3", Form::Named),
    (Some("n4"), "v4", Form::Named),
    (Some("n10"), "v10", Form::Named),
    (None, "av", Form::Rule(Rule::Authorization)),
    (None, "cv", Form::Rule(Rule::Cookie)),
    (Some("n5"), "v5", Form::Named),
    (Some("n6"), "v6", Form::Named),
    (Some("n7"), "v7", Form::Named),
    (Some("n8"), "v8", Form::Named),
    (Some("n9"), "v9", Form::Named),
    (None, "qv", Form::Rule(Rule::Token)),
    (None, "rk", Form::Rule(Rule::RecoveryKey)),
];

/// Unquoted values that say there is no secret (left as they are).
pub(super) const EMPTY_VALUES: [&[u8]; 6] =
    [b"null", b"None", b"undefined", b"nil", b"true", b"false"];

const BASE58: &str = "1-9A-HJ-NP-Za-km-z";

/// The built-in text pattern (bytes, Unicode off). It never crosses a
/// newline, and no replaced value holds a `"` or `\` that is not part of an
/// escape, so redacting raw JSON text keeps it valid.
pub(super) fn text_pattern() -> String {
    // A name: an identifier (snake, kebab, dotted, camel; `%5F` for `_`)
    // that ends with a secret name.
    let prefix = r"(?:[A-Za-z0-9_.-]|%5[Ff])*";
    let fam =
        r"passw(?:or)?d|passphrase|credential|token|jwt|device_?code|secret|code_?verifier|csrf";
    let name = format!("{prefix}(?i:{fam}|cookie)");
    let qname = format!("{prefix}(?i:{fam}|authorization|cookie)");
    // Where a shape may start: not inside a longer token, not after a Matrix
    // sigil (`$event`, `@user`), or after a percent escape.
    let edge = r"(?:^|[^A-Za-z0-9_$@!#+/-]|%[0-9A-Fa-f]{2})";
    let dq = r#"(?:[^"\\\n]|\\[^\n])*"#;
    // A string inside a JSON string: its quotes are `\"`, an escape in it is
    // `\\` and one more character or escape.
    let eq = r#"(?:\\\\(?:\\[^\n]|[^\\\n])|\\[^\\"\n]|[^\\"\n])*"#;
    let sq = r"(?:[^'\\\n]|\\[^\n])*";
    let sep = r"[ \t]*[:=][ \t]*";
    let cookie_pair = r#"[^\s;"'\\=]+"#;
    [
        r"(?P<st>sy[tlr]_(?:[A-Za-z0-9+/_=-]|%2[BbFf]|%3[Dd])+)".to_string(),
        format!(r"{edge}(?P<mt>m(?:at|ar|ct|cr|pt)_[A-Za-z0-9]{{20,}}(?:_[A-Za-z0-9]{{1,16}})?)"),
        // Three parts (signed) or five (encrypted; the second may be empty).
        format!(
            r"{edge}(?P<jw>eyJ[A-Za-z0-9_-]{{4,}}(?:\.[A-Za-z0-9_-]*){{2}}(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?)"
        ),
        format!(r"{edge}(?P<mc>MDAx[A-Za-z0-9_=+/-]{{40,}})"),
        r"(?i:bearer)[ \t]+(?P<be>[A-Za-z0-9._~+/-]+=*)".to_string(),
        // "name": "value" (JSON), \"name\": \"value\" (JSON inside a JSON
        // string), 'name': 'value' and 'name': "value" (Python reprs).
        format!(r#""(?P<n1>{qname})"[ \t]*:[ \t]*"(?P<v1>{dq})""#),
        format!(r#"\\"(?P<n2>{qname})\\"[ \t]*:[ \t]*\\"(?P<v2>{eq})\\""#),
        format!(r#"b?'(?P<n3>{qname})'[ \t]*:[ \t]*b?'(?P<v3>{sq})'"#),
        format!(r#"b?'(?P<n4>{qname})'[ \t]*:[ \t]*b?"(?P<v4>{dq})""#),
        format!(r#"b?'(?P<n10>{qname})'[ \t]*:[ \t]*b?\\"(?P<v10>{eq})\\""#),
        // Authorization: <scheme> <credentials>; Cookie: <the whole header>.
        format!(
            r#"{prefix}(?i:authorization){sep}(?:[A-Za-z][A-Za-z0-9_-]*[ \t]+)?(?P<av><redacted>|[^\s"'<>\\,;]+)"#
        ),
        // A cookie header's pairs (and attributes) up to the first blank
        // that does not follow a `;`.
        format!(
            r#"{prefix}(?i:cookie):[ \t]*(?P<cv>{cookie_pair}=[^\s;"'\\]*(?:;[ \t]*{cookie_pair}(?:=[^\s;"'\\]*)?)*)"#
        ),
        // name=value, name: value, with the value quoted or not; name%3Dvalue.
        format!(r#"(?P<n5>{name}){sep}"(?P<v5>{dq})""#),
        format!(r"(?P<n6>{name}){sep}'(?P<v6>{sq})'"),
        format!(r#"(?P<n7>{name}){sep}\\"(?P<v7>{eq})\\""#),
        format!(r#"(?P<n8>{name}){sep}(?P<v8>[^\s&"'<>\\,;(){{}}\[\]]+)"#),
        format!(r"(?P<n9>{name})%3[Dd](?P<v9>(?:[A-Za-z0-9._~+-]|%2[BbFf]|%3[Dd])+)"),
        r#"[?&]code=(?P<qv>[^\s&"'<>\\#]+)"#.to_string(),
        format!(r"\b(?P<rk>[{BASE58}]{{4}}(?: [{BASE58}]{{4}}){{11}})\b"),
    ]
    .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_classify_by_their_ending_whatever_the_case() {
        for (name, rule) in [
            ("password", Rule::Password),
            ("new_password", Rule::Password),
            ("newPassword", Rule::Password),
            ("PASSWD", Rule::Password),
            ("credential", Rule::Password),
            ("access_token", Rule::Token),
            ("access%5Ftoken", Rule::Token),
            ("loginToken", Rule::Token),
            ("login_token", Rule::Token),
            ("id_token", Rule::Token),
            ("X-Access-Token", Rule::Token),
            ("jwt", Rule::Token),
            ("device_code", Rule::Token),
            ("client_secret", Rule::Secret),
            ("SECRET", Rule::Secret),
            ("code_verifier", Rule::Secret),
            ("csrf", Rule::Secret),
            ("Authorization", Rule::Authorization),
            ("proxy-authorization", Rule::Authorization),
            ("Set-Cookie", Rule::Cookie),
        ] {
            assert_eq!(name_rule(name), Some(rule), "{name}");
        }
        for evidence in [
            "key",
            "one_time_keys",
            "token_type",
            "M_UNKNOWN_TOKEN",
            "M_MISSING_TOKEN",
            "device_id",
            "event_id",
            "code",
            "type",
        ] {
            assert_eq!(name_rule(evidence), None, "{evidence}");
        }
        assert_eq!(param_rule("code"), Some(Rule::Token));
        assert_eq!(param_rule("state"), None);
    }

    #[test]
    fn every_rule_has_a_distinct_name_and_an_index_in_order() {
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.covers().is_empty());
        }
        let mut names: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTIN);
    }
}
