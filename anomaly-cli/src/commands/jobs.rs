//! The plant team's SQL jobs: `simulate`, `import`, `train`, `detect --once`
//! and `watch`, on the embedded SQLite by default (see `crate::store` for
//! the exactly-once rule).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anomaly_core::forecast_interval::{DetectorConfig, LongReadings, Mode, MultiDetector};
use anomaly_core::rng::Rng;
use anomaly_core::time::{parse_timestamp, DurationUnit};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use log::{info, warn};

use crate::csvio;
use crate::input_error::InputError;
use crate::store::{self, NewReading, Pending, Reject, ResultRow, Store, Tables};

/// The job name in the state table.
const JOB: &str = "forecast";
/// Readings scored per transaction.
const BATCH: usize = 50_000;
/// Ids below the job's watermark looked at again (readings committed out of
/// id order by concurrent writers): by `detect`, and by `watch` on its
/// first pass and then every `MARGIN_EVERY` passes; the passes between look
/// only above the watermark, which keeps a new datetime's delay short.
pub(crate) const ID_MARGIN: i64 = 10_000;
const MARGIN_EVERY: u64 = 20;

#[derive(Debug, Clone, Args)]
pub(crate) struct Db {
    /// Database: `sqlite:PATH` (the default, embedded, no server) or
    /// `postgres://user[:password]@host[:port]/database`.
    #[arg(long, env = "ANOMALY_DB", default_value = "sqlite:anomaly.db")]
    db: String,
    /// Readings table `(id, datetime, variable_name, value, source_file, created_at)`.
    #[arg(long, default_value = "datos_proceso")]
    readings_table: String,
    /// Results table `(id, ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score, processed_at)`.
    #[arg(long, default_value = "anomalies_detector")]
    results_table: String,
}

impl Db {
    /// A database with the default table names.
    pub(crate) fn with_url(url: &str) -> Db {
        Db { db: url.to_owned(), readings_table: "datos_proceso".into(), results_table: "anomalies_detector".into() }
    }

