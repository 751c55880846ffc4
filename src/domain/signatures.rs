//! KE signatures (`assets/signatures.toml`, embedded; a user file may
//! override) and the one-pass matcher.
//!
//! Matching has `grep -E` semantics: case-sensitive, one physical line at a
//! time, and all KEs are matched in one pass over the input.

use super::ke::{Ke, KeSet};
use regex::bytes::{Regex, RegexSet};
use serde::Deserialize;
use std::path::Path;

pub const EMBEDDED: &str = include_str!("../../assets/signatures.toml");

/// Access lines are found with the same pass (for request latency).
const ACCESS_LITERAL: &str = "Processed request";

/// What a line matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineMatch {
    /// KEs whose server pattern matched.
    pub kes: KeSet,
    /// An error signature matched (highlight it).
    pub error: bool,
    /// The line is a "Processed request" access line.
    pub access: bool,
}

impl LineMatch {
    pub fn is_interesting(&self) -> bool {
        !self.kes.is_empty() || self.error || self.access
    }
}

/// A client message's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMatch {
    pub ke: Ke,
    pub signature: String,
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSignature {
    pub signature: String,
    #[serde(default)]
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KeDef {
    id: String,
    title: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    server_errors: Vec<String>,
    #[serde(default)]
    client: Vec<ClientSignature>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    ke: Vec<KeDef>,
}

/// One KE's signatures.
#[derive(Debug, Clone, PartialEq)]
pub struct KeSignatures {
    pub ke: Ke,
    pub title: String,
    /// `grep -E` pattern; empty for none (KE-3 uses harvested event ids).
    pub server: String,
    pub server_errors: Vec<String>,
    pub client: Vec<ClientSignature>,
}

/// Signatures as loaded from TOML.
#[derive(Debug, Clone, PartialEq)]
pub struct Signatures {
    pub kes: Vec<KeSignatures>,
}

impl Signatures {
    pub fn embedded() -> Self {
        // The embedded file is checked by a test; it cannot fail at run time
        // unless the build is broken, and then no signatures beat a panic.
        Signatures::from_toml(EMBEDDED, Path::new("(embedded signatures)"))
            .unwrap_or(Signatures { kes: Vec::new() })
    }

    /// Parses a signatures file; errors name the file, the key and the value.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, String> {
        let file: SignaturesFile = toml::from_str(text).map_err(|e| {
            format!(
                "signatures file '{}': {}",
                path.display(),
                e.to_string().trim().replace('\n', " ")
            )
        })?;
        let mut kes: Vec<KeSignatures> = Vec::new();
        for (i, d) in file.ke.into_iter().enumerate() {
            let ke = Ke::parse(&d.id).ok_or_else(|| {
                format!(
                    "signatures file '{}': key 'ke[{i}].id': '{}' is not KE-1 … KE-4",
                    path.display(),
                    d.id
                )
            })?;
            if kes.iter().any(|k| k.ke == ke) {
                return Err(format!(
                    "signatures file '{}': key 'ke[{i}].id': '{}' is defined twice",
                    path.display(),
                    d.id
                ));
            }
            for (key, p) in std::iter::once(("server", &d.server))
                .chain(d.server_errors.iter().map(|p| ("server-errors", p)))
            {
                if !p.is_empty() {
                    compile(p).map_err(|e| {
                        format!(
                            "signatures file '{}': key 'ke[{i}].{key}': bad pattern '{p}': {e}",
                            path.display()
                        )
                    })?;
                }
            }
            kes.push(KeSignatures {
                ke,
                title: d.title,
                server: d.server,
                server_errors: d.server_errors,
                client: d.client,
            });
        }
        kes.sort_by_key(|k| k.ke);
        Ok(Signatures { kes })
    }

    pub fn get(&self, ke: Ke) -> Option<&KeSignatures> {
        self.kes.iter().find(|k| k.ke == ke)
    }

    pub fn title(&self, ke: Ke) -> &str {
        self.get(ke).map_or(ke.meaning(), |k| k.title.as_str())
    }
}

