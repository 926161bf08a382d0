//! `anomaly forecast ...`: the plant's forecasting-interval detector, from
//! files (a long CSV) or from the readings table of a database.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anomaly_core::forecast_interval::{DetectorConfig, LongColumns, LongReadings, MultiDetector};
use anomaly_core::time::parse_timestamp;
use anomaly_core::Error as CoreError;
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use log::info;

use crate::csvio;
use crate::input_error::InputError;
use crate::jobs::DbArgs;

/// Forecasting subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Fit one Prophet-style model per variable, from a long CSV
    /// (datetime, variable_name, value) with --input, or else from the
    /// database's readings table, and save them in a directory.
    ///
    /// Examples:
    ///
    ///   anomaly forecast train --input history.csv --models models/
    ///   anomaly forecast train --db sqlite:plant.db --models models/ [--from 2024-03-01 --to 2024-03-15]
    #[command(verbatim_doc_comment)]
    Train(TrainArgs),
    /// Flag readings with saved models: outside [yhat_lower, yhat_upper]
    /// or |y - yhat| > k * std(training residuals), with a 0-100 score.
    /// Nothing is refitted. With --input/--output a CSV; else, with
    /// --once, every reading of the database that has no result yet.
    ///
    /// Examples:
    ///
    ///   anomaly forecast detect --models models/ --input new.csv --output results.csv --json
    ///   anomaly forecast detect --db sqlite:plant.db --models models/ --once [--lookback 1h] [--json]
    #[command(verbatim_doc_comment)]
    Detect(DetectArgs),
    /// Write simulated process readings (trend, daily and weekly cycles,
    /// noise, spikes at --anomaly-ratio) into the readings table.
    ///
    ///   anomaly forecast simulate --db sqlite:plant.db --variables 25 --days 14
    #[command(verbatim_doc_comment)]
    Simulate(super::plant::SimulateArgs),
    /// Load a CSV of readings (long: datetime,variable_name,value; or wide:
    /// datetime plus one column per variable) into the readings table.
    ///
    ///   anomaly forecast import --db sqlite:plant.db --input history.csv [--layout wide]
    #[command(verbatim_doc_comment)]
    Import(super::plant::ImportArgs),
    /// Keep scoring new readings: every --poll-interval (individual mode) or
    /// every --interval (worker mode); retrain with --retrain-every or
    /// --retrain-at. Each reading is processed exactly once, also across
    /// restarts and overlapping workers; Ctrl+C or SIGTERM finish the batch
    /// and print a summary.
    ///
    ///   anomaly forecast watch --db sqlite:plant.db --models models/ --poll-interval 2s
    ///   anomaly forecast watch --db sqlite:plant.db --models models/ --interval 10m --retrain-at 02:00
    #[command(verbatim_doc_comment)]
    Watch(crate::jobs::forecast::WatchArgs),
    /// Score readings arriving as JSON lines on stdin, one result line per
    /// reading on stdout as soon as it is scored; no database. A bad line
    /// gives {"error": {"line": N, "message": ...}} and the stream goes on.
    ///
    ///   kcat -C -b broker:9092 -t readings -u | anomaly forecast stream --models models/ > results.jsonl
    #[command(verbatim_doc_comment)]
    Stream(super::plant::StreamArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SeasonalityMode {
    Additive,
    Multiplicative,
}

#[derive(Debug, Args)]
struct Columns {
    /// Timestamp column (YYYY-MM-DD HH:MM[:SS]).
    #[arg(long, default_value = "datetime")]
    time_col: String,
    /// Variable name column.
    #[arg(long, default_value = "variable_name")]
    variable_col: String,
    /// Value column (empty or NaN = missing reading).
    #[arg(long, default_value = "value")]
    value_col: String,
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// Long CSV with a header row (default: the database's readings table).
    #[arg(long, short)]
    input: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    /// Directory to write the models to.
    #[arg(long, short)]
    models: PathBuf,
    #[command(flatten)]
    columns: Columns,
    /// First datetime used for training from the database (default: all history).
    #[arg(long)]
    from: Option<String>,
    /// End of the database training range, exclusive.
    #[arg(long)]
    to: Option<String>,
    /// The k of the |y - yhat| > k * std(residuals) rule.
    #[arg(long, default_value_t = 2.0)]
    k_sigma: f64,
    /// Width of the forecast interval.
    #[arg(long, default_value_t = 0.95)]
    interval_width: f64,
    /// Laplace scale of trend changes.
    #[arg(long, default_value_t = 0.05)]
    changepoint_prior_scale: f64,
    /// How seasonality combines with the trend (the plant team's models are multiplicative).
    #[arg(long, value_enum, default_value = "multiplicative")]
    seasonality_mode: SeasonalityMode,
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// Model directory from `anomaly forecast train`.
    #[arg(long, short)]
    models: PathBuf,
    /// Long CSV of readings to check (default: the database's pending readings).
    #[arg(long, short, requires = "output")]
    input: Option<PathBuf>,
    /// Where to write the results of --input (CSV).
    #[arg(long, short, requires = "input")]
    output: Option<PathBuf>,
    #[command(flatten)]
    columns: Columns,
    #[command(flatten)]
    db: DbArgs,
    /// Database: process everything pending once, then exit.
    #[arg(long)]
    once: bool,
    /// Database: only readings within this span of the newest one (e.g. 1h, 30m, 2d).
    #[arg(long)]
    lookback: Option<String>,
    /// Database: readings scored and committed per transaction.
    #[arg(long, default_value_t = crate::jobs::forecast::BATCH)]
    batch_size: usize,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Train(args) => train(args),
        Command::Detect(args) => detect(args),
        Command::Simulate(args) => super::plant::simulate(args),
        Command::Import(args) => super::plant::import(args),
        Command::Watch(args) => crate::jobs::forecast::watch(args),
        Command::Stream(args) => super::plant::stream(args),
    }
}

