//! The plant team's SQL jobs: `anomaly forecast simulate|import|train|
//! detect|watch` (also under their old top-level names), on the embedded
//! SQLite by default.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anomaly_core::forecast_interval::{DetectorConfig, LongReadings, MultiDetector};
use anomaly_core::time::parse_timestamp;
use anyhow::{bail, Context, Result};
use clap::Args;
use log::{debug, info};

use super::{Commit, DbArgs, Job, Schedule, Worker};
use crate::db::{Db, Sql};
use crate::input_error::InputError;
use crate::store::forecast::{self as store, NewReading, Pending, ResultRow, Tables};
use crate::store::{Reject, Written};

/// The job name in the state table.
const JOB: &str = "forecast";
/// Readings scored per transaction.
pub(crate) const BATCH: usize = 50_000;
/// A pass with at least this many readings pending (and at least half as
/// many as the results table holds) drops the results table's secondary
/// indexes and rebuilds them at the end: a bulk backfill, not a trickle.
const BACKLOG: i64 = 200_000;

fn timestamp(text: &str, what: &str) -> Result<i64> {
    parse_timestamp(text).ok_or_else(|| {
        InputError::Params(anomaly_core::Error::param(what, text, "expected YYYY-MM-DD[ HH:MM[:SS]]")).into()
    })
}

