//! A worker's metrics for Prometheus, served on `--metrics-addr` while it
//! runs: rows processed, results, anomalies, rejects, retrains and database
//! errors (counters), rows pending above the watermark when a pass starts
//! and the time of the last pass that caught up (gauges: lag is `time() -
//! anomaly_worker_last_pass_timestamp_seconds`), and batch latency (a
//! histogram, read to commit).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::routing::get;
use log::info;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::Pass;

pub(crate) struct WorkerMetrics {
    registry: Registry,
    rows: Counter,
    results: Counter,
    anomalies: Counter,
    rejects: Counter,
    retrains: Counter,
    database_errors: Counter,
    pending: Gauge,
    last_pass: Gauge<f64, AtomicU64>,
    batch_seconds: Histogram,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl WorkerMetrics {
    /// The metrics of the job called `job` (a label on every series).
    pub(crate) fn new(job: &str) -> Self {
        let mut root = Registry::with_prefix("anomaly_worker");
        let registry = root.sub_registry_with_label(("job".into(), job.to_owned().into()));
        let m = WorkerMetrics {
            registry: Registry::default(),
            rows: Counter::default(),
            results: Counter::default(),
            anomalies: Counter::default(),
            rejects: Counter::default(),
            retrains: Counter::default(),
            database_errors: Counter::default(),
            pending: Gauge::default(),
            last_pass: Gauge::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
        };
        registry.register("rows", "Rows read and processed (results and rejects)", m.rows.clone());
        registry.register("results", "Result rows written", m.results.clone());
        registry.register("anomalies", "Results flagged as anomalies", m.anomalies.clone());
        registry.register("rejects", "Rows rejected with their reason", m.rejects.clone());
        registry.register("retrains", "Models retrained", m.retrains.clone());
        registry.register("database_errors", "Passes that failed on the database (retried)", m.database_errors.clone());
        registry.register("pending_rows", "Rows above the watermark when the last pass started", m.pending.clone());
        registry.register(
            "last_pass_timestamp_seconds",
            "Unix time of the last pass that left nothing pending",
            m.last_pass.clone(),
        );
        registry.register("batch_seconds", "Batch latency, read to commit", m.batch_seconds.clone());
        WorkerMetrics { registry: root, ..m }
    }

    pub(crate) fn pass(&self, pass: &Pass, now: i64) {
        self.rows.inc_by(pass.rows as u64);
        self.results.inc_by(pass.written.results as u64);
        self.anomalies.inc_by(pass.written.anomalies as u64);
        self.rejects.inc_by(pass.written.rejects as u64);
        for latency in &pass.batches {
            self.batch_seconds.observe(latency.as_secs_f64());
        }
        self.last_pass.set(now as f64);
    }

    pub(crate) fn pending(&self, rows: i64) {
        self.pending.set(rows.max(0));
    }

    pub(crate) fn retrained(&self) {
        self.retrains.inc();
    }

    pub(crate) fn database_error(&self) {
        self.database_errors.inc();
    }

    /// Serves `GET /metrics` (and `/health`) on `addr` from a background
    /// thread for as long as the process runs.
    pub(crate) fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<()> {
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        info!("metrics on http://{}/metrics", listener.local_addr()?);
        let metrics = Arc::clone(self);
        std::thread::Builder::new().name("metrics".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return log::error!("metrics server: {e}"),
            };
            runtime.block_on(async move {
                let app = axum::Router::new()
                    .route(
                        "/metrics",
                        get(move |headers: axum::http::HeaderMap| async move {
                            crate::serve::metrics::exposition(&metrics.registry, &headers)
                        }),
                    )
                    .route("/health", get(|| async { "ok" }));
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, app).await {
                            log::error!("metrics server: {e}");
                        }
                    }
                    Err(e) => log::error!("metrics server: {e}"),
                }
            });
        })?;
        Ok(())
    }
}

/// Batch latencies kept per pass for the histogram (a long backfill's
/// first ones are enough to describe it).
pub(crate) const MAX_BATCH_SAMPLES: usize = 10_000;

/// Records one batch's latency into a pass.
pub(crate) fn batch(pass: &mut Pass, latency: Duration) {
    if pass.batches.len() < MAX_BATCH_SAMPLES {
        pass.batches.push(latency);
    }
}
