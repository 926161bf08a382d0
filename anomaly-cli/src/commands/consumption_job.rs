//! The consumption team's SQL job: `anomaly consumption watch` flags new
//! readings with the consumption rules (each client's context loaded from
//! the start of a month far enough back for its baselines), writes one flag
//! row per reading (or a reject row with the reason, for a reading that
//! cannot be flagged) and upserts the monthly aggregates of the months
//! touched, in one transaction; `anomaly archive` / `anomaly restore` move old
//! readings to the archive table and back, logged.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anomaly_core::consumption::{AnomalyTypes, ConsumptionParams, Readings};
use anomaly_core::persist::Persist;
use anomaly_core::time::parse_timestamp;
use anomaly_core::traits::{Detect, ParamGuard};
use anyhow::{Context, Result};
use clap::Args;
use log::{info, warn};

use super::jobs::{parse_duration, sleep_unless, stop_flag, Db, ID_MARGIN};
use crate::input_error::InputError;
use crate::store::{ConsumptionFlag, ConsumptionRow, MonthRow, Reject, Store};

/// Readings flagged per pass.
const BATCH: usize = 200_000;

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    db: Db,
    /// Wake this often and flag everything new (e.g. 10m).
    #[arg(long, default_value = "10m")]
    interval: String,
    /// Days of each client's history loaded before its new readings (the
    /// rules' baselines), rounded back to the start of a month.
    #[arg(long, default_value_t = 35)]
    context_days: i64,
    /// Rule parameters (from `anomaly consumption params`); default rules otherwise.
    #[arg(long)]
    params: Option<PathBuf>,
    /// Stop after this many passes (tests, demos).
    #[arg(long)]
    max_iterations: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct ArchiveArgs {
    #[command(flatten)]
    db: Db,
    /// Move readings older than this, counted back from the newest reading (e.g. 30d).
    #[arg(long)]
    older_than: String,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    db: Db,
    /// First datetime to bring back.
    #[arg(long)]
    from: String,
    /// End of the range, exclusive.
    #[arg(long)]
    to: String,
}

fn open(db: &Db) -> Result<Box<dyn Store>> {
    let mut store = db.open()?;
    store.ensure_consumption()?;
    Ok(store)
}

/// Seconds at 00:00 on the first day of `ts`'s month.
fn month_start(ts: i64) -> i64 {
    let text = anomaly_core::time::format_timestamp(ts);
    parse_timestamp(&format!("{}-01", &text[..7])).unwrap_or(ts)
}

/// Writes simulated readings into `consumo_lecturas`.
pub(crate) fn write_readings(db: &Db, readings: &Readings) -> Result<()> {
    let mut store = open(db)?;
    let names = readings.client_names();
    let rows: Vec<(String, i64, f64)> = (0..readings.len())
        .map(|i| (names[readings.clients()[i] as usize].clone(), readings.timestamps()[i], readings.kwh()[i]))
        .collect();
    store.insert_consumption(&rows)?;
    info!("wrote {} readings of {} clients to consumo_lecturas", rows.len(), names.len());
    Ok(())
}

/// Why a stored reading cannot be flagged, if it cannot.
fn unusable(r: &ConsumptionRow) -> Option<String> {
    if r.ts == i64::MIN {
        return Some("timestamp cannot be parsed".into());
    }
    match r.kwh {
        None => Some("kwh is missing or not a number".into()),
        Some(k) if !k.is_finite() => Some(format!("kwh is not finite ({k})")),
        Some(k) if k < 0.0 => Some(format!("kwh is negative ({k})")),
        Some(_) => None,
    }
}

fn warn_rejects(rejects: &[Reject]) {
    if let Some(first) = rejects.first() {
        warn!(
            "{} readings rejected to consumo_rechazos (first: reading {}, {})",
            rejects.len(),
            first.reading_id,
            first.reason
        );
    }
}

