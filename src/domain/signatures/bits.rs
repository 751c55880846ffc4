//! The patterns by bit, for lines the literals decide alone.

use super::{ACCESS, ERRORS, MAX_LITERAL_PATTERNS, OTK_UPLOAD, Pattern, SECRET, TO_DEVICE_TRACE};

/// Which patterns (bit i: pattern i) have a regex, have no literal, and
/// stand for what.
#[derive(Debug, Default)]
pub(super) struct PatternBits {
    /// Whether every pattern has a bit (at most 64 patterns).
    pub(super) complete: bool,
    pub(super) regex: u64,
    pub(super) no_literals: u64,
    pub(super) kes: [u64; 4],
    pub(super) access: u64,
    pub(super) to_device_trace: u64,
    pub(super) otk_upload: u64,
    pub(super) secret: u64,
    /// Error patterns of each KE.
    pub(super) errors: [u64; 4],
}

impl PatternBits {
    pub(super) fn new(patterns: &[Pattern]) -> PatternBits {
        let mut b = PatternBits {
            complete: patterns.len() <= MAX_LITERAL_PATTERNS,
            ..PatternBits::default()
        };
        for (i, p) in patterns.iter().enumerate().take(MAX_LITERAL_PATTERNS) {
            let bit = 1u64 << i;
            if p.regex.is_some() {
                b.regex |= bit;
            }
            if !p.has_literals {
                b.no_literals |= bit;
            }
            match p.slot {
                ACCESS => b.access |= bit,
                TO_DEVICE_TRACE => b.to_device_trace |= bit,
                OTK_UPLOAD => b.otk_upload |= bit,
                SECRET => b.secret |= bit,
                s if s < ACCESS => b.kes[s] |= bit,
                s => {
                    if let Some(e) = b.errors.get_mut(s - ERRORS) {
                        *e |= bit;
                    }
                }
            }
        }
        b
    }
}
