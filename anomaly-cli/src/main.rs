//! The `anomaly` command line.
//!
//! Exit codes scripts can rely on: 0 success, 1 failure (I/O, internal),
//! 2 bad input or usage (a message names the file, row and column).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod csvio;
mod input_error;
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
    #[command(subcommand)]
    command: Command,
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
    /// process variable, flag readings outside the forecast band.
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
    /// JSON summary. Then try `anomaly watch` and `anomaly serve --db`.
    ///
    ///   anomaly demo                                   # sqlite:anomaly.db, models/
    ///   anomaly demo --db postgres://me@localhost/plant --models plant_models/
    #[command(verbatim_doc_comment)]
    Demo(commands::jobs::DemoArgs),
    /// Write simulated process readings (trend, daily and weekly cycles,
    /// noise, spikes at --anomaly-ratio) into the readings table.
    ///
    ///   anomaly simulate --db sqlite:plant.db --variables 25 --days 14
    #[command(verbatim_doc_comment)]
    Simulate(commands::jobs::SimulateArgs),
    /// Load a CSV of readings (long: datetime,variable_name,value; or wide:
    /// datetime plus one column per variable) into the readings table.
    ///
    ///   anomaly import --db sqlite:plant.db --input history.csv
    ///   anomaly import --db sqlite:plant.db --input wide.csv --layout wide
    #[command(verbatim_doc_comment)]
    Import(commands::jobs::ImportArgs),
    /// Train one forecasting model per variable from the readings table.
    ///
    ///   anomaly train --db sqlite:plant.db --models models/ [--from 2024-03-01 --to 2024-03-15]
    #[command(verbatim_doc_comment)]
    Train(commands::jobs::TrainArgs),
    /// Score every reading that has no result yet, once, and exit.
    ///
    ///   anomaly detect --db sqlite:plant.db --models models/ --once [--lookback 1h] [--json]
    #[command(verbatim_doc_comment)]
    Detect(commands::jobs::DetectArgs),
    /// Keep scoring new readings: every --poll-interval (individual mode) or
    /// every --interval (worker mode); retrain with --retrain-every or
    /// --retrain-at. Each reading is processed exactly once, also across
    /// restarts and overlapping workers; Ctrl+C or SIGTERM finish the batch
    /// and print a summary.
    ///
    ///   anomaly watch --db sqlite:plant.db --models models/ --poll-interval 2s
    ///   anomaly watch --db sqlite:plant.db --models models/ --interval 10m --retrain-at 02:00
    #[command(verbatim_doc_comment)]
    Watch(commands::jobs::WatchArgs),
    /// Score readings arriving as JSON lines on stdin, one result line per
    /// reading on stdout as soon as it is scored; no database. Feed it from
    /// any message broker's console consumer or a pipe:
    ///
    ///   kcat -C -b broker:9092 -t readings -u | anomaly stream --models models/ > results.jsonl
    ///   echo '{"datetime": "2024-03-18 10:00:00", "variable_name": "VAR_01", "value": 51.2}' \
    ///       | anomaly stream --models models/
    ///
    /// A bad line gives {"error": {"line": N, "message": ...}} and the stream goes on.
    #[command(verbatim_doc_comment)]
    Stream(commands::jobs::StreamArgs),
    /// Move consumption readings older than a span (counted back from the
    /// newest reading) to `consumo_lecturas_archivo`, logged in
    /// `consumo_archivo_log`, in one transaction.
    ///
    ///   anomaly archive --db sqlite:energy.db --older-than 30d
    #[command(verbatim_doc_comment)]
    Archive(commands::consumption_job::ArchiveArgs),
    /// Bring archived consumption readings of a time range back, logged.
    ///
    ///   anomaly restore --db sqlite:energy.db --from 2024-01-01 --to 2024-02-01
    #[command(verbatim_doc_comment)]
    Restore(commands::consumption_job::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .format_timestamp_secs()
        .init();
    let result = match cli.command {
        Command::Consumption(cmd) => commands::consumption::run(cmd),
        Command::Credit(cmd) => commands::credit::run(cmd),
        Command::Forecast(cmd) => commands::forecast::run(cmd),
        Command::Iforest(cmd) => commands::iforest::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => commands::jobs::demo(args),
        Command::Simulate(args) => commands::jobs::simulate(args),
        Command::Import(args) => commands::jobs::import(args),
        Command::Train(args) => commands::jobs::train(args),
        Command::Detect(args) => commands::jobs::detect(args),
        Command::Watch(args) => commands::jobs::watch(args),
        Command::Stream(args) => commands::jobs::stream(args),
        Command::Archive(args) => commands::consumption_job::archive(args),
        Command::Restore(args) => commands::consumption_job::restore(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let bad_input = err.chain().any(|e| e.is::<InputError>());
            eprintln!("error: {err:#}");
            if bad_input {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
