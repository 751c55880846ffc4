//! Checks that TOML types cannot express. The first problem found is
//! returned, naming the file, the key and the bad value.

use super::{Config, ConfigError, RedactConfig};
use std::path::Path;
use std::time::Duration;

impl Config {
    /// Checks values beyond their types: a time zone the log clock knows,
    /// intervals above zero, ids that look like Matrix ids.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };

        if let Some(ssh) = &self.ssh {
            if ssh.host.trim().is_empty() {
                return Err(bad(
                    "ssh.host",
                    "must not be empty (a host name, an address or a Host alias from ~/.ssh/config)"
                        .into(),
                ));
            }
            if ssh.port == Some(0) {
                return Err(bad("ssh.port", "'0' is not a port (1 to 65535)".into()));
            }
            if let Some(jump) = &ssh.jump
                && jump.trim().is_empty()
            {
                return Err(bad(
                    "ssh.jump",
                    "must not be empty (user@host:port of the bastion)".into(),
                ));
            }
            for (key, d) in [
                ("ssh.connect-timeout", ssh.connect_timeout),
                ("ssh.keepalive-interval", ssh.keepalive_interval),
            ] {
                if let Some(d) = d {
                    positive(d.as_duration(), &d.to_string()).map_err(|m| bad(key, m))?;
                }
            }
        }

        self.server_log
            .check()
            .map_err(|(key, message)| bad(&key, message))?;

        if let Some(user) = &self.call.user_id
            && !is_user_id(user)
        {
            return Err(bad(
                "call.user-id",
                format!("'{user}' is not a Matrix user id (expected '@user:server')"),
            ));
        }
        if let Some(device) = &self.call.device_id
            && (device.trim().is_empty() || device.contains(char::is_whitespace))
        {
            return Err(bad(
                "call.device-id",
                format!("'{device}' is not a device id (e.g. 'ABCDEFGHIJ')"),
            ));
        }
        for (i, p) in self.call.participants.iter().enumerate() {
            let (user, device) = match p.split_once('/') {
                Some((u, d)) => (u, Some(d)),
                None => (p.as_str(), None),
            };
            if !is_user_id(user) || device.is_some_and(|d| d.is_empty() || d.contains('/')) {
                return Err(bad(
                    &format!("call.participants[{i}]"),
                    format!(
                        "'{p}' is not a participant (expected '@user:server' or '@user:server/DEVICE')"
                    ),
                ));
            }
        }
        for (i, id) in self.call.event_ids.iter().enumerate() {
            if !id.starts_with('$') || id.len() < 2 || id.contains(char::is_whitespace) {
                return Err(bad(
                    &format!("call.event-ids[{i}]"),
                    format!("'{id}' is not an event id (expected '$...')"),
                ));
            }
        }

        if let Some(label) = &self.bundle.label
            && (label.trim().is_empty() || label.contains(['/', '\\']))
        {
            return Err(bad(
                "bundle.label",
                format!("'{label}' cannot name a folder (no '/' or '\\', not empty)"),
            ));
        }

        if let Some(dl) = &self.debug_loggers {
            let path = dl.log_config.to_string_lossy();
            if path.trim().is_empty() || !path.starts_with('/') {
                return Err(bad(
                    "debug-loggers.log-config",
                    format!(
                        "'{path}' must be an absolute path (e.g. \"/etc/matrix-synapse/log.yaml\")"
                    ),
                ));
            }
            if dl.loggers.is_empty() {
                return Err(bad(
                    "debug-loggers.loggers",
                    "must name at least one logger (or leave it out for the runbook's four)".into(),
                ));
            }
            for (i, l) in dl.loggers.iter().enumerate() {
                let ok = !l.is_empty()
                    && l.split('.').all(|part| {
                        !part.is_empty()
                            && part
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    });
                if !ok {
                    return Err(bad(
                        &format!("debug-loggers.loggers[{i}]"),
                        format!("'{l}' is not a logger name (e.g. 'synapse.handlers.e2e_keys')"),
                    ));
                }
            }
            if dl.reload.trim().is_empty() {
                return Err(bad(
                    "debug-loggers.reload",
                    "must not be empty (e.g. \"systemctl reload matrix-synapse\")".into(),
                ));
            }
        }

