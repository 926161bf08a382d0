//! The consumption team's SQL job: `anomaly consumption watch` flags new
//! readings with the consumption rules (each client's context loaded from
//! the start of a month far enough back for its baselines), writes one flag
//! row per reading (or a reject row with the reason, for a reading that
//! cannot be flagged) and upserts the monthly aggregates of the months
//! touched, in one transaction; `anomaly consumption archive|restore` move old
//! readings to the archive table and back, logged.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use anomaly_core::consumption::{ConsumptionParams, ConsumptionRules, Episode, MonthlyAggregate, Readings};
use anomaly_core::time::parse_timestamp;
use anomaly_core::traits::{Detect, ParamGuard};
use anyhow::Result;
use clap::Args;
use log::info;

use super::{parse_duration, Commit, Job, Worker};
use crate::db::{Db, DbUrl, Sql};
use crate::input_error::InputError;
use crate::jobs::DbArgs;
use crate::store::consumption::{self as store, EpisodeUpdate, Flag, MonthRow, Reading, Tables};
use crate::store::{Reject, Written};

/// Readings flagged per pass.
const BATCH: usize = 200_000;

/// The database every consumption job takes (`--db`, or `ANOMALY_DB`), and
/// its readings and flags tables' names (the others are named after them).
#[derive(Debug, Clone, Args)]
pub(crate) struct StoreArgs {
    /// Database: `sqlite:PATH` (the default, embedded, no server) or
    /// `postgres://user[:password]@host[:port]/database`.
    #[arg(long, env = "ANOMALY_DB", default_value = "sqlite:anomaly.db")]
    db: DbUrl,
    /// Readings table `(id, client_id, timestamp, kwh, created_at)`; another
    /// name than the default archives to TABLE_archive, logged in
    /// TABLE_archive_log.
    #[arg(long, default_value = store::READINGS)]
    readings_table: String,
    /// Flags table `(reading_id, client_id, timestamp, kwh, is_anomaly, types,
    /// score, severity, processed_at)`; another name than the default
    /// rejects to TABLE_rejects and aggregates to TABLE_monthly.
    #[arg(long, default_value = store::FLAGS)]
    results_table: String,
}

impl StoreArgs {
    fn tables(&self) -> Tables {
        Tables::new(&self.readings_table, &self.results_table)
    }

    /// Opens the database (a bad URL or table name is bad input, exit 2)
    /// and creates the consumption tables that are missing.
    fn open(&self) -> Result<Db> {
        let t = self.tables();
        let mut db = Db::open(&self.db, &t.names())?;
        store::ensure(&mut db, &t)?;
        Ok(db)
    }
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    db: StoreArgs,
    /// Wake this often and flag everything new (e.g. 10m).
    #[arg(long, default_value = "10m")]
    interval: String,
    /// Days of each client's history loaded before the month of its new
    /// readings (the rules' baselines); never less than the rules read (84
    /// days for the calibrated rules: a 56-day tail over 28-day baselines).
    #[arg(long, default_value_t = 35)]
    context_days: i64,
    /// Rule parameters (from `anomaly consumption params`); default rules otherwise.
    #[arg(long)]
    params: Option<PathBuf>,
    /// Named parameter set instead: calibrated (the default) or literal.
    #[arg(long, conflicts_with = "params")]
    preset: Option<String>,
    /// Stop after this many passes (tests, demos).
    #[arg(long)]
    max_iterations: Option<u64>,
    /// Serve this worker's Prometheus metrics on this address (GET /metrics),
    /// e.g. 127.0.0.1:9108.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct ArchiveArgs {
    #[command(flatten)]
    db: StoreArgs,
    /// Move readings older than this, counted back from the newest reading (e.g. 30d).
    #[arg(long)]
    older_than: String,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    db: StoreArgs,
    /// First datetime to bring back.
    #[arg(long)]
    from: String,
    /// End of the range, exclusive.
    #[arg(long)]
    to: String,
}

/// Seconds at 00:00 on the first day of `ts`'s month.
fn month_start(ts: i64) -> i64 {
    let text = anomaly_core::time::format_timestamp(ts);
    parse_timestamp(&format!("{}-01", &text[..7])).unwrap_or(ts)
}

