//! `anomaly consumption ...`: the electricity consumption rules on CSV files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
use anomaly_core::consumption::{
    AnomalyType, AnomalyTypes, ColumnNames, ConsumptionParams, ConsumptionReport, HourBand, Method, Readings, Severity,
};
use anomaly_core::persist::Persist;
use anomaly_core::time::{parse_timestamp, write_timestamp};
use anomaly_core::traits::{Detect, ParamGuard};
use anyhow::Result;
use clap::{Args, Subcommand};
use log::info;

use crate::csvio;
use crate::input_error::InputError;

/// Consumption subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Flag anomalous readings in a CSV of (client, timestamp, kWh).
    ///
    /// Writes the input rows, in input order, with is_anomaly, types,
    /// score (0-1) and severity (normal, baja, media, alta, crítica).
    ///
    /// Examples:
    ///
    ///   anomaly consumption detect --input readings.csv --output flags.csv --monthly monthly.csv
    ///   anomaly consumption detect --input readings.csv --output flags.csv --episodes episodes.csv
    ///   anomaly consumption detect --input readings.csv --output flags.csv --preset literal   # the analysts' rules as written
    ///
    ///   # half-hourly meter data, summed to hourly, with its own column names
    ///   anomaly consumption detect --input sgsc.csv --output flags.csv \
    ///       --client-col customer_id --time-col reading_datetime \
    ///       --value-col general_supply_kwh --interval 30m --aggregate 1h
    ///
    ///   # stricter outliers and a 22:00-06:00 night, summary as JSON
    ///   anomaly consumption detect --input r.csv --output f.csv \
    ///       --set zscore_threshold=4 --night-band 22-6 --json
    #[command(verbatim_doc_comment)]
    Detect(DetectArgs),
    /// Write realistic synthetic readings with injected anomalies.
    ///
    /// Example:
    ///
    ///   anomaly consumption simulate --clients 50 --days 60 --output readings.csv --events events.csv
    #[command(verbatim_doc_comment)]
    Simulate(SimulateArgs),
    /// Flag new readings of the `consumo_lecturas` table every --interval:
    /// one row per reading in `consumo_anomalias` (types, 0-1 score,
    /// severity), or in `consumo_rechazos` with the reason when it cannot be
    /// flagged (bad kWh or time, a repeated reading), and the monthly
    /// aggregates of the months touched in `consumo_mensual`, in one
    /// transaction (each reading exactly once).
    ///
    ///   anomaly consumption simulate --db sqlite:energy.db --clients 50 --days 60
    ///   anomaly consumption watch --db sqlite:energy.db --interval 10m
    #[command(verbatim_doc_comment)]
    Watch(crate::jobs::consumption::WatchArgs),
    /// Move readings older than a span (counted back from the newest
    /// reading) to `consumo_lecturas_archivo`, logged in
    /// `consumo_archivo_log`, in one transaction.
    ///
    ///   anomaly consumption archive --db sqlite:energy.db --older-than 30d
    #[command(verbatim_doc_comment)]
    Archive(crate::jobs::consumption::ArchiveArgs),
    /// Bring archived readings of a time range back, logged.
    ///
    ///   anomaly consumption restore --db sqlite:energy.db --from 2024-01-01 --to 2024-02-01
    #[command(verbatim_doc_comment)]
    Restore(crate::jobs::consumption::RestoreArgs),
    /// Print the rule parameters (the defaults, or a preset's) as a
    /// parameter file for --params.
    ///
    /// Examples:
    ///
    ///   anomaly consumption params > rules.json   # edit, then: detect --params rules.json
    ///   anomaly consumption params --preset literal > literal.json
    #[command(verbatim_doc_comment)]
    Params(ParamsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// CSV with a header row, one reading per row.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write the flagged readings (CSV).
    #[arg(long, short)]
    output: PathBuf,
    /// Also write monthly aggregates per client (CSV).
    #[arg(long)]
    monthly: Option<PathBuf>,
    /// Also write one summary row per client (CSV).
    #[arg(long)]
    clients: Option<PathBuf>,
    /// Also write the episodes (CSV): runs of one rule's flags per client,
    /// with start, end, peak score and severity, and kWh above the usual level.
    #[arg(long)]
    episodes: Option<PathBuf>,
    /// Column holding the client id.
    #[arg(long, default_value = "client_id")]
    client_col: String,
    /// Column holding the timestamp (YYYY-MM-DD HH:MM[:SS], T allowed).
    #[arg(long, default_value = "timestamp")]
    time_col: String,
    /// Column holding the consumption in kWh.
    #[arg(long, default_value = "kwh")]
    value_col: String,
    /// Sampling interval of the input: 15m, 30m, 1h, ...
    #[arg(long, value_parser = parse_minutes)]
    interval: Option<u32>,
    /// Sum readings into complete buckets of this length (e.g. 1h) first.
    #[arg(long, value_parser = parse_aggregate)]
    aggregate: Option<u32>,
    /// Named parameter set: calibrated (the default) or literal (the
    /// analysts' rules as written; about 7x more flags on ordinary readings).
    #[arg(long, conflicts_with = "params")]
    preset: Option<String>,
    /// Which rules run, on top of the parameters: calibrated or literal.
    #[arg(long)]
    method: Option<Method>,
    /// Night band as START-END hours (wraps past midnight), e.g. 0-6, 22-6.
    #[arg(long)]
    night_band: Option<HourBand>,
    /// Peak band for monthly aggregates, e.g. 18-22.
    #[arg(long)]
    peak_band: Option<HourBand>,
    /// Parameter file (from `anomaly consumption params`).
    #[arg(long)]
    params: Option<PathBuf>,
    /// Set one numeric parameter, NAME=VALUE (repeatable), e.g. zscore_threshold=4.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Number of clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Days per client.
    #[arg(long, default_value_t = 60)]
    days: u32,
    /// First day, YYYY-MM-DD.
    #[arg(long, default_value = "2024-01-01")]
    start: String,
    /// Sampling interval: 15m, 30m, 1h, ...
    #[arg(long, value_parser = parse_minutes, default_value = "1h")]
    interval: u32,
    /// Share of clients with a plantation or flat meter (spikes: rate / 500 per reading).
    #[arg(long, default_value_t = 0.2)]
    anomaly_rate: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where to write the readings (CSV).
    #[arg(long, short, required_unless_present = "db")]
    output: Option<PathBuf>,
    /// Or write them into the `consumo_lecturas` table of this database
    /// (`sqlite:PATH` or `postgres://...`).
    #[arg(long)]
    db: Option<String>,
    /// Also write the injected events (CSV).
    #[arg(long)]
    events: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ParamsArgs {
    /// Named parameter set: calibrated (the default) or literal.
    #[arg(long)]
    preset: Option<String>,
}

/// A sampling interval flag in the core's duration grammar (`30m`, `1h`;
/// a bare number is minutes); clap reports a bad value with exit code 2.
fn parse_minutes(text: &str) -> Result<u32, anomaly_core::Error> {
    anomaly_core::time::parse_minutes("interval", text)
}

/// [`parse_minutes`] for `--aggregate`.
fn parse_aggregate(text: &str) -> Result<u32, anomaly_core::Error> {
    anomaly_core::time::parse_minutes("aggregate", text)
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Detect(args) => detect(args),
        Command::Simulate(args) => simulate_cmd(args),
        Command::Watch(args) => crate::jobs::consumption::watch(args),
        Command::Archive(args) => crate::jobs::consumption::archive(args),
        Command::Restore(args) => crate::jobs::consumption::restore(args),
        Command::Params(args) => {
            let bytes = crate::models::consumption_params(None, args.preset.as_deref())?.to_bytes()?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
    }
}

fn build_params(args: &DetectArgs) -> Result<ConsumptionParams> {
    let mut params = crate::models::consumption_params(args.params.as_deref(), args.preset.as_deref())?;
    if !args.set.is_empty() {
        let mut value = serde_json::to_value(&params)?;
        for item in &args.set {
            let bad = |reason: &str| InputError::Params(anomaly_core::Error::param("--set", item, reason));
            let (name, raw) = item.split_once('=').ok_or_else(|| bad("expected NAME=VALUE"))?;
            let slot =
                value.get_mut(name.trim()).ok_or_else(|| bad("unknown parameter; see `anomaly consumption params`"))?;
            *slot = serde_json::from_str(raw.trim()).map_err(|_| bad("value must be a number"))?;
        }
        params = serde_json::from_value(value)
            .map_err(|e| InputError::Params(anomaly_core::Error::param("--set", e, "wrong type")))?;
    }
    if let Some(method) = args.method {
        params.method = method;
    }
    if let Some(band) = args.night_band {
        params.night_band = band;
    }
    if let Some(band) = args.peak_band {
        params.peak_band = band;
    }
    let interval = args.aggregate.or(args.interval);
    if let Some(minutes) = interval {
        params.interval_minutes = minutes;
    }
    Ok(params)
}

fn detect(args: DetectArgs) -> Result<()> {
    let started = Instant::now();
    let params = build_params(&args)?;
    let rules = params.check().map_err(InputError::Params)?;
    let names =
        ColumnNames { client: args.client_col.clone(), time: args.time_col.clone(), value: args.value_col.clone() };
    let mut readings = csvio::read_readings(&args.input, &names)?;
    info!(
        "read {} readings of {} clients from {} in {:.2?}",
        readings.len(),
        readings.client_names().len(),
        args.input.display(),
        started.elapsed()
    );
    if let Some(to) = args.aggregate {
        let from = args.interval.unwrap_or(60);
        readings = readings.aggregate(from, to).map_err(|e| InputError::data(&args.input, e))?;
        info!("aggregated {from}-minute readings into {} complete {to}-minute buckets", readings.len());
    }
    let t = Instant::now();
    let report = rules.detect(&readings).map_err(|e| InputError::data(&args.input, e))?;
    info!("detected in {:.2?}", t.elapsed());

    write_flags(&args.output, &names, &readings, &report)?;
    if let Some(path) = &args.monthly {
        write_monthly(path, &report)?;
    }
    if let Some(path) = &args.clients {
        write_clients(path, &report)?;
    }
    if let Some(path) = &args.episodes {
        write_episodes(path, &report)?;
    }
    let summary = summary_json(&readings, &report, started);
    info!(
        "{} of {} readings anomalous ({:.2}%), {} of {} clients suspicious; total {:.2?}",
        summary["anomalies"],
        summary["readings"],
        summary["anomaly_percent"].as_f64().unwrap_or(0.0),
        summary["suspicious_clients"],
        summary["clients"],
        started.elapsed()
    );
    if args.json {
        println!("{summary}");
    }
    Ok(())
}

fn summary_json(readings: &Readings, report: &ConsumptionReport, started: Instant) -> serde_json::Value {
    let flags = &report.flags;
    let anomalies = flags.is_anomaly.iter().filter(|&&a| a).count();
    let by_type: serde_json::Map<_, _> = AnomalyType::ALL
        .iter()
        .enumerate()
        .map(|(k, t)| (t.as_str().to_owned(), report.clients.iter().map(|c| c.n_by_type[k]).sum::<usize>().into()))
        .collect();
    let by_severity: serde_json::Map<_, _> = Severity::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), flags.severity.iter().filter(|x| *x == s).count().into()))
        .collect();
    serde_json::json!({
        "readings": readings.len(),
        "anomalies": anomalies,
        "anomaly_percent": 100.0 * anomalies as f64 / readings.len() as f64,
        "clients": report.clients.len(),
        "suspicious_clients": report.clients.iter().filter(|c| c.suspicious).count(),
        "by_type": by_type,
        "by_severity": by_severity,
        "seconds": started.elapsed().as_secs_f64(),
    })
}

