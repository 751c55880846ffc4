//! Postgres rows as JSON objects keyed by column name, in SELECT order.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Column, Row as _, TypeInfo, ValueRef};

use crate::sources::Row;

/// Converts one row. Types the queries do not produce are kept as a marker
/// string rather than failing the whole poll.
pub fn to_json(row: &PgRow) -> Row {
    let mut out = Row::new();
    for (i, col) in row.columns().iter().enumerate() {
        out.insert(
            col.name().to_string(),
            value(row, i, col.type_info().name()),
        );
    }
    out
}

fn value(row: &PgRow, i: usize, ty: &str) -> Value {
    match row.try_get_raw(i) {
        Ok(raw) if raw.is_null() => return Value::Null,
        Ok(_) => {}
        Err(e) => return Value::String(format!("<unreadable: {e}>")),
    }
    let v: Result<Value, sqlx::Error> = match ty {
        "BOOL" => row.try_get::<bool, _>(i).map(Value::from),
        "INT2" => row.try_get::<i16, _>(i).map(Value::from),
        "INT4" => row.try_get::<i32, _>(i).map(Value::from),
        "INT8" => row.try_get::<i64, _>(i).map(Value::from),
        "FLOAT4" => row.try_get::<f32, _>(i).map(Value::from),
        "FLOAT8" => row.try_get::<f64, _>(i).map(Value::from),
        "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" | "CHAR" | "UNKNOWN" => {
            row.try_get::<String, _>(i).map(Value::from)
        }
        "JSON" | "JSONB" => row.try_get::<Value, _>(i),
        "TIMESTAMPTZ" => row
            .try_get::<DateTime<Utc>, _>(i)
            .map(|t| Value::from(t.to_rfc3339())),
        "TIMESTAMP" => row
            .try_get::<NaiveDateTime, _>(i)
            .map(|t| Value::from(t.to_string())),
        "TEXT[]" | "VARCHAR[]" | "NAME[]" => row.try_get::<Vec<String>, _>(i).map(Value::from),
        "BYTEA" => row
            .try_get::<Vec<u8>, _>(i)
            .map(|b| Value::from(hex::encode(b))),
        other => return Value::String(format!("<unsupported type {other}>")),
    };
    v.unwrap_or_else(|e| Value::String(format!("<undecodable {ty}: {e}>")))
}
