//! Connection options from `[database]`: URL (with `sslmode`), password from
//! `password-env` or `~/.pgpass`/`PGPASSFILE` (as libpq), the read-only
//! session settings, an optional tunnel endpoint; and errors as one line.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::config::DatabaseConfig;

/// How long opening a connection (TCP, TLS, auth) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be read. Every variant is one line and never
/// contains a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The configuration cannot work; retrying does not help.
    #[error("[database] url: {0}")]
    Config(String),
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("login to {endpoint} as '{user}' refused: {reason}")]
    Auth {
        endpoint: String,
        user: String,
        reason: String,
    },
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: String, ms: u64 },
    #[error("connection to {endpoint} lost: {reason}")]
    Lost { endpoint: String, reason: String },
}

impl DbError {
    /// Whether retrying can help (everything but a bad configuration).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, DbError::Config(_))
    }
}

/// Where the password comes from, for hints (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The environment variable named by `password-env`.
    Env(String),
    /// The URL (works, but discouraged: it ends up in config files).
    Url,
    /// `PGPASSWORD`, as libpq.
    PgPassword,
    /// `PGPASSFILE` or `~/.pgpass`, if a line matches (checked at connect).
    PassFile,
}

impl PasswordSource {
    fn describe(&self) -> String {
        match self {
            PasswordSource::Env(v) => format!("password from ${v}"),
            PasswordSource::Url => "password from the URL".into(),
            PasswordSource::PgPassword => "password from $PGPASSWORD".into(),
            PasswordSource::PassFile => {
                "password from PGPASSFILE or ~/.pgpass if a line matched".into()
            }
        }
    }
}

/// Everything needed to open the poller's connection.
#[derive(Clone)]
pub struct ConnectSpec {
    pub(crate) options: PgConnectOptions,
    /// `host:port/db` (and the tunnel, if any), for messages.
    pub endpoint: String,
    pub user: String,
    pub password_source: PasswordSource,
    pub statement_timeout: Duration,
    /// Things the operator should know (password-env unset, loose .pgpass …).
    pub notes: Vec<String>,
    /// Why the password file was ignored, repeated in login errors.
    pgpass_ignored: Option<String>,
}

