//! The markers' lane: each fault marker's label, placed in rows so labels
//! close in time do not overlap, and its rule.

use super::super::data::FigureData;
use super::{Area, Axis, LEFT, MARKER, RIGHT, WIDTH, chart, err, say, styled};
use chrono::{DateTime, Utc};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Marker labels longer than this are cut in the figure (the list below
/// it has them whole).
const MARKER_LABEL_CHARS: usize = 40;
/// Rows of marker labels, so that labels close in time do not overlap.
const MARKER_ROWS: u32 = 3;

/// A marker's place in the figure: its time, label row, label, and
/// whether the label stands left of the rule (near the axis's end).
pub(super) struct Placed {
    at: DateTime<Utc>,
    pub(super) row: u32,
    label: String,
    left: bool,
}

/// Places each marker's label in the first row where it clears the label
/// before it (its width estimated from its length), else in the last row.
pub(super) fn place_markers(axis: &Axis, d: &FigureData) -> Vec<Placed> {
    let r = axis.range();
    let per_px = (r.end - r.start) / (WIDTH - LEFT - RIGHT) as i32;
    let mut ends: Vec<DateTime<Utc>> = Vec::new();
    let mut out = Vec::new();
    let mut markers: Vec<_> = d.markers.iter().filter(|m| r.contains(&m.at)).collect();
    markers.sort_by_key(|m| m.at);
    for m in markers {
        let mut label: String = m.label.chars().take(MARKER_LABEL_CHARS).collect();
        if m.label.chars().count() > MARKER_LABEL_CHARS {
            label.push('…');
        }
        let label = format!("⚑ {label}");
        let width = per_px * (label.chars().count() as i32 * 8 + 12);
        let left = m.at + width > r.end;
        let (from, to) = if left {
            (m.at - width, m.at)
        } else {
            (m.at, m.at + width)
        };
        let row = match ends.iter().position(|e| *e <= from) {
            Some(i) => i,
            None if (ends.len() as u32) < MARKER_ROWS => {
                ends.push(from);
                ends.len() - 1
            }
            None => ends.len() - 1,
        };
        ends[row] = to;
        out.push(Placed {
            at: m.at,
            row: row as u32,
            label,
            left,
        });
    }
    out
}

pub(super) fn markers(area: &Area, axis: &Axis, placed: &[Placed]) -> Result<(), String> {
    let (_, body) = area.split_vertically(2);
    let mut c = chart(&body, axis, 0.0..1.0, false, false)?;
    if placed.is_empty() {
        return say(&mut c, axis, 0.5, "no fault markers set");
    }
    area.draw_text("markers", &styled(14.0, FontStyle::Bold), (6, 6))
        .map_err(err)?;
    let (_, h) = body.dim_in_pixel();
    c.draw_series(placed.iter().map(|p| {
        let y = 4 + 18 * p.row as i32 - h as i32;
        let (x, anchor) = if p.left {
            (-4, HPos::Right)
        } else {
            (4, HPos::Left)
        };
        let style = ("sans-serif", 15.0)
            .into_font()
            .color(&MARKER)
            .pos(Pos::new(anchor, VPos::Top));
        EmptyElement::at((p.at, 0.0))
            + PathElement::new(vec![(0, 0), (0, y)], MARKER.stroke_width(2))
            + Text::new(p.label.clone(), (x, y), style)
    }))
    .map_err(err)?;
    Ok(())
}
