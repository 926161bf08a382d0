//! The energy team's isolation-forest tables: records `(id, datetime,
//! columns...)`, one score per record in `{table}_scores`, records that
//! cannot be scored in `{table}_rejects`, one row per committed batch in
//! `{table}_metrics` (total, anomalies, percent, state).

use anyhow::Result;

use super::{Reject, Written};
use crate::db::{Column, Db, Insert, Param, Sql, Value};

/// Rows per insert transaction.
const CHUNK: usize = 100_000;

/// A records table and its feature columns (checked when the database is opened).
#[derive(Debug, Clone)]
pub(crate) struct Records {
    pub(crate) table: String,
    pub(crate) columns: Vec<String>,
}

/// One record's score: `score_samples`, the decision, anomalous or not,
/// and for an anomaly the column that pushed it there most with its share
/// of that push (`top_feature`, `top_share`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Score {
    pub(crate) id: i64,
    pub(crate) score: f64,
    pub(crate) decision: f64,
    pub(crate) is_anomaly: bool,
    pub(crate) top: Option<(usize, f64)>,
}

/// One batch's metrics row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct PassMetrics {
    pub(crate) total: i64,
    pub(crate) anomalies: i64,
    pub(crate) percent: f64,
    pub(crate) state: String,
    pub(crate) first_id: i64,
    pub(crate) last_id: i64,
}

impl Records {
    /// The job name in the state table.
    pub(crate) fn job(&self) -> String {
        format!("iforest:{}", self.table)
    }

    /// Every name spliced into SQL.
    pub(crate) fn names(&self) -> Vec<&str> {
        std::iter::once(self.table.as_str()).chain(self.columns.iter().map(String::as_str)).collect()
    }

