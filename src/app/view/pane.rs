//! Scrolling, following, filtering and searching of one KE pane, shared by
//! the view (which moves the anchor) and the renderer (which draws the window).
//!
//! A paused pane is anchored to the sequence number of its bottom line (see
//! [`App::pane_pushed`]), so new lines arriving or old lines leaving the ring
//! do not move what the operator is reading.

use crate::app::App;
use chrono::{DateTime, Utc};

/// Follow state of one KE pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneScroll {
    /// Show the newest lines as they arrive.
    pub follow: bool,
    /// While paused: sequence number of the bottom line shown.
    pub anchor: u64,
}

impl Default for PaneScroll {
    fn default() -> Self {
        PaneScroll {
            follow: true,
            anchor: 0,
        }
    }
}

/// Search state of one KE pane. Matches are recomputed from the pane's lines
/// when needed (lines keep arriving, so a stored list would go stale).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaneSearch {
    pub query: String,
    /// Sequence number of the current match.
    pub current: Option<u64>,
}

/// One row of a KE pane: a captured line or a marker rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Index into `app.panes[i]`.
    Line(usize),
    /// Index into `app.markers`.
    Marker(usize),
}

/// What a KE pane shows at a given height.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub rows: Vec<Row>,
    /// Lines below the window (paused only).
    pub new_below: usize,
    /// Lines that pass the tracked-only filter.
    pub visible: usize,
}

/// Sequence number of the oldest line still in pane `i`.
pub fn seq_base(app: &App, i: usize) -> u64 {
    app.pane_pushed[i].saturating_sub(app.panes[i].len() as u64)
}

pub fn seq_of(app: &App, i: usize, index: usize) -> u64 {
    seq_base(app, i) + index as u64
}

/// Indices (into `app.panes[i]`) of the lines shown, in order.
pub fn visible_lines(app: &App, i: usize, tracked_only: bool) -> Vec<usize> {
    app.panes[i]
        .iter()
        .enumerate()
        .filter(|(_, l)| !tracked_only || l.tracked)
        .map(|(k, _)| k)
        .collect()
}

/// Position in `vis` of the bottom line: the newest when following, else the
/// newest at or before the anchor (the oldest if the anchor left the ring).
pub fn bottom_pos(app: &App, i: usize, scroll: &PaneScroll, vis: &[usize]) -> Option<usize> {
    if vis.is_empty() {
        return None;
    }
    if scroll.follow {
        return Some(vis.len() - 1);
    }
    let base = seq_base(app, i);
    let n = vis.partition_point(|&k| base + k as u64 <= scroll.anchor);
    Some(n.saturating_sub(1))
}

/// Whether `text` contains `query`, ignoring ASCII case.
pub fn contains_ci(text: &str, query: &str) -> bool {
    !query.is_empty() && find_ci(text, query, 0).is_some()
}

/// Byte offset of the next ASCII-case-insensitive match at or after `from`.
/// ASCII folding keeps byte offsets valid for highlighting.
pub fn find_ci(text: &str, query: &str, from: usize) -> Option<usize> {
    let (t, q) = (text.as_bytes(), query.as_bytes());
    if q.is_empty() || t.len() < q.len() {
        return None;
    }
    (from..=t.len() - q.len()).find(|&s| t[s..s + q.len()].eq_ignore_ascii_case(q))
}

/// Positions in `vis` of the lines matching `query`.
pub fn matches(app: &App, i: usize, vis: &[usize], query: &str) -> Vec<usize> {
    if query.is_empty() {
        return Vec::new();
    }
    vis.iter()
        .enumerate()
        .filter(|(_, k)| contains_ci(&app.panes[i][**k].text, query))
        .map(|(p, _)| p)
        .collect()
}

