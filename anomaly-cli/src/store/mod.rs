//! Where the SQL jobs read their input and write their results: one store
//! per domain (the plant's forecasts, the energy records' isolation
//! forest, the consumption rules), each written once over the dialect
//! layer in `crate::db`, and the job-state table they share.
//!
//! # Exactly once
//! Every input row has an id in insertion order. A job takes the rows that
//! have no result (and no reject) yet, scores them, and commits the result
//! rows, the rejects and its state in one transaction (`crate::jobs`); each
//! results table has a unique key on what it scores, so a second writer's
//! insert of the same row is a no-op. So a crash before the commit loses
//! nothing (the rows are taken again), a crash after it repeats nothing,
//! two overlapping workers never duplicate a row, and a row that arrives
//! late (an old datetime, inserted now) is still found: the rule is "every
//! row without a result", not "datetimes after the last one".

pub(crate) mod consumption;
pub(crate) mod forecast;
pub(crate) mod records;

use anyhow::Result;

use crate::db::{Param, Sql};

/// The job-state table every job shares.
pub(crate) const STATE: &str = "anomaly_job_state";

/// A row that cannot be scored, and why (it goes to the rejects table).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reject {
    pub(crate) id: i64,
    /// Its time, when the stored one can be read.
    pub(crate) ts: Option<i64>,
    /// The series: a process variable, or a consumption client.
    pub(crate) series: Option<String>,
    pub(crate) reason: String,
}

/// What one commit wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) results: usize,
    pub(crate) anomalies: usize,
    pub(crate) rejects: usize,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Written) {
        self.results += other.results;
        self.anomalies += other.anomalies;
        self.rejects += other.rejects;
    }
}

/// What a job has done so far (kept in the state table).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JobState {
    pub(crate) last_reading_id: i64,
    pub(crate) results: i64,
    pub(crate) anomalies: i64,
    pub(crate) rejects: i64,
    pub(crate) last_trained_at: Option<i64>,
}

/// Creates the job-state table if missing.
pub(crate) fn ensure_state(db: &mut dyn Sql) -> Result<()> {
    db.batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STATE} (
            job TEXT PRIMARY KEY,
            last_reading_id {{int}} NOT NULL DEFAULT 0,
            results {{int}} NOT NULL DEFAULT 0,
            anomalies {{int}} NOT NULL DEFAULT 0,
            rejects {{int}} NOT NULL DEFAULT 0,
            last_trained_at {{int}},
            updated_at {{ts}} NOT NULL DEFAULT {{now}});"
    ))
}

/// Raises the job's watermark and counters, inside the commit's transaction.
pub(crate) fn advance(tx: &mut dyn Sql, job: &str, last_id: i64, w: Written) -> Result<()> {
    tx.exec(
        &format!(
            "INSERT INTO {STATE} AS s (job, last_reading_id, results, anomalies, rejects, updated_at)
             VALUES ($1, $2, $3, $4, $5, now())
             ON CONFLICT (job) DO UPDATE SET
               last_reading_id = greatest(s.last_reading_id, excluded.last_reading_id),
               results = s.results + excluded.results,
               anomalies = s.anomalies + excluded.anomalies,
               rejects = s.rejects + excluded.rejects,
               updated_at = excluded.updated_at"
        ),
        &[
            Param::Text(job),
            Param::Int(last_id),
            Param::Int(w.results as i64),
            Param::Int(w.anomalies as i64),
            Param::Int(w.rejects as i64),
        ],
    )?;
    Ok(())
}

/// Records that the job's models were (re)trained at `at` (seconds).
pub(crate) fn mark_trained(db: &mut dyn Sql, job: &str, at: i64) -> Result<()> {
    db.exec(
        &format!(
            "INSERT INTO {STATE} AS s (job, last_trained_at, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (job) DO UPDATE SET last_trained_at = excluded.last_trained_at,
               updated_at = excluded.updated_at"
        ),
        &[Param::Text(job), Param::Int(at)],
    )?;
    Ok(())
}

/// The job's state, if it has run before.
pub(crate) fn job_state(db: &mut dyn Sql, job: &str) -> Result<Option<JobState>> {
    let row = db.query_one(
        &format!("SELECT last_reading_id, results, anomalies, rejects, last_trained_at FROM {STATE} WHERE job = $1"),
        &[Param::Text(job)],
    )?;
    Ok(row.map(|r| JobState {
        last_reading_id: r[0].int().unwrap_or(0),
        results: r[1].int().unwrap_or(0),
        anomalies: r[2].int().unwrap_or(0),
        rejects: r[3].int().unwrap_or(0),
        last_trained_at: r[4].int(),
    }))
}
