//! The plant's tables: readings `(id, datetime, variable_name, value,
//! source_file, created_at)`, one result per `(ds, variable)`, rejects with
//! their reason; names default to the plant team's existing jobs.

use anyhow::Result;

use super::{Reject, Written};
use crate::db::{Column, Db, Insert, Param, Sql};

/// The LISTEN/NOTIFY channel announcing new readings (PostgreSQL).
pub(crate) const CHANNEL: &str = "anomaly_readings";

/// Rows per insert transaction when loading readings.
const CHUNK: usize = 100_000;

/// Table names (checked when the database is opened).
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) readings: String,
    pub(crate) results: String,
    pub(crate) rejects: String,
}

impl Tables {
    pub(crate) fn new(readings: &str, results: &str) -> Tables {
        Tables { readings: readings.into(), results: results.into(), rejects: format!("{results}_rejects") }
    }

    pub(crate) fn names(&self) -> [&str; 3] {
        [&self.readings, &self.results, &self.rejects]
    }
}

impl Default for Tables {
    fn default() -> Self {
        Tables::new("datos_proceso", "anomalies_detector")
    }
}

/// One reading to insert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewReading {
    /// Seconds since the Unix epoch (naive local time, as the plant writes it).
    pub(crate) ts: i64,
    pub(crate) variable: String,
    pub(crate) value: Option<f64>,
    pub(crate) source: Option<String>,
}

/// A stored reading awaiting a result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub(crate) id: i64,
    /// `None` when the stored time cannot be read.
    pub(crate) ts: Option<i64>,
    /// `None` when the stored name is not text.
    pub(crate) variable: Option<String>,
    /// The stored text of the value when it is not a number.
    pub(crate) value: Result<Option<f64>, String>,
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResultRow {
    pub(crate) ts: i64,
    pub(crate) variable: String,
    pub(crate) y: f64,
    pub(crate) yhat: f64,
    pub(crate) yhat_lower: f64,
    pub(crate) yhat_upper: f64,
    pub(crate) residual: f64,
    pub(crate) is_anomaly: bool,
    pub(crate) score: f64,
}

/// Filters of the recent-anomalies query (`GET /anomalies`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct AnomalyFilter {
    /// Only this variable.
    pub(crate) variable: Option<String>,
    /// Only results at or after this time (seconds).
    #[serde(skip)]
    pub(crate) from: Option<i64>,
    /// Only results before this time (seconds).
    #[serde(skip)]
    pub(crate) to: Option<i64>,
    /// Only scores at or above this (0-100).
    pub(crate) min_score: Option<f64>,
    /// Every result, not only the flagged ones.
    #[serde(default)]
    pub(crate) all: bool,
}

/// Per-variable statistics over the results table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct VariableStats {
    pub(crate) variable: String,
    pub(crate) results: i64,
    pub(crate) anomalies: i64,
    pub(crate) percent: f64,
    pub(crate) mean_score: f64,
    pub(crate) first: String,
    pub(crate) last: String,
}

/// One month of one variable.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct MonthStats {
    pub(crate) month: String,
    pub(crate) variable: String,
    pub(crate) results: i64,
    pub(crate) anomalies: i64,
    pub(crate) mean_score: f64,
    pub(crate) max_score: f64,
}

/// The secondary indexes of the results table: `(name suffix, column)`.
const RESULT_INDEXES: [(&str, &str); 4] =
    [("ds", "ds"), ("variable", "variable"), ("is_anomaly", "is_anomaly"), ("score", "anomaly_score")];

fn index_name(table: &str, suffix: &str) -> String {
    format!("idx_{}_{suffix}", table.replace('.', "_"))
}

