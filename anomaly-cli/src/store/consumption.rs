//! The consumption team's tables: readings (`consumo_lecturas` by default)
//! and their archive, one flag row per reading (`consumo_anomalias`),
//! rejects, episodes (`consumo_episodios`), monthly aggregates with each
//! month's suspicion (upserted) and the archive log, named from the
//! readings and flags tables as [`Tables`] says.

use anomaly_core::consumption::{AnomalyType, Episode, Severity};
use anyhow::{anyhow, Result};

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
    /// Episodes: `consumo_episodios`, else `{flags}_episodes`.
    pub(crate) episodes: String,
}

impl Tables {
    pub(crate) fn new(readings: &str, flags: &str) -> Tables {
        let (archive, archive_log) = if readings == READINGS {
            ("consumo_lecturas_archivo".to_owned(), "consumo_archivo_log".to_owned())
        } else {
            (format!("{readings}_archive"), format!("{readings}_archive_log"))
        };
        let (rejects, monthly, episodes) = if flags == FLAGS {
            ("consumo_rechazos".to_owned(), "consumo_mensual".to_owned(), "consumo_episodios".to_owned())
        } else {
            (format!("{flags}_rejects"), format!("{flags}_monthly"), format!("{flags}_episodes"))
        };
        Tables { readings: readings.into(), archive, archive_log, flags: flags.into(), rejects, monthly, episodes }
    }

    /// Every name spliced into SQL.
    pub(crate) fn names(&self) -> [&str; 7] {
        [&self.readings, &self.archive, &self.archive_log, &self.flags, &self.rejects, &self.monthly, &self.episodes]
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
    /// The month's suspicion from its episodes (NULL in rows an older
    /// version wrote), with its rank among the clients that month when read.
    pub(crate) suspicion: Option<f64>,
    pub(crate) suspicious: Option<bool>,
    pub(crate) rank: Option<i64>,
    pub(crate) episodes: Option<i64>,
    pub(crate) severe_episodes: Option<i64>,
    /// The rules of its episodes, `;`-separated.
    pub(crate) rules: Option<String>,
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

/// Filters of `GET /consumption/episodes`.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpisodeFilter {
    pub(crate) client: Option<String>,
    pub(crate) kind: Option<String>,
    /// Peak severity at least this.
    pub(crate) min_severity: Option<Severity>,
    /// Episodes that overlap `from..to`.
    pub(crate) from: Option<i64>,
    pub(crate) to: Option<i64>,
}

/// Creates the consumption tables if missing (and the columns an older
/// version did not have).
pub(crate) fn ensure(db: &mut Db, t: &Tables) -> Result<()> {
    let Tables { readings, archive, archive_log, flags, rejects, monthly, episodes } = t;
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
            action TEXT NOT NULL, from_ts {{ts}}, to_ts {{ts}}, rows {{int}} NOT NULL);
         CREATE TABLE IF NOT EXISTS {episodes} (client_id TEXT NOT NULL, type TEXT NOT NULL,
            start_time {{ts}} NOT NULL, end_time {{ts}} NOT NULL, readings {{int}} NOT NULL,
            peak_score {{real}} NOT NULL, peak_severity TEXT NOT NULL, kwh_above_baseline {{real}} NOT NULL,
            updated_at {{ts}} NOT NULL DEFAULT {{now}}, PRIMARY KEY (client_id, type, start_time));
         CREATE INDEX IF NOT EXISTS {} ON {episodes}(client_id, end_time);
         CREATE INDEX IF NOT EXISTS {} ON {episodes}(start_time);",
        index_name(readings, "client_ts"),
        index_name(flags, "client"),
        index_name(flags, "severity"),
        index_name(episodes, "client_end"),
        index_name(episodes, "start"),
    ))?;
    for (column, ty) in [
        ("suspicion", "{real}"),
        ("suspicious", "{bool}"),
        ("episodes", "{int}"),
        ("severe_episodes", "{int}"),
        ("rules", "TEXT"),
    ] {
        db.add_column(monthly, column, ty)?;
    }
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

/// `sql` once per group of `clients`: `{clients}` replaced by the group's
/// placeholders, with the parameters (`$1` is `from`).
fn per_clients<'a>(sql: &'a str, clients: &'a [String], from: i64) -> impl Iterator<Item = (String, Vec<Param<'a>>)> {
    clients.chunks(CLIENTS_PER_QUERY).map(move |group| {
        let marks: Vec<String> = (0..group.len()).map(|i| format!("${}", i + 2)).collect();
        let mut params = vec![Param::Ts(from)];
        params.extend(group.iter().map(|c| Param::Text(c)));
        (sql.replace("{clients}", &marks.join(", ")), params)
    })
}

