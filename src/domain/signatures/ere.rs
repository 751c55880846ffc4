//! POSIX extended regular expressions (as GNU `grep -E` reads them in the C
//! locale) translated to the `regex` crate's syntax, to be compiled as a
//! bytes regex with Unicode off (`.` = any byte but `\n`).
//!
//! Differences handled:
//! - bracket expressions: `\` and `[` are literal inside them, `]` first is
//!   literal, `[:class:]` is kept, `&`/`~` are escaped (set operators in Rust),
//!   non-ASCII characters become their bytes (the C locale sees bytes);
//! - `*`, `+`, `?`, `{` at the start of a branch are literal, as in GNU grep;
//! - `{` that does not open a valid interval is literal; `{,n}` is `{0,n}`;
//! - stacked quantifiers (`a+?`, `a**`) mean a repetition of the repetition,
//!   not a lazy operator, so the quantified part is wrapped in a group;
//! - an unmatched `)` is literal;
//! - `` \` `` and `\'` are `\A` and `\z`.
//!
//! Backreferences and GNU escapes with no POSIX meaning (`\d`, `\n`) are
//! rejected with a message rather than silently matching something else.

/// Translates one ERE; the error says what is wrong in plain words.
pub(crate) fn translate(ere: &str) -> Result<String, String> {
    let chars: Vec<char> = ere.chars().collect();
    let mut out = String::with_capacity(ere.len() + 8);
    // Output offsets where each open group starts.
    let mut groups: Vec<usize> = Vec::new();
    // Output offset of the last complete atom (for stacking quantifiers).
    let mut atom: Option<usize> = None;
    // The last thing emitted was a quantifier.
    let mut quantified = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("trailing backslash".into());
                };
                let start = out.len();
                match n {
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' | '<' | '>' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    '1'..='9' => {
                        return Err(format!("backreference \\{n} is not supported"));
                    }
                    n if n.is_ascii_alphanumeric() => {
                        return Err(format!(
                            "\\{n} is not a POSIX extended regular expression escape (grep -E reads it as a plain '{n}')"
                        ));
                    }
                    n => push_literal(&mut out, n),
                }
                atom = Some(start);
                quantified = false;
                i += 2;
            }
            '[' => {
                let start = out.len();
                i = bracket(&chars, i, &mut out)?;
                atom = Some(start);
                quantified = false;
                continue;
            }
            '(' => {
                groups.push(out.len());
                out.push('(');
                atom = None;
                quantified = false;
                i += 1;
            }
            ')' => {
                if let Some(start) = groups.pop() {
                    out.push(')');
                    atom = Some(start);
                } else {
                    let start = out.len();
                    out.push_str(r"\)");
                    atom = Some(start);
                }
                quantified = false;
                i += 1;
            }
            '|' => {
                out.push('|');
                atom = None;
                quantified = false;
                i += 1;
            }
            '*' | '+' | '?' | '{' => {
                let interval = if c == '{' { interval(&chars, i) } else { None };
                let is_quantifier = c != '{' || interval.is_some();
                match (is_quantifier, atom) {
                    (true, Some(start)) => {
                        if quantified {
                            out.insert_str(start, "(?:");
                            out.push(')');
                        }
                        match interval {
                            Some((text, next)) => {
                                out.push_str(&text);
                                i = next;
                            }
                            None => {
                                out.push(c);
                                i += 1;
                            }
                        }
                        quantified = true;
                    }
                    _ => {
                        // Nothing to repeat (or not an interval): a literal.
                        let start = out.len();
                        push_literal(&mut out, c);
                        atom = Some(start);
                        quantified = false;
                        i += 1;
                    }
                }
            }
            '^' | '$' => {
                out.push(c);
                atom = None;
                quantified = false;
                i += 1;
            }
            '.' => {
                atom = Some(out.len());
                out.push('.');
                quantified = false;
                i += 1;
            }
            c => {
                atom = Some(out.len());
                push_literal(&mut out, c);
                quantified = false;
                i += 1;
            }
        }
    }
    if !groups.is_empty() {
        return Err("unmatched '('".into());
    }
    Ok(out)
}

/// A literal character: escaped if the `regex` crate gives it a meaning,
/// as bytes if it is not ASCII.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii() {
        if regex_syntax::is_meta_character(c) {
            out.push('\\');
        }
        out.push(c);
    } else {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!(r"\x{b:02X}"));
        }
    }
}

