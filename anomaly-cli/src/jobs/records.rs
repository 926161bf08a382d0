//! The energy team's isolation-forest job on SQL: `anomaly iforest simulate`
//! writes sensor records (optionally as a live stream, trimming the oldest
//! past a limit), `anomaly iforest watch` scores new records, writes one
//! score per record and one metrics row per pass (total, anomalies, percent,
//! state) in one transaction, and retrains periodically from the newest
//! records.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::{FittedIsolationForest, IsolationForestParams, StateThresholds};
use anomaly_core::persist::Persist;
use anomaly_core::rng::Rng;
use anomaly_core::traits::{Fit, ParamGuard};
use anyhow::{bail, Context, Result};
use clap::Args;
use log::info;
use ndarray::Array2;

use super::{parse_duration, sleep_unless, stop_flag, unix_now, Commit, Job, Schedule, Worker};
use crate::db::{Db, Sql};
use crate::jobs::DbArgs;
use crate::store::records::{PassMetrics, Records, Score};
use crate::store::{Reject, Written};

const COLUMNS: &str = "voltage,current,power,temperature";

#[derive(Debug, Args)]
pub(crate) struct RecordsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Records table (scores go to TABLE_scores, metrics to TABLE_metrics).
    #[arg(long, default_value = "energy_records")]
    table: String,
    /// Comma-separated feature columns.
    #[arg(long, value_delimiter = ',', default_value = COLUMNS)]
    columns: Vec<String>,
}

impl RecordsArgs {
    fn records(&self) -> Records {
        Records { table: self.table.clone(), columns: self.columns.clone() }
    }

    fn open(&self) -> Result<Db> {
        let records = self.records();
        let mut db = Db::open(&self.db.db, &records.names())?;
        records.ensure(&mut db)?;
        Ok(db)
    }
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    records: RecordsArgs,
    /// Records to write at once (without --interval), or per tick (with it);
    /// at most 10 million.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    batch_size: u32,
    /// Stream: write --batch-size records every interval (e.g. 1s) until stopped.
    #[arg(long)]
    interval: Option<String>,
    /// Stop streaming after this many ticks.
    #[arg(long)]
    ticks: Option<u64>,
    /// Share of anomalous records.
    #[arg(long, default_value_t = 0.05)]
    anomaly_ratio: f64,
    /// Keep at most this many records, deleting the oldest (0 = keep all).
    #[arg(long, default_value_t = 0)]
    max_records: usize,
    /// Random seed.
    #[arg(long, default_value_t = 11)]
    seed: u64,
}

/// One sensor record: voltage, current, power, temperature (any extra
/// columns get standard normal noise); anomalies are surges, sags and heat.
fn record(rng: &mut Rng, width: usize, anomalous: bool) -> Vec<f64> {
    let mut v = 220.0 + 3.0 * rng.normal();
    let mut i = 10.0 + rng.normal();
    let mut t = 35.0 + 2.0 * rng.normal();
    if anomalous {
        match rng.below(3) {
            0 => v += if rng.uniform(0.0, 1.0) < 0.5 { -40.0 } else { 35.0 },
            1 => i *= 2.5,
            _ => t += 25.0,
        }
    }
    let p = v * i * (0.9 + 0.02 * rng.normal());
    let mut out = vec![v, i, p, t];
    out.resize(width, 0.0);
    for x in out.iter_mut().skip(4) {
        *x = rng.normal();
    }
    out
}

