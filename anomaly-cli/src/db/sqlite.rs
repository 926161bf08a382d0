//! SQLite (bundled, no server): WAL, so that readers (dashboards) never
//! block the worker; `synchronous=NORMAL` (a crash loses at most the last
//! commits, which are then done again: the exactly-once rule holds); a
//! 256 MB page cache, because index maintenance of a large results table
//! under SQLite's 2 MB default dominates a backlog's writes.

use std::time::Duration;

use anomaly_core::time::format_timestamp;
use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Insert, Inserted, Param, Row, Value};

pub(super) fn open(path: &str) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open SQLite database {path}"))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            Param::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(x)),
            Param::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Param::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(b))),
            Param::Ts(s) => ToSqlOutput::from(format_timestamp(s)),
        })
    }
}

pub(super) fn exec(conn: &Connection, sql: &str, params: &[Param<'_>]) -> Result<usize> {
    Ok(conn.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?)
}

pub(super) fn query(conn: &Connection, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(x) => Value::Real(x),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => Value::Blob,
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// One prepared statement for the batch (SQLite has no round trips to save).
pub(super) fn insert(conn: &Connection, insert: &Insert<'_>, rows: usize) -> Result<Inserted> {
    let names: Vec<&str> = insert.columns.iter().map(|(n, _)| *n).collect();
    let values: Vec<String> = insert
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, c))| match c {
            super::Column::Now => "strftime('%Y-%m-%d %H:%M:%S', 'now')".to_owned(),
            _ => format!("?{}", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) {}",
        insert.table,
        names.join(", "),
        values.join(", "),
        insert.conflict
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut done = Inserted::default();
    for row in 0..rows {
        for (i, (_, column)) in insert.columns.iter().enumerate() {
            // `Now` columns have no placeholder (their number is skipped).
            if !matches!(column, super::Column::Now) {
                stmt.raw_bind_parameter(i + 1, column.param(row))?;
            }
        }
        let n = stmt.raw_execute()?;
        done.rows += n;
        if n > 0 {
            if let Some(k) = insert.count_true {
                done.flagged += usize::from(matches!(insert.columns[k].1.param(row), Param::Bool(true)));
            }
        }
    }
    Ok(done)
}

/// `$N` placeholders as SQLite's numbered `?N`.
pub(super) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}
