//! Prometheus's HTTP API: the queries callcap asks (Synapse's latency
//! histogram per minute and servlet) and its answers, `query_range`'s
//! matrix or its error JSON.

use super::histogram::Histogram;
use super::synapse_metrics::{NO_SERVLET, RESPONSE_TIME};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// The query's step and rate window: one point per minute, each the
/// increase over the minute before it.
pub const STEP_SECS: i64 = 60;

/// `sum by (le, servlet) (increase(…_bucket{selector}[1m]))`: every
/// servlet's buckets per minute, from which the p99 follows as
/// `histogram_quantile` computes it (the quantile of an increase equals that
/// of the rate Grafana plots).
pub fn bucket_query(selector: Option<&str>) -> String {
    let matchers = selector_matchers(selector.unwrap_or(""));
    format!("sum by (le, servlet) (increase({RESPONSE_TIME}_bucket{{{matchers}}}[1m]))")
}

/// Grafana's own overall p99 (long polls left out), kept with the answers
/// so the numbers can be checked against the dashboard's.
pub fn grafana_p99_query(selector: Option<&str>) -> String {
    let mut matchers = selector_matchers(selector.unwrap_or(""));
    if !matchers.is_empty() {
        matchers.push(',');
    }
    format!(
        "histogram_quantile(0.99, sum by (le) (rate({RESPONSE_TIME}_bucket{{{matchers}servlet!~\"SyncRestServlet|SlidingSyncRestServlet\"}}[1m])))"
    )
}

/// The matchers inside a selector's braces: `{job="synapse"}` → `job="synapse"`.
pub fn selector_matchers(selector: &str) -> String {
    let s = selector.trim();
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    s.trim().trim_end_matches(',').to_string()
}

/// Whether a selector is one: `{…}` with balanced quotes and no braces
/// inside (it is pasted into every query).
pub fn check_selector(selector: &str) -> Result<(), String> {
    let s = selector.trim();
    if !(s.starts_with('{') && s.ends_with('}')) || s.len() < 2 {
        return Err(format!(
            "'{selector}' is not a label selector (expected e.g. '{{job=\"synapse\"}}')"
        ));
    }
    let inner = &s[1..s.len() - 1];
    let mut quoted = false;
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' | '}' if !quoted => {
                return Err(format!("'{selector}' has a brace inside the selector"));
            }
            _ => {}
        }
    }
    if quoted {
        return Err(format!("'{selector}' has an unclosed quote"));
    }
    Ok(())
}

/// Whether `url` is an `http://` or `https://` URL with a host.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!(
                "'{}' is not an http:// or https:// URL",
                without_password(url)
            )
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("'{}' names no host", without_password(url)));
    }
    Ok(())
}

/// `url` with the password of its `user:password@` part replaced, fit to
/// show, journal and put in a bundle.
pub fn without_password(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:<redacted>")
            } else {
                user.to_string()
            };
            format!("{scheme}{shown}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// Why an answer is no use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Prometheus said no (`{"status":"error",…}`): its own words.
    #[error("Prometheus: {error_type}: {error}")]
    Prometheus { error_type: String, error: String },
    #[error("not a Prometheus API answer{0}")]
    NotPrometheus(String),
}

/// One series of a matrix: its labels and its `(time, value)` points.
pub type Series = (BTreeMap<String, String>, Vec<(i64, String)>);

/// Reads a `query_range` answer.
pub fn parse_matrix(body: &[u8]) -> Result<Vec<Series>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        let start: String =
            String::from_utf8_lossy(&body[..body.len().min(40)]).replace(['\n', '\r'], " ");
        ApiError::NotPrometheus(format!(" (it starts '{start}')"))
    })?;
    match v.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("(none)")
                    .to_string()
            };
            return Err(ApiError::Prometheus {
                error_type: s("errorType"),
                error: s("error"),
            });
        }
        _ => return Err(ApiError::NotPrometheus(" (no \"status\")".into())),
    }
    let data = &v["data"];
    if data.get("resultType").and_then(Value::as_str) != Some("matrix") {
        return Err(ApiError::NotPrometheus(
            " (its result is not a matrix)".into(),
        ));
    }
    let mut out = Vec::new();
    for r in data["result"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = r["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let points = r["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let t = p.get(0)?.as_f64()?;
                let v = p.get(1)?.as_str()?.to_string();
                Some((t.round() as i64, v))
            })
            .collect();
        out.push((labels, points));
    }
    Ok(out)
}

/// Per-minute histograms from [`bucket_query`]'s answer: a point at `t`
/// covers the `span` seconds before it, which start a minute (the query's
/// 1-minute points end on minute boundaries; the minute still running is
/// asked for with the seconds it has had so far).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minutes {
    pub minutes: BTreeMap<DateTime<Utc>, BTreeMap<String, Histogram>>,
    /// What could not be used (NaN, a bucket missing), in words.
    pub problems: Vec<String>,
}

