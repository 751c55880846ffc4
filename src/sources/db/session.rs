//! One read-only connection: opened, checked (schema, privileges), then
//! polled. Each poll is one `REPEATABLE READ READ ONLY` transaction, so all
//! queries of a poll see the same snapshot.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, Postgres};

use super::connect::{CONNECT_TIMEOUT, ConnectSpec, DbError, describe_sqlx, is_connection_fatal};
use super::queries::{MAX_ROWS, Param, PlannedQuery, QuerySpec, tables_read};
use super::rows;
use super::schema::{Schema, Session};
use crate::config::CallConfig;
use crate::sources::Row;

const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Who is watched, from `[call]`, as query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracked {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// The user and the participants' users, deduplicated, in config order.
    pub users: Vec<String>,
    /// Localparts of the tracked users on our user's homeserver
    /// (`delayed_events` holds localparts only; users of other homeservers
    /// have their delayed events there, not here).
    pub localparts: Vec<String>,
    /// Participants that are not Matrix user ids, and similar.
    pub notes: Vec<String>,
}

impl Tracked {
    pub fn from_call(call: &CallConfig) -> Tracked {
        let mut t = Tracked {
            user_id: call.user_id.clone().filter(|u| !u.trim().is_empty()),
            device_id: call.device_id.clone().filter(|d| !d.trim().is_empty()),
            ..Tracked::default()
        };
        let mut candidates = Vec::new();
        if let Some(u) = &t.user_id {
            candidates.push(u.clone());
        }
        for p in &call.participants {
            // `@user:hs` or `@user:hs/DEVICE` (user ids cannot hold '/').
            let user = p.split_once('/').map_or(p.as_str(), |(u, _)| u).trim();
            candidates.push(user.to_string());
        }
        for u in candidates {
            if split_user_id(&u).is_none() {
                t.notes.push(format!(
                    "ignoring '{u}': not a Matrix user id (@localpart:server)"
                ));
                continue;
            }
            if !t.users.contains(&u) {
                t.users.push(u);
            }
        }
        let home = t
            .user_id
            .as_deref()
            .and_then(split_user_id)
            .map(|(_, s)| s.to_string());
        for u in &t.users {
            if let Some((local, server)) = split_user_id(u) {
                let ours = home.as_deref().is_none_or(|h| h == server);
                if ours && !t.localparts.iter().any(|l| l == local) {
                    t.localparts.push(local.to_string());
                }
            }
        }
        t
    }

    fn missing(&self, p: Param) -> Option<&'static str> {
        match p {
            Param::UserId if self.user_id.is_none() => Some("[call] user-id is not set"),
            Param::DeviceId if self.device_id.is_none() => Some("[call] device-id is not set"),
            Param::Users if self.users.is_empty() => {
                Some("no tracked users ([call] user-id, participants)")
            }
            Param::Localparts if self.localparts.is_empty() => {
                Some("no tracked user of this homeserver ([call] user-id, participants)")
            }
            _ => None,
        }
    }
}

/// `@local:server` → `(local, server)`.
pub fn split_user_id(u: &str) -> Option<(&str, &str)> {
    let rest = u.strip_prefix('@')?;
    let (local, server) = rest.split_once(':')?;
    (!local.is_empty() && !server.is_empty()).then_some((local, server))
}

/// What one poll read, before diffing.
#[derive(Debug, Clone, Default)]
pub struct RawPoll {
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    pub results: BTreeMap<String, Vec<Row>>,
    pub problems: BTreeMap<String, String>,
    pub sql: BTreeMap<String, String>,
}

/// The poller's connection.
pub struct DbSession {
    conn: PgConnection,
    endpoint: String,
    pub info: Session,
    pub schema: Schema,
    pub plan: Vec<PlannedQuery>,
    specs: Vec<QuerySpec>,
    statement_timeout: Duration,
    schema_read_at: Instant,
    /// A query hit a missing table or column: re-read the schema.
    pub schema_stale: bool,
}

/// Runs `fut` with a client-side deadline: a statement timeout does not help
/// when the network (or the SSH tunnel) stalls.
async fn deadline<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, DbError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| DbError::Timeout {
            what: what.to_string(),
            ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        })
}

