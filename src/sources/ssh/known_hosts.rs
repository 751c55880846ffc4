//! known_hosts with OpenSSH semantics: plain, wildcard (`*`, `?`), negated
//! (`!`) and hashed (`|1|salt|hash`) host patterns, `[host]:port` names for
//! ports other than 22, `@revoked` markers, several files (user and global).
//!
//! russh's own checker splits on single spaces, aborts on the first
//! unparsable key and ignores markers and wildcards, so callcap parses the
//! files itself.

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The files to read; the first one is where `accept-new` records keys.
#[derive(Debug, Clone)]
pub(crate) struct KnownHostsFiles {
    pub user: PathBuf,
    pub global: Vec<PathBuf>,
}

impl KnownHostsFiles {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.user).chain(self.global.iter())
    }
}

/// What the known_hosts files say about the key a server offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Known,
    /// No entry for this host and key type (`other_types` lists the key types
    /// that are recorded for the host, if any).
    Unknown {
        other_types: Vec<String>,
    },
    /// An entry of the same key type holds a different key.
    Changed {
        path: PathBuf,
        line: usize,
    },
    Revoked {
        path: PathBuf,
        line: usize,
    },
}

/// The name known_hosts uses for a host: `host` on port 22, else `[host]:port`.
pub(crate) fn host_port_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

struct Entry {
    marker: Option<String>,
    patterns: String,
    key: PublicKey,
    line: usize,
}

fn parse_file(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first.to_ascii_lowercase());
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(_key_type), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        // OpenSSH skips lines it cannot parse; so do we.
        let Ok(key) = russh::keys::parse_public_key_base64(blob) else {
            tracing::debug!(path = %path.display(), line = i + 1, "skipping unparsable known_hosts line");
            continue;
        };
        out.push(Entry {
            marker,
            patterns: first.to_string(),
            key,
            line: i + 1,
        });
    }
    out
}

/// OpenSSH `match_pattern`: `*` and `?` wildcards, case-insensitive.
fn wildcard_match(name: &[u8], pattern: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(b'*'), _) => {
            wildcard_match(name, &pattern[1..])
                || (!name.is_empty() && wildcard_match(&name[1..], pattern))
        }
        (Some(b'?'), Some(_)) => wildcard_match(&name[1..], &pattern[1..]),
        (Some(p), Some(n)) if p.eq_ignore_ascii_case(n) => {
            wildcard_match(&name[1..], &pattern[1..])
        }
        _ => false,
    }
}

