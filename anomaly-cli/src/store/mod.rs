//! Where the SQL jobs read readings and write results: one trait, with the
//! embedded SQLite as the default (`--db sqlite:anomaly.db`) and PostgreSQL
//! for production (`--db postgres://...`).
//!
//! # Exactly once
//! Every reading row has an id in insertion order. A job takes the readings
//! that have no result (and no reject) yet, scores them, and commits the
//! result rows, the rejects and its state in one transaction; the results
//! table's unique key `(ds, variable)` makes a second writer's insert of the
//! same reading a no-op. So a crash before the commit loses nothing (the
//! readings are taken again), a crash after it repeats nothing, two
//! overlapping workers never duplicate a row, and a reading that arrives
//! late (an old datetime, inserted now) is still found: the rule is "every
//! reading without a result", not "datetimes after the last one".

pub(crate) mod postgres;
pub(crate) mod sqlite;

use anyhow::{bail, Result};

/// Table names; defaults match the plant team's existing jobs.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) readings: String,
    pub(crate) results: String,
    pub(crate) rejects: String,
    pub(crate) state: String,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            readings: "datos_proceso".into(),
            results: "anomalies_detector".into(),
            rejects: "anomalies_rejects".into(),
            state: "anomaly_job_state".into(),
        }
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
    pub(crate) ts: i64,
    pub(crate) variable: String,
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

/// A reading that cannot be scored, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reject {
    pub(crate) reading_id: i64,
    /// Seconds; `i64::MIN` when the stored time cannot be parsed (NULL).
    pub(crate) ts: i64,
    /// The series: a process variable, or a consumption client.
    pub(crate) variable: String,
    pub(crate) reason: String,
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

/// One pass of the isolation-forest job: total, anomalies, percent, state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct PassMetrics {
    pub(crate) total: i64,
    pub(crate) anomalies: i64,
    pub(crate) percent: f64,
    pub(crate) state: String,
    pub(crate) first_id: i64,
    pub(crate) last_id: i64,
}

/// An isolation-forest score of one record: score_samples, decision, anomaly.
pub(crate) type RecordScore = (i64, f64, f64, bool);

/// A record the isolation forest cannot score: its id and why.
pub(crate) type RecordReject = (i64, String);

/// A consumption reading as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConsumptionRow {
    pub(crate) id: i64,
    pub(crate) client: String,
    pub(crate) ts: i64,
    pub(crate) kwh: Option<f64>,
}

