//! Homeserver stalls, read from the log alone. Synapse times a request from
//! the moment it has read it, so a stalled process or reactor (SIGSTOP, a
//! long GC pause, a blocked event loop) shows healthy request times while
//! its clients time out. What the log does show is the stall itself: no
//! record for longer than the client's restart timeout, then a burst of
//! records when the process resumes and works off what queued up.
//!
//! The rule: two consecutive timestamped records more than the threshold
//! apart are a *silence*; the records within [`BURST_WINDOW_MS`] of the
//! first record after it (that one included) are its *burst*; a silence
//! whose burst has at least [`MIN_BURST`] records is a *stall*. Continuation
//! lines (no timestamp of their own) are not records.

use super::synapse_log::parse_timestamp_prefix;

/// How far from the first record after a silence a record still belongs to
/// its burst.
pub const BURST_WINDOW_MS: i64 = 1_000;
/// Records a burst needs for its silence to be a stall: a stalled server
/// resumes with a queue of work; a silence ended by a record or two is
/// more likely an idle one.
pub const MIN_BURST: u32 = 3;

/// A stall on the log's own clock: milliseconds of its local time read as
/// if it were UTC (only differences matter here; the capture converts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// The last record before the silence.
    pub from_ms: i64,
    /// The first record after it.
    pub to_ms: i64,
    /// 1-based line number of that first record.
    pub line_no: u64,
    /// Records within [`BURST_WINDOW_MS`] of `to_ms`, the first included.
    pub burst: u32,
    /// The burst holds a delayed-event restart access line.
    pub delayed_restart: bool,
}

/// Finds stalls record by record. A stall is known only once a record past
/// its burst window arrives (or the input ends), so one can span chunks:
/// the silence whose burst is still being counted waits here.
#[derive(Debug, Clone)]
pub struct StallDetector {
    threshold_ms: i64,
    last_ms: Option<i64>,
    open: Option<Stall>,
}

/// Milliseconds of a record's `YYYY-MM-DD HH:MM:SS,mmm` prefix (its local
/// time read as if it were UTC). Consecutive records mostly share their
/// second: the date and time are parsed once per second, the milliseconds
/// per line.
#[derive(Debug, Clone, Default)]
pub struct RecordClock {
    /// The last parsed `YYYY-MM-DD HH:MM:SS` and its milliseconds.
    second: Option<([u8; 19], i64)>,
}

impl RecordClock {
    /// `None` for a line that is not a record (a continuation line).
    pub fn millis(&mut self, line: &[u8]) -> Option<i64> {
        // Fixed-size arrays: the compare is a few word loads, not a call.
        if let Some((prefix, base)) = &self.second
            && let Some(b) = line.first_chunk::<23>()
            && b.first_chunk::<19>() == Some(prefix)
            && b[19] == b','
            && let Some(ms) = three_digits(&b[20..23])
        {
            return Some(base + ms);
        }
        let t = parse_timestamp_prefix(line)?;
        let ms = t.and_utc().timestamp_millis();
        // Parsed, so the line holds 23 bytes and three digits of millis.
        if let Some(b) = line.get(..23)
            && let Ok(prefix) = <[u8; 19]>::try_from(&b[..19])
            && let Some(frac) = three_digits(&b[20..23])
        {
            self.second = Some((prefix, ms - frac));
        }
        Some(ms)
    }
}

fn three_digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

impl StallDetector {
    /// Silences longer than `threshold_ms` (the client's restart timeout).
    pub fn new(threshold_ms: u32) -> StallDetector {
        StallDetector {
            threshold_ms: i64::from(threshold_ms),
            last_ms: None,
            open: None,
        }
    }

    pub fn threshold_ms(&self) -> i64 {
        self.threshold_ms
    }

    /// One timestamped record. Returns the stall this record completes.
    pub fn record(&mut self, at_ms: i64, line_no: u64, delayed_restart: bool) -> Option<Stall> {
        let silence_from = self.last_ms.filter(|last| at_ms - last > self.threshold_ms);
        self.last_ms = Some(at_ms);
        if let Some(from_ms) = silence_from {
            // A new silence ends the burst being counted, whatever its size.
            let done = self.finish();
            self.open = Some(Stall {
                from_ms,
                to_ms: at_ms,
                line_no,
                burst: 1,
                delayed_restart,
            });
            return done;
        }
        match &mut self.open {
            Some(open) if (at_ms - open.to_ms).abs() <= BURST_WINDOW_MS => {
                open.burst += 1;
                open.delayed_restart |= delayed_restart;
                None
            }
            Some(_) => self.finish(),
            None => None,
        }
    }

