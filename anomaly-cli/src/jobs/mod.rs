//! The loop every SQL job shares, written once: take a batch of pending
//! rows above the job's watermark, score it, commit results + rejects +
//! state in one transaction (`crate::store` explains why that is exactly
//! once), until nothing is pending; as a worker, repeat on a poll or a
//! database notification, retrain on a schedule, back off and reconnect
//! through database errors, stop on SIGINT/SIGTERM after the current batch
//! and log a summary. Each job says only what is pending, how to score a
//! batch and what to write (the [`Job`] trait), one file per domain.

pub(crate) mod consumption;
pub(crate) mod forecast;
mod metrics;
pub(crate) mod records;

pub(crate) use metrics::WorkerMetrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use log::{info, warn};

use clap::Args;

use crate::db::{Db, DbUrl, Sql};
use crate::store::forecast::{self as plant, Tables};
use crate::store::{self, Reject, Written};

/// Ids below the job's watermark looked at again (rows committed out of id
/// order by concurrent writers): on a worker's first pass and then every
/// `MARGIN_EVERY` passes; the passes between look only above the
/// watermark, which keeps a new row's delay short.
pub(crate) const ID_MARGIN: i64 = 10_000;
const MARGIN_EVERY: u64 = 20;

/// What one scored batch writes, self-contained (it carries its table
/// names), so that a writer thread can commit it while the next batch is
/// read and scored.
pub(crate) trait Commit: Send {
    /// Writes the batch inside the commit's transaction.
    fn write(&self, tx: &mut dyn Sql, rejects: &[Reject]) -> Result<Written>;
}

/// One SQL job: what is pending, how to score it (into a [`Commit`]).
pub(crate) trait Job {
    /// A pending input row.
    type Row;
    /// The results of one batch.
    type Out: Commit;
    /// The job's name in the state table.
    fn name(&self) -> String;
    /// What rows are called in logs ("readings", "records").
    fn unit(&self) -> &'static str;
    /// Where rejects go (for logs).
    fn rejects_table(&self) -> String;
    /// Rows scored and committed per transaction.
    fn batch_size(&self) -> usize;
    /// Up to `limit` rows above id `after` without a result or reject, oldest first.
    fn pending(&mut self, db: &mut Db, after: i64, limit: usize) -> Result<Vec<Self::Row>>;
    fn id(row: &Self::Row) -> i64;
    /// Results for the scorable rows, rejects (with the reason) for the rest.
    fn score(&mut self, db: &mut Db, rows: &[Self::Row]) -> Result<(Self::Out, Vec<Reject>)>;
    /// Whether batches move the watermark (not on a time-filtered pass).
    fn moves_watermark(&self) -> bool {
        true
    }
    /// Before a pass that starts above id `after` (e.g. sizing up a backlog).
    fn start_pass(&mut self, _db: &mut Db, _after: i64) -> Result<()> {
        Ok(())
    }
    /// After the pass's last commit.
    fn end_pass(&mut self, _db: &mut Db) -> Result<()> {
        Ok(())
    }
    /// Refits the job's model from the database.
    fn retrain(&mut self, _db: &mut Db) -> Result<()> {
        Ok(())
    }
    /// The notification channel announcing new rows, if the job has one.
    /// The table whose `id`s the watermark follows (for the pending-rows
    /// metric).
    fn source_table(&self) -> Option<String> {
        None
    }

    fn channel(&self) -> Option<&'static str> {
        None
    }
}

/// The database every SQL job takes (`--db`, or `ANOMALY_DB`), and the
/// plant tables' names.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbArgs {
    /// Database: `sqlite:PATH` (the default, embedded, no server) or
    /// `postgres://user[:password]@host[:port]/database`.
    #[arg(long, env = "ANOMALY_DB", default_value = "sqlite:anomaly.db")]
    pub(crate) db: DbUrl,
    /// Readings table `(id, datetime, variable_name, value, source_file, created_at)`.
    #[arg(long, default_value = "datos_proceso")]
    readings_table: String,
    /// Results table `(id, ds, variable, y, yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score, processed_at)`.
    #[arg(long, default_value = "anomalies_detector")]
    results_table: String,
}

impl DbArgs {
    pub(crate) fn with_url(url: &str) -> DbArgs {
        DbArgs {
            db: DbUrl::new(url),
            readings_table: "datos_proceso".into(),
            results_table: "anomalies_detector".into(),
        }
    }