pub(crate) fn simulate(args: SimulateArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.anomaly_ratio) {
        bail!("--anomaly-ratio must be between 0 and 1");
    }
    let r = &args.records;
    let mut db = r.open()?;
    let mut rng = Rng::new(args.seed);
    let stop = stop_flag();
    let every = args.interval.as_deref().map(|t| parse_duration("--interval", t)).transpose()?;
    let (mut tick, mut written) = (0u64, 0usize);
    loop {
        let now = unix_now();
        let rows: Vec<(i64, Vec<f64>)> = (0..args.batch_size)
            .map(|k| {
                let anomalous = rng.uniform(0.0, 1.0) < args.anomaly_ratio;
                (
                    now - (args.batch_size - 1 - k) as i64 * i64::from(every.is_none()),
                    record(&mut rng, r.columns.len(), anomalous),
                )
            })
            .collect();
        r.records().insert(&mut db, &rows)?;
        written += rows.len();
        if args.max_records > 0 {
            let trimmed = r.records().trim(&mut db, args.max_records)?;
            if trimmed > 0 {
                info!("trimmed {trimmed} oldest records (keeping {})", args.max_records);
            }
        }
        tick += 1;
        let Some(every) = every else { break };
        if stop.load(Ordering::SeqCst) || args.ticks.is_some_and(|t| tick >= t) {
            break;
        }
        sleep_unless(&stop, every);
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    info!("wrote {written} records to {} in {tick} ticks", r.table);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    records: RecordsArgs,
    /// Model file: loaded if it exists, else trained from the newest records.
    #[arg(long, short)]
    model: PathBuf,
    /// Wake this often and score everything new.
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Retrain from the newest --train-records records this often (e.g. 300s).
    #[arg(long)]
    retrain_every: Option<String>,
    /// Records used for (re)training.
    #[arg(long, default_value_t = 5000)]
    train_records: usize,
    /// Expected share of anomalies when training (or auto).
    #[arg(long, default_value = "auto")]
    contamination: String,
    /// From this percent of anomalous records a pass is Precaución.
    #[arg(long, default_value_t = 5.0)]
    caution_percent: f64,
    /// From this percent it is Crítico.
    #[arg(long, default_value_t = 10.0)]
    critical_percent: f64,
    /// Stop after this many passes (tests, demos).
    #[arg(long)]
    max_iterations: Option<u64>,
    /// Serve this worker's Prometheus metrics on this address (GET /metrics),
    /// e.g. 127.0.0.1:9108.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

fn train(db: &mut Db, args: &WatchArgs) -> Result<FittedIsolationForest> {
    let r = &args.records;
    let mut rows = r.records().latest(db, args.train_records)?;
    // Records that cannot be scored (rejected when scored) do not train either.
    rows.retain(|row| unscorable(&r.columns, &row.iter().map(|v| Some(*v)).collect::<Vec<_>>()).is_none());
    if rows.len() < 2 {
        bail!("{} has {} complete records: not enough to train (run `anomaly iforest simulate`)", r.table, rows.len());
    }
    let contamination = match args.contamination.as_str() {
        "auto" => anomaly_core::isolation_forest::Contamination::Auto(anomaly_core::isolation_forest::Auto::Auto),
        c => anomaly_core::isolation_forest::Contamination::Fraction(c.parse().context("--contamination")?),
    };
    let params = IsolationForestParams { contamination, random_state: 0, ..Default::default() };
    let x = Array2::from_shape_fn((rows.len(), r.columns.len()), |(i, j)| rows[i][j] as f32);
    let mut model = params.check()?.fit(&FeatureMatrix::new(x.view(), None)?)?;
    model.feature_names = r.columns.clone();
    std::fs::write(&args.model, model.to_bytes()?).with_context(|| format!("cannot write {}", args.model.display()))?;
    info!("trained on the newest {} records of {}; wrote {}", rows.len(), r.table, args.model.display());
    Ok(model)
}

/// Why a stored record cannot be scored, naming the first bad column.
fn unscorable(columns: &[String], values: &[Option<f64>]) -> Option<String> {
    columns.iter().zip(values).find_map(|(name, v)| match v {
        None => Some(format!("{name} is missing or not a number")),
        Some(x) if !x.is_finite() => Some(format!("{name} is not finite ({x})")),
        // The forest reads float32, as scikit-learn's trees: beyond its range is infinite there.
        Some(x) if x.abs() > f64::from(f32::MAX) => Some(format!("{name} = {x:e} is beyond the float32 range")),
        Some(_) => None,
    })
}

/// Names the column that made each anomaly one (explanations cost about
/// a millisecond per record and 100 trees, so only anomalies get them);
/// an extended forest cannot be explained per feature and leaves them out.
fn explain_anomalies(model: &FittedIsolationForest, x: &Array2<f32>, rows: &mut [Score]) -> Result<()> {
    let flagged: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_anomaly).collect();
    if flagged.is_empty() || model.trees().iter().any(|t| t.is_extended()) {
        return Ok(());
    }
    let sub = x.select(ndarray::Axis(0), &flagged);
    let explained = model.explain(&FeatureMatrix::new(sub.view(), Some(model.n_features))?)?;
    for (k, &i) in flagged.iter().enumerate() {
        rows[i].top = explained.top(k);
    }
    Ok(())
}

/// One batch's scores and metrics row, with where they go.
struct Scores {
    records: Records,
    rows: Vec<Score>,
    metrics: PassMetrics,
}