/// Creates the plant's tables and indexes that do not exist yet.
pub(crate) fn ensure(db: &mut Db, t: &Tables) -> Result<()> {
    let Tables { readings, results, rejects } = t;
    db.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {readings} (
            id {{id}},
            datetime {{ts}} NOT NULL,
            variable_name TEXT NOT NULL,
            value {{real}},
            source_file TEXT,
            created_at {{ts}} NOT NULL DEFAULT {{now}});
        CREATE INDEX IF NOT EXISTS {} ON {readings}(datetime);
        CREATE TABLE IF NOT EXISTS {results} (
            id {{id}},
            ds {{ts}} NOT NULL,
            variable TEXT NOT NULL,
            y {{real}}, yhat {{real}}, yhat_lower {{real}}, yhat_upper {{real}}, residual {{real}},
            is_anomaly {{bool}} NOT NULL,
            anomaly_score {{real}},
            processed_at {{ts}} NOT NULL DEFAULT {{now}},
            UNIQUE (ds, variable));
        CREATE TABLE IF NOT EXISTS {rejects} (
            id {{id}},
            reading_id {{int}} NOT NULL UNIQUE,
            ds {{ts}}, variable TEXT, reason TEXT NOT NULL,
            rejected_at {{ts}} NOT NULL DEFAULT {{now}});",
        index_name(readings, "datetime"),
    ))?;
    build_result_indexes(db, t)?;
    super::ensure_state(db)?;
    db.notify_on_insert(readings, CHANNEL);
    Ok(())
}

/// (Re)creates the results table's secondary indexes.
pub(crate) fn build_result_indexes(db: &mut Db, t: &Tables) -> Result<()> {
    db.with_index_build_settings(|db| {
        for (suffix, column) in RESULT_INDEXES {
            let (table, name) = (&t.results, index_name(&t.results, suffix));
            db.batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {table}({column})"))?;
        }
        Ok(())
    })
}

/// Drops the results table's secondary indexes, for a large backlog: one
/// sort per index afterwards is cheaper than millions of B-tree updates
/// (measured on 2.6 M results: keeping even the three whose keys arrive in
/// nearly ascending order costs more than rebuilding them). The unique key
/// stays (it is what makes the writes exactly once).
pub(crate) fn drop_result_indexes(db: &mut Db, t: &Tables) -> Result<()> {
    for (suffix, _) in RESULT_INDEXES {
        db.batch(&format!("DROP INDEX IF EXISTS {}", index_name(&t.results, suffix)))?;
    }
    Ok(())
}

/// Appends readings in chunks, each one transaction; calls `progress` with
/// the rows written so far.
pub(crate) fn insert_readings(
    db: &mut Db,
    t: &Tables,
    rows: &[NewReading],
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let mut done = 0;
    for chunk in rows.chunks(CHUNK) {
        db.insert(&Insert {
            table: &t.readings,
            columns: vec![
                ("datetime", Column::Ts(chunk.iter().map(|r| r.ts).collect())),
                ("variable_name", Column::Text(chunk.iter().map(|r| r.variable.as_str()).collect())),
                ("value", Column::OptReal(chunk.iter().map(|r| r.value).collect())),
                ("source_file", Column::OptText(chunk.iter().map(|r| r.source.as_deref()).collect())),
            ],
            conflict: "",
            count_true: None,
        })?;
        done += chunk.len();
        progress(done);
    }
    Ok(())
}

/// Readings with `from <= ts < to` (seconds), in time order: `(ts, variable,
/// value)`; text that is not a number trains as a missing reading, rows
/// whose time or name cannot be read are left out.
pub(crate) fn readings_between(
    db: &mut Db,
    t: &Tables,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<(i64, String, Option<f64>)>> {
    let rows = db.query(
        &format!(
            "SELECT epoch(datetime), variable_name, value FROM {} WHERE (ts($1) IS NULL OR datetime >= ts($1)) \
             AND (ts($2) IS NULL OR datetime < ts($2)) ORDER BY datetime, id",
            t.readings
        ),
        &[Param::ts(from), Param::ts(to)],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r[0].ts()?, r[1].text()?.to_owned(), r[2].number().unwrap_or_default())))
        .collect())
}

