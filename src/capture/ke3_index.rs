//! What a KE-3 rescan learns of a journaled server log, so the next one
//! reads only what may name its ids: the log in blocks of about 1 MiB of
//! whole lines, each with where it starts and a filter of the eight bytes
//! after each `$` in it (an event id is `$` and 43 characters, or
//! `$local:server`). A block whose filter cannot hold an id is not read
//! again; the lines past the last whole block are read on every rescan.

use chrono::{DateTime, Utc};

/// A block closes at the first line end past this many bytes.
pub(super) const BLOCK_BYTES: u64 = 1 << 20;
/// Filter bits a block (8 KiB): about 1 % false positives at 5,000 `$`s a
/// block (a storm log has 5,000 lines a MiB).
const FILTER_WORDS: usize = 1024;

/// Where reading a log starts: a byte offset at a line start, the lines
/// before it, and the time of the last line before it with one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Position {
    pub offset: u64,
    pub line: u64,
    pub last_at: Option<DateTime<Utc>>,
}

pub(super) struct Block {
    pub start: Position,
    /// Where the next block starts.
    pub end: Position,
    filter: Box<[u64]>,
}

/// One log's blocks, and where the unindexed rest begins.
#[derive(Default)]
pub(super) struct IdIndex {
    pub blocks: Vec<Block>,
    pub tail: Position,
    /// Lines read by all rescans (what the index saves shows here).
    pub lines_read: u64,
}

/// What an id is looked up by: the eight bytes after its `$` (`None`: too
/// short to look up, every block is read for it).
pub(super) fn key_of(id: &str) -> Option<u64> {
    let rest = id.as_bytes().strip_prefix(b"$")?;
    let k: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(k))
}

fn bits(key: u64) -> [usize; 3] {
    // splitmix64's finaliser: the three indexes from one well-mixed hash.
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let n = (FILTER_WORDS * 64) as u64;
    [
        (z % n) as usize,
        ((z >> 21) % n) as usize,
        ((z >> 42) % n) as usize,
    ]
}

/// A block being read: its start and filter.
pub(super) struct Building {
    pub start: Position,
    filter: Box<[u64]>,
}

impl Building {
    pub fn new(start: Position) -> Building {
        Building {
            start,
            filter: vec![0u64; FILTER_WORDS].into_boxed_slice(),
        }
    }

    /// Adds the keys of the `$`s in a line.
    pub fn add_line(&mut self, line: &[u8]) {
        for p in memchr::memchr_iter(b'$', line) {
            if let Some(k) = line.get(p + 1..p + 9) {
                let mut a = [0u8; 8];
                a.copy_from_slice(k);
                for b in bits(u64::from_le_bytes(a)) {
                    self.filter[b / 64] |= 1 << (b % 64);
                }
            }
        }
    }

    pub fn close(self, end: Position) -> Block {
        Block {
            start: self.start,
            end,
            filter: self.filter,
        }
    }
}

impl Block {
    /// Whether a line of the block may name an id with one of `keys`.
    pub fn may_hold(&self, keys: &[Option<u64>]) -> bool {
        keys.iter().any(|k| match k {
            None => true,
            Some(k) => bits(*k)
                .iter()
                .all(|b| self.filter[b / 64] & (1 << (b % 64)) != 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_the_ids_its_lines_name_and_few_others() {
        let mut b = Building::new(Position::default());
        // Event ids are random: what tells them apart is at their start.
        let id = |i: u64, tag: &str| {
            format!(
                "${:016x}{tag}{:020}",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i
            )
        };
        let named: Vec<String> = (0..5000).map(|i| id(i, "named00")).collect();
        for id in &named {
            b.add_line(format!("... Persisted event {id} in room !r:x").as_bytes());
        }
        b.add_line(b"short $abc and a $ at the end $");
        let block = b.close(Position::default());
        for id in &named {
            assert!(block.may_hold(&[key_of(id)]), "{id}");
        }
        let others = (0..10_000)
            .filter(|i| block.may_hold(&[key_of(&id(i + 1_000_000, "other00"))]))
            .count();
        assert!(others < 300, "{others} of 10000 false positives");
        // An id too short to look up is looked for everywhere.
        assert_eq!(key_of("$abc"), None);
        assert!(block.may_hold(&[None]));
        assert_eq!(key_of("no-dollar"), None);
    }
}
