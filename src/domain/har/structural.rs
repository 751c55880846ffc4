//! The structural half of HAR redaction: a streaming walk over the JSON that
//! copies every byte as is, except the values of sensitive name/value pairs
//! (`Authorization`/`Cookie` headers, cookies, token query parameters),
//! which become `<redacted>`. Only the small objects inside `headers`,
//! `cookies`, `queryString` and `params` arrays are buffered. The output goes
//! through the text redactor, so tokens anywhere else are caught too.
//!
//! The walk never rejects input: on bytes that do not fit JSON's structure
//! it stops tracking and copies the rest verbatim (still text-redacted), and a
//! truncated file yields a truncated copy.

use super::super::redact::REDACTED;
use std::io::{self, BufRead, Write};

/// Headers whose value is a credential (compared case-insensitively).
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];
/// Query or form parameters whose value is a credential (case-insensitive).
const SECRET_PARAMS: [&str; 6] = [
    "access_token",
    "refresh_token",
    "client_secret",
    "password",
    "token",
    "logintoken",
];
/// A name/value object larger than this is copied without structural redaction.
const MAX_ELEMENT: usize = 16 << 20;
/// Member names longer than this are not remembered (none of ours is).
const MAX_KEY: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Headers,
    Cookies,
    Params,
}

enum Frame {
    Object { expect_key: bool, key: Vec<u8> },
    Array { special: Option<Special> },
}

enum Mode {
    Normal,
    /// Inside a string; `key` collects a member name.
    String {
        key: Option<Vec<u8>>,
        escaped: bool,
    },
    /// Inside an element of a special array.
    Element {
        special: Special,
        depth: usize,
        in_str: bool,
        escaped: bool,
        buf: Vec<u8>,
        buffering: bool,
    },
    /// Structure lost: copy the rest.
    Raw,
}

/// Copies `input` to `out`, redacting sensitive pair values; returns how
/// many were redacted.
pub(crate) fn copy_redacting_pairs(
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> io::Result<usize> {
    let mut w = Walker {
        stack: Vec::new(),
        mode: Mode::Normal,
        count: 0,
    };
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        w.chunk(chunk, out)?;
        input.consume(n);
    }
    if let Mode::Element { special, buf, .. } = std::mem::replace(&mut w.mode, Mode::Raw) {
        // Truncated inside a pair: redact what there is.
        w.count += write_element(special, &buf, out)?;
    }
    Ok(w.count)
}

struct Walker {
    stack: Vec<Frame>,
    mode: Mode,
    count: usize,
}

