//! SQLite (bundled, no server): WAL, so that readers (dashboards) never
//! block the worker; `synchronous=NORMAL` (a crash loses at most the last
//! commits, which are then done again: the exactly-once rule holds); a
//! 256 MB page cache, because index maintenance of a large results table
//! under SQLite's 2 MB default dominates a backlog's writes.

use std::time::Duration;

use anomaly_core::time::format_timestamp;
use anyhow::Result;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql};

use super::{Column, Insert, Inserted, Param, Row, Value};

/// The page cache and temporary storage the jobs write with.
pub(super) const WRITE_SETTINGS: &str = "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY";

/// Opens the database file. A path that will never be a database (a
/// directory, a file that is not SQLite, a corrupt one) is a permanent
/// error, reported as bad input (exit 2) instead of being retried; a busy
/// or locked database is not.
pub(super) fn open(path: &str) -> Result<Connection> {
    let setup = || -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(WRITE_SETTINGS)?;
        Ok(conn)
    };
    setup().map_err(|e| {
        let permanent = matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt | ErrorCode::CannotOpen)
        );
        let message = format!("cannot open SQLite database {path}: {e}");
        if permanent {
            super::bad_input(path, anyhow::anyhow!(message))
        } else {
            anyhow::anyhow!(message)
        }
    })
}

/// Opens an existing database file for reading only: a missing file is an
/// error (not a new database), nothing is written (not even the journal
/// mode), and a statement waits at most `lock_wait` for a writer's lock.
pub(super) fn open_read_only(path: &str, lock_wait: Duration) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let setup = || -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(lock_wait)?;
        // Only settings that do not read the file: a writer's lock must not
        // hold up the connection, only the queries that need the data.
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    };
    setup().map_err(|e| anyhow::anyhow!("cannot open SQLite database {path} for reading: {e}"))
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
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(t) => Value::Text(t.to_owned()),
                    Err(_) => Value::NotUtf8,
                },
                ValueRef::Blob(_) => Value::Blob,
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// Rows per multi-row statement (within SQLite's 32,766 parameters).
const ROWS_PER_STATEMENT: usize = 256;

/// A batch insert. Conflicts are rare (a second writer on the same rows), so
/// a `DO NOTHING` insert first runs as plain multi-row statements in a
/// savepoint; only on a constraint violation does it run again row by row
/// with the conflict clause, counting what each row inserted. The insert
/// time is bound once and times are formatted into one reused buffer.
pub(super) fn insert(conn: &Connection, insert: &Insert<'_>, rows: usize) -> Result<Inserted> {
    if insert.conflict.is_empty() && insert.count_true.is_none() {
        insert_plain(conn, insert, rows)?;
        return Ok(Inserted { rows, flagged: 0 });
    }
    if insert.conflict.ends_with("DO NOTHING") {
        conn.execute_batch("SAVEPOINT anomaly_insert")?;
        match insert_plain(conn, insert, rows) {
            Ok(()) => {
                conn.execute_batch("RELEASE anomaly_insert")?;
                let flagged = insert.count_true.map_or(0, |k| {
                    (0..rows).filter(|&i| matches!(insert.columns[k].1.param(i), Param::Bool(true))).count()
                });
                return Ok(Inserted { rows, flagged });
            }
            Err(e) => {
                conn.execute_batch("ROLLBACK TO anomaly_insert; RELEASE anomaly_insert")?;
                let conflict = e
                    .downcast_ref::<rusqlite::Error>()
                    .and_then(rusqlite::Error::sqlite_error_code)
                    .is_some_and(|c| c == ErrorCode::ConstraintViolation);
                if !conflict {
                    return Err(e);
                }
            }
        }
    }
    let sql = statement(insert, 1, insert.conflict);
    let mut stmt = conn.prepare_cached(&sql)?;
    let (now, mut text) = (now_text(), String::with_capacity(32));
    let mut done = Inserted::default();
    for row in 0..rows {
        bind_row(&mut stmt, 0, insert, row, &now, &mut text)?;
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

/// All rows with multi-row statements and no conflict clause.
fn insert_plain(conn: &Connection, insert: &Insert<'_>, rows: usize) -> Result<()> {
    let (now, mut text) = (now_text(), String::with_capacity(32));
    let width = insert.columns.len();
    let per = (32_000 / width.max(1)).clamp(1, ROWS_PER_STATEMENT);
    // Two statement texts at most: full chunks, and the last, shorter one.
    let full = statement(insert, per.min(rows), "");
    let mut start = 0;
    while start < rows {
        let n = per.min(rows - start);
        let tail;
        let sql = if n == per.min(rows) {
            full.as_str()
        } else {
            tail = statement(insert, n, "");
            tail.as_str()
        };
        let mut stmt = conn.prepare_cached(sql)?;
        for k in 0..n {
            bind_row(&mut stmt, k * width, insert, start + k, &now, &mut text)?;
        }
        stmt.raw_execute()?;
        start += n;
    }
    Ok(())
}

/// `INSERT INTO t (cols) VALUES (?1, ...), ... conflict` for `rows` rows.
fn statement(insert: &Insert<'_>, rows: usize, conflict: &str) -> String {
    let names: Vec<&str> = insert.columns.iter().map(|(n, _)| *n).collect();
    let width = names.len();
    let groups: Vec<String> = (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|i| format!("?{}", r * width + i)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!("INSERT INTO {} ({}) VALUES {} {conflict}", insert.table, names.join(", "), groups.join(", "))
}

/// Binds row `row` of the insert to the parameters after `base`.
fn bind_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    base: usize,
    insert: &Insert<'_>,
    row: usize,
    now: &str,
    text: &mut String,
) -> Result<()> {
    for (i, (_, column)) in insert.columns.iter().enumerate() {
        let at = base + i + 1;
        match column.param(row) {
            _ if matches!(column, Column::Now) => stmt.raw_bind_parameter(at, now)?,
            Param::Ts(s) => {
                text.clear();
                push_timestamp_str(text, s);
                stmt.raw_bind_parameter(at, text.as_str())?;
            }
            p => stmt.raw_bind_parameter(at, p)?,
        }
    }
    Ok(())
}

/// The current UTC time as SQLite's `CURRENT_TIMESTAMP` writes it.
fn now_text() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    format_timestamp(secs)
}

fn push_timestamp_str(out: &mut String, secs: i64) {
    let mut bytes = std::mem::take(out).into_bytes();
    anomaly_core::time::push_timestamp(&mut bytes, secs);
    // push_timestamp writes ASCII digits and separators only.
    *out = String::from_utf8(bytes).unwrap_or_default();
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