/// The consumption rules' verdict on one reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConsumptionFlag {
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
pub(crate) struct ConsumptionFilter {
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

/// The SQL side of the jobs.
pub(crate) trait Store: Send {
    /// Creates the tables and indexes that do not exist yet.
    fn ensure_schema(&mut self) -> Result<()>;
    /// Inserts readings in chunks, each chunk one transaction; calls
    /// `progress` with the rows written so far.
    fn insert_readings(&mut self, rows: &[NewReading], progress: &mut dyn FnMut(usize)) -> Result<()>;
    /// Readings with `from <= ts < to` (seconds), in time order.
    fn readings_between(&mut self, from: Option<i64>, to: Option<i64>) -> Result<Vec<(i64, String, Option<f64>)>>;
    /// Up to `limit` readings without a result or reject, oldest id first,
    /// with id above `after_id` and `ts >= since` when given.
    fn pending(&mut self, after_id: i64, since: Option<i64>, limit: usize) -> Result<Vec<Pending>>;
    /// Results, rejects and the job's progress (`last_reading_id`, counters
    /// raised by what was actually inserted), in one transaction. Returns
    /// the result rows inserted (duplicates of another writer's are skipped).
    fn commit(&mut self, job: &str, results: &[ResultRow], rejects: &[Reject], last_reading_id: i64) -> Result<usize>;
    /// Records that the job's models were (re)trained at `at` (seconds).
    fn mark_trained(&mut self, job: &str, at: i64) -> Result<()>;
    /// The job's state, if it has run before.
    fn job_state(&mut self, job: &str) -> Result<Option<JobState>>;
    /// The newest reading time, if any.
    fn latest_reading(&mut self) -> Result<Option<i64>>;
    /// Results matching `filter`, newest first, and how many match in all.
    fn anomalies(&mut self, filter: &AnomalyFilter, limit: i64, offset: i64) -> Result<(i64, Vec<ResultRow>)>;
    /// Statistics per variable.
    fn variable_stats(&mut self) -> Result<Vec<VariableStats>>;
    /// Statistics per month and variable (optionally one variable).
    fn monthly(&mut self, variable: Option<&str>) -> Result<Vec<MonthStats>>;
    /// Creates a records table `(id, datetime, columns...)` and its
    /// `{table}_scores` (one row per record), `{table}_rejects` (records that
    /// cannot be scored) and `{table}_metrics` (one row per pass) tables, if missing.
    fn ensure_records(&mut self, table: &str, columns: &[String]) -> Result<()>;
    /// Appends records `(seconds, values)`.
    fn insert_records(&mut self, table: &str, columns: &[String], rows: &[(i64, Vec<f64>)]) -> Result<()>;
    /// Deletes the oldest records beyond the newest `keep`; returns how many.
    fn trim_records(&mut self, table: &str, keep: usize) -> Result<usize>;
    /// Up to `limit` records above `after_id` without a score or reject, oldest first.
    fn pending_records(
        &mut self,
        table: &str,
        columns: &[String],
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<Option<f64>>)>>;
    /// The newest `n` complete records (for retraining), oldest first.
    fn latest_records(&mut self, table: &str, columns: &[String], n: usize) -> Result<Vec<Vec<f64>>>;
    /// Scores, rejects, the pass's metrics row and the job state, in one
    /// transaction; returns the scores inserted.
    fn commit_scores(
        &mut self,
        table: &str,
        scores: &[RecordScore],
        rejects: &[RecordReject],
        metrics: &PassMetrics,
    ) -> Result<usize>;
    /// Creates the consumption tables if missing.
    fn ensure_consumption(&mut self) -> Result<()>;
    /// Appends consumption readings `(client, seconds, kwh)`.
    fn insert_consumption(&mut self, rows: &[(String, i64, f64)]) -> Result<()>;
    /// Up to `limit` readings above `after_id` without a flag or reject row, oldest id first.
    fn pending_consumption(&mut self, after_id: i64, limit: usize) -> Result<Vec<ConsumptionRow>>;
    /// Every reading of `clients` from `from` (seconds) on: the rules' context.
    fn consumption_context(&mut self, clients: &[String], from: i64) -> Result<Vec<ConsumptionRow>>;
    /// Flags, rejects (`consumo_rechazos`), the months the flags touch
    /// (upserted) and the job state, in one transaction; returns the flags inserted.
    fn commit_consumption(
        &mut self,
        flags: &[ConsumptionFlag],
        rejects: &[Reject],
        months: &[MonthRow],
        last_id: i64,
    ) -> Result<usize>;
    /// Flagged consumption readings matching `filter`, newest first, and how many match.
    fn consumption_anomalies(
        &mut self,
        filter: &ConsumptionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<ConsumptionFlag>)>;
    /// Statistics per client, most anomalous first.
    fn client_stats(&mut self) -> Result<Vec<ClientStats>>;
    /// Monthly aggregates (optionally one client).
    fn consumption_monthly(&mut self, client: Option<&str>) -> Result<Vec<MonthRow>>;
    /// The newest consumption reading's time, if any.
    fn latest_consumption(&mut self) -> Result<Option<i64>>;
    /// Moves readings older than `before` to the archive table, logged, in
    /// one transaction; returns how many.
    fn archive_consumption(&mut self, before: i64) -> Result<usize>;
    /// Moves archived readings with `from <= ts < to` back, logged.
    fn restore_consumption(&mut self, from: i64, to: i64) -> Result<usize>;
    /// Waits up to `timeout` for new readings: databases that can announce
    /// inserts (PostgreSQL's LISTEN/NOTIFY) return as soon as one lands;
    /// the others just wait (a poll).
    fn wait_for_readings(&mut self, timeout: std::time::Duration) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }
}

/// Opens the database named by `url`: `sqlite:PATH` (or a bare path), or
/// `postgres://user[:password]@host[:port]/database`.
pub(crate) fn open(url: &str, tables: Tables) -> Result<Box<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        return Ok(Box::new(sqlite::Sqlite::open(path, tables)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(postgres::Postgres::open(url, tables)?));
    }
    if url.contains("://") {
        bail!("unknown database URL {url:?}: expected sqlite:PATH or postgres://...");
    }
    Ok(Box::new(sqlite::Sqlite::open(url, tables)?))
}

/// Checks that `url` names a database kind this build knows.
pub(crate) fn check_url(url: &str) -> Result<()> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if url.contains("://") && !known.iter().any(|k| url.starts_with(k)) {
        bail!("unknown database URL {url:?}: expected sqlite:PATH or postgres://user@host:port/database");
    }
    Ok(())
}

/// Checks a table name (they are spliced into SQL): letters, digits, `_`, `.`.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        bail!("table name {name:?}: use letters, digits and underscores");
    }
    Ok(())
}