/// `grep -E` on one line: bytes, `.` is any byte but newline (as in the C
/// locale), case-sensitive.
fn compile(p: &str) -> Result<Regex, String> {
    Regex::new(&format!("(?-u){p}")).map_err(|e| {
        e.to_string()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// What each pattern of the set means.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Ke(Ke),
    Error(Ke),
    Access,
}

/// Matches server lines and client messages against all KEs at once.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// One alternation of every pattern: finds candidate lines in a buffer.
    any: Option<Regex>,
    /// Classifies a candidate line.
    set: RegexSet,
    slots: Vec<Slot>,
    client: Vec<(Ke, ClientSignature)>,
}

impl Matcher {
    /// `ke3_ids` are event ids harvested from client KE-3 entries (plus any
    /// the operator adds); they form KE-3's server pattern (literal match).
    pub fn new(sigs: &Signatures, ke3_ids: &[String]) -> Result<Self, String> {
        let mut pats: Vec<String> = Vec::new();
        let mut slots = Vec::new();
        for k in &sigs.kes {
            let server = if k.ke == Ke::Ke3 {
                let mut alts: Vec<String> = ke3_ids
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| regex::escape(s))
                    .collect();
                if !k.server.is_empty() {
                    alts.push(format!("(?:{})", k.server));
                }
                alts.join("|")
            } else {
                k.server.clone()
            };
            if server.is_empty() {
                continue;
            }
            pats.push(server);
            slots.push(Slot::Ke(k.ke));
            for e in &k.server_errors {
                pats.push(e.clone());
                slots.push(Slot::Error(k.ke));
            }
        }
        pats.push(regex::escape(ACCESS_LITERAL));
        slots.push(Slot::Access);
        let set =
            RegexSet::new(pats.iter().map(|p| format!("(?-u){p}"))).map_err(|e| e.to_string())?;
        // Error patterns only matter on lines a KE matched: the finder needs
        // the KE patterns and the access literal only.
        let finder: Vec<String> = pats
            .iter()
            .zip(&slots)
            .filter(|(_, s)| !matches!(s, Slot::Error(_)))
            .map(|(p, _)| format!("(?:{p})"))
            .collect();
        let any =
            Some(Regex::new(&format!("(?-u){}", finder.join("|"))).map_err(|e| e.to_string())?);
        let client = sigs
            .kes
            .iter()
            .flat_map(|k| k.client.iter().map(move |c| (k.ke, c.clone())))
            .collect();
        Ok(Matcher {
            any,
            set,
            slots,
            client,
        })
    }

    /// Classifies one physical line (no newline).
    pub fn match_line(&self, line: &[u8]) -> LineMatch {
        let mut m = LineMatch::default();
        let hits = self.set.matches(line);
        let mut err = [false; 4];
        for i in hits.iter() {
            match self.slots[i] {
                Slot::Ke(k) => m.kes.insert(k),
                Slot::Error(k) => err[k.index()] = true,
                Slot::Access => m.access = true,
            }
        }
        m.error = m.kes.iter().any(|k| err[k.index()]);
        m
    }

    /// Calls `f(start, end, match)` for each line of `buf` (lines end with
    /// `\n`; `end` excludes it) that is interesting, in order. Lines that
    /// match nothing are skipped without being examined one by one.
    pub fn scan(&self, buf: &[u8], mut f: impl FnMut(usize, usize, LineMatch)) {
        let Some(any) = &self.any else { return };
        let mut pos = 0;
        while pos < buf.len() {
            let Some(hit) = any.find_at(buf, pos) else {
                break;
            };
            let start = memchr::memrchr(b'\n', &buf[..hit.start()]).map_or(0, |i| i + 1);
            let end =
                memchr::memchr(b'\n', &buf[hit.start()..]).map_or(buf.len(), |i| hit.start() + i);
            let m = self.match_line(&buf[start..end]);
            if m.is_interesting() {
                f(start, end, m);
            }
            pos = end + 1;
        }
    }

    pub fn classify_client(&self, message: &str) -> Option<ClientMatch> {
        self.client
            .iter()
            .find(|(_, c)| message.contains(c.signature.as_str()))
            .map(|(ke, c)| ClientMatch {
                ke: *ke,
                signature: c.signature.clone(),
                error: c.error,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matcher(ids: &[&str]) -> Matcher {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        Matcher::new(&Signatures::embedded(), &ids).unwrap()
    }

    #[test]
    fn embedded_signatures_hold_the_runbooks_patterns() {
        let s = Signatures::embedded();
        assert_eq!(s.kes.len(), 4);
        assert_eq!(
            s.get(Ke::Ke1).unwrap().server,
            "keys/upload|One time key .* already exists|OneTimeKey"
        );
        assert_eq!(
            s.get(Ke::Ke4).unwrap().server,
            "delayed_event|msc4140|msc4157|update_delayed"
        );
        assert!(s.get(Ke::Ke3).unwrap().server.is_empty());
    }

    #[test]
    fn matches_like_grep_one_line_at_a_time() {
        let m = matcher(&[]);
        let l =
            b"SynapseError: 400 - One time key signed_curve25519:AAAA already exists. Old key: {}";
        let r = m.match_line(l);
        assert!(r.kes.contains(Ke::Ke1) && r.error);
        assert!(
            m.match_line(b"PUT /_matrix/client/v3/sendToDevice/m.room.encrypted/x")
                .kes
                .contains(Ke::Ke2)
        );
        assert!(
            m.match_line(b"ONE TIME KEY x already exists")
                .kes
                .is_empty(),
            "case-sensitive"
        );
        // `.` matches any byte, as grep does in the C locale.
        assert!(
            m.match_line(b"One time key \xff\xfe already exists")
                .kes
                .contains(Ke::Ke1)
        );
        // `m.room.encrypted`'s dots match any character, as in grep -E.
        assert!(m.match_line(b"mXroomXencrypted").kes.contains(Ke::Ke2));
    }

    #[test]
    fn ke3_matches_harvested_event_ids_literally() {
        let m = matcher(&["$abc.def:hs"]);
        assert!(
            m.match_line(b"event $abc.def:hs persisted")
                .kes
                .contains(Ke::Ke3)
        );
        assert!(
            !m.match_line(b"event $abcXdef:hs persisted")
                .kes
                .contains(Ke::Ke3)
        );
        assert!(
            !matcher(&[])
                .match_line(b"event $abc.def:hs")
                .kes
                .contains(Ke::Ke3)
        );
    }

    #[test]
    fn scan_reports_only_interesting_lines_with_their_bounds() {
        let m = matcher(&[]);
        let buf = b"noise\na keys/upload b\nnoise\nx Processed request: y\nlast delayed_event";
        let mut got = Vec::new();
        m.scan(buf, |s, e, lm| {
            got.push((
                String::from_utf8_lossy(&buf[s..e]).into_owned(),
                lm.kes,
                lm.access,
            ))
        });
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "a keys/upload b");
        assert!(got[1].2 && got[1].1.is_empty());
        assert_eq!(got[2].0, "last delayed_event");
    }

    #[test]
    fn classifies_client_messages_by_runbook_signature() {
        let m = matcher(&[]);
        let c = m
            .classify_client("MissingKey: missing key at index 3 for participant @bob:hs")
            .unwrap();
        assert_eq!(c.ke, Ke::Ke2);
        assert_eq!(
            m.classify_client("AbortError: Restart delayed event timed out")
                .unwrap()
                .ke,
            Ke::Ke4
        );
        assert_eq!(
            m.classify_client("Error decrypting event (id=$x): DecryptionError[msg: x]")
                .unwrap()
                .ke,
            Ke::Ke3
        );
        assert!(m.classify_client("all good").is_none());
    }

    #[test]
    fn bad_user_signatures_name_the_file_key_and_value() {
        let e = Signatures::from_toml(
            "[[ke]]\nid = \"KE-9\"\ntitle = \"x\"\n",
            Path::new("sigs.toml"),
        )
        .unwrap_err();
        assert!(
            e.contains("sigs.toml") && e.contains("ke[0].id") && e.contains("'KE-9'"),
            "{e}"
        );
        let e = Signatures::from_toml(
            "[[ke]]\nid = \"KE-1\"\ntitle = \"x\"\nserver = \"a(\"\n",
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert!(e.contains("ke[0].server") && e.contains("'a('"), "{e}");
        let e = Signatures::from_toml(
            "[[ke]]\nid = \"KE-1\"\ntitle = \"x\"\nbogus = 1\n",
            Path::new("s.toml"),
        )
        .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
