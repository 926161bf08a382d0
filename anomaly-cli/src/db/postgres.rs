//! PostgreSQL (`postgres://user@host:port/db`). Times are `TIMESTAMP`
//! (naive, as the plant writes them), exchanged as epoch seconds; a bulk
//! insert is one round trip: `unnest` of one array per column (so that
//! `ON CONFLICT` and `RETURNING` apply), or `COPY` for plain appends.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use ::postgres::{Client, GenericClient};
use anyhow::{bail, Result};
use bytes::BytesMut;

use super::{redact, Column, Insert, Inserted, Param, Row, Value};

/// Connects (with TLS as the URL's `sslmode` says, see `tls`). A refused
/// login or a missing database is a permanent error (bad input, exit 2,
/// not retried); an unreachable server is not.
pub(super) fn open(url: &str) -> Result<Client> {
    let mut client = super::tls::connect(url)?.map_err(|e| {
        use ::postgres::error::SqlState;
        let permanent = e.code().is_some_and(|c| {
            [SqlState::INVALID_PASSWORD, SqlState::INVALID_AUTHORIZATION_SPECIFICATION, SqlState::INVALID_CATALOG_NAME]
                .contains(c)
        });
        let error = anyhow::Error::new(e).context(format!("cannot connect to {}", redact(url)));
        if permanent {
            super::bad_input(url, error)
        } else {
            error
        }
    })?;
    // `CREATE ... IF NOT EXISTS` would log a NOTICE per existing table at every start.
    client.batch_execute("SET client_min_messages = warning")?;
    Ok(client)
}

/// Connects for reading only: the session refuses writes
/// (`default_transaction_read_only`), waits at most `lock_wait` for a lock
/// and runs a statement at most `statement`.
pub(super) fn open_read_only(url: &str, lock_wait: Duration, statement: Duration) -> Result<Client> {
    let mut client = open(url)?;
    client.batch_execute(&format!(
        "SET default_transaction_read_only = on; SET lock_timeout = {}; SET statement_timeout = {}",
        lock_wait.as_millis().max(1),
        statement.as_millis().max(1)
    ))?;
    Ok(client)
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Param::Real(x) => match *ty {
                Type::FLOAT4 => (x as f32).to_sql(ty, out),
                _ => x.to_sql(ty, out),
            },
            Param::Text(t) => t.to_sql(ty, out),
            Param::Bool(b) => b.to_sql(ty, out),
            // Bound inside `ts($N)`, which casts to double precision.
            Param::Ts(s) => (s as f64).to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn refs<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

pub(super) fn exec(c: &mut impl GenericClient, sql: &str, params: &[Param<'_>]) -> Result<usize> {
    Ok(c.execute(sql, &refs(params))? as usize)
}

pub(super) fn query(c: &mut impl GenericClient, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
    let rows = c.query(sql, &refs(params))?;
    rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect()).collect()
}

fn value(row: &::postgres::Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_();
    let v = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(|_| Value::Blob),
        _ => bail!("column {} has type {ty}: the stores read numbers, text and booleans", row.columns()[i].name()),
    };
    Ok(v.unwrap_or(Value::Null))
}

