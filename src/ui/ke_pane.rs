//! One KE pane: title with the count, rate and age of the last match; a
//! sparkline of matches per 10 s over the last 10 minutes; the newest lines
//! (or a paused window) with marker rules and search highlights.

use super::style;
use crate::app::view::pane::{self, Row};
use crate::app::view::{Modal, Pane, ViewState};
use crate::app::{App, PaneLine};
use crate::domain::Ke;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The sparkline spans this many 10-second periods: 10 minutes.
pub const SPARK_PERIODS: usize = 60;

pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    view: &ViewState,
    ke: Ke,
    now: DateTime<Utc>,
) {
    if area.is_empty() {
        return;
    }
    let i = ke.index();
    let inner_w = area.width.saturating_sub(2) as usize;
    let query = active_query(view, i);
    let vis = pane::visible_lines(app, i, view.tracked_only);
    let found = pane::matches(app, i, &vis, query);

    let mut block = style::pane_block(view.focus == Pane::Ke(ke))
        .title(title(app, ke, now, inner_w))
        .title_bottom(Line::from(footer_left(app, view, i, &vis, &found)));
    let scroll = &view.scroll[i];
    let inner = block.inner(area);
    let win = pane::window(
        app,
        i,
        scroll,
        view.tracked_only,
        inner.height.saturating_sub(1) as usize,
    );
    let right = if scroll.follow {
        Span::styled(" ▶ live ", style::ok())
    } else {
        Span::styled(format!(" ⏸ paused · {} new ", win.new_below), style::warn())
    };
    block = block.title_bottom(Line::from(right).right_aligned());
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }

    let occ = (&app.server[i], &app.client[i]);
    let mut buckets = occ.0.last_10s_buckets(now, SPARK_PERIODS);
    for (b, c) in buckets
        .iter_mut()
        .zip(occ.1.last_10s_buckets(now, SPARK_PERIODS))
    {
        *b += c;
    }
    let spark_style = style::count(occ.0.count + occ.1.count, occ.0.errors + occ.1.errors);
    let spark = Line::styled(style::spark(&buckets, inner.width as usize), spark_style);
    frame.render_widget(Paragraph::new(spark), Rect { height: 1, ..inner });
    // KE-4 with [metrics]: the p99 per minute, access log beside Synapse's own.
    let strip = (ke == Ke::Ke4)
        .then(|| super::latency_strip::line(app, now))
        .flatten()
        .filter(|_| inner.height > 2);
    let top = if let Some(l) = strip {
        frame.render_widget(
            Paragraph::new(l),
            Rect {
                y: inner.y + 1,
                height: 1,
                ..inner
            },
        );
        2
    } else {
        1
    };

    let text_area = Rect {
        y: inner.y + top,
        height: inner.height - top,
        ..inner
    };
    let current = view.search[i].current;
    let width = text_area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if win.visible == 0 {
        lines.push(Line::styled(empty_message(app, view, i), style::dim()));
    }
    lines.extend(win.rows.iter().map(|r| match *r {
        Row::Line(k) => {
            let is_current = current == Some(pane::seq_of(app, i, k));
            pane_line(&app.panes[i][k], query, is_current, width)
        }
        Row::Marker(m) => marker_rule(&app.markers[m], width),
    }));
    frame.render_widget(Paragraph::new(lines), text_area);
}

/// The query being typed for this pane, else its confirmed one.
fn active_query(view: &ViewState, i: usize) -> &str {
    match &view.modal {
        Modal::Search { pane, text } if *pane == i => text,
        _ => &view.search[i].query,
    }
}

/// What a KE's server pattern also counts besides its errors: the
/// runbook's greps are broad (all keys/upload, to-device and delayed-event
/// traffic), so the pane says what its number is.
fn traffic(ke: Ke) -> &'static str {
    match ke {
        Ke::Ke1 => "keys/upload",
        Ke::Ke2 => "to-device",
        Ke::Ke3 => "lines",
        Ke::Ke4 => "delayed-event",
    }
}

/// `KE-2 call media keys not decrypting · 16 errors · 190 to-device, 4/min ·
/// last 12s ago`: the errors are the headline, the traffic the pattern
/// matched beside them. Shortened to `width` by dropping the age and the
/// rate while that keeps the whole meaning, then by cutting the meaning
/// (keeping the rate and age where they fit), then dropping the meaning and
/// the traffic. The name and the error count always stay.
pub fn title(app: &App, ke: Ke, now: DateTime<Utc>, width: usize) -> Line<'static> {
    let (s, c) = (&app.server[ke.index()], &app.client[ke.index()]);
    let n = s.count + c.count;
    let errors = s.errors + c.errors;
    let rate = s.rate_per_minute(now) + c.rate_per_minute(now);
    let last = s.last.max(c.last);
    let name = format!(" {} ", ke.name());
    let headline = format!("{errors} error{}", if errors == 1 { "" } else { "s" });
    let lines = format!(" · {n} {}", traffic(ke));
    let rate = format!(", {rate}/min");
    let last = last.map(|t| format!(" · last {} ago ", style::age(now, t)));
    let len = |t: &str| t.chars().count();
    let fixed = |with_lines: bool, with_rate: bool, with_last: bool| {
        len(&name)
            + 2
            + len(&headline)
            + if with_lines { len(&lines) } else { 0 }
            + if with_rate { len(&rate) } else { 0 }
            + if with_last {
                last.as_deref().map_or(1, len)
            } else {
                1
            }
    };
    // The traffic stays before the meaning is cut; the rate and the age
    // go first while that keeps the whole meaning.
    let fits = |combos: &[(bool, bool, bool)], extra: usize| {
        combos
            .iter()
            .copied()
            .find(|(t, r, l)| fixed(*t, *r, *l) + extra <= width)
    };
    let with_traffic = [
        (true, true, true),
        (true, true, false),
        (true, false, false),
    ];
    let (with_lines, with_rate, with_last) = fits(&with_traffic, len(ke.meaning()) + 1)
        .or_else(|| fits(&with_traffic, 8))
        .or_else(|| fits(&[(true, false, false), (false, false, false)], 0))
        .unwrap_or((false, false, false));
    let room = width.saturating_sub(fixed(with_lines, with_rate, with_last));
    let meaning = if room >= 8 {
        style::truncate(ke.meaning(), room - 1)
    } else {
        String::new()
    };
    let mut spans = vec![Span::styled(name, style::bold())];
    if !meaning.is_empty() {
        spans.push(Span::raw(format!("{meaning} ")));
    }
    spans.push(Span::raw("· "));
    spans.push(Span::styled(headline, style::count(errors, errors)));
    if with_lines {
        spans.push(Span::raw(lines));
    }
    if with_rate {
        spans.push(Span::raw(rate));
    }
    match (&last, with_last) {
        (Some(l), true) => spans.push(Span::raw(l.clone())),
        _ => spans.push(Span::raw(" ")),
    }
    Line::from(spans)
}