fn write_flags(path: &Path, names: &ColumnNames, readings: &Readings, report: &ConsumptionReport) -> Result<()> {
    let header =
        [names.client.as_str(), names.time.as_str(), names.value.as_str(), "is_anomaly", "types", "score", "severity"]
            .map(|h| String::from_utf8_lossy(&csvio::csv_field(h)).into_owned())
            .join(",");
    let clients: Vec<Vec<u8>> = readings.client_names().iter().map(|c| csvio::csv_field(c)).collect();
    let types: Vec<String> = (0..32u8).map(|m| AnomalyTypes(m).join(";")).collect();
    let flags = &report.flags;
    csvio::write_rows_parallel(path, &header, readings.len(), |row, out| {
        out.extend_from_slice(&clients[readings.clients()[row] as usize]);
        out.push(b',');
        anomaly_core::time::push_timestamp(out, readings.timestamps()[row]);
        out.push(b',');
        csvio::push_f64(out, readings.kwh()[row]);
        out.extend_from_slice(if flags.is_anomaly[row] { b",true," } else { b",false," });
        out.extend_from_slice(types[usize::from(flags.types[row].0 & 31)].as_bytes());
        out.push(b',');
        csvio::push_f64(out, flags.score[row]);
        out.push(b',');
        out.extend_from_slice(flags.severity[row].as_str().as_bytes());
    })
}

