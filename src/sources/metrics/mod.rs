//! Synapse's latency metrics, a source of their own (not a log source):
//! every `interval` it scrapes Synapse's metrics listener, or asks the
//! Prometheus that scrapes it, and reports what it read as
//! [`Input::Metrics`] with the raw text behind it. Like every source it
//! reports its state (`live`; `reconnecting` while the endpoint is
//! unreachable; `error` with the reason for a page that is not Synapse's
//! metrics or an error from Prometheus; `stalled` when Prometheus has no
//! such series) and keeps going whatever fails, until the capture stops.
//!
//! With `via-ssh` the endpoint is reached through the SSH connection
//! (direct-tcpip), as the database can be: a local forward whose far end
//! is the endpoint as the SSH host sees it.

pub mod http;
pub mod prometheus;

use crate::config::{MetricsConfig, SshConfig};
use crate::domain::synapse_metrics::{self, Scrape};
use crate::model::metrics::{
    ANSWERS_FILE, MetricsKind, MetricsReading, MetricsReport, SCRAPES_FILE,
};
use crate::sources::{Input, SourceStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use http::Endpoint;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The source name in every `Input`.
pub const SOURCE: &str = "metrics";

/// What the task needs besides the config.
pub struct MetricsTask {
    pub cfg: MetricsConfig,
    /// `[ssh]`, for `via-ssh`.
    pub ssh: Option<SshConfig>,
    pub prompt: Option<crate::sources::ssh::PassphrasePrompt>,
    pub tx: mpsc::Sender<Input>,
    pub shutdown: watch::Receiver<bool>,
}

struct Reporter {
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
    last: Option<SourceStatus>,
}

impl Reporter {
    async fn send(&mut self, i: Input) -> bool {
        self.tx.send(i).await.is_ok()
    }

    async fn status(&mut self, s: SourceStatus) -> bool {
        // A retry count changes every time: report the state when it changes.
        let same = match (&self.last, &s) {
            (
                Some(SourceStatus::Reconnecting { reason: a, .. }),
                SourceStatus::Reconnecting { reason: b, .. },
            ) => a == b,
            (Some(a), b) => a == b,
            (None, _) => false,
        };
        if same {
            return true;
        }
        self.last = Some(s.clone());
        self.send(Input::status_now(SOURCE, s)).await
    }

    async fn reading(
        &mut self,
        at: DateTime<Utc>,
        report: MetricsReport,
        raw: (&str, Vec<u8>),
    ) -> bool {
        self.send(Input::Metrics {
            at,
            report: Some(Box::new(report)),
            raw: Some((raw.0.to_string(), raw.1)),
        })
        .await
    }

    /// Waits for the next tick; false once the capture stops.
    async fn tick(&mut self, ticker: &mut tokio::time::Interval) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        tokio::select! {
            _ = ticker.tick() => true,
            _ = self.shutdown.wait_for(|s| *s) => false,
        }
    }
}

/// Runs until the capture stops; never returns early but for a config the
/// source cannot use (reported as `error`).
pub async fn run(task: MetricsTask) {
    let MetricsTask {
        cfg,
        ssh,
        prompt,
        tx,
        shutdown,
    } = task;
    let mut r = Reporter {
        tx,
        shutdown,
        last: None,
    };
    if !r.status(SourceStatus::Connecting).await {
        return;
    }
    let (kind, url) = match (&cfg.scrape, &cfg.prometheus) {
        (Some(u), None) => (MetricsKind::Scrape, u.clone()),
        (None, Some(u)) => (MetricsKind::Prometheus, u.clone()),
        _ => {
            r.status(SourceStatus::Error {
                reason: "[metrics] needs exactly one of 'scrape' and 'prometheus'".into(),
            })
            .await;
            return;
        }
    };
    let ep = match Endpoint::parse(&url) {
        Ok(e) => e,
        Err(e) => {
            r.status(SourceStatus::Error {
                reason: e.to_string(),
            })
            .await;
            return;
        }
    };
    // Kept alive for as long as the task runs.
    let mut _forward = None;
    let via = match ssh.filter(|_| cfg.via_ssh) {
        Some(ssh) => match forward(&ssh, &ep, prompt, &mut r).await {
            Some(f) => {
                let addr = f.local_addr();
                _forward = Some(f);
                Some(addr)
            }
            None => return,
        },
        None => None,
    };
    match kind {
        MetricsKind::Scrape => scrape_loop(&cfg, &url, &ep, via, &mut r).await,
        MetricsKind::Prometheus => prometheus_loop(&cfg, &url, via, &mut r).await,
    }
    let _ = r.status(SourceStatus::Stopped).await;
}

