//! Clock offset over the follow channel: `time` on the remote script's
//! stdin, `callcap:time <date +%s.%N>` back on stderr. Offset = remote minus
//! the local midpoint of the round trip; bound = half the round trip (plus
//! 500 ms when the remote `date` has no `%N`). The fastest of a few rounds wins.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// Measures the remote clock's offset on one follow channel.
#[derive(Default)]
pub(crate) struct OffsetProbe {
    /// When the next request is due (`None`: not before the file is open).
    pub due: Option<Instant>,
    pending: Option<(Instant, DateTime<Utc>)>,
    samples: Vec<(Duration, f64, u64)>,
}

const CLOCK_SAMPLES: usize = 3;
const CLOCK_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl OffsetProbe {
    /// Whether a request should be sent now (it is then counted as sent).
    pub fn poll(&mut self) -> bool {
        let now = Instant::now();
        if let Some((sent, _)) = self.pending {
            if sent.elapsed() > CLOCK_REPLY_TIMEOUT {
                self.pending = None;
                self.due = Some(now + CLOCK_REPLY_TIMEOUT);
            }
            return false;
        }
        match self.due {
            Some(d) if d <= now => {
                self.pending = Some((now, Utc::now()));
                true
            }
            _ => false,
        }
    }

    /// Records a reply; `Some((offset_ms, bound_ms))` once a round is complete.
    pub fn reply(
        &mut self,
        remote_unix: f64,
        slack_ms: u64,
        interval: Duration,
    ) -> Option<(i64, u64)> {
        let (sent, sent_wall) = self.pending.take()?;
        let rtt = sent.elapsed();
        let local_mid = sent_wall.timestamp_micros() as f64 / 1000.0 + rtt.as_secs_f64() * 500.0;
        let offset = remote_unix * 1000.0 - local_mid;
        self.samples.push((rtt, offset, slack_ms));
        if self.samples.len() < CLOCK_SAMPLES {
            self.due = Some(Instant::now());
            return None;
        }
        let best = self.samples.drain(..).min_by_key(|(rtt, _, _)| *rtt)?;
        self.due = Some(Instant::now() + interval);
        let bound = (best.0.as_secs_f64() * 500.0).ceil() as u64 + best.2;
        Some((best.1.round() as i64, bound.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_takes_the_fastest_of_three() {
        let mut c = OffsetProbe {
            due: Some(Instant::now()),
            pending: None,
            samples: Vec::new(),
        };
        let mut result = None;
        for _ in 0..CLOCK_SAMPLES {
            assert!(c.poll());
            let remote = Utc::now().timestamp_micros() as f64 / 1e6 + 2.0;
            result = c.reply(remote, 0, Duration::from_secs(300));
        }
        let (offset, bound) = result.unwrap_or((0, 0));
        assert!((offset - 2000).abs() <= 5, "{offset}");
        assert!((1..50).contains(&bound), "{bound}");
        assert!(!c.poll(), "next round only after the interval");
    }
}
