//! Where each region goes. Works from 100x30 up; extra height goes to the KE
//! panes, and from 160 columns on the database, client and checklist panes
//! move into a side column so the KE panes get wide lines.

use crate::app::view::Pane;
pub use crate::app::view::geometry::{MIN_HEIGHT, MIN_WIDTH};
use crate::app::view::geometry::{
    STATUS_ROWS, TIMELINE_ROWS, VERDICT_ROWS, WIDE, bottom_rows, main_rows,
};
use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

/// The rectangles of one frame. Regions hidden by zoom are empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub status: Rect,
    pub verdicts: Rect,
    pub ke: [Rect; 4],
    pub database: Rect,
    pub client: Rect,
    pub checklist: Rect,
    pub timeline: Rect,
}

pub fn fits(area: Rect) -> bool {
    area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT
}

fn rows(area: Rect, y: u16, h: u16) -> Rect {
    Rect::new(area.x, area.y + y, area.width, h)
}

/// Splits `r` into two side by side, the left `left` columns wide.
fn split_h(r: Rect, left: u16) -> (Rect, Rect) {
    let left = left.min(r.width);
    (
        Rect::new(r.x, r.y, left, r.height),
        Rect::new(r.x + left, r.y, r.width - left, r.height),
    )
}

/// Splits `r` into two stacked, the top `top` rows high.
fn split_v(r: Rect, top: u16) -> (Rect, Rect) {
    let top = top.min(r.height);
    (
        Rect::new(r.x, r.y, r.width, top),
        Rect::new(r.x, r.y + top, r.width, r.height - top),
    )
}

/// Four KE panes in a 2x2 grid.
fn grid(r: Rect) -> [Rect; 4] {
    let (top, bottom) = split_v(r, r.height.div_ceil(2));
    let (a, b) = split_h(top, top.width / 2);
    let (c, d) = split_h(bottom, bottom.width / 2);
    [a, b, c, d]
}

/// Regions of a terminal of at least the minimum size; `zoom` fills the main
/// area with one pane.
pub fn areas(area: Rect, zoom: Option<Pane>) -> Areas {
    let main_h = main_rows(area.height);
    let mut a = Areas {
        status: rows(area, 0, STATUS_ROWS),
        verdicts: rows(area, STATUS_ROWS, VERDICT_ROWS),
        timeline: rows(
            area,
            area.height.saturating_sub(TIMELINE_ROWS),
            TIMELINE_ROWS,
        ),
        ..Areas::default()
    };
    let main = rows(area, STATUS_ROWS + VERDICT_ROWS, main_h);
    if let Some(p) = zoom {
        match p {
            Pane::Ke(ke) => a.ke[ke.index()] = main,
            Pane::Database => a.database = main,
            Pane::Client => a.client = main,
            Pane::Checklist => a.checklist = main,
        }
        return a;
    }
    if area.width >= WIDE {
        let side_w = (area.width / 10 * 3).clamp(56, 72);
        let (left, side) = split_h(main, area.width - side_w);
        a.ke = grid(left);
        let db_h = (main_h / 20 * 7).clamp(8, 16);
        let client_h = (main_h / 4).clamp(6, 12);
        let (db, rest) = split_v(side, db_h);
        let (client, checklist) = split_v(rest, client_h);
        (a.database, a.client, a.checklist) = (db, client, checklist);
    } else {
        let bottom_h = bottom_rows(main_h);
        let (top, bottom) = split_v(main, main_h - bottom_h);
        a.ke = grid(top);
        let third = bottom.width / 3;
        let (db, rest) = split_h(bottom, third);
        let (client, checklist) = split_h(rest, third);
        (a.database, a.client, a.checklist) = (db, client, checklist);
    }
    a
}

/// The message shown instead of the console on a terminal too small for it.
pub fn render_too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::styled(
            format!(
                "terminal too small: need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{}",
                area.width, area.height
            ),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::from("make the window bigger; capture goes on meanwhile"),
    ];
    let h = 3.min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    let p = Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    frame.render_widget(
        p,
        Rect::new(area.x, y, area.width, area.height - (y - area.y)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::view::geometry::ke_text_rows;
    use crate::domain::Ke;

    #[test]
    fn the_views_page_is_the_text_height_of_the_ke_panes_drawn() {
        for width in MIN_WIDTH..=240 {
            for height in MIN_HEIGHT..=90 {
                for zoom in [None, Some(Pane::Ke(Ke::Ke1))] {
                    let a = areas(Rect::new(0, 0, width, height), zoom);
                    assert_eq!(
                        ke_text_rows(width, height, zoom.is_some()),
                        a.ke[0].height.saturating_sub(3) as usize,
                        "{width}x{height} zoomed {}",
                        zoom.is_some()
                    );
                }
            }
        }
    }
}
