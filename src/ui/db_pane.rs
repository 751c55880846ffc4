//! The database pane: what Synapse holds for the tracked device (OTK counts,
//! fallback key, to-device backlog, devices), when it was last read, and what
//! could not be read.

use super::style;
use crate::app::App;
use crate::app::view::{Pane, ViewState};
use crate::model::db::{int, truthy};
use crate::model::{Row, SourceStatus};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use serde_json::Value;

/// The source name the database poller reports under.
pub const SOURCE: &str = "database";

pub fn render(frame: &mut Frame, area: Rect, app: &App, view: &ViewState, now: DateTime<Utc>) {
    if area.is_empty() {
        return;
    }
    let block = style::pane_block(view.focus == Pane::Database).title(Line::from(vec![
        Span::styled(" Database ", style::bold()),
        Span::styled(format!("· {} polls ", app.db.polls), style::dim()),
    ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = lines(app, now, inner.width as usize);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn text(row: &Row, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(v) => v.to_string(),
    }
}

fn heading(s: &str) -> Line<'static> {
    Line::styled(s.to_string(), style::dim())
}

pub fn lines(app: &App, now: DateTime<Utc>, width: usize) -> Vec<Line<'static>> {
    let source = app.sources.get(SOURCE);
    if app.db.polls == 0 {
        return match source {
            None => vec![
                Line::styled("no database configured", style::bold()),
                Line::styled(
                    "add a [database] section to the config to see one-time keys, \
                     the fallback key and the to-device backlog",
                    style::dim(),
                ),
            ],
            Some(s) => vec![
                Line::from(vec![
                    Span::raw("database: "),
                    Span::styled(s.status.label(), status_style(&s.status)),
                ]),
                Line::styled(status_reason(&s.status), style::dim()),
                Line::styled("no poll yet", style::dim()),
            ],
        };
    }
    let mut out = Vec::new();
    let last = app.db.last.as_ref();
    let results = |q: &str| last.and_then(|p| p.results.get(q));

    // One-time keys: zero is exhaustion, the decision tree's other branch.
    let series: Vec<u64> = app
        .db
        .otk_series
        .iter()
        .map(|(_, n)| *n.max(&0) as u64)
        .collect();
    let spark_w = width.saturating_sub(28).min(series.len()).min(40);
    let spark = style::spark(&series[series.len() - spark_w..], spark_w);
    match results("otk_counts") {
        Some(rows) if !rows.is_empty() => {
            for r in rows {
                let n = int(r.get("count")).unwrap_or(0);
                let s = if n == 0 {
                    style::error()
                } else {
                    style::bold()
                };
                out.push(Line::from(vec![
                    Span::raw("OTK "),
                    Span::raw(style::truncate(&text(r, "algorithm"), 18)),
                    Span::raw(" "),
                    Span::styled(n.to_string(), s),
                    Span::raw(" "),
                    Span::styled(spark.clone(), style::dim()),
                ]));
            }
        }
        Some(_) => out.push(Line::styled("OTK: none stored", style::error())),
        None => out.push(heading("OTK: not read")),
    }
    let fallback = match results("fallback_keys") {
        None => Span::styled("not read", style::dim()),
        Some(rows) if rows.is_empty() => Span::styled("none", style::warn()),
        Some(rows) if rows.iter().any(|r| truthy(r.get("used"))) => {
            Span::styled("USED", style::error())
        }
        Some(_) => Span::styled("unused", style::ok()),
    };
    out.push(Line::from(vec![Span::raw("fallback key: "), fallback]));

    // To-device backlog per device, growth since the first poll flagged.
    if let Some(rows) = results("device_inbox_pending") {
        out.push(heading("to-device backlog"));
        if rows.is_empty() {
            out.push(Line::styled("  none pending", style::ok()));
        }
        let first = app
            .db
            .first
            .as_ref()
            .and_then(|p| p.results.get("device_inbox_pending"));
        for r in rows {
            let n = int(r.get("pending")).unwrap_or(0);
            let before = first
                .and_then(|f| {
                    f.iter().find(|x| {
                        x.get("device_id") == r.get("device_id")
                            && x.get("user_id") == r.get("user_id")
                    })
                })
                .and_then(|x| int(x.get("pending")))
                .unwrap_or(0);
            let ours =
                app.subject.device_id.as_deref() == r.get("device_id").and_then(|v| v.as_str());
            let mut spans = vec![
                Span::styled(if ours { "  ●" } else { "   " }, style::tracked()),
                Span::raw(format!("{} ", style::truncate(&text(r, "device_id"), 14))),
                Span::styled(n.to_string(), style::bold()),
            ];
            if n > before {
                spans.push(Span::styled(
                    format!(" ▲+{} growing", n - before),
                    style::warn(),
                ));
            }
            out.push(Line::from(spans));
        }
    }

    match app.db.last_ok_at {
        Some(t) => out.push(Line::from(vec![
            Span::raw("last ok poll "),
            Span::styled(style::hhmmss(t), style::bold()),
            Span::styled(format!(" ({} ago)", style::age(now, t)), style::dim()),
        ])),
        None => out.push(Line::styled("no successful poll yet", style::error())),
    }
    if let Some(s) = source.filter(|s| s.status != SourceStatus::Live) {
        out.push(Line::styled(
            format!("{}: {}", s.status.label(), status_reason(&s.status)),
            status_style(&s.status),
        ));
    }
    for (name, why) in &app.db.problems {
        out.push(Line::styled(format!("✖ {name}: {why}"), style::error()));
    }

    if let Some(rows) = results("devices") {
        out.push(heading("devices (last seen)"));
        for r in rows {
            let seen = int(r.get("last_seen"))
                .and_then(DateTime::from_timestamp_millis)
                .map_or("never".to_string(), |t| {
                    format!("{} ({} ago)", style::hhmmss(t), style::age(now, t))
                });
            out.push(Line::raw(format!(
                "  {} {seen}",
                style::truncate(&text(r, "device_id"), 14)
            )));
        }
    }
    out
}

pub fn status_style(s: &SourceStatus) -> ratatui::style::Style {
    match s {
        SourceStatus::Live => style::ok(),
        SourceStatus::Error { .. } => style::error(),
        SourceStatus::Stopped => style::dim(),
        _ => style::warn(),
    }
}

fn status_reason(s: &SourceStatus) -> String {
    match s {
        SourceStatus::Stalled { reason } | SourceStatus::Error { reason } => reason.clone(),
        SourceStatus::Reconnecting {
            attempt, reason, ..
        } => format!("attempt {attempt}: {reason}"),
        _ => String::new(),
    }
}