impl std::fmt::Debug for ConnectSpec {
    // PgConnectOptions' Debug would print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("password_source", &self.password_source)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

impl ConnectSpec {
    /// Builds the options from `[database]`. `tunnel` replaces host and port
    /// (a local forward through SSH); the password file is matched against
    /// the URL's host and port, as the operator wrote them. `env` reads
    /// environment variables (injectable for tests).
    pub fn new(
        db: &DatabaseConfig,
        tunnel: Option<(&str, u16)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnectSpec, DbError> {
        let url = db.url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::Config(format!(
                "'{}' is not a postgres:// URL",
                redact_url(url)
            )));
        }
        // sqlx reads PGPASSWORD, then the URL, then the password file, like libpq.
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            DbError::Config(format!(
                "'{}': {}",
                redact_url(url),
                one_line(&e.to_string())
            ))
        })?;
        let mut notes = Vec::new();
        let mut source = if url_has_password(url) {
            notes.push(
                "the [database] url holds a password; prefer password-env or ~/.pgpass".to_string(),
            );
            PasswordSource::Url
        } else if env("PGPASSWORD").is_some_and(|p| !p.is_empty()) {
            PasswordSource::PgPassword
        } else {
            PasswordSource::PassFile
        };
        if let Some(var) = db.password_env.as_deref() {
            match env(var) {
                Some(pw) if !pw.is_empty() => {
                    options = options.password(&pw);
                    source = PasswordSource::Env(var.to_string());
                }
                _ => notes.push(format!(
                    "password-env names ${var}, which is not set; trying {}",
                    match source {
                        PasswordSource::Url => "the URL's password",
                        PasswordSource::PgPassword => "$PGPASSWORD",
                        _ => "PGPASSFILE / ~/.pgpass",
                    }
                )),
            }
        }
        let pgpass_ignored = if source == PasswordSource::PassFile {
            pgpass_permission_note(env)
        } else {
            None
        };
        notes.extend(pgpass_ignored.clone());

        let original = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let endpoint = match tunnel {
            Some((host, port)) => {
                options = options.host(host).port(port);
                if matches!(options.get_ssl_mode(), PgSslMode::VerifyFull) {
                    notes.push(
                        "sslmode=verify-full checks the certificate against the tunnel's host name; \
                         use verify-ca (or require) through an SSH tunnel"
                            .to_string(),
                    );
                }
                format!("{original} via tunnel {host}:{port}")
            }
            None => original,
        };
        let statement_timeout = db.statement_timeout.as_duration();
        let st_ms = statement_timeout.as_millis().max(1);
        // The session itself refuses writes; each poll is also a READ ONLY
        // transaction. idle_in_transaction bounds a snapshot we might leak.
        options = options.application_name("callcap").options([
            ("default_transaction_read_only", "on".to_string()),
            ("statement_timeout", st_ms.to_string()),
            ("idle_in_transaction_session_timeout", "60000".to_string()),
        ]);
        let user = options.get_username().to_string();
        Ok(ConnectSpec {
            options,
            endpoint,
            user,
            password_source: source,
            statement_timeout,
            notes,
            pgpass_ignored,
        })
    }

    /// The host connected to (the tunnel's, when there is one).
    pub fn host(&self) -> &str {
        self.options.get_host()
    }

    pub fn port(&self) -> u16 {
        self.options.get_port()
    }

    fn password_hint(&self) -> String {
        match &self.pgpass_ignored {
            Some(why) => format!("{}; {why}", self.password_source.describe()),
            None => self.password_source.describe(),
        }
    }

    /// Turns an error of connecting into one line with a hint.
    pub fn connect_error(&self, e: &sqlx::Error) -> DbError {
        if let sqlx::Error::Database(d) = e {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let msg = one_line(d.message());
            match code.as_str() {
                "28P01" => {
                    return DbError::Auth {
                        endpoint: self.endpoint.clone(),
                        user: self.user.clone(),
                        reason: format!(
                            "{msg} ({}; set password-env or a ~/.pgpass line)",
                            self.password_hint()
                        ),
                    };
                }
                "28000" => {
                    let hint = if msg.contains("no encryption") {
                        " (the server wants TLS: add ?sslmode=require to the URL)"
                    } else {
                        " (pg_hba.conf does not admit this host/user: connect through the SSH host with via-ssh)"
                    };
                    return DbError::Auth {
                        endpoint: self.endpoint.clone(),
                        user: self.user.clone(),
                        reason: format!("{msg}{hint}"),
                    };
                }
                _ => {
                    return DbError::Connect {
                        endpoint: self.endpoint.clone(),
                        reason: format!("{msg} (SQLSTATE {code})"),
                    };
                }
            }
        }
        let reason = describe_sqlx(e);
        if reason.contains("password") && !matches!(e, sqlx::Error::Io(_)) {
            return DbError::Auth {
                endpoint: self.endpoint.clone(),
                user: self.user.clone(),
                reason: format!("{reason} ({})", self.password_hint()),
            };
        }
        DbError::Connect {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }

    /// An error on an open connection: lost (reconnect) or a query problem.
    pub fn lost(&self, e: &sqlx::Error) -> DbError {
        DbError::Lost {
            endpoint: self.endpoint.clone(),
            reason: describe_sqlx(e),
        }
    }
}

/// One line describing a sqlx error, without its "error returned from …" prefix.
pub fn describe_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            format!("{} (SQLSTATE {code})", one_line(d.message()))
        }
        sqlx::Error::Io(io) => one_line(&io.to_string()),
        sqlx::Error::Tls(t) => format!("TLS: {}", one_line(&t.to_string())),
        other => one_line(&other.to_string()),
    }
}

/// Whether a server error means the connection itself is gone (shutdown,
/// crash, admin termination, connection exception), rather than one query.
pub fn is_connection_fatal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            code.starts_with("57P") || code.starts_with("08")
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    in_userinfo || query_pairs(url).any(|(k, _)| k == "password")
}