    /// The database URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.db
    }

    /// Opens the database and creates missing tables. A bad URL or table
    /// name is the input's fault (exit 2); a database that cannot be
    /// reached is not (exit 1, and `watch` retries).
    pub(crate) fn open(&self) -> Result<Box<dyn Store>> {
        let tables = Tables {
            readings: self.readings_table.clone(),
            results: self.results_table.clone(),
            rejects: format!("{}_rejects", self.results_table),
            state: "anomaly_job_state".into(),
        };
        let bad = |e: anyhow::Error| InputError::Csv { path: PathBuf::from(&self.db), message: format!("{e:#}") };
        store::check_url(&self.db).map_err(bad)?;
        for name in [&tables.readings, &tables.results, &tables.rejects] {
            store::check_name(name).map_err(bad)?;
        }
        let mut db = store::open(&self.db, tables)?;
        db.ensure_schema()?;
        Ok(db)
    }

    /// As [`Db::open`], retrying with backoff while the database is
    /// unreachable (not on a bad URL), until `stop`.
    pub(crate) fn open_retrying(&self, stop: &AtomicBool) -> Result<Box<dyn Store>> {
        let mut failures = 0u32;
        loop {
            match self.open() {
                Ok(db) => return Ok(db),
                Err(e) if e.chain().any(|c| c.is::<InputError>()) => return Err(e),
                Err(e) if stop.load(Ordering::SeqCst) => return Err(e),
                Err(e) => {
                    failures += 1;
                    let backoff = backoff(failures);
                    warn!("database unavailable ({e:#}); retrying in {backoff:.1?}");
                    sleep_unless(stop, backoff);
                }
            }
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    db: Db,
    /// Process variables.
    #[arg(long, default_value_t = 25)]
    variables: usize,
    /// Days of history.
    #[arg(long, default_value_t = 14.0)]
    days: f64,
    /// Minutes between readings.
    #[arg(long, default_value_t = 5)]
    interval_minutes: i64,
    /// First datetime.
    #[arg(long, default_value = "2024-03-04 00:00:00")]
    start: String,
    /// Share of readings turned into spikes.
    #[arg(long, default_value_t = 0.005)]
    anomaly_ratio: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Layout {
    /// `datetime, variable_name, value` rows.
    Long,
    /// `datetime` plus one column per variable.
    Wide,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    db: Db,
    /// CSV file with a header row.
    #[arg(long, short)]
    input: PathBuf,
    /// Long rows or one column per variable.
    #[arg(long, value_enum, default_value = "long")]
    layout: Layout,
    /// Timestamp column.
    #[arg(long, default_value = "datetime")]
    time_col: String,
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    db: Db,
    /// Model directory to write (one file per variable plus detector.json).
    #[arg(long, short)]
    models: PathBuf,
    /// First datetime used for training (default: all history).
    #[arg(long)]
    from: Option<String>,
    /// End of the training range, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// The k of the |y - yhat| > k * std(residuals) rule.
    #[arg(long, default_value_t = 2.0)]
    k_sigma: f64,
    /// Width of the forecast interval.
    #[arg(long, default_value_t = 0.95)]
    interval_width: f64,
    /// Seasonality mode (the plant team's models are multiplicative).
    #[arg(long, default_value = "multiplicative")]
    seasonality_mode: String,
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    #[command(flatten)]
    db: Db,
    /// Model directory from `anomaly train`.
    #[arg(long, short)]
    models: PathBuf,
    /// Process everything pending once, then exit.
    #[arg(long)]
    once: bool,
    /// Only readings within this span of the newest one (e.g. 1h, 30m, 2d).
    #[arg(long)]
    lookback: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Readings scored and committed per transaction.
    #[arg(long, default_value_t = BATCH)]
    batch_size: usize,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    db: Db,
    /// Model directory from `anomaly train` (retrained in place).
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
    /// Retrain daily at this time (HH:MM, the clock of the readings' host).
    #[arg(long)]
    retrain_at: Option<String>,
    /// Days of history used when retraining (default: all).
    #[arg(long)]
    train_days: Option<f64>,
    /// Stop after this many iterations (tests, demos).
    #[arg(long)]
    max_iterations: Option<u64>,
    /// Readings scored and committed per transaction.
    #[arg(long, default_value_t = BATCH)]
    batch_size: usize,
}

/// A duration flag (`10m`, `2s`, `500ms`, `1h30m`, `2d`; a bare number is
/// seconds) in the core's one grammar; a bad value is bad input (exit 2).
pub(crate) fn parse_duration(flag: &str, text: &str) -> Result<Duration> {
    Ok(anomaly_core::time::parse_duration(flag, text, DurationUnit::Second).map_err(InputError::Params)?)
}

fn timestamp(text: &str, what: &str) -> Result<i64> {
    parse_timestamp(text).ok_or_else(|| {
        InputError::Params(anomaly_core::Error::param(what, text, "expected YYYY-MM-DD[ HH:MM[:SS]]")).into()
    })
}

pub(crate) fn simulate(args: SimulateArgs) -> Result<()> {
    let start = timestamp(&args.start, "start")?;
    if args.variables == 0 || args.interval_minutes <= 0 || args.days <= 0.0 {
        bail!(InputError::Params(anomaly_core::Error::param(
            "variables/days/interval-minutes",
            format!("{}/{}/{}", args.variables, args.days, args.interval_minutes),
            "must be positive"
        )));
    }
    let steps = (args.days * 1440.0 / args.interval_minutes as f64).round() as usize;
    let mut rng = Rng::new(args.seed);
    let mut rows = Vec::with_capacity(steps * args.variables);
    let names: Vec<String> = (0..args.variables).map(|v| format!("VAR_{:02}", v + 1)).collect();
    let (mut spikes, step_s) = (0usize, args.interval_minutes * 60);
    for i in 0..steps {
        let ts = start + i as i64 * step_s;
        let day = (ts.rem_euclid(86_400)) as f64 / 86_400.0;
        let week = (ts.rem_euclid(7 * 86_400)) as f64 / (7.0 * 86_400.0);
        for (v, name) in names.iter().enumerate() {
            let level = 40.0 + 7.0 * v as f64;
            let phase = v as f64 * 0.7;
            let seasonal = 1.0
                + 0.08 * (std::f64::consts::TAU * day + phase).sin()
                + 0.03 * (std::f64::consts::TAU * week + phase).cos();
            let mut y = level * seasonal * (1.0 + 0.0005 * i as f64 / 288.0) + rng.normal();
            if rng.uniform(0.0, 1.0) < args.anomaly_ratio {
                y += if rng.uniform(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 } * rng.uniform(8.0, 15.0);
                spikes += 1;
            }
            rows.push(NewReading { ts, variable: name.clone(), value: Some(y), source: Some("simulate".into()) });
        }
    }
    let mut db = args.db.open()?;
    let bar = csvio::progress(rows.len() as u64, rows.len() > 100_000, "writing readings");
    db.insert_readings(&rows, &mut |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    info!("wrote {} readings of {} variables ({spikes} spikes) to {}", rows.len(), args.variables, args.db.db);
    Ok(())
}

pub(crate) fn import(args: ImportArgs) -> Result<()> {
    let started = Instant::now();
    let path = &args.input;
    let csv_err = |e: csv::Error| InputError::Csv { path: path.clone(), message: e.to_string() };
    let mut reader = csv::Reader::from_path(path).map_err(csv_err)?;
    let headers: Vec<String> = reader.headers().map_err(csv_err)?.iter().map(str::to_owned).collect();
    let ti = csvio::column_index(path, &headers, &args.time_col)?;
    let source = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let long = match args.layout {
        Layout::Long => {
            Some((csvio::column_index(path, &headers, "variable_name")?, csvio::column_index(path, &headers, "value")?))
        }
        Layout::Wide => None,
    };
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    while reader.read_record(&mut record).map_err(csv_err)? {
        line += 1;
        let text = record.get(ti).unwrap_or("");
        let ts = parse_timestamp(text).ok_or_else(|| InputError::Csv {
            path: path.clone(),
            message: format!("line {line}: cannot parse {text:?} as a timestamp"),
        })?;
        let value = |raw: &str, column: &str| -> Result<Option<f64>> {
            let raw = raw.trim();
            if raw.is_empty() || raw.eq_ignore_ascii_case("nan") || raw.eq_ignore_ascii_case("null") {
                return Ok(None);
            }
            raw.parse().map(Some).map_err(|_| {
                InputError::Csv {
                    path: path.clone(),
                    message: format!("line {line}, column {column}: cannot parse {raw:?} as a number"),
                }
                .into()
            })
        };
        match long {
            Some((vi, xi)) => rows.push(NewReading {
                ts,
                variable: record.get(vi).unwrap_or("").to_owned(),
                value: value(record.get(xi).unwrap_or(""), "value")?,
                source: source.clone(),
            }),
            None => {
                for (i, name) in headers.iter().enumerate().filter(|&(i, _)| i != ti) {
                    rows.push(NewReading {
                        ts,
                        variable: name.clone(),
                        value: value(record.get(i).unwrap_or(""), name)?,
                        source: source.clone(),
                    });
                }
            }
        }
    }
    let mut db = args.db.open()?;
    let bar = csvio::progress(rows.len() as u64, true, "importing");
    db.insert_readings(&rows, &mut |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    info!("imported {} readings from {} in {:.2?}", rows.len(), path.display(), started.elapsed());
    Ok(())
}

fn config(args: &TrainArgs) -> Result<DetectorConfig> {
    let mut config = DetectorConfig { k_sigma: args.k_sigma, ..Default::default() };
    config.prophet.interval_width = args.interval_width;
    config.prophet.seasonality_mode = match args.seasonality_mode.as_str() {
        "additive" => Mode::Additive,
        "multiplicative" => Mode::Multiplicative,
        other => bail!(InputError::Params(anomaly_core::Error::param(
            "seasonality-mode",
            other,
            "expected additive or multiplicative"
        ))),
    };
    config.validate().map_err(InputError::Params)?;
    Ok(config)
}

/// Fits one model per variable on the readings in `[from, to)` and saves them.
fn train_models(
    db: &mut dyn Store,
    config: &DetectorConfig,
    from: Option<i64>,
    to: Option<i64>,
    dir: &Path,
) -> Result<MultiDetector> {
    let started = Instant::now();
    let rows = db.readings_between(from, to)?;
    if rows.is_empty() {
        bail!(InputError::Params(anomaly_core::Error::Empty { what: "readings in the training range".into() }));
    }
    // Repeated (variable, datetime) readings: the first one counts, as in detection.
    let mut seen = HashSet::new();
    let mut readings = LongReadings::default();
    for (ts, variable, value) in rows {
        if seen.insert((variable.clone(), ts)) {
            readings.ds.push(ts * 1_000_000_000);
            readings.value.push(value.unwrap_or(f64::NAN));
            readings.variable.push(variable);
        }
    }
    let variables = readings.variable.iter().collect::<HashSet<_>>().len();
    let bar = csvio::progress(variables as u64, true, "training");
    let models = MultiDetector::fit_with_progress(config, &readings, &|_| bar.inc(1)).map_err(InputError::Params)?;
    bar.finish_and_clear();
    models.save(dir).with_context(|| format!("cannot write models to {}", dir.display()))?;
    info!(
        "trained {} models on {} readings in {:.2?}; wrote {}",
        models.variables.len(),
        readings.ds.len(),
        started.elapsed(),
        dir.display()
    );
    Ok(models)
}

pub(crate) fn train(args: TrainArgs) -> Result<()> {
    let config = config(&args)?;
    let from = args.from.as_deref().map(|t| timestamp(t, "from")).transpose()?;
    let to = args.to.as_deref().map(|t| timestamp(t, "to")).transpose()?;
    let mut db = args.db.open()?;
    train_models(db.as_mut(), &config, from, to, &args.models)?;
    db.mark_trained(JOB, unix_now())?;
    Ok(())
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn load_models(dir: &Path) -> Result<MultiDetector> {
    MultiDetector::load(dir).map_err(|e| {
        InputError::Csv { path: dir.to_owned(), message: format!("cannot load the models ({e}); run `anomaly train`") }
            .into()
    })
}

/// What one pass found and wrote.
#[derive(Debug, Default, Clone, Copy)]
struct Pass {
    readings: usize,
    datetimes: usize,
    variables: usize,
    results: usize,
    anomalies: usize,
    rejects: usize,
}

/// Scores every pending reading (in batches, each committed with the job
/// state), until none is left.
fn process_pending(
    db: &mut dyn Store,
    models: &MultiDetector,
    since: Option<i64>,
    batch: usize,
    margin: i64,
) -> Result<Pass> {
    let limit = batch.max(1);
    let mut pass = Pass::default();
    let (mut datetimes, mut variables) = (HashSet::new(), HashSet::new());
    let mut after = db.job_state(JOB)?.map_or(0, |s| s.last_reading_id - margin).max(0);
    loop {
        let batch = db.pending(after, since, limit)?;
        let Some(last) = batch.last().map(|p| p.id) else { break };
        let (results, rejects) = score(models, &batch)?;
        for p in &batch {
            datetimes.insert(p.ts);
            variables.insert(p.variable.clone());
        }
        // With a time filter, older readings were skipped, not done: the
        // watermark only moves on unfiltered passes.
        let watermark = if since.is_some() { 0 } else { last };
        let inserted = db.commit(JOB, &results, &rejects, watermark)?;
        pass.readings += batch.len();
        pass.results += inserted;
        pass.anomalies += results.iter().filter(|r| r.is_anomaly).count();
        pass.rejects += rejects.len();
        after = last;
        if batch.len() < limit {
            break;
        }
    }
    pass.datetimes = datetimes.len();
    pass.variables = variables.len();
    Ok(pass)
}

/// Results for the scorable readings, rejects (with the reason) for the rest.
fn score(models: &MultiDetector, batch: &[Pending]) -> Result<(Vec<ResultRow>, Vec<Reject>)> {
    let mut rejects = Vec::new();
    let mut readings = LongReadings::default();
    let mut kept = Vec::new();
    let mut seen = HashSet::new();
    for p in batch {
        let reason = if p.ts == i64::MIN {
            Some("unparsable datetime".to_owned())
        } else {
            match &p.value {
                Err(text) => Some(format!("value {text:?} is not a number")),
                Ok(None) => Some("missing value".to_owned()),
                Ok(Some(v)) if !v.is_finite() => Some(format!("value {v} is not finite")),
                Ok(Some(_)) if !models.variables.contains_key(&p.variable) => {
                    Some(format!("no model for variable {:?}", p.variable))
                }
                Ok(Some(_)) if !seen.insert((p.variable.clone(), p.ts)) => {
                    Some("repeated reading for this datetime and variable".to_owned())
                }
                Ok(Some(_)) => None,
            }
        };
        match reason {
            Some(reason) => {
                rejects.push(Reject { reading_id: p.id, ts: p.ts, variable: p.variable.clone(), reason });
            }
            None => {
                readings.ds.push(p.ts * 1_000_000_000);
                readings.variable.push(p.variable.clone());
                readings.value.push(p.value.clone().ok().flatten().unwrap_or(f64::NAN));
                kept.push(p);
            }
        }
    }
    if readings.ds.is_empty() {
        return Ok((Vec::new(), rejects));
    }
    let detection = models.detect(&readings).context("scoring readings")?;
    let r = &detection.rows;
    let results = kept
        .iter()
        .enumerate()
        .map(|(i, p)| ResultRow {
            ts: p.ts,
            variable: p.variable.clone(),
            y: readings.value[i],
            yhat: r.yhat[i],
            yhat_lower: r.yhat_lower[i],
            yhat_upper: r.yhat_upper[i],
            residual: r.residual[i],
            is_anomaly: r.is_anomaly[i],
            score: r.score[i],
        })
        .collect();
    Ok((results, rejects))
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
    let since = match &args.lookback {
        Some(span) => {
            let span = parse_duration("--lookback", span)?.as_secs() as i64;
            db.latest_reading()?.map(|latest| latest - span)
        }
        None => None,
    };
    let pass = process_pending(db.as_mut(), &models, since, args.batch_size, ID_MARGIN)?;
    info!(
        "processed {} readings ({} datetimes, {} variables): {} results, {} anomalies, {} rejects in {:.2?}",
        pass.readings,
        pass.datetimes,
        pass.variables,
        pass.results,
        pass.anomalies,
        pass.rejects,
        started.elapsed()
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "readings": pass.readings, "datetimes": pass.datetimes, "variables": pass.variables,
                "results": pass.results, "anomalies": pass.anomalies, "rejects": pass.rejects,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    }
    Ok(())
}

/// Sets a flag on SIGINT or SIGTERM (a thread with a small runtime).
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            #[cfg(unix)]
            {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        info!("stop requested: finishing the current batch");
        set.store(true, Ordering::SeqCst);
    });
    flag
}

/// Seconds until the next `HH:MM` (UTC clock of this host).
fn next_daily(at: &str, now: i64) -> Result<i64> {
    let (h, m) = at.split_once(':').context("--retrain-at: expected HH:MM")?;
    let (h, m): (i64, i64) = (h.parse()?, m.parse()?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        bail!("--retrain-at {at:?}: expected HH:MM");
    }
    let today = now - now.rem_euclid(86_400) + h * 3600 + m * 60;
    Ok(if today > now { today } else { today + 86_400 })
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let wait = match (&args.poll_interval, &args.interval) {
        (Some(p), _) => parse_duration("--poll-interval", p)?,
        (None, Some(i)) => parse_duration("--interval", i)?,
        (None, None) => Duration::from_secs(2),
    };
    let retrain_every = args.retrain_every.as_deref().map(|t| parse_duration("--retrain-every", t)).transpose()?;
    let mut next_retrain = match (&retrain_every, &args.retrain_at) {
        (Some(every), _) => Some(unix_now() + every.as_secs() as i64),
        (None, Some(at)) => Some(next_daily(at, unix_now())?),
        _ => None,
    };
    let mut models = load_models(&args.models)?;
    let stop = stop_flag();
    let mut db = args.db.open_retrying(&stop)?;
    let started = Instant::now();
    let (mut total, mut iteration, mut failures) = (Pass::default(), 0u64, 0u32);
    info!("watching {} every {:.1?} with {} models (Ctrl+C to stop)", args.db.db, wait, models.variables.len());
    while !stop.load(Ordering::SeqCst) {
        iteration += 1;
        let outcome = (|| -> Result<Pass> {
            if next_retrain.is_some_and(|at| unix_now() >= at) {
                let config = models.variables.values().next().map(|d| d.config.clone()).unwrap_or_default();
                let from = args.train_days.and_then(|days| {
                    db.latest_reading().ok().flatten().map(|latest| latest - (days * 86_400.0) as i64)
                });
                models = train_models(db.as_mut(), &config, from, None, &args.models)?;
                db.mark_trained(JOB, unix_now())?;
                next_retrain = match (&retrain_every, &args.retrain_at) {
                    (Some(every), _) => Some(unix_now() + every.as_secs() as i64),
                    (None, Some(at)) => Some(next_daily(at, unix_now())?),
                    _ => None,
                };
            }
            let margin = if iteration % MARGIN_EVERY == 1 { ID_MARGIN } else { 0 };
            process_pending(db.as_mut(), &models, None, args.batch_size, margin)
        })();
        match outcome {
            Ok(pass) => {
                failures = 0;
                if pass.readings > 0 {
                    info!(
                        "iteration {iteration}: {} readings found, {} datetimes, {} variables, {} anomalies, {} rejects",
                        pass.readings, pass.datetimes, pass.variables, pass.anomalies, pass.rejects
                    );
                }
                total.readings += pass.readings;
                total.results += pass.results;
                total.anomalies += pass.anomalies;
                total.rejects += pass.rejects;
            }
            Err(err) => {
                // The database may be restarting: back off, keep going.
                failures += 1;
                let backoff = backoff(failures);
                warn!("iteration {iteration} failed ({err:#}); retrying in {backoff:.1?}");
                sleep_unless(&stop, backoff);
                if let Ok(fresh) = args.db.open() {
                    db = fresh; // a new connection after a database restart
                }
                continue;
            }
        }
        if args.max_iterations.is_some_and(|m| iteration >= m) {
            break;
        }
        // Wait for the next poll, or less when the database announces new
        // readings; in slices, so that a stop request is seen promptly.
        let deadline = Instant::now() + wait;
        while !stop.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let before = Instant::now();
            if let Err(e) = db.wait_for_readings(left.min(Duration::from_millis(200))) {
                warn!("waiting for readings failed ({e:#})");
                sleep_unless(&stop, left.min(Duration::from_millis(200)));
            }
            // Woken early by a notification: process now.
            if before.elapsed() + Duration::from_millis(1) < left.min(Duration::from_millis(200)) {
                break;
            }
        }
    }
    info!(
        "summary: {iteration} iterations in {:.1?}: {} readings, {} results, {} anomalies, {} rejects",
        started.elapsed(),
        total.readings,
        total.results,
        total.anomalies,
        total.rejects
    );
    Ok(())
}

/// How long to wait after `failures` failures in a row: 1 s doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis((500u64 << failures.min(6)).min(30_000))
}

/// Sleeps `total`, waking early when `stop` is set.
pub(crate) fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let deadline = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_daily_times() {
        let d = |t| parse_duration("--interval", t);
        assert_eq!(d("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
        assert!(d("ten").is_err() && d("3y").is_err() && d("-1s").is_err());
        let midnight = 1_700_006_400; // a multiple of 86,400: 2023-11-15 00:00 UTC
        assert_eq!(next_daily("02:00", midnight).unwrap(), midnight + 7200);
        assert_eq!(next_daily("02:00", midnight + 7200).unwrap(), midnight + 86_400 + 7200);
        assert!(next_daily("25:00", midnight).is_err());
    }
}

#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    /// Model directory from `anomaly train`.
    #[arg(long, short)]
    models: PathBuf,
    /// Field holding the timestamp (YYYY-MM-DD HH:MM[:SS]) in each input line.
    #[arg(long, default_value = "datetime")]
    time_field: String,
    /// Field holding the variable name.
    #[arg(long, default_value = "variable_name")]
    variable_field: String,
    /// Field holding the value.
    #[arg(long, default_value = "value")]
    value_field: String,
}

/// One input line as a reading, or what is wrong with it.
fn stream_reading(line: &str, args: &StreamArgs) -> Result<(i64, String, f64), String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| value.get(name).ok_or_else(|| format!("missing field {name:?}"));
    let ts_text = field(&args.time_field)?.as_str().ok_or_else(|| format!("{} must be a string", args.time_field))?;
    let ts = parse_timestamp(ts_text).ok_or_else(|| format!("cannot parse {ts_text:?} as a timestamp"))?;
    let variable =
        field(&args.variable_field)?.as_str().ok_or_else(|| format!("{} must be a string", args.variable_field))?;
    let y = match field(&args.value_field)? {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        serde_json::Value::String(s) => s.trim().parse().map_err(|_| format!("value {s:?} is not a number"))?,
        other => return Err(format!("value {other} is not a number")),
    };
    if !y.is_finite() {
        return Err(format!("value {y} is not finite"));
    }
    Ok((ts, variable.to_owned(), y))
}