pub fn minutes_from_buckets(series: &[Series], span: i64) -> Minutes {
    let mut raw: BTreeMap<(i64, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut bad: BTreeMap<String, usize> = BTreeMap::new();
    for (labels, points) in series {
        let Some(le) = labels.get("le").and_then(|l| parse_float(l)) else {
            *bad.entry("a series without a readable 'le'".into())
                .or_default() += 1;
            continue;
        };
        let servlet = labels
            .get("servlet")
            .filter(|s| !s.is_empty())
            .map_or(NO_SERVLET, String::as_str)
            .to_string();
        for (t, v) in points {
            // A time no minute can start at (a garbled answer) is left out.
            let Some(start) = t
                .checked_sub(span)
                .and_then(|s| s.div_euclid(STEP_SECS).checked_mul(STEP_SECS))
            else {
                *bad.entry(format!("a point at time {t}")).or_default() += 1;
                continue;
            };
            match parse_float(v) {
                Some(x) if x.is_finite() && x >= 0.0 => raw
                    .entry((start, servlet.clone()))
                    .or_default()
                    .push((le, x)),
                _ => *bad.entry(format!("value '{v}'")).or_default() += 1,
            }
        }
    }
    let mut out = Minutes::default();
    for ((start, servlet), buckets) in raw {
        let Some(minute) = DateTime::from_timestamp(start, 0) else {
            continue;
        };
        match Histogram::from_buckets(buckets) {
            Some(h) => {
                out.minutes.entry(minute).or_default().insert(servlet, h);
            }
            None => {
                *bad.entry("a minute without its +Inf bucket".into())
                    .or_default() += 1;
            }
        }
    }
    out.problems = bad
        .into_iter()
        .map(|(what, n)| format!("{n} × {what} left out"))
        .collect();
    out
}

/// A Prometheus sample value: a float, `NaN`, `+Inf` or `-Inf`.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The bucket query for the minute still running at `now`: the increase
/// over the seconds it has had (`None` in its first 5 s).
pub fn running_minute_query(
    selector: Option<&str>,
    now: DateTime<Utc>,
) -> Option<(String, i64, i64)> {
    let t = now.timestamp();
    let elapsed = t.rem_euclid(STEP_SECS);
    (elapsed >= 5).then(|| {
        let q = bucket_query(selector).replace("[1m]", &format!("[{elapsed}s]"));
        (q, t, elapsed)
    })
}

/// The `query_range` window for the minutes from `from` to `to`: the first
/// point ends the minute `from` falls in, the last ends the last minute
/// wholly before `now` (a minute still running has no point yet).
pub fn window(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Option<(i64, i64)> {
    let start = from.timestamp().div_euclid(STEP_SECS) * STEP_SECS + STEP_SECS;
    let last_full = now.timestamp().div_euclid(STEP_SECS) * STEP_SECS;
    let end = (to.timestamp().div_euclid(STEP_SECS) * STEP_SECS + STEP_SECS).min(last_full);
    (end >= start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_password() {
        assert!(check_http_url("http://127.0.0.1:9090").is_ok());
        assert!(check_http_url("https://prom.example.org/prometheus").is_ok());
        assert!(check_http_url("127.0.0.1:9090").is_err());
        assert!(check_http_url("http:///metrics").is_err());
        let e = check_http_url("ftp://u:hunter2@h/").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            without_password("https://ops:hunter2@prom.example.org:9090/p?x=1"),
            "https://ops:<redacted>@prom.example.org:9090/p?x=1"
        );
        assert_eq!(without_password("http://h:1/m"), "http://h:1/m");
    }

    #[test]
    fn the_queries_carry_the_selector() {
        assert_eq!(
            bucket_query(Some("{job=\"synapse\"}")),
            "sum by (le, servlet) (increase(synapse_http_server_response_time_seconds_bucket{job=\"synapse\"}[1m]))"
        );
        assert_eq!(
            bucket_query(None),
            "sum by (le, servlet) (increase(synapse_http_server_response_time_seconds_bucket{}[1m]))"
        );
        assert!(grafana_p99_query(Some("{job=\"s\"}")).contains("{job=\"s\",servlet!~"));
        assert!(check_selector("{job=\"synapse\",instance=~\"a}b\"}").is_ok());
        assert!(check_selector("job=\"synapse\"").is_err());
        assert!(check_selector("{job=\"x}").is_err());
        assert!(check_selector("{a=\"1\"}{b=\"2\"}").is_err());
    }

    #[test]
    fn an_answer_becomes_minutes_and_an_error_its_words() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"le":"0.5","servlet":"KeyUploadServlet"},"values":[[1782842460,"10"],[1782842520,"NaN"]]},
            {"metric":{"le":"+Inf","servlet":"KeyUploadServlet"},"values":[[1782842460,"12.5"],[1782842520,"3"]]}]}}"#;
        let m = minutes_from_buckets(&parse_matrix(body).unwrap(), STEP_SECS);
        let first = DateTime::from_timestamp(1_782_842_400, 0).unwrap();
        let h = &m.minutes[&first]["KeyUploadServlet"];
        assert_eq!(
            (h.le.clone(), h.cumulative.clone(), h.total),
            (vec![0.5], vec![10.0], 12.5)
        );
        // The second minute's 0.5 bucket was NaN: its histogram lacks it.
        assert_eq!(m.problems, vec!["1 × value 'NaN' left out"]);
        let err =
            br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}"#;
        assert_eq!(
            parse_matrix(err).unwrap_err().to_string(),
            "Prometheus: bad_data: invalid parameter \"query\""
        );
        assert!(matches!(
            parse_matrix(b"<html>"),
            Err(ApiError::NotPrometheus(_))
        ));
    }

    #[test]
    fn the_window_holds_whole_minutes_only() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        // 12:00:30 to 12:03:10, now 12:03:20: minutes 12:00, 12:01, 12:02.
        let base = 1_782_842_400;
        assert_eq!(
            window(t(base + 30), t(base + 190), t(base + 200)),
            Some((base + 60, base + 180))
        );
        assert_eq!(
            window(t(base + 30), t(base + 190), t(base + 600)),
            Some((base + 60, base + 240))
        );
        assert_eq!(window(t(base + 30), t(base + 40), t(base + 50)), None);
    }
}