fn query_pairs(url: &str) -> impl Iterator<Item = (&str, &str)> {
    url.split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
}

/// The URL with any password replaced by `***`, safe to show and log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let after = match after.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => after.to_string(),
    };
    format!("{scheme}://{authority}{after}")
}

/// libpq (and sqlx) ignore a password file readable by group or others;
/// say so instead of failing later with a bare "password authentication failed".
fn pgpass_permission_note(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = match env("PGPASSFILE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env("HOME")?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is ignored: its permissions {mode:04o} let others read it (chmod 600 it)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::HumanDuration;

    fn db(url: &str, password_env: Option<&str>) -> DatabaseConfig {
        DatabaseConfig {
            url: url.into(),
            password_env: password_env.map(String::from),
            via_ssh: false,
            poll_interval: HumanDuration::from_secs(5),
            statement_timeout: HumanDuration::from_secs(2),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn redacts_passwords_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://synapse:s3cret@10.10.10.44:5432/synapse?sslmode=require"),
            "postgres://synapse:***@10.10.10.44:5432/synapse?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=x&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn password_env_wins_and_is_never_shown() {
        let env = |k: &str| (k == "CALLCAP_DB_PASSWORD").then(|| "hunter2".to_string());
        let s = ConnectSpec::new(
            &db(
                "postgres://synapse@10.10.10.44:5432/synapse",
                Some("CALLCAP_DB_PASSWORD"),
            ),
            None,
            &env,
        )
        .unwrap();
        assert_eq!(
            s.password_source,
            PasswordSource::Env("CALLCAP_DB_PASSWORD".into())
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.endpoint, "10.10.10.44:5432/synapse");
        assert_eq!(s.user, "synapse");
    }

    #[test]
    fn unset_password_env_falls_back_to_pgpass_with_a_note() {
        let s = ConnectSpec::new(
            &db("postgres://synapse@db/synapse", Some("NOPE_UNSET")),
            None,
            &no_env,
        )
        .unwrap();
        assert_eq!(s.password_source, PasswordSource::PassFile);
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("$NOPE_UNSET, which is not set")),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn tunnel_replaces_endpoint_and_keeps_ssl_mode() {
        let s = ConnectSpec::new(
            &db(
                "postgres://synapse@10.10.10.44:5432/synapse?sslmode=verify-full",
                None,
            ),
            Some(("127.0.0.1", 40001)),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            s.endpoint,
            "10.10.10.44:5432/synapse via tunnel 127.0.0.1:40001"
        );
        assert_eq!(s.options.get_host(), "127.0.0.1");
        assert_eq!(s.options.get_port(), 40001);
        assert!(matches!(s.options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert!(s.notes.iter().any(|n| n.contains("verify-full")));
    }

    #[test]
    fn read_only_session_options_are_set() {
        let s = ConnectSpec::new(&db("postgres://u@h/d", None), None, &no_env).unwrap();
        let o = s.options.get_options().unwrap_or("");
        assert!(o.contains("-c default_transaction_read_only=on"), "{o}");
        assert!(o.contains("-c statement_timeout=2000"), "{o}");
    }

    #[test]
    fn bad_urls_are_config_errors_without_password() {
        let e = ConnectSpec::new(&db("mysql://u:pw@h/d", None), None, &no_env).unwrap_err();
        assert!(!e.is_retryable());
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = ConnectSpec::new(
            &db("postgres://u:pw@h/d?sslmode=bogus", None),
            None,
            &no_env,
        )
        .unwrap_err();
        assert!(matches!(e, DbError::Config(_)), "{e}");
        assert!(!e.to_string().contains(":pw@"), "{e}");
    }

    #[test]
    fn url_password_gets_a_note() {
        let s = ConnectSpec::new(&db("postgres://u:pw@h/d", None), None, &no_env).unwrap();
        assert_eq!(s.password_source, PasswordSource::Url);
        assert!(s.notes.iter().any(|n| n.contains("holds a password")));
        assert!(s.notes.iter().all(|n| !n.contains("pw")));
    }
}