    /// The input ended: the burst being counted is complete as it stands.
    pub fn finish(&mut self) -> Option<Stall> {
        self.open.take().filter(|s| s.burst >= MIN_BURST)
    }

    /// Feeds records in order: `(line_no, ms)`, 1-based line numbers.
    /// `restart_lines` are the delayed-event restart access lines among
    /// them, ascending. Appends the stalls they complete to `out`.
    pub fn feed(
        &mut self,
        records: impl IntoIterator<Item = (u64, i64)>,
        restart_lines: &[u64],
        out: &mut Vec<Stall>,
    ) {
        let mut restarts = restart_lines.iter().copied().peekable();
        for (line_no, at_ms) in records {
            while restarts.next_if(|&r| r < line_no).is_some() {}
            let restart = restarts.next_if_eq(&line_no).is_some();
            if let Some(s) = self.record(at_ms, line_no, restart) {
                out.push(s);
            }
        }
    }
}

/// Calls `f(start, line)` for every line of `buf` (without its newline; a
/// last line without newline counts).
pub fn for_each_line(buf: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut start = 0;
    let unterminated = (!buf.is_empty() && !buf.ends_with(b"\n")).then_some(buf.len());
    for end in memchr::memchr_iter(b'\n', buf).chain(unterminated) {
        f(start, &buf[start..end]);
        start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds every record of `buf` (lines; the first is line
    /// `lines_before + 1`, a last one without newline counts) and appends
    /// the stalls they complete to `out`; returns the number of lines (what
    /// the capture does across its scanner threads, on one buffer).
    fn scan(
        d: &mut StallDetector,
        buf: &[u8],
        lines_before: u64,
        restart_lines: &[u64],
        out: &mut Vec<Stall>,
    ) -> u64 {
        let mut clock = RecordClock::default();
        let mut records = Vec::new();
        let mut lines = 0u64;
        for_each_line(buf, |_, line| {
            lines += 1;
            if let Some(ms) = clock.millis(line) {
                records.push((lines_before + lines, ms));
            }
        });
        d.feed(records, restart_lines, out);
        lines
    }

    /// Feeds `(ms, restart)` records as lines 1, 2, …; returns the stalls.
    fn run(d: &mut StallDetector, first_line: u64, records: &[(i64, bool)]) -> Vec<Stall> {
        records
            .iter()
            .zip(first_line..)
            .filter_map(|(&(ms, restart), n)| d.record(ms, n, restart))
            .collect()
    }

    fn plain(ms: &[i64]) -> Vec<(i64, bool)> {
        ms.iter().map(|&m| (m, false)).collect()
    }

    #[test]
    fn a_silence_longer_than_the_threshold_with_a_burst_of_three_is_a_stall() {
        let mut d = StallDetector::new(2_000);
        let found = run(&mut d, 1, &plain(&[0, 500, 6_500, 6_600, 7_400, 9_000]));
        assert_eq!(
            found,
            vec![Stall {
                from_ms: 500,
                to_ms: 6_500,
                line_no: 3,
                burst: 3,
                delayed_restart: false,
            }]
        );
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn a_silence_at_or_below_the_threshold_is_none() {
        let mut d = StallDetector::new(2_000);
        // Exactly the threshold is not longer than it.
        let found = run(&mut d, 1, &plain(&[0, 2_000, 2_010, 2_020, 5_000]));
        assert_eq!(found, vec![]);
        assert_eq!(d.finish(), None);
        let mut d = StallDetector::new(2_000);
        let found = run(&mut d, 1, &plain(&[0, 2_001, 2_010, 2_020, 5_100]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line_no, 2);
    }

    #[test]
    fn a_burst_of_two_is_an_idle_server_waking_up_not_a_stall() {
        let mut d = StallDetector::new(2_000);
        // Two records within 1 s after the silence, the third 1.001 s on.
        let found = run(&mut d, 1, &plain(&[0, 6_000, 6_900, 7_001, 7_100]));
        assert_eq!(found, vec![]);
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn a_restart_in_the_burst_is_noted_one_after_it_is_not() {
        let mut d = StallDetector::new(2_000);
        let found = run(
            &mut d,
            10,
            &[
                (0, false),
                (6_000, false),
                (6_000, false),
                (6_004, true),
                (7_500, true),
            ],
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].delayed_restart);
        assert_eq!((found[0].line_no, found[0].burst), (11, 3));
        let mut d = StallDetector::new(2_000);
        let found = run(
            &mut d,
            1,
            &[
                (0, false),
                (6_000, false),
                (6_001, false),
                (6_002, false),
                (8_000, true),
            ],
        );
        assert!(!found[0].delayed_restart, "{found:?}");
    }

    #[test]
    fn a_burst_spanning_chunks_completes_in_the_later_one() {
        let mut d = StallDetector::new(2_000);
        let log = "2026-06-30 18:00:00,000 - a - 1 - INFO - - x\n\
                   2026-06-30 18:00:06,000 - a - 1 - INFO - - y\n\
                   Traceback (continuation, no record)\n";
        let mut out = Vec::new();
        assert_eq!(scan(&mut d, log.as_bytes(), 0, &[], &mut out), 3);
        assert!(out.is_empty());
        let log = "2026-06-30 18:00:06,300 - a - 1 - INFO - - z\n\
                   2026-06-30 18:00:06,900 - a - 1 - INFO - - r\n\
                   2026-06-30 18:00:09,000 - a - 1 - INFO - - later\n";
        assert_eq!(scan(&mut d, log.as_bytes(), 3, &[5], &mut out), 3);
        assert_eq!(out.len(), 1, "{out:?}");
        let s = out[0];
        assert_eq!((s.line_no, s.burst, s.to_ms - s.from_ms), (2, 3, 6_000));
        assert!(s.delayed_restart);
    }

    #[test]
    fn a_stall_at_the_end_of_the_input_is_flushed_by_finish() {
        let mut d = StallDetector::new(2_000);
        // The last line has no newline: it is still a record.
        let log = "2026-06-30 18:00:00,000 - a - 1 - INFO - - x\n\
                   2026-06-30 18:00:03,000 - a - 1 - INFO - - y\n\
                   2026-06-30 18:00:03,100 - a - 1 - INFO - - z\n\
                   2026-06-30 18:00:03,200 - a - 1 - INFO - - w";
        let mut out = Vec::new();
        assert_eq!(scan(&mut d, log.as_bytes(), 100, &[], &mut out), 4);
        assert!(out.is_empty());
        let s = d.finish();
        assert_eq!(s.map(|s| (s.line_no, s.burst)), Some((102, 3)));
        assert_eq!(d.finish(), None, "flushed once");
    }

    #[test]
    fn a_new_silence_inside_a_burst_ends_it() {
        // With a threshold under the burst window, the next silence can
        // start before the window closes: the first burst ends there.
        let mut d = StallDetector::new(500);
        let found = run(
            &mut d,
            1,
            &plain(&[0, 1_000, 1_100, 1_200, 1_800, 1_850, 1_900]),
        );
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line_no, found[0].burst), (2, 3));
        assert_eq!(d.finish().map(|s| (s.line_no, s.burst)), Some((5, 3)));
    }

    #[test]
    fn cached_seconds_give_the_same_millis_as_a_full_parse() {
        let lines: [&[u8]; 8] = [
            b"2026-06-30 18:00:00,000 - a",
            b"2026-06-30 18:00:00,999 - a",
            b"2026-06-30 18:00:00,5x9 - a",
            b"2026-06-30 18:00:00.123 - a",
            b"2026-06-30 18:00:00,12",
            b"2026-06-30 18:00:01,001 - a",
            b"2026-02-30 18:00:01,001 - a",
            b"2026-06-30 18:00:01,002",
        ];
        let mut c = RecordClock::default();
        for l in lines {
            let full = parse_timestamp_prefix(l).map(|t| t.and_utc().timestamp_millis());
            assert_eq!(c.millis(l), full, "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn a_record_far_back_in_time_is_not_part_of_the_burst() {
        let mut d = StallDetector::new(2_000);
        let found = run(&mut d, 1, &plain(&[0, 6_000, 6_100, -50_000, 6_200]));
        // -50 s ends the burst at two; 6.2 s after it is a silence of its own.
        assert_eq!(found, vec![]);
        assert_eq!(d.finish().map(|s| s.burst), None);
    }
}
