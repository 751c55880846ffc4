//! Prometheus histograms as Synapse exports them (cumulative counts by upper
//! bound `le`), the increase between two readings, and the quantile
//! Prometheus's `histogram_quantile` computes: linear within the bucket the
//! rank falls in, and never above the highest finite bound (a rank in the
//! `+Inf` bucket gives that bound, "at least" it).

use serde::{Deserialize, Serialize};

/// Requests by how long they took: `cumulative[i]` took at most `le[i]`
/// seconds, `total` (the `+Inf` bucket) is every request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Finite upper bounds in seconds, ascending.
    pub le: Vec<f64>,
    pub cumulative: Vec<f64>,
    pub total: f64,
}

/// A quantile read from a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    pub seconds: f64,
    /// The rank fell in the `+Inf` bucket: the value is the highest finite
    /// bound, and the true one is at least that.
    pub capped: bool,
}

/// What a minute's histogram says about a timeout, by its buckets alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The p99 is at or above the timeout for certain, with at least
    /// `min_slow` requests known to have taken that long.
    Slow,
    /// The p99 is below the timeout for certain, over at least
    /// `min_requests` requests.
    Fast,
    /// Too few requests, or the p99 falls in a bucket that straddles the
    /// timeout.
    Unknown,
}

impl Histogram {
    /// From `(le, cumulative count)` pairs in any order, `+Inf` among them.
    /// `None` without a `+Inf` bucket or with a count that is not a finite,
    /// non-negative number (NaN, a negative increase).
    pub fn from_buckets(mut buckets: Vec<(f64, f64)>) -> Option<Histogram> {
        if buckets
            .iter()
            .any(|(le, c)| le.is_nan() || !c.is_finite() || *c < 0.0)
        {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets.dedup_by(|b, a| {
            // The same bound twice (two series summed by hand): add them.
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        let (inf, finite): (Vec<_>, Vec<_>) =
            buckets.into_iter().partition(|(le, _)| le.is_infinite());
        let total = inf.first().filter(|(le, _)| *le > 0.0)?.1;
        let mut h = Histogram {
            le: finite.iter().map(|(le, _)| *le).collect(),
            cumulative: finite.iter().map(|(_, c)| *c).collect(),
            total,
        };
        h.make_monotonic();
        Some(h)
    }

    /// Counts that dip (floating-point noise in a Prometheus `increase`)
    /// are raised to the bucket below, as Prometheus does.
    fn make_monotonic(&mut self) {
        let mut max = 0.0f64;
        for c in &mut self.cumulative {
            max = max.max(*c);
            *c = max;
        }
        self.total = self.total.max(max);
    }

    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }

    /// The cumulative count at bound `le` (0 below the first bound, the
    /// count of the largest bound under it when `le` is not a bound).
    fn at(&self, le: f64) -> f64 {
        if le.is_infinite() {
            return self.total;
        }
        let i = self.le.partition_point(|b| *b <= le);
        if i == 0 { 0.0 } else { self.cumulative[i - 1] }
    }

    /// Adds another histogram, bound by bound (Synapse uses the same
    /// buckets everywhere; a bound only one of them has takes the other's
    /// count at the bound below it).
    pub fn add(&mut self, other: &Histogram) {
        if other.le == self.le {
            for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
                *a += b;
            }
            self.total += other.total;
            return;
        }
        let mut bounds: Vec<f64> = self.le.iter().chain(&other.le).copied().collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let cumulative = bounds.iter().map(|&b| self.at(b) + other.at(b)).collect();
        *self = Histogram {
            le: bounds,
            cumulative,
            total: self.total + other.total,
        };
        self.make_monotonic();
    }

    /// What was added since `earlier`; `None` when a count went down (the
    /// counter was reset: the process restarted).
    pub fn since(&self, earlier: &Histogram) -> Option<Histogram> {
        if self.total < earlier.total {
            return None;
        }
        let mut cumulative = Vec::with_capacity(self.le.len());
        for (i, &le) in self.le.iter().enumerate() {
            let d = self.cumulative[i] - earlier.at(le);
            if d < 0.0 {
                return None;
            }
            cumulative.push(d);
        }
        let mut h = Histogram {
            le: self.le.clone(),
            cumulative,
            total: self.total - earlier.total,
        };
        h.make_monotonic();
        Some(h)
    }

    /// The `q` quantile (0..=1), as `histogram_quantile` computes it;
    /// `None` without requests.
    pub fn quantile(&self, q: f64) -> Option<Quantile> {
        if self.is_empty() || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.total;
        let i = self.cumulative.partition_point(|c| *c < rank);
        if i == self.le.len() {
            // The +Inf bucket: the highest finite bound, "at least".
            return Some(Quantile {
                seconds: self.le.last().copied().unwrap_or(0.0),
                capped: true,
            });
        }
        let (start, below) = if i == 0 {
            (0.0f64.min(self.le[0]), 0.0)
        } else {
            (self.le[i - 1], self.cumulative[i - 1])
        };
        let in_bucket = self.cumulative[i] - below;
        let end = self.le[i];
        let seconds = if in_bucket <= 0.0 {
            end
        } else {
            start + (end - start) * ((rank - below) / in_bucket)
        };
        Some(Quantile {
            seconds,
            capped: false,
        })
    }

    /// The smallest bound at or above `seconds`: requests over it are known
    /// to have taken at least `seconds`.
    pub fn bound_at_or_above(&self, seconds: f64) -> Option<f64> {
        self.le.iter().copied().find(|b| *b >= seconds)
    }

    /// Requests known to have taken at least `seconds` (those over the
    /// smallest bound at or above it; a request in a bucket that straddles
    /// `seconds` is not counted).
    pub fn known_at_or_above(&self, seconds: f64) -> f64 {
        match self.bound_at_or_above(seconds) {
            Some(b) => self.total - self.at(b),
            None => 0.0,
        }
    }

    /// Requests known to have taken less than `seconds` (those at or under
    /// the largest bound below it).
    pub fn known_below(&self, seconds: f64) -> f64 {
        match self.le.iter().rev().find(|b| **b < seconds) {
            Some(b) => self.at(*b),
            None => 0.0,
        }
    }

    /// Slow, fast or unknown against `timeout` seconds, by the buckets
    /// only: the p99 request must lie above the timeout's bucket (or under
    /// it) for certain, with enough requests behind it.
    pub fn judge(&self, timeout: f64, min_slow: f64, min_requests: f64) -> Judgement {
        if self.is_empty() {
            return Judgement::Unknown;
        }
        let rank = 0.99 * self.total;
        let slow = self.known_at_or_above(timeout);
        // Everything that may be under the timeout ranks below the p99.
        if self.total - slow < rank && slow >= min_slow {
            Judgement::Slow
        } else if self.known_below(timeout) >= rank && self.total >= min_requests {
            Judgement::Fast
        } else {
            Judgement::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Synapse's (prometheus_client's default) buckets.
    pub const SYNAPSE_LE: [f64; 14] = [
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ];

    /// `per_bucket[i]` requests in bucket `i` (the last one is +Inf).
    fn h(per_bucket: &[f64]) -> Histogram {
        let mut c = 0.0;
        let mut b = Vec::new();
        for (i, n) in per_bucket.iter().enumerate() {
            c += n;
            b.push((SYNAPSE_LE.get(i).copied().unwrap_or(f64::INFINITY), c));
        }
        for le in SYNAPSE_LE.iter().skip(per_bucket.len()) {
            b.push((*le, c));
        }
        if per_bucket.len() <= SYNAPSE_LE.len() {
            b.push((f64::INFINITY, c));
        }
        Histogram::from_buckets(b).unwrap()
    }

    #[test]
    fn the_quantile_is_linear_within_its_bucket_as_prometheus_computes_it() {
        // 100 requests in (0.1, 0.25]: the p99 is 99 % of the way through.
        let x = h(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0]);
        let q = x.quantile(0.99).unwrap();
        assert!((q.seconds - (0.1 + 0.15 * 0.99)).abs() < 1e-9, "{q:?}");
        assert!(!q.capped);
        // 97 fast, 3 in (2.5, 5]: rank 99 is the second of those three.
        let mut b = vec![97.0];
        b.extend([0.0; 10]);
        b.push(3.0);
        let q = h(&b).quantile(0.99).unwrap();
        assert!(
            (q.seconds - (2.5 + 2.5 * (2.0 / 3.0))).abs() < 1e-9,
            "{q:?}"
        );
        // In the first bucket the lower edge is 0.
        let q = h(&[10.0]).quantile(0.5).unwrap();
        assert!((q.seconds - 0.0025).abs() < 1e-12);
    }

    #[test]
    fn a_rank_in_the_top_bucket_is_the_highest_bound_at_least_never_more() {
        let mut b = vec![0.0; 14];
        b.push(5.0);
        let q = h(&b).quantile(0.99).unwrap();
        assert_eq!(
            q,
            Quantile {
                seconds: 10.0,
                capped: true
            }
        );
        assert_eq!(Histogram::default().quantile(0.99), None);
    }

    #[test]
    fn since_subtracts_and_refuses_a_count_that_went_down() {
        let a = h(&[5.0, 5.0]);
        let b = h(&[7.0, 5.0, 1.0]);
        let d = b.since(&a).unwrap();
        assert_eq!(d.total, 3.0);
        assert_eq!(d.cumulative[0], 2.0);
        assert_eq!(d.cumulative[2], 3.0);
        assert_eq!(a.since(&b), None, "a reset is no negative increase");
    }

    #[test]
    fn adding_merges_bound_by_bound() {
        let mut a = h(&[1.0, 2.0]);
        a.add(&h(&[0.0, 0.0, 4.0]));
        assert_eq!(a.total, 7.0);
        assert_eq!(a.at(0.01), 3.0);
        assert_eq!(a.at(0.025), 7.0);
        // Other bounds: counts are taken at the bound below.
        let mut c = Histogram::from_buckets(vec![(1.0, 2.0), (f64::INFINITY, 3.0)]).unwrap();
        c.add(&Histogram::from_buckets(vec![(0.5, 1.0), (f64::INFINITY, 1.0)]).unwrap());
        assert_eq!(c.le, vec![0.5, 1.0]);
        assert_eq!(c.cumulative, vec![1.0, 3.0]);
        assert_eq!(c.total, 4.0);
    }

    #[test]
    fn nan_negative_or_no_inf_bucket_is_no_histogram() {
        assert_eq!(Histogram::from_buckets(vec![(1.0, 2.0)]), None);
        assert_eq!(
            Histogram::from_buckets(vec![(1.0, f64::NAN), (f64::INFINITY, 2.0)]),
            None
        );
        assert_eq!(
            Histogram::from_buckets(vec![(1.0, -1.0), (f64::INFINITY, 2.0)]),
            None
        );
        assert_eq!(
            Histogram::from_buckets(vec![(f64::INFINITY, f64::INFINITY)]),
            None
        );
    }

    #[test]
    fn the_judgement_needs_certainty_and_enough_requests() {
        // 2 s timeout: 2.5 s is the first bound at or above it, 1 s the last under.
        let slow3 = {
            let mut b = vec![50.0];
            b.extend([0.0; 10]);
            b.push(3.0);
            h(&b)
        };
        assert_eq!(slow3.judge(2.0, 3.0, 20.0), Judgement::Slow);
        assert_eq!(slow3.judge(2.0, 4.0, 20.0), Judgement::Unknown);
        // The p99 in (1, 2.5]: the buckets cannot say which side of 2 s.
        let straddle = {
            let mut b = vec![50.0];
            b.extend([0.0; 9]);
            b.push(3.0);
            h(&b)
        };
        assert_eq!(straddle.judge(2.0, 1.0, 1.0), Judgement::Unknown);
        let fast = h(&[25.0]);
        assert_eq!(fast.judge(2.0, 3.0, 20.0), Judgement::Fast);
        assert_eq!(fast.judge(2.0, 3.0, 30.0), Judgement::Unknown);
        assert_eq!(
            Histogram::default().judge(2.0, 3.0, 20.0),
            Judgement::Unknown
        );
    }
}