/// `{n}`, `{n,}`, `{n,m}`, `{,m}` starting at `chars[i] == '{'`: the Rust
/// text and the index after `}`.
fn interval(chars: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i + 1;
    let mut lo = String::new();
    while let Some(c) = chars.get(j).filter(|c| c.is_ascii_digit()) {
        lo.push(*c);
        j += 1;
    }
    let mut hi: Option<String> = None;
    if chars.get(j) == Some(&',') {
        j += 1;
        let mut h = String::new();
        while let Some(c) = chars.get(j).filter(|c| c.is_ascii_digit()) {
            h.push(*c);
            j += 1;
        }
        hi = Some(h);
    }
    if chars.get(j) != Some(&'}') {
        return None;
    }
    let text = match (lo.is_empty(), hi) {
        (true, None) => return None,
        (true, Some(h)) if h.is_empty() => return None,
        (true, Some(h)) => format!("{{0,{h}}}"),
        (false, None) => format!("{{{lo}}}"),
        (false, Some(h)) if h.is_empty() => format!("{{{lo},}}"),
        (false, Some(h)) => format!("{{{lo},{h}}}"),
    };
    Some((text, j + 1))
}

/// A bracket expression starting at `chars[i] == '['`; returns the index
/// after its closing `]`.
fn bracket(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let mut j = i + 1;
    out.push('[');
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err("unmatched '['".into());
        };
        match c {
            ']' if !first => {
                out.push(']');
                return Ok(j + 1);
            }
            '[' => match chars.get(j + 1) {
                Some(':') => {
                    let rest: String = chars[j + 2..].iter().collect();
                    let Some(end) = rest.find(":]") else {
                        return Err("unterminated character class '[:'".into());
                    };
                    let name = &rest[..end];
                    if !POSIX_CLASSES.contains(&name) {
                        return Err(format!("unknown character class '[:{name}:]'"));
                    }
                    out.push_str("[:");
                    out.push_str(name);
                    out.push_str(":]");
                    j += 2 + name.chars().count() + 2;
                }
                Some('.') | Some('=') => {
                    return Err("collating elements ('[.' and '[=') are not supported".into());
                }
                _ => {
                    out.push_str(r"\[");
                    j += 1;
                }
            },
            '\\' | ']' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                j += 1;
            }
            c if !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!(r"\x{b:02X}"));
                }
                j += 1;
            }
            c => {
                out.push(c);
                j += 1;
            }
        }
        first = false;
    }
}

const POSIX_CLASSES: [&str; 12] = [
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::translate;

    fn m(ere: &str, line: &str) -> bool {
        let t = translate(ere).unwrap();
        regex::bytes::RegexBuilder::new(&t)
            .unicode(false)
            .build()
            .unwrap_or_else(|e| panic!("{ere} -> {t}: {e}"))
            .is_match(line.as_bytes())
    }

    #[test]
    fn plain_patterns_pass_through() {
        assert_eq!(
            translate("keys/upload|One time key .* already exists").unwrap(),
            "keys/upload|One time key .* already exists"
        );
        assert!(m(
            "io.element.call.encryption_keys",
            "type io_element_call_encryption_keys"
        ));
    }

    #[test]
    fn bracket_expressions_follow_posix() {
        assert!(m("a[[:space:]]b", "a b"));
        assert!(m(r"[\]x", r"\x"));
        assert!(m("[]a]", "]"));
        assert!(m("[^]a]", "b"));
        assert!(!m("[^]a]", "]"));
        assert!(m("[[]", "["));
        assert!(m("[a&&b]", "&"));
        assert!(m("[0-9]{3}", "x400y"));
        assert!(translate("[abc").is_err());
        assert!(translate("[[:nope:]]").is_err());
    }

    #[test]
    fn leading_quantifiers_and_bad_intervals_are_literal() {
        assert!(m("*a", "x*a"));
        assert!(!m("*a", "a"));
        assert!(m("(+x)", "+x"));
        assert!(m("a{", "a{"));
        assert!(m("a{x}", "a{x}"));
        assert!(m("a{,2}b", "b"));
        assert!(m("x)", "x)"));
    }

    #[test]
    fn stacked_quantifiers_repeat_the_repetition() {
        // ERE `xa+?y` is `x(a+)?y`, which matches "xy" (Rust would read lazy `+?`).
        assert!(m("xa+?y", "xy"));
        assert!(m("a**", ""));
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        assert!(translate(r"(a)\1").is_err());
        assert!(translate(r"\d+").is_err());
        assert!(translate("(a").is_err());
        assert!(translate("a\\").is_err());
    }

    #[test]
    fn non_ascii_is_matched_as_bytes() {
        assert!(m("é", "café"));
        // In the C locale `[é]` is a set of two bytes.
        assert!(!m("^[é]$", "é"));
        assert!(m("^[é][é]$", "é"));
        assert!(m("[\u{e9}]", "\u{e9}"));
    }
}