/// Writes simulated readings into the default readings table of `db`'s database.
pub(crate) fn write_readings(db: &DbArgs, readings: &Readings) -> Result<()> {
    let args =
        StoreArgs { db: db.db.clone(), readings_table: store::READINGS.into(), results_table: store::FLAGS.into() };
    let (mut conn, t) = (args.open()?, args.tables());
    let names = readings.client_names();
    let rows: Vec<(String, i64, f64)> = (0..readings.len())
        .map(|i| (names[readings.clients()[i] as usize].clone(), readings.timestamps()[i], readings.kwh()[i]))
        .collect();
    store::insert(&mut conn, &t, &rows)?;
    info!("wrote {} readings of {} clients to {}", rows.len(), names.len(), t.readings);
    Ok(())
}

/// What a reading must satisfy to be flagged: the rules' sampling grid
/// (seconds) and the latest plausible time (a meter cannot read the future).
#[derive(Clone, Copy)]
struct Validity {
    grid: i64,
    latest: i64,
}

impl Validity {
    /// The reading, usable, or why it cannot be flagged. Each reason
    /// rejects that reading alone, and it never enters another's context.
    fn check(self, r: &Reading) -> Result<Usable, String> {
        let client = r.client.as_ref().map_err(|why| format!("client_id {why}"))?;
        let Some(ts) = r.ts else { return Err("timestamp cannot be parsed".into()) };
        let when = || anomaly_core::time::format_timestamp(ts);
        if ts.rem_euclid(self.grid) != 0 {
            return Err(format!("timestamp {} is not on the {}-minute grid", when(), self.grid / 60));
        }
        if ts > self.latest || ts < 0 {
            return Err(format!("timestamp {} is in the future or before 1970", when()));
        }
        match r.kwh {
            None => Err("kwh is missing or not a number".into()),
            Some(k) => match anomaly_core::consumption::kwh_problem(k) {
                Some(problem) => Err(format!("kwh is {problem} ({k})")),
                None => Ok((r.id, client.clone(), ts, k)),
            },
        }
    }
}

/// A usable reading: `(id, client, seconds, kwh)`.
type Usable = (i64, String, i64, f64);

/// What one batch writes, and where.
pub(crate) struct Batch {
    tables: Tables,
    rules: ConsumptionRules,
    flags: Vec<Flag>,
    /// The batch's flagged readings, one episode of one reading per rule.
    parts: Vec<Episode>,
    /// The batch's clients and the start of their context.
    clients: Vec<String>,
    from: i64,
    /// The months the batch touches, their suspicion still to score.
    months: Vec<MonthlyAggregate>,
}

/// Client-months before the batch's (`month_index` below `first`) that
/// `episodes` overlap, from the first month wholly after `from` on: an
/// episode the batch extended may change their suspicion, and every
/// episode overlapping them was loaded (it ends after `from`).
fn earlier_months(episodes: &[Episode], from: i64, first: i64) -> Vec<MonthlyAggregate> {
    use anomaly_core::time::month_index;
    let lowest = month_index(from - 1) + 1;
    let mut keys = BTreeSet::new();
    for e in episodes {
        for index in month_index(e.start).max(lowest)..=month_index(e.end - 1).min(first - 1) {
            keys.insert((e.client.clone(), index));
        }
    }
    keys.into_iter()
        .map(|(client, index)| MonthlyAggregate::new(&client, index.div_euclid(12), index.rem_euclid(12) as u32 + 1))
        .collect()
}

/// The consumption job: every pending reading flagged with its clients'
/// context (from the start of a month far enough back for the baselines),
/// or rejected with the reason; the months touched recomputed.
struct ConsumptionJob {
    tables: Tables,
    params: ConsumptionParams,
    context_days: i64,
}

impl Job for ConsumptionJob {
    type Row = Reading;
    type Out = Batch;

    fn name(&self) -> String {
        self.tables.job()
    }