/// The rows of [`per_clients`]' queries.
fn query_per_clients(tx: &mut dyn Sql, sql: &str, clients: &[String], from: i64) -> Result<Vec<Vec<Value>>> {
    let mut out = Vec::new();
    for (sql, params) in per_clients(sql, clients, from) {
        out.extend(tx.query(&sql, &params)?);
    }
    Ok(out)
}

/// Every reading of `clients` from `from` (seconds) on: the rules' context.
pub(crate) fn context(db: &mut Db, t: &Tables, clients: &[String], from: i64) -> Result<Vec<Reading>> {
    let sql = format!(
        "SELECT id, client_id, epoch(timestamp), kwh FROM {} WHERE timestamp >= ts($1) AND client_id IN ({{clients}})",
        t.readings
    );
    Ok(query_per_clients(db, &sql, clients, from)?.into_iter().map(reading).collect())
}

/// The episodes [`episodes_after`] reads and [`write`] replaces: one
/// predicate, so that they are the same rows.
const RECENT_EPISODES: &str = "end_time > ts($1) AND client_id IN ({clients})";

/// The stored episodes of `clients` that end after `from`: every one a
/// batch of readings after `from` can extend or that overlaps its months.
/// [`write`] replaces exactly these.
pub(crate) fn episodes_after(tx: &mut dyn Sql, t: &Tables, clients: &[String], from: i64) -> Result<Vec<Episode>> {
    let sql = format!(
        "SELECT client_id, type, epoch(start_time), epoch(end_time), readings, peak_score, kwh_above_baseline
         FROM {} WHERE {RECENT_EPISODES}",
        t.episodes
    );
    query_per_clients(tx, &sql, clients, from)?.into_iter().map(|r| episode(&t.episodes, r)).collect()
}

fn episode(table: &str, r: Vec<Value>) -> Result<Episode> {
    let text = r[1].text().unwrap_or_default();
    let kind =
        AnomalyType::from_name(text).ok_or_else(|| anyhow!("{table} holds an episode of unknown type {text:?}"))?;
    let peak_score = r[5].real().unwrap_or(0.0);
    Ok(Episode {
        client: r[0].text().unwrap_or_default().to_owned(),
        kind,
        start: r[2].ts().unwrap_or(0),
        end: r[3].ts().unwrap_or(0),
        n_readings: r[4].int().unwrap_or(0).max(0) as usize,
        peak_score,
        // Recomputed by the rules when episodes are merged.
        peak_severity: Severity::Normal,
        kwh_above_baseline: r[6].real().unwrap_or(0.0),
    })
}

/// The episodes of `clients` ending after `from`, as [`episodes_after`]
/// read them, replaced by `episodes`; and the suspicion of earlier months
/// those episodes changed.
pub(crate) struct EpisodeUpdate<'a> {
    pub(crate) clients: &'a [String],
    pub(crate) from: i64,
    pub(crate) episodes: &'a [Episode],
    pub(crate) rescored: &'a [MonthRow],
}

/// Flags, rejects, the clients' recent episodes (replaced) and the months
/// the flags touch (upserted), inside the job's transaction.
pub(crate) fn write(
    tx: &mut dyn Sql,
    t: &Tables,
    flags: &[Flag],
    rejects: &[Reject],
    months: &[MonthRow],
    update: &EpisodeUpdate<'_>,
) -> Result<Written> {
    let delete = format!("DELETE FROM {} WHERE {RECENT_EPISODES}", t.episodes);
    for (sql, params) in per_clients(&delete, update.clients, update.from) {
        tx.exec(&sql, &params)?;
    }
    let e = update.episodes;
    tx.insert(&Insert {
        table: &t.episodes,
        columns: vec![
            ("client_id", Column::Text(e.iter().map(|e| e.client.as_str()).collect())),
            ("type", Column::Text(e.iter().map(|e| e.kind.as_str()).collect())),
            ("start_time", Column::Ts(e.iter().map(|e| e.start).collect())),
            ("end_time", Column::Ts(e.iter().map(|e| e.end).collect())),
            ("readings", Column::Int(e.iter().map(|e| e.n_readings as i64).collect())),
            ("peak_score", Column::Real(e.iter().map(|e| e.peak_score).collect())),
            ("peak_severity", Column::Text(e.iter().map(|e| e.peak_severity.as_str()).collect())),
            ("kwh_above_baseline", Column::Real(e.iter().map(|e| e.kwh_above_baseline).collect())),
            ("updated_at", Column::Now),
        ],
        conflict: "",
        count_true: None,
    })?;
    let rescore = format!(
        "UPDATE {} SET suspicion = $3, suspicious = $4, episodes = $5, severe_episodes = $6, rules = $7,
         updated_at = now() WHERE client_id = $1 AND month = $2",
        t.monthly
    );
    for m in update.rescored {
        tx.exec(
            &rescore,
            &[
                Param::Text(&m.client),
                Param::Text(&m.month),
                Param::real(m.suspicion),
                Param::Bool(m.suspicious.unwrap_or(false)),
                Param::Int(m.episodes.unwrap_or(0)),
                Param::Int(m.severe_episodes.unwrap_or(0)),
                Param::Text(m.rules.as_deref().unwrap_or("")),
            ],
        )?;
    }
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
            ("suspicion", Column::OptReal(months.iter().map(|m| m.suspicion).collect())),
            ("suspicious", Column::Bool(months.iter().map(|m| m.suspicious.unwrap_or(false)).collect())),
            ("episodes", Column::Int(months.iter().map(|m| m.episodes.unwrap_or(0)).collect())),
            ("severe_episodes", Column::Int(months.iter().map(|m| m.severe_episodes.unwrap_or(0)).collect())),
            ("rules", Column::Text(months.iter().map(|m| m.rules.as_deref().unwrap_or("")).collect())),
            ("updated_at", Column::Now),
        ],
        conflict: "ON CONFLICT (client_id, month) DO UPDATE SET readings = excluded.readings,
               total_kwh = excluded.total_kwh, anomalies = excluded.anomalies, critical = excluded.critical,
               night_mean_kwh = excluded.night_mean_kwh, peak_mean_kwh = excluded.peak_mean_kwh,
               score = excluded.score, suspicion = excluded.suspicion, suspicious = excluded.suspicious,
               episodes = excluded.episodes, severe_episodes = excluded.severe_episodes, rules = excluded.rules,
               updated_at = excluded.updated_at",
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

