//! The timeline figure: lanes stacked on one UTC time axis, drawn with
//! plotters' SVG backend from [`FigureData`] alone. Bars, lines and ticks
//! are per time column (a minute, or a few minutes on a long capture), so
//! the drawing's size follows the window's length, never the log's.
//!
//! Colours: the foreground and the grid are drawn in two sentinel colours
//! ([`FG`], [`GRID`]) that the page's stylesheet repaints for a dark
//! screen; the series colours read on both backgrounds.

mod lanes;
mod latency;
mod markers;

use super::data::{FigureData, Span};
use crate::domain::Ke;
use chrono::{DateTime, Duration, Utc};
use lanes::{checklist, db_lane, ke_lane};
use latency::latency;
use markers::{markers, place_markers};
use plotters::chart::DualCoordChartContext;
use plotters::coord::Shift;
use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// The drawing's width in SVG units; the page scales it to fit.
pub const WIDTH: u32 = 1000;
/// At most this many time columns: a long capture is drawn in columns of
/// several minutes (the data block stays per minute).
const MAX_COLUMNS: i64 = 150;
/// Column widths in minutes, the first that keeps to [`MAX_COLUMNS`].
const COLUMN_MINUTES: [i64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
const LEFT: u32 = 64;
const RIGHT: u32 = 64;
const TITLE: u32 = 20;

pub const FG: RGBColor = RGBColor(0, 0, 0);
pub const GRID: RGBColor = RGBColor(0xDC, 0xDC, 0xDC);
pub const SERVER: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub const CLIENT: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub const P99: RGBColor = RGBColor(0x7B, 0x32, 0x94);
pub const METRICS: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
pub const TIMEOUT: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
pub const OTK: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub const BACKLOG: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub const MARKER: RGBColor = RGBColor(0xC0, 0x14, 0x3C);
pub const INTERRUPTED: RGBColor = RGBColor(0x88, 0x88, 0x88);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Plane = Cartesian2d<<Range<DateTime<Utc>> as AsRangedCoord>::CoordDescType, RangedCoordf64>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Plane>;
type DualChart<'a, 'b> = DualCoordChartContext<'a, SVGBackend<'b>, Plane, Plane>;

/// The time axis: columns of `minutes` each from `start`.
pub struct Axis {
    pub start: DateTime<Utc>,
    pub minutes: i64,
    pub columns: usize,
    /// Data buckets per column.
    per: usize,
}

impl Axis {
    pub fn of(d: &FigureData) -> Axis {
        let bucket_min = (d.bucket_seconds / 60).max(1);
        let total = d.buckets as i64 * bucket_min;
        let minutes = COLUMN_MINUTES
            .iter()
            .copied()
            .filter(|m| m % bucket_min == 0)
            .find(|m| (total + m - 1) / m <= MAX_COLUMNS)
            .unwrap_or_else(|| ((total + MAX_COLUMNS - 1) / MAX_COLUMNS).max(bucket_min));
        let per = (minutes / bucket_min).max(1) as usize;
        Axis {
            start: d.first_bucket,
            minutes,
            columns: d.buckets.div_ceil(per).max(1),
            per,
        }
    }

    fn at(&self, column: f64) -> DateTime<Utc> {
        self.start + Duration::milliseconds((column * self.minutes as f64 * 60_000.0) as i64)
    }

    fn range(&self) -> Range<DateTime<Utc>> {
        self.start..self.at(self.columns as f64)
    }

    /// Sums data buckets into columns.
    fn sum(&self, v: &[u32]) -> Vec<u64> {
        let mut out = vec![0u64; self.columns];
        for (i, n) in v.iter().enumerate() {
            out[i / self.per] += *n as u64;
        }
        out
    }

    /// The largest value of each column's buckets.
    fn worst<T: PartialOrd + Copy>(&self, v: &[Option<T>]) -> Vec<Option<T>> {
        let mut out: Vec<Option<T>> = vec![None; self.columns];
        for (i, x) in v.iter().enumerate() {
            if let Some(x) = *x {
                let c = &mut out[i / self.per];
                if c.is_none_or(|y| x > y) {
                    *c = Some(x);
                }
            }
        }
        out
    }

    /// A span widened to at least 1/300 of the axis, so a few seconds'
    /// gap on a day-long axis still shows.
    fn visible(&self, s: &Span) -> (DateTime<Utc>, DateTime<Utc>) {
        let r = self.range();
        let min = (r.end - r.start) / 300;
        let (from, to) = (s.from.max(r.start), s.to.min(r.end));
        if to - from >= min {
            (from, to)
        } else {
            let mid = from + (to - from) / 2;
            ((mid - min / 2).max(r.start), (mid + min / 2).min(r.end))
        }
    }
}

/// One lane of the figure, top to bottom.
#[derive(Clone, Copy)]
enum Lane {
    Markers,
    Ke(Ke),
    Latency,
    Otk,
    Backlog,
    Checklist,
}

impl Lane {
    fn height(self, marker_rows: u32) -> u32 {
        match self {
            Lane::Markers => 8 + 18 * marker_rows.max(1),
            Lane::Ke(_) => 84,
            Lane::Latency => 116,
            Lane::Otk | Lane::Backlog => 70,
            Lane::Checklist => 46 + 30,
        }
    }
}

/// The lanes, top to bottom; the last carries the time labels.
const LANES: [Lane; 9] = [
    Lane::Markers,
    Lane::Ke(Ke::Ke1),
    Lane::Ke(Ke::Ke2),
    Lane::Ke(Ke::Ke3),
    Lane::Ke(Ke::Ke4),
    Lane::Latency,
    Lane::Otk,
    Lane::Backlog,
    Lane::Checklist,
];

/// The figure as an `<svg>` element.
pub fn draw(d: &FigureData) -> Result<String, String> {
    let axis = Axis::of(d);
    let lanes = &LANES;
    let placed = place_markers(&axis, d);
    let rows = placed.iter().map(|p| p.row + 1).max().unwrap_or(1);
    let height: u32 = lanes.iter().map(|l| l.height(rows)).sum();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let mut y = 0i32;
        let breaks: Vec<i32> = lanes
            .iter()
            .take(lanes.len() - 1)
            .map(|l| {
                y += l.height(rows) as i32;
                y
            })
            .collect();
        let areas = root.split_by_breakpoints([] as [i32; 0], breaks);
        for (lane, area) in lanes.iter().zip(&areas) {
            match *lane {
                Lane::Markers => markers(area, &axis, &placed)?,
                Lane::Ke(ke) => ke_lane(area, &axis, d, ke)?,
                Lane::Latency => latency(area, &axis, d)?,
                Lane::Otk => db_lane(area, &axis, d, true)?,
                Lane::Backlog => db_lane(area, &axis, d, false)?,
                Lane::Checklist => checklist(area, &axis, d)?,
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn font(size: f64) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&FG)
}

fn styled(size: f64, style: FontStyle) -> TextStyle<'static> {
    ("sans-serif", size, style).into_font().color(&FG)
}

/// The lane's title on the left of its title row, and a note on the right.
fn title(area: &Area, left: &str, right: &str) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    area.draw_text(left, &styled(15.0, FontStyle::Bold), (6, 4))
        .map_err(err)?;
    if !right.is_empty() {
        area.draw_text(
            right,
            &font(14.0).pos(Pos::new(HPos::Right, VPos::Top)),
            ((w - RIGHT) as i32, 5),
        )
        .map_err(err)?;
    }
    Ok(())
}

