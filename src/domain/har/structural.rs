//! The structural half of HAR redaction: a streaming walk over the JSON that
//! copies every byte as is, except what the HAR's structure says is secret:
//! header values by header name, every cookie value, `queryString` and
//! `params` values by parameter name (the one list of secret names,
//! [`crate::domain::redact::rules`]), and request and response bodies
//! (`postData`, `content`) and WebSocket frames (`_webSocketMessages`), read
//! by their mime type and encoding (`super::body`). Only those small objects
//! are buffered. The output goes through the text redactor, so tokens
//! anywhere else (URLs, `Location` and `Referer` values, comments) are
//! caught too.
//!
//! The walk never rejects input: on bytes that do not fit JSON's structure
//! it stops tracking and copies the rest verbatim (still text-redacted), and a
//! truncated file yields a truncated copy.

use super::super::redact::{REDACTED, Redactor, Rule, Tally, name_rule, param_rule};
use super::body;
use std::io::{self, BufRead, Write};

/// A name/value object larger than this is copied without structural redaction.
const MAX_ELEMENT: usize = 16 << 20;
/// A body (or WebSocket frame) larger than this is copied with the text
/// rules only.
const MAX_BODY: usize = 64 << 20;
/// Member names longer than this are not remembered (none of ours is).
const MAX_KEY: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Headers,
    Cookies,
    Params,
    /// `postData` or `content`.
    Body,
    /// An element of `_webSocketMessages`.
    WsMessage,
    /// A `url` or `redirectURL` string.
    Url,
}

impl Special {
    fn limit(self) -> usize {
        match self {
            Special::Body | Special::WsMessage => MAX_BODY,
            _ => MAX_ELEMENT,
        }
    }
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

/// Copies `input` to `out`, redacting what the structure says is secret;
/// returns how many values each rule replaced.
pub(crate) fn copy_redacting_pairs(
    input: &mut impl BufRead,
    out: &mut impl Write,
    redactor: &Redactor,
) -> io::Result<Tally> {
    let mut w = Walker {
        stack: Vec::new(),
        mode: Mode::Normal,
        count: Tally::default(),
        redactor,
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
        let n = write_element(special, &buf, out, w.redactor)?;
        w.count.add(&n);
    }
    Ok(w.count)
}

struct Walker<'r> {
    stack: Vec<Frame>,
    mode: Mode,
    count: Tally,
    redactor: &'r Redactor,
}

impl Walker<'_> {
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
                                // A string element (a URL) ends with its quote.
                                if *depth == 0 {
                                    end = Some(j + 1);
                                    break;
                                }
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
                        if buf.len() > special.limit() {
                            out.write_all(buf)?;
                            buf.clear();
                            *buffering = false;
                        }
                    }
                    i = stop;
                    if end.is_some() {
                        let (special, buf, buffering) = (*special, std::mem::take(buf), *buffering);
                        if buffering {
                            let n = write_element(special, &buf, out, self.redactor)?;
                            self.count.add(&n);
                        }
                        self.mode = Mode::Normal;
                    }
                }
                Mode::Normal => {
                    let b = chunk[i];
                    match b {
                        b'"' => {
                            if let Some(Frame::Object {
                                expect_key: false,
                                key,
                            }) = self.stack.last()
                                && (key == b"url" || key == b"redirectURL")
                            {
                                out.write_all(&chunk[copy_from..i])?;
                                copy_from = i;
                                self.mode = Mode::Element {
                                    special: Special::Url,
                                    depth: 0,
                                    in_str: false,
                                    escaped: false,
                                    buf: Vec::new(),
                                    buffering: true,
                                };
                                // The element loop reads this quote.
                                continue;
                            }
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
                            let special = match self.stack.last() {
                                Some(Frame::Array { special: Some(s) }) => Some(*s),
                                Some(Frame::Object {
                                    expect_key: false,
                                    key,
                                }) if key == b"postData" || key == b"content" => {
                                    Some(Special::Body)
                                }
                                _ => None,
                            };
                            if let Some(s) = special {
                                out.write_all(&chunk[copy_from..i])?;
                                copy_from = i;
                                self.mode = Mode::Element {
                                    special: s,
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
                                    b"_webSocketMessages" => Some(Special::WsMessage),
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

/// Writes one buffered element: a name/value object with its value
/// redacted if the name is secret, or a body or WebSocket frame read by
/// its mime type. Returns what it redacted.
fn write_element(
    special: Special,
    raw: &[u8],
    out: &mut impl Write,
    redactor: &Redactor,
) -> io::Result<Tally> {
    let mut tally = Tally::default();
    let rule = match special {
        Special::Body | Special::WsMessage | Special::Url => {
            let (text, n) = match special {
                Special::Body => body::redact_body(raw, redactor),
                Special::WsMessage => body::redact_ws_message(raw, redactor),
                _ => body::redact_url_token(raw, redactor),
            };
            out.write_all(&text)?;
            return Ok(n);
        }
        Special::Cookies => Some(Rule::Cookie),
        Special::Headers | Special::Params => {
            let members = top_level_strings(raw);
            let name = members
                .iter()
                .find(|m| m.key == b"name")
                .map(|m| decode(&raw[m.value.0..m.value.1]));
            match special {
                Special::Headers => name.as_deref().and_then(name_rule),
                _ => name.as_deref().and_then(param_rule),
            }
        }
    };
    let members = top_level_strings(raw);
    let value = members.iter().find(|m| m.key == b"value").map(|m| m.value);
    // A header that holds a URL (`Location`, `Referer`): its query values.
    if special == Special::Headers
        && rule.is_none()
        && let Some((s, e)) = value
        && let Some((url, n)) = body::redact_url(&decode(&raw[s..e]), redactor)
        && let Ok(quoted) = serde_json::to_string(&url)
    {
        out.write_all(&raw[..s - 1])?;
        out.write_all(quoted.as_bytes())?;
        out.write_all(&raw[e + 1..])?;
        return Ok(n);
    }
    match (rule, value) {
        (Some(rule), Some((s, e)))
            if !raw[s..e].is_empty() && &raw[s..e] != REDACTED.as_bytes() =>
        {
            out.write_all(&raw[..s])?;
            out.write_all(REDACTED.as_bytes())?;
            out.write_all(&raw[e..])?;
            tally.add_rule(rule, 1);
        }
        _ => out.write_all(raw)?,
    }
    Ok(tally)
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
