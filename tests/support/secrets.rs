//! Generated credentials in the formats their issuers use, and the
//! evidence that sits beside them, for the redaction tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;

/// A small seeded generator (xorshift64*): reproducible from its seed.
pub struct Rng(u64);

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Password characters: no whitespace and none of the characters that end
/// a value in free text (`& " ' < > \ , ; ( ) { } [ ]`).
const PASSWORD: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!@#$%^*+=~.:/?|-_";

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    pub fn from(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// CRC-32 (ISO-HDLC), as MAS and Synapse checksum their tokens.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// MAS's base62: least significant digit first, padded to six.
fn mas_base62(mut n: u32) -> String {
    let mut s = String::new();
    while n > 0 {
        s.push(ALNUM_BASE62[(n % 62) as usize] as char);
        n /= 62;
    }
    format!("{s:0>6}")
}

const ALNUM_BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `mat_…` and the other MAS tokens: prefix, 30 alphanumerics, CRC.
pub fn mas_token(rng: &mut Rng) -> String {
    let prefix = rng.pick(&["mat", "mar", "mct", "mcr", "mpt"]);
    let base = format!("{prefix}_{}", rng.from(ALNUM, 30));
    format!("{base}_{}", mas_base62(crc32(base.as_bytes())))
}

/// `syt_…`, `syr_…` (with a base64 localpart) or `syl_…`.
pub fn synapse_token(rng: &mut Rng) -> String {
    let local = base64::engine::general_purpose::STANDARD_NO_PAD.encode(rng.from("abcdefghij", 6));
    let base = match rng.below(3) {
        0 => format!("syt_{local}_{}", rng.from(ALNUM, 20)),
        1 => format!("syr_{local}_{}", rng.from(ALNUM, 20)),
        _ => format!("syl_{}", rng.from(ALNUM, 20)),
    };
    format!("{base}_{}", mas_base62(crc32(base.as_bytes())))
}

pub fn jwt(rng: &mut Rng) -> String {
    let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = format!(
        r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
        rng.from(ALNUM, 6)
    );
    let payload = format!(
        r#"{{"sub":"@{}:lotus.example","video":{{"room":"!{}","roomJoin":true}},"exp":{}}}"#,
        rng.from("abcdefgh", 5),
        rng.from(ALNUM, 18),
        1_782_842_400 + rng.below(100_000)
    );
    let sig = rng.bytes(32);
    format!(
        "{}.{}.{}",
        e(header.as_bytes()),
        e(payload.as_bytes()),
        e(&sig)
    )
}

/// A Synapse macaroon (`MDAx…`): base64url of `001…location …`.
pub fn macaroon(rng: &mut Rng) -> String {
    let mut raw = b"0019location lotus.example\n001didentifier key\n".to_vec();
    raw.extend_from_slice(format!("002fsignature {}", rng.from(ALNUM, 24)).as_bytes());
    raw.extend(rng.bytes(24));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn recovery_key(rng: &mut Rng) -> String {
    (0..12)
        .map(|_| rng.from(BASE58, 4))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn password(rng: &mut Rng) -> String {
    let n = 10 + rng.below(10);
    format!("{}{}", rng.from(ALNUM, 2), rng.from(PASSWORD, n))
}

pub fn opaque(rng: &mut Rng) -> String {
    let n = 24 + rng.below(12);
    rng.from(ALNUM, n)
}

/// What sits beside a secret and must survive byte for byte.
pub struct Evidence {
    /// A Curve25519 public key (unpadded base64 with `+` and `/`).
    pub key: String,
    pub key_id: String,
    pub event_id: String,
    pub room_id: String,
    pub user_id: String,
    pub device_id: String,
    pub request_id: String,
}

impl Evidence {
    pub fn new(rng: &mut Rng, n: usize) -> Evidence {
        Evidence {
            key: format!(
                "{}+{}/{}",
                rng.from(B64, 20),
                rng.from(B64, 10),
                rng.from(B64, 11)
            ),
            key_id: format!("signed_curve25519:AAAAAAAA{}", rng.from("ABCDEFGHIJ", 3)),
            event_id: format!("${}", rng.from(B64URL, 43)),
            room_id: format!(
                "!{}:lotus.example",
                rng.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 18)
            ),
            user_id: format!(
                "@u{}:lotus.example",
                rng.from("abcdefghijklmnopqrstuvwxyz0123456789_", 8)
            ),
            device_id: rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10),
            request_id: format!("POST-{}", 100_000 + n),
        }
    }

    pub fn all(&self) -> [&str; 7] {
        [
            &self.key,
            &self.key_id,
            &self.event_id,
            &self.room_id,
            &self.user_id,
            &self.device_id,
            &self.request_id,
        ]
    }

    /// The evidence as free text.
    pub fn text(&self) -> String {
        format!(
            "key {} id {} event {} room {} user {} device {} request {}",
            self.key,
            self.key_id,
            self.event_id,
            self.room_id,
            self.user_id,
            self.device_id,
            self.request_id
        )
    }
}

/// Percent-encoding of everything but unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every file under `dir`, with the base64 bodies of HAR copies decoded
/// and appended (a secret base64-encoded is still a secret).
pub fn bundle_text(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in super::support::walk(dir) {
        let data = std::fs::read(&p).unwrap();
        let mut text = String::from_utf8_lossy(&data).into_owned();
        if p.extension().is_some_and(|e| e == "har")
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data)
        {
            let mut decoded = String::new();
            decode_bodies(&v, &mut decoded);
            text.push_str(&decoded);
        }
        out.push((p.strip_prefix(dir).unwrap().display().to_string(), text));
    }
    out
}

fn decode_bodies(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(o) => {
            if o.get("encoding").and_then(|e| e.as_str()) == Some("base64")
                && let Some(t) = o.get("text").and_then(|t| t.as_str())
                && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(t)
            {
                out.push_str(&String::from_utf8_lossy(&b));
                out.push('\n');
            }
            o.values().for_each(|x| decode_bodies(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| decode_bodies(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_mas_tokens_have_the_mas_checksum() {
        // MAS's base62 (least significant digit first) of the CRC-32.
        assert_eq!(
            mas_base62(crc32(b"mat_PliIX6meolEmA61eQjOMtei1jeZo3J")),
            "yzbXL2"
        );
    }
}