impl DbSession {
    /// Connects, checks the session is read-only, reads the schema and our
    /// privileges, and fits the queries. Returns notes for the operator
    /// (adaptations, a write-privilege warning).
    pub async fn open(
        spec: &ConnectSpec,
        specs: &[QuerySpec],
    ) -> Result<(DbSession, Vec<String>), DbError> {
        tracing::debug!(endpoint = %spec.endpoint, user = %spec.user, "connecting to the database");
        let mut conn = deadline("connecting", CONNECT_TIMEOUT, spec.options.connect())
            .await?
            .map_err(|e| spec.connect_error(&e))?;
        let step = spec.statement_timeout * 2 + Duration::from_secs(3);
        let lost = |e: sqlx::Error| spec.lost(&e);

        let tables: Vec<String> = tables_read(specs).into_iter().collect();
        let schema = deadline("reading the schema", step, Schema::load(&mut conn, &tables))
            .await?
            .map_err(lost)?;
        let present: Vec<String> = tables
            .iter()
            .filter(|t| schema.has_table(t))
            .cloned()
            .collect();
        let info = deadline(
            "checking privileges",
            step,
            Session::load(&mut conn, &present),
        )
        .await?
        .map_err(lost)?;

        let mut notes = vec![format!(
            "connected to {} as '{}' (PostgreSQL {}, database '{}')",
            spec.endpoint, info.role, info.server_version, info.database
        )];
        if !info.read_only_default {
            // Startup options can be dropped by a pooler; set them again.
            let ms = spec.statement_timeout.as_millis().max(1);
            let set =
                format!("SET default_transaction_read_only = on; SET statement_timeout = {ms}");
            deadline(
                "setting the session read-only",
                step,
                sqlx::raw_sql(AssertSqlSafe(set)).execute(&mut conn),
            )
            .await?
            .map_err(lost)?;
            notes.push(
                "the server ignored the startup options; set default_transaction_read_only and statement_timeout with SET"
                    .to_string(),
            );
        }
        notes.extend(info.write_warning());
        tracing::debug!(
            endpoint = %spec.endpoint,
            role = %info.role,
            tables = present.len(),
            "database session ready"
        );
        let plan: Vec<PlannedQuery> = specs.iter().map(|s| s.plan(&schema)).collect();
        let session = DbSession {
            conn,
            endpoint: spec.endpoint.clone(),
            info,
            schema,
            plan,
            specs: specs.to_vec(),
            statement_timeout: spec.statement_timeout,
            schema_read_at: Instant::now(),
            schema_stale: false,
        };
        let mut all = session.adaptation_notes();
        all.splice(0..0, notes);
        Ok((session, all))
    }

    /// One note per adaptation of the current plan: optional columns
    /// dropped, queries skipped for a missing table or column.
    pub fn adaptation_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for p in &self.plan {
            for d in &p.dropped {
                notes.push(format!(
                    "{}: column {d} is absent here, dropped from the SELECT list",
                    p.spec.name
                ));
            }
            if let Some(why) = &p.skipped {
                notes.push(format!("{}: skipped: {why}", p.spec.name));
            }
        }
        notes
    }

    /// How long ago the schema was read.
    pub fn schema_age(&self) -> Duration {
        self.schema_read_at.elapsed()
    }

    /// Re-reads the columns and refits the queries on the same connection
    /// (Synapse was upgraded under us, or a query hit a missing column).
    /// Returns the adaptation notes of the new plan.
    pub async fn refresh_schema(&mut self) -> Result<Vec<String>, DbError> {
        let tables: Vec<String> = tables_read(&self.specs).into_iter().collect();
        let limit = self.step_limit();
        let endpoint = self.endpoint.clone();
        let schema = deadline(
            "reading the schema",
            limit,
            Schema::load(&mut self.conn, &tables),
        )
        .await?
        .map_err(|e| DbError::Lost {
            endpoint,
            reason: describe_sqlx(&e),
        })?;
        self.plan = self.specs.iter().map(|s| s.plan(&schema)).collect();
        self.schema = schema;
        self.schema_read_at = Instant::now();
        self.schema_stale = false;
        Ok(self.adaptation_notes())
    }

    fn step_limit(&self) -> Duration {
        self.statement_timeout * 2 + Duration::from_secs(3)
    }

    /// Runs every query that fits (and `event_lookup` when `event_ids` is not
    /// empty) in one read-only transaction. A query that fails on the server
    /// (timeout, missing column …) becomes a problem and the others still run;
    /// a lost connection or a client-side deadline is an error.
    pub async fn poll(
        &mut self,
        tracked: &Tracked,
        event_ids: &[String],
    ) -> Result<RawPoll, DbError> {
        let at = Utc::now();
        let started = Instant::now();
        let limit = self.step_limit();
        let mut out = RawPoll {
            at,
            ..RawPoll::default()
        };
        // Decide what runs before opening the transaction.
        let mut runnable: Vec<(String, Arc<str>, Vec<Param>, bool)> = Vec::new();
        for p in &self.plan {
            let name = p.spec.name.clone();
            let wants_ids = p.spec.params.contains(&Param::EventIds);
            if wants_ids && event_ids.is_empty() {
                continue;
            }
            if let Some(why) = &p.skipped {
                out.problems.insert(name, format!("skipped: {why}"));
                continue;
            }
            if let Some(why) = p.spec.params.iter().find_map(|&x| tracked.missing(x)) {
                out.problems.insert(name, format!("skipped: {why}"));
                continue;
            }
            if let Some(sql) = &p.sql {
                out.sql.insert(name.clone(), sql.clone());
                runnable.push((
                    name,
                    Arc::from(sql.as_str()),
                    p.spec.params.clone(),
                    p.spec.capped,
                ));
            }
        }

        let endpoint = self.endpoint.clone();
        let lost = |e: sqlx::Error| DbError::Lost {
            endpoint: endpoint.clone(),
            reason: describe_sqlx(&e),
        };
        let mut schema_stale = false;
        let conn = &mut self.conn;
        let mut tx = deadline("BEGIN", limit, conn.begin_with(BEGIN))
            .await?
            .map_err(lost)?;
        for (name, sql, params, capped) in runnable {
            let mut q = sqlx::query::<Postgres>(AssertSqlSafe(sql));
            for p in &params {
                q = bind(q, *p, tracked, event_ids);
            }
            let what = format!("query {name}");
            match deadline(&what, limit, q.fetch_all(&mut *tx)).await? {
                Ok(pg_rows) => {
                    let mut list: Vec<Row> = pg_rows.iter().map(rows::to_json).collect();
                    if capped && list.len() > MAX_ROWS {
                        list.truncate(MAX_ROWS);
                        out.problems.insert(
                            name.clone(),
                            format!(
                                "truncated: more than {MAX_ROWS} rows, kept the first {MAX_ROWS}"
                            ),
                        );
                    }
                    out.results.insert(name, list);
                }
                Err(e) if is_connection_fatal(&e) => return Err(lost(e)),
                Err(e) => {
                    let code = match &e {
                        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
                        _ => None,
                    };
                    let reason = match code.as_deref() {
                        Some("57014") => format!(
                            "statement timeout: canceled by the server after {} ms",
                            self.statement_timeout.as_millis()
                        ),
                        _ => describe_sqlx(&e),
                    };
                    // undefined table / column, or a cached plan whose
                    // result type changed: the schema moved under us.
                    if matches!(code.as_deref(), Some("42P01" | "42703" | "0A000")) {
                        schema_stale = true;
                    }
                    tracing::debug!(query = %name, %reason, "query failed");
                    out.problems.insert(name, reason);
                    // The transaction is aborted: start another for the rest.
                    deadline("ROLLBACK", limit, tx.rollback())
                        .await?
                        .map_err(lost)?;
                    tx = deadline("BEGIN", limit, conn.begin_with(BEGIN))
                        .await?
                        .map_err(lost)?;
                }
            }
        }
        deadline("ROLLBACK", limit, tx.rollback())
            .await?
            .map_err(lost)?;
        self.schema_stale |= schema_stale;
        out.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(
            duration_ms = out.duration_ms,
            queries = out.results.len(),
            problems = out.problems.len(),
            "database poll"
        );
        Ok(out)
    }

    /// Runs `sql` inside a poll's read-only transaction on this connection and
    /// returns the rows affected. Only for proving that writes are refused.
    #[doc(hidden)]
    pub async fn execute_in_poll_transaction(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        let mut tx = self.conn.begin_with(BEGIN).await?;
        let r = sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await;
        tx.rollback().await?;
        r.map(|d| d.rows_affected())
    }

    /// Runs `sql` on this connection outside a transaction (the session
    /// default applies). Only for proving that writes are refused.
    #[doc(hidden)]
    pub async fn execute_in_session(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|d| d.rows_affected())
    }

    /// Says goodbye to the server (bounded: a dead peer must not hang us).
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.close()).await;
    }
}

