//! The energy team's isolation-forest job on SQL: `anomaly iforest simulate`
//! writes sensor records (optionally as a live stream, trimming the oldest
//! past a limit), `anomaly iforest watch` scores new records, writes one
//! score per record and one metrics row per pass (total, anomalies, percent,
//! state) in one transaction, and retrains periodically from the newest
//! records.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::{FittedIsolationForest, IsolationForestParams, StateThresholds};
use anomaly_core::persist::Persist;
use anomaly_core::rng::Rng;
use anomaly_core::traits::{Fit, ParamGuard};
use anyhow::{bail, Context, Result};
use clap::Args;
use log::{info, warn};
use ndarray::Array2;

use super::jobs::{parse_duration, sleep_unless, stop_flag, unix_now, Db, ID_MARGIN};
use crate::store::{check_name, PassMetrics, RecordReject, Store};

const COLUMNS: &str = "voltage,current,power,temperature";

#[derive(Debug, Args)]
pub(crate) struct RecordsArgs {
    #[command(flatten)]
    db: Db,
    /// Records table (scores go to TABLE_scores, metrics to TABLE_metrics).
    #[arg(long, default_value = "energy_records")]
    table: String,
    /// Comma-separated feature columns.
    #[arg(long, value_delimiter = ',', default_value = COLUMNS)]
    columns: Vec<String>,
}

impl RecordsArgs {
    fn open(&self) -> Result<Box<dyn Store>> {
        for name in std::iter::once(&self.table).chain(&self.columns) {
            check_name(name).map_err(|e| crate::input_error::InputError::Csv {
                path: PathBuf::from(self.db.url()),
                message: format!("{e:#}"),
            })?;
        }
        let mut db = self.db.open()?;
        db.ensure_records(&self.table, &self.columns)?;
        Ok(db)
    }
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    records: RecordsArgs,
    /// Records to write at once (without --interval), or per tick (with it).
    #[arg(long, default_value_t = 2000)]
    batch_size: usize,
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
        db.insert_records(&r.table, &r.columns, &rows)?;
        written += rows.len();
        if args.max_records > 0 {
            let trimmed = db.trim_records(&r.table, args.max_records)?;
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
}

fn train(db: &mut dyn Store, args: &WatchArgs) -> Result<FittedIsolationForest> {
    let r = &args.records;
    let rows = db.latest_records(&r.table, &r.columns, args.train_records)?;
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
        Some(_) => None,
    })
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let thresholds = StateThresholds { caution_percent: args.caution_percent, critical_percent: args.critical_percent };
    let wait = parse_duration("--interval", &args.interval)?;
    let retrain = args.retrain_every.as_deref().map(|t| parse_duration("--retrain-every", t)).transpose()?;
    let stop = stop_flag();
    let r = &args.records;
    let mut db = r.open()?;
    let mut model = match std::fs::read(&args.model) {
        Ok(bytes) => {
            FittedIsolationForest::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?
        }
        Err(_) => train(db.as_mut(), &args)?,
    };
    if model.n_features != r.columns.len() {
        bail!("{} has {} features, --columns names {}", args.model.display(), model.n_features, r.columns.len());
    }
    let job = format!("iforest:{}", r.table);
    let mut last_train = Instant::now();
    let (mut iteration, mut total, mut anomalies) = (0u64, 0i64, 0i64);
    while !stop.load(Ordering::SeqCst) {
        iteration += 1;
        let pass = (|| -> Result<Option<PassMetrics>> {
            if retrain.is_some_and(|every| last_train.elapsed() >= every) {
                model = train(db.as_mut(), &args)?;
                last_train = Instant::now();
            }
            // Records committed out of id order sit below the watermark: look
            // back ID_MARGIN ids (scored and rejected ones are excluded).
            let after = db.job_state(&job)?.map_or(0, |s| s.last_reading_id);
            let pending = db.pending_records(&r.table, &r.columns, (after - ID_MARGIN).max(0), 50_000)?;
            let (Some(first), Some(last)) = (pending.first().map(|p| p.0), pending.last().map(|p| p.0)) else {
                return Ok(None);
            };
            // A record with a missing or infinite value cannot be scored (as in
            // scikit-learn): rejected with the column named, in the same transaction.
            let (mut complete, mut rejects) = (Vec::new(), Vec::<RecordReject>::new());
            for record in &pending {
                match unscorable(&r.columns, &record.1) {
                    Some(why) => rejects.push((record.0, why)),
                    None => complete.push(record),
                }
            }
            if let Some((id, why)) = rejects.first() {
                warn!("{} records rejected to {}_rejects (first: record {id}, {why})", rejects.len(), r.table);
            }
            let x = Array2::from_shape_fn((complete.len(), r.columns.len()), |(i, j)| {
                complete[i].1[j].unwrap_or(f64::NAN) as f32
            });
            let scores = if complete.is_empty() {
                Vec::new()
            } else {
                model.score_samples(&FeatureMatrix::new(x.view(), Some(model.n_features))?)?
            };
            let rows: Vec<(i64, f64, f64, bool)> = complete
                .iter()
                .zip(&scores)
                .map(|((id, _), &s)| (*id, s, s - model.offset, s - model.offset < 0.0))
                .collect();
            let flagged = rows.iter().filter(|r| r.3).count() as i64;
            let n = rows.len() as i64;
            let percent = if n == 0 { 0.0 } else { 100.0 * flagged as f64 / n as f64 };
            let metrics = PassMetrics {
                total: n,
                anomalies: flagged,
                percent,
                state: thresholds.state(percent).as_str().to_owned(),
                first_id: first,
                last_id: last,
            };
            db.commit_scores(&r.table, &rows, &rejects, &metrics)?;
            Ok(Some(metrics))
        })();
        match pass {
            Ok(Some(m)) => {
                info!(
                    "iteration {iteration}: {} records, {} anomalies ({:.2}%): {}",
                    m.total, m.anomalies, m.percent, m.state
                );
                total += m.total;
                anomalies += m.anomalies;
            }
            Ok(None) => {}
            Err(e) => {
                warn!("iteration {iteration} failed ({e:#}); retrying");
                sleep_unless(&stop, Duration::from_secs(1));
                if let Ok(fresh) = r.open() {
                    db = fresh;
                }
            }
        }
        if args.max_iterations.is_some_and(|m| iteration >= m) {
            break;
        }
        sleep_unless(&stop, wait);
    }
    info!("summary: {iteration} iterations, {total} records scored, {anomalies} anomalies");
    Ok(())
}
