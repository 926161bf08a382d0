//! The plant's SQL commands around the forecast job (`crate::jobs::forecast`):
//! `simulate` and `import` write readings, `train` fits from the readings
//! table, `stream` scores JSON lines without a database, `demo` runs the
//! workflow end to end.

use std::path::PathBuf;
use std::time::Instant;

use anomaly_core::forecast_interval::{simulate_process, DetectorConfig, LongReadings, ProcessSpec};
use anomaly_core::time::parse_timestamp;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use log::{info, warn};

use crate::csvio;
use crate::input_error::InputError;
use crate::jobs::forecast::{self as job, load_models, DetectArgs, BATCH};
use crate::jobs::DbArgs as Db;
use crate::store::forecast::NewReading;

fn timestamp(text: &str, what: &str) -> Result<i64> {
    parse_timestamp(text).ok_or_else(|| {
        InputError::Params(anomaly_core::Error::param(what, text, "expected YYYY-MM-DD[ HH:MM[:SS]]")).into()
    })
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

pub(crate) fn simulate(args: SimulateArgs) -> Result<()> {
    let spec = ProcessSpec {
        variables: args.variables,
        days: args.days,
        interval_minutes: args.interval_minutes,
        start: timestamp(&args.start, "start")?,
        anomaly_ratio: args.anomaly_ratio,
        seed: args.seed,
    };
    let sim = simulate_process(&spec).map_err(InputError::Params)?;
    let source = Some("simulate".to_owned());
    let rows: Vec<NewReading> = (0..sim.ts.len())
        .map(|i| NewReading {
            ts: sim.ts[i],
            variable: sim.names[sim.variable[i] as usize].clone(),
            value: Some(sim.value[i]),
            source: source.clone(),
        })
        .collect();
    job::write_readings(&args.db, &rows)?;
    info!("wrote {} readings of {} variables ({} spikes) to {}", rows.len(), args.variables, sim.spikes, args.db.db);
    Ok(())
}

pub(crate) fn import(args: ImportArgs) -> Result<()> {
    let started = Instant::now();
    let path = &args.input;
    let csv_err = |e: csv::Error| InputError::Csv { path: path.clone(), message: e.to_string() };
    let mut reader = csvio::csv_reader(crate::input_error::open_input(path)?);
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
    job::write_readings(&args.db, &rows)?;
    info!("imported {} readings from {} in {:.2?}", rows.len(), path.display(), started.elapsed());
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    /// Model directory from `anomaly train`.
    #[arg(long, short)]
    pub(crate) models: PathBuf,
    /// Field holding the timestamp (YYYY-MM-DD HH:MM[:SS]) in each input line.
    #[arg(long, default_value = "datetime")]
    pub(crate) time_field: String,
    /// Field holding the variable name.
    #[arg(long, default_value = "variable_name")]
    pub(crate) variable_field: String,
    /// Field holding the value.
    #[arg(long, default_value = "value")]
    pub(crate) value_field: String,
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

/// The longest input line `stream` reads (a reading is well under 1 kB):
/// a longer one is answered with an error line and skipped, so reading a
/// device or a runaway writer holds at most this much.
pub(crate) const MAX_STREAM_LINE: usize = 64 * 1024;

/// Reads readings as JSON lines on stdin, writes one result line per
/// reading on stdout as soon as it is scored (a bad line gives an error
/// line with its number; the stream goes on).
pub(crate) fn stream(args: StreamArgs) -> Result<()> {
    let models = load_models(&args.models)?;
    info!("streaming with {} models: one JSON reading per line on stdin", models.variables.len());
    let out = std::io::LineWriter::new(std::io::stdout().lock());
    let (scored, errors) = stream_lines(&models, &args, std::io::stdin().lock(), out)?;
    info!("stream ended: {scored} readings scored, {errors} bad lines");
    Ok(())
}

/// The stream's loop over any reader and writer: counts of scored and bad
/// lines. A line that is not UTF-8, not JSON or longer than
/// [`MAX_STREAM_LINE`] is a bad line, never the end of the stream.
pub(crate) fn stream_lines(
    models: &anomaly_core::forecast_interval::MultiDetector,
    args: &StreamArgs,
    mut input: impl std::io::BufRead,
    mut out: impl std::io::Write,
) -> Result<(u64, u64)> {
    let (mut scored, mut errors) = (0u64, 0u64);
    let mut buf = Vec::new();
    for number in 1u64.. {
        let line = match read_line(&mut input, &mut buf).context("reading stdin")? {
            None => break,
            Some(Ok(())) => std::str::from_utf8(&buf).map_err(|e| format!("not UTF-8 text ({e})")),
            Some(Err(())) => Err(format!("line longer than {MAX_STREAM_LINE} bytes")),
        };
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        let result = line.and_then(|line| stream_reading(line, args)).and_then(|(ts, variable, y)| {
            if !models.variables.contains_key(&variable) {
                return Err(format!("no model for variable {variable:?}"));
            }
            let readings =
                LongReadings { ds: vec![ts], variable: vec![variable.clone()], value: vec![y], ..Default::default() };
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
    Ok((scored, errors))
}

/// Reads one line into `buf` (without its end of line): `None` at the end
/// of input, `Some(Err(()))` for a line over [`MAX_STREAM_LINE`] bytes,
/// whose rest is skipped without being kept.
fn read_line(input: &mut impl std::io::BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<Result<(), ()>>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !too_long && buf.len() + take <= MAX_STREAM_LINE {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
            buf.clear();
        }
        input.consume(take + usize::from(done));
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(if too_long { Err(()) } else { Ok(()) }))
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
    let empty = latest(&args.db)?.is_none();
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
    let latest = latest(&args.db)?.unwrap_or(0);
    let to = anomaly_core::time::format_timestamp(latest - 86_400);
    job::train(&args.db, &DetectorConfig::default(), None, Some(&to), &args.models)?;
    job::detect(DetectArgs {
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

fn latest(db: &Db) -> Result<Option<i64>> {
    let mut conn = db.open()?;
    crate::store::forecast::latest_reading(&mut conn, &db.tables())
}