/// Episodes matching `filter`, latest start first, and how many match.
pub(crate) fn episodes(
    db: &mut Db,
    t: &Tables,
    f: &EpisodeFilter,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<(Episode, String)>)> {
    // Severities at or above the minimum, as stored text.
    let severities: Vec<&str> = Severity::ALL
        .into_iter()
        .filter(|s| f.min_severity.is_none_or(|min| *s >= min))
        .map(Severity::as_str)
        .collect();
    let marks: Vec<String> = (0..severities.len()).map(|i| format!("${}", i + 5)).collect();
    let filter = format!(
        "(CAST($1 AS TEXT) IS NULL OR client_id = $1) AND (CAST($2 AS TEXT) IS NULL OR type = $2)
         AND (ts($3) IS NULL OR end_time > ts($3)) AND (ts($4) IS NULL OR start_time < ts($4))
         AND peak_severity IN ({})",
        marks.join(", ")
    );
    let mut args =
        vec![Param::text(f.client.as_deref()), Param::text(f.kind.as_deref()), Param::ts(f.from), Param::ts(f.to)];
    args.extend(severities.iter().map(|s| Param::Text(s)));
    let total = db.query_one(&format!("SELECT COUNT(*) FROM {} WHERE {filter}", t.episodes), &args)?;
    let n = args.len();
    args.extend([Param::Int(limit), Param::Int(offset)]);
    let rows = db.query(
        &format!(
            "SELECT client_id, type, epoch(start_time), epoch(end_time), readings, peak_score, kwh_above_baseline,
                    peak_severity
             FROM {} WHERE {filter} ORDER BY start_time DESC, client_id, type LIMIT ${} OFFSET ${}",
            t.episodes,
            n + 1,
            n + 2
        ),
        &args,
    )?;
    let items = rows
        .into_iter()
        .map(|mut r| {
            let severity = std::mem::take(&mut r[7]).into_text().unwrap_or_default();
            Ok((episode(&t.episodes, r)?, severity))
        })
        .collect::<Result<_>>()?;
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
    let query = |suspicion: &str| {
        format!(
            "SELECT * FROM (SELECT client_id, month, readings, total_kwh, anomalies, critical, night_mean_kwh,
                    peak_mean_kwh, score, {suspicion}
                  FROM {}) m WHERE (CAST($1 AS TEXT) IS NULL OR client_id = $1) ORDER BY client_id, month",
            t.monthly
        )
    };
    let suspicion = "suspicion, suspicious, CASE WHEN suspicion IS NULL THEN NULL
                         ELSE RANK() OVER (PARTITION BY month ORDER BY suspicion DESC) END,
                     episodes, severe_episodes, rules";
    let rows = match db.query(&query(suspicion), &[Param::text(client)]) {
        // A table an older job created: no suspicion until the worker's next start adds its columns.
        Err(e) if crate::db::is_missing_column(&e) => {
            db.query(&query("NULL, NULL, NULL, NULL, NULL, NULL"), &[Param::text(client)])?
        }
        rows => rows?,
    };
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
            suspicion: r[9].real(),
            suspicious: r[10].opt_flag(),
            rank: r[11].int(),
            episodes: r[12].int(),
            severe_episodes: r[13].int(),
            rules: r[14].text().map(str::to_owned),
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
