//! The KE-4 pane's latency row, shown when `[metrics]` is on: the p99 of
//! each of the last 10 minutes from the access log beside the one from
//! Synapse's own histogram, on one log scale (10 ms to 10 s), red from the
//! restart timeout up; `·` a minute not read, blank a minute with no
//! request.

use super::style;
use crate::app::App;
use crate::app::metrics::minute_floor;
use crate::app::stats::minute_of;
use chrono::{DateTime, Duration, Utc};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// Minutes shown per strip.
pub const MINUTES: usize = 10;

const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn cell(p99_s: Option<f64>, read: bool, timeout_s: f64) -> (char, Style) {
    match p99_s {
        None if read => (' ', style::dim()),
        None => ('·', style::dim()),
        Some(s) => {
            let x = ((s.max(0.01).log10() + 2.0) / 3.0).clamp(0.0, 1.0);
            let c = BLOCKS[(x * 7.0).round() as usize];
            (
                c,
                if s >= timeout_s {
                    style::error()
                } else {
                    style::ok()
                },
            )
        }
    }
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1}s")
    } else {
        format!("{:.0}ms", s * 1000.0)
    }
}

/// `p99/min log ▁▁█▁ 3.1s │ synapse ▁▁█▁ ≥10s`, or nothing without metrics.
pub fn line(app: &App, now: DateTime<Utc>) -> Option<Line<'static>> {
    let (kind, _) = app.metrics.source.as_ref()?;
    let timeout_s = f64::from(app.restart_timeout_ms) / 1000.0;
    let last = minute_floor(now);
    let mut spans = vec![Span::styled("p99/min log ", style::dim())];
    let mut latest = None;
    for k in (0..MINUTES).rev() {
        let m = last - Duration::minutes(k as i64);
        let l = app.latency.get(&minute_of(m));
        let p = l
            .filter(|l| l.n > 0)
            .map(|l| f64::from(l.p99_ms()) / 1000.0);
        latest = p.or(latest);
        let (c, st) = cell(p, l.is_some(), timeout_s);
        spans.push(Span::styled(c.to_string(), st));
    }
    spans.push(Span::styled(
        format!(
            " {} │ {} ",
            latest.map(secs).unwrap_or_else(|| "–".into()),
            kind.name()
        ),
        style::dim(),
    ));
    let mut latest = None;
    for (k, q) in app
        .metrics
        .p99_per_minute(now, MINUTES)
        .into_iter()
        .enumerate()
    {
        let m = last - Duration::minutes((MINUTES - 1 - k) as i64);
        let read = app.metrics.minutes.contains_key(&m);
        if let Some(q) = q {
            latest = Some(q);
        }
        let (c, st) = cell(q.map(|q| q.seconds), read, timeout_s);
        spans.push(Span::styled(c.to_string(), st));
    }
    spans.push(Span::styled(
        format!(
            " {}",
            latest.map_or_else(
                || "–".to_string(),
                |q| format!("{}{}", if q.capped { "≥" } else { "" }, secs(q.seconds))
            )
        ),
        style::dim(),
    ));
    Some(Line::from(spans))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::app::Subject;
    use crate::app::event::Event;
    use crate::domain::histogram::Histogram;
    use crate::model::metrics::{MetricsKind, MetricsReading, MetricsReport, MinuteHistograms};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_782_842_400 + s, 0).unwrap()
    }

    fn minute(minute: i64, buckets: Vec<(f64, f64)>) -> MinuteHistograms {
        MinuteHistograms {
            minute: t(minute * 60),
            servlets: [(
                "KeyUploadServlet".to_string(),
                Histogram::from_buckets(buckets).unwrap(),
            )]
            .into(),
        }
    }

    #[test]
    fn the_histograms_p99_per_minute_sits_beside_the_access_logs() {
        let mut app = App::new(Subject::default(), 2_000);
        assert!(line(&app, t(0)).is_none(), "nothing without [metrics]");
        // Minute 7: 40 fast requests; minute 8: no request; minute 9: the
        // p99 in the top bucket.
        app.update(Event::Metrics {
            at: t(9 * 60 + 30),
            report: Box::new(MetricsReport {
                kind: MetricsKind::Prometheus,
                url: "http://127.0.0.1:9090".into(),
                reading: MetricsReading::Minutes {
                    minutes: vec![
                        minute(7, vec![(0.05, 40.0), (10.0, 40.0), (f64::INFINITY, 40.0)]),
                        MinuteHistograms {
                            minute: t(8 * 60),
                            servlets: Default::default(),
                        },
                        minute(9, vec![(0.05, 10.0), (10.0, 10.0), (f64::INFINITY, 20.0)]),
                    ],
                    partial: None,
                    problems: vec![],
                },
                raw: None,
            }),
        });
        let l = line(&app, t(9 * 60 + 30)).unwrap();
        let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
        // Ten cells per source; minutes 0–6 were not read ('·').
        assert!(text.starts_with("p99/min log ··········"), "{text}");
        assert!(text.contains(" – │ prometheus ·······▃ █ ≥10.0s"), "{text}");
        let cells: Vec<&Span> = l
            .spans
            .iter()
            .filter(|s| s.content.chars().count() == 1)
            .collect();
        assert_eq!(cells.len(), 20);
        assert_eq!(cells[17].style, style::ok(), "a fast minute");
        assert_eq!(cells[19].style, style::error(), "from the timeout up");
    }
}
