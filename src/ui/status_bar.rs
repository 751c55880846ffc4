//! The status bar, two rows: every source's state with its reason; then the
//! capture's elapsed time, the UTC clock, markers, the journal and the
//! latest note.

use super::style;
use crate::app::App;
use crate::app::view::ViewState;
use crate::model::SourceStatus;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, area: Rect, app: &App, view: &ViewState, now: DateTime<Utc>) {
    if area.is_empty() {
        return;
    }
    let bar = Style::default().bg(Color::Black);
    let lines = vec![sources_line(app, now), capture_line(app, view, now)];
    frame.render_widget(Paragraph::new(lines).style(bar), area);
}

/// `● server-log live  ↻ database reconnecting (attempt 3, next try in 4s): refused`
pub fn sources_line(app: &App, now: DateTime<Utc>) -> Line<'static> {
    if app.sources.is_empty() {
        return Line::styled(" no sources started yet", style::warn());
    }
    let mut spans = Vec::new();
    for (name, info) in &app.sources {
        let (sym, st) = match &info.status {
            SourceStatus::Live => ("●", style::ok()),
            SourceStatus::Connecting | SourceStatus::Authenticating => ("◌", style::warn()),
            SourceStatus::Stalled { .. } => ("▲", style::warn()),
            SourceStatus::Reconnecting { .. } => ("↻", style::warn()),
            SourceStatus::Error { .. } => ("✖", style::error()),
            SourceStatus::Stopped => ("■", style::dim()),
        };
        let detail = match &info.status {
            SourceStatus::Stalled { reason } | SourceStatus::Error { reason } => {
                format!(": {reason}")
            }
            SourceStatus::Reconnecting {
                attempt,
                next_try_ms,
                reason,
            } => {
                let waited = (now - info.since).num_milliseconds().max(0) as u64;
                let left = next_try_ms.saturating_sub(waited).div_ceil(1000);
                format!(" (attempt {attempt}, next try in {left}s): {reason}")
            }
            _ => String::new(),
        };
        spans.push(Span::styled(format!(" {sym} "), st));
        spans.push(Span::styled(format!("{name} "), style::bold()));
        spans.push(Span::styled(
            format!("{}{detail} ", info.status.label()),
            st,
        ));
        // Synapse restarted under the metrics: said until the next minute.
        if name == "metrics"
            && let Some((at, _)) = app.metrics.resets.last()
            && (now - *at).num_seconds() < 120
        {
            spans.push(Span::styled(
                format!("↺ reset {} ", style::hhmmss(*at)),
                style::warn(),
            ));
        }
    }
    Line::from(spans)
}

/// `elapsed 00:12:34 │ 12:34:56 UTC │ ⚑ 3 markers │ journal … │ note`
pub fn capture_line(app: &App, view: &ViewState, now: DateTime<Utc>) -> Line<'static> {
    let sep = || Span::styled(" │ ", style::dim());
    let elapsed = app.started_at.map_or("--:--:--".to_string(), |s| {
        style::clock_duration((now - s).num_seconds())
    });
    let markers = app.live_markers().count();
    let mut spans = vec![
        Span::styled(" elapsed ", style::dim()),
        Span::styled(elapsed, style::bold()),
        sep(),
        Span::styled(format!("{} UTC", style::hhmmss(now)), style::bold()),
        sep(),
        Span::styled(
            format!("⚑ {markers} marker{}", if markers == 1 { "" } else { "s" }),
            style::marker(),
        ),
    ];
    if let Some(d) = &app.debug_loggers {
        spans.push(sep());
        let st = if d.revert_failed.is_some() || d.raise_failed.is_some() {
            style::error()
        } else if d.confirmed.is_some() || d.reverted.is_some() {
            style::ok()
        } else {
            style::warn()
        };
        spans.push(Span::styled(d.status(), st));
    }
    if view.tracked_only {
        spans.push(sep());
        spans.push(Span::styled("tracked only", style::tracked()));
    }
    if let Some(j) = &view.journal {
        spans.push(sep());
        spans.push(Span::styled("journal ", style::dim()));
        spans.push(Span::raw(j.clone()));
    }
    if let Some(path) = &app.exported {
        spans.push(sep());
        spans.push(Span::styled(format!("bundle {path}"), style::ok()));
    }
    if let Some((at, source, text)) = app.notes.back() {
        spans.push(sep());
        spans.push(Span::styled(
            format!("{} {source}: ", style::hhmmss(*at)),
            style::dim(),
        ));
        spans.push(Span::raw(text.clone()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::Subject;
    use crate::app::event::Event;
    use crate::model::metrics::{MetricsKind, MetricsReading, MetricsReport};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap()
    }

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_synapse_restart_under_the_metrics_shows_until_the_minute_after() {
        let mut app = App::new(Subject::default(), 2_000);
        app.update(Event::Status {
            source: "metrics".into(),
            status: SourceStatus::Live,
            at: t(0),
        });
        assert_eq!(text(&sources_line(&app, t(1))), " ● metrics live ");
        app.update(Event::Metrics {
            at: t(30),
            report: Box::new(MetricsReport {
                kind: MetricsKind::Scrape,
                url: "http://127.0.0.1:9000/_synapse/metrics".into(),
                reading: MetricsReading::Increase {
                    since: t(15),
                    servlets: Default::default(),
                    reset: Some("Synapse restarted".into()),
                },
                raw: None,
            }),
        });
        let s = text(&sources_line(&app, t(40)));
        assert!(s.contains("● metrics live ↺ reset 18:00:30"), "{s}");
        assert!(!text(&sources_line(&app, t(150))).contains("reset"));
    }
}