impl Commit for Scores {
    fn write(&self, tx: &mut dyn Sql, rejects: &[Reject]) -> Result<Written> {
        self.records.write(tx, &self.rows, rejects, &self.metrics)
    }
}

/// The isolation-forest job: new records scored, one metrics row (total,
/// anomalies, percent, state) per committed batch.
struct ForestJob<'a> {
    args: &'a WatchArgs,
    records: Records,
    model: FittedIsolationForest,
    thresholds: StateThresholds,
}

impl Job for ForestJob<'_> {
    type Row = (i64, Vec<Option<f64>>);
    type Out = Scores;

    fn name(&self) -> String {
        self.records.job()
    }

    fn unit(&self) -> &'static str {
        "records"
    }

    fn rejects_table(&self) -> String {
        format!("{}_rejects", self.records.table)
    }

    fn source_table(&self) -> Option<String> {
        Some(self.records.table.clone())
    }

    fn batch_size(&self) -> usize {
        50_000
    }

    fn pending(&mut self, db: &mut Db, after: i64, limit: usize) -> Result<Vec<Self::Row>> {
        self.records.pending(db, after, limit)
    }

    fn id(row: &Self::Row) -> i64 {
        row.0
    }

    fn score(&mut self, _db: &mut Db, pending: &[Self::Row]) -> Result<(Self::Out, Vec<Reject>)> {
        let columns = &self.records.columns;
        // A record with a missing or infinite value cannot be scored (as in
        // scikit-learn): rejected with the column named, in the same transaction.
        let (mut complete, mut rejects) = (Vec::new(), Vec::new());
        for record in pending {
            match unscorable(columns, &record.1) {
                Some(reason) => rejects.push(Reject { id: record.0, ts: None, series: None, reason }),
                None => complete.push(record),
            }
        }
        let model = &self.model;
        let x = Array2::from_shape_fn((complete.len(), columns.len()), |(i, j)| {
            complete[i].1[j].unwrap_or(f64::NAN) as f32
        });
        let scores = if complete.is_empty() {
            Vec::new()
        } else {
            model.score_samples(&FeatureMatrix::new(x.view(), Some(model.n_features))?)?
        };
        let mut rows: Vec<Score> = complete
            .iter()
            .zip(&scores)
            .map(|(r, &s)| Score {
                id: r.0,
                score: s,
                decision: s - model.offset,
                is_anomaly: s - model.offset < 0.0,
                top: None,
            })
            .collect();
        explain_anomalies(model, &x, &mut rows)?;
        let flagged = rows.iter().filter(|r| r.is_anomaly).count() as i64;
        let n = rows.len() as i64;
        let percent = if n == 0 { 0.0 } else { 100.0 * flagged as f64 / n as f64 };
        let metrics = PassMetrics {
            total: n,
            anomalies: flagged,
            percent,
            state: self.thresholds.state(percent).as_str().to_owned(),
            first_id: pending.first().map_or(0, |p| p.0),
            last_id: pending.last().map_or(0, |p| p.0),
        };
        info!("{} records, {} anomalies ({:.2}%): {}", n, flagged, percent, metrics.state);
        Ok((Scores { records: self.records.clone(), rows, metrics }, rejects))
    }

    fn retrain(&mut self, db: &mut Db) -> Result<()> {
        self.model = train(db, self.args)?;
        Ok(())
    }
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let thresholds = StateThresholds { caution_percent: args.caution_percent, critical_percent: args.critical_percent };
    let wait = parse_duration("--interval", &args.interval)?;
    let retrain = args.retrain_every.as_deref().map(|t| parse_duration("--retrain-every", t)).transpose()?;
    let r = &args.records;
    // The model file first: without one, training needs the database, which
    // is waited for as every worker waits for it (a refused connection is
    // transient), not only once the job runs.
    let model: FittedIsolationForest = match args.model.symlink_metadata() {
        Ok(_) => crate::models::load(&args.model)?,
        Err(_) => {
            let mut db = super::open_retrying(&|| r.open(), &stop_flag(), args.max_iterations)?;
            train(&mut db, &args)?
        }
    };
    if model.n_features != r.columns.len() {
        bail!("{} has {} features, --columns names {}", args.model.display(), model.n_features, r.columns.len());
    }
    let mut job = ForestJob { args: &args, records: r.records(), model, thresholds };
    let (name, retrain) = (job.name(), retrain.map(Schedule::Every));
    let worker = Worker::new(&name, wait, retrain, args.max_iterations, "scored", args.metrics_addr)?;
    super::watch(&|| r.open(), &mut job, &worker)
}
