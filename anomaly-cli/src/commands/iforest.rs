//! `anomaly iforest ...`: fit an isolation forest on a CSV, score CSVs with
//! it, and summarise the share of anomalies as a dashboard state.

use std::path::PathBuf;
use std::time::Instant;

use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::{
    summarize, Auto, Contamination, FittedIsolationForest, IsolationForestParams, MaxFeatures, MaxSamples,
    StateThresholds,
};
use anomaly_core::persist::Persist;
use anomaly_core::traits::{Fit, ParamGuard};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use log::{info, warn};
use ndarray::ArrayView2;

use crate::csvio;
use crate::input_error::InputError;

/// Isolation forest subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Fit a forest on the numeric columns of a CSV and save it as a model file.
    ///
    /// Examples:
    ///
    ///   anomaly iforest fit --input sensors.csv --model forest.json
    ///
    ///   # four columns, 5% expected anomalies, extended forest
    ///   anomaly iforest fit --input sensors.csv --model forest.json \
    ///       --columns voltage,current,power,temperature --contamination 0.05 --extension-level 1
    #[command(verbatim_doc_comment)]
    Fit(FitArgs),
    /// Score a CSV with a saved forest: one row per input row with
    /// score (lower = more abnormal), decision (negative = anomaly) and
    /// label (-1 anomaly, 1 normal), plus a summary with the state.
    /// --explain adds the sensor that pushed each row most toward anomalous
    /// (top_feature) and its share of that push (top_share, Shapley values
    /// of the mean path length), and counts them over the anomalies.
    ///
    /// Examples:
    ///
    ///   anomaly iforest score --model forest.json --input today.csv --output scores.csv --json
    ///   # {"total":1440,"anomalies":12,"percent":0.83,"state":"Normal",...}
    ///
    ///   anomaly iforest score --model forest.json --input today.csv --output scores.csv --explain --json
    ///   # scores.csv: score,decision,label,top_feature,top_share
    ///   # {...,"top_features":{"temperature":9,"voltage":3}}
    #[command(verbatim_doc_comment)]
    Score(ScoreArgs),
    /// Write simulated sensor records (voltage, current, power,
    /// temperature) into a SQL table, at once or as a live stream.
    ///
    ///   anomaly iforest simulate --db sqlite:energy.db --batch-size 5000
    ///   # a stream: 5 records a second, 12% anomalous, at most 20,000 kept
    ///   anomaly iforest simulate --db sqlite:energy.db --interval 1s --batch-size 5 \
    ///       --anomaly-ratio 0.12 --max-records 20000
    #[command(verbatim_doc_comment)]
    Simulate(crate::jobs::records::SimulateArgs),
    /// Score new records of a SQL table every --interval: one score per
    /// record (TABLE_scores; a record with a missing or infinite value goes
    /// to TABLE_rejects with the column named) and one metrics row per pass
    /// (TABLE_metrics: total, anomalies, percent, state), each pass in one
    /// transaction;
    /// retrain from the newest records with --retrain-every.
    ///
    ///   anomaly iforest watch --db sqlite:energy.db --model forest.json --interval 5s --retrain-every 300s
    #[command(verbatim_doc_comment)]
    Watch(crate::jobs::records::WatchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FitArgs {
    /// CSV with a header row.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write the model file (JSON).
    #[arg(long, short)]
    model: PathBuf,
    /// Comma-separated feature columns (default: every column).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Number of trees.
    #[arg(long, default_value_t = 100)]
    n_estimators: usize,
    /// Rows per tree: auto (min(256, n)), a count, or a fraction in (0, 1].
    #[arg(long, default_value = "auto", value_parser = parse_max_samples)]
    max_samples: MaxSamples,
    /// Expected share of anomalies in (0, 0.5], or auto (offset -0.5).
    #[arg(long, default_value = "auto", value_parser = parse_contamination)]
    contamination: Contamination,
    /// Features per tree: a count, or a fraction in (0, 1].
    #[arg(long, default_value = "1.0", value_parser = parse_max_features)]
    max_features: MaxFeatures,
    /// Draw rows with replacement.
    #[arg(long)]
    bootstrap: bool,
    /// Random seed (the forest is the same for any number of threads).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// 0 = axis-parallel cuts; k > 0 = hyperplanes through k + 1 features.
    #[arg(long, default_value_t = 0)]
    extension_level: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// Model file from `anomaly iforest fit` (or `IsolationForest.save`).
    #[arg(long, short)]
    model: PathBuf,
    /// CSV with a header row holding the model's columns.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write score, decision and label per row (CSV).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// From this percent of anomalous rows the state is Precaución.
    #[arg(long, default_value_t = 5.0)]
    caution_percent: f64,
    /// From this percent it is Crítico.
    #[arg(long, default_value_t = 10.0)]
    critical_percent: f64,
    /// Explain each row: the feature pushing it most toward anomalous and
    /// its share of that push (axis-parallel forests).
    #[arg(long)]
    explain: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_max_samples(s: &str) -> Result<MaxSamples, String> {
    if s == "auto" {
        return Ok(MaxSamples::Auto(Auto::Auto));
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(MaxSamples::Count(n));
    }
    s.parse::<f64>().map(MaxSamples::Fraction).map_err(|_| format!("expected auto, a count or a fraction, got {s:?}"))
}

fn parse_max_features(s: &str) -> Result<MaxFeatures, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(MaxFeatures::Count(n));
    }
    s.parse::<f64>().map(MaxFeatures::Fraction).map_err(|_| format!("expected a count or a fraction, got {s:?}"))
}