fn write_monthly(path: &Path, report: &ConsumptionReport) -> Result<()> {
    let mut w = csvio::writer(path)?;
    w.write_record([
        "client",
        "year",
        "month",
        "n_readings",
        "total_kwh",
        "mean_kwh",
        "min_kwh",
        "max_kwh",
        "n_anomalies",
        "n_critical",
        "night_mean_kwh",
        "peak_mean_kwh",
        "score",
        "suspicion",
        "suspicious",
        "rank",
        "n_episodes",
        "n_severe_episodes",
        "rules",
    ])?;
    for m in &report.monthly {
        w.write_record([
            m.client.clone(),
            m.year.to_string(),
            m.month.to_string(),
            m.n_readings.to_string(),
            m.total_kwh.to_string(),
            m.mean_kwh.to_string(),
            m.min_kwh.to_string(),
            m.max_kwh.to_string(),
            m.n_anomalies.to_string(),
            m.n_critical.to_string(),
            csvio::opt(m.night_mean_kwh),
            csvio::opt(m.peak_mean_kwh),
            m.score.to_string(),
            m.suspicion.to_string(),
            m.suspicious.to_string(),
            m.rank.to_string(),
            m.n_episodes.to_string(),
            m.n_severe_episodes.to_string(),
            m.rules.join(";"),
        ])?;
    }
    csvio::finish(w, path)
}

