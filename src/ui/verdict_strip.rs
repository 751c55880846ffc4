//! The runbook's decision tree at a glance: Q1–Q4 on one line, each answer in
//! its colour, and a detail overlay with the summary and the basis.

use super::style;
use crate::app::App;
use crate::verdicts::{INSUFFICIENT, Verdicts};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// Red: the runbook's KE-1 ⇒ KE-2 chain is confirmed; yellow: another
/// definite answer; grey: not enough evidence yet.
pub fn answer_style(answer: &str) -> Style {
    match answer {
        INSUFFICIENT => Style::default().fg(Color::Gray),
        "divergence" | "linked" => style::error(),
        _ => style::warn(),
    }
}

fn short(answer: &str) -> &str {
    if answer == INSUFFICIENT {
        "insufficient"
    } else {
        answer
    }
}

pub fn render(frame: &mut Frame, area: Rect, verdicts: &Verdicts) {
    if area.is_empty() {
        return;
    }
    let mut spans = Vec::new();
    for (q, v) in verdicts.iter() {
        spans.push(Span::styled(format!(" {q} "), style::bold()));
        spans.push(Span::styled(
            short(v.answer).to_string(),
            answer_style(v.answer),
        ));
        spans.push(Span::raw("  "));
    }
    spans.push(Span::styled("(v: details)", style::dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The overlay: the four answers, the selected one's summary and basis.
pub fn render_detail(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    verdicts: &Verdicts,
    selected: usize,
) {
    let r = style::centered(
        area,
        area.width.saturating_sub(8).min(110),
        area.height.saturating_sub(4),
    );
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .title(Line::styled(
            " Verdicts (runbook §2 decision tree) ",
            style::bold(),
        ))
        .title_bottom(Line::styled(" ↑↓ choose · Esc close ", style::dim()))
        .border_style(style::bold());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let mut lines = Vec::new();
    for (k, (q, v)) in verdicts.iter().into_iter().enumerate() {
        let mut l = Line::from(vec![
            Span::styled(if k == selected { "▶ " } else { "  " }, style::bold()),
            Span::styled(format!("{q} "), style::bold()),
            Span::styled(v.answer.to_string(), answer_style(v.answer)),
        ]);
        if k == selected {
            l = l.patch_style(Style::default().add_modifier(Modifier::REVERSED));
        }
        lines.push(l);
    }
    let (q, v) = verdicts.iter()[selected.min(3)];
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(format!("{q}: "), style::bold()),
        Span::styled(v.answer.to_string(), answer_style(v.answer)),
    ]));
    lines.push(Line::raw(v.summary.clone()));
    lines.push(Line::raw(""));
    lines.push(Line::styled("basis:", style::dim()));
    if v.basis.is_empty() {
        lines.push(Line::styled("  (none)", style::dim()));
    }
    // Each cited line is quoted, so the evidence is on screen, not only named.
    for b in &v.basis {
        lines.push(Line::raw(format!(
            "  {b}{}",
            crate::verdicts::quote::quote_held(app, b)
        )));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
