//! Loading the signatures file: the embedded `assets/signatures.toml` or a
//! user's copy, validated so that a bad file is an error that names the
//! file, the key and the value.

use super::{EMBEDDED, compile_ere};
use crate::domain::ke::{Ke, KeSet};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A plain substring of a client console message (runbook §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSignature {
    pub signature: String,
    /// A message carrying it is an error (highlight it).
    pub error: bool,
}

/// One KE's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeSignatures {
    pub ke: Ke,
    pub title: String,
    /// `grep -E` pattern for homeserver lines; `None` when the file leaves it
    /// empty (KE-3, whose pattern is the harvested event ids).
    pub server: Option<String>,
    /// `grep -E` patterns; a line matching the KE and one of these is an error.
    pub server_errors: Vec<String>,
    /// Client substrings, in the file's order.
    pub client: Vec<ClientSignature>,
}

impl KeSignatures {
    fn empty(ke: Ke) -> Self {
        KeSignatures {
            ke,
            title: ke.meaning().to_string(),
            server: None,
            server_errors: Vec::new(),
            client: Vec::new(),
        }
    }
}

/// Signatures as loaded from TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    kes: [KeSignatures; 4],
    /// Where they came from: `embedded` or the file's path.
    source: String,
}

impl Default for Signatures {
    fn default() -> Self {
        Self::embedded()
    }
}

/// A signatures file that cannot be used; the message names the file, the
/// key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum SignaturesError {
    #[error("{path}: cannot read the signatures file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: [[ke]] number {number}, key '{key}': {problem}: '{value}'")]
    Invalid {
        path: PathBuf,
        /// 1-based position of the `[[ke]]` table.
        number: usize,
        key: String,
        value: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ke: Vec<RawKe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKe {
    id: String,
    title: Option<String>,
    #[serde(default)]
    server: String,
    #[serde(default)]
    server_errors: Vec<String>,
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    signature: String,
    #[serde(default)]
    error: bool,
}

// The embedded file is part of the binary and parsed by a unit test; a
// broken one is a build mistake that must not silently match nothing.
static EMBEDDED_PARSED: LazyLock<Signatures> = LazyLock::new(|| {
    let mut s = Signatures::from_toml(EMBEDDED, Path::new("assets/signatures.toml"))
        .unwrap_or_else(|e| panic!("embedded signatures: {e}"));
    s.source = "embedded".into();
    s
});

impl Signatures {
    /// The signatures shipped in the binary.
    pub fn embedded() -> Self {
        EMBEDDED_PARSED.clone()
    }

    /// No signature at all: nothing matches.
    pub fn empty() -> Self {
        Signatures {
            kes: Ke::ALL.map(KeSignatures::empty),
            source: "empty".into(),
        }
    }

    /// Parses a signatures file (the embedded file's format). Unknown keys,
    /// unknown or repeated KE ids, empty client signatures or error patterns,
    /// and patterns that are not valid `grep -E` expressions are errors. A KE
    /// the file leaves out has no signatures.
    pub fn from_toml(text: &str, path: &Path) -> Result<Signatures, SignaturesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| SignaturesError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let mut kes = Ke::ALL.map(KeSignatures::empty);
        let mut seen = KeSet::default();
        for (i, r) in raw.ke.into_iter().enumerate() {
            let invalid = |key: &str, value: &str, problem: String| SignaturesError::Invalid {
                path: path.to_path_buf(),
                number: i + 1,
                key: key.to_string(),
                value: value.to_string(),
                problem,
            };
            let Some(ke) = Ke::parse(&r.id) else {
                return Err(invalid("id", &r.id, "not a KE id (use KE-1 … KE-4)".into()));
            };
            if seen.contains(ke) {
                return Err(invalid("id", &r.id, format!("{ke} appears more than once")));
            }
            seen.insert(ke);
            let server = Some(r.server).filter(|s| !s.is_empty());
            if let Some(p) = &server {
                compile_ere(p).map_err(|e| invalid("server", p, e))?;
            }
            for p in &r.server_errors {
                if p.is_empty() {
                    return Err(invalid(
                        "server-errors",
                        p,
                        "an empty pattern would match every line".into(),
                    ));
                }
                compile_ere(p).map_err(|e| invalid("server-errors", p, e))?;
            }
            let mut client = Vec::with_capacity(r.client.len());
            for c in r.client {
                if c.signature.is_empty() {
                    return Err(invalid(
                        "client.signature",
                        "",
                        "an empty signature would match every message".into(),
                    ));
                }
                client.push(ClientSignature {
                    signature: c.signature,
                    error: c.error,
                });
            }
            kes[ke.index()] = KeSignatures {
                ke,
                title: r.title.unwrap_or_else(|| ke.meaning().to_string()),
                server,
                server_errors: r.server_errors,
                client,
            };
        }
        Ok(Signatures {
            kes,
            source: path.display().to_string(),
        })
    }

    /// Reads and parses a user signatures file.
    pub fn load(path: &Path) -> Result<Signatures, SignaturesError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignaturesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// `embedded` or the path the signatures were read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn get(&self, ke: Ke) -> &KeSignatures {
        &self.kes[ke.index()]
    }

    /// All four KEs in order.
    pub fn iter(&self) -> impl Iterator<Item = &KeSignatures> {
        self.kes.iter()
    }

    pub fn title(&self, ke: Ke) -> &str {
        &self.get(ke).title
    }

    pub fn server_pattern(&self, ke: Ke) -> Option<&str> {
        self.get(ke).server.as_deref()
    }

    pub fn server_errors(&self, ke: Ke) -> &[String] {
        &self.get(ke).server_errors
    }

    pub fn client_signatures(&self, ke: Ke) -> &[ClientSignature] {
        &self.get(ke).client
    }
}