/// Writes readings with a progress bar.
pub(crate) fn write_readings(args: &DbArgs, rows: &[NewReading]) -> Result<()> {
    let mut db = args.open()?;
    let bar = crate::csvio::progress(rows.len() as u64, rows.len() > 100_000, "writing readings");
    store::insert_readings(&mut db, &args.tables(), rows, &mut |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    Ok(())
}

/// Fits one model per variable on the readings in `[from, to)` and saves them.
pub(crate) fn train_models(
    db: &mut Db,
    t: &Tables,
    config: &DetectorConfig,
    from: Option<i64>,
    to: Option<i64>,
    dir: &std::path::Path,
) -> Result<MultiDetector> {
    let started = Instant::now();
    let rows = store::readings_between(db, t, from, to)?;
    if rows.is_empty() {
        bail!(InputError::Params(anomaly_core::Error::Empty { what: "readings in the training range".into() }));
    }
    // Repeated (variable, datetime) readings: the first one counts, as in detection.
    let mut seen = HashSet::new();
    let mut readings = LongReadings::default();
    for (ts, variable, value) in rows {
        if seen.insert((variable.clone(), ts)) {
            readings.ds.push(ts);
            readings.value.push(value.unwrap_or(f64::NAN));
            readings.variable.push(variable);
        }
    }
    let variables = readings.variable.iter().collect::<HashSet<_>>().len();
    let bar = crate::csvio::progress(variables as u64, true, "training");
    let models = MultiDetector::fit_with_progress(config, &readings, &|_| bar.inc(1)).map_err(InputError::Params)?;
    bar.finish_and_clear();
    crate::models::save_forecast(dir, &models)?;
    store_trained(db)?;
    info!(
        "trained {} models on {} readings in {:.2?}; wrote {}",
        models.variables.len(),
        readings.ds.len(),
        started.elapsed(),
        dir.display()
    );
    Ok(models)
}

fn store_trained(db: &mut Db) -> Result<()> {
    crate::store::mark_trained(db, JOB, super::unix_now())
}

/// Trains from the database: `anomaly forecast train --db ...`.
pub(crate) fn train(
    args: &DbArgs,
    config: &DetectorConfig,
    from: Option<&str>,
    to: Option<&str>,
    dir: &std::path::Path,
) -> Result<()> {
    let from = from.map(|t| timestamp(t, "from")).transpose()?;
    let to = to.map(|t| timestamp(t, "to")).transpose()?;
    let mut db = args.open()?;
    train_models(&mut db, &args.tables(), config, from, to, dir)?;
    Ok(())
}

pub(crate) use crate::models::load_forecast as load_models;

/// One batch's results, with where they go.
pub(crate) struct Results {
    tables: Tables,
    rows: Vec<ResultRow>,
}

impl Commit for Results {
    fn write(&self, tx: &mut dyn Sql, rejects: &[Reject]) -> Result<Written> {
        store::write(tx, &self.tables, &self.rows, rejects)
    }
}

/// The forecast job: readings without a result, scored by one model per variable.
pub(crate) struct ForecastJob {
    pub(crate) tables: Tables,
    pub(crate) models: MultiDetector,
    pub(crate) models_dir: PathBuf,
    /// Only readings at or after this time (a `--lookback` pass).
    pub(crate) since: Option<i64>,
    pub(crate) batch: usize,
    /// Days of history used when retraining (default: all).
    pub(crate) train_days: Option<f64>,
    pub(crate) datetimes: HashSet<i64>,
    pub(crate) variables: HashSet<String>,
    indexes_dropped: bool,
}

impl ForecastJob {
    pub(crate) fn new(tables: Tables, models: MultiDetector, models_dir: PathBuf, batch: usize) -> ForecastJob {
        ForecastJob {
            tables,
            models,
            models_dir,
            since: None,
            batch,
            train_days: None,
            datetimes: HashSet::new(),
            variables: HashSet::new(),
            indexes_dropped: false,
        }
    }
}

impl Job for ForecastJob {
    type Row = Pending;
    type Out = Results;

    fn name(&self) -> String {
        JOB.into()
    }

    fn unit(&self) -> &'static str {
        "readings"
    }

    fn rejects_table(&self) -> String {
        self.tables.rejects.clone()
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn pending(&mut self, db: &mut Db, after: i64, limit: usize) -> Result<Vec<Pending>> {
        store::pending(db, &self.tables, after, self.since, limit)
    }

    fn id(row: &Pending) -> i64 {
        row.id
    }

    fn score(&mut self, _db: &mut Db, batch: &[Pending]) -> Result<(Results, Vec<Reject>)> {
        let models = &self.models;
        let mut rejects = Vec::new();
        let mut readings = LongReadings::default();
        let mut kept = Vec::new();
        let mut seen = HashSet::new();
        for p in batch {
            let reason = match (p.ts, &p.variable, &p.value) {
                (None, _, _) => Some("unparsable datetime".to_owned()),
                (_, None, _) => Some("variable_name is not text".to_owned()),
                (_, _, Err(text)) => Some(format!("value {text:?} is not a number")),
                (_, _, Ok(None)) => Some("missing value".to_owned()),
                (_, _, Ok(Some(v))) if !v.is_finite() => Some(format!("value {v} is not finite")),
                (Some(ts), ..) if anomaly_core::time::to_nanos(ts).is_none() => {
                    Some(format!("datetime outside the forecast model's range ({})", anomaly_core::time::NANOS_RANGE))
                }
                (_, Some(name), _) if !models.variables.contains_key(name) => {
                    Some(format!("no model for variable {name:?}"))
                }
                (Some(ts), Some(name), _) if !seen.insert((name.as_str(), ts)) => {
                    Some("repeated reading for this datetime and variable".to_owned())
                }
                _ => None,
            };
            match (reason, p.ts, &p.variable, &p.value) {
                (None, Some(ts), Some(name), Ok(Some(v))) => {
                    readings.ds.push(ts);
                    readings.variable.push(name.clone());
                    readings.value.push(*v);
                    kept.push((ts, name));
                    self.datetimes.insert(ts);
                    if !self.variables.contains(name) {
                        self.variables.insert(name.clone());
                    }
                }
                (reason, ..) => rejects.push(Reject {
                    id: p.id,
                    ts: p.ts,
                    series: p.variable.clone(),
                    reason: reason.unwrap_or_default(),
                }),
            }
        }
        if readings.ds.is_empty() {
            return Ok((Results { tables: self.tables.clone(), rows: Vec::new() }, rejects));
        }
        let detection = models.detect(&readings).context("scoring readings")?;
        let r = &detection.rows;
        let results = kept
            .iter()
            .enumerate()
            .map(|(i, (ts, name))| ResultRow {
                ts: *ts,
                variable: (*name).clone(),
                y: readings.value[i],
                yhat: r.yhat[i],
                yhat_lower: r.yhat_lower[i],
                yhat_upper: r.yhat_upper[i],
                residual: r.residual[i],
                is_anomaly: r.is_anomaly[i],
                score: r.score[i],
            })
            .collect();
        Ok((Results { tables: self.tables.clone(), rows: results }, rejects))
    }

    // With a time filter, older readings were skipped, not done.
    fn moves_watermark(&self) -> bool {
        self.since.is_none()
    }

    fn start_pass(&mut self, db: &mut Db, after: i64) -> Result<()> {
        if self.since.is_some() {
            return Ok(());
        }
        // MAX(id) is one index lookup; the results are counted (a scan) only
        // when the ids already say the backlog is large.
        let int = |row: Option<crate::db::Row>| row.and_then(|r| r[0].int()).unwrap_or(0);
        let top = int(db.query_one(&format!("SELECT MAX(id) FROM {}", self.tables.readings), &[])?);
        let backlog = top - after;
        if backlog < BACKLOG {
            return Ok(());
        }
        let done = int(db.query_one(&format!("SELECT COUNT(*) FROM {}", self.tables.results), &[])?);
        if backlog >= done / 2 {
            info!("{backlog} readings pending: building the results indexes after the writes");
            store::drop_result_indexes(db, &self.tables)?;
            self.indexes_dropped = true;
        }
        Ok(())
    }

    fn end_pass(&mut self, db: &mut Db) -> Result<()> {
        if std::mem::take(&mut self.indexes_dropped) {
            let started = Instant::now();
            store::build_result_indexes(db, &self.tables)?;
            debug!("built the results indexes in {:.2?}", started.elapsed());
        }
        Ok(())
    }

    fn retrain(&mut self, db: &mut Db) -> Result<()> {
        let config = self.models.variables.values().next().map(|d| d.config.clone()).unwrap_or_default();
        let from = match self.train_days {
            Some(days) => store::latest_reading(db, &self.tables)?.map(|latest| latest - (days * 86_400.0) as i64),
            None => None,
        };
        self.models = train_models(db, &self.tables, &config, from, None, &self.models_dir)?;
        Ok(())
    }

    fn source_table(&self) -> Option<String> {
        Some(self.tables.readings.clone())
    }

    fn channel(&self) -> Option<&'static str> {
        Some(store::CHANNEL)
    }
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Model directory from `anomaly forecast train`.
    #[arg(long, short)]
    pub(crate) models: PathBuf,
    /// Process everything pending once, then exit.
    #[arg(long)]
    pub(crate) once: bool,
    /// Only readings within this span of the newest one (e.g. 1h, 30m, 2d).
    #[arg(long)]
    pub(crate) lookback: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Readings scored and committed per transaction.
    #[arg(long, default_value_t = BATCH)]
    pub(crate) batch_size: usize,
}