/// Lines and marker rules in display order. A marker's rule goes before the
/// first line at or after its time, once a line before it has been seen, or
/// at the end when it is newer than every line; each marker is drawn once.
pub fn rows(app: &App, i: usize, vis: &[usize]) -> Vec<Row> {
    let mut markers: Vec<(DateTime<Utc>, usize)> = app
        .markers
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.deleted)
        .map(|(k, m)| (m.at, k))
        .collect();
    markers.sort();
    let mut out = Vec::with_capacity(vis.len() + markers.len());
    let mut next = 0;
    let mut seen_time = false;
    for &k in vis {
        if let Some(t) = app.panes[i][k].at {
            while next < markers.len() && markers[next].0 <= t {
                if seen_time {
                    out.push(Row::Marker(markers[next].1));
                }
                next += 1;
            }
            seen_time = true;
        }
        out.push(Row::Line(k));
    }
    out.extend(markers[next..].iter().map(|(_, k)| Row::Marker(*k)));
    out
}

/// The rows a pane of `height` text rows shows.
pub fn window(
    app: &App,
    i: usize,
    scroll: &PaneScroll,
    tracked_only: bool,
    height: usize,
) -> Window {
    let vis = visible_lines(app, i, tracked_only);
    let all = rows(app, i, &vis);
    let (end, new_below) = match bottom_pos(app, i, scroll, &vis) {
        Some(p) if !scroll.follow => {
            let k = vis[p];
            // Include the rules right after the bottom line: a marker newer
            // than every line must show when jumping to it.
            let at = all
                .iter()
                .position(|r| *r == Row::Line(k))
                .map_or(all.len(), |x| x + 1);
            let end = all[at..]
                .iter()
                .position(|r| matches!(r, Row::Line(_)))
                .map_or(all.len(), |x| at + x);
            (end, vis.len() - 1 - p)
        }
        _ => (all.len(), 0),
    };
    // Top-aligned when there is less than a screenful above the bottom.
    let end = end.max(height.min(all.len()));
    let start = end.saturating_sub(height);
    Window {
        rows: all[start..end].to_vec(),
        new_below,
        visible: vis.len(),
    }
}

impl PaneScroll {
    /// Moves the bottom line by `delta` lines (negative is up/older).
    /// Reaching the newest line resumes following.
    pub fn scroll_by(&mut self, app: &App, i: usize, vis: &[usize], delta: i64, page: usize) {
        let Some(p) = bottom_pos(app, i, self, vis) else {
            return;
        };
        let last = vis.len() - 1;
        // Scrolling above a screenful from the top shows nothing new.
        let min = page.saturating_sub(1).min(last);
        let q = (p as i64 + delta).clamp(min as i64, last as i64) as usize;
        if delta > 0 && q >= last {
            self.follow = true;
            return;
        }
        if q == p && self.follow {
            return;
        }
        self.follow = false;
        self.anchor = seq_of(app, i, vis[q]);
    }

    /// Pauses with the line at position `p` of `vis` near the middle.
    pub fn center_on(&mut self, app: &App, i: usize, vis: &[usize], p: usize, page: usize) {
        if vis.is_empty() {
            return;
        }
        let last = vis.len() - 1;
        let q = (p + page / 2)
            .min(last)
            .max(page.saturating_sub(1).min(last));
        self.follow = false;
        self.anchor = seq_of(app, i, vis[q]);
    }

    /// Pauses where the pane is now (or resumes following).
    pub fn toggle(&mut self, app: &App, i: usize, vis: &[usize]) {
        if self.follow {
            if let Some(&k) = vis.last() {
                self.follow = false;
                self.anchor = seq_of(app, i, k);
            }
        } else {
            self.follow = true;
        }
    }
}

/// Position in `vis` of the first line at or after `t` (`vis.len()` if none).
pub fn first_at_or_after(app: &App, i: usize, vis: &[usize], t: DateTime<Utc>) -> usize {
    vis.iter()
        .position(|&k| app.panes[i][k].at.is_some_and(|a| a >= t))
        .unwrap_or(vis.len())
}