/// One pass: every pending reading flagged or rejected (with the reason),
/// months touched recomputed.
fn pass(store: &mut dyn Store, params: &ConsumptionParams, context_days: i64) -> Result<Option<(usize, usize)>> {
    let rules = params.check()?;
    // Readings committed out of id order by concurrent writers sit below the
    // watermark: look back ID_MARGIN ids (flagged and rejected ones are excluded).
    let after = store.job_state("consumption")?.map_or(0, |s| s.last_reading_id);
    let pending = store.pending_consumption((after - ID_MARGIN).max(0), BATCH)?;
    let Some(last) = pending.last().map(|p| p.id) else { return Ok(None) };
    let (mut usable, mut rejects): (Vec<&ConsumptionRow>, Vec<Reject>) = (vec![], vec![]);
    for r in &pending {
        match unusable(r) {
            Some(reason) => rejects.push(Reject { reading_id: r.id, ts: r.ts, variable: r.client.clone(), reason }),
            None => usable.push(r),
        }
    }
    let clients: Vec<String> = usable.iter().map(|r| r.client.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let Some(first_ts) = usable.iter().map(|r| r.ts).min() else {
        warn_rejects(&rejects);
        store.commit_consumption(&[], &rejects, &[], last)?;
        return Ok(Some((0, 0)));
    };
    let from = month_start(first_ts - context_days * 86_400);
    // The context, one reading per (client, time): the lowest id wins.
    let mut context = store.consumption_context(&clients, from)?;
    context.retain(|r| unusable(r).is_none());
    context.sort_by_key(|r| r.id);
    let mut seen: HashMap<(String, i64), i64> = HashMap::new();
    context.retain(|r| *seen.entry((r.client.clone(), r.ts)).or_insert(r.id) == r.id);
    let index: HashMap<&str, u32> = clients.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    let readings = Readings::new(
        clients.clone(),
        context.iter().map(|r| index[r.client.as_str()]).collect(),
        context.iter().map(|r| r.ts).collect(),
        context.iter().map(|r| r.kwh.unwrap_or(0.0)).collect(),
    )?;
    let report = rules.detect(&readings)?;
    let wanted: HashSet<i64> = pending.iter().map(|p| p.id).collect();
    let f = &report.flags;
    let flags: Vec<ConsumptionFlag> = context
        .iter()
        .enumerate()
        .filter(|(_, r)| wanted.contains(&r.id))
        .map(|(i, r)| ConsumptionFlag {
            reading_id: r.id,
            client: r.client.clone(),
            ts: r.ts,
            kwh: r.kwh.unwrap_or(0.0),
            is_anomaly: f.is_anomaly[i],
            types: AnomalyTypes(f.types[i].0).join(";"),
            score: f.score[i],
            severity: f.severity[i].as_str().to_owned(),
        })
        .collect();
    // Months from the first new reading's on are complete in the context.
    let first_month = anomaly_core::time::format_timestamp(first_ts)[..7].to_owned();
    let months: Vec<MonthRow> = report
        .monthly
        .iter()
        .map(|m| (format!("{:04}-{:02}", m.year, m.month), m))
        .filter(|(month, _)| *month >= first_month)
        .map(|(month, m)| MonthRow {
            client: m.client.clone(),
            month,
            readings: m.n_readings as i64,
            total_kwh: m.total_kwh,
            anomalies: m.n_anomalies as i64,
            critical: m.n_critical as i64,
            night_mean_kwh: m.night_mean_kwh,
            peak_mean_kwh: m.peak_mean_kwh,
            score: m.score,
        })
        .collect();
    // A usable pending reading left out of the context repeats an earlier one.
    let flagged: HashSet<i64> = flags.iter().map(|f| f.reading_id).collect();
    rejects.extend(usable.iter().filter(|r| !flagged.contains(&r.id)).map(|r| {
        let first = seen.get(&(r.client.clone(), r.ts)).copied().unwrap_or_default();
        Reject {
            reading_id: r.id,
            ts: r.ts,
            variable: r.client.clone(),
            reason: format!("repeats reading {first} (same client and time)"),
        }
    }));
    warn_rejects(&rejects);
    let anomalies = flags.iter().filter(|f| f.is_anomaly).count();
    let inserted = store.commit_consumption(&flags, &rejects, &months, last)?;
    Ok(Some((inserted, anomalies)))
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let params = match &args.params {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            ConsumptionParams::from_bytes(&bytes)
                .map_err(|e| InputError::Csv { path: path.clone(), message: e.to_string() })?
        }
        None => ConsumptionParams::default(),
    };
    params.check().map_err(InputError::Params)?;
    let wait = parse_duration("--interval", &args.interval)?;
    let stop = stop_flag();
    let mut store = open(&args.db)?;
    let (mut iteration, mut total, mut anomalies) = (0u64, 0usize, 0usize);
    while !stop.load(Ordering::SeqCst) {
        iteration += 1;
        match pass(store.as_mut(), &params, args.context_days) {
            Ok(Some((n, a))) => {
                info!("iteration {iteration}: {n} readings flagged, {a} anomalies");
                total += n;
                anomalies += a;
            }
            Ok(None) => {}
            Err(e) => {
                warn!("iteration {iteration} failed ({e:#}); retrying");
                sleep_unless(&stop, Duration::from_secs(1));
                if let Ok(fresh) = open(&args.db) {
                    store = fresh;
                }
            }
        }
        if args.max_iterations.is_some_and(|m| iteration >= m) {
            break;
        }
        sleep_unless(&stop, wait);
    }
    info!("summary: {iteration} iterations, {total} readings flagged, {anomalies} anomalies");
    Ok(())
}

pub(crate) fn archive(args: ArchiveArgs) -> Result<()> {
    let span = parse_duration("--older-than", &args.older_than)?.as_secs() as i64;
    let mut store = open(&args.db)?;
    let Some(latest) = store.latest_consumption()? else {
        info!("no readings: nothing to archive");
        return Ok(());
    };
    let cut = latest - span;
    let moved = store.archive_consumption(cut)?;
    info!("archived {moved} readings older than {}", anomaly_core::time::format_timestamp(cut));
    Ok(())
}

pub(crate) fn restore(args: RestoreArgs) -> Result<()> {
    let bad = |what: &str, text: &str| {
        InputError::Params(anomaly_core::Error::param(what, text, "expected YYYY-MM-DD[ HH:MM[:SS]]"))
    };
    let from = parse_timestamp(&args.from).ok_or_else(|| bad("from", &args.from))?;
    let to = parse_timestamp(&args.to).ok_or_else(|| bad("to", &args.to))?;
    let mut store = open(&args.db)?;
    let moved = store.restore_consumption(from, to)?;
    info!("restored {moved} readings from {} to {}", args.from, args.to);
    Ok(())
}
