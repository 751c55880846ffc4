//! When the database was read, against the capture's window. A poll taken
//! during the capture stands for the call. One taken after it (`analyze
//! --db-url` on a log) is the database's current state: the to-device
//! inbox drains whenever the device syncs, one-time keys are claimed and
//! uploaded, the fallback key is replaced. Within [`CURRENT_STATE_LIMIT`] of
//! the window the verdicts use it and say so; further away, what changes
//! with time is no evidence of the call.

use crate::app::App;
use chrono::{DateTime, Duration, Utc};

/// How far from the capture's window a poll may be and still be weighed
/// (as current state): the runbook reads the SQL right after stopping the
/// tail (§4 step 9), minutes after the call, and this leaves room for that.
pub const CURRENT_STATE_LIMIT_MIN: i64 = 15;

/// Where a poll falls against the capture's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    During,
    After(Duration),
    Before(Duration),
    /// The capture has no times to place it against.
    Unplaced,
}

impl Timing {
    /// A poll at `at` against the capture of `app`.
    pub fn of(app: &App, at: DateTime<Utc>) -> Timing {
        // Offline, the window is the evidence's own; without any time in
        // the evidence, the span would be when the files were read.
        if !app.wall_clock_span && app.window.0.is_none() {
            return Timing::Unplaced;
        }
        match app.span() {
            (Some(start), _) if at < start => Timing::Before(start - at),
            (_, Some(end)) if at > end => Timing::After(at - end),
            (Some(_), Some(_)) => Timing::During,
            _ => Timing::Unplaced,
        }
    }

    /// Close enough to the capture to be weighed.
    pub fn timely(self) -> bool {
        let limit = Duration::minutes(CURRENT_STATE_LIMIT_MIN);
        match self {
            Timing::During => true,
            Timing::After(gap) | Timing::Before(gap) => gap <= limit,
            Timing::Unplaced => false,
        }
    }
}

/// The last successful poll, placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbRead {
    pub at: DateTime<Utc>,
    pub timing: Timing,
}

impl DbRead {
    pub fn of(app: &App) -> Option<DbRead> {
        let at = app.db.last.as_ref()?.at;
        Some(DbRead {
            at,
            timing: Timing::of(app, at),
        })
    }

    pub fn timely(&self) -> bool {
        self.timing.timely()
    }

    /// `database read …`, saying how it stands to the call.
    pub fn clause(&self) -> String {
        let at = self.at.format("%Y-%m-%d %H:%M:%S UTC");
        let away = |gap: Duration, side: &str| {
            let stands = if self.timely() {
                "its current state then, not necessarily during the call".to_string()
            } else {
                format!(
                    "current state, too far from the call to stand for it (more than {CURRENT_STATE_LIMIT_MIN} min)"
                )
            };
            format!("database read {at}, {} {side}: {stands}", human(gap))
        };
        match self.timing {
            Timing::During => format!("database read during the capture, last at {at}"),
            Timing::After(gap) => away(gap, "after the capture ended"),
            Timing::Before(gap) => away(gap, "before the capture began"),
            Timing::Unplaced => {
                format!("database read {at}; the capture has no times to place it against")
            }
        }
    }
}

/// Whether a poll at `at` may be weighed.
pub fn timely_at(app: &App, at: DateTime<Utc>) -> bool {
    Timing::of(app, at).timely()
}

/// `45 s`, `7 min`, `3.5 h`, `158 days`.
pub fn human(d: Duration) -> String {
    let s = d.num_seconds();
    if s < 120 {
        format!("{s} s")
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else if s < 2 * 86_400 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else {
        format!("{} days", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::event::{Event, ServerBatch};

    fn app_with_window(from: i64, to: i64) -> App {
        let mut app = crate::verdicts::test_app();
        app.wall_clock_span = false;
        app.update(Event::Server(Box::new(ServerBatch {
            first_at: DateTime::from_timestamp(from, 0),
            last_at: DateTime::from_timestamp(to, 0),
            ..Default::default()
        })));
        app
    }

    #[test]
    fn a_poll_counts_within_the_limit_of_the_window_and_not_beyond() {
        let (from, to) = (1_782_842_400, 1_782_842_400 + 600);
        let app = app_with_window(from, to);
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(Timing::of(&app, at(from + 60)), Timing::During);
        let limit = CURRENT_STATE_LIMIT_MIN * 60;
        assert!(timely_at(&app, at(to + limit)));
        assert!(!timely_at(&app, at(to + limit + 1)));
        assert!(timely_at(&app, at(from - limit)));
        assert!(!timely_at(&app, at(from - limit - 1)));
        let late = DbRead {
            at: at(to + 14 * 60),
            timing: Timing::of(&app, at(to + 14 * 60)),
        };
        assert_eq!(
            late.clause(),
            "database read 2026-06-30 18:24:00 UTC, 14 min after the capture ended: its current state then, not necessarily during the call"
        );
        let old = at(to + 158 * 86_400);
        let old = DbRead {
            at: old,
            timing: Timing::of(&app, old),
        };
        assert!(
            old.clause()
                .contains("158 days after the capture ended: current state, too far"),
            "{}",
            old.clause()
        );
        // No times at all: nothing to place the poll against.
        let mut bare = crate::verdicts::test_app();
        bare.wall_clock_span = false;
        assert_eq!(Timing::of(&bare, at(from)), Timing::Unplaced);
        assert!(!Timing::Unplaced.timely());
    }
}