/// Up to `limit` readings without a result or reject, oldest id first,
/// with id above `after` and `ts >= since` when given.
pub(crate) fn pending(db: &mut Db, t: &Tables, after: i64, since: Option<i64>, limit: usize) -> Result<Vec<Pending>> {
    let Tables { readings, results, rejects } = t;
    let rows = db.query(
        &format!(
            "SELECT r.id, epoch(r.datetime), r.variable_name, r.value FROM {readings} r
             WHERE r.id > $1 AND (ts($2) IS NULL OR r.datetime >= ts($2))
               AND NOT EXISTS (SELECT 1 FROM {results} a WHERE a.ds = r.datetime AND a.variable = r.variable_name)
               AND NOT EXISTS (SELECT 1 FROM {rejects} j WHERE j.reading_id = r.id)
             ORDER BY r.id LIMIT $3"
        ),
        &[Param::Int(after), Param::ts(since), Param::Int(limit as i64)],
    )?;
    Ok(rows
        .into_iter()
        .map(|mut r| Pending {
            id: r[0].int().unwrap_or(0),
            ts: r[1].ts(),
            variable: std::mem::take(&mut r[2]).into_text(),
            value: r[3].number(),
        })
        .collect())
}

/// Results (in key order, the cheapest for the unique index) and rejects,
/// inside the job's transaction; a result another writer already stored
/// is skipped.
pub(crate) fn write(tx: &mut dyn Sql, t: &Tables, results: &[ResultRow], rejects: &[Reject]) -> Result<Written> {
    let mut order: Vec<&ResultRow> = results.iter().collect();
    order.sort_by(|a, b| (a.ts, &a.variable).cmp(&(b.ts, &b.variable)));
    let col = |f: fn(&ResultRow) -> f64| Column::Real(order.iter().map(|r| f(r)).collect());
    let inserted = tx.insert(&Insert {
        table: &t.results,
        columns: vec![
            ("ds", Column::Ts(order.iter().map(|r| r.ts).collect())),
            ("variable", Column::Text(order.iter().map(|r| r.variable.as_str()).collect())),
            ("y", col(|r| r.y)),
            ("yhat", col(|r| r.yhat)),
            ("yhat_lower", col(|r| r.yhat_lower)),
            ("yhat_upper", col(|r| r.yhat_upper)),
            ("residual", col(|r| r.residual)),
            ("is_anomaly", Column::Bool(order.iter().map(|r| r.is_anomaly).collect())),
            ("anomaly_score", col(|r| r.score)),
            ("processed_at", Column::Now),
        ],
        conflict: "ON CONFLICT (ds, variable) DO NOTHING",
        count_true: Some(7),
    })?;
    let rejected = tx.insert(&Insert {
        table: &t.rejects,
        columns: vec![
            ("reading_id", Column::Int(rejects.iter().map(|j| j.id).collect())),
            ("ds", Column::OptTs(rejects.iter().map(|j| j.ts).collect())),
            ("variable", Column::OptText(rejects.iter().map(|j| j.series.as_deref()).collect())),
            ("reason", Column::Text(rejects.iter().map(|j| j.reason.as_str()).collect())),
            ("rejected_at", Column::Now),
        ],
        conflict: "ON CONFLICT (reading_id) DO NOTHING",
        count_true: None,
    })?;
    Ok(Written { results: inserted.rows, anomalies: inserted.flagged, rejects: rejected.rows })
}

/// The newest reading time, if any.
pub(crate) fn latest_reading(db: &mut Db, t: &Tables) -> Result<Option<i64>> {
    let row = db.query_one(&format!("SELECT epoch(MAX(datetime)) FROM {}", t.readings), &[])?;
    Ok(row.and_then(|r| r[0].ts()))
}