    pub(crate) fn tables(&self) -> Tables {
        Tables::new(&self.readings_table, &self.results_table)
    }

    /// Opens the database and creates the plant's missing tables. A bad URL
    /// or table name is the input's fault (exit 2); a database that cannot
    /// be reached is not (exit 1, and `watch` retries).
    pub(crate) fn open(&self) -> Result<Db> {
        let t = self.tables();
        let mut db = Db::open(&self.db, &t.names())?;
        plant::ensure(&mut db, &t)?;
        Ok(db)
    }
}

/// What a pass found and wrote, and each batch's latency (read to commit).
#[derive(Debug, Default, Clone)]
pub(crate) struct Pass {
    pub(crate) rows: usize,
    pub(crate) written: Written,
    pub(crate) batches: Vec<Duration>,
}

/// Scores every pending row (in batches, each committed with the job
/// state) until none is left. With a second connection (`reader`), batches
/// are read and scored on it while the previous one is written on `db`:
/// the commit order, and so the exactly-once rule, is unchanged.
pub(crate) fn run_pass<J: Job>(db: &mut Db, reader: Option<&mut Db>, job: &mut J, margin: i64) -> Result<Pass> {
    let name = job.name();
    let limit = job.batch_size().max(1);
    let after = store::job_state(db, &name)?.map_or(0, |s| s.last_reading_id - margin).max(0);
    let clock = Instant::now();
    job.start_pass(db, after)?;
    let moves = job.moves_watermark();
    // Commits a batch and adds it to the pass and the time spent writing.
    let commit = |db: &mut Db, batch: &Scored<J::Out>, (pass, writing): &mut (Pass, Duration)| -> Result<()> {
        let t = Instant::now();
        let watermark = if moves { batch.last } else { 0 };
        let written = db.transaction(|t| {
            let written = batch.out.write(t, &batch.rejects)?;
            store::advance(t, &name, watermark, written)?;
            Ok(written)
        })?;
        log::debug!(
            "batch up to id {}: {} rows, {} results, {} anomalies, {} rejects in {:.2?}",
            batch.last,
            batch.rows,
            written.results,
            written.anomalies,
            written.rejects,
            batch.started.elapsed()
        );
        *writing += t.elapsed();
        pass.written += written;
        pass.rows += batch.rows;
        metrics::batch(pass, batch.started.elapsed());
        Ok(())
    };
    let mut timings = Timings::default();
    let outcome = match reader {
        // One connection: read, score and write in turn.
        None => {
            let mut done = (Pass::default(), Duration::ZERO);
            each_batch(db, job, after, limit, &mut timings, |db, batch| commit(db, &batch, &mut done).map(|()| true))
                .map(|()| done)
        }
        Some(reader) => {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Scored<J::Out>>(1);
            let conn = &mut *db;
            std::thread::scope(|scope| {
                let writer = scope.spawn(move || -> Result<(Pass, Duration)> {
                    let mut done = (Pass::default(), Duration::ZERO);
                    for batch in rx {
                        commit(conn, &batch, &mut done)?;
                    }
                    Ok(done)
                });
                // A failed send means the writer failed: its error is reported below.
                let read = each_batch(reader, job, after, limit, &mut timings, |_, batch| Ok(tx.send(batch).is_ok()));
                drop(tx);
                let written = writer.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
                read.and(written)
            })
        }
    };
    let end = job.end_pass(db);
    let (pass, writing) = outcome?;
    end?;
    let t = Timings { writing, ..timings };
    if pass.rows > 0 {
        log::debug!(
            "pass of {} {}: {:.2?} in all; reading {:.2?}, scoring {:.2?}, writing {:.2?}",
            pass.rows,
            job.unit(),
            clock.elapsed(),
            t.reading,
            t.scoring,
            t.writing
        );
    }
    Ok(pass)
}

/// A scored batch on its way to the writer.
struct Scored<O> {
    out: O,
    rejects: Vec<Reject>,
    last: i64,
    rows: usize,
    /// When reading it began.
    started: Instant,
}

#[derive(Debug, Default)]
struct Timings {
    reading: Duration,
    scoring: Duration,
    writing: Duration,
}