        if let Some(db) = &self.database {
            if !(db.url.starts_with("postgres://") || db.url.starts_with("postgresql://")) {
                return Err(bad(
                    "database.url",
                    format!(
                        "'{}' is not a PostgreSQL URL (expected 'postgres://user@host:5432/dbname')",
                        db.url
                    ),
                ));
            }
            if db.via_ssh && self.ssh.is_none() {
                return Err(bad(
                    "database.via-ssh",
                    "'true' needs an [ssh] section to tunnel through".into(),
                ));
            }
            for (key, d) in [
                ("database.poll-interval", db.poll_interval),
                ("database.statement-timeout", db.statement_timeout),
            ] {
                positive(d.as_duration(), &d.to_string()).map_err(|m| bad(key, m))?;
            }
        }

        if let Some(m) = &self.metrics {
            self.validate_metrics(m, path)?;
        }

        let rt = self.analysis.restart_timeout;
        positive(rt.as_duration(), &rt.to_string())
            .map_err(|m| bad("analysis.restart-timeout", m))?;

        if let Some(file) = &self.signatures.file
            && file.as_os_str().is_empty()
        {
            return Err(bad(
                "signatures.file",
                "must not be empty (leave it out to use the built-in signatures)".into(),
            ));
        }
        redact_section(&self.redact, path)
    }
}

impl Config {
    fn validate_metrics(&self, m: &super::MetricsConfig, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let url = match (&m.scrape, &m.prometheus) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "metrics",
                    "[metrics] takes 'scrape' or 'prometheus', not both: scrape Synapse's own endpoint, or ask the Prometheus that scrapes it".into(),
                ));
            }
            (None, None) => {
                return Err(bad(
                    "metrics",
                    "[metrics] needs 'scrape' (Synapse's metrics endpoint) or 'prometheus' (a Prometheus's URL)".into(),
                ));
            }
            (Some(u), None) => ("metrics.scrape", u),
            (None, Some(u)) => ("metrics.prometheus", u),
        };
        let (key, u) = url;
        if let Err(e) = crate::domain::prometheus_api::check_http_url(u) {
            return Err(bad(key, e));
        }
        if m.via_ssh && self.ssh.is_none() {
            return Err(bad(
                "metrics.via-ssh",
                "'true' needs an [ssh] section to tunnel through".into(),
            ));
        }
        let iv = m.interval.as_duration();
        positive(iv, &m.interval.to_string()).map_err(|e| bad("metrics.interval", e))?;
        if m.scrape.is_some() && iv > Duration::from_secs(60) {
            return Err(bad(
                "metrics.interval",
                format!(
                    "'{}' is longer than a minute: scrapes must be at most 60 s apart to give a p99 per minute",
                    m.interval
                ),
            ));
        }
        if let Some(sel) = &m.selector {
            if m.prometheus.is_none() {
                return Err(bad(
                    "metrics.selector",
                    "only goes with 'prometheus' (a scrape reads one Synapse)".into(),
                ));
            }
            crate::domain::prometheus_api::check_selector(sel)
                .map_err(|e| bad("metrics.selector", e))?;
        }
        Ok(())
    }
}

/// Every `[redact] extra` pattern compiles and cannot match an empty string.
pub(super) fn redact_section(redact: &RedactConfig, path: &Path) -> Result<(), ConfigError> {
    for (i, p) in redact.extra.iter().enumerate() {
        crate::domain::redact::check_site_pattern(p).map_err(|reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: format!("redact.extra[{i}]"),
            message: format!("'{p}' {reason}"),
        })?;
    }
    Ok(())
}

fn positive(d: Duration, shown: &str) -> Result<(), String> {
    if d.is_zero() {
        Err(format!("'{shown}' must be longer than zero"))
    } else {
        Ok(())
    }
}

/// `@localpart:server`, where the server may carry a port.
fn is_user_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('@') else {
        return false;
    };
    let Some((local, server)) = rest.split_once(':') else {
        return false;
    };
    !local.is_empty()
        && !server.is_empty()
        && !s.contains(char::is_whitespace)
        && !server.starts_with(':')
        && !s.contains('/')
}
