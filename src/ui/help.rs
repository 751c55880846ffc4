//! The help overlay, rendered from the live bindings so it cannot drift from
//! what the keys do.

use super::style;
use crate::config::keymap::Keymap;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

const FOOTER: &str =
    "In prompts: type text · Enter confirms · Esc cancels · ↑↓ choose · Ctrl-U clears";

pub fn render(frame: &mut Frame, area: Rect, keymap: &Keymap) {
    let bindings = keymap.bindings();
    let r = style::centered(
        area,
        area.width.saturating_sub(4).min(130),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, r);
    let block = Block::bordered()
        .title(Line::styled(" Keys ", style::bold()))
        .title_bottom(Line::styled(" any key closes ", style::dim()))
        .border_style(style::bold());
    let inner = block.inner(r);
    frame.render_widget(block, r);
    if inner.height < 3 {
        return;
    }
    // As many columns as it takes to show every binding.
    let room = (inner.height as usize - 2).max(1);
    let cols = bindings.len().div_ceil(room).max(1);
    // Balanced columns, filled top to bottom.
    let rows = bindings.len().div_ceil(cols).max(1);
    let col_w = inner.width as usize / cols;
    let keys_w = bindings
        .iter()
        .map(|(_, k, _)| keys_text(k).chars().count())
        .max()
        .unwrap_or(0)
        .min(col_w / 3);
    let mut lines: Vec<Vec<Span>> = vec![Vec::new(); rows.min(bindings.len())];
    for (n, (_, keys, desc)) in bindings.iter().enumerate() {
        let keys = style::truncate(&keys_text(keys), keys_w);
        let desc = style::truncate(desc, col_w.saturating_sub(keys_w + 3));
        let cell = &mut lines[n % rows];
        cell.push(Span::styled(format!(" {keys:<keys_w$} "), style::warn()));
        let pad = col_w.saturating_sub(keys_w + 2 + desc.chars().count());
        cell.push(Span::raw(format!("{desc}{}", " ".repeat(pad))));
    }
    let mut text: Vec<Line> = lines.into_iter().map(Line::from).collect();
    text.push(Line::raw(""));
    text.push(Line::styled(format!(" {FOOTER}"), style::dim()));
    frame.render_widget(Paragraph::new(text), inner);
}

fn keys_text(keys: &[String]) -> String {
    if keys.is_empty() {
        "(unbound)".to_string()
    } else {
        keys.join(" ")
    }
}
