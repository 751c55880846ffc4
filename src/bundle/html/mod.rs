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

/// The metrics' p99 per minute (Synapse's request-duration histogram, read
/// from its metrics listener or from Prometheus, long polls such as /sync
/// left out as in the access log's line), drawn in the latency lane beside
/// the access log's p99. This is the figure's one metrics input: without
/// it ([`Page::metrics`] `None`) the lane says "no metrics in this
/// capture" and the data block's `metrics` is null.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyMetrics {
    /// Where the numbers came from (the scrape URL or the Prometheus
    /// query), named in the figure's caption.
    pub source: String,
    /// `(minute start in UTC, p99 in seconds)`, one per minute that was
    /// read; a minute left out is drawn as a break in the line.
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
        (
            "line",
            "metrics",
            if d.metrics.is_some() {
                "metrics p99".into()
            } else {
                "metrics p99 (none in this capture)".into()
            },
        ),
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
    if let Some(m) = &d.metrics {
        c.push_str(&format!("The metrics' p99 is from {}. ", m.source));
    }
    if per == 1 {
        c.push_str("Each column is one minute.");
    } else {
        c.push_str(&format!(
            "Each column is {per} minutes (this capture is long); the latency line shows the worst minute of each."
        ));
    }
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::event::ServerStall;
    use crate::app::stats::minute_start;
    use crate::app::{EvidenceRef, Marker, Timeout};

    fn page(app: &App) -> String {
        let verdicts = crate::verdicts::decide(app);
        render(&Page {
            app,
            label: "t",
            verdicts: &verdicts,
            cited_lines: &BTreeMap::new(),
            entries: &[],
            metrics: None,
            now: app.window.1.unwrap_or_default(),
        })
    }

    fn marker(id: u32, at: DateTime<Utc>, label: &str) -> Marker {
        Marker {
            id,
            at,
            label: label.into(),
            checklist_step: None,
            last_lines: BTreeMap::new(),
            deleted: false,
        }
    }

    /// A fortnight with every KE, latency and timeouts in every minute:
    /// the page stays small, drawn per column, never per line or minute.
    #[test]
    fn a_busy_fortnight_stays_small_and_is_drawn_per_column() {
        let mut app = crate::verdicts::test_app();
        let m0 = 29_714_040; // 2026-06-30 18:00 UTC, in minutes
        let minutes = 14 * 24 * 60;
        for m in m0..m0 + minutes {
            for i in 0..4 {
                app.server[i].per_minute.insert(m, 500);
                app.server[i].count += 500;
                app.client[i].per_minute.insert(m, 3);
                app.client[i].count += 3;
            }
            let l = app.latency.entry(m).or_default();
            for ms in [20, 40, 3000] {
                l.add(ms, 2000);
            }
            l.close();
        }
        let (start, end) = (minute_start(m0), minute_start(m0 + minutes - 1));
        app.window = (Some(start), Some(end));
        app.wall_clock_span = false;
        for k in 0..10_000 {
            let at = start + chrono::Duration::seconds(k * 120);
            app.timeouts.push(Timeout::client(
                at,
                EvidenceRef(format!("client/d.json#entries[{k}]")),
            ));
            if k < 1000 {
                app.stalls.push(ServerStall {
                    from: at,
                    to: at + chrono::Duration::seconds(3),
                    line_no: k as u64 + 1,
                    burst: 3,
                    delayed_restart: false,
                });
            }
        }
        app.markers
            .push(marker(1, start + chrono::Duration::hours(30), "audio cut"));
        let html = page(&app);
        assert!(html.len() < 2_000_000, "{} bytes", html.len());
        let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
        let axis = figure::Axis::of(&FigureData::build(&app, &[], None, end));
        assert!(axis.columns <= 150, "{}", axis.columns);
        // Bars: two per column and KE; ticks: one per column; stalls: one
        // shade each (1000); a few hundred more for axes and labels.
        let elements = svg.matches("<rect").count()
            + svg.matches("<line").count()
            + svg.matches("<polyline").count();
        assert!(
            elements < 8 * axis.columns + 1000 + 2 * axis.columns + 600,
            "{elements}"
        );
        let data: serde_json::Value = serde_json::from_str(
            &html[html.find(r#"id="callcap-figure-data">"#).unwrap() + 25
                ..html.rfind("</script>").unwrap()],
        )
        .unwrap();
        assert_eq!(data["bucket_seconds"], 60);
        assert_eq!(
            data["ke"]["KE-2"]["server"].as_array().unwrap().len(),
            minutes as usize
        );
    }

    /// The metrics' p99, when given, is in the data block per minute and
    /// drawn as its own line; without it the lane says there are none.
    #[test]
    fn the_metrics_p99_is_drawn_beside_the_access_log_s_when_there_is_one() {
        let mut app = crate::verdicts::test_app();
        let m0 = 29_714_040; // 2026-06-30 18:00 UTC, in minutes
        for m in m0..m0 + 4 {
            let l = app.latency.entry(m).or_default();
            for ms in [20, 40, 60] {
                l.add(ms, 2000);
            }
            l.close();
        }
        (app.lines_total, app.access_lines) = (12, 12);
        let t = minute_start(m0);
        app.window = (Some(t), Some(minute_start(m0 + 3)));
        app.wall_clock_span = false;
        let verdicts = crate::verdicts::decide(&app);
        let metrics = LatencyMetrics {
            source: "http://127.0.0.1:9090 (histogram_quantile)".into(),
            // Minute 2 was not read: the line breaks there.
            p99_seconds: vec![
                (t, 0.25),
                (t + chrono::Duration::minutes(1), 3.5),
                (t + chrono::Duration::minutes(3), 0.5),
            ],
        };
        let with = |metrics| {
            render(&Page {
                app: &app,
                label: "t",
                verdicts: &verdicts,
                cited_lines: &BTreeMap::new(),
                entries: &[],
                metrics,
                now: t,
            })
        };
        let data = |html: &str| -> serde_json::Value {
            let start = html.find(r#"id="callcap-figure-data">"#).unwrap() + 25;
            let end = start + html[start..].find("</script>").unwrap();
            serde_json::from_str(&html[start..end]).unwrap()
        };
        let stroke = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            figure::METRICS.0,
            figure::METRICS.1,
            figure::METRICS.2
        );
        let svg =
            |html: &str| html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()].to_string();

        let page = with(Some(&metrics));
        let d = data(&page);
        assert_eq!(
            d["metrics"]["p99_seconds"],
            serde_json::json!([0.25, 3.5, null, 0.5])
        );
        assert!(d["missing"].get("metrics").is_none(), "{}", d["missing"]);
        // Two runs of the line: minutes 0-1, and minute 3 alone.
        assert_eq!(svg(&page).matches(&stroke).count(), 2, "{}", svg(&page));
        assert!(!page.contains("no metrics in this capture"));
        assert!(page.contains("The metrics' p99 is from http://127.0.0.1:9090"));
        assert!(!page.contains("(none in this capture)"));

        let page = with(None);
        let d = data(&page);
        assert_eq!(d["metrics"], serde_json::Value::Null);
        assert_eq!(d["missing"]["metrics"], "no metrics in this capture");
        assert_eq!(svg(&page).matches(&stroke).count(), 0);
        assert!(svg(&page).contains("no metrics in this capture"));
        assert!(page.contains("metrics p99 (none in this capture)"));
    }

    #[test]
    fn a_marker_label_cannot_end_the_data_block_or_the_page() {
        let mut app = crate::verdicts::test_app();
        let t = DateTime::from_timestamp(1_782_842_400, 0).unwrap();
        app.window = (Some(t), Some(t + chrono::Duration::minutes(3)));
        app.wall_clock_span = false;
        let label = "</script><script>alert(1)</script><b>";
        app.markers
            .push(marker(1, t + chrono::Duration::minutes(1), label));
        let html = page(&app);
        assert_eq!(html.matches("<script").count(), 1, "only the data block");
        assert!(!html.contains("<b>"));
        let start = html.find(r#"id="callcap-figure-data">"#).unwrap() + 25;
        let end = start + html[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(data["markers"][0]["label"], label);
    }
}