/// Reads and scores the batches above `after`, oldest first, handing each
/// to `sink` (with the connection they were read on) until none is left,
/// a batch comes back short, or `sink` says stop.
fn each_batch<J: Job>(
    db: &mut Db,
    job: &mut J,
    mut after: i64,
    limit: usize,
    timings: &mut Timings,
    mut sink: impl FnMut(&mut Db, Scored<J::Out>) -> Result<bool>,
) -> Result<()> {
    while let Some(batch) = next_batch(db, job, after, limit, timings)? {
        let (last, rows) = (batch.last, batch.rows);
        if !sink(db, batch)? || rows < limit {
            break;
        }
        after = last;
    }
    Ok(())
}

/// Reads and scores the next batch above `after`, if any.
fn next_batch<J: Job>(
    db: &mut Db,
    job: &mut J,
    after: i64,
    limit: usize,
    timings: &mut Timings,
) -> Result<Option<Scored<J::Out>>> {
    let started = Instant::now();
    let rows = job.pending(db, after, limit)?;
    timings.reading += started.elapsed();
    let Some(last) = rows.last().map(J::id) else { return Ok(None) };
    let t = Instant::now();
    let (out, rejects) = job.score(db, &rows)?;
    timings.scoring += t.elapsed();
    if let Some(first) = rejects.first() {
        warn!(
            "{} {} rejected to {} (first: {} {}, {})",
            rejects.len(),
            job.unit(),
            job.rejects_table(),
            job.unit().trim_end_matches('s'),
            first.id,
            first.reason
        );
    }
    Ok(Some(Scored { out, rejects, last, rows: rows.len(), started }))
}

/// When a worker retrains.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// This long after the last training.
    Every(Duration),
    /// Daily at this wall-clock time (minutes after midnight) in a time zone.
    Daily { minutes: u32, tz: jiff::tz::TimeZone },
}

impl Schedule {
    /// Parses `--retrain-at HH:MM`, in the zone `tz` (an IANA name such as
    /// `Europe/Madrid`) or the host's own (`TZ`, else `/etc/localtime`).
    pub(crate) fn daily(at: &str, tz: Option<&str>) -> Result<Schedule> {
        let bad =
            || crate::input_error::InputError::Params(anomaly_core::Error::param("retrain-at", at, "expected HH:MM"));
        let (h, m) = at.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h >= 24 || m >= 60 {
            return Err(bad().into());
        }
        let tz = match tz {
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                crate::input_error::InputError::Params(anomaly_core::Error::param("tz", name, &e.to_string()))
            })?,
            None => jiff::tz::TimeZone::system(),
        };
        Ok(Schedule::Daily { minutes: h * 60 + m, tz })
    }

    /// The first retraining time after `now` (seconds). A daily time that a
    /// DST change skips runs as late as the gap (02:30 on a 02:00 -> 03:00
    /// night runs at 03:30); one that occurs twice runs the first time.
    pub(crate) fn next(&self, now: i64) -> i64 {
        match self {
            Schedule::Every(d) => now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Schedule::Daily { minutes, tz } => {
                let fallback = now.saturating_add(86_400);
                let Ok(today) = jiff::Timestamp::from_second(now).map(|t| t.to_zoned_datetime(tz.clone()).date())
                else {
                    return fallback;
                };
                let (h, m) = ((minutes / 60) as i8, (minutes % 60) as i8);
                (0..3)
                    .filter_map(|days| today.checked_add(jiff::Span::new().days(days)).ok())
                    .filter_map(|day| day.at(h, m, 0, 0).to_zoned_datetime(tz.clone()).ok())
                    .map(|at| at.timestamp().as_second())
                    .find(|&at| at > now)
                    .unwrap_or(fallback)
            }
        }
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    /// Between passes (a database notification can cut it short).
    pub(crate) wait: Duration,
    pub(crate) retrain: Option<Schedule>,
    /// Stop after this many passes (tests, demos).
    pub(crate) max_iterations: Option<u64>,
    /// What results are called in the summary ("scored", "flagged").
    pub(crate) verb: &'static str,
    /// Where its counters go (`--metrics-addr`).
    pub(crate) metrics: Option<Arc<WorkerMetrics>>,
}