impl Walker {
    fn chunk(&mut self, chunk: &[u8], out: &mut impl Write) -> io::Result<()> {
        let n = chunk.len();
        let mut i = 0;
        // Bytes from `copy_from` to `i` are copied at the end (or before a divert).
        let mut copy_from = 0;
        while i < n {
            match &mut self.mode {
                Mode::Raw => {
                    i = n;
                }
                Mode::String { key, escaped } => {
                    if *escaped {
                        *escaped = false;
                        i += 1;
                        continue;
                    }
                    match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                        None => {
                            if let Some(k) = key {
                                push_key(k, &chunk[i..]);
                            }
                            i = n;
                        }
                        Some(j) => {
                            let at = i + j;
                            if let Some(k) = key {
                                push_key(k, &chunk[i..at]);
                            }
                            if chunk[at] == b'\\' {
                                if let Some(k) = key {
                                    push_key(k, b"\\");
                                }
                                *escaped = true;
                                i = at + 1;
                            } else {
                                if let Some(name) = key.take()
                                    && let Some(Frame::Object { key, .. }) = self.stack.last_mut()
                                {
                                    *key = name;
                                }
                                self.mode = Mode::Normal;
                                i = at + 1;
                            }
                        }
                    }
                }
                Mode::Element {
                    special,
                    depth,
                    in_str,
                    escaped,
                    buf,
                    buffering,
                } => {
                    let mut end = None;
                    let mut j = i;
                    while j < n {
                        let b = chunk[j];
                        if *in_str {
                            if *escaped {
                                *escaped = false;
                            } else if b == b'\\' {
                                *escaped = true;
                            } else if b == b'"' {
                                *in_str = false;
                            }
                        } else {
                            match b {
                                b'"' => *in_str = true,
                                b'{' | b'[' => *depth += 1,
                                b'}' | b']' => {
                                    *depth -= 1;
                                    if *depth == 0 {
                                        end = Some(j + 1);
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                        j += 1;
                    }
                    let stop = end.unwrap_or(n);
                    if *buffering {
                        buf.extend_from_slice(&chunk[i..stop]);
                        copy_from = stop;
                        if buf.len() > MAX_ELEMENT {
                            out.write_all(buf)?;
                            buf.clear();
                            *buffering = false;
                        }
                    }
                    i = stop;
                    if end.is_some() {
                        let (special, buf, buffering) = (*special, std::mem::take(buf), *buffering);
                        if buffering {
                            self.count += write_element(special, &buf, out)?;
                        }
                        self.mode = Mode::Normal;
                    }
                }
                Mode::Normal => {
                    let b = chunk[i];
                    match b {
                        b'"' => {
                            let key = match self.stack.last() {
                                Some(Frame::Object {
                                    expect_key: true, ..
                                }) => Some(Vec::new()),
                                _ => None,
                            };
                            self.mode = Mode::String {
                                key,
                                escaped: false,
                            };
                        }
                        b'{' => {
                            if let Some(Frame::Array { special: Some(s) }) = self.stack.last() {
                                out.write_all(&chunk[copy_from..i])?;
                                copy_from = i;
                                self.mode = Mode::Element {
                                    special: *s,
                                    depth: 0,
                                    in_str: false,
                                    escaped: false,
                                    buf: Vec::new(),
                                    buffering: true,
                                };
                                // The element loop counts this brace.
                                continue;
                            }
                            self.stack.push(Frame::Object {
                                expect_key: true,
                                key: Vec::new(),
                            });
                        }
                        b'[' => {
                            let special = match self.stack.last() {
                                Some(Frame::Object { key, .. }) => match key.as_slice() {
                                    b"headers" => Some(Special::Headers),
                                    b"cookies" => Some(Special::Cookies),
                                    b"queryString" | b"params" => Some(Special::Params),
                                    _ => None,
                                },
                                _ => None,
                            };
                            self.stack.push(Frame::Array { special });
                        }
                        b'}' | b']' => {
                            let closes = matches!(
                                (b, self.stack.pop()),
                                (b'}', Some(Frame::Object { .. }))
                                    | (b']', Some(Frame::Array { .. }))
                            );
                            if !closes {
                                self.mode = Mode::Raw;
                            }
                        }
                        b':' => {
                            if let Some(Frame::Object { expect_key, .. }) = self.stack.last_mut() {
                                *expect_key = false;
                            }
                        }
                        b',' => {
                            if let Some(Frame::Object { expect_key, .. }) = self.stack.last_mut() {
                                *expect_key = true;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if copy_from < n {
            match &mut self.mode {
                Mode::Element {
                    buf,
                    buffering: true,
                    ..
                } => buf.extend_from_slice(&chunk[copy_from..]),
                _ => out.write_all(&chunk[copy_from..])?,
            }
        }
        Ok(())
    }
}

fn push_key(key: &mut Vec<u8>, bytes: &[u8]) {
    if key.len() <= MAX_KEY {
        key.extend_from_slice(&bytes[..bytes.len().min(MAX_KEY + 1 - key.len())]);
    }
}

/// Writes one name/value object, with its value redacted if the name is
/// sensitive; returns 1 if it redacted something.
fn write_element(special: Special, raw: &[u8], out: &mut impl Write) -> io::Result<usize> {
    let members = top_level_strings(raw);
    let name = members
        .iter()
        .find(|m| m.key == b"name")
        .map(|m| decode(&raw[m.value.0..m.value.1]).to_ascii_lowercase());
    let secret = match special {
        Special::Cookies => true,
        Special::Headers => name.as_deref().is_some_and(|n| SECRET_HEADERS.contains(&n)),
        Special::Params => name.as_deref().is_some_and(|n| SECRET_PARAMS.contains(&n)),
    };
    let value = members.iter().find(|m| m.key == b"value").map(|m| m.value);
    match value {
        Some((s, e)) if secret && !raw[s..e].is_empty() && &raw[s..e] != REDACTED.as_bytes() => {
            out.write_all(&raw[..s])?;
            out.write_all(REDACTED.as_bytes())?;
            out.write_all(&raw[e..])?;
            Ok(1)
        }
        _ => {
            out.write_all(raw)?;
            Ok(0)
        }
    }
}

/// A member of the element whose value is a string: its name, and the raw
/// span of the value between the quotes (to the end if unterminated).
struct Member {
    key: Vec<u8>,
    value: (usize, usize),
}

fn top_level_strings(raw: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut expect_key = false;
    let mut key: Vec<u8> = Vec::new();
    while i < raw.len() {
        match raw[i] {
            b'"' => {
                let start = i + 1;
                let end = string_end(raw, start);
                if depth == 1 {
                    if expect_key {
                        key = raw[start..end].to_vec();
                    } else {
                        out.push(Member {
                            key: std::mem::take(&mut key),
                            value: (start, end),
                        });
                    }
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1 && raw[i] == b'{';
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 1 => expect_key = false,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    out
}

/// Index of the closing quote of a string whose content starts at `start`.
fn string_end(raw: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < raw.len() {
        match raw[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    raw.len()
}

/// A string's content decoded (lossily for anything odd).
fn decode(content: &[u8]) -> String {
    let mut quoted = Vec::with_capacity(content.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(content);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(content).into_owned())
}