fn parse_contamination(s: &str) -> Result<Contamination, String> {
    if s == "auto" {
        return Ok(Contamination::Auto(Auto::Auto));
    }
    s.parse::<f64>().map(Contamination::Fraction).map_err(|_| format!("expected auto or a fraction, got {s:?}"))
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Fit(args) => fit(args),
        Command::Score(args) => score(args),
        Command::Simulate(args) => crate::jobs::records::simulate(args),
        Command::Watch(args) => crate::jobs::records::watch(args),
    }
}

fn matrix<'a>(path: &std::path::Path, m: &'a csvio::Matrix, expected: Option<usize>) -> Result<FeatureMatrix<'a>> {
    let view = ArrayView2::from_shape((m.rows, m.columns.len()), &m.values)
        .map_err(|e| InputError::Csv { path: path.to_owned(), message: e.to_string() })?;
    Ok(FeatureMatrix::new(view, expected).map_err(|e| InputError::data(path, e))?)
}

fn fit(args: FitArgs) -> Result<()> {
    let started = Instant::now();
    let params = IsolationForestParams {
        n_estimators: args.n_estimators,
        max_samples: args.max_samples,
        contamination: args.contamination,
        max_features: args.max_features,
        bootstrap: args.bootstrap,
        random_state: args.seed,
        extension_level: args.extension_level,
    };
    let forest = params.check().map_err(InputError::Params)?;
    let data = csvio::read_matrix(&args.input, &args.columns)?;
    let x = matrix(&args.input, &data, None)?;
    if let MaxSamples::Count(c) = args.max_samples {
        if c as usize > x.n_rows() {
            warn!("max_samples ({c}) is greater than the {} rows; using {} rows per tree", x.n_rows(), x.n_rows());
        }
    }
    let mut model = forest.fit(&x).map_err(|e| InputError::data(&args.input, e))?;
    model.feature_names = data.columns.clone();
    std::fs::write(&args.model, model.to_bytes()?).with_context(|| format!("cannot write {}", args.model.display()))?;
    info!(
        "fitted {} trees on {} rows x {} columns ({}) in {:.2?}; offset {:.4}; wrote {}",
        model.n_trees(),
        x.n_rows(),
        x.n_features(),
        data.columns.join(", "),
        started.elapsed(),
        model.offset,
        args.model.display()
    );
    Ok(())
}

fn score(args: ScoreArgs) -> Result<()> {
    let started = Instant::now();
    let model: FittedIsolationForest = crate::models::load(&args.model)?;
    let data = csvio::read_matrix(&args.input, &model.feature_names)?;
    let x = matrix(&args.input, &data, Some(model.n_features))?;
    let scores = model.score_samples(&x).map_err(|e| InputError::data(&args.input, e))?;
    let labels: Vec<i8> = scores.iter().map(|s| if s - model.offset < 0.0 { -1 } else { 1 }).collect();
    let explained = if args.explain {
        let e = model.explain(&x).map_err(InputError::Params)?;
        Some((0..labels.len()).map(|r| e.top(r)).collect::<Vec<_>>())
    } else {
        None
    };
    let name = |j: usize| data.columns.get(j).cloned().unwrap_or_else(|| format!("x{j}"));
    let fields: Vec<Vec<u8>> = (0..model.n_features).map(|j| csvio::csv_field(&name(j))).collect();
    let thresholds = StateThresholds { caution_percent: args.caution_percent, critical_percent: args.critical_percent };
    let summary = summarize(&labels, thresholds).map_err(InputError::Params)?;
    if let Some(path) = &args.output {
        let header =
            if explained.is_some() { "score,decision,label,top_feature,top_share" } else { "score,decision,label" };
        csvio::write_rows_parallel(path, header, scores.len(), |row, out| {
            csvio::push_f64(out, scores[row]);
            out.push(b',');
            csvio::push_f64(out, scores[row] - model.offset);
            out.extend_from_slice(if labels[row] < 0 { b",-1" } else { b",1" });
            if let Some(tops) = &explained {
                out.push(b',');
                if let Some((j, share)) = tops[row] {
                    out.extend_from_slice(&fields[j]);
                    out.push(b',');
                    csvio::push_f64(out, share);
                } else {
                    out.push(b',');
                }
            }
        })?;
    }
    info!(
        "{} of {} rows anomalous ({:.2}%): {}; {:.2?}",
        summary.anomalies,
        summary.total,
        summary.percent,
        summary.state.as_str(),
        started.elapsed()
    );
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if let Some(tops) = &explained {
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for (top, _) in tops.iter().zip(&labels).filter(|(_, label)| **label < 0) {
                if let Some((j, _)) = top {
                    *counts.entry(name(*j)).or_default() += 1;
                }
            }
            value["top_features"] = serde_json::to_value(counts)?;
        }
        value["seconds"] = started.elapsed().as_secs_f64().into();
        println!("{value}");
    }
    Ok(())
}
