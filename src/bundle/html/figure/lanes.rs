//! The KE lanes (server lines and client entries per column, each on its
//! own scale), the database's lanes (the polls as step lines) and the
//! checklist's ticks.

use super::super::data::FigureData;
use super::{
    Area, Axis, BACKLOG, CLIENT, DualChart, FG, INTERRUPTED, OTK, SERVER, TITLE, blank, chart, err,
    font, int_label, mesh, rules, say, shade, title, top,
};
use crate::domain::Ke;
use chrono::{DateTime, Utc};
use plotters::prelude::*;

pub(super) fn ke_lane(area: &Area, axis: &Axis, d: &FigureData, ke: Ke) -> Result<(), String> {
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

pub(super) fn db_lane(area: &Area, axis: &Axis, d: &FigureData, otk: bool) -> Result<(), String> {
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

pub(super) fn checklist(area: &Area, axis: &Axis, d: &FigureData) -> Result<(), String> {
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
    // Stamps close together (within a label's width) share one tick and one
    // label ("1·2").
    let near = (r.end - r.start) / 40;
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
