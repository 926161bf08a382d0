//! The consumption team's tables: readings (`consumo_lecturas` by default)
//! and their archive, one flag row per reading (`consumo_anomalias`),
//! rejects, monthly aggregates (upserted) and the archive log, named from
//! the readings and flags tables as [`Tables`] says.

use anyhow::Result;

use super::{Reject, Written};
use crate::db::{Column, Db, Insert, Param, Sql, Value};

/// The default readings table.
pub(crate) const READINGS: &str = "consumo_lecturas";
/// The default flags (results) table.
pub(crate) const FLAGS: &str = "consumo_anomalias";

/// The consumption tables' names (checked when the database is opened).
/// The default tables keep the consumption team's names; other readings
/// and flags tables name theirs after themselves, as the plant's rejects
/// table is named after its results table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tables {
    /// Readings `(id, client_id, timestamp, kwh, created_at)`.
    pub(crate) readings: String,
    /// Archived readings: `consumo_lecturas_archivo`, else `{readings}_archive`.
    pub(crate) archive: String,
    /// The archive log: `consumo_archivo_log`, else `{readings}_archive_log`.
    pub(crate) archive_log: String,
    /// One flag row per reading.
    pub(crate) flags: String,
    /// Readings that cannot be flagged: `consumo_rechazos`, else `{flags}_rejects`.
    pub(crate) rejects: String,
    /// Monthly aggregates: `consumo_mensual`, else `{flags}_monthly`.
    pub(crate) monthly: String,
}

impl Tables {
    pub(crate) fn new(readings: &str, flags: &str) -> Tables {
        let (archive, archive_log) = if readings == READINGS {
            ("consumo_lecturas_archivo".to_owned(), "consumo_archivo_log".to_owned())
        } else {
            (format!("{readings}_archive"), format!("{readings}_archive_log"))
        };
        let (rejects, monthly) = if flags == FLAGS {
            ("consumo_rechazos".to_owned(), "consumo_mensual".to_owned())
        } else {
            (format!("{flags}_rejects"), format!("{flags}_monthly"))
        };
        Tables { readings: readings.into(), archive, archive_log, flags: flags.into(), rejects, monthly }
    }

    /// Every name spliced into SQL.
    pub(crate) fn names(&self) -> [&str; 6] {
        [&self.readings, &self.archive, &self.archive_log, &self.flags, &self.rejects, &self.monthly]
    }

    /// The job's name in the state table: one watermark per pair of
    /// readings and flags tables (the default pair keeps its old name).
    pub(crate) fn job(&self) -> String {
        if self.readings == READINGS && self.flags == FLAGS {
            "consumption".into()
        } else {
            format!("consumption:{}:{}", self.readings, self.flags)
        }
    }
}

impl Default for Tables {
    fn default() -> Self {
        Tables::new(READINGS, FLAGS)
    }
}

fn index_name(table: &str, suffix: &str) -> String {
    format!("idx_{}_{suffix}", table.replace('.', "_"))
}

/// Rows per insert transaction; clients per context query.
const CHUNK: usize = 100_000;
const CLIENTS_PER_QUERY: usize = 500;

/// A consumption reading as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    pub(crate) id: i64,
    /// Why not, when the stored client is not (UTF-8) text.
    pub(crate) client: Result<String, &'static str>,
    /// `None` when the stored time cannot be read.
    pub(crate) ts: Option<i64>,
    /// `None` when missing or not a number.
    pub(crate) kwh: Option<f64>,
}

/// The consumption rules' verdict on one reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flag {
    pub(crate) reading_id: i64,
    pub(crate) client: String,
    pub(crate) ts: i64,
    pub(crate) kwh: f64,
    pub(crate) is_anomaly: bool,
    pub(crate) types: String,
    pub(crate) score: f64,
    pub(crate) severity: String,
}

/// One client's month.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MonthRow {
    pub(crate) client: String,
    pub(crate) month: String,
    pub(crate) readings: i64,
    pub(crate) total_kwh: f64,
    pub(crate) anomalies: i64,
    pub(crate) critical: i64,
    pub(crate) night_mean_kwh: Option<f64>,
    pub(crate) peak_mean_kwh: Option<f64>,
    pub(crate) score: f64,
}

/// Filters of `GET /consumption/anomalies`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) client: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) from: Option<i64>,
    pub(crate) to: Option<i64>,
}

/// Per-client statistics of the consumption flags.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct ClientStats {
    pub(crate) client_id: String,
    pub(crate) readings: i64,
    pub(crate) anomalies: i64,
    pub(crate) critical: i64,
    pub(crate) severe: i64,
    pub(crate) max_score: f64,
    pub(crate) total_kwh: f64,
}