    fn unit(&self) -> &'static str {
        "readings"
    }

    fn rejects_table(&self) -> String {
        self.tables.rejects.clone()
    }

    fn source_table(&self) -> Option<String> {
        Some(self.tables.readings.clone())
    }

    fn batch_size(&self) -> usize {
        BATCH
    }

    fn pending(&mut self, db: &mut Db, after: i64, limit: usize) -> Result<Vec<Reading>> {
        store::pending(db, &self.tables, after, limit)
    }

    fn id(row: &Reading) -> i64 {
        row.id
    }

    fn score(&mut self, db: &mut Db, pending: &[Reading]) -> Result<(Batch, Vec<Reject>)> {
        let rules = self.params.check()?;
        let valid = Validity { grid: i64::from(self.params.interval_minutes) * 60, latest: super::unix_now() + 86_400 };
        let mut rejects = Vec::new();
        let mut fresh: Vec<Usable> = Vec::new();
        for r in pending {
            match valid.check(r) {
                Ok(u) => fresh.push(u),
                Err(reason) => rejects.push(Reject { id: r.id, ts: r.ts, series: r.client.clone().ok(), reason }),
            }
        }
        let Some(first_ts) = fresh.iter().map(|r| r.2).min() else {
            let empty = Batch {
                tables: self.tables.clone(),
                rules,
                flags: Vec::new(),
                parts: Vec::new(),
                clients: Vec::new(),
                from: 0,
                months: Vec::new(),
            };
            return Ok((empty, rejects));
        };
        let clients: Vec<String> = fresh.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        // At least the history the rules read (the calibrated tail needs 56
        // days) before every reading of the months written, so that their
        // flags, aggregates and episodes are those of a whole-series run.
        let context_days = self.context_days.max(i64::from(self.params.history_days()));
        let from = month_start(first_ts) - context_days * 86_400;
        // The context, one reading per (client, time): the lowest id wins.
        let mut context: Vec<Usable> =
            store::context(db, &self.tables, &clients, from)?.iter().filter_map(|r| valid.check(r).ok()).collect();
        context.sort_by_key(|r| r.0);
        let mut seen: HashMap<(String, i64), i64> = HashMap::new();
        context.retain(|r| *seen.entry((r.1.clone(), r.2)).or_insert(r.0) == r.0);
        let index: HashMap<&str, u32> = clients.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
        let readings = Readings::new(
            clients.clone(),
            context.iter().map(|r| index[r.1.as_str()]).collect(),
            context.iter().map(|r| r.2).collect(),
            context.iter().map(|r| r.3).collect(),
        )?;
        let report = rules.detect(&readings)?;
        let wanted: HashSet<i64> = pending.iter().map(|p| p.id).collect();
        let f = &report.flags;
        // The pending readings' flags, and each flagged one as an episode per rule.
        let (mut flags, mut parts) = (Vec::new(), Vec::new());
        for (i, r) in context.iter().enumerate().filter(|(_, r)| wanted.contains(&r.0)) {
            for kind in f.types[i].iter() {
                parts.push(rules.reading_episode(&r.1, kind, r.2, r.3, f.usual[i], f.score[i]));
            }
            flags.push(Flag {
                reading_id: r.0,
                client: r.1.clone(),
                ts: r.2,
                kwh: r.3,
                is_anomaly: f.is_anomaly[i],
                types: f.types[i].join(";"),
                score: f.score[i],
                severity: f.severity[i].as_str().to_owned(),
            });
        }
        // Months from the first new reading's on are complete in the context.
        let first_month = anomaly_core::time::month_index(first_ts);
        let months: Vec<MonthlyAggregate> =
            report.monthly.into_iter().filter(|m| month_index(m) >= first_month).collect();
        // A usable pending reading left out of the context repeats an earlier one.
        let flagged: HashSet<i64> = flags.iter().map(|f| f.reading_id).collect();
        rejects.extend(fresh.iter().filter(|r| !flagged.contains(&r.0)).map(|r| {
            let first = seen.get(&(r.1.clone(), r.2)).copied().unwrap_or_default();
            Reject {
                id: r.0,
                ts: Some(r.2),
                series: Some(r.1.clone()),
                reason: format!("repeats reading {first} (same client and time)"),
            }
        }));
        Ok((Batch { tables: self.tables.clone(), rules, flags, parts, clients, from, months }, rejects))
    }
}