impl Worker {
    /// A worker; with `metrics_addr`, its metrics are served there.
    pub(crate) fn new(
        job: &str,
        wait: Duration,
        retrain: Option<Schedule>,
        max_iterations: Option<u64>,
        verb: &'static str,
        metrics_addr: Option<std::net::SocketAddr>,
    ) -> Result<Worker> {
        let metrics = match metrics_addr {
            Some(addr) => {
                let m = Arc::new(WorkerMetrics::new(job));
                m.serve(addr)?;
                Some(m)
            }
            None => None,
        };
        Ok(Worker { wait, retrain, max_iterations, verb, metrics })
    }
}

/// Runs `job` until stopped: passes, retraining, backoff and reconnection.
pub(crate) fn watch<J: Job>(open: &dyn Fn() -> Result<Db>, job: &mut J, worker: &Worker) -> Result<()> {
    let stop = stop_flag();
    let mut db = open_retrying(open, &stop, worker.max_iterations)?;
    let started = Instant::now();
    let mut next_retrain = worker.retrain.as_ref().map(|s| s.next(unix_now()));
    let (mut total, mut iteration, mut failures) = (Pass::default(), 0u64, 0u32);
    while !stop.load(Ordering::SeqCst) {
        iteration += 1;
        let pass_started = Instant::now();
        let outcome = (|| -> Result<Pass> {
            if let (Some(at), Some(schedule)) = (next_retrain, &worker.retrain) {
                if unix_now() >= at {
                    job.retrain(&mut db)?;
                    next_retrain = Some(schedule.next(unix_now()));
                    if let Some(m) = &worker.metrics {
                        m.retrained();
                    }
                }
            }
            if let (Some(m), Some(source)) = (&worker.metrics, job.source_table()) {
                m.pending(backlog(&mut db, &source, &job.name())?);
            }
            let margin = if iteration % MARGIN_EVERY == 1 { ID_MARGIN } else { 0 };
            run_pass(&mut db, None, job, margin)
        })();
        match outcome {
            Ok(pass) => {
                failures = 0;
                if let Some(m) = &worker.metrics {
                    m.pass(&pass, unix_now());
                }
                if pass.rows > 0 {
                    let w = pass.written;
                    info!(
                        "iteration {iteration}: {} {} found: {} results, {} anomalies, {} rejects in {} batches, {:.2?}",
                        pass.rows,
                        job.unit(),
                        w.results,
                        w.anomalies,
                        w.rejects,
                        pass.batches.len(),
                        pass_started.elapsed()
                    );
                }
                total.rows += pass.rows;
                total.written += pass.written;
            }
            Err(err) => {
                // The database may be restarting: back off, reconnect, keep going.
                failures += 1;
                if let Some(m) = &worker.metrics {
                    m.database_error();
                }
                let pause = backoff(failures);
                // A bounded run (`--max-iterations`) counts failed passes too.
                if worker.max_iterations.is_some_and(|m| iteration >= m) {
                    return Err(err);
                }
                warn!("iteration {iteration} failed ({err:#}); retrying in {pause:.1?}");
                sleep_unless(&stop, pause);
                match open() {
                    Ok(fresh) => db = fresh,
                    // The database became one that will never work (a file
                    // replaced, a login revoked): stop with the reason.
                    Err(e) if e.chain().any(|c| c.is::<crate::input_error::InputError>()) => return Err(e),
                    Err(_) => {}
                }
                continue;
            }
        }
        if worker.max_iterations.is_some_and(|m| iteration >= m) {
            break;
        }
        wait(&mut db, job.channel(), worker.wait, &stop);
    }
    let w = total.written;
    info!(
        "summary: {iteration} iterations, {} {} {}, {} anomalies, {} rejects in {:.1?}",
        w.results,
        job.unit(),
        worker.verb,
        w.anomalies,
        w.rejects,
        started.elapsed()
    );
    Ok(())
}

/// Rows of `source` above job `name`'s watermark.
fn backlog(db: &mut Db, source: &str, name: &str) -> Result<i64> {
    let top = db.query_one(&format!("SELECT MAX(id) FROM {source}"), &[])?.and_then(|r| r[0].int()).unwrap_or(0);
    let done = store::job_state(db, name)?.map_or(0, |s| s.last_reading_id);
    Ok(top - done)
}

