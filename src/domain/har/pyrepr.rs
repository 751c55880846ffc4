//! Python literal reprs (`{'key': 'abc', 'fallback': True}`, as Synapse
//! writes the new key with `%r`) converted to JSON values.

use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused (hostile input must not overflow the stack).
const MAX_DEPTH: usize = 64;

/// Parses a whole Python literal; `None` if it is not one.
pub(crate) fn to_json(text: &str) -> Option<Value> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut map = Map::new();
                if self.eat(b'}') {
                    return Some(Value::Object(map));
                }
                loop {
                    let key = match self.value(depth + 1)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                    if self.eat(b',') {
                        if self.eat(b'}') {
                            return Some(Value::Object(map));
                        }
                        continue;
                    }
                    return self.eat(b'}').then_some(Value::Object(map));
                }
            }
            open @ (b'[' | b'(') => {
                let close = if open == b'[' { b']' } else { b')' };
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(close) {
                    return Some(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b',') {
                        if self.eat(close) {
                            return Some(Value::Array(items));
                        }
                        continue;
                    }
                    return self.eat(close).then_some(Value::Array(items));
                }
            }
            b'\'' | b'"' => self.string().map(Value::String),
            b'b' if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) => {
                self.i += 1;
                self.string().map(Value::String)
            }
            _ => self.word(),
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = *self.s.get(self.i)?;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            if b == quote {
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let e = *self.s.get(self.i)?;
            self.i += 1;
            let simple = match e {
                b'\\' => Some(b'\\'),
                b'\'' => Some(b'\''),
                b'"' => Some(b'"'),
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'r' => Some(b'\r'),
                b'0' => Some(0),
                _ => None,
            };
            if let Some(c) = simple {
                out.push(c);
                continue;
            }
            let digits = match e {
                b'x' => 2,
                b'u' => 4,
                b'U' => 8,
                _ => {
                    out.push(b'\\');
                    out.push(e);
                    continue;
                }
            };
            let hex = std::str::from_utf8(self.s.get(self.i..self.i + digits)?).ok()?;
            let code = u32::from_str_radix(hex, 16).ok()?;
            self.i += digits;
            let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    /// `True`, `False`, `None` or a number.
    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_'))
        {
            self.i += 1;
        }
        let w = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        match w {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => {
                let w = w.replace('_', "");
                if let Ok(i) = w.parse::<i64>() {
                    Some(Value::from(i))
                } else {
                    w.parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::to_json;
    use serde_json::json;

    #[test]
    fn converts_a_signed_key_repr() {
        let v =
            to_json("{'key': 'abc+/d', 'signatures': {'@a:hs': {'ed25519:DEV': 'sig'}}}").unwrap();
        assert_eq!(
            v,
            json!({"key": "abc+/d", "signatures": {"@a:hs": {"ed25519:DEV": "sig"}}})
        );
    }

    #[test]
    fn converts_python_constants_tuples_and_escapes() {
        let v = to_json(r#"{'fallback': True, 'x': None, 'n': -1.5, 't': (1, 2,), "q": 'it\'s \x41\u00e9', 'b': b'z'}"#).unwrap();
        assert_eq!(
            v,
            json!({"fallback": true, "x": null, "n": -1.5, "t": [1, 2], "q": "it's Aé", "b": "z"})
        );
    }

    #[test]
    fn rejects_what_is_not_a_literal() {
        assert!(to_json("{'key': 'abc'").is_none());
        assert!(to_json("{'key' 'abc'}").is_none());
        assert!(to_json("{'a': 1} trailing").is_none());
        assert!(to_json(&"[".repeat(1000)).is_none());
    }
}
