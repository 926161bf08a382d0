//! Everything checked before connecting: the database URL (which engine,
//! shown without its password) and the table and column names spliced into
//! SQL.

use std::path::PathBuf;
use std::{fmt, ops};

use anyhow::{bail, Result};

use crate::input_error::InputError;

/// Checks a name spliced into SQL (tables, columns): letters, digits and
/// `_`, not starting with a digit, at most 63 characters (PostgreSQL's
/// limit), and not a word SQLite or PostgreSQL reserves (`select`,
/// `order`, ...), which would turn the job's SQL into a syntax error; a
/// schema-qualified name (`plant.readings`) checks each part.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let shape = !name.is_empty()
        && name.len() <= 63
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit())
        });
    if !shape {
        bail!("name {name:?}: use letters, digits and underscores (at most 63), a schema and a dot before it if any");
    }
    match name.split('.').find(|part| is_reserved(part)) {
        Some(word) if word == name => bail!("name {name:?} is a reserved SQL word: choose another name"),
        Some(word) => bail!("name {name:?}: {word:?} is a reserved SQL word: choose another name"),
        None => Ok(()),
    }
}

/// Whether `word` is reserved (case-insensitive): see [`RESERVED`].
fn is_reserved(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    RESERVED.binary_search(&upper.as_str()).is_ok()
}

/// The words neither database takes as a bare table or column name,
/// sorted: SQLite's keywords that its parser cannot take as a name (its
/// other keywords, such as `current`, `key` or `temp`, are names there
/// too), and PostgreSQL's reserved keywords (`pg_get_keywords()`,
/// categories R and T). The tests check both lists against the engines.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "ADD", "ALL", "ALTER", "ANALYSE", "ANALYZE", "AND", "ANY", "ARRAY", "AS", "ASC", "ASYMMETRIC", "AUTHORIZATION",
    "AUTOINCREMENT", "BETWEEN", "BINARY", "BOTH", "CASE", "CAST", "CHECK", "COLLATE", "COLLATION", "COLUMN", "COMMIT",
    "CONCURRENTLY", "CONSTRAINT", "CREATE", "CROSS", "CURRENT_CATALOG", "CURRENT_DATE", "CURRENT_ROLE",
    "CURRENT_SCHEMA", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "DEFAULT", "DEFERRABLE", "DELETE", "DESC",
    "DISTINCT", "DO", "DROP", "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "FALSE", "FETCH", "FOR", "FOREIGN",
    "FREEZE", "FROM", "FULL", "GRANT", "GROUP", "HAVING", "IF", "ILIKE", "IN", "INDEX", "INITIALLY", "INNER",
    "INSERT", "INTERSECT", "INTO", "IS", "ISNULL", "JOIN", "LATERAL", "LEADING", "LEFT", "LIKE", "LIMIT", "LOCALTIME",
    "LOCALTIMESTAMP", "NATURAL", "NOT", "NOTHING", "NOTNULL", "NULL", "OFFSET", "ON", "ONLY", "OR", "ORDER", "OUTER",
    "OVERLAPS", "PLACING", "PRIMARY", "RAISE", "REFERENCES", "RETURNING", "RIGHT", "SELECT", "SESSION_USER", "SET",
    "SIMILAR", "SOME", "SYMMETRIC", "SYSTEM_USER", "TABLE", "TABLESAMPLE", "THEN", "TO", "TRAILING", "TRANSACTION",
    "TRUE", "UNION", "UNIQUE", "UPDATE", "USER", "USING", "VALUES", "VARIADIC", "VERBOSE", "WHEN", "WHERE", "WINDOW",
    "WITH",
];

/// A URL or name error: the input's fault (exit 2).
pub(crate) fn bad_input(url: &str, e: anyhow::Error) -> anyhow::Error {
    InputError::Csv { path: PathBuf::from(redact(url)), message: format!("{e:#}") }.into()
}