/// The local forward to the endpoint through SSH, retried until it works
/// or the capture stops; `None` when retrying cannot help or it stopped.
async fn forward(
    ssh: &SshConfig,
    ep: &Endpoint,
    prompt: Option<crate::sources::ssh::PassphrasePrompt>,
    r: &mut Reporter,
) -> Option<crate::sources::ssh::LocalForward> {
    let mut attempt = 0u32;
    loop {
        match crate::sources::ssh::open_local_forward(
            ssh,
            &ep.host,
            ep.port,
            crate::sources::ssh::ForwardFrom::SshHost,
            prompt.clone(),
        )
        .await
        {
            Ok(f) => return Some(f),
            Err(e) => {
                attempt += 1;
                if e.is_fatal() {
                    r.status(SourceStatus::Error {
                        reason: format!("SSH tunnel: {e}"),
                    })
                    .await;
                    return None;
                }
                let wait = crate::sources::db::backoff(attempt);
                r.status(SourceStatus::Reconnecting {
                    attempt,
                    next_try_ms: wait.as_millis() as u64,
                    reason: format!("SSH tunnel: {e}"),
                })
                .await;
                let mut stop = r.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// A scrape's kept lines, under a comment that says when and from where.
fn scrape_block(at: DateTime<Utc>, url: &str, kept: &str) -> Vec<u8> {
    format!(
        "# callcap scrape at {} of {url}\n{kept}",
        at.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
    .into_bytes()
}

async fn scrape_loop(
    cfg: &MetricsConfig,
    url: &str,
    ep: &Endpoint,
    via: Option<SocketAddr>,
    r: &mut Reporter,
) {
    let every = cfg.interval.as_duration();
    let timeout = every.min(Duration::from_secs(10));
    let shown = crate::domain::prometheus_api::without_password(url);
    let mut ticker = ticker(every);
    let mut prev: Option<(DateTime<Utc>, Scrape)> = None;
    let mut failures = 0u32;
    while r.tick(&mut ticker).await {
        let at = Utc::now();
        let page = match http::get(ep, &ep.path, via, timeout).await {
            Err(e) => {
                failures += 1;
                r.status(SourceStatus::Reconnecting {
                    attempt: failures,
                    next_try_ms: every.as_millis() as u64,
                    reason: e.to_string(),
                })
                .await;
                continue;
            }
            Ok((status, _)) if status != 200 => {
                r.status(SourceStatus::Error {
                    reason: format!(
                        "HTTP {status} from {shown}: is this Synapse's metrics listener?"
                    ),
                })
                .await;
                continue;
            }
            Ok((_, body)) => body,
        };
        failures = 0;
        let scrape = match synapse_metrics::parse(&String::from_utf8_lossy(&page)) {
            Ok(s) => s,
            Err(e) => {
                r.status(SourceStatus::Error {
                    reason: e.to_string(),
                })
                .await;
                continue;
            }
        };
        let reading = match &prev {
            None => MetricsReading::Baseline,
            Some((since, before)) => {
                let inc = synapse_metrics::increase(before, &scrape);
                MetricsReading::Increase {
                    since: *since,
                    servlets: inc.servlets,
                    reset: inc.reset,
                }
            }
        };
        let report = MetricsReport {
            kind: MetricsKind::Scrape,
            url: shown.clone(),
            reading,
            raw: None,
        };
        let raw = scrape_block(at, &shown, &scrape.kept);
        if !r.reading(at, report, (SCRAPES_FILE, raw)).await {
            return;
        }
        prev = Some((at, scrape));
        if !r.status(SourceStatus::Live).await {
            return;
        }
    }
}

async fn prometheus_loop(
    cfg: &MetricsConfig,
    url: &str,
    via: Option<SocketAddr>,
    r: &mut Reporter,
) {
    let mut client = match prometheus::Prometheus::new(url, cfg.selector.clone()) {
        Ok(c) => c,
        Err(e) => {
            r.status(SourceStatus::Error {
                reason: e.to_string(),
            })
            .await;
            return;
        }
    };
    client.via = via;
    let every = cfg.interval.as_duration();
    client.timeout = every.min(Duration::from_secs(10));
    let start = Utc::now();
    let mut asked = false;
    let mut ticker = ticker(every);
    let mut failures = 0u32;
    while r.tick(&mut ticker).await {
        let now = Utc::now();
        // Later answers have seen more of a minute: the last three are
        // asked again each time, everything once at the start.
        let from = if asked {
            start.max(now - chrono::Duration::minutes(3))
        } else {
            start
        };
        if !ask(&client, r, from, now, &mut failures).await {
            return;
        }
        asked = true;
    }
    // The whole window once more as the capture stops, with Grafana's own
    // p99 beside it for re-checking.
    client.timeout = Duration::from_secs(3);
    let now = Utc::now();
    let _ = ask(&client, r, start, now, &mut failures).await;
    if let Some(raw) = client.grafana_p99(start, now, now).await {
        let _ = r
            .send(Input::Metrics {
                at: now,
                report: None,
                raw: Some((ANSWERS_FILE.to_string(), raw)),
            })
            .await;
    }
}

/// One round of asking; false once the capture's channel is gone.
async fn ask(
    client: &prometheus::Prometheus,
    r: &mut Reporter,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    failures: &mut u32,
) -> bool {
    let (answers, err) = client.minutes(from, now, now, true).await;
    let mut empty = false;
    for a in answers {
        if let MetricsReading::Minutes { problems, .. } = &a.report.reading {
            empty |= problems.iter().any(|p| p.starts_with("Prometheus has no"));
        }
        if !r.reading(now, a.report, (ANSWERS_FILE, a.raw)).await {
            return false;
        }
    }
    let status = match err {
        Some((prometheus::AskError::Http(e), _)) => {
            *failures += 1;
            SourceStatus::Reconnecting {
                attempt: *failures,
                next_try_ms: client.timeout.as_millis() as u64,
                reason: e.to_string(),
            }
        }
        Some((prometheus::AskError::Api(e), raw)) => {
            // Prometheus's refusal is kept too: its words are the evidence.
            let _ = r
                .send(Input::Metrics {
                    at: now,
                    report: None,
                    raw: Some((ANSWERS_FILE.to_string(), raw)),
                })
                .await;
            SourceStatus::Error { reason: e }
        }
        None if empty => SourceStatus::Stalled {
            reason: format!(
                "Prometheus at {} has no {} series: does it scrape Synapse (enable_metrics: true), and does the selector match?",
                client.url(),
                synapse_metrics::RESPONSE_TIME
            ),
        },
        None => SourceStatus::Live,
    };
    if !matches!(status, SourceStatus::Reconnecting { .. }) {
        *failures = 0;
    }
    r.status(status).await
}
