//! The client pane: diag reports and HAR files picked up from the downloads
//! folder, when each arrived and what it holds per KE.

use super::style;
use crate::app::App;
use crate::app::event::{ArtifactKind, ClientArtifact};
use crate::app::view::{Pane, ViewState};
use crate::domain::Ke;
use crate::model::SourceStatus;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The source name the downloads watcher reports under.
pub const SOURCE: &str = "downloads";

pub fn render(frame: &mut Frame, area: Rect, app: &App, view: &ViewState, _now: DateTime<Utc>) {
    if area.is_empty() {
        return;
    }
    let title = Line::from(vec![
        Span::styled(" Client ", style::bold()),
        Span::styled(format!("· {} files ", app.artifacts.len()), style::dim()),
    ]);
    let block = style::pane_block(view.focus == Pane::Client).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    let width = inner.width as usize;
    let counts = app.client_counts();
    let mut totals = Vec::new();
    for ke in Ke::ALL {
        let (n, e) = (counts[ke.index()], app.client[ke.index()].errors);
        totals.push(Span::raw(format!("{} ", ke.name())));
        totals.push(Span::styled(n.to_string(), style::count(n, e)));
        totals.push(Span::raw(" "));
    }
    let mut header = vec![Line::from(totals)];
    if let Some(s) = app
        .sources
        .get(SOURCE)
        .filter(|s| s.status != SourceStatus::Live)
    {
        let why = match &s.status {
            SourceStatus::Error { reason } | SourceStatus::Stalled { reason } => reason.clone(),
            SourceStatus::Reconnecting { reason, .. } => format!("{reason}, retrying"),
            other => other.label().to_string(),
        };
        header.push(Line::styled(
            style::truncate(&format!("downloads: {why}"), width),
            super::db_pane::status_style(&s.status),
        ));
    }
    let mut rows: Vec<Line> = app
        .artifacts
        .iter()
        .flat_map(|a| artifact_lines(a, width))
        .collect();
    if rows.is_empty() {
        rows.push(Line::styled("no diag report or HAR yet", style::dim()));
        rows.push(Line::styled(
            "save them to the watched folder",
            style::dim(),
        ));
    }
    // Newest at the bottom; scrolled back by `client_scroll` rows.
    let room = (inner.height as usize).saturating_sub(header.len());
    let end = rows
        .len()
        .saturating_sub(view.client_scroll.min(rows.len().saturating_sub(1)));
    let start = end.saturating_sub(room);
    header.extend(rows.drain(start..end));
    frame.render_widget(Paragraph::new(header), inner);
}

/// `12:03:04 diag lotus-crypto-diag-1.json 1:12 2:3 3:0 4:1`, or the reason
/// a file could not be read. In a narrow pane the counts go on a second line
/// so neither the name nor the counts are cut away.
pub fn artifact_lines(a: &ClientArtifact, width: usize) -> Vec<Line<'static>> {
    let kind = match a.kind {
        ArtifactKind::Diag => "diag",
        ArtifactKind::Har => "HAR ",
        ArtifactKind::ElementLog => "logs",
        ArtifactKind::Other => "file",
    };
    let mut per_ke = [0u64; 4];
    for e in &a.entries {
        if let Some(ke) = e.ke {
            per_ke[ke.index()] += 1;
        }
    }
    let mut tail: Vec<Span> = Vec::new();
    if let Some(why) = &a.unparsed {
        tail.push(Span::styled(format!(" UNPARSED: {why}"), style::error()));
    } else if a.kind == ArtifactKind::Har {
        tail.push(Span::raw(format!(" keys/upload {}", a.har_keys_upload)));
        let s = if a.har_conflicts.is_empty() {
            style::ok()
        } else {
            style::error()
        };
        tail.push(Span::styled(
            format!(" conflicts {}", a.har_conflicts.len()),
            s,
        ));
    } else {
        for ke in Ke::ALL {
            let n = per_ke[ke.index()];
            tail.push(Span::raw(format!(" {}:", ke.index() + 1)));
            tail.push(Span::styled(
                n.to_string(),
                if n > 0 { style::warn() } else { style::dim() },
            ));
        }
    }
    let tail_w: usize = tail.iter().map(|s| s.content.chars().count()).sum();
    let two_lines = width < tail_w + 14 + 16;
    let name_w = if two_lines {
        width.saturating_sub(14)
    } else {
        width - tail_w - 14
    };
    let mut spans = vec![
        Span::styled(format!("{} ", style::hhmmss(a.arrived_at)), style::dim()),
        Span::styled(format!("{kind} "), style::bold()),
        Span::raw(style::truncate(&a.file, name_w)),
    ];
    if two_lines {
        let mut second = vec![Span::raw("  ")];
        second.extend(tail);
        return vec![Line::from(spans), Line::from(second)];
    }
    spans.extend(tail);
    vec![Line::from(spans)]
}