fn hashed_match(name: &str, entry: &str) -> bool {
    // |1|base64(salt)|base64(hmac-sha1(salt, name))
    let mut parts = entry.split('|').skip(2);
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Whether a comma-separated host pattern list matches `name`; a matching
/// negated pattern wins over everything else (OpenSSH `match_hostname`).
pub(crate) fn patterns_match(name: &str, patterns: &str) -> bool {
    let mut matched = false;
    for p in patterns.split(',') {
        if p.starts_with("|1|") {
            if hashed_match(name, p) {
                matched = true;
            }
        } else if let Some(neg) = p.strip_prefix('!') {
            if wildcard_match(name.as_bytes(), neg.as_bytes()) {
                return false;
            }
        } else if wildcard_match(name.as_bytes(), p.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn same_type(a: &PublicKey, b: &PublicKey) -> bool {
    a.algorithm() == b.algorithm()
}

/// Checks `key` offered by `host`:`port` against every file.
pub(crate) fn check(files: &KnownHostsFiles, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = host_port_name(host, port);
    let mut changed = None;
    let mut known = false;
    let mut other_types = Vec::new();
    for path in files.all() {
        for e in parse_file(path) {
            if !patterns_match(&name, &e.patterns) {
                continue;
            }
            let equal = e.key.key_data() == key.key_data();
            match e.marker.as_deref() {
                Some("@revoked") if equal => {
                    return Verdict::Revoked {
                        path: path.clone(),
                        line: e.line,
                    };
                }
                Some(_) => {}
                None if equal => known = true,
                None if same_type(&e.key, key) => {
                    if changed.is_none() {
                        changed = Some((path.clone(), e.line));
                    }
                }
                None => other_types.push(e.key.algorithm().as_str().to_string()),
            }
        }
    }
    if known {
        return Verdict::Known;
    }
    if let Some((path, line)) = changed {
        return Verdict::Changed { path, line };
    }
    other_types.sort();
    other_types.dedup();
    Verdict::Unknown { other_types }
}

/// Key algorithms recorded for the host, to prefer them in the key exchange
/// (as OpenSSH does) so a server with several host keys offers a known one.
pub(crate) fn known_algorithms(files: &KnownHostsFiles, host: &str, port: u16) -> Vec<Algorithm> {
    let name = host_port_name(host, port);
    let mut algs: Vec<Algorithm> = Vec::new();
    for path in files.all() {
        for e in parse_file(path) {
            if e.marker.is_none() && patterns_match(&name, &e.patterns) {
                let a = match e.key.algorithm() {
                    // An RSA key can sign with any of the RSA algorithms.
                    Algorithm::Rsa { .. } => Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    },
                    other => other,
                };
                if !algs.contains(&a) {
                    algs.push(a);
                }
            }
        }
    }
    algs
}

/// The known_hosts line that trusts `key` for `host`:`port`.
pub(crate) fn entry_line(host: &str, port: u16, key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    let openssh = k
        .to_openssh()
        .unwrap_or_else(|_| format!("{} <unencodable key>", key.algorithm().as_str()));
    format!("{} {}", host_port_name(host, port), openssh.trim())
}

/// Appends the key to the user file (`accept-new`).
pub(crate) fn append(
    files: &KnownHostsFiles,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> std::io::Result<()> {
    let path = &files.user;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let needs_newline = match std::fs::read(path) {
        Ok(b) => !b.is_empty() && !b.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = String::new();
    if needs_newline {
        line.push('\n');
    }
    line.push_str(&entry_line(host, port, key));
    line.push('\n');
    // One write with O_APPEND: concurrent writers cannot interleave a line.
    f.write_all(line.as_bytes())
}

/// `SHA256:…` as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIN+Wjn4+4Fcvl2JlKpggT+wCRxpSvtqqpVrQrKN1/A22";

    fn key(b: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b).unwrap()
    }

    fn files(text: &str) -> (tempfile::TempDir, KnownHostsFiles) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        (
            d,
            KnownHostsFiles {
                user: p,
                global: vec![],
            },
        )
    }

    #[test]
    fn wildcards_and_negation_follow_openssh() {
        assert!(patterns_match("host.example.org", "*.example.org"));
        assert!(patterns_match("HOST.example.org", "host.example.org"));
        assert!(patterns_match("h1", "h?"));
        assert!(!patterns_match("h12", "h?"));
        assert!(!patterns_match(
            "bad.example.org",
            "*.example.org,!bad.example.org"
        ));
        assert!(patterns_match("[10.0.0.1]:2222", "[10.0.0.1]:2222"));
        assert!(!patterns_match("10.0.0.1", "[10.0.0.1]:2222"));
    }

    #[test]
    fn hashed_entry_matches_its_host_only() {
        // Produced by `ssh-keygen -H` for "[127.0.0.1]:2222" with this salt.
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"[127.0.0.1]:2222")
            .finalize()
            .into_bytes();
        let entry = format!("|1|{}|{}", BASE64.encode(&salt), BASE64.encode(&mac));
        assert!(patterns_match("[127.0.0.1]:2222", &entry));
        assert!(!patterns_match("[127.0.0.1]:2223", &entry));
    }

    #[test]
    fn verdicts() {
        let (_d, f) = files(&format!(
            "# comment\n\n[h]:2222 ssh-ed25519 {K1}\nbroken line\nh2  ssh-ed25519   {K1} c\n@revoked h3 ssh-ed25519 {K2}\n"
        ));
        assert_eq!(check(&f, "h", 2222, &key(K1)), Verdict::Known);
        assert_eq!(check(&f, "H2", 22, &key(K1)), Verdict::Known);
        assert!(matches!(
            check(&f, "h", 2222, &key(K2)),
            Verdict::Changed { line: 3, .. }
        ));
        assert!(matches!(
            check(&f, "h", 22, &key(K1)),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&f, "h3", 22, &key(K2)),
            Verdict::Revoked { line: 6, .. }
        ));
    }

    #[test]
    fn append_then_known() {
        let (_d, f) = files("h ssh-ed25519 AAAA-no-newline");
        append(&f, "10.0.0.1", 2222, &key(K1)).unwrap();
        let text = std::fs::read_to_string(&f.user).unwrap();
        assert!(
            text.ends_with(&format!("\n[10.0.0.1]:2222 ssh-ed25519 {K1}\n")),
            "{text}"
        );
        assert_eq!(check(&f, "10.0.0.1", 2222, &key(K1)), Verdict::Known);
        assert_eq!(
            known_algorithms(&f, "10.0.0.1", 2222),
            vec![Algorithm::Ed25519]
        );
    }
}
