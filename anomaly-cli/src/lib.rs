//! The `anomaly` command line, as a library so that the fuzz targets
//! (`fuzz/`) drive the same readers and HTTP handlers in-process; the
//! binary (`main.rs`) only calls [`main`].
//!
//! Exit codes scripts can rely on: 0 success, 1 failure (I/O, internal),
//! 2 bad input or usage (a message names the file, row and column).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod csvio;
mod db;
pub mod harness;
mod input_error;
mod jobs;
mod models;
mod serve;
mod store;

use input_error::InputError;

/// Anomaly detection jobs: electricity consumption rules, isolation
/// forests, forecasting intervals and credit scoring, the SQL jobs and
/// worker that run them on SQLite or PostgreSQL, and an HTTP service.
///
/// Logs go to stderr (set RUST_LOG or -v / -q); results go to files, and
/// `--json` prints a machine-readable summary on stdout.
#[derive(Debug, Parser)]
#[command(name = "anomaly", version, propagate_version = true)]
struct Cli {
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only log warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log lines as text, or as one JSON object each (time, level, target,
    /// message) for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Electricity consumption rules: outliers, spikes, night use,
    /// plantations and flat meters, per client.
    #[command(subcommand)]
    Consumption(commands::consumption::Command),
    /// Credit-default scoring with a scikit-learn pipeline exported by
    /// `anomaly.credit_risk.export_sklearn` (identical probabilities).
    #[command(subcommand)]
    Credit(commands::credit::Command),
    /// Forecasting-interval detector (Prophet's model): train one model per
    /// process variable, flag readings outside the forecast band; from CSV
    /// files or as SQL jobs (simulate, import, train, detect, watch, stream).
    #[command(subcommand)]
    Forecast(commands::forecast::Command),
    /// Isolation forest on numeric CSVs (scikit-learn's semantics): fit a
    /// model file, score rows, summarise the anomaly share as a state.
    #[command(subcommand)]
    Iforest(commands::iforest::Command),
    /// HTTP service: the credit model behind POST /predict (and /predecir),
    /// with /metrics, /health, /openapi.json and a /docs page.
    ///
    /// Example:
    ///
    ///   anomaly serve --credit-model credit.json --addr 127.0.0.1:8080
    ///   curl -s localhost:8080/predict -H 'content-type: application/json' \
    ///        -d '{"duration": 12, "purpose": "A43", ...}'
    #[command(verbatim_doc_comment)]
    Serve(serve::ServeArgs),
    /// The plant workflow end to end on the embedded SQLite: simulate 25
    /// process variables x 14 days of 5-minute readings (when the table is
    /// empty), train one model per variable, score every reading, print a
    /// JSON summary. Then try `anomaly forecast watch` and `anomaly serve --db`.
    ///
    ///   anomaly demo                                   # sqlite:anomaly.db, models/
    ///   anomaly demo --db postgres://me@localhost/plant --models plant_models/
    #[command(verbatim_doc_comment)]
    Demo(commands::plant::DemoArgs),
    /// Alias of `anomaly forecast simulate` (kept for existing scripts).
    Simulate(commands::plant::SimulateArgs),
    /// Alias of `anomaly forecast import`.
    Import(commands::plant::ImportArgs),
    /// Alias of `anomaly forecast train`.
    Train(commands::forecast::TrainArgs),
    /// Alias of `anomaly forecast detect`.
    Detect(commands::forecast::DetectArgs),
    /// Alias of `anomaly forecast watch`.
    Watch(jobs::forecast::WatchArgs),
    /// Alias of `anomaly forecast stream`.
    Stream(commands::plant::StreamArgs),
    /// Alias of `anomaly consumption archive`.
    Archive(jobs::consumption::ArchiveArgs),
    /// Alias of `anomaly consumption restore`.
    Restore(jobs::consumption::RestoreArgs),
}

/// Parses the command line, runs the command and maps its error to the
/// exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    match cli.log_format {
        LogFormat::Text => logger.format_target(false).format_timestamp_secs(),
        LogFormat::Json => logger.format(|out, record| {
            use std::io::Write;
            let event = serde_json::json!({
                "time": jiff::Timestamp::now().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(out, "{event}")
        }),
    };
    logger.init();
    let json_logs = cli.log_format == LogFormat::Json;
    let result = match cli.command {
        Command::Consumption(cmd) => commands::consumption::run(cmd),
        Command::Credit(cmd) => commands::credit::run(cmd),
        Command::Forecast(cmd) => commands::forecast::run(cmd),
        Command::Iforest(cmd) => commands::iforest::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => commands::plant::demo(args),
        Command::Simulate(args) => commands::plant::simulate(args),
        Command::Import(args) => commands::plant::import(args),
        Command::Train(args) => commands::forecast::train(args),
        Command::Detect(args) => commands::forecast::detect(args),
        Command::Watch(args) => jobs::forecast::watch(args),
        Command::Stream(args) => commands::plant::stream(args),
        Command::Archive(args) => jobs::consumption::archive(args),
        Command::Restore(args) => jobs::consumption::restore(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let bad_input = err.chain().any(|e| e.is::<InputError>());
            if json_logs {
                let event = serde_json::json!({
                    "time": jiff::Timestamp::now().to_string(), "level": "ERROR", "target": "anomaly",
                    "message": format!("{err:#}"), "exit_code": if bad_input { 2 } else { 1 },
                });
                eprintln!("{event}");
            } else {
                eprintln!("error: {err:#}");
            }
            if bad_input {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