/// Creates the consumption tables if missing.
pub(crate) fn ensure(db: &mut Db, t: &Tables) -> Result<()> {
    let Tables { readings, archive, archive_log, flags, rejects, monthly } = t;
    let lecturas = "id {id}, client_id TEXT NOT NULL, timestamp {ts} NOT NULL, kwh {real},
                    created_at {ts} NOT NULL DEFAULT {now}";
    db.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {readings} ({lecturas});
         CREATE INDEX IF NOT EXISTS {} ON {readings}(client_id, timestamp);
         CREATE TABLE IF NOT EXISTS {archive} ({lecturas});
         CREATE TABLE IF NOT EXISTS {flags} (reading_id {{int}} PRIMARY KEY, client_id TEXT NOT NULL,
            timestamp {{ts}} NOT NULL, kwh {{real}}, is_anomaly {{bool}} NOT NULL, types TEXT NOT NULL,
            score {{real}} NOT NULL, severity TEXT NOT NULL, processed_at {{ts}} NOT NULL DEFAULT {{now}});
         CREATE INDEX IF NOT EXISTS {} ON {flags}(client_id, timestamp);
         CREATE INDEX IF NOT EXISTS {} ON {flags}(severity);
         CREATE TABLE IF NOT EXISTS {rejects} (reading_id {{int}} PRIMARY KEY, client_id TEXT,
            timestamp {{ts}}, reason TEXT NOT NULL, rejected_at {{ts}} NOT NULL DEFAULT {{now}});
         CREATE TABLE IF NOT EXISTS {monthly} (client_id TEXT NOT NULL, month TEXT NOT NULL,
            readings {{int}} NOT NULL, total_kwh {{real}} NOT NULL, anomalies {{int}} NOT NULL,
            critical {{int}} NOT NULL, night_mean_kwh {{real}}, peak_mean_kwh {{real}}, score {{real}} NOT NULL,
            updated_at {{ts}} NOT NULL DEFAULT {{now}}, PRIMARY KEY (client_id, month));
         CREATE TABLE IF NOT EXISTS {archive_log} (id {{id}}, at {{ts}} NOT NULL DEFAULT {{now}},
            action TEXT NOT NULL, from_ts {{ts}}, to_ts {{ts}}, rows {{int}} NOT NULL);",
        index_name(readings, "client_ts"),
        index_name(flags, "client"),
        index_name(flags, "severity"),
    ))?;
    super::ensure_state(db)
}

/// Appends readings `(client, seconds, kwh)`.
pub(crate) fn insert(db: &mut Db, t: &Tables, rows: &[(String, i64, f64)]) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        db.insert(&Insert {
            table: &t.readings,
            columns: vec![
                ("client_id", Column::Text(chunk.iter().map(|r| r.0.as_str()).collect())),
                ("timestamp", Column::Ts(chunk.iter().map(|r| r.1).collect())),
                ("kwh", Column::Real(chunk.iter().map(|r| r.2).collect())),
            ],
            conflict: "",
            count_true: None,
        })?;
    }
    Ok(())
}

fn reading(mut r: Vec<Value>) -> Reading {
    Reading {
        id: r[0].int().unwrap_or(0),
        client: std::mem::take(&mut r[1]).into_key(),
        ts: r[2].ts(),
        kwh: r[3].number().ok().flatten(),
    }
}

/// Up to `limit` readings above `after` without a flag or reject, oldest id first.
pub(crate) fn pending(db: &mut Db, t: &Tables, after: i64, limit: usize) -> Result<Vec<Reading>> {
    let Tables { readings, flags, rejects, .. } = t;
    let rows = db.query(
        &format!(
            "SELECT id, client_id, epoch(timestamp), kwh FROM {readings} r WHERE r.id > $1
               AND NOT EXISTS (SELECT 1 FROM {flags} a WHERE a.reading_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM {rejects} j WHERE j.reading_id = r.id) ORDER BY r.id LIMIT $2"
        ),
        &[Param::Int(after), Param::Int(limit as i64)],
    )?;
    Ok(rows.into_iter().map(reading).collect())
}

/// Every reading of `clients` from `from` (seconds) on: the rules' context.
pub(crate) fn context(db: &mut Db, t: &Tables, clients: &[String], from: i64) -> Result<Vec<Reading>> {
    let mut out = Vec::new();
    for group in clients.chunks(CLIENTS_PER_QUERY) {
        let marks: Vec<String> = (0..group.len()).map(|i| format!("${}", i + 2)).collect();
        let mut params = vec![Param::Ts(from)];
        params.extend(group.iter().map(|c| Param::Text(c)));
        let rows = db.query(
            &format!(
                "SELECT id, client_id, epoch(timestamp), kwh FROM {}
                 WHERE timestamp >= ts($1) AND client_id IN ({})",
                t.readings,
                marks.join(", ")
            ),
            &params,
        )?;
        out.extend(rows.into_iter().map(reading));
    }
    Ok(out)
}

