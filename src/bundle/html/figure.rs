//! The timeline figure: lanes stacked on one UTC time axis, drawn with
//! plotters' SVG backend from [`FigureData`] alone. Bars, lines and ticks
//! are per time column (a minute, or a few minutes on a long capture), so
//! the drawing's size follows the window's length, never the log's.
//!
//! Colours: the foreground and the grid are drawn in two sentinel colours
//! ([`FG`], [`GRID`]) that the page's stylesheet repaints for a dark
//! screen; the series colours read on both backgrounds.

use super::data::{FigureData, Span};
use crate::domain::Ke;
use chrono::{DateTime, Duration, Utc};
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

/// Marker labels longer than this are cut in the figure (the list below
/// it has them whole).
const MARKER_LABEL_CHARS: usize = 40;
/// Rows of marker labels, so that labels close in time do not overlap.
const MARKER_ROWS: u32 = 3;

/// A marker's place in the figure: its time, label row, label, and
/// whether the label stands left of the rule (near the axis's end).
struct Placed {
    at: DateTime<Utc>,
    row: u32,
    label: String,
    left: bool,
}

/// Places each marker's label in the first row where it clears the label
/// before it (its width estimated from its length), else in the last row.
fn place_markers(axis: &Axis, d: &FigureData) -> Vec<Placed> {
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

fn markers(area: &Area, axis: &Axis, placed: &[Placed]) -> Result<(), String> {
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

fn ke_lane(area: &Area, axis: &Axis, d: &FigureData, ke: Ke) -> Result<(), String> {
    let s = &d.ke[ke.name()];
    let no_client = d.missing.get("client");
    let no_server = d.missing.get("server");
    let note = match (no_server, no_client) {
        (Some(a), Some(b)) => format!("{a}; {b}"),
        (Some(a), None) => format!("{a} · client {}", s.client_total),
        (None, Some(b)) => format!("server {} · {b}", s.server_total),
        (None, None) => format!("server {} · client {}", s.server_total, s.client_total),
    };
    let (head, body) = area.split_vertically(TITLE);
    title(
        &head,
        &format!("{ke} {}", ke.meaning().replace('`', "")),
        &note,
    )?;
    let server = axis.sum(&s.server);
    let client = axis.sum(&s.client);
    let smax = top(server.iter().copied().max().unwrap_or(0) as f64);
    let cmax = top(client.iter().copied().max().unwrap_or(0) as f64);
    let nothing = s.server_total == 0 && s.client_total == 0;
    let mut c =
        chart(&body, axis, 0.0..smax, false, true)?.set_secondary_coord(axis.range(), 0.0..cmax);
    mesh(&mut c, axis, if nothing { &blank } else { &int_label })?;
    shade(&mut c, axis, d, smax)?;
    if nothing {
        let why = match (no_server, no_client) {
            (None, None) => {
                format!("no {ke} lines in the server log, no {ke} entries in the client files")
            }
            (None, Some(_)) => format!("no {ke} lines in the server log"),
            (Some(_), None) => format!("no {ke} entries in the client files"),
            (Some(_), Some(_)) => "nothing was captured".to_string(),
        };
        say(&mut c, axis, smax / 2.0, &why)?;
    } else {
        bars(
            &mut c,
            axis,
            &server,
            (no_client.is_none()).then_some(&client),
        )?;
    }
    rules(&mut c, d, smax)
}

/// Server lines on the left half of each column, client entries on the
/// right half, each on its own scale (left and right axis).
fn bars(
    c: &mut DualChart,
    axis: &Axis,
    server: &[u64],
    client: Option<&Vec<u64>>,
) -> Result<(), String> {
    let half = |v: &[u64], from: f64, to: f64, colour: RGBColor| {
        v.iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let i = i as f64;
                Rectangle::new(
                    [(axis.at(i + from), 0.0), (axis.at(i + to), *n as f64)],
                    colour.filled(),
                )
            })
            .collect::<Vec<_>>()
    };
    c.draw_series(half(server, 0.08, 0.5, SERVER))
        .map_err(err)?;
    let Some(client) = client else {
        return Ok(());
    };
    c.configure_secondary_axes()
        .y_labels(3)
        .y_label_formatter(&int_label)
        .axis_style(FG.mix(0.6))
        .label_style(font(14.0).color(&CLIENT))
        .draw()
        .map_err(err)?;
    c.draw_secondary_series(half(client, 0.5, 0.92, CLIENT))
        .map_err(err)?;
    Ok(())
}

fn seconds(v: &f64) -> String {
    if *v == 0.0 {
        "0".into()
    } else if *v < 1.0 {
        format!("{:.0} ms", v * 1000.0)
    } else {
        format!("{v:.1} s")
    }
}