fn write_episodes(path: &Path, report: &ConsumptionReport) -> Result<()> {
    let mut w = csvio::writer(path)?;
    let header = ["client", "type", "start", "end", "n_readings", "peak_score", "peak_severity", "kwh_above_baseline"];
    w.write_record(header)?;
    for e in &report.episodes {
        w.write_record([
            e.client.clone(),
            e.kind.as_str().to_owned(),
            anomaly_core::time::format_timestamp(e.start),
            anomaly_core::time::format_timestamp(e.end),
            e.n_readings.to_string(),
            e.peak_score.to_string(),
            e.peak_severity.as_str().to_owned(),
            e.kwh_above_baseline.to_string(),
        ])?;
    }
    csvio::finish(w, path)
}

fn write_clients(path: &Path, report: &ConsumptionReport) -> Result<()> {
    let mut w = csvio::writer(path)?;
    let mut header = vec!["client".to_owned(), "n_readings".into(), "n_anomalies".into()];
    header.extend(AnomalyType::ALL.iter().map(|t| format!("n_{}", t.as_str())));
    header.extend(["n_critical".into(), "n_severe".into(), "max_score".into(), "suspicious".into()]);
    w.write_record(&header)?;
    for c in &report.clients {
        let mut row = vec![c.client.clone(), c.n_readings.to_string(), c.n_anomalies.to_string()];
        row.extend(c.n_by_type.iter().map(usize::to_string));
        row.extend([
            c.n_critical.to_string(),
            c.n_severe.to_string(),
            c.max_score.to_string(),
            c.suspicious.to_string(),
        ]);
        w.write_record(&row)?;
    }
    csvio::finish(w, path)
}

fn simulate_cmd(args: SimulateArgs) -> Result<()> {
    let start = parse_timestamp(&args.start)
        .ok_or_else(|| InputError::Params(anomaly_core::Error::param("--start", &args.start, "expected YYYY-MM-DD")))?;
    let spec = SimulationSpec {
        clients: args.clients,
        days: args.days,
        start,
        interval_minutes: args.interval,
        anomaly_rate: args.anomaly_rate,
        seed: args.seed,
    };
    let (readings, events) = simulate(&spec).map_err(InputError::Params)?;
    if let Some(url) = &args.db {
        crate::jobs::consumption::write_readings(&crate::jobs::DbArgs::with_url(url), &readings)?;
    }
    if let Some(output) = &args.output {
        let clients: Vec<Vec<u8>> = readings.client_names().iter().map(|c| csvio::csv_field(c)).collect();
        csvio::write_rows_parallel(output, "client_id,timestamp,kwh", readings.len(), |row, out| {
            out.extend_from_slice(&clients[readings.clients()[row] as usize]);
            out.push(b',');
            anomaly_core::time::push_timestamp(out, readings.timestamps()[row]);
            out.push(b',');
            csvio::push_f64(out, readings.kwh()[row]);
        })?;
    }
    if let Some(path) = &args.events {
        let mut w = csvio::writer(path)?;
        w.write_record(["client_id", "kind", "start", "end"])?;
        for e in &events {
            let (mut a, mut b) = (String::new(), String::new());
            write_timestamp(&mut a, e.start);
            write_timestamp(&mut b, e.end);
            w.write_record([e.client.as_str(), e.kind.as_str(), &a, &b])?;
        }
        csvio::finish(w, path)?;
    }
    info!(
        "wrote {} readings of {} clients ({} injected events) to {}",
        readings.len(),
        args.clients,
        events.len(),
        args.output
            .as_ref()
            .map_or_else(|| args.db.as_deref().map(crate::db::redact).unwrap_or_default(), |p| p.display().to_string())
    );
    Ok(())
}