/// Flags, rejects and the months the flags touch (upserted), inside the job's transaction.
pub(crate) fn write(
    tx: &mut dyn Sql,
    t: &Tables,
    flags: &[Flag],
    rejects: &[Reject],
    months: &[MonthRow],
) -> Result<Written> {
    let rejected = tx.insert(&Insert {
        table: &t.rejects,
        columns: vec![
            ("reading_id", Column::Int(rejects.iter().map(|j| j.id).collect())),
            ("client_id", Column::OptText(rejects.iter().map(|j| j.series.as_deref()).collect())),
            ("timestamp", Column::OptTs(rejects.iter().map(|j| j.ts).collect())),
            ("reason", Column::Text(rejects.iter().map(|j| j.reason.as_str()).collect())),
            ("rejected_at", Column::Now),
        ],
        conflict: "ON CONFLICT (reading_id) DO NOTHING",
        count_true: None,
    })?;
    let inserted = tx.insert(&Insert {
        table: &t.flags,
        columns: vec![
            ("reading_id", Column::Int(flags.iter().map(|f| f.reading_id).collect())),
            ("client_id", Column::Text(flags.iter().map(|f| f.client.as_str()).collect())),
            ("timestamp", Column::Ts(flags.iter().map(|f| f.ts).collect())),
            ("kwh", Column::Real(flags.iter().map(|f| f.kwh).collect())),
            ("is_anomaly", Column::Bool(flags.iter().map(|f| f.is_anomaly).collect())),
            ("types", Column::Text(flags.iter().map(|f| f.types.as_str()).collect())),
            ("score", Column::Real(flags.iter().map(|f| f.score).collect())),
            ("severity", Column::Text(flags.iter().map(|f| f.severity.as_str()).collect())),
            ("processed_at", Column::Now),
        ],
        conflict: "ON CONFLICT (reading_id) DO NOTHING",
        count_true: Some(4),
    })?;
    tx.insert(&Insert {
        table: &t.monthly,
        columns: vec![
            ("client_id", Column::Text(months.iter().map(|m| m.client.as_str()).collect())),
            ("month", Column::Text(months.iter().map(|m| m.month.as_str()).collect())),
            ("readings", Column::Int(months.iter().map(|m| m.readings).collect())),
            ("total_kwh", Column::Real(months.iter().map(|m| m.total_kwh).collect())),
            ("anomalies", Column::Int(months.iter().map(|m| m.anomalies).collect())),
            ("critical", Column::Int(months.iter().map(|m| m.critical).collect())),
            ("night_mean_kwh", Column::OptReal(months.iter().map(|m| m.night_mean_kwh).collect())),
            ("peak_mean_kwh", Column::OptReal(months.iter().map(|m| m.peak_mean_kwh).collect())),
            ("score", Column::Real(months.iter().map(|m| m.score).collect())),
            ("updated_at", Column::Now),
        ],
        conflict: "ON CONFLICT (client_id, month) DO UPDATE SET readings = excluded.readings,
               total_kwh = excluded.total_kwh, anomalies = excluded.anomalies, critical = excluded.critical,
               night_mean_kwh = excluded.night_mean_kwh, peak_mean_kwh = excluded.peak_mean_kwh,
               score = excluded.score, updated_at = excluded.updated_at",
        count_true: None,
    })?;
    Ok(Written { results: inserted.rows, anomalies: inserted.flagged, rejects: rejected.rows })
}

