//! Site rules: regular expressions an operator adds for secrets only their
//! deployment knows (`[redact] extra` in the config, `--redact` on
//! `analyze`). Each is checked when it is given, so a bad one stops the
//! program before anything is captured.

use regex::bytes::{Regex, RegexBuilder};

/// A site rule as given: where it came from (for the report; the pattern
/// itself may spell a secret, so it is never written into a bundle) and
/// its pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRule {
    /// `[redact] extra[0]`, `--redact #1`.
    pub origin: String,
    pub pattern: String,
}

/// A site rule that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{pattern}' {reason}")]
pub struct SiteRuleError {
    pub origin: String,
    pub pattern: String,
    pub reason: String,
}

/// Compiles a site rule's pattern (Rust `regex` syntax, matched against
/// one line at a time). A pattern that can match an empty string would put
/// `<redacted>` between every two characters: refused.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| format!("is not a regular expression: {}", last_line(&e.to_string())))?;
    if hir.properties().minimum_len().unwrap_or(0) == 0 {
        return Err("can match an empty string".to_string());
    }
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .map_err(|e| format!("is not a regular expression: {}", last_line(&e.to_string())))
}

fn last_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("invalid")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_and_empty_matching_patterns_are_refused_with_a_reason() {
        assert!(compile("ACME-[0-9]{8}").is_ok());
        assert!(compile(r"secret=(\S+)").is_ok());
        let e = compile("ACME-[0-9").err().unwrap_or_default();
        assert!(e.starts_with("is not a regular expression"), "{e}");
        for empty in ["x*", "", "(a|)", r"\b"] {
            assert_eq!(
                compile(empty).err().as_deref(),
                Some("can match an empty string"),
                "{empty}"
            );
        }
        let err = crate::domain::redact::Redactor::with_site_rules(&[
            SiteRule {
                origin: "--redact #1".into(),
                pattern: "ok[0-9]+".into(),
            },
            SiteRule {
                origin: "--redact #2".into(),
                pattern: "(bad".into(),
            },
        ])
        .err();
        assert_eq!(err.as_ref().map(|e| e.origin.as_str()), Some("--redact #2"));
        assert!(err.is_some_and(|e| e.to_string().starts_with("'(bad' is not")));
    }
}
