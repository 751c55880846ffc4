//! The runbook's four fault classes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the runbook's fault classes, KE-1 … KE-4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ke {
    #[serde(rename = "KE-1")]
    Ke1,
    #[serde(rename = "KE-2")]
    Ke2,
    #[serde(rename = "KE-3")]
    Ke3,
    #[serde(rename = "KE-4")]
    Ke4,
}

impl Ke {
    pub const ALL: [Ke; 4] = [Ke::Ke1, Ke::Ke2, Ke::Ke3, Ke::Ke4];

    /// 0-based index, for arrays of per-KE state.
    pub fn index(self) -> usize {
        match self {
            Ke::Ke1 => 0,
            Ke::Ke2 => 1,
            Ke::Ke3 => 2,
            Ke::Ke4 => 3,
        }
    }

    pub fn from_index(i: usize) -> Option<Ke> {
        Ke::ALL.get(i).copied()
    }

    /// `KE-1` … `KE-4`.
    pub fn name(self) -> &'static str {
        match self {
            Ke::Ke1 => "KE-1",
            Ke::Ke2 => "KE-2",
            Ke::Ke3 => "KE-3",
            Ke::Ke4 => "KE-4",
        }
    }

    /// A one-line meaning for pane titles and reports.
    pub fn meaning(self) -> &'static str {
        match self {
            Ke::Ke1 => "OTK upload conflicts",
            Ke::Ke2 => "call media keys not decrypting",
            Ke::Ke3 => "events missing `algorithm`",
            Ke::Ke4 => "MatrixRTC delayed-event timeouts",
        }
    }

    /// Accepts `KE-1`, `ke1`, `KE1`, `1`.
    pub fn parse(s: &str) -> Option<Ke> {
        let t: String = s
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase();
        match t.trim_start_matches("KE") {
            "1" => Some(Ke::Ke1),
            "2" => Some(Ke::Ke2),
            "3" => Some(Ke::Ke3),
            "4" => Some(Ke::Ke4),
            _ => None,
        }
    }
}

impl fmt::Display for Ke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small set of KEs (a line can match several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeSet(pub u8);

impl KeSet {
    pub fn insert(&mut self, ke: Ke) {
        self.0 |= 1 << ke.index();
    }
    pub fn contains(self, ke: Ke) -> bool {
        self.0 & (1 << ke.index()) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Ke> {
        Ke::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// Per-KE counters.
pub type PerKe<T> = [T; 4];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_operators_use() {
        assert_eq!(Ke::parse("KE-1"), Some(Ke::Ke1));
        assert_eq!(Ke::parse("ke4"), Some(Ke::Ke4));
        assert_eq!(Ke::parse("3"), Some(Ke::Ke3));
        assert_eq!(Ke::parse("KE-5"), None);
        assert_eq!(serde_json::to_string(&Ke::Ke2).ok().as_deref(), Some("\"KE-2\""));
    }

    #[test]
    fn keset_holds_several() {
        let mut s = KeSet::default();
        s.insert(Ke::Ke1);
        s.insert(Ke::Ke4);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Ke::Ke1, Ke::Ke4]);
        assert!(!s.contains(Ke::Ke2));
    }
}
