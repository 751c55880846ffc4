//! What the database really has (information_schema) and what our role may
//! do with it (`has_table_privilege`), read once per connection.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{PgConnection, Row};

/// Tables and their columns, as visible to our role on the search path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    tables: BTreeMap<String, BTreeSet<String>>,
}

impl Schema {
    pub fn insert(&mut self, table: &str, column: &str) {
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(column.to_string());
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables.get(table).is_some_and(|c| c.contains(column))
    }

    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Reads the columns of `tables` from information_schema (which lists
    /// only what our role can see, so "absent" may mean "not granted").
    pub async fn load(conn: &mut PgConnection, tables: &[String]) -> Result<Schema, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name \
             FROM information_schema.columns AS c \
             WHERE c.table_schema::text = ANY (current_schemas(false)::text[]) \
               AND c.table_name::text = ANY ($1)",
        )
        .bind(tables)
        .fetch_all(conn)
        .await?;
        let mut schema = Schema::default();
        for row in rows {
            let t: String = row.try_get("table_name")?;
            let c: String = row.try_get("column_name")?;
            schema.insert(&t, &c);
        }
        Ok(schema)
    }
}

/// Who we are connected as and what that role could change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub role: String,
    pub database: String,
    pub superuser: bool,
    pub server_version: String,
    /// `default_transaction_read_only` as the server reports it.
    pub read_only_default: bool,
    /// Tables we read on which the role holds a write privilege, with them.
    pub writable: Vec<(String, Vec<&'static str>)>,
}

const WRITE_PRIVILEGES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];

impl Session {
    /// Reads the role, the server and the role's write privileges on
    /// `tables` (which must exist: `has_table_privilege` fails otherwise).
    pub async fn load(conn: &mut PgConnection, tables: &[String]) -> Result<Session, sqlx::Error> {
        let row = sqlx::query(
            "SELECT current_user::text AS role, current_database()::text AS db, \
             coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser, \
             current_setting('server_version') AS version, \
             current_setting('default_transaction_read_only') AS ro",
        )
        .fetch_one(&mut *conn)
        .await?;
        let ro: String = row.try_get("ro")?;
        let mut session = Session {
            role: row.try_get("role")?,
            database: row.try_get("db")?,
            superuser: row.try_get("superuser")?,
            server_version: row.try_get("version")?,
            read_only_default: ro == "on",
            writable: Vec::new(),
        };
        let rows = sqlx::query(
            "SELECT t AS table_name, \
             has_table_privilege(t, 'INSERT') AS i, has_table_privilege(t, 'UPDATE') AS u, \
             has_table_privilege(t, 'DELETE') AS d, has_table_privilege(t, 'TRUNCATE') AS tr \
             FROM unnest($1::text[]) AS t ORDER BY t",
        )
        .bind(tables)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let flags: [bool; 4] = [
                row.try_get("i")?,
                row.try_get("u")?,
                row.try_get("d")?,
                row.try_get("tr")?,
            ];
            let privs: Vec<&'static str> = WRITE_PRIVILEGES
                .iter()
                .zip(flags)
                .filter(|(_, f)| *f)
                .map(|(p, _)| *p)
                .collect();
            if !privs.is_empty() {
                session.writable.push((row.try_get("table_name")?, privs));
            }
        }
        Ok(session)
    }

    /// The pane's warning when our role could write, else `None`.
    pub fn write_warning(&self) -> Option<String> {
        if self.writable.is_empty() {
            return None;
        }
        let who = if self.superuser {
            format!("role '{}' is a superuser", self.role)
        } else {
            format!("role '{}' holds write privileges", self.role)
        };
        let tables: Vec<String> = self
            .writable
            .iter()
            .map(|(t, p)| format!("{t} ({})", p.join("/")))
            .collect();
        Some(format!(
            "warning: {who} and could write to {}; callcap only reads (read-only session and transactions), \
             but a SELECT-only role is the real guard: see docs/db-readonly-role.md",
            tables.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_names_role_tables_and_privileges() {
        let s = Session {
            role: "synapse".into(),
            writable: vec![("devices".into(), vec!["INSERT", "DELETE"])],
            ..Session::default()
        };
        let w = s.write_warning().unwrap_or_default();
        assert!(w.contains("role 'synapse' holds write privileges"), "{w}");
        assert!(w.contains("devices (INSERT/DELETE)"), "{w}");
        assert!(w.contains("docs/db-readonly-role.md"), "{w}");
        assert_eq!(Session::default().write_warning(), None);
    }
}