/// The URL without its password (in the user part or a `password=`
/// parameter), for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &base[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..s + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// A database URL as given (`--db`, `ANOMALY_DB`): the whole text to
/// connect with (it derefs to `&str`), shown without its password
/// (`Display` and `Debug` use [`redact`]), so that no log line or
/// message that prints it can leak one.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DbUrl(String);

impl DbUrl {
    pub(crate) fn new(url: &str) -> DbUrl {
        DbUrl(url.to_owned())
    }
}

impl ops::Deref for DbUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

impl std::str::FromStr for DbUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<DbUrl, Self::Err> {
        Ok(DbUrl::new(url))
    }
}

/// Whether `e` says a table does not exist (yet): a read of a table no job
/// has created can then answer as empty.
pub(crate) fn is_missing_table(e: &anyhow::Error) -> bool {
    is_sql_error(e, "no such table", &::postgres::error::SqlState::UNDEFINED_TABLE)
}

/// Whether `e` (or an error it wraps) is SQLite's message starting with
/// `sqlite` or PostgreSQL's `postgres` state.
fn is_sql_error(e: &anyhow::Error, sqlite: &str, postgres: &::postgres::error::SqlState) -> bool {
    e.chain().any(|c| {
        sqlite_message(c).is_some_and(|m| m.starts_with(sqlite))
            || c.downcast_ref::<::postgres::Error>().and_then(::postgres::Error::code) == Some(postgres)
    })
}

/// SQLite's message of an error (a failed step, or a statement it could
/// not prepare, which rusqlite reports with the offending offset).
fn sqlite_message<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a str> {
    match e.downcast_ref::<rusqlite::Error>()? {
        rusqlite::Error::SqliteFailure(_, Some(message)) => Some(message),
        rusqlite::Error::SqlInputError { msg, .. } => Some(msg),
        _ => None,
    }
}

/// Whether `e` is SQLite's or PostgreSQL's "no such column" (a table an
/// older version created, before a job adds the column).
pub(crate) fn is_missing_column(e: &anyhow::Error) -> bool {
    is_sql_error(e, "no such column", &::postgres::error::SqlState::UNDEFINED_COLUMN)
}

pub(crate) enum Target<'a> {
    Sqlite(&'a str),
    Postgres(&'a str),
}

pub(super) fn target(url: &str) -> Result<Target<'_>> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        return Ok(Target::Sqlite(path));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url));
    }
    if url.contains("://") {
        bail!("unknown database URL {:?}: expected sqlite:PATH or postgres://user@host:port/database", redact(url));
    }
    Ok(Target::Sqlite(url))
}

#[cfg(test)]
mod tests {
    use super::super::{Column, Db, Insert, Param, Sql};
    use super::*;

    #[test]
    fn names_and_urls_are_checked_before_connecting() {
        assert!(check_name("energy_records").is_ok() && check_name("plant.results").is_ok());
        for bad in ["", "1abc", "a;DROP", "a b", &"x".repeat(64), "a..b", ".a", "a.", "plant.1x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for reserved in ["select", "SELECT", "Order", "plant.select", "select.readings", "user", "values"] {
            let e = check_name(reserved).unwrap_err().to_string();
            assert!(e.contains("reserved SQL word"), "{reserved}: {e}");
        }
        // Keywords both databases take as names stay usable (the energy records' `current`).
        for name in ["current", "key", "temp", "first", "value", "timestamp", "selected", "plant.current"] {
            assert!(check_name(name).is_ok(), "{name}");
        }
        assert!(Db::open("mysql://x", &[]).is_err());
        assert!(Db::open("sqlite::memory:", &["bad name"]).is_err());
        assert!(Db::open("sqlite::memory:", &["select"]).is_err());
        assert_eq!(redact("postgres://me:secret@host/db"), "postgres://me:***@host/db");
        assert_eq!(redact("postgres://me:p@ss@host/db?sslmode=require"), "postgres://me:***@host/db?sslmode=require");
        assert_eq!(
            redact("postgres://me@host/db?password=secret&sslmode=disable"),
            "postgres://me@host/db?password=***&sslmode=disable"
        );
        assert_eq!(redact("sqlite:/data/plant.db"), "sqlite:/data/plant.db");
        let url: DbUrl = "postgres://me:secret@host/db".parse().unwrap_or_else(|e| match e {});
        assert_eq!(
            (format!("{url}"), format!("{url:?}")),
            ("postgres://me:***@host/db".into(), "\"postgres://me:***@host/db\"".into())
        );
        assert_eq!(&*url, "postgres://me:secret@host/db");
    }