pub(crate) fn detect(args: DetectArgs) -> Result<()> {
    if !args.once {
        bail!(InputError::Params(anomaly_core::Error::param(
            "once",
            "false",
            "`anomaly detect` runs once (pass --once); use `anomaly watch` to keep polling"
        )));
    }
    let started = Instant::now();
    let models = load_models(&args.models)?;
    let mut db = args.db.open()?;
    let mut job = ForecastJob::new(args.db.tables(), models, args.models.clone(), args.batch_size);
    if let Some(span) = &args.lookback {
        let span = super::parse_duration("--lookback", span)?.as_secs() as i64;
        job.since = store::latest_reading(&mut db, &job.tables)?.map(|latest| latest - span);
    }
    // A second connection reads and scores while the first one writes.
    let mut reader = args.db.open()?;
    let pass = super::run_pass(&mut db, Some(&mut reader), &mut job, super::ID_MARGIN)?;
    let w = pass.written;
    let (datetimes, variables) = (job.datetimes.len(), job.variables.len());
    info!(
        "processed {} readings ({datetimes} datetimes, {variables} variables): {} results, {} anomalies, {} rejects in {:.2?}",
        pass.rows,
        w.results,
        w.anomalies,
        w.rejects,
        started.elapsed()
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "readings": pass.rows, "datetimes": datetimes, "variables": variables,
                "results": w.results, "anomalies": w.anomalies, "rejects": w.rejects,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Model directory from `anomaly forecast train` (retrained in place).
    #[arg(long, short)]
    models: PathBuf,
    /// Individual mode: look for new readings this often (e.g. 2s, 500ms).
    #[arg(long, conflicts_with = "interval")]
    poll_interval: Option<String>,
    /// Worker mode: wake this often and process everything new (e.g. 10m).
    #[arg(long)]
    interval: Option<String>,
    /// Retrain all models this often (e.g. 24h).
    #[arg(long, conflicts_with = "retrain_at")]
    retrain_every: Option<String>,
    /// Retrain daily at this local time (HH:MM, in --tz or the host's
    /// time zone; a time a DST change skips runs at the end of the gap).
    #[arg(long)]
    retrain_at: Option<String>,
    /// Time zone of --retrain-at (IANA name, e.g. Europe/Madrid; default:
    /// the host's, from TZ or /etc/localtime).
    #[arg(long, requires = "retrain_at")]
    tz: Option<String>,
    /// Days of history used when retraining (default: all).
    #[arg(long)]
    train_days: Option<f64>,
    /// Stop after this many iterations (tests, demos).
    #[arg(long)]
    max_iterations: Option<u64>,
    /// Readings scored and committed per transaction.
    #[arg(long, default_value_t = BATCH)]
    batch_size: usize,
    /// Serve this worker's Prometheus metrics on this address (GET /metrics),
    /// e.g. 127.0.0.1:9108.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let wait = match (&args.poll_interval, &args.interval) {
        (Some(p), _) => super::parse_duration("--poll-interval", p)?,
        (None, Some(i)) => super::parse_duration("--interval", i)?,
        (None, None) => std::time::Duration::from_secs(2),
    };
    let retrain = match (&args.retrain_every, &args.retrain_at) {
        (Some(every), _) => Some(Schedule::Every(super::parse_duration("--retrain-every", every)?)),
        (None, Some(at)) => Some(Schedule::daily(at, args.tz.as_deref())?),
        _ => None,
    };
    let models = load_models(&args.models)?;
    info!("watching {} every {wait:.1?} with {} models (Ctrl+C to stop)", args.db.db, models.variables.len());
    let mut job = ForecastJob::new(args.db.tables(), models, args.models.clone(), args.batch_size);
    job.train_days = args.train_days;
    let worker = Worker::new(JOB, wait, retrain, args.max_iterations, "scored", args.metrics_addr)?;
    super::watch(&|| args.db.open(), &mut job, &worker)
}
