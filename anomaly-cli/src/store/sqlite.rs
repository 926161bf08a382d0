//! The embedded default: SQLite (bundled, no server), in WAL mode so that
//! readers (dashboards) never block the worker.

use std::time::Duration;

use anomaly_core::time::{format_timestamp, parse_timestamp};
use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    check_name, AnomalyFilter, ConsumptionFlag, ConsumptionRow, JobState, MonthRow, MonthStats, NewReading, Pending,
    Reject, ResultRow, Store, Tables, VariableStats,
};

/// Rows per insert transaction.
const CHUNK: usize = 10_000;

pub(crate) struct Sqlite {
    conn: Connection,
    t: Tables,
}

impl Sqlite {
    pub(crate) fn open(path: &str, tables: Tables) -> Result<Sqlite> {
        for name in [&tables.readings, &tables.results, &tables.rejects, &tables.state] {
            check_name(name)?;
        }
        let conn = Connection::open(path).with_context(|| format!("cannot open SQLite database {path}"))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Sqlite { conn, t: tables })
    }
}

fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    format_timestamp(secs)
}

impl Store for Sqlite {
    fn ensure_schema(&mut self) -> Result<()> {
        let Tables { readings, results, rejects, state } = &self.t;
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {readings} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    datetime TEXT NOT NULL,
                    variable_name TEXT NOT NULL,
                    value REAL,
                    source_file TEXT,
                    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
                CREATE INDEX IF NOT EXISTS idx_{readings}_datetime ON {readings}(datetime);
                CREATE TABLE IF NOT EXISTS {results} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    ds TEXT NOT NULL,
                    variable TEXT NOT NULL,
                    y REAL, yhat REAL, yhat_lower REAL, yhat_upper REAL, residual REAL,
                    is_anomaly INTEGER NOT NULL,
                    anomaly_score REAL,
                    processed_at TEXT NOT NULL,
                    UNIQUE (ds, variable));
                CREATE INDEX IF NOT EXISTS idx_{results}_ds ON {results}(ds);
                CREATE INDEX IF NOT EXISTS idx_{results}_variable ON {results}(variable);
                CREATE INDEX IF NOT EXISTS idx_{results}_is_anomaly ON {results}(is_anomaly);
                CREATE INDEX IF NOT EXISTS idx_{results}_score ON {results}(anomaly_score);
                CREATE TABLE IF NOT EXISTS {rejects} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    reading_id INTEGER NOT NULL UNIQUE,
                    ds TEXT, variable TEXT, reason TEXT NOT NULL,
                    rejected_at TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS {state} (
                    job TEXT PRIMARY KEY,
                    last_reading_id INTEGER NOT NULL DEFAULT 0,
                    results INTEGER NOT NULL DEFAULT 0,
                    anomalies INTEGER NOT NULL DEFAULT 0,
                    rejects INTEGER NOT NULL DEFAULT 0,
                    last_trained_at INTEGER,
                    updated_at TEXT NOT NULL);"
            ))
            .context("cannot create the tables")
    }

    fn insert_readings(&mut self, rows: &[NewReading], progress: &mut dyn FnMut(usize)) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (datetime, variable_name, value, source_file) VALUES (?1, ?2, ?3, ?4)",
            self.t.readings
        );
        let mut done = 0;
        for chunk in rows.chunks(CHUNK) {
            let tx = self.conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(&sql)?;
                for r in chunk {
                    insert.execute(params![format_timestamp(r.ts), r.variable, r.value, r.source])?;
                }
            }
            tx.commit()?;
            done += chunk.len();
            progress(done);
        }
        Ok(())
    }

    fn readings_between(&mut self, from: Option<i64>, to: Option<i64>) -> Result<Vec<(i64, String, Option<f64>)>> {
        let sql = format!(
            "SELECT datetime, variable_name, value FROM {} WHERE (?1 IS NULL OR datetime >= ?1) \
             AND (?2 IS NULL OR datetime < ?2) ORDER BY datetime, id",
            self.t.readings
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params![from.map(format_timestamp), to.map(format_timestamp)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let text: String = row.get(0)?;
            let Some(ts) = parse_timestamp(&text) else { continue };
            // Text that is not a number trains as a missing reading.
            let value = number(row.get_ref(2)?).unwrap_or_default();
            out.push((ts, row.get(1)?, value));
        }
        Ok(out)
    }

    fn pending(&mut self, after_id: i64, since: Option<i64>, limit: usize) -> Result<Vec<Pending>> {
        let Tables { readings, results, rejects, .. } = &self.t;
        let sql = format!(
            "SELECT r.id, r.datetime, r.variable_name, r.value FROM {readings} r
             WHERE r.id > ?1 AND (?2 IS NULL OR r.datetime >= ?2)
               AND NOT EXISTS (SELECT 1 FROM {results} a WHERE a.ds = r.datetime AND a.variable = r.variable_name)
               AND NOT EXISTS (SELECT 1 FROM {rejects} j WHERE j.reading_id = r.id)
             ORDER BY r.id LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![after_id, since.map(format_timestamp), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let text: String = row.get(1)?;
            out.push(Pending {
                id: row.get(0)?,
                // An unparsable time becomes a reject downstream (ts = i64::MIN).
                ts: parse_timestamp(&text).unwrap_or(i64::MIN),
                variable: row.get(2)?,
                value: number(row.get_ref(3)?),
            });
        }
        Ok(out)
    }

    fn commit(&mut self, job: &str, results: &[ResultRow], rejects: &[Reject], last_reading_id: i64) -> Result<usize> {
        let Tables { results: rt, rejects: jt, state, .. } = &self.t;
        let stamp = now();
        let tx = self.conn.transaction()?;
        let (mut inserted, mut anomalies, mut rejected) = (0usize, 0i64, 0i64);
        {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO {rt} (ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score, \
                 processed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (ds, variable) DO NOTHING"
            ))?;
            for r in results {
                let n = insert.execute(params![
                    format_timestamp(r.ts),
                    r.variable,
                    r.y,
                    r.yhat,
                    r.yhat_lower,
                    r.yhat_upper,
                    r.residual,
                    r.is_anomaly,
                    r.score,
                    stamp
                ])?;
                inserted += n;
                anomalies += i64::from(n > 0 && r.is_anomaly);
            }
            let mut reject = tx.prepare_cached(&format!(
                "INSERT INTO {jt} (reading_id, ds, variable, reason, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (reading_id) DO NOTHING"
            ))?;
            for j in rejects {
                let ds = (j.ts != i64::MIN).then(|| format_timestamp(j.ts));
                rejected += reject.execute(params![j.reading_id, ds, j.variable, j.reason, stamp])? as i64;
            }
            tx.execute(
                &format!(
                    "INSERT INTO {state} (job, last_reading_id, results, anomalies, rejects, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (job) DO UPDATE SET
                       last_reading_id = MAX(last_reading_id, excluded.last_reading_id),
                       results = results + excluded.results,
                       anomalies = anomalies + excluded.anomalies,
                       rejects = rejects + excluded.rejects,
                       updated_at = excluded.updated_at"
                ),
                params![job, last_reading_id, inserted as i64, anomalies, rejected, stamp],
            )?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn mark_trained(&mut self, job: &str, at: i64) -> Result<()> {
        self.conn.execute(
            &format!(
                "INSERT INTO {} (job, last_trained_at, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job) DO UPDATE SET last_trained_at = excluded.last_trained_at,
                 updated_at = excluded.updated_at",
                self.t.state
            ),
            params![job, at, now()],
        )?;
        Ok(())
    }

    fn job_state(&mut self, job: &str) -> Result<Option<JobState>> {
        let sql = format!(
            "SELECT last_reading_id, results, anomalies, rejects, last_trained_at FROM {} WHERE job = ?1",
            self.t.state
        );
        Ok(self
            .conn
            .query_row(&sql, params![job], |r| {
                Ok(JobState {
                    last_reading_id: r.get(0)?,
                    results: r.get(1)?,
                    anomalies: r.get(2)?,
                    rejects: r.get(3)?,
                    last_trained_at: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn anomalies(&mut self, f: &AnomalyFilter, limit: i64, offset: i64) -> Result<(i64, Vec<ResultRow>)> {
        let rt = &self.t.results;
        let filter = "(?1 IS NULL OR variable = ?1) AND (?2 IS NULL OR ds >= ?2) AND (?3 IS NULL OR ds < ?3) \
                      AND (?4 IS NULL OR anomaly_score >= ?4) AND (?5 OR is_anomaly = 1)";
        let args = params![f.variable, f.from.map(format_timestamp), f.to.map(format_timestamp), f.min_score, f.all];
        let total: i64 =
            self.conn.query_row(&format!("SELECT COUNT(*) FROM {rt} WHERE {filter}"), args, |r| r.get(0))?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score FROM {rt} \
             WHERE {filter} ORDER BY ds DESC, variable LIMIT ?6 OFFSET ?7"
        ))?;
        let rows = stmt.query_map(
            params![
                f.variable,
                f.from.map(format_timestamp),
                f.to.map(format_timestamp),
                f.min_score,
                f.all,
                limit,
                offset
            ],
            |r| {
                let ds: String = r.get(0)?;
                Ok(ResultRow {
                    ts: parse_timestamp(&ds).unwrap_or(0),
                    variable: r.get(1)?,
                    y: r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN),
                    yhat: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
                    yhat_lower: r.get::<_, Option<f64>>(4)?.unwrap_or(f64::NAN),
                    yhat_upper: r.get::<_, Option<f64>>(5)?.unwrap_or(f64::NAN),
                    residual: r.get::<_, Option<f64>>(6)?.unwrap_or(f64::NAN),
                    is_anomaly: r.get(7)?,
                    score: r.get::<_, Option<f64>>(8)?.unwrap_or(f64::NAN),
                })
            },
        )?;
        Ok((total, rows.collect::<Result<_, _>>()?))
    }

    fn variable_stats(&mut self) -> Result<Vec<VariableStats>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT variable, COUNT(*), SUM(is_anomaly), AVG(anomaly_score), MIN(ds), MAX(ds) FROM {} \
             GROUP BY variable ORDER BY variable",
            self.t.results
        ))?;
        let rows = stmt.query_map([], |r| {
            let (results, anomalies): (i64, i64) = (r.get(1)?, r.get(2)?);
            Ok(VariableStats {
                variable: r.get(0)?,
                results,
                anomalies,
                percent: 100.0 * anomalies as f64 / results.max(1) as f64,
                mean_score: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                first: r.get(4)?,
                last: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn monthly(&mut self, variable: Option<&str>) -> Result<Vec<MonthStats>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT substr(ds, 1, 7) AS month, variable, COUNT(*), SUM(is_anomaly), AVG(anomaly_score), \
             MAX(anomaly_score) FROM {} WHERE (?1 IS NULL OR variable = ?1) \
             GROUP BY month, variable ORDER BY month, variable",
            self.t.results
        ))?;
        let rows = stmt.query_map(params![variable], |r| {
            Ok(MonthStats {
                month: r.get(0)?,
                variable: r.get(1)?,
                results: r.get(2)?,
                anomalies: r.get(3)?,
                mean_score: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                max_score: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn ensure_records(&mut self, table: &str, columns: &[String]) -> Result<()> {
        self.ensure_records_impl(table, columns)
    }

    fn insert_records(&mut self, table: &str, columns: &[String], rows: &[(i64, Vec<f64>)]) -> Result<()> {
        let names = columns.join(", ");
        let marks: String = (0..columns.len()).map(|i| format!(", ?{}", i + 2)).collect();
        let sql = format!("INSERT INTO {table} (datetime, {names}) VALUES (?1{marks})");
        for chunk in rows.chunks(CHUNK) {
            let tx = self.conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(&sql)?;
                for (ts, values) in chunk {
                    let mut args: Vec<rusqlite::types::Value> = vec![format_timestamp(*ts).into()];
                    args.extend(values.iter().map(|&v| rusqlite::types::Value::Real(v)));
                    insert.execute(rusqlite::params_from_iter(args))?;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn trim_records(&mut self, table: &str, keep: usize) -> Result<usize> {
        Ok(self.conn.execute(
            &format!("DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?1)"),
            params![keep as i64],
        )?)
    }

    fn pending_records(
        &mut self,
        table: &str,
        columns: &[String],
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<Option<f64>>)>> {
        let names = columns.join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, {names} FROM {table} r WHERE r.id > ?1
               AND NOT EXISTS (SELECT 1 FROM {table}_scores s WHERE s.record_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM {table}_rejects j WHERE j.record_id = r.id) ORDER BY r.id LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![after_id, limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns.len()).map(|i| number(row.get_ref(i + 1).ok()?).ok().flatten()).collect();
            out.push((row.get(0)?, values));
        }
        Ok(out)
    }

    fn latest_records(&mut self, table: &str, columns: &[String], n: usize) -> Result<Vec<Vec<f64>>> {
        let names = columns.join(", ");
        let complete = columns.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {names} FROM (SELECT * FROM {table} WHERE {complete} ORDER BY id DESC LIMIT ?1) ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![n as i64], |row| {
            (0..columns.len()).map(|i| row.get::<_, f64>(i)).collect::<Result<Vec<f64>, _>>()
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn commit_scores(
        &mut self,
        table: &str,
        scores: &[super::RecordScore],
        rejects: &[super::RecordReject],
        m: &super::PassMetrics,
    ) -> Result<usize> {
        let stamp = now();
        let state_table = self.t.state.clone();
        let tx = self.conn.transaction()?;
        let (mut inserted, mut rejected) = (0, 0i64);
        {
            let mut reject = tx.prepare_cached(&format!(
                "INSERT INTO {table}_rejects (record_id, reason, rejected_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (record_id) DO NOTHING"
            ))?;
            for (id, reason) in rejects {
                rejected += reject.execute(params![id, reason, stamp])? as i64;
            }
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO {table}_scores (record_id, score, decision, is_anomaly, scored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (record_id) DO NOTHING"
            ))?;
            for (id, score, decision, anomaly) in scores {
                inserted += insert.execute(params![id, score, decision, anomaly, stamp])?;
            }
            tx.execute(
                &format!(
                    "INSERT INTO {table}_metrics (computed_at, total, anomalies, percent, state, first_record_id,
                     last_record_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![stamp, m.total, m.anomalies, m.percent, m.state, m.first_id, m.last_id],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO {state_table} (job, last_reading_id, results, anomalies, rejects, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (job) DO UPDATE SET last_reading_id = MAX(last_reading_id, excluded.last_reading_id),
                       results = results + excluded.results, anomalies = anomalies + excluded.anomalies,
                       rejects = rejects + excluded.rejects, updated_at = excluded.updated_at"
                ),
                params![Self::job(table), m.last_id, inserted as i64, m.anomalies, rejected, stamp],
            )?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn ensure_consumption(&mut self) -> Result<()> {
        let lecturas =
            "id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, timestamp TEXT NOT NULL, kwh REAL,
                        created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP";
        self.conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS consumo_lecturas ({lecturas});
             CREATE INDEX IF NOT EXISTS idx_consumo_lecturas_client_ts ON consumo_lecturas(client_id, timestamp);
             CREATE TABLE IF NOT EXISTS consumo_lecturas_archivo ({lecturas});
             CREATE TABLE IF NOT EXISTS consumo_anomalias (reading_id INTEGER PRIMARY KEY, client_id TEXT NOT NULL,
                timestamp TEXT NOT NULL, kwh REAL, is_anomaly INTEGER NOT NULL, types TEXT NOT NULL, score REAL NOT NULL,
                severity TEXT NOT NULL, processed_at TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS idx_consumo_anomalias_client ON consumo_anomalias(client_id, timestamp);
             CREATE INDEX IF NOT EXISTS idx_consumo_anomalias_severity ON consumo_anomalias(severity);
             CREATE TABLE IF NOT EXISTS consumo_rechazos (reading_id INTEGER PRIMARY KEY, client_id TEXT NOT NULL,
                timestamp TEXT, reason TEXT NOT NULL, rejected_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS consumo_mensual (client_id TEXT NOT NULL, month TEXT NOT NULL,
                readings INTEGER NOT NULL, total_kwh REAL NOT NULL, anomalies INTEGER NOT NULL, critical INTEGER NOT NULL,
                night_mean_kwh REAL, peak_mean_kwh REAL, score REAL NOT NULL, updated_at TEXT NOT NULL,
                PRIMARY KEY (client_id, month));
             CREATE TABLE IF NOT EXISTS consumo_archivo_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                action TEXT NOT NULL, from_ts TEXT, to_ts TEXT, rows INTEGER NOT NULL);"
        ))?;
        Ok(())
    }

    fn insert_consumption(&mut self, rows: &[(String, i64, f64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let tx = self.conn.transaction()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT INTO consumo_lecturas (client_id, timestamp, kwh) VALUES (?1, ?2, ?3)")?;
                for (client, ts, kwh) in chunk {
                    insert.execute(params![client, format_timestamp(*ts), kwh])?;
                }
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn pending_consumption(&mut self, after_id: i64, limit: usize) -> Result<Vec<ConsumptionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, client_id, timestamp, kwh FROM consumo_lecturas r WHERE r.id > ?1
               AND NOT EXISTS (SELECT 1 FROM consumo_anomalias a WHERE a.reading_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM consumo_rechazos j WHERE j.reading_id = r.id) ORDER BY r.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after_id, limit as i64], consumption_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn consumption_context(&mut self, clients: &[String], from: i64) -> Result<Vec<ConsumptionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, client_id, timestamp, kwh FROM consumo_lecturas WHERE client_id = ?1 AND timestamp >= ?2",
        )?;
        let mut out = Vec::new();
        for client in clients {
            let rows = stmt.query_map(params![client, format_timestamp(from)], consumption_row)?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    fn commit_consumption(
        &mut self,
        flags: &[ConsumptionFlag],
        rejects: &[Reject],
        months: &[MonthRow],
        last_id: i64,
    ) -> Result<usize> {
        let stamp = now();
        let state = self.t.state.clone();
        let tx = self.conn.transaction()?;
        let (mut inserted, mut rejected) = (0, 0i64);
        {
            let mut reject = tx.prepare_cached(
                "INSERT INTO consumo_rechazos (reading_id, client_id, timestamp, reason, rejected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (reading_id) DO NOTHING",
            )?;
            for j in rejects {
                let ts = (j.ts != i64::MIN).then(|| format_timestamp(j.ts));
                rejected += reject.execute(params![j.reading_id, j.variable, ts, j.reason, stamp])? as i64;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO consumo_anomalias (reading_id, client_id, timestamp, kwh, is_anomaly, types, score, severity,
                 processed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (reading_id) DO NOTHING",
            )?;
            for f in flags {
                inserted += insert.execute(params![
                    f.reading_id,
                    f.client,
                    format_timestamp(f.ts),
                    f.kwh,
                    f.is_anomaly,
                    f.types,
                    f.score,
                    f.severity,
                    stamp
                ])?;
            }
            let mut month = tx.prepare_cached(
                "INSERT INTO consumo_mensual (client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh,
                 peak_mean_kwh, score, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (client_id, month) DO UPDATE SET readings = excluded.readings,
                   total_kwh = excluded.total_kwh, anomalies = excluded.anomalies, critical = excluded.critical,
                   night_mean_kwh = excluded.night_mean_kwh, peak_mean_kwh = excluded.peak_mean_kwh,
                   score = excluded.score, updated_at = excluded.updated_at",
            )?;
            for m in months {
                month.execute(params![
                    m.client,
                    m.month,
                    m.readings,
                    m.total_kwh,
                    m.anomalies,
                    m.critical,
                    m.night_mean_kwh,
                    m.peak_mean_kwh,
                    m.score,
                    stamp
                ])?;
            }
            let anomalies = flags.iter().filter(|f| f.is_anomaly).count() as i64;
            tx.execute(
                &format!(
                    "INSERT INTO {state} (job, last_reading_id, results, anomalies, rejects, updated_at)
                     VALUES ('consumption', ?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (job) DO UPDATE SET last_reading_id = MAX(last_reading_id, excluded.last_reading_id),
                       results = results + excluded.results, anomalies = anomalies + excluded.anomalies,
                       rejects = rejects + excluded.rejects, updated_at = excluded.updated_at"
                ),
                params![last_id, inserted as i64, anomalies, rejected, stamp],
            )?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn consumption_anomalies(
        &mut self,
        f: &super::ConsumptionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<ConsumptionFlag>)> {
        let filter = "is_anomaly = 1 AND (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR severity = ?2) \
                      AND (?3 IS NULL OR timestamp >= ?3) AND (?4 IS NULL OR timestamp < ?4)";
        let (from, to) = (f.from.map(format_timestamp), f.to.map(format_timestamp));
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM consumo_anomalias WHERE {filter}"),
            params![f.client, f.severity, from, to],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT reading_id, client_id, timestamp, kwh, is_anomaly, types, score, severity FROM consumo_anomalias \
             WHERE {filter} ORDER BY timestamp DESC, client_id LIMIT ?5 OFFSET ?6"
        ))?;
        let rows = stmt.query_map(params![f.client, f.severity, from, to, limit, offset], |r| {
            let ts: String = r.get(2)?;
            Ok(ConsumptionFlag {
                reading_id: r.get(0)?,
                client: r.get(1)?,
                ts: parse_timestamp(&ts).unwrap_or(0),
                kwh: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
                is_anomaly: r.get(4)?,
                types: r.get(5)?,
                score: r.get(6)?,
                severity: r.get(7)?,
            })
        })?;
        Ok((total, rows.collect::<Result<_, _>>()?))
    }

    fn client_stats(&mut self) -> Result<Vec<super::ClientStats>> {
        let mut stmt = self.conn.prepare(
            "SELECT client_id, COUNT(*), SUM(is_anomaly), SUM(severity = 'crítica'),
                    SUM(severity IN ('crítica', 'alta')), MAX(score), TOTAL(kwh)
             FROM consumo_anomalias GROUP BY client_id ORDER BY SUM(is_anomaly) DESC, client_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(super::ClientStats {
                client_id: r.get(0)?,
                readings: r.get(1)?,
                anomalies: r.get(2)?,
                critical: r.get(3)?,
                severe: r.get(4)?,
                max_score: r.get(5)?,
                total_kwh: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn consumption_monthly(&mut self, client: Option<&str>) -> Result<Vec<MonthRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh, peak_mean_kwh, score
             FROM consumo_mensual WHERE (?1 IS NULL OR client_id = ?1) ORDER BY client_id, month",
        )?;
        let rows = stmt.query_map(params![client], |r| {
            Ok(MonthRow {
                client: r.get(0)?,
                month: r.get(1)?,
                readings: r.get(2)?,
                total_kwh: r.get(3)?,
                anomalies: r.get(4)?,
                critical: r.get(5)?,
                night_mean_kwh: r.get(6)?,
                peak_mean_kwh: r.get(7)?,
                score: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_consumption(&mut self) -> Result<Option<i64>> {
        let text: Option<String> =
            self.conn.query_row("SELECT MAX(timestamp) FROM consumo_lecturas", [], |r| r.get(0))?;
        Ok(text.as_deref().and_then(parse_timestamp))
    }

    fn archive_consumption(&mut self, before: i64) -> Result<usize> {
        let (stamp, cut) = (now(), format_timestamp(before));
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO consumo_lecturas_archivo SELECT * FROM consumo_lecturas WHERE timestamp < ?1",
            params![cut],
        )?;
        let moved = tx.execute("DELETE FROM consumo_lecturas WHERE timestamp < ?1", params![cut])?;
        tx.execute(
            "INSERT INTO consumo_archivo_log (at, action, from_ts, to_ts, rows) VALUES (?1, 'archive', NULL, ?2, ?3)",
            params![stamp, cut, moved as i64],
        )?;
        tx.commit()?;
        Ok(moved)
    }

    fn restore_consumption(&mut self, from: i64, to: i64) -> Result<usize> {
        let (stamp, a, b) = (now(), format_timestamp(from), format_timestamp(to));
        let tx = self.conn.transaction()?;
        let range = "timestamp >= ?1 AND timestamp < ?2";
        tx.execute(
            &format!("INSERT INTO consumo_lecturas SELECT * FROM consumo_lecturas_archivo WHERE {range}"),
            params![a, b],
        )?;
        let moved = tx.execute(&format!("DELETE FROM consumo_lecturas_archivo WHERE {range}"), params![a, b])?;
        tx.execute(
            "INSERT INTO consumo_archivo_log (at, action, from_ts, to_ts, rows) VALUES (?1, 'restore', ?2, ?3, ?4)",
            params![stamp, a, b, moved as i64],
        )?;
        tx.commit()?;
        Ok(moved)
    }

    fn latest_reading(&mut self) -> Result<Option<i64>> {
        let text: Option<String> =
            self.conn.query_row(&format!("SELECT MAX(datetime) FROM {}", self.t.readings), [], |r| r.get(0))?;
        Ok(text.as_deref().and_then(parse_timestamp))
    }
}

fn consumption_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsumptionRow> {
    let ts: String = r.get(2)?;
    Ok(ConsumptionRow {
        id: r.get(0)?,
        client: r.get(1)?,
        ts: parse_timestamp(&ts).unwrap_or(i64::MIN),
        kwh: number(r.get_ref(3)?).ok().flatten(),
    })
}

/// A stored value as a number: NULL is missing, text that parses is a
/// number, any other text is kept (to reject it by name).
fn number(value: ValueRef<'_>) -> Result<Option<f64>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(i as f64)),
        ValueRef::Real(x) => Ok(Some(x)),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            text.trim().parse::<f64>().map(Some).map_err(|_| text.into_owned())
        }
        ValueRef::Blob(_) => Err("a binary value".into()),
    }
}

impl Sqlite {
    fn job(table: &str) -> String {
        format!("iforest:{table}")
    }
}

/// The isolation-forest job's tables on SQLite.
impl Sqlite {
    pub(crate) fn ensure_records_impl(&mut self, table: &str, columns: &[String]) -> Result<()> {
        let cols: String = columns.iter().map(|c| format!(", {c} REAL")).collect();
        self.conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, datetime TEXT NOT NULL{cols},
                created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
             CREATE TABLE IF NOT EXISTS {table}_scores (record_id INTEGER PRIMARY KEY, score REAL NOT NULL,
                decision REAL NOT NULL, is_anomaly INTEGER NOT NULL, scored_at TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS idx_{table}_scores_anomaly ON {table}_scores(is_anomaly);
             CREATE TABLE IF NOT EXISTS {table}_rejects (record_id INTEGER PRIMARY KEY, reason TEXT NOT NULL,
                rejected_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {table}_metrics (id INTEGER PRIMARY KEY AUTOINCREMENT,
                computed_at TEXT NOT NULL, total INTEGER NOT NULL, anomalies INTEGER NOT NULL, percent REAL NOT NULL,
                state TEXT NOT NULL, first_record_id INTEGER NOT NULL, last_record_id INTEGER NOT NULL);"
        ))?;
        Ok(())
    }
}