/// Reads `(datetime, variable, value)` rows; timestamps become nanoseconds.
fn read_long(path: &Path, columns: &Columns) -> Result<LongReadings> {
    let file = crate::input_error::open_input(path)?;
    let csv_err = |e: csv::Error| InputError::Csv { path: path.to_owned(), message: e.to_string() };
    let mut reader = csvio::csv_reader(file);
    let headers: Vec<String> = reader.headers().map_err(csv_err)?.iter().map(str::to_owned).collect();
    let index = |name: &str| csvio::column_index(path, &headers, name);
    let (ti, vi, xi) = (index(&columns.time_col)?, index(&columns.variable_col)?, index(&columns.value_col)?);
    let mut out = LongReadings {
        columns: LongColumns {
            time: columns.time_col.clone(),
            variable: columns.variable_col.clone(),
            value: columns.value_col.clone(),
        },
        ..Default::default()
    };
    let mut record = csv::StringRecord::new();
    let mut row = 0;
    while reader.read_record(&mut record).map_err(csv_err)? {
        let text = record.get(ti).unwrap_or("");
        let ts = parse_timestamp(text).ok_or_else(|| {
            InputError::data(path, CoreError::BadTimestamp { field: columns.time_col.clone(), row, value: text.into() })
        })?;
        let raw = record.get(xi).unwrap_or("").trim();
        let value = if raw.is_empty() || raw.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else {
            raw.parse().map_err(|_| {
                InputError::data(
                    path,
                    CoreError::BadNumber { field: columns.value_col.clone(), row, value: raw.into() },
                )
            })?
        };
        out.ds.push(ts);
        out.variable.push(record.get(vi).unwrap_or("").to_owned());
        out.value.push(value);
        row += 1;
    }
    Ok(out)
}

pub(crate) fn train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    let mode = match args.seasonality_mode {
        SeasonalityMode::Additive => "additive",
        SeasonalityMode::Multiplicative => "multiplicative",
    };
    let config = DetectorConfig::from_options(args.k_sigma, args.interval_width, args.changepoint_prior_scale, mode)
        .map_err(InputError::Params)?;
    let Some(input) = &args.input else {
        return crate::jobs::forecast::train(&args.db, &config, args.from.as_deref(), args.to.as_deref(), &args.models);
    };
    let readings = read_long(input, &args.columns)?;
    let mut names: Vec<&String> = readings.variable.iter().collect();
    names.sort();
    names.dedup();
    info!("read {} readings of {} variables from {}", readings.ds.len(), names.len(), input.display());
    let bar = csvio::progress(names.len() as u64, true, "training");
    let models = MultiDetector::fit_with_progress(&config, &readings, &|_| bar.inc(1))
        .map_err(|e| InputError::data(input, e))?;
    bar.finish_and_clear();
    crate::models::save_forecast(&args.models, &models)?;
    info!("trained {} models in {:.2?}; wrote {}", models.variables.len(), started.elapsed(), args.models.display());
    Ok(())
}

pub(crate) fn detect(args: DetectArgs) -> Result<()> {
    let (Some(input), Some(output)) = (&args.input, &args.output) else {
        return crate::jobs::forecast::detect(crate::jobs::forecast::DetectArgs {
            db: args.db,
            models: args.models,
            once: args.once,
            lookback: args.lookback,
            json: args.json,
            batch_size: args.batch_size,
        });
    };
    let started = Instant::now();
    let models = crate::models::load_forecast(&args.models)?;
    let readings = read_long(input, &args.columns)?;
    let result = models.detect(&readings).map_err(|e| InputError::data(input, e))?;
    let r = &result.rows;
    let header = "ds,variable,y,yhat,yhat_lower,yhat_upper,residual,is_anomaly,anomaly_score";
    let names: Vec<Vec<u8>> = readings.variable.iter().map(|v| csvio::csv_field(v)).collect();
    csvio::write_rows_parallel(output, header, readings.ds.len(), |row, out| {
        anomaly_core::time::push_timestamp(out, readings.ds[row]);
        out.push(b',');
        out.extend_from_slice(&names[row]);
        for v in [readings.value[row], r.yhat[row], r.yhat_lower[row], r.yhat_upper[row], r.residual[row]] {
            out.push(b',');
            if !v.is_nan() {
                csvio::push_f64(out, v);
            }
        }
        out.extend_from_slice(if r.is_anomaly[row] { b",true," } else { b",false," });
        csvio::push_f64(out, r.score[row]);
    })?;
    let anomalies = r.is_anomaly.iter().filter(|a| **a).count();
    if result.unknown_rows > 0 {
        log::warn!("{} rows belong to variables without a model; they are not scored", result.unknown_rows);
    }
    info!("{} of {} readings anomalous; {:.2?}", anomalies, readings.ds.len(), started.elapsed());
    if args.json {
        let summary = serde_json::json!({
            "readings": readings.ds.len(),
            "anomalies": anomalies,
            "unknown_rows": result.unknown_rows,
            "variables": models.variables.len(),
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{summary}");
    }
    Ok(())
}
