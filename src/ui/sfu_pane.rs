//! The SFU pane: per LiveKit participant (our device first), the last
//! state livekit-server reported and when; our device's rows highlighted.
//! Shown in the client pane's region, below the client files, once an SFU
//! log (livekit-server, lk-jwt-service) has been read.

use super::style;
use crate::app::{App, SfuParticipant};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// `18:03:12 ▶ closing SUBSCRIPTION_ERROR · @alice:hs/DEV` (the state
/// first: it is what a narrow pane must not cut), the participant
/// named by its Matrix user and device when known, else its identity.
fn row(app: &App, p: &SfuParticipant, ours: bool, width: usize) -> Line<'static> {
    let who = match app.sfu.matrix_of(&p.identity) {
        (Some(u), Some(d)) => format!("{u}/{d}"),
        (Some(u), None) => format!("{u} ({})", short(&p.identity)),
        _ => short(&p.identity),
    };
    let (when, state, failure) = match p.last() {
        Some(r) => (
            r.at.map_or("--:--:--".into(), style::hhmmss),
            match &r.reason {
                Some(why) => format!("{} {why}", r.state.name()),
                None => r.state.name().to_string(),
            },
            r.state.is_failure(),
        ),
        None => ("--:--:--".into(), "seen".into(), false),
    };
    let text = style::truncate(
        &format!("{when} {}{state} · {who}", if ours { "▶ " } else { "" }),
        width,
    );
    let s = match (ours, failure) {
        (_, true) => style::error(),
        (true, false) => style::tracked(),
        _ => ratatui::style::Style::default(),
    };
    Line::styled(text, s)
}

fn short(id: &str) -> String {
    if id.chars().count() > 16 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_string()
    }
}

/// The pane's lines: a header, then our device's participants, then the
/// others (most recently reported first).
pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut parts: Vec<(&SfuParticipant, bool)> = app
        .sfu
        .participants
        .values()
        .map(|p| (p, app.sfu_is_ours(&p.identity)))
        .collect();
    parts.sort_by(|a, b| {
        b.1.cmp(&a.1).then_with(|| {
            b.0.last()
                .and_then(|r| r.at)
                .cmp(&a.0.last().and_then(|r| r.at))
        })
    });
    if parts.is_empty() {
        out.push(Line::styled("no participant reported yet", style::dim()));
    }
    if !parts.iter().any(|(_, ours)| *ours) && !parts.is_empty() {
        out.push(Line::styled(
            style::truncate("our device: not among them (identity unknown)", width),
            style::warn(),
        ));
    }
    out.extend(parts.iter().map(|(p, ours)| row(app, p, *ours, width)));
    out
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if area.is_empty() {
        return;
    }
    let title = Line::from(vec![
        Span::styled(" SFU ", style::bold()),
        Span::styled(
            format!(
                "· {} participants · {} lines ",
                app.sfu.participants.len(),
                app.sfu.sfu_lines + app.sfu.grant_lines + app.sfu.unread
            ),
            style::dim(),
        ),
    ]);
    let block = style::pane_block(false).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    let mut rows = lines(app, inner.width as usize);
    rows.truncate(inner.height as usize);
    frame.render_widget(Paragraph::new(rows), inner);
}