fn latency(area: &Area, axis: &Axis, d: &FigureData) -> Result<(), String> {
    let l = &d.latency;
    let timeout = l.restart_timeout_ms as f64 / 1000.0;
    let p99: Vec<Option<f64>> = axis
        .worst(&l.p99_ms)
        .into_iter()
        .map(|v| v.map(|ms| ms as f64 / 1000.0))
        .collect();
    let metrics = d.metrics.as_ref().map(|m| axis.worst(&m.p99_seconds));
    let slow: Vec<bool> = {
        let mut v = vec![false; axis.columns];
        for (i, j) in l.judged.iter().enumerate() {
            v[i / axis.per] |= *j == Some("slow");
        }
        v
    };
    let timeouts = axis.sum(&d.client_timeouts);
    let max = p99
        .iter()
        .chain(metrics.iter().flatten())
        .flatten()
        .fold(timeout, |a, b| a.max(*b));
    let ymax = max * 1.2;
    let mut note = vec![format!(
        "client timeouts {}",
        d.client_timeouts.iter().sum::<u32>()
    )];
    if let Some(m) = d.missing.get("metrics") {
        note.push(m.clone());
    }
    let (head, body) = area.split_vertically(TITLE);
    title(
        &head,
        "Latency: p99 per minute (access log, /sync excluded)",
        &note.join(" · "),
    )?;
    let mut c = chart(&body, axis, 0.0..ymax, false, false)?;
    let missing = d.missing.get("latency");
    mesh(
        &mut c,
        axis,
        if missing.is_some() { &blank } else { &seconds },
    )?;
    shade(&mut c, axis, d, ymax)?;
    // Homeserver stalls, in this lane only.
    c.draw_series(d.stalls.iter().map(|s| {
        let (a, b) = axis.visible(s);
        Rectangle::new([(a, 0.0), (b, ymax)], TIMEOUT.mix(0.18).filled())
    }))
    .map_err(err)?;
    let r = axis.range();
    c.draw_series(std::iter::once(PathElement::new(
        vec![(r.start, timeout), (r.end, timeout)],
        TIMEOUT.mix(0.7).stroke_width(1),
    )))
    .map_err(err)?;
    c.draw_series(std::iter::once(
        EmptyElement::at((r.start, timeout))
            + Text::new(
                format!("restart timeout {}", seconds(&timeout)),
                (4, -16),
                font(13.0).color(&TIMEOUT),
            ),
    ))
    .map_err(err)?;
    if let Some(why) = missing {
        say(&mut c, axis, ymax / 2.0, why)?;
    } else {
        c.draw_series(runs(axis, &p99).map(|pts| PathElement::new(pts, P99.stroke_width(2))))
            .map_err(err)?;
        c.draw_series(
            p99.iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, (*v)?)))
                .filter(|(i, _)| slow[*i])
                .map(|(i, v)| Circle::new((axis.at(i as f64 + 0.5), v), 4, TIMEOUT.filled())),
        )
        .map_err(err)?;
    }
    if let Some(m) = &metrics {
        c.draw_series(runs(axis, m).map(|pts| PathElement::new(pts, METRICS.stroke_width(2))))
            .map_err(err)?;
    }
    // The client's timeouts: a tick down from the top of each column that
    // has any, with their number when more than one.
    c.draw_series(
        timeouts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let label = if *n > 1 {
                    format!("×{n}")
                } else {
                    String::new()
                };
                EmptyElement::at((axis.at(i as f64 + 0.5), ymax))
                    + PathElement::new(vec![(0, 0), (0, 24)], TIMEOUT.stroke_width(3))
                    + Text::new(label, (5, 1), font(13.0).color(&TIMEOUT))
            }),
    )
    .map_err(err)?;
    rules(&mut c, d, ymax)
}

/// The runs of consecutive columns that have a value, as polylines
/// through the columns' middles.
fn runs<'a>(
    axis: &'a Axis,
    v: &'a [Option<f64>],
) -> impl Iterator<Item = Vec<(DateTime<Utc>, f64)>> + 'a {
    let mut out: Vec<Vec<(DateTime<Utc>, f64)>> = vec![Vec::new()];
    for (i, x) in v.iter().enumerate() {
        match x {
            Some(x) => {
                if let Some(last) = out.last_mut() {
                    last.push((axis.at(i as f64 + 0.5), *x));
                }
            }
            None => out.push(Vec::new()),
        }
    }
    // A lone point is drawn as a short flat line across its column.
    out.into_iter().filter(|r| !r.is_empty()).map(|r| {
        if r.len() == 1 {
            let (t, y) = r[0];
            let half = Duration::seconds(axis.minutes * 30);
            vec![(t - half / 2, y), (t + half / 2, y)]
        } else {
            r
        }
    })
}

