//! PostgreSQL (`--db postgres://user@host:port/db`, or `ANOMALY_DB`).
//! Times are `TIMESTAMP` (naive, as the plant writes them), exchanged as
//! epoch seconds; bulk writes go through `COPY` and `unnest` arrays, so a
//! batch is one round trip, not one per row.

use std::io::Write;

use anyhow::{Context, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use super::{
    check_name, AnomalyFilter, ConsumptionFlag, ConsumptionRow, JobState, MonthRow, MonthStats, NewReading, Pending,
    Reject, ResultRow, Store, Tables, VariableStats,
};

/// The LISTEN/NOTIFY channel announcing new readings.
const CHANNEL: &str = "anomaly_readings";

/// Rows per `COPY` transaction.
const CHUNK: usize = 100_000;

pub(crate) struct Postgres {
    client: Client,
    t: Tables,
    listening: bool,
}

impl Postgres {
    pub(crate) fn open(url: &str, tables: Tables) -> Result<Postgres> {
        for name in [&tables.readings, &tables.results, &tables.rejects, &tables.state] {
            check_name(name)?;
        }
        let client = Client::connect(url, NoTls).with_context(|| format!("cannot connect to {}", redact(url)))?;
        Ok(Postgres { client, t: tables, listening: false })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `timestamp` from epoch seconds, and back.
const TO_TS: &str = "to_timestamp($N::double precision) AT TIME ZONE 'UTC'";

fn ts(n: usize) -> String {
    TO_TS.replace("$N", &format!("${n}"))
}

impl Store for Postgres {
    fn ensure_schema(&mut self) -> Result<()> {
        let Tables { readings, results, rejects, state } = &self.t;
        let idx = |t: &str| t.replace('.', "_");
        let (ri, si) = (idx(readings), idx(results));
        self.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {readings} (
                    id BIGSERIAL PRIMARY KEY,
                    datetime TIMESTAMP NOT NULL,
                    variable_name TEXT NOT NULL,
                    value DOUBLE PRECISION,
                    source_file TEXT,
                    created_at TIMESTAMP NOT NULL DEFAULT now());
                CREATE INDEX IF NOT EXISTS idx_{ri}_datetime ON {readings}(datetime);
                CREATE TABLE IF NOT EXISTS {results} (
                    id BIGSERIAL PRIMARY KEY,
                    ds TIMESTAMP NOT NULL,
                    variable TEXT NOT NULL,
                    y DOUBLE PRECISION, yhat DOUBLE PRECISION, yhat_lower DOUBLE PRECISION,
                    yhat_upper DOUBLE PRECISION, residual DOUBLE PRECISION,
                    is_anomaly BOOLEAN NOT NULL,
                    anomaly_score DOUBLE PRECISION,
                    processed_at TIMESTAMP NOT NULL DEFAULT now(),
                    UNIQUE (ds, variable));
                CREATE INDEX IF NOT EXISTS idx_{si}_ds ON {results}(ds);
                CREATE INDEX IF NOT EXISTS idx_{si}_variable ON {results}(variable);
                CREATE INDEX IF NOT EXISTS idx_{si}_is_anomaly ON {results}(is_anomaly);
                CREATE INDEX IF NOT EXISTS idx_{si}_score ON {results}(anomaly_score);
                CREATE TABLE IF NOT EXISTS {rejects} (
                    id BIGSERIAL PRIMARY KEY,
                    reading_id BIGINT NOT NULL UNIQUE,
                    ds TIMESTAMP, variable TEXT, reason TEXT NOT NULL,
                    rejected_at TIMESTAMP NOT NULL DEFAULT now());
                CREATE TABLE IF NOT EXISTS {state} (
                    job TEXT PRIMARY KEY,
                    last_reading_id BIGINT NOT NULL DEFAULT 0,
                    results BIGINT NOT NULL DEFAULT 0,
                    anomalies BIGINT NOT NULL DEFAULT 0,
                    rejects BIGINT NOT NULL DEFAULT 0,
                    last_trained_at BIGINT,
                    updated_at TIMESTAMP NOT NULL DEFAULT now());"
            ))
            .context("cannot create the tables")?;
        // Announce inserts, so that `watch` wakes at once instead of on its
        // next poll (one notification per INSERT or COPY statement).
        let trigger = format!(
            "CREATE OR REPLACE FUNCTION anomaly_notify_readings() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$;
             CREATE OR REPLACE TRIGGER anomaly_notify_{ri} AFTER INSERT ON {readings}
               FOR EACH STATEMENT EXECUTE FUNCTION anomaly_notify_readings();"
        );
        if let Err(e) = self.client.batch_execute(&trigger) {
            log::warn!("cannot install the insert notification trigger ({e}); `watch` will poll");
        }
        Ok(())
    }

    fn insert_readings(&mut self, rows: &[NewReading], progress: &mut dyn FnMut(usize)) -> Result<()> {
        let mut done = 0;
        for chunk in rows.chunks(CHUNK) {
            let mut tx = self.client.transaction()?;
            {
                let mut copy = tx.copy_in(&format!(
                    "COPY {} (datetime, variable_name, value, source_file) FROM STDIN",
                    self.t.readings
                ))?;
                let mut buf = Vec::with_capacity(chunk.len() * 48);
                for r in chunk {
                    anomaly_core::time::push_timestamp(&mut buf, r.ts);
                    buf.push(b'\t');
                    copy_text(&mut buf, &r.variable);
                    buf.push(b'\t');
                    match r.value {
                        Some(v) if v.is_finite() => crate::csvio::push_f64(&mut buf, v),
                        Some(v) if v.is_nan() => buf.extend_from_slice(b"NaN"),
                        _ => buf.extend_from_slice(b"\\N"),
                    }
                    buf.push(b'\t');
                    match &r.source {
                        Some(s) => copy_text(&mut buf, s),
                        None => buf.extend_from_slice(b"\\N"),
                    }
                    buf.push(b'\n');
                }
                copy.write_all(&buf)?;
                copy.finish()?;
            }
            tx.commit()?;
            done += chunk.len();
            progress(done);
        }
        Ok(())
    }

    fn readings_between(&mut self, from: Option<i64>, to: Option<i64>) -> Result<Vec<(i64, String, Option<f64>)>> {
        let sql = format!(
            "SELECT EXTRACT(EPOCH FROM datetime)::bigint, variable_name, value FROM {} \
             WHERE ($1::bigint IS NULL OR datetime >= {}) AND ($2::bigint IS NULL OR datetime < {}) \
             ORDER BY datetime, id",
            self.t.readings,
            ts(1),
            ts(2)
        );
        let rows = self.client.query(&sql, &[&from, &to])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get::<_, Option<f64>>(2))).collect())
    }

    fn pending(&mut self, after_id: i64, since: Option<i64>, limit: usize) -> Result<Vec<Pending>> {
        let Tables { readings, results, rejects, .. } = &self.t;
        let sql = format!(
            "SELECT r.id, EXTRACT(EPOCH FROM r.datetime)::bigint, r.variable_name, r.value FROM {readings} r
             WHERE r.id > $1 AND ($2::bigint IS NULL OR r.datetime >= {})
               AND NOT EXISTS (SELECT 1 FROM {results} a WHERE a.ds = r.datetime AND a.variable = r.variable_name)
               AND NOT EXISTS (SELECT 1 FROM {rejects} j WHERE j.reading_id = r.id)
             ORDER BY r.id LIMIT $3",
            ts(2)
        );
        let rows = self.client.query(&sql, &[&after_id, &since, &(limit as i64)])?;
        Ok(rows
            .iter()
            .map(|r| Pending { id: r.get(0), ts: r.get(1), variable: r.get(2), value: Ok(r.get::<_, Option<f64>>(3)) })
            .collect())
    }

    fn commit(&mut self, job: &str, results: &[ResultRow], rejects: &[Reject], last_reading_id: i64) -> Result<usize> {
        let Tables { results: rt, rejects: jt, state, .. } = &self.t;
        let mut tx = self.client.transaction()?;
        let col = |f: fn(&ResultRow) -> f64| results.iter().map(f).collect::<Vec<f64>>();
        let times: Vec<f64> = results.iter().map(|r| r.ts as f64).collect();
        let names: Vec<&str> = results.iter().map(|r| r.variable.as_str()).collect();
        let flags: Vec<bool> = results.iter().map(|r| r.is_anomaly).collect();
        let inserted_rows = tx.query(
            &format!(
                "INSERT INTO {rt} (ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score)
                 SELECT to_timestamp(t) AT TIME ZONE 'UTC', v, y, yh, lo, hi, res, a, s
                 FROM unnest($1::float8[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                             $7::float8[], $8::bool[], $9::float8[]) AS u(t, v, y, yh, lo, hi, res, a, s)
                 ON CONFLICT (ds, variable) DO NOTHING
                 RETURNING is_anomaly"
            ),
            &[
                &times,
                &names,
                &col(|r| r.y),
                &col(|r| r.yhat),
                &col(|r| r.yhat_lower),
                &col(|r| r.yhat_upper),
                &col(|r| r.residual),
                &flags,
                &col(|r| r.score),
            ],
        )?;
        let inserted = inserted_rows.len();
        let anomalies = inserted_rows.iter().filter(|r| r.get::<_, bool>(0)).count() as i64;
        let ids: Vec<i64> = rejects.iter().map(|j| j.reading_id).collect();
        let reject_times: Vec<Option<f64>> =
            rejects.iter().map(|j| (j.ts != i64::MIN).then_some(j.ts as f64)).collect();
        let reject_names: Vec<&str> = rejects.iter().map(|j| j.variable.as_str()).collect();
        let reasons: Vec<&str> = rejects.iter().map(|j| j.reason.as_str()).collect();
        let rejected = tx.execute(
            &format!(
                "INSERT INTO {jt} (reading_id, ds, variable, reason)
                 SELECT i, to_timestamp(t) AT TIME ZONE 'UTC', v, r
                 FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[]) AS u(i, t, v, r)
                 ON CONFLICT (reading_id) DO NOTHING"
            ),
            &[&ids, &reject_times, &reject_names, &reasons],
        )? as i64;
        tx.execute(
            &format!(
                "INSERT INTO {state} AS s (job, last_reading_id, results, anomalies, rejects, updated_at)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (job) DO UPDATE SET
                   last_reading_id = GREATEST(s.last_reading_id, excluded.last_reading_id),
                   results = s.results + excluded.results,
                   anomalies = s.anomalies + excluded.anomalies,
                   rejects = s.rejects + excluded.rejects,
                   updated_at = now()"
            ),
            &[&job, &last_reading_id, &(inserted as i64), &anomalies, &rejected],
        )?;
        tx.commit()?;
        Ok(inserted)
    }

    fn mark_trained(&mut self, job: &str, at: i64) -> Result<()> {
        self.client.execute(
            &format!(
                "INSERT INTO {} AS s (job, last_trained_at) VALUES ($1, $2)
                 ON CONFLICT (job) DO UPDATE SET last_trained_at = excluded.last_trained_at, updated_at = now()",
                self.t.state
            ),
            &[&job, &at],
        )?;
        Ok(())
    }

    fn job_state(&mut self, job: &str) -> Result<Option<JobState>> {
        let row = self.client.query_opt(
            &format!(
                "SELECT last_reading_id, results, anomalies, rejects, last_trained_at FROM {} WHERE job = $1",
                self.t.state
            ),
            &[&job],
        )?;
        Ok(row.map(|r| JobState {
            last_reading_id: r.get(0),
            results: r.get(1),
            anomalies: r.get(2),
            rejects: r.get(3),
            last_trained_at: r.get(4),
        }))
    }

    fn anomalies(&mut self, f: &AnomalyFilter, limit: i64, offset: i64) -> Result<(i64, Vec<ResultRow>)> {
        let rt = &self.t.results;
        let filter = format!(
            "($1::text IS NULL OR variable = $1) AND ($2::bigint IS NULL OR ds >= {}) \
             AND ($3::bigint IS NULL OR ds < {}) AND ($4::float8 IS NULL OR anomaly_score >= $4) \
             AND ($5 OR is_anomaly)",
            ts(2),
            ts(3)
        );
        let total: i64 = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM {rt} WHERE {filter}"),
                &[&f.variable, &f.from, &f.to, &f.min_score, &f.all],
            )?
            .get(0);
        let rows = self.client.query(
            &format!(
                "SELECT EXTRACT(EPOCH FROM ds)::bigint, variable, y, yhat, yhat_lower, yhat_upper, residual, \
                 is_anomaly, anomaly_score FROM {rt} WHERE {filter} ORDER BY ds DESC, variable LIMIT $6 OFFSET $7"
            ),
            &[&f.variable, &f.from, &f.to, &f.min_score, &f.all, &limit, &offset],
        )?;
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        Ok((
            total,
            rows.iter()
                .map(|r| ResultRow {
                    ts: r.get(0),
                    variable: r.get(1),
                    y: nan(r.get(2)),
                    yhat: nan(r.get(3)),
                    yhat_lower: nan(r.get(4)),
                    yhat_upper: nan(r.get(5)),
                    residual: nan(r.get(6)),
                    is_anomaly: r.get(7),
                    score: nan(r.get(8)),
                })
                .collect(),
        ))
    }

    fn variable_stats(&mut self) -> Result<Vec<VariableStats>> {
        let rows = self.client.query(
            &format!(
                "SELECT variable, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly), AVG(anomaly_score), \
                 to_char(MIN(ds), 'YYYY-MM-DD HH24:MI:SS'), to_char(MAX(ds), 'YYYY-MM-DD HH24:MI:SS') \
                 FROM {} GROUP BY variable ORDER BY variable",
                self.t.results
            ),
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let (results, anomalies): (i64, i64) = (r.get(1), r.get(2));
                VariableStats {
                    variable: r.get(0),
                    results,
                    anomalies,
                    percent: 100.0 * anomalies as f64 / results.max(1) as f64,
                    mean_score: r.get::<_, Option<f64>>(3).unwrap_or(0.0),
                    first: r.get(4),
                    last: r.get(5),
                }
            })
            .collect())
    }

    fn monthly(&mut self, variable: Option<&str>) -> Result<Vec<MonthStats>> {
        let rows = self.client.query(
            &format!(
                "SELECT to_char(ds, 'YYYY-MM') AS month, variable, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly), \
                 AVG(anomaly_score), MAX(anomaly_score) FROM {} WHERE ($1::text IS NULL OR variable = $1) \
                 GROUP BY month, variable ORDER BY month, variable",
                self.t.results
            ),
            &[&variable],
        )?;
        Ok(rows
            .iter()
            .map(|r| MonthStats {
                month: r.get(0),
                variable: r.get(1),
                results: r.get(2),
                anomalies: r.get(3),
                mean_score: r.get::<_, Option<f64>>(4).unwrap_or(0.0),
                max_score: r.get::<_, Option<f64>>(5).unwrap_or(0.0),
            })
            .collect())
    }

    fn ensure_records(&mut self, table: &str, columns: &[String]) -> Result<()> {
        let cols: String = columns.iter().map(|c| format!(", {c} DOUBLE PRECISION")).collect();
        let idx = table.replace('.', "_");
        self.client.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id BIGSERIAL PRIMARY KEY, datetime TIMESTAMP NOT NULL{cols},
                created_at TIMESTAMP NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {table}_scores (record_id BIGINT PRIMARY KEY, score DOUBLE PRECISION NOT NULL,
                decision DOUBLE PRECISION NOT NULL, is_anomaly BOOLEAN NOT NULL,
                scored_at TIMESTAMP NOT NULL DEFAULT now());
             CREATE INDEX IF NOT EXISTS idx_{idx}_scores_anomaly ON {table}_scores(is_anomaly);
             CREATE TABLE IF NOT EXISTS {table}_rejects (record_id BIGINT PRIMARY KEY, reason TEXT NOT NULL,
                rejected_at TIMESTAMP NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {table}_metrics (id BIGSERIAL PRIMARY KEY,
                computed_at TIMESTAMP NOT NULL DEFAULT now(), total BIGINT NOT NULL, anomalies BIGINT NOT NULL,
                percent DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, first_record_id BIGINT NOT NULL,
                last_record_id BIGINT NOT NULL);"
        ))?;
        Ok(())
    }

    fn insert_records(&mut self, table: &str, columns: &[String], rows: &[(i64, Vec<f64>)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut tx = self.client.transaction()?;
            {
                let mut copy = tx.copy_in(&format!("COPY {table} (datetime, {}) FROM STDIN", columns.join(", ")))?;
                let mut buf = Vec::with_capacity(chunk.len() * 64);
                for (ts, values) in chunk {
                    anomaly_core::time::push_timestamp(&mut buf, *ts);
                    for v in values {
                        buf.push(b'\t');
                        if v.is_finite() {
                            crate::csvio::push_f64(&mut buf, *v);
                        } else {
                            buf.extend_from_slice(b"\\N");
                        }
                    }
                    buf.push(b'\n');
                }
                copy.write_all(&buf)?;
                copy.finish()?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn trim_records(&mut self, table: &str, keep: usize) -> Result<usize> {
        Ok(self.client.execute(
            &format!("DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET $1)"),
            &[&(keep as i64)],
        )? as usize)
    }

    fn pending_records(
        &mut self,
        table: &str,
        columns: &[String],
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<Option<f64>>)>> {
        let rows = self.client.query(
            &format!(
                "SELECT id, {} FROM {table} r WHERE r.id > $1
                   AND NOT EXISTS (SELECT 1 FROM {table}_scores s WHERE s.record_id = r.id)
                   AND NOT EXISTS (SELECT 1 FROM {table}_rejects j WHERE j.record_id = r.id) ORDER BY r.id LIMIT $2",
                columns.join(", ")
            ),
            &[&after_id, &(limit as i64)],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), (1..=columns.len()).map(|i| r.get::<_, Option<f64>>(i)).collect())).collect())
    }

    fn latest_records(&mut self, table: &str, columns: &[String], n: usize) -> Result<Vec<Vec<f64>>> {
        let names = columns.join(", ");
        let complete = columns.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
        let rows = self.client.query(
            &format!(
                "SELECT {names} FROM (SELECT * FROM {table} WHERE {complete} ORDER BY id DESC LIMIT $1) t ORDER BY id"
            ),
            &[&(n as i64)],
        )?;
        Ok(rows.iter().map(|r| (0..columns.len()).map(|i| r.get::<_, f64>(i)).collect()).collect())
    }

    fn commit_scores(
        &mut self,
        table: &str,
        scores: &[super::RecordScore],
        rejects: &[super::RecordReject],
        m: &super::PassMetrics,
    ) -> Result<usize> {
        let state = self.t.state.clone();
        let mut tx = self.client.transaction()?;
        let reject_ids: Vec<i64> = rejects.iter().map(|j| j.0).collect();
        let reasons: Vec<&str> = rejects.iter().map(|j| j.1.as_str()).collect();
        let rejected = tx.execute(
            &format!(
                "INSERT INTO {table}_rejects (record_id, reason)
                 SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT (record_id) DO NOTHING"
            ),
            &[&reject_ids, &reasons],
        )? as i64;
        let ids: Vec<i64> = scores.iter().map(|s| s.0).collect();
        let values: Vec<f64> = scores.iter().map(|s| s.1).collect();
        let decisions: Vec<f64> = scores.iter().map(|s| s.2).collect();
        let flags: Vec<bool> = scores.iter().map(|s| s.3).collect();
        let inserted = tx.execute(
            &format!(
                "INSERT INTO {table}_scores (record_id, score, decision, is_anomaly)
                 SELECT * FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::bool[])
                 ON CONFLICT (record_id) DO NOTHING"
            ),
            &[&ids, &values, &decisions, &flags],
        )? as usize;
        tx.execute(
            &format!(
                "INSERT INTO {table}_metrics (total, anomalies, percent, state, first_record_id, last_record_id)
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            &[&m.total, &m.anomalies, &m.percent, &m.state, &m.first_id, &m.last_id],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO {state} AS s (job, last_reading_id, results, anomalies, rejects)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (job) DO UPDATE SET last_reading_id = GREATEST(s.last_reading_id, excluded.last_reading_id),
                   results = s.results + excluded.results, anomalies = s.anomalies + excluded.anomalies,
                   rejects = s.rejects + excluded.rejects, updated_at = now()"
            ),
            &[&format!("iforest:{table}"), &m.last_id, &(inserted as i64), &m.anomalies, &rejected],
        )?;
        tx.commit()?;
        Ok(inserted)
    }

    fn ensure_consumption(&mut self) -> Result<()> {
        let lecturas = "id BIGSERIAL PRIMARY KEY, client_id TEXT NOT NULL, timestamp TIMESTAMP NOT NULL,
                        kwh DOUBLE PRECISION, created_at TIMESTAMP NOT NULL DEFAULT now()";
        self.client.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS consumo_lecturas ({lecturas});
             CREATE INDEX IF NOT EXISTS idx_consumo_lecturas_client_ts ON consumo_lecturas(client_id, timestamp);
             CREATE TABLE IF NOT EXISTS consumo_lecturas_archivo ({lecturas});
             CREATE TABLE IF NOT EXISTS consumo_anomalias (reading_id BIGINT PRIMARY KEY, client_id TEXT NOT NULL,
                timestamp TIMESTAMP NOT NULL, kwh DOUBLE PRECISION, is_anomaly BOOLEAN NOT NULL, types TEXT NOT NULL,
                score DOUBLE PRECISION NOT NULL, severity TEXT NOT NULL, processed_at TIMESTAMP NOT NULL DEFAULT now());
             CREATE INDEX IF NOT EXISTS idx_consumo_anomalias_client ON consumo_anomalias(client_id, timestamp);
             CREATE INDEX IF NOT EXISTS idx_consumo_anomalias_severity ON consumo_anomalias(severity);
             CREATE TABLE IF NOT EXISTS consumo_rechazos (reading_id BIGINT PRIMARY KEY, client_id TEXT NOT NULL,
                timestamp TIMESTAMP, reason TEXT NOT NULL, rejected_at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS consumo_mensual (client_id TEXT NOT NULL, month TEXT NOT NULL,
                readings BIGINT NOT NULL, total_kwh DOUBLE PRECISION NOT NULL, anomalies BIGINT NOT NULL,
                critical BIGINT NOT NULL, night_mean_kwh DOUBLE PRECISION, peak_mean_kwh DOUBLE PRECISION,
                score DOUBLE PRECISION NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT now(),
                PRIMARY KEY (client_id, month));
             CREATE TABLE IF NOT EXISTS consumo_archivo_log (id BIGSERIAL PRIMARY KEY, at TIMESTAMP NOT NULL DEFAULT now(),
                action TEXT NOT NULL, from_ts TIMESTAMP, to_ts TIMESTAMP, rows BIGINT NOT NULL);"
        ))?;
        Ok(())
    }

    fn insert_consumption(&mut self, rows: &[(String, i64, f64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut tx = self.client.transaction()?;
            {
                let mut copy = tx.copy_in("COPY consumo_lecturas (client_id, timestamp, kwh) FROM STDIN")?;
                let mut buf = Vec::with_capacity(chunk.len() * 40);
                for (client, ts, kwh) in chunk {
                    copy_text(&mut buf, client);
                    buf.push(b'\t');
                    anomaly_core::time::push_timestamp(&mut buf, *ts);
                    buf.push(b'\t');
                    crate::csvio::push_f64(&mut buf, *kwh);
                    buf.push(b'\n');
                }
                copy.write_all(&buf)?;
                copy.finish()?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn pending_consumption(&mut self, after_id: i64, limit: usize) -> Result<Vec<ConsumptionRow>> {
        let rows = self.client.query(
            "SELECT id, client_id, EXTRACT(EPOCH FROM timestamp)::bigint, kwh FROM consumo_lecturas r WHERE r.id > $1
               AND NOT EXISTS (SELECT 1 FROM consumo_anomalias a WHERE a.reading_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM consumo_rechazos j WHERE j.reading_id = r.id) ORDER BY r.id LIMIT $2",
            &[&after_id, &(limit as i64)],
        )?;
        Ok(rows.iter().map(pg_consumption_row).collect())
    }

    fn consumption_context(&mut self, clients: &[String], from: i64) -> Result<Vec<ConsumptionRow>> {
        let rows = self.client.query(
            &format!(
                "SELECT id, client_id, EXTRACT(EPOCH FROM timestamp)::bigint, kwh FROM consumo_lecturas
                 WHERE client_id = ANY($1) AND timestamp >= {}",
                ts(2)
            ),
            &[&clients, &(from as f64)],
        )?;
        Ok(rows.iter().map(pg_consumption_row).collect())
    }

    fn commit_consumption(
        &mut self,
        flags: &[ConsumptionFlag],
        rejects: &[Reject],
        months: &[MonthRow],
        last_id: i64,
    ) -> Result<usize> {
        let state = self.t.state.clone();
        let mut tx = self.client.transaction()?;
        let reject_ids: Vec<i64> = rejects.iter().map(|j| j.reading_id).collect();
        let reject_clients: Vec<&str> = rejects.iter().map(|j| j.variable.as_str()).collect();
        let reject_times: Vec<Option<f64>> =
            rejects.iter().map(|j| (j.ts != i64::MIN).then_some(j.ts as f64)).collect();
        let reasons: Vec<&str> = rejects.iter().map(|j| j.reason.as_str()).collect();
        let rejected = tx.execute(
            "INSERT INTO consumo_rechazos (reading_id, client_id, timestamp, reason)
             SELECT i, c, to_timestamp(t) AT TIME ZONE 'UTC', r
             FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[]) AS u(i, c, t, r)
             ON CONFLICT (reading_id) DO NOTHING",
            &[&reject_ids, &reject_clients, &reject_times, &reasons],
        )? as i64;
        let ids: Vec<i64> = flags.iter().map(|f| f.reading_id).collect();
        let clients: Vec<&str> = flags.iter().map(|f| f.client.as_str()).collect();
        let times: Vec<f64> = flags.iter().map(|f| f.ts as f64).collect();
        let kwh: Vec<f64> = flags.iter().map(|f| f.kwh).collect();
        let anomalous: Vec<bool> = flags.iter().map(|f| f.is_anomaly).collect();
        let types: Vec<&str> = flags.iter().map(|f| f.types.as_str()).collect();
        let scores: Vec<f64> = flags.iter().map(|f| f.score).collect();
        let severities: Vec<&str> = flags.iter().map(|f| f.severity.as_str()).collect();
        let inserted = tx.execute(
            "INSERT INTO consumo_anomalias (reading_id, client_id, timestamp, kwh, is_anomaly, types, score, severity)
             SELECT i, c, to_timestamp(t) AT TIME ZONE 'UTC', k, a, y, s, v
             FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[], $5::bool[], $6::text[], $7::float8[],
                         $8::text[]) AS u(i, c, t, k, a, y, s, v)
             ON CONFLICT (reading_id) DO NOTHING",
            &[&ids, &clients, &times, &kwh, &anomalous, &types, &scores, &severities],
        )? as usize;
        for m in months {
            tx.execute(
                "INSERT INTO consumo_mensual (client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh,
                 peak_mean_kwh, score) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (client_id, month) DO UPDATE SET readings = excluded.readings,
                   total_kwh = excluded.total_kwh, anomalies = excluded.anomalies, critical = excluded.critical,
                   night_mean_kwh = excluded.night_mean_kwh, peak_mean_kwh = excluded.peak_mean_kwh,
                   score = excluded.score, updated_at = now()",
                &[
                    &m.client,
                    &m.month,
                    &m.readings,
                    &m.total_kwh,
                    &m.anomalies,
                    &m.critical,
                    &m.night_mean_kwh,
                    &m.peak_mean_kwh,
                    &m.score,
                ],
            )?;
        }
        let anomalies = flags.iter().filter(|f| f.is_anomaly).count() as i64;
        tx.execute(
            &format!(
                "INSERT INTO {state} AS s (job, last_reading_id, results, anomalies, rejects)
                 VALUES ('consumption', $1, $2, $3, $4)
                 ON CONFLICT (job) DO UPDATE SET last_reading_id = GREATEST(s.last_reading_id, excluded.last_reading_id),
                   results = s.results + excluded.results, anomalies = s.anomalies + excluded.anomalies,
                   rejects = s.rejects + excluded.rejects, updated_at = now()"
            ),
            &[&last_id, &(inserted as i64), &anomalies, &rejected],
        )?;
        tx.commit()?;
        Ok(inserted)
    }

    fn consumption_anomalies(
        &mut self,
        f: &super::ConsumptionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<ConsumptionFlag>)> {
        let filter = format!(
            "is_anomaly AND ($1::text IS NULL OR client_id = $1) AND ($2::text IS NULL OR severity = $2) \
             AND ($3::float8 IS NULL OR timestamp >= {}) AND ($4::float8 IS NULL OR timestamp < {})",
            ts(3),
            ts(4)
        );
        let (from, to) = (f.from.map(|v| v as f64), f.to.map(|v| v as f64));
        let total: i64 = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM consumo_anomalias WHERE {filter}"),
                &[&f.client, &f.severity, &from, &to],
            )?
            .get(0);
        let rows = self.client.query(
            &format!(
                "SELECT reading_id, client_id, EXTRACT(EPOCH FROM timestamp)::bigint, kwh, is_anomaly, types, score,
                 severity FROM consumo_anomalias WHERE {filter} ORDER BY timestamp DESC, client_id LIMIT $5 OFFSET $6"
            ),
            &[&f.client, &f.severity, &from, &to, &limit, &offset],
        )?;
        Ok((
            total,
            rows.iter()
                .map(|r| ConsumptionFlag {
                    reading_id: r.get(0),
                    client: r.get(1),
                    ts: r.get(2),
                    kwh: r.get::<_, Option<f64>>(3).unwrap_or(f64::NAN),
                    is_anomaly: r.get(4),
                    types: r.get(5),
                    score: r.get(6),
                    severity: r.get(7),
                })
                .collect(),
        ))
    }

    fn client_stats(&mut self) -> Result<Vec<super::ClientStats>> {
        let rows = self.client.query(
            "SELECT client_id, COUNT(*), COUNT(*) FILTER (WHERE is_anomaly),
                    COUNT(*) FILTER (WHERE severity = 'crítica'), COUNT(*) FILTER (WHERE severity IN ('crítica', 'alta')),
                    MAX(score), COALESCE(SUM(kwh), 0)
             FROM consumo_anomalias GROUP BY client_id ORDER BY COUNT(*) FILTER (WHERE is_anomaly) DESC, client_id",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| super::ClientStats {
                client_id: r.get(0),
                readings: r.get(1),
                anomalies: r.get(2),
                critical: r.get(3),
                severe: r.get(4),
                max_score: r.get(5),
                total_kwh: r.get(6),
            })
            .collect())
    }

    fn consumption_monthly(&mut self, client: Option<&str>) -> Result<Vec<MonthRow>> {
        let rows = self.client.query(
            "SELECT client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh, peak_mean_kwh, score
             FROM consumo_mensual WHERE ($1::text IS NULL OR client_id = $1) ORDER BY client_id, month",
            &[&client],
        )?;
        Ok(rows
            .iter()
            .map(|r| MonthRow {
                client: r.get(0),
                month: r.get(1),
                readings: r.get(2),
                total_kwh: r.get(3),
                anomalies: r.get(4),
                critical: r.get(5),
                night_mean_kwh: r.get(6),
                peak_mean_kwh: r.get(7),
                score: r.get(8),
            })
            .collect())
    }

    fn latest_consumption(&mut self) -> Result<Option<i64>> {
        let row =
            self.client.query_one("SELECT EXTRACT(EPOCH FROM MAX(timestamp))::bigint FROM consumo_lecturas", &[])?;
        Ok(row.get(0))
    }

    fn archive_consumption(&mut self, before: i64) -> Result<usize> {
        let before = before as f64; // bound as the float8 `to_timestamp` takes
        let mut tx = self.client.transaction()?;
        let cut = ts(1);
        tx.execute(
            &format!("INSERT INTO consumo_lecturas_archivo SELECT * FROM consumo_lecturas WHERE timestamp < {cut}"),
            &[&before],
        )?;
        let moved = tx.execute(&format!("DELETE FROM consumo_lecturas WHERE timestamp < {cut}"), &[&before])? as i64;
        tx.execute(
            &format!("INSERT INTO consumo_archivo_log (action, to_ts, rows) VALUES ('archive', {cut}, $2)"),
            &[&before, &moved],
        )?;
        tx.commit()?;
        Ok(moved as usize)
    }

    fn restore_consumption(&mut self, from: i64, to: i64) -> Result<usize> {
        let (from, to) = (from as f64, to as f64);
        let mut tx = self.client.transaction()?;
        let range = format!("timestamp >= {} AND timestamp < {}", ts(1), ts(2));
        tx.execute(
            &format!("INSERT INTO consumo_lecturas SELECT * FROM consumo_lecturas_archivo WHERE {range}"),
            &[&from, &to],
        )?;
        let moved = tx.execute(&format!("DELETE FROM consumo_lecturas_archivo WHERE {range}"), &[&from, &to])? as i64;
        tx.execute(
            &format!(
                "INSERT INTO consumo_archivo_log (action, from_ts, to_ts, rows) VALUES ('restore', {}, {}, $3)",
                ts(1),
                ts(2)
            ),
            &[&from, &to, &moved],
        )?;
        tx.commit()?;
        Ok(moved as usize)
    }

    fn wait_for_readings(&mut self, timeout: std::time::Duration) -> Result<()> {
        if !self.listening {
            self.client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            self.listening = true;
        }
        let mut notifications = self.client.notifications();
        if notifications.timeout_iter(timeout).next()?.is_some() {
            // Several inserts may have landed: one pass takes them all.
            while notifications.iter().next()?.is_some() {}
        }
        Ok(())
    }

    fn latest_reading(&mut self) -> Result<Option<i64>> {
        let row = self
            .client
            .query_one(&format!("SELECT EXTRACT(EPOCH FROM MAX(datetime))::bigint FROM {}", self.t.readings), &[])?;
        Ok(row.get(0))
    }
}

fn pg_consumption_row(r: &postgres::Row) -> ConsumptionRow {
    ConsumptionRow { id: r.get(0), client: r.get(1), ts: r.get(2), kwh: r.get(3) }
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
