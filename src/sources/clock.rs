//! The console's notion of "now": the wall clock when live, a virtual clock
//! running at `speed` from the recording's start when replaying.

use chrono::{DateTime, Utc};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Clock {
    Wall,
    Virtual {
        origin: DateTime<Utc>,
        started: Instant,
        speed: f64,
    },
}

impl Clock {
    pub fn virtual_from(origin: DateTime<Utc>, speed: f64) -> Clock {
        Clock::Virtual {
            origin,
            started: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Wall => Utc::now(),
            Clock::Virtual {
                origin,
                started,
                speed,
            } => {
                let ms = started.elapsed().as_secs_f64() * 1000.0 * speed;
                *origin + chrono::Duration::milliseconds(ms as i64)
            }
        }
    }

    /// How long to wait in real time until virtual time `t`.
    pub fn real_wait_until(&self, t: DateTime<Utc>) -> std::time::Duration {
        match self {
            Clock::Wall => (t - Utc::now()).to_std().unwrap_or_default(),
            Clock::Virtual { speed, .. } => {
                let ahead = (t - self.now()).num_milliseconds().max(0) as f64 / speed;
                std::time::Duration::from_millis(ahead as u64)
            }
        }
    }
}