/// Reads readings as JSON lines on stdin, writes one result line per
/// reading on stdout as soon as it is scored (a bad line gives an error
/// line with its number; the stream goes on).
pub(crate) fn stream(args: StreamArgs) -> Result<()> {
    use std::io::{BufRead, Write};
    let models = load_models(&args.models)?;
    info!("streaming with {} models: one JSON reading per line on stdin", models.variables.len());
    let stdin = std::io::stdin();
    let mut out = std::io::LineWriter::new(std::io::stdout().lock());
    let (mut scored, mut errors) = (0u64, 0u64);
    for (i, line) in stdin.lock().lines().enumerate() {
        let number = i + 1;
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let result = stream_reading(&line, &args).and_then(|(ts, variable, y)| {
            if !models.variables.contains_key(&variable) {
                return Err(format!("no model for variable {variable:?}"));
            }
            let readings = LongReadings {
                ds: vec![ts * 1_000_000_000],
                variable: vec![variable.clone()],
                value: vec![y],
                ..Default::default()
            };
            let d = models.detect(&readings).map_err(|e| e.to_string())?.rows;
            Ok(serde_json::json!({
                "ds": anomaly_core::time::format_timestamp(ts), "variable": variable, "y": y,
                "yhat": d.yhat[0], "yhat_lower": d.yhat_lower[0], "yhat_upper": d.yhat_upper[0],
                "residual": d.residual[0], "is_anomaly": d.is_anomaly[0], "anomaly_score": d.score[0],
            }))
        });
        let text = match result {
            Ok(value) => {
                scored += 1;
                value.to_string()
            }
            Err(message) => {
                errors += 1;
                warn!("line {number}: {message}");
                serde_json::json!({"error": {"line": number, "message": message}}).to_string()
            }
        };
        if writeln!(out, "{text}").is_err() {
            break; // the reader went away (a closed pipe): stop quietly
        }
    }
    info!("stream ended: {scored} readings scored, {errors} bad lines");
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    db: Db,
    /// Model directory to write.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Process variables to simulate.
    #[arg(long, default_value_t = 25)]
    variables: usize,
    /// Days of 5-minute history to simulate (the last one is scored as new data).
    #[arg(long, default_value_t = 14.0)]
    days: f64,
}

