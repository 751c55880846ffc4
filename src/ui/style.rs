//! The few colours the console uses, each with one meaning, and small text
//! helpers shared by the regions.
//!
//! - red: an error signature, a failed source, a count that means trouble
//! - yellow: needs attention (stalled, reconnecting, paused, growth)
//! - green: live, done, zero
//! - magenta: the operator's fault markers
//! - cyan: the focused pane and lines of the tracked users

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType};

pub fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}
pub fn error() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}
pub fn warn() -> Style {
    Style::default()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}
pub fn ok() -> Style {
    Style::default()
        .fg(Color::Green)
        .add_modifier(Modifier::BOLD)
}
pub fn marker() -> Style {
    Style::default()
        .fg(Color::Magenta)
        .add_modifier(Modifier::BOLD)
}
pub fn tracked() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}
/// Secondary text: hints and labels, never data the operator needs.
pub fn dim() -> Style {
    Style::default().fg(Color::Gray)
}
pub fn highlight() -> Style {
    Style::default()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}
pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
}

/// A count: green at zero, yellow when seen, red when errors were seen.
pub fn count(n: u64, errors: u64) -> Style {
    match (n, errors) {
        (0, _) => ok(),
        (_, 0) => warn(),
        _ => error(),
    }
}

/// A pane's frame: the focused one stands out.
pub fn pane_block<'a>(focused: bool) -> Block<'a> {
    let b = Block::bordered();
    if focused {
        b.border_type(BorderType::Thick).border_style(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        b.border_style(Style::default().fg(Color::DarkGray))
    }
}

pub fn hhmmss(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A short age: `12s`, `4m`, `1h05m`.
pub fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `HH:MM:SS` of a duration in seconds (hours can exceed 24).
pub fn clock_duration(secs: i64) -> String {
    let s = secs.max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// Cuts `s` to `width` characters, ending in `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Resamples `values` to `width` columns: columns that share a value repeat
/// it; of values that share a column the largest shows, so a steady rate
/// stays level and a single match stays visible.
pub fn resample(values: &[u64], width: usize) -> Vec<u64> {
    let n = values.len();
    if n == 0 || width == 0 {
        return vec![0; width];
    }
    (0..width)
        .map(|c| {
            let a = c * n / width;
            let b = ((c + 1) * n / width).max(a + 1).min(n);
            values[a..b].iter().copied().max().unwrap_or(0)
        })
        .collect()
}

/// One row of bars; any non-zero value shows at least the lowest bar.
pub fn spark(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let v = resample(values, width);
    let max = v.iter().copied().max().unwrap_or(0);
    v.iter()
        .map(|&x| {
            if x == 0 || max == 0 {
                ' '
            } else {
                BARS[((x * 8).div_ceil(max) as usize - 1).min(7)]
            }
        })
        .collect()
}

/// A `w` x `h` rectangle centred in `area`, shrunk to fit.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resample_keeps_a_steady_rate_level_and_repeats_when_widening() {
        let v = vec![2u64; 60];
        assert_eq!(resample(&v, 48), vec![2; 48]);
        let mut one = vec![0u64; 60];
        one[37] = 1;
        assert_eq!(resample(&one, 20).iter().sum::<u64>(), 1);
        assert_eq!(resample(&[1, 2], 4), vec![1, 1, 2, 2]);
    }

    #[test]
    fn spark_shows_a_single_match_and_leaves_silence_blank() {
        let s = spark(&[0, 1, 0, 100], 4);
        assert_eq!(s.chars().count(), 4);
        assert_eq!(s.chars().next(), Some(' '));
        assert_eq!(s.chars().nth(1), Some('▁'));
        assert_eq!(s.chars().nth(3), Some('█'));
    }

    #[test]
    fn ages_are_short() {
        let t = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        assert_eq!(age(t + chrono::Duration::seconds(12), t), "12s");
        assert_eq!(age(t + chrono::Duration::seconds(250), t), "4m");
        assert_eq!(age(t + chrono::Duration::seconds(3900), t), "1h05m");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
