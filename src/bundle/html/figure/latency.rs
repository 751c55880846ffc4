//! The latency lane: the access log's p99 per column (long polls left
//! out, as Q4 computes it), the minutes Q4 counts as slow, the restart
//! timeout, homeserver stalls, the metrics' p99 when the capture has them,
//! and the client's delayed-event timeouts as ticks.

use super::super::data::FigureData;
use super::{
    Area, Axis, METRICS, P99, TIMEOUT, TITLE, blank, chart, err, font, mesh, rules, say, shade,
    title,
};
use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;

fn seconds(v: &f64) -> String {
    if *v == 0.0 {
        "0".into()
    } else if *v < 1.0 {
        format!("{:.0} ms", v * 1000.0)
    } else {
        format!("{v:.1} s")
    }
}

pub(super) fn latency(area: &Area, axis: &Axis, d: &FigureData) -> Result<(), String> {
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