    /// Every SQLite keyword (the bundled library's own list) is either
    /// refused or usable as a table and column name in the statements the
    /// stores write; PostgreSQL's reserved words are checked against a
    /// server in tests/test_sql_jobs_postgres.py.
    #[test]
    fn reserved_words_are_the_ones_sqlite_cannot_take_as_names() -> Result<()> {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]), "RESERVED must stay sorted for the binary search");
        let keywords = sqlite_keywords();
        assert!(keywords.len() >= 147, "{}", keywords.len());
        for word in keywords {
            let name = word.to_ascii_lowercase();
            let works = usable_in_sqlite(&name);
            if !is_reserved(&name) {
                works.map_err(|e| anyhow::anyhow!("{name} is accepted but SQLite refuses it: {e}"))?;
            }
        }
        Ok(())
    }

    fn sqlite_keywords() -> Vec<String> {
        // SAFETY: sqlite3_keyword_name writes a pointer into SQLite's static
        // keyword table (not NUL-terminated) and its length, for i below
        // sqlite3_keyword_count().
        let count = unsafe { rusqlite::ffi::sqlite3_keyword_count() };
        (0..count)
            .filter_map(|i| {
                let (mut ptr, mut len) = (std::ptr::null(), 0);
                let ok = unsafe { rusqlite::ffi::sqlite3_keyword_name(i, &mut ptr, &mut len) };
                if ok != rusqlite::ffi::SQLITE_OK || ptr.is_null() {
                    return None;
                }
                let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), usize::try_from(len).ok()?) };
                Some(String::from_utf8_lossy(bytes).into_owned())
            })
            .collect()
    }

    /// Runs the shapes of statement the stores use with `k` as table and column.
    fn usable_in_sqlite(k: &str) -> Result<()> {
        let mut db = Db::open("sqlite::memory:", &[])?;
        db.batch(&format!(
            "CREATE TABLE {k} (id {{id}}, {k} {{real}}, created_at {{ts}} NOT NULL DEFAULT {{now}});
             CREATE INDEX IF NOT EXISTS idx_{k} ON {k}({k});
             CREATE TABLE {k}_rejects (reading_id {{int}} PRIMARY KEY, reason TEXT)"
        ))?;
        db.insert(&Insert {
            table: k,
            columns: vec![(k, Column::Real(vec![1.0, 2.0]))],
            conflict: "ON CONFLICT (id) DO NOTHING",
            count_true: None,
        })?;
        db.query(
            &format!(
                "SELECT r.id, r.{k}, {k} FROM {k} r WHERE r.id > $1 AND {k} IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM {k}_rejects j WHERE j.reading_id = r.id) ORDER BY r.id LIMIT $2"
            ),
            &[Param::Int(0), Param::Int(5)],
        )?;
        db.query(
            &format!(
                "SELECT {k}, COUNT(*) FROM (SELECT * FROM {k} ORDER BY id DESC LIMIT 5) t GROUP BY {k} ORDER BY {k}"
            ),
            &[],
        )?;
        db.exec(
            &format!("DELETE FROM {k} WHERE id <= (SELECT id FROM {k} ORDER BY id DESC LIMIT 1 OFFSET $1)"),
            &[Param::Int(1)],
        )?;
        db.add_column(k, "extra", "TEXT")?;
        db.query(&format!("SELECT MAX(id) FROM {k}"), &[])?;
        Ok(())
    }
}
