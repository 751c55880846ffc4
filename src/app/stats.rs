//! Counters whose memory does not grow with the number of lines: per-minute
//! buckets, first/last seen, and per-minute request latency.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Minutes since the epoch.
pub fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// 10-second buckets kept per KE for the sparklines: a little over the
/// 10 minutes shown, so memory stays flat however long the call runs.
pub const TEN_SECOND_BUCKETS: usize = 64;

/// 10-second periods since the epoch.
pub fn ten_seconds_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(10)
}

pub fn minute_start(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(m * 60, 0).unwrap_or_default()
}

/// Adds one to `key`'s count. Lines come in time order, so the newest
/// bucket is nearly always the one: it is tried before a search.
fn bump(counts: &mut BTreeMap<i64, u32>, key: i64) {
    match counts.last_entry() {
        Some(mut newest) if *newest.key() == key => *newest.get_mut() += 1,
        _ => *counts.entry(key).or_default() += 1,
    }
}

/// One KE's server or client occurrences.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occurrences {
    pub count: u64,
    pub errors: u64,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    /// Matches per minute (only minutes with matches).
    pub per_minute: BTreeMap<i64, u32>,
    /// Matches per 10 s, only the newest [`TEN_SECOND_BUCKETS`] periods.
    pub per_10s: BTreeMap<i64, u32>,
}

impl Occurrences {
    pub fn add(&mut self, at: Option<DateTime<Utc>>, error: bool) {
        self.count += 1;
        if error {
            self.errors += 1;
        }
        if let Some(t) = at {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
            bump(&mut self.per_minute, minute_of(t));
            bump(&mut self.per_10s, ten_seconds_of(t));
            while self.per_10s.len() > TEN_SECOND_BUCKETS {
                self.per_10s.pop_first();
            }
        }
    }

    /// Matches in each of the `n` 10-second periods ending with the one that
    /// holds `now`, oldest first (for sparklines).
    pub fn last_10s_buckets(&self, now: DateTime<Utc>, n: usize) -> Vec<u64> {
        let end = ten_seconds_of(now);
        let start = end - n as i64 + 1;
        let mut out = vec![0u64; n];
        for (&b, &c) in self.per_10s.range(start..=end) {
            out[(b - start) as usize] = c as u64;
        }
        out
    }

    /// Matches within the minute before `now`.
    pub fn rate_per_minute(&self, now: DateTime<Utc>) -> u32 {
        let m = minute_of(now);
        // The current partial minute plus the previous one, weighted, gives
        // a steadier number than either alone.
        let cur = self.per_minute.get(&m).copied().unwrap_or(0) as f64;
        let prev = self.per_minute.get(&(m - 1)).copied().unwrap_or(0) as f64;
        let frac = (now.timestamp().rem_euclid(60)) as f64 / 60.0;
        (cur + prev * (1.0 - frac)).round() as u32
    }
}

/// Per-minute latency of the homeserver's own requests, excluding long-polls.
/// Keeps an exact count at or above the restart timeout (for the decision)
/// and a log-scale histogram (for the displayed p99) until the minute is
/// closed: then only its p99 is kept, so a log spanning days holds a few
/// numbers per minute, not a histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinuteLatency {
    pub n: u32,
    pub at_or_above_timeout: u32,
    pub max_ms: u32,
    hist: Vec<(u16, u32)>,
    /// The p99 when the minute was closed (its histogram is gone).
    closed_p99: Option<u32>,
    /// `server/homeserver.log` lines of the first requests at or above the
    /// timeout (what makes the minute slow, for citing), without allocating;
    /// lines are numbered from 1, so 0 is a free slot.
    slow_lines: [u64; SLOW_LINES_KEPT],
    /// The delayed-event requests (`/delayed_events/…`) of the minute.
    pub delayed: DelayedLatency,
}

/// Slow requests cited per minute.
const SLOW_LINES_KEPT: usize = 3;

/// How fast the homeserver answered the delayed-event endpoints in a
/// minute: their count, how many reached the timeout, and the slowest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DelayedLatency {
    pub n: u32,
    pub at_or_above_timeout: u32,
    pub max_ms: u32,
    /// The line of the slowest one.
    pub max_line: u64,
}

fn bucket(ms: u32) -> u16 {
    if ms < 64 {
        return ms as u16;
    }
    let lz = 31 - ms.leading_zeros(); // floor(log2)
    let sub = (ms >> (lz - 5)) & 31; // 32 sub-buckets per doubling
    (64 + (lz - 6) * 32 + sub) as u16
}

fn bucket_low(b: u16) -> u32 {
    let b = b as u32;
    if b < 64 {
        return b;
    }
    let lz = (b - 64) / 32 + 6;
    let sub = (b - 64) % 32;
    (1 << lz) | (sub << (lz - 5))
}

impl MinuteLatency {
    pub fn add(&mut self, ms: u32, timeout_ms: u32) {
        self.n += 1;
        if ms >= timeout_ms {
            self.at_or_above_timeout += 1;
        }
        self.max_ms = self.max_ms.max(ms);
        if self.closed_p99.is_some() {
            return; // a late sample: counted, its p99 stays
        }
        let b = bucket(ms);
        match self.hist.binary_search_by_key(&b, |(k, _)| *k) {
            Ok(i) => self.hist[i].1 += 1,
            Err(i) => self.hist.insert(i, (b, 1)),
        }
    }

    /// [`MinuteLatency::add`] for the access line `line_no`, keeping the
    /// first few lines at or above the timeout.
    pub fn add_line(&mut self, ms: u32, timeout_ms: u32, line_no: u64) {
        self.add(ms, timeout_ms);
        if ms >= timeout_ms
            && let Some(free) = self.slow_lines.iter_mut().find(|l| **l == 0)
        {
            *free = line_no;
        }
    }