fn db_lane(area: &Area, axis: &Axis, d: &FigureData, otk: bool) -> Result<(), String> {
    let (series, colour, name, query) = if otk {
        (
            &d.db.otk,
            OTK,
            "Database: one-time keys left (signed_curve25519, our device)",
            "otk_counts",
        )
    } else {
        (
            &d.db.backlog,
            BACKLOG,
            "Database: to-device backlog for our device",
            "device_inbox_pending",
        )
    };
    let r = axis.range();
    let inside: Vec<&(DateTime<Utc>, i64)> = series.iter().filter(|(t, _)| r.contains(t)).collect();
    let note = if d.db.polls > 0 {
        format!("{} polls", d.db.polls)
    } else {
        String::new()
    };
    let (head, body) = area.split_vertically(TITLE);
    title(&head, name, &note)?;
    let ymax = top(inside.iter().map(|(_, n)| *n).max().unwrap_or(0) as f64);
    let missing = d.missing.get("db");
    let mut c = chart(&body, axis, 0.0..ymax, false, false)?;
    mesh(
        &mut c,
        axis,
        if missing.is_some() || inside.is_empty() {
            &blank
        } else {
            &int_label
        },
    )?;
    shade(&mut c, axis, d, ymax)?;
    if let Some(why) = missing {
        say(&mut c, axis, ymax / 2.0, why)?;
        return rules(&mut c, d, ymax);
    }
    if inside.is_empty() {
        let why = match series.last() {
            Some((t, n)) => format!(
                "read outside the capture window only: {n} at {}",
                t.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!("the polls returned no {query} rows"),
        };
        say(&mut c, axis, ymax / 2.0, &why)?;
        return rules(&mut c, d, ymax);
    }
    // A step line: each poll's value holds until the next poll.
    let mut pts = Vec::new();
    for (i, (t, n)) in inside.iter().enumerate() {
        if i > 0 {
            pts.push((*t, pts.last().map_or(0.0, |p: &(DateTime<Utc>, f64)| p.1)));
        }
        pts.push((*t, *n as f64));
    }
    let last = inside.last().map_or(0.0, |(_, n)| *n as f64);
    let end = d.window.end.min(r.end);
    if let Some((t, _)) = inside.last()
        && *t < end
    {
        pts.push((end, last));
    }
    c.draw_series(std::iter::once(PathElement::new(
        pts,
        colour.stroke_width(2),
    )))
    .map_err(err)?;
    c.draw_series(
        inside
            .iter()
            .map(|(t, n)| Circle::new((*t, *n as f64), 3, colour.filled())),
    )
    .map_err(err)?;
    rules(&mut c, d, ymax)
}

fn checklist(area: &Area, axis: &Axis, d: &FigureData) -> Result<(), String> {
    let (head, body) = area.split_vertically(TITLE);
    let r = axis.range();
    let done = d.checklist.iter().filter(|s| s.done).count();
    let outside = d
        .checklist
        .iter()
        .filter(|s| s.done && !r.contains(&s.at))
        .count();
    let ticks = match outside {
        0 => format!("{done} ticks"),
        n => format!("{done} ticks, {n} outside the window"),
    };
    title(&head, "Capture checklist: steps ticked", &ticks)?;
    let mut c = chart(&body, axis, 0.0..1.0, true, false)?;
    mesh(&mut c, axis, &|_| String::new())?;
    shade(&mut c, axis, d, 1.0)?;
    if d.checklist.is_empty() {
        say(&mut c, axis, 0.5, "no checklist step was ticked")?;
        return rules(&mut c, d, 1.0);
    }
    // Stamps close together share one tick and one label ("1·2").
    let near = (r.end - r.start) / 120;
    let mut groups: Vec<(DateTime<Utc>, Vec<String>, bool)> = Vec::new();
    let mut stamps: Vec<_> = d.checklist.iter().filter(|s| r.contains(&s.at)).collect();
    stamps.sort_by_key(|s| s.at);
    for s in stamps {
        let label = if s.done {
            s.step.to_string()
        } else {
            format!("({})", s.step)
        };
        match groups.last_mut() {
            Some((t, labels, done)) if s.at - *t <= near => {
                if !labels.contains(&label) {
                    labels.push(label);
                }
                *done |= s.done;
            }
            _ => groups.push((s.at, vec![label], s.done)),
        }
    }
    c.draw_series(groups.iter().map(|(t, labels, done)| {
        let colour = if *done { OTK } else { INTERRUPTED };
        EmptyElement::at((*t, 0.0))
            + PathElement::new(vec![(0, 0), (0, -14)], colour.stroke_width(2))
            + Text::new(labels.join("·"), (3, -24), font(13.0))
    }))
    .map_err(err)?;
    rules(&mut c, d, 1.0)
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