fn footer_left(
    app: &App,
    view: &ViewState,
    i: usize,
    vis: &[usize],
    found: &[usize],
) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    match &view.modal {
        Modal::Search { pane, text } if *pane == i => {
            spans.push(Span::styled(
                format!(" /{text}▏ {} ", found.len()),
                style::warn(),
            ));
        }
        _ if !view.search[i].query.is_empty() => {
            let cur = view.search[i].current;
            let k = found
                .iter()
                .position(|&p| Some(pane::seq_of(app, i, vis[p])) == cur)
                .map_or("-".to_string(), |k| (k + 1).to_string());
            spans.push(Span::styled(
                format!(" /{} {k}/{} ", view.search[i].query, found.len()),
                style::warn(),
            ));
        }
        _ => {}
    }
    if view.tracked_only {
        spans.push(Span::styled(" tracked only ", style::tracked()));
    }
    spans
}

fn empty_message(app: &App, view: &ViewState, i: usize) -> String {
    if app.panes[i].is_empty() {
        "no matches yet".into()
    } else if view.tracked_only && app.subject.names().next().is_none() {
        "tracked only: no user configured ([call] user-id)".into()
    } else {
        "tracked only: no lines of the tracked users".into()
    }
}

/// `▶12:00:01 text` (`▶12:00:01 worker1 text` with several server logs:
/// the log that wrote it): the gutter shows the current match or a tracked
/// user, error lines are bold red, search matches black on yellow.
pub fn pane_line(l: &PaneLine, query: &str, is_current: bool, width: usize) -> Line<'static> {
    let gutter = if is_current {
        Span::styled("▶", style::highlight())
    } else if l.tracked {
        Span::styled("┃", style::tracked())
    } else {
        Span::raw(" ")
    };
    let text_style = if l.error {
        style::error()
    } else if l.tracked {
        style::bold()
    } else {
        ratatui::style::Style::default()
    };
    let time = l.at.map_or("--:--:--".to_string(), style::hhmmss);
    let mut spans = vec![
        gutter,
        Span::styled(
            format!("{time} "),
            if l.error { text_style } else { style::dim() },
        ),
    ];
    let mut used = 10;
    if let Some(log) = &l.log {
        spans.push(Span::styled(format!("{log} "), style::bold()));
        used += log.chars().count() + 1;
    }
    let text = style::truncate(&l.text, width.saturating_sub(used));
    let mut at = 0;
    while let Some(s) = (!query.is_empty())
        .then(|| pane::find_ci(&text, query, at))
        .flatten()
    {
        let e = s + query.len();
        if s > at {
            spans.push(Span::styled(text[at..s].to_string(), text_style));
        }
        spans.push(Span::styled(text[s..e].to_string(), style::highlight()));
        at = e;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_string(), text_style));
    }
    Line::from(spans)
}

/// `──── ⚑ 12:00:05 audio cut #3 ────────`
pub fn marker_rule(m: &crate::app::Marker, width: usize) -> Line<'static> {
    let head = format!("──── ⚑ {} {} #{} ", style::hhmmss(m.at), m.label, m.id);
    let head = style::truncate(&head, width);
    let fill = width.saturating_sub(head.chars().count());
    Line::styled(format!("{head}{}", "─".repeat(fill)), style::marker())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &PaneLine) -> String {
        pane_line(l, "", false, 80)
            .spans
            .iter()
            .map(|s| s.content.to_string())
            .collect()
    }

    #[test]
    fn a_line_names_its_log_when_there_are_several() {
        let mut l = PaneLine {
            line_no: 1,
            ke_line_no: 1,
            at: chrono::DateTime::from_timestamp(1_782_842_400, 0),
            text: "One time key signed_curve25519:AAAAAQ already exists.".into(),
            error: false,
            tracked: false,
            origin: "server",
            log: None,
        };
        assert_eq!(
            text(&l),
            " 18:00:00 One time key signed_curve25519:AAAAAQ already exists."
        );
        l.log = Some("worker1".into());
        assert_eq!(
            text(&l),
            " 18:00:00 worker1 One time key signed_curve25519:AAAAAQ already exists."
        );
    }
}
