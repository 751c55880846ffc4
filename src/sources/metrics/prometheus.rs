//! Asking a Prometheus for Synapse's latency histogram per minute
//! (`query_range`, step 60 s), live and after the fact (`analyze
//! --prometheus`). Every answer is kept verbatim beside what was read
//! from it.

use super::http::{self, Endpoint, HttpError};
use crate::domain::prometheus_api::{self, STEP_SECS};
use crate::model::metrics::{MetricsKind, MetricsReading, MetricsReport, MinuteHistograms};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// One answer: the reading made of it and the line kept for the bundle.
pub struct Answer {
    pub report: MetricsReport,
    pub raw: Vec<u8>,
}

/// Why asking failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("{0}")]
    Http(#[from] HttpError),
    /// Prometheus answered, but no: its error, or not its API at all.
    #[error("{0}")]
    Api(String),
}

pub struct Prometheus {
    ep: Endpoint,
    url: String,
    selector: Option<String>,
    /// A local forward to connect to instead (`via-ssh`).
    pub via: Option<SocketAddr>,
    pub timeout: Duration,
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Prometheus {
    pub fn new(url: &str, selector: Option<String>) -> Result<Prometheus, HttpError> {
        Ok(Prometheus {
            ep: Endpoint::parse(url)?,
            url: prometheus_api::without_password(url),
            selector,
            via: None,
            timeout: Duration::from_secs(10),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// `query_range` from `start` to `end` (unix seconds): the parsed
    /// series and the line kept for the bundle.
    async fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        now: DateTime<Utc>,
    ) -> (Result<Vec<prometheus_api::Series>, AskError>, Vec<u8>) {
        let base = self
            .ep
            .path
            .split('?')
            .next()
            .unwrap_or("/")
            .trim_end_matches('/');
        let path = format!(
            "{base}/api/v1/query_range?query={}&start={start}&end={end}&step={STEP_SECS}",
            encode(query)
        );
        let mut kept = json!({
            "at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "url": self.url,
            "query": query,
            "start": start,
            "end": end,
            "step": STEP_SECS,
        });
        let result = match http::get(&self.ep, &path, self.via, self.timeout).await {
            Err(e) => {
                kept["error"] = json!(e.to_string());
                Err(AskError::Http(e))
            }
            Ok((status, body)) => {
                kept["http_status"] = json!(status);
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => kept["answer"] = v,
                    Err(_) => {
                        kept["text"] = json!(String::from_utf8_lossy(&body[..body.len().min(4096)]))
                    }
                }
                prometheus_api::parse_matrix(&body).map_err(|e| {
                    AskError::Api(
                        if status == 200 || matches!(e, prometheus_api::ApiError::Prometheus { .. })
                        {
                            e.to_string()
                        } else {
                            format!("HTTP {status}: {e}")
                        },
                    )
                })
            }
        };
        let mut raw = serde_json::to_vec(&kept).unwrap_or_default();
        raw.push(b'\n');
        (result, raw)
    }

    fn report(&self, reading: MetricsReading) -> MetricsReport {
        MetricsReport {
            kind: MetricsKind::Prometheus,
            url: self.url.clone(),
            reading,
            raw: None,
        }
    }

    /// The whole minutes from `from` to `to` that have ended by `now`, and
    /// with `running`, the minute still running at `now` so far. Each
    /// answer is one reading; a failed one ends the asking with its error
    /// (the answers before it stand), along with the raw line of the
    /// failure.
    pub async fn minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        running: bool,
    ) -> (Vec<Answer>, Option<(AskError, Vec<u8>)>) {
        let mut out = Vec::new();
        let sel = self.selector.as_deref();
        if let Some((start, end)) = prometheus_api::window(from, to, now) {
            let (r, raw) = self
                .query_range(&prometheus_api::bucket_query(sel), start, end, now)
                .await;
            match r {
                Ok(series) => {
                    let m = prometheus_api::minutes_from_buckets(&series, STEP_SECS);
                    out.push(Answer {
                        report: self.report(minutes_reading(m, None, series.is_empty())),
                        raw,
                    });
                }
                Err(e) => return (out, Some((e, raw))),
            }
        }
        if running
            && to >= now - chrono::Duration::seconds(STEP_SECS)
            && let Some((q, t, elapsed)) = prometheus_api::running_minute_query(sel, now)
        {
            let (r, raw) = self.query_range(&q, t, t, now).await;
            match r {
                Ok(series) => {
                    let m = prometheus_api::minutes_from_buckets(&series, elapsed);
                    let partial = DateTime::from_timestamp(t - elapsed, 0);
                    out.push(Answer {
                        report: self.report(minutes_reading(m, partial, false)),
                        raw,
                    });
                }
                Err(e) => return (out, Some((e, raw))),
            }
        }
        (out, None)
    }

    /// Grafana's own overall p99 for the window, kept verbatim beside the
    /// buckets so the numbers can be checked against the dashboard's.
    pub async fn grafana_p99(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Vec<u8>> {
        let (start, end) = prometheus_api::window(from, to, now)?;
        let q = prometheus_api::grafana_p99_query(self.selector.as_deref());
        Some(self.query_range(&q, start, end, now).await.1)
    }
}

fn minutes_reading(
    m: prometheus_api::Minutes,
    partial: Option<DateTime<Utc>>,
    no_series: bool,
) -> MetricsReading {
    let mut problems = m.problems;
    if no_series {
        problems.push(format!(
            "Prometheus has no {}_bucket series for these minutes: does it scrape Synapse (enable_metrics: true), and does the selector match?",
            crate::domain::synapse_metrics::RESPONSE_TIME
        ));
    }
    MetricsReading::Minutes {
        minutes: m
            .minutes
            .into_iter()
            .map(|(minute, servlets)| MinuteHistograms { minute, servlets })
            .collect(),
        partial,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode("sum by (le) (x{a=\"b\"}[1m])"),
            "sum%20by%20%28le%29%20%28x%7Ba%3D%22b%22%7D%5B1m%5D%29"
        );
    }
}