/// Flagged readings matching `filter`, newest first, and how many match.
pub(crate) fn anomalies(db: &mut Db, t: &Tables, f: &Filter, limit: i64, offset: i64) -> Result<(i64, Vec<Flag>)> {
    let table = &t.flags;
    let filter = "is_anomaly AND (CAST($1 AS TEXT) IS NULL OR client_id = $1) \
                  AND (CAST($2 AS TEXT) IS NULL OR severity = $2) \
                  AND (ts($3) IS NULL OR timestamp >= ts($3)) AND (ts($4) IS NULL OR timestamp < ts($4))";
    let args =
        [Param::text(f.client.as_deref()), Param::text(f.severity.as_deref()), Param::ts(f.from), Param::ts(f.to)];
    let total = db.query_one(&format!("SELECT COUNT(*) FROM {table} WHERE {filter}"), &args)?;
    let rows = db.query(
        &format!(
            "SELECT reading_id, client_id, epoch(timestamp), kwh, is_anomaly, types, score, severity
             FROM {table} WHERE {filter} ORDER BY timestamp DESC, client_id LIMIT $5 OFFSET $6"
        ),
        &[args[0], args[1], args[2], args[3], Param::Int(limit), Param::Int(offset)],
    )?;
    let text = |v: &Value| v.text().unwrap_or_default().to_owned();
    let items = rows
        .iter()
        .map(|r| Flag {
            reading_id: r[0].int().unwrap_or(0),
            client: text(&r[1]),
            ts: r[2].ts().unwrap_or(0),
            kwh: r[3].real().unwrap_or(f64::NAN),
            is_anomaly: r[4].flag(),
            types: text(&r[5]),
            score: r[6].real().unwrap_or(f64::NAN),
            severity: text(&r[7]),
        })
        .collect();
    Ok((total.and_then(|r| r[0].int()).unwrap_or(0), items))
}

/// Statistics per client, most anomalous first.
pub(crate) fn client_stats(db: &mut Db, t: &Tables) -> Result<Vec<ClientStats>> {
    let rows = db.query(
        &format!(
            "SELECT client_id, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly),
                    COUNT(*) FILTER (WHERE severity = 'crítica'),
                    COUNT(*) FILTER (WHERE severity IN ('crítica', 'alta')), MAX(score), COALESCE(SUM(kwh), 0)
             FROM {} GROUP BY client_id ORDER BY COUNT(*) FILTER (WHERE is_anomaly) DESC, client_id",
            t.flags
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| ClientStats {
            client_id: r[0].text().unwrap_or_default().to_owned(),
            readings: r[1].int().unwrap_or(0),
            anomalies: r[2].int().unwrap_or(0),
            critical: r[3].int().unwrap_or(0),
            severe: r[4].int().unwrap_or(0),
            max_score: r[5].real().unwrap_or(0.0),
            total_kwh: r[6].real().unwrap_or(0.0),
        })
        .collect())
}

/// Monthly aggregates (optionally one client).
pub(crate) fn monthly(db: &mut Db, t: &Tables, client: Option<&str>) -> Result<Vec<MonthRow>> {
    let rows = db.query(
        &format!(
            "SELECT client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh, peak_mean_kwh, score
             FROM {} WHERE (CAST($1 AS TEXT) IS NULL OR client_id = $1) ORDER BY client_id, month",
            t.monthly
        ),
        &[Param::text(client)],
    )?;
    Ok(rows
        .iter()
        .map(|r| MonthRow {
            client: r[0].text().unwrap_or_default().to_owned(),
            month: r[1].text().unwrap_or_default().to_owned(),
            readings: r[2].int().unwrap_or(0),
            total_kwh: r[3].real().unwrap_or(0.0),
            anomalies: r[4].int().unwrap_or(0),
            critical: r[5].int().unwrap_or(0),
            night_mean_kwh: r[6].real(),
            peak_mean_kwh: r[7].real(),
            score: r[8].real().unwrap_or(0.0),
        })
        .collect())
}

/// The newest reading's time, if any.
pub(crate) fn latest(db: &mut Db, t: &Tables) -> Result<Option<i64>> {
    let row = db.query_one(&format!("SELECT epoch(MAX(timestamp)) FROM {}", t.readings), &[])?;
    Ok(row.and_then(|r| r[0].ts()))
}

/// Moves readings with `timestamp < before` (`Archive`) or archived ones
/// with `from <= timestamp < to` back (`Restore`), logged, in one transaction.
pub(crate) fn archive(db: &mut Db, t: &Tables, from: Option<i64>, to: i64) -> Result<usize> {
    let (source, target, action) = match from {
        None => (&t.readings, &t.archive, "archive"),
        Some(_) => (&t.archive, &t.readings, "restore"),
    };
    let log = &t.archive_log;
    let range = "(ts($1) IS NULL OR timestamp >= ts($1)) AND timestamp < ts($2)";
    let args = [Param::ts(from), Param::Ts(to)];
    db.transaction(|tx| {
        tx.exec(&format!("INSERT INTO {target} SELECT * FROM {source} WHERE {range}"), &args)?;
        let moved = tx.exec(&format!("DELETE FROM {source} WHERE {range}"), &args)?;
        tx.exec(
            &format!("INSERT INTO {log} (at, action, from_ts, to_ts, rows) VALUES (now(), $1, ts($2), ts($3), $4)"),
            &[Param::Text(action), args[0], args[1], Param::Int(moved as i64)],
        )?;
        Ok(moved)
    })
}