/// Waits `total`, or less when the database announces new rows; in slices,
/// so that a stop request is seen promptly.
fn wait(db: &mut Db, channel: Option<&str>, total: Duration, stop: &AtomicBool) {
    let Some(channel) = channel else {
        sleep_unless(stop, total);
        return;
    };
    let deadline = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) {
        let slice = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        if slice.is_zero() {
            break;
        }
        let before = Instant::now();
        if let Err(e) = db.wait(channel, slice) {
            warn!("waiting for new rows failed ({e:#})");
            sleep_unless(stop, slice);
        }
        // Woken early by a notification: process now.
        if before.elapsed() + Duration::from_millis(1) < slice {
            break;
        }
    }
}

/// Opens the database, retrying with backoff while it is unreachable (not
/// on bad input), until `stop`; a bounded worker (`--max-iterations`)
/// counts each failed attempt as a failed pass and gives up after `limit`.
pub(crate) fn open_retrying(open: &dyn Fn() -> Result<Db>, stop: &AtomicBool, limit: Option<u64>) -> Result<Db> {
    let mut failures = 0u32;
    loop {
        match open() {
            Ok(db) => return Ok(db),
            Err(e) if e.chain().any(|c| c.is::<crate::input_error::InputError>()) => return Err(e),
            Err(e) if stop.load(Ordering::SeqCst) => return Err(e),
            Err(e) if limit.is_some_and(|m| u64::from(failures) + 1 >= m) => return Err(e),
            Err(e) => {
                failures += 1;
                let pause = backoff(failures);
                warn!("database unavailable ({e:#}); retrying in {pause:.1?}");
                sleep_unless(stop, pause);
            }
        }
    }
}

/// A duration flag (`10m`, `2s`, `500ms`, `1h30m`, `2d`; a bare number is
/// seconds) in the core's one grammar; a bad value is bad input (exit 2).
pub(crate) fn parse_duration(flag: &str, text: &str) -> Result<Duration> {
    Ok(anomaly_core::time::parse_duration(flag, text, anomaly_core::time::DurationUnit::Second)
        .map_err(crate::input_error::InputError::Params)?)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The flag set on SIGINT or SIGTERM (one thread with a small runtime,
/// started on the first call; later calls share the flag).
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    Arc::clone(FLAG.get_or_init(listen_for_stop))
}

fn listen_for_stop() -> Arc<AtomicBool> {
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
    fn schedules() {
        let midnight = 1_700_006_400; // 2023-11-15 00:00 UTC
        let at = Schedule::daily("02:00", Some("UTC")).unwrap();
        assert_eq!(at.next(midnight), midnight + 7200);
        assert_eq!(at.next(midnight + 7200), midnight + 86_400 + 7200);
        assert!(Schedule::daily("25:00", None).is_err() && Schedule::daily("2", None).is_err());
        assert!(Schedule::daily("02:00", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn daily_retraining_follows_the_local_clock_across_dst() {
        let utc = |text: &str| text.parse::<jiff::Timestamp>().unwrap().as_second();
        let at = Schedule::daily("02:30", Some("Europe/Madrid")).unwrap();
        // Winter: 02:30 CET is 01:30 UTC.
        assert_eq!(at.next(utc("2026-03-27T12:00:00Z")), utc("2026-03-28T01:30:00Z"));
        // 2026-03-29 jumps from 02:00 to 03:00: 02:30 does not exist and runs at 03:30 CEST (01:30 UTC).
        assert_eq!(at.next(utc("2026-03-28T12:00:00Z")), utc("2026-03-29T01:30:00Z"));
        // Summer: 02:30 CEST is 00:30 UTC.
        assert_eq!(at.next(utc("2026-03-29T12:00:00Z")), utc("2026-03-30T00:30:00Z"));
        // 2026-10-25 repeats 02:00-03:00: 02:30 runs once, the first time (CEST, 00:30 UTC).
        assert_eq!(at.next(utc("2026-10-24T12:00:00Z")), utc("2026-10-25T00:30:00Z"));
        assert_eq!(at.next(utc("2026-10-25T00:30:00Z")), utc("2026-10-26T01:30:00Z"));
        // Somewhere the clock never changes, the same time every 24 h.
        let tokyo = Schedule::daily("02:30", Some("Asia/Tokyo")).unwrap();
        assert_eq!(tokyo.next(utc("2026-03-28T12:00:00Z")), utc("2026-03-28T17:30:00Z"));
        assert_eq!(Schedule::Every(Duration::from_secs(60)).next(10), 70);
        assert_eq!(parse_duration("--interval", "500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("--interval", "10x").is_err());
    }
}