    /// The lines of the first requests at or above the timeout.
    pub fn slow_lines(&self) -> impl Iterator<Item = u64> + '_ {
        self.slow_lines.iter().copied().take_while(|l| *l > 0)
    }

    /// Counts a delayed-event request (it is counted in the minute's
    /// latency separately, with [`MinuteLatency::add_line`]).
    pub fn add_delayed(&mut self, ms: u32, timeout_ms: u32, line_no: u64) {
        let d = &mut self.delayed;
        d.n += 1;
        if ms >= timeout_ms {
            d.at_or_above_timeout += 1;
        }
        if d.n == 1 || ms > d.max_ms {
            d.max_ms = ms;
            d.max_line = line_no;
        }
    }

    /// Nearest-rank p99 is at or above the timeout, exactly.
    pub fn p99_at_or_above_timeout(&self) -> bool {
        if self.n == 0 {
            return false;
        }
        let rank = (self.n as u64 * 99).div_ceil(100);
        // Values below the timeout fill ranks 1..=below; p99 is at or above
        // the timeout when its rank lies past them.
        let below = (self.n - self.at_or_above_timeout) as u64;
        rank > below
    }

    /// The log has moved past this minute: keeps its p99 and frees the
    /// histogram. Samples that still arrive count in `n`, `max_ms` and the
    /// timeout count; the p99 stays as it was when closed.
    pub fn close(&mut self) {
        if self.closed_p99.is_none() {
            self.closed_p99 = Some(self.p99_ms());
            self.hist = Vec::new();
        }
    }

    /// Approximate nearest-rank p99 in ms (within ~3 %).
    pub fn p99_ms(&self) -> u32 {
        if let Some(p99) = self.closed_p99 {
            return p99;
        }
        if self.n == 0 {
            return 0;
        }
        let rank = (self.n as u64 * 99).div_ceil(100);
        let mut seen = 0u64;
        for (b, c) in &self.hist {
            seen += *c as u64;
            if seen >= rank {
                return bucket_low(*b).min(self.max_ms);
            }
        }
        self.max_ms
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ms in [
            0u32, 1, 63, 64, 65, 100, 1000, 1999, 2000, 2047, 5000, 60_000, 600_000,
        ] {
            let b = bucket(ms);
            assert!(b >= last);
            last = b;
            let low = bucket_low(b);
            assert!(low <= ms, "{ms}: low {low}");
            assert!(
                (ms - low) as f64 <= ms as f64 * 0.04 + 1.0,
                "{ms}: low {low}"
            );
        }
    }

    #[test]
    fn p99_decision_is_exact_at_the_threshold() {
        // Nearest rank: p99 of n samples is the ceil(0.99 n)-th smallest.
        let mut m = MinuteLatency::default();
        for _ in 0..99 {
            m.add(10, 2000);
        }
        m.add(2000, 2000);
        assert!(
            !m.p99_at_or_above_timeout(),
            "100 samples: p99 is the 99th smallest, 10 ms"
        );
        m.add(2500, 2000);
        // 101 samples: rank 100 is the first of the two slow ones.
        assert!(m.p99_at_or_above_timeout());
        assert!(m.p99_ms() >= 1900);
        let mut few = MinuteLatency::default();
        for _ in 0..98 {
            few.add(10, 2000);
        }
        few.add(2000, 2000);
        // 99 samples: rank 99 is the largest.
        assert!(few.p99_at_or_above_timeout());
    }

    #[test]
    fn a_closed_minute_keeps_its_p99_and_frees_its_histogram() {
        let mut m = MinuteLatency::default();
        for ms in 1..=1000 {
            m.add(ms, 2000);
        }
        let p99 = m.p99_ms();
        assert!((960..=990).contains(&p99), "{p99}");
        m.close();
        assert_eq!(m.hist.capacity(), 0);
        assert_eq!(m.p99_ms(), p99);
        // A late sample still counts; the p99 stays.
        m.add(5000, 2000);
        assert_eq!((m.n, m.max_ms, m.at_or_above_timeout), (1001, 5000, 1));
        assert_eq!((m.p99_ms(), m.hist.capacity()), (p99, 0));
    }

    #[test]
    fn occurrences_count_per_minute() {
        let mut o = Occurrences::default();
        let t = DateTime::from_timestamp(1_780_000_030, 0).unwrap();
        o.add(Some(t), true);
        o.add(Some(t), false);
        o.add(None, false);
        assert_eq!(o.count, 3);
        assert_eq!(o.errors, 1);
        assert_eq!(o.per_minute.values().sum::<u32>(), 2);
        assert_eq!(o.rate_per_minute(t), 2);
    }

    #[test]
    fn ten_second_buckets_stay_bounded_and_line_up_with_now() {
        let mut o = Occurrences::default();
        let t0 = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        for s in 0..2000 {
            o.add(Some(t0 + chrono::Duration::seconds(s)), false);
        }
        assert!(o.per_10s.len() <= TEN_SECOND_BUCKETS);
        let now = t0 + chrono::Duration::seconds(1999);
        let b = o.last_10s_buckets(now, 60);
        assert_eq!(b.len(), 60);
        assert_eq!(b[59], 10, "the newest period holds 1990..=1999");
        assert_eq!(b[0], 10);
        // A period older than everything kept is dropped, not miscounted.
        o.add(Some(t0), false);
        assert_eq!(o.last_10s_buckets(now, 60).iter().sum::<u64>(), 600);
    }
}
