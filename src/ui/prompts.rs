//! The fault prompt, the quit dialog (with export progress) and the marker
//! list. Drawn over the panes; keys go to them while they are open.

use super::style;
use crate::app::App;
use crate::app::view::{QUICK_PICKS, QuitPhase, export_failure, listed_markers};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

fn frame_box<'a>(
    frame: &mut Frame,
    area: Rect,
    w: u16,
    h: u16,
    title: Line<'a>,
    hint: &'a str,
) -> Rect {
    let r = style::centered(area, w, h);
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::styled(format!(" {hint} "), style::dim()))
        .border_style(style::marker());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    inner
}

fn input_line(text: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled("> ", style::bold()),
        Span::styled(text.to_string(), style::bold()),
        Span::styled("█", style::dim()),
    ])
}

/// An empty field showing what Enter will use, dimmed, the cursor first.
fn placeholder_line(placeholder: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled("> ", style::bold()),
        Span::styled("█", style::dim()),
        Span::styled(placeholder.to_string(), style::dim()),
    ])
}

pub fn marker_prompt(
    frame: &mut Frame,
    area: Rect,
    at: DateTime<Utc>,
    pick: Option<usize>,
    text: &str,
) {
    let title = Line::styled(
        format!(" ⚑ Fault marked at {} UTC ", style::hhmmss(at)),
        style::marker(),
    );
    let inner = frame_box(
        frame,
        area,
        64,
        8,
        title,
        "Enter save · Esc keep \"fault\" · 1-4 pick",
    );
    let mut picks = vec![Span::raw(" ")];
    for (k, p) in QUICK_PICKS.iter().enumerate() {
        let st = if pick == Some(k) {
            style::selected()
        } else {
            style::bold()
        };
        picks.push(Span::styled(format!("{}", k + 1), style::warn()));
        picks.push(Span::styled(format!(" {p}"), st));
        picks.push(Span::raw("   "));
    }
    let lines = vec![
        Line::raw("What happened? Pick one, or type it:"),
        Line::from(picks),
        Line::raw(""),
        input_line(text),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

pub fn quit_dialog(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    label: &str,
    default: &str,
    phase: &QuitPhase,
    now: DateTime<Utc>,
) {
    let (hint, body) = match phase {
        QuitPhase::Editing if label.is_empty() => (
            "type a label, or Enter keeps this one · ↑ edit it · Esc back",
            vec![Line::raw("Bundle label:"), placeholder_line(default)],
        ),
        QuitPhase::Editing => (
            "Enter export and quit · Esc back",
            vec![Line::raw("Bundle label:"), input_line(label)],
        ),
        QuitPhase::Exporting { since } => match (export_failure(app, *since), &app.exported) {
            (Some(why), _) => (
                "Enter retry · Esc back",
                vec![
                    Line::raw(format!("Bundle label: {label}")),
                    Line::styled(why.to_string(), style::error()),
                ],
            ),
            (None, Some(path)) => (
                "",
                vec![
                    Line::raw(format!("Bundle label: {label}")),
                    Line::styled(format!("bundle written: {path}"), style::ok()),
                ],
            ),
            (None, None) => (
                "the journal is safe on disk meanwhile",
                vec![
                    Line::raw(format!("Bundle label: {label}")),
                    Line::styled(
                        format!("exporting… {}s", (now - *since).num_seconds().max(0)),
                        style::warn(),
                    ),
                ],
            ),
        },
    };
    let title = Line::styled(" Quit and export ", style::bold());
    let inner = frame_box(frame, area, 70, 6, title, hint);
    frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: false }), inner);
}

pub fn marker_list(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    selected: usize,
    editing: Option<&str>,
    confirm_delete: bool,
) {
    let list = listed_markers(app);
    let h = (list.len().min(200) as u16 + 5)
        .min(area.height.saturating_sub(4))
        .max(7);
    let title = Line::styled(format!(" ⚑ Markers ({}) ", list.len()), style::marker());
    let hint = "↑↓ choose · Enter jump · r relabel · d delete · Esc close";
    let inner = frame_box(frame, area, 80, h, title, hint);
    let mut lines = Vec::new();
    if list.is_empty() {
        lines.push(Line::styled(
            "no markers yet: press the mark-fault key during the call",
            style::dim(),
        ));
    }
    let rows = (inner.height as usize).saturating_sub(2).max(1);
    let sel = selected.min(list.len().saturating_sub(1));
    let start = (sel + 1).saturating_sub(rows);
    for (k, m) in list.iter().enumerate().skip(start).take(rows) {
        let step = m
            .checklist_step
            .map(|s| format!("step {s}"))
            .unwrap_or_default();
        let mut l = Line::from(vec![
            Span::styled(format!(" #{:<3}", m.id), style::dim()),
            Span::styled(format!("{} ", style::hhmmss(m.at)), style::bold()),
            Span::styled(
                format!("{:<32} ", style::truncate(&m.label, 32)),
                style::marker(),
            ),
            Span::styled(step, style::dim()),
        ]);
        if k == sel {
            l = l.patch_style(style::selected());
        }
        lines.push(l);
    }
    lines.push(Line::raw(""));
    if let Some(text) = editing {
        let mut l = input_line(text);
        l.spans.insert(0, Span::styled("new label ", style::dim()));
        lines.push(l);
    } else if confirm_delete && let Some(m) = list.get(sel) {
        lines.push(Line::styled(
                format!("delete marker #{} '{}'? y deletes (kept in the journal as deleted), any other key keeps it", m.id, m.label),
                style::warn(),
            ));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