/// A lane's chart: the shared time axis over `y`, room for the time
/// labels when `labels`, and on the right for a second scale when `right`
/// (else the same width as a margin, so every lane's axis lines up).
fn chart<'a, 'b>(
    area: &'a Area<'b>,
    axis: &Axis,
    y: Range<f64>,
    labels: bool,
    right: bool,
) -> Result<Chart<'a, 'b>, String> {
    let mut b = ChartBuilder::on(area);
    b.y_label_area_size(LEFT)
        .x_label_area_size(if labels { 30 } else { 0 })
        .margin_bottom(2);
    if right {
        b.right_y_label_area_size(RIGHT);
    } else {
        b.margin_right(RIGHT);
    }
    b.build_cartesian_2d(axis.range(), y).map_err(err)
}

/// The grid at the time labels (whole minutes), the axes and the `y`
/// labels on the left.
fn mesh(c: &mut Chart, axis: &Axis, y_format: &dyn Fn(&f64) -> String) -> Result<(), String> {
    let minutes = (axis.columns as i64 * axis.minutes) as usize;
    c.configure_mesh()
        .disable_y_mesh()
        .x_labels(minutes.clamp(1, 12))
        .y_labels(3)
        .x_label_formatter(&|t| t.format("%H:%M").to_string())
        .y_label_formatter(y_format)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(FG.mix(0.6))
        .label_style(font(14.0))
        .draw()
        .map_err(err)
}

/// Shading for the interruptions, under every lane's marks.
fn shade(c: &mut Chart, axis: &Axis, d: &FigureData, top: f64) -> Result<(), String> {
    c.draw_series(d.interruptions.iter().map(|s| {
        let (a, b) = axis.visible(s);
        Rectangle::new([(a, 0.0), (b, top)], INTERRUPTED.mix(0.3).filled())
    }))
    .map_err(err)?;
    Ok(())
}

/// The marker rules, over every lane's marks.
fn rules(c: &mut Chart, d: &FigureData, top: f64) -> Result<(), String> {
    c.draw_series(
        d.markers
            .iter()
            .map(|m| PathElement::new(vec![(m.at, 0.0), (m.at, top)], MARKER.stroke_width(2))),
    )
    .map_err(err)?;
    Ok(())
}

/// A note in the middle of a lane's plot, `y` its middle height.
fn say(c: &mut Chart, axis: &Axis, y: f64, text: &str) -> Result<(), String> {
    let r = axis.range();
    let mid = r.start + (r.end - r.start) / 2;
    c.draw_series(std::iter::once(Text::new(
        text.to_string(),
        (mid, y),
        styled(15.0, FontStyle::Italic).pos(Pos::new(HPos::Center, VPos::Center)),
    )))
    .map_err(err)?;
    Ok(())
}

/// No labels on an empty lane's scale.
fn blank(_: &f64) -> String {
    String::new()
}

fn int_label(v: &f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

fn top(max: f64) -> f64 {
    (max * 1.15).max(1.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn columns_are_minutes_until_the_window_is_long() {
        let a = |buckets: usize| {
            let d = FigureData::empty_for_tests(buckets);
            let a = Axis::of(&d);
            (a.minutes, a.columns)
        };
        assert_eq!(a(6), (1, 6));
        assert_eq!(a(150), (1, 150));
        assert_eq!(a(151), (2, 76));
        assert_eq!(a(1170), (10, 117));
        assert_eq!(a(20_000), (180, 112));
    }
}
