//! The timeline strip: markers and checklist stamps over the last 10 minutes,
//! the same span the KE sparklines cover, oldest at the left, now at the right.

use super::style;
use crate::app::App;
use chrono::{DateTime, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The span shown, the same as the sparklines'.
pub const SPAN_SECS: i64 = 600;
const GUTTER: usize = 11;

/// A row of styled cells, turned into spans at the end.
struct Track(Vec<(char, Style)>);

impl Track {
    fn new(width: usize) -> Track {
        Track(vec![(' ', Style::default()); width])
    }
    /// Writes `s` from column `col`, clipped at the right edge.
    fn put(&mut self, col: usize, s: &str, st: Style) {
        for (k, ch) in s.chars().enumerate() {
            if let Some(cell) = self.0.get_mut(col + k) {
                *cell = (ch, st);
            }
        }
    }
    fn blank(&self, col: usize) -> bool {
        self.0.get(col).is_some_and(|(c, _)| *c == ' ')
    }
    /// A mark at its exact column, then its label where the cells are free:
    /// after the mark, or before it when it would run off the right edge.
    fn mark(&mut self, col: usize, sym: char, label: &str, st: Style) {
        let Some(cell) = self.0.get_mut(col) else {
            return;
        };
        *cell = (sym, st);
        let n = label.chars().count();
        let start = if col + 1 + n <= self.0.len() {
            col + 1
        } else if col > n {
            col - n
        } else {
            return;
        };
        if (start..start + n).all(|c| self.blank(c)) {
            self.put(start, label, st);
        }
    }
    fn line(self, label: &str) -> Line<'static> {
        let mut spans = vec![Span::styled(format!("{label:<GUTTER$}"), style::dim())];
        let mut cur = String::new();
        let mut cur_style = Style::default();
        for (ch, st) in self.0 {
            if st != cur_style && !cur.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut cur), cur_style));
            }
            cur_style = st;
            cur.push(ch);
        }
        spans.push(Span::styled(cur, cur_style));
        Line::from(spans)
    }
}

/// The column of `t` on a track `width` wide ending at `now`, if shown.
pub fn column(t: DateTime<Utc>, now: DateTime<Utc>, width: usize) -> Option<usize> {
    let start = now - Duration::seconds(SPAN_SECS);
    if t < start || t > now || width == 0 {
        return None;
    }
    let ms = (t - start).num_milliseconds();
    Some(
        ((ms as i128 * width as i128) / (SPAN_SECS as i128 * 1000)).min(width as i128 - 1) as usize,
    )
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, now: DateTime<Utc>) {
    if area.is_empty() {
        return;
    }
    let tw = (area.width as usize).saturating_sub(GUTTER);

    let mut marks = Track::new(tw);
    let mut live: Vec<_> = app.live_markers().collect();
    live.sort_by_key(|m| m.at);
    for m in live {
        if let Some(c) = column(m.at, now, tw) {
            marks.mark(c, '⚑', &m.label, style::marker());
        }
    }

    let mut stamps = Track::new(tw);
    for s in &app.checklist.steps {
        for st in &s.stamps {
            if let Some(c) = column(st.at, now, tw) {
                let sty = if st.done { style::ok() } else { style::error() };
                let sym = if st.done { '✓' } else { '✗' };
                stamps.mark(c, sym, &s.number.to_string(), sty);
            }
        }
    }

    let mut axis = Track::new(tw);
    axis.put(0, &"─".repeat(tw), style::dim());
    for minutes in (0..=10).step_by(2) {
        let t = now - Duration::seconds(SPAN_SECS - minutes * 60);
        let c = column(t, now, tw).unwrap_or(0);
        let label = if minutes == 10 {
            "now".to_string()
        } else {
            format!("┴-{}m", 10 - minutes)
        };
        let col = if minutes == 10 {
            tw.saturating_sub(3)
        } else {
            c
        };
        axis.put(col, &label, style::dim());
    }

    let lines = vec![
        marks.line(" markers"),
        stamps.line(" checklist"),
        axis.line(" last 10m"),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}