pub(super) fn insert(c: &mut ::postgres::Transaction<'_>, insert: &Insert<'_>, rows: usize) -> Result<Inserted> {
    if insert.conflict.is_empty() && insert.count_true.is_none() {
        copy(c, insert)?;
        return Ok(Inserted { rows, flagged: 0 });
    }
    // Conflicts are rare (a second writer on the same rows): try `COPY`, the
    // fastest path, in a savepoint, and only on a unique violation insert
    // again row by row with the conflict clause.
    if insert.conflict.ends_with("DO NOTHING") {
        let mut savepoint = c.transaction()?;
        match copy(&mut savepoint, insert) {
            Ok(()) => {
                savepoint.commit()?;
                let flagged = insert.count_true.map_or(0, |k| {
                    (0..rows).filter(|&i| matches!(insert.columns[k].1.param(i), Param::Bool(true))).count()
                });
                return Ok(Inserted { rows, flagged });
            }
            Err(e) if is_unique_violation(&e) => savepoint.rollback()?,
            Err(e) => return Err(e),
        }
    }
    let (mut exprs, mut arrays, mut aliases) = (Vec::new(), Vec::new(), Vec::new());
    let mut params: Vec<Box<dyn ToSql + Sync + '_>> = Vec::new();
    for (k, (_, column)) in insert.columns.iter().enumerate() {
        let secs = |v: &[i64]| v.iter().map(|&s| s as f64).collect::<Vec<f64>>();
        let (array, expr): (&str, String) = match column {
            Column::Now => {
                exprs.push("now()".to_owned());
                continue;
            }
            Column::Int(v) => {
                params.push(Box::new(v));
                ("bigint[]", format!("c{k}"))
            }
            Column::Real(v) => {
                params.push(Box::new(v));
                ("float8[]", format!("c{k}"))
            }
            Column::OptReal(v) => {
                params.push(Box::new(v));
                ("float8[]", format!("c{k}"))
            }
            Column::Text(v) => {
                params.push(Box::new(v));
                ("text[]", format!("c{k}"))
            }
            Column::OptText(v) => {
                params.push(Box::new(v));
                ("text[]", format!("c{k}"))
            }
            Column::Bool(v) => {
                params.push(Box::new(v));
                ("bool[]", format!("c{k}"))
            }
            Column::Ts(v) => {
                params.push(Box::new(secs(v)));
                ("float8[]", format!("to_timestamp(c{k}) AT TIME ZONE 'UTC'"))
            }
            Column::OptTs(v) => {
                params.push(Box::new(v.iter().map(|s| s.map(|s| s as f64)).collect::<Vec<Option<f64>>>()));
                ("float8[]", format!("to_timestamp(c{k}) AT TIME ZONE 'UTC'"))
            }
        };
        arrays.push(format!("${}::{array}", params.len()));
        aliases.push(format!("c{k}"));
        exprs.push(expr);
    }
    let names: Vec<&str> = insert.columns.iter().map(|(n, _)| *n).collect();
    let returning = insert.count_true.map(|k| format!(" RETURNING {}", names[k])).unwrap_or_default();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) {}{returning}",
        insert.table,
        names.join(", "),
        exprs.join(", "),
        arrays.join(", "),
        aliases.join(", "),
        insert.conflict
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    if insert.count_true.is_some() {
        let out = c.query(&sql, &refs)?;
        let flagged = out.iter().filter(|r| r.get::<_, bool>(0)).count();
        Ok(Inserted { rows: out.len(), flagged })
    } else {
        Ok(Inserted { rows: c.execute(&sql, &refs)? as usize, flagged: 0 })
    }
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<::postgres::Error>()
            .and_then(::postgres::Error::code)
            .is_some_and(|code| *code == ::postgres::error::SqlState::UNIQUE_VIOLATION)
    })
}

/// `COPY ... FROM STDIN` in the text format (`Now` columns take their default).
fn copy(c: &mut ::postgres::Transaction<'_>, insert: &Insert<'_>) -> Result<()> {
    let columns: Vec<&(&str, Column<'_>)> = insert.columns.iter().filter(|(_, c)| !matches!(c, Column::Now)).collect();
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let rows = insert.rows()?;
    let mut writer = c.copy_in(&format!("COPY {} ({}) FROM STDIN", insert.table, names.join(", ")))?;
    let mut buf = Vec::with_capacity(64 * 1024);
    for row in 0..rows {
        for (k, (_, column)) in columns.iter().enumerate() {
            if k > 0 {
                buf.push(b'\t');
            }
            match column.param(row) {
                Param::Null => buf.extend_from_slice(b"\\N"),
                Param::Int(i) => buf.extend_from_slice(i.to_string().as_bytes()),
                Param::Real(x) if x.is_nan() => buf.extend_from_slice(b"NaN"),
                Param::Real(x) if x.is_infinite() => {
                    buf.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" })
                }
                Param::Real(x) => crate::csvio::push_f64(&mut buf, x),
                Param::Text(t) => copy_text(&mut buf, t),
                Param::Bool(b) => buf.push(if b { b't' } else { b'f' }),
                Param::Ts(s) => anomaly_core::time::push_timestamp(&mut buf, s),
            }
        }
        buf.push(b'\n');
        if buf.len() >= 1 << 20 {
            writer.write_all(&buf)?;
            buf.clear();
        }
    }
    writer.write_all(&buf)?;
    writer.finish()?;
    Ok(())
}

/// A text field for `COPY ... FROM STDIN` (text format): backslash escapes.
fn copy_text(buf: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

/// An insert trigger announcing new rows, so that workers wake at once
/// instead of on their next poll (one notification per statement).
pub(super) fn notify_on_insert(c: &mut Client, table: &str, channel: &str) {
    let index = table.replace('.', "_");
    let trigger = format!(
        "CREATE OR REPLACE FUNCTION anomaly_notify_readings() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_notify('{channel}', TG_TABLE_NAME); RETURN NULL; END $$;
         CREATE OR REPLACE TRIGGER anomaly_notify_{index} AFTER INSERT ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION anomaly_notify_readings();"
    );
    if let Err(e) = c.batch_execute(&trigger) {
        log::warn!("cannot install the insert notification trigger ({e}); workers will poll");
    }
}

pub(super) fn wait(c: &mut Client, timeout: Duration) -> Result<()> {
    let mut notifications = c.notifications();
    if notifications.timeout_iter(timeout).next()?.is_some() {
        // Several inserts may have landed: one pass takes them all.
        while notifications.iter().next()?.is_some() {}
    }
    Ok(())
}