fn month_name(m: &MonthlyAggregate) -> String {
    format!("{:04}-{:02}", m.year, m.month)
}

/// `anomaly_core::time::month_index` of the month.
fn month_index(m: &MonthlyAggregate) -> i64 {
    m.year * 12 + i64::from(m.month) - 1
}

impl Commit for Batch {
    /// Merges the batch's flagged readings into the clients' stored recent
    /// episodes and scores the months from them, inside the transaction,
    /// so that episodes and months are what a whole-series run gives.
    fn write(&self, tx: &mut dyn Sql, rejects: &[Reject]) -> Result<Written> {
        let mut parts = store::episodes_after(tx, &self.tables, &self.clients, self.from)?;
        parts.extend(self.parts.iter().cloned());
        let episodes = self.rules.merge_episodes(parts);
        let mut months = self.months.clone();
        let first = self.months.iter().map(month_index).min().unwrap_or(i64::MAX);
        let earlier = earlier_months(&episodes, self.from, first);
        let n = months.len();
        months.extend(earlier);
        self.rules.score_months(&episodes, &mut months);
        let row = |m: &MonthlyAggregate| MonthRow {
            client: m.client.clone(),
            month: month_name(m),
            readings: m.n_readings as i64,
            total_kwh: m.total_kwh,
            anomalies: m.n_anomalies as i64,
            critical: m.n_critical as i64,
            night_mean_kwh: m.night_mean_kwh,
            peak_mean_kwh: m.peak_mean_kwh,
            score: m.score,
            suspicion: Some(m.suspicion),
            suspicious: Some(m.suspicious),
            rank: None,
            episodes: Some(m.n_episodes as i64),
            severe_episodes: Some(m.n_severe_episodes as i64),
            rules: Some(m.rules.join(";")),
        };
        let rows: Vec<MonthRow> = months[..n].iter().map(row).collect();
        let rescored: Vec<MonthRow> = months[n..].iter().map(row).collect();
        let update =
            EpisodeUpdate { clients: &self.clients, from: self.from, episodes: &episodes, rescored: &rescored };
        store::write(tx, &self.tables, &self.flags, rejects, &rows, &update)
    }
}

pub(crate) fn watch(args: WatchArgs) -> Result<()> {
    let params = crate::models::consumption_params(args.params.as_deref(), args.preset.as_deref())?;
    params.check().map_err(InputError::Params)?;
    let wait = parse_duration("--interval", &args.interval)?;
    let mut job = ConsumptionJob { tables: args.db.tables(), params, context_days: args.context_days };
    let worker = Worker::new(&job.name(), wait, None, args.max_iterations, "flagged", args.metrics_addr)?;
    super::watch(&|| args.db.open(), &mut job, &worker)
}

pub(crate) fn archive(args: ArchiveArgs) -> Result<()> {
    let span = parse_duration("--older-than", &args.older_than)?.as_secs() as i64;
    let (mut db, t) = (args.db.open()?, args.db.tables());
    let Some(latest) = store::latest(&mut db, &t)? else {
        info!("no readings in {}: nothing to archive", t.readings);
        return Ok(());
    };
    let cut = latest - span;
    let moved = store::archive(&mut db, &t, None, cut)?;
    info!(
        "archived {moved} readings older than {} from {} to {}",
        anomaly_core::time::format_timestamp(cut),
        t.readings,
        t.archive
    );
    Ok(())
}

pub(crate) fn restore(args: RestoreArgs) -> Result<()> {
    let bad = |what: &str, text: &str| {
        InputError::Params(anomaly_core::Error::param(what, text, "expected YYYY-MM-DD[ HH:MM[:SS]]"))
    };
    let from = parse_timestamp(&args.from).ok_or_else(|| bad("from", &args.from))?;
    let to = parse_timestamp(&args.to).ok_or_else(|| bad("to", &args.to))?;
    let (mut db, t) = (args.db.open()?, args.db.tables());
    let moved = store::archive(&mut db, &t, Some(from), to)?;
    info!("restored {moved} readings from {} to {} ({} to {})", args.from, args.to, t.archive, t.readings);
    Ok(())
}