    /// Creates the records table and its scores, rejects and metrics tables, if missing.
    pub(crate) fn ensure(&self, db: &mut Db) -> Result<()> {
        let table = &self.table;
        let cols: String = self.columns.iter().map(|c| format!(", {c} {{real}}")).collect();
        let idx = table.replace('.', "_");
        db.batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id {{id}}, datetime {{ts}} NOT NULL{cols},
                created_at {{ts}} NOT NULL DEFAULT {{now}});
             CREATE TABLE IF NOT EXISTS {table}_scores (record_id {{int}} PRIMARY KEY, score {{real}} NOT NULL,
                decision {{real}} NOT NULL, is_anomaly {{bool}} NOT NULL, scored_at {{ts}} NOT NULL DEFAULT {{now}},
                top_feature TEXT, top_share {{real}});
             CREATE INDEX IF NOT EXISTS idx_{idx}_scores_anomaly ON {table}_scores(is_anomaly);
             CREATE TABLE IF NOT EXISTS {table}_rejects (record_id {{int}} PRIMARY KEY, reason TEXT NOT NULL,
                rejected_at {{ts}} NOT NULL DEFAULT {{now}});
             CREATE TABLE IF NOT EXISTS {table}_metrics (id {{id}}, computed_at {{ts}} NOT NULL DEFAULT {{now}},
                total {{int}} NOT NULL, anomalies {{int}} NOT NULL, percent {{real}} NOT NULL, state TEXT NOT NULL,
                first_record_id {{int}} NOT NULL, last_record_id {{int}} NOT NULL);"
        ))?;
        // Scores tables from before explanations.
        db.add_column(&format!("{table}_scores"), "top_feature", "TEXT")?;
        db.add_column(&format!("{table}_scores"), "top_share", "{real}")?;
        super::ensure_state(db)
    }

    /// Appends records `(seconds, values)`; a value that is not finite is stored as missing.
    pub(crate) fn insert(&self, db: &mut Db, rows: &[(i64, Vec<f64>)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut columns = vec![("datetime", Column::Ts(chunk.iter().map(|r| r.0).collect()))];
            for (j, name) in self.columns.iter().enumerate() {
                let values = chunk.iter().map(|r| r.1.get(j).copied().filter(|v| v.is_finite())).collect();
                columns.push((name.as_str(), Column::OptReal(values)));
            }
            db.insert(&Insert { table: &self.table, columns, conflict: "", count_true: None })?;
        }
        Ok(())
    }

    /// Deletes the oldest records beyond the newest `keep`; returns how many.
    pub(crate) fn trim(&self, db: &mut Db, keep: usize) -> Result<usize> {
        let table = &self.table;
        db.exec(
            &format!("DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET $1)"),
            &[Param::Int(keep as i64)],
        )
    }

    /// Up to `limit` records above `after` without a score or reject, oldest first.
    pub(crate) fn pending(&self, db: &mut Db, after: i64, limit: usize) -> Result<Vec<(i64, Vec<Option<f64>>)>> {
        let table = &self.table;
        let rows = db.query(
            &format!(
                "SELECT id, {} FROM {table} r WHERE r.id > $1
                   AND NOT EXISTS (SELECT 1 FROM {table}_scores s WHERE s.record_id = r.id)
                   AND NOT EXISTS (SELECT 1 FROM {table}_rejects j WHERE j.record_id = r.id) ORDER BY r.id LIMIT $2",
                self.columns.join(", ")
            ),
            &[Param::Int(after), Param::Int(limit as i64)],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| (r[0].int().unwrap_or(0), r[1..].iter().map(|v| v.number().ok().flatten()).collect()))
            .collect())
    }

    /// The newest `n` complete records (for retraining), oldest first.
    pub(crate) fn latest(&self, db: &mut Db, n: usize) -> Result<Vec<Vec<f64>>> {
        let names = self.columns.join(", ");
        let complete = self.columns.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
        let rows = db.query(
            &format!(
                "SELECT {names} FROM (SELECT * FROM {} WHERE {complete} ORDER BY id DESC LIMIT $1) t ORDER BY id",
                self.table
            ),
            &[Param::Int(n as i64)],
        )?;
        Ok(rows.iter().map(|r| r.iter().map(|v: &Value| v.real().unwrap_or(f64::NAN)).collect()).collect())
    }

    /// Scores, rejects and the batch's metrics row, inside the job's transaction.
    pub(crate) fn write(
        &self,
        tx: &mut dyn Sql,
        scores: &[Score],
        rejects: &[Reject],
        m: &PassMetrics,
    ) -> Result<Written> {
        let table = &self.table;
        let (scores_table, rejects_table) = (format!("{table}_scores"), format!("{table}_rejects"));
        let rejected = tx.insert(&Insert {
            table: &rejects_table,
            columns: vec![
                ("record_id", Column::Int(rejects.iter().map(|j| j.id).collect())),
                ("reason", Column::Text(rejects.iter().map(|j| j.reason.as_str()).collect())),
                ("rejected_at", Column::Now),
            ],
            conflict: "ON CONFLICT (record_id) DO NOTHING",
            count_true: None,
        })?;
        let inserted = tx.insert(&Insert {
            table: &scores_table,
            columns: vec![
                ("record_id", Column::Int(scores.iter().map(|s| s.id).collect())),
                ("score", Column::Real(scores.iter().map(|s| s.score).collect())),
                ("decision", Column::Real(scores.iter().map(|s| s.decision).collect())),
                ("is_anomaly", Column::Bool(scores.iter().map(|s| s.is_anomaly).collect())),
                ("scored_at", Column::Now),
                (
                    "top_feature",
                    Column::OptText(scores.iter().map(|s| s.top.map(|(j, _)| self.columns[j].as_str())).collect()),
                ),
                ("top_share", Column::OptReal(scores.iter().map(|s| s.top.map(|(_, share)| share)).collect())),
            ],
            conflict: "ON CONFLICT (record_id) DO NOTHING",
            count_true: Some(3),
        })?;
        tx.exec(
            &format!(
                "INSERT INTO {table}_metrics (computed_at, total, anomalies, percent, state, first_record_id,
                 last_record_id) VALUES (now(), $1, $2, $3, $4, $5, $6)"
            ),
            &[
                Param::Int(m.total),
                Param::Int(m.anomalies),
                Param::Real(m.percent),
                Param::Text(&m.state),
                Param::Int(m.first_id),
                Param::Int(m.last_id),
            ],
        )?;
        Ok(Written { results: inserted.rows, anomalies: inserted.flagged, rejects: rejected.rows })
    }
}
