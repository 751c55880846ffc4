//! `report.html`: the bundle as one page people look at in a planning
//! meeting. One self-contained file: the timeline figure as inline SVG,
//! the stylesheet inline, light and dark, printable, no script to run and
//! nothing fetched. Beside the figure, the decision tree with the same
//! answers and quoted evidence as `report.md`; the figure's numbers ride
//! along as a JSON block (`<script type="application/json"
//! id="callcap-figure-data">`) so every bar can be checked.

mod data;
mod figure;
mod sections;

use crate::app::App;
use crate::model::journal_entry::JournalEntry;
use crate::verdicts::Verdicts;
use chrono::{DateTime, Offset, TimeZone, Utc};
pub use data::{FORMAT, FigureData};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::BTreeMap;

const STYLE: &str = include_str!("style.css");

/// A per-minute p99 from a metrics source (Prometheus), drawn beside the
/// access log's: `(minute start, p99 in seconds)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyMetrics {
    /// Where the numbers came from, e.g. the Prometheus query.
    pub source: String,
    pub p99_seconds: Vec<(DateTime<Utc>, f64)>,
}

/// What the page is made from.
pub struct Page<'a> {
    pub app: &'a App,
    pub label: &'a str,
    pub verdicts: &'a Verdicts,
    /// The cited `server/homeserver.log` lines, as for `report.md`.
    pub cited_lines: &'a BTreeMap<String, String>,
    /// The journal's entries (time zone, gaps, source states).
    pub entries: &'a [JournalEntry],
    /// The metrics' per-minute p99, when the capture has them.
    pub metrics: Option<&'a LatencyMetrics>,
    pub now: DateTime<Utc>,
}

/// The whole page.
pub fn render(p: &Page) -> String {
    let data = FigureData::build(p.app, p.entries, p.metrics, p.now);
    let svg = figure::draw(&data);
    page(p, &data, svg).into_string()
}

fn page(p: &Page, data: &FigureData, svg: Result<String, String>) -> Markup {
    let window = (data.window.start, data.window.end);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "callcap · " (p.label) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    (sections::header(p.app, p.label, window))
                    (sections::verdict_strip(p.verdicts))
                }
                main .layout {
                    section .timeline aria-labelledby="timeline-title" {
                        h2 #timeline-title { "Timeline" }
                        (legend(data))
                        div .figure-scroll {
                            @match &svg {
                                Ok(svg) => figure .figure role="img" aria-label="Timeline of the capture: KE lanes, latency, database, markers and checklist" {
                                    (PreEscaped(svg.trim_end()))
                                },
                                Err(e) => p .figure-error { "The figure could not be drawn: " (e) },
                            }
                        }
                        p .caption { (caption(data)) }
                    }
                    section .tree {
                        (sections::decision_tree(p.app, p.verdicts, p.cited_lines))
                    }
                }
                section .details {
                    div { (sections::ke_table(p.app)) (sections::markers(p.app)) }
                    div { (sections::checklist(p.app)) }
                }
                footer {
                    p { "Written by callcap " (env!("CARGO_PKG_VERSION")) " with " code { "report.md" } " and " code { "manifest.json" } " from the same capture. The figure's numbers are in this file's " code { "callcap-figure-data" } " block (" (data::FORMAT) ")." }
                }
                script type="application/json" id="callcap-figure-data" { (PreEscaped(data.to_json())) }
            }
        }
    }
}

/// What the figure's marks mean, as HTML so it wraps on a phone.
fn legend(d: &FigureData) -> Markup {
    let per = figure::Axis::of(d).minutes;
    let unit = if per == 1 {
        "per minute".to_string()
    } else {
        format!("per {per} minutes")
    };
    let items: [(&str, &str, String); 12] = [
        (
            "bar",
            "server",
            format!("server log lines {unit} (left scale)"),
        ),
        (
            "bar",
            "client",
            format!("client entries {unit} (right scale)"),
        ),
        ("line", "p99", "access-log p99 (/sync excluded)".into()),
        ("line", "metrics", "metrics p99".into()),
        ("dot", "slow", "minute Q4 counts as slow".into()),
        ("tick", "timeout", "client delayed-event timeout".into()),
        ("shade", "stall", "homeserver stall".into()),
        (
            "shade",
            "interrupted",
            "source gap, stall or reconnect".into(),
        ),
        ("rule", "marker", "fault marker".into()),
        ("line", "otk", "one-time keys left".into()),
        ("line", "backlog", "to-device backlog".into()),
        ("tick", "check", "checklist step ticked".into()),
    ];
    html! {
        ul .legend {
            @for (shape, class, text) in &items {
                li { span class={ "key " (shape) " " (class) } {} (text) }
            }
        }
    }
}

fn caption(d: &FigureData) -> String {
    let per = figure::Axis::of(d).minutes;
    let mut c = String::from("Times in UTC");
    if let Some(name) = &d.timezone {
        match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => {
                let off = tz
                    .offset_from_utc_datetime(&d.window.start.naive_utc())
                    .fix();
                c.push_str(&format!("; the server log's time zone {name} is UTC{off}"));
            }
            Err(_) => c.push_str(&format!("; the server log's time zone is {name}")),
        }
    }
    c.push_str(". ");
    if per == 1 {
        c.push_str("Each column is one minute.");
    } else {
        c.push_str(&format!(
            "Each column is {per} minutes (this capture is long); the latency line shows the worst minute of each."
        ));
    }
    c
}