/// Results matching `filter`, newest first, and how many match in all.
pub(crate) fn anomalies(
    db: &mut Db,
    t: &Tables,
    f: &AnomalyFilter,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<ResultRow>)> {
    let rt = &t.results;
    let filter = "(CAST($1 AS TEXT) IS NULL OR variable = $1) AND (ts($2) IS NULL OR ds >= ts($2)) \
                  AND (ts($3) IS NULL OR ds < ts($3)) \
                  AND (CAST($4 AS DOUBLE PRECISION) IS NULL OR anomaly_score >= $4) AND ($5 OR is_anomaly)";
    let args = [Param::text(f.variable.as_deref()), Param::ts(f.from), Param::ts(f.to), Param::real(f.min_score)];
    let all = Param::Bool(f.all);
    let total =
        db.query_one(&format!("SELECT COUNT(*) FROM {rt} WHERE {filter}"), &[args[0], args[1], args[2], args[3], all])?;
    let rows = db.query(
        &format!(
            "SELECT epoch(ds), variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score \
             FROM {rt} WHERE {filter} ORDER BY ds DESC, variable LIMIT $6 OFFSET $7"
        ),
        &[args[0], args[1], args[2], args[3], all, Param::Int(limit), Param::Int(offset)],
    )?;
    let nan = |v: &crate::db::Value| v.real().unwrap_or(f64::NAN);
    let items = rows
        .iter()
        .map(|r| ResultRow {
            ts: r[0].ts().unwrap_or(0),
            variable: r[1].text().unwrap_or_default().to_owned(),
            y: nan(&r[2]),
            yhat: nan(&r[3]),
            yhat_lower: nan(&r[4]),
            yhat_upper: nan(&r[5]),
            residual: nan(&r[6]),
            is_anomaly: r[7].flag(),
            score: nan(&r[8]),
        })
        .collect();
    Ok((total.and_then(|r| r[0].int()).unwrap_or(0), items))
}

/// Statistics per variable.
pub(crate) fn variable_stats(db: &mut Db, t: &Tables) -> Result<Vec<VariableStats>> {
    let rows = db.query(
        &format!(
            "SELECT variable, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly), AVG(anomaly_score), epoch(MIN(ds)), \
             epoch(MAX(ds)) FROM {} GROUP BY variable ORDER BY variable",
            t.results
        ),
        &[],
    )?;
    let text = |v: &crate::db::Value| v.ts().map(anomaly_core::time::format_timestamp).unwrap_or_default();
    Ok(rows
        .iter()
        .map(|r| {
            let (results, anomalies) = (r[1].int().unwrap_or(0), r[2].int().unwrap_or(0));
            VariableStats {
                variable: r[0].text().unwrap_or_default().to_owned(),
                results,
                anomalies,
                percent: 100.0 * anomalies as f64 / results.max(1) as f64,
                mean_score: r[3].real().unwrap_or(0.0),
                first: text(&r[4]),
                last: text(&r[5]),
            }
        })
        .collect())
}

/// Statistics per month and variable (optionally one variable).
pub(crate) fn monthly(db: &mut Db, t: &Tables, variable: Option<&str>) -> Result<Vec<MonthStats>> {
    let rows = db.query(
        &format!(
            "SELECT month(ds) AS m, variable, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly), AVG(anomaly_score), \
             MAX(anomaly_score) FROM {} WHERE (CAST($1 AS TEXT) IS NULL OR variable = $1) \
             GROUP BY m, variable ORDER BY m, variable",
            t.results
        ),
        &[Param::text(variable)],
    )?;
    Ok(rows
        .iter()
        .map(|r| MonthStats {
            month: r[0].text().unwrap_or_default().to_owned(),
            variable: r[1].text().unwrap_or_default().to_owned(),
            results: r[2].int().unwrap_or(0),
            anomalies: r[3].int().unwrap_or(0),
            mean_score: r[4].real().unwrap_or(0.0),
            max_score: r[5].real().unwrap_or(0.0),
        })
        .collect())
}