fn bind<'q>(
    q: sqlx::query::Query<'q, Postgres, PgArguments>,
    p: Param,
    t: &Tracked,
    event_ids: &[String],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    match p {
        Param::UserId => q.bind(t.user_id.clone().unwrap_or_default()),
        Param::DeviceId => q.bind(t.device_id.clone().unwrap_or_default()),
        Param::Users => q.bind(t.users.clone()),
        Param::Localparts => q.bind(t.localparts.clone()),
        Param::EventIds => q.bind(event_ids.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_users_and_localparts_from_call() {
        let call = CallConfig {
            user_id: Some("@alice:lotus.org".into()),
            device_id: Some("DEV".into()),
            participants: vec![
                "@bob:lotus.org/BOBDEV".into(),
                "@carol:elsewhere.net".into(),
                "@alice:lotus.org".into(),
                "not-a-user".into(),
            ],
            event_ids: vec![],
        };
        let t = Tracked::from_call(&call);
        assert_eq!(
            t.users,
            ["@alice:lotus.org", "@bob:lotus.org", "@carol:elsewhere.net"]
        );
        // carol's delayed events live on her homeserver, not in this database.
        assert_eq!(t.localparts, ["alice", "bob"]);
        assert_eq!(t.notes.len(), 1);
        assert!(t.notes[0].contains("'not-a-user'"));
        assert_eq!(t.missing(Param::DeviceId), None);
        let empty = Tracked::from_call(&CallConfig::default());
        assert!(empty.missing(Param::UserId).is_some());
        assert!(empty.missing(Param::Localparts).is_some());
    }

    #[test]
    fn split_user_id_rejects_non_ids() {
        assert_eq!(split_user_id("@a:b.c"), Some(("a", "b.c")));
        assert_eq!(split_user_id("@a:b.c:8448"), Some(("a", "b.c:8448")));
        assert_eq!(split_user_id("a:b"), None);
        assert_eq!(split_user_id("@:b"), None);
    }
}