/// The plant workflow end to end on one database: simulate readings (when
/// the table is empty), train on all days but the last, score everything
/// once, print the summary.
pub(crate) fn demo(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let start = "2024-03-04 00:00:00";
    let empty = args.db.open()?.latest_reading()?.is_none();
    if empty {
        simulate(SimulateArgs {
            db: args.db.clone(),
            variables: args.variables,
            days: args.days,
            interval_minutes: 5,
            start: start.into(),
            anomaly_ratio: 0.005,
            seed: 7,
        })?;
    } else {
        info!("{} already holds readings: training and scoring those", args.db.db);
    }
    let latest = args.db.open()?.latest_reading()?.unwrap_or(0);
    train(TrainArgs {
        db: args.db.clone(),
        models: args.models.clone(),
        from: None,
        to: Some(anomaly_core::time::format_timestamp(latest - 86_400)),
        k_sigma: 2.0,
        interval_width: 0.95,
        seasonality_mode: "multiplicative".into(),
    })?;
    detect(DetectArgs {
        db: args.db.clone(),
        models: args.models.clone(),
        once: true,
        lookback: None,
        json: true,
        batch_size: BATCH,
    })?;
    info!(
        "done in {:.1?}. Next: `anomaly watch --db {} --models {} --poll-interval 2s` scores new readings as they land; \
         `anomaly serve --db {}` serves the results (GET /anomalies, /summary)",
        started.elapsed(),
        args.db.db,
        args.models.display(),
        args.db.db
    );
    Ok(())
}
