//! The capture checklist (runbook §4): the ten steps with who ticked each
//! and when, and the selected step's runbook text.

use super::style;
use crate::app::App;
use crate::app::checklist::Step;
use crate::app::view::{Pane, ViewState};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub fn render(frame: &mut Frame, area: Rect, app: &App, view: &ViewState, _now: DateTime<Utc>) {
    if area.is_empty() {
        return;
    }
    let steps = &app.checklist.steps;
    let done = steps.iter().filter(|s| s.done).count();
    let focused = view.focus == Pane::Checklist;
    let block = style::pane_block(focused).title(Line::from(vec![
        Span::styled(" Checklist ", style::bold()),
        Span::styled(
            format!("{done}/{} ", steps.len()),
            if done == steps.len() {
                style::ok()
            } else {
                style::warn()
            },
        ),
    ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() || steps.is_empty() {
        return;
    }
    let h = inner.height as usize;
    let width = inner.width as usize;
    let sel = view.checklist_selected.min(steps.len() - 1);
    // All steps when there is room for them and some detail; otherwise a
    // window around the selection, with the detail below when it fits.
    let list_h = if h >= steps.len() + 3 {
        steps.len()
    } else if h >= 6 {
        h - 2
    } else {
        h
    };
    let start = sel
        .saturating_sub(list_h.saturating_sub(1) / 2)
        .min(steps.len() - list_h.min(steps.len()));
    let current = app.checklist.current();
    let lines: Vec<Line> = steps
        .iter()
        .enumerate()
        .skip(start)
        .take(list_h)
        .map(|(k, s)| step_line(s, k == sel, focused, current == Some(s.number), width))
        .collect();
    frame.render_widget(
        Paragraph::new(lines),
        Rect {
            height: list_h as u16,
            ..inner
        },
    );
    if h > list_h {
        let detail = detail_lines(&steps[sel]);
        let area = Rect {
            y: inner.y + list_h as u16,
            height: (h - list_h) as u16,
            ..inner
        };
        frame.render_widget(Paragraph::new(detail).wrap(Wrap { trim: true }), area);
    }
}

/// `[x]  4 Note UTC start …    12:00:03 callcap`
pub fn step_line(
    s: &Step,
    selected: bool,
    focused: bool,
    current: bool,
    width: usize,
) -> Line<'static> {
    let (box_, box_style) = if s.done {
        ("[x]", style::ok())
    } else {
        ("[ ]", style::bold())
    };
    let stamp = s.stamps.last().map(|st| {
        // Ticked by hand, or observed by callcap with its evidence.
        let who = if st.by == "operator" { "op" } else { "auto" };
        let verb = if st.done { "" } else { "un " };
        format!(" {verb}{} {who}", style::hhmmss(st.at))
    });
    let stamp = stamp.unwrap_or_default();
    let head = format!(" {}{:>2} ", if current { "▸" } else { " " }, s.number);
    let title_w = width.saturating_sub(head.chars().count() + 3 + stamp.chars().count());
    let title = style::truncate(&s.title, title_w);
    let pad = title_w.saturating_sub(title.chars().count());
    let mut spans = vec![
        Span::styled(box_, box_style),
        Span::raw(head),
        Span::raw(format!("{title}{}", " ".repeat(pad))),
        Span::styled(stamp, style::dim()),
    ];
    if selected {
        let sel = if focused {
            style::selected()
        } else {
            style::bold()
        };
        for sp in &mut spans {
            sp.style = sp.style.patch(sel);
        }
    }
    Line::from(spans)
}

/// The selected step's runbook text and every stamp it got.
fn detail_lines(s: &Step) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(
        format!("{}. {}", s.number, s.detail),
        style::dim(),
    )];
    for st in &s.stamps {
        let what = if st.done { "ticked" } else { "unticked" };
        let ev = st
            .evidence
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        out.push(Line::raw(format!(
            "{what} {} UTC by {}{ev}",
            style::hhmmss(st.at),
            st.by
        )));
    }
    out
}
