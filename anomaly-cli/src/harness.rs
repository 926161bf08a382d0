//! Entry points for the fuzz targets (`fuzz/fuzz_targets/`): each takes
//! arbitrary bytes through the code a user's file, stream or request takes.
//! They may return errors; a panic, abort, hang or unbounded allocation is
//! a bug the fuzzer reports. Built with the library, so the targets cannot
//! drift from the code they drive.

use std::sync::Arc;
use std::time::Duration;

use anomaly_core::forecast_interval::MultiDetector;
use anomaly_core::traits::{Detect, Fit, ParamGuard};
use anyhow::Result;

use crate::commands::plant::{stream_lines, StreamArgs};
use crate::csvio;

/// A consumption-readings CSV (client, timestamp, kWh) as `anomaly
/// consumption detect` reads it, then the default rules over it.
pub fn consumption_csv(bytes: &[u8]) -> Result<usize> {
    let names = anomaly_core::consumption::ColumnNames::default();
    let readings = csvio::readings_from("fuzz.csv".as_ref(), bytes, 0, &names)?;
    let rules = anomaly_core::consumption::ConsumptionParams::default().check()?;
    Ok(rules.detect(&readings)?.flags.score.len())
}

/// A numeric CSV as `anomaly iforest fit` reads it, then a small forest
/// fitted and scored on it.
pub fn matrix_csv(bytes: &[u8]) -> Result<usize> {
    let m = csvio::matrix_from("fuzz.csv".as_ref(), bytes, 0, &[])?;
    let view = ndarray::ArrayView2::from_shape((m.rows, m.columns.len()), &m.values)?;
    let x = anomaly_core::data::FeatureMatrix::new(view, None)?;
    let params = anomaly_core::isolation_forest::IsolationForestParams {
        n_estimators: 8,
        random_state: 7,
        ..Default::default()
    };
    let forest = params.check()?.fit(&x)?;
    Ok(forest.score_samples(&x)?.len())
}

/// JSON lines as `anomaly forecast stream` reads them on stdin, scored by
/// `models`; returns the scored and bad lines.
pub fn stream(models: &MultiDetector, bytes: &[u8]) -> Result<(u64, u64)> {
    let args = StreamArgs {
        models: Default::default(),
        time_field: "datetime".into(),
        variable_field: "variable_name".into(),
        value_field: "value".into(),
    };
    stream_lines(models, &args, bytes, std::io::sink())
}

/// `anomaly serve` in-process: the real router behind the real HTTP/1
/// connection settings, fed raw request bytes over an in-memory pipe.
pub struct Service {
    runtime: tokio::runtime::Runtime,
    state: Arc<super::serve::AppState>,
    app: axum::Router,
}

/// Longest an in-memory exchange may take: longer is a hang.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(20);

impl Service {
    /// The service with an optional credit model (file bytes) and
    /// dashboard database URL, as `anomaly serve` starts it.
    pub fn new(credit_model: Option<&[u8]>, db: Option<&str>) -> Result<Service> {
        let model = credit_model.map(anomaly_core::credit_risk::CreditModel::from_json).transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let state = Arc::new(super::serve::AppState::new(model, db, "anomalies_detector", Duration::from_secs(10))?);
        let app = super::serve::router(Arc::clone(&state), 1 << 20);
        Ok(Service { runtime, state, app })
    }

    /// The service the fuzz targets drive: the credit model (and with `db`
    /// the dashboard database) that `scripts/fuzz` writes into
    /// `$ANOMALY_FUZZ_FIXTURES`.
    pub fn from_fixtures(db: bool) -> Result<Service> {
        let dir = std::env::var("ANOMALY_FUZZ_FIXTURES")
            .map_err(|_| anyhow::anyhow!("ANOMALY_FUZZ_FIXTURES is not set (scripts/fuzz sets it)"))?;
        let model = std::fs::read(format!("{dir}/credit_model.json"))?;
        let url = format!("sqlite:{dir}/dashboard.db");
        Service::new(Some(&model), db.then_some(url.as_str()))
    }

    /// `POST /predict` with `body`, without the HTTP layer: the status and
    /// the JSON answered.
    pub fn predict(&self, body: &[u8]) -> (u16, serde_json::Value) {
        let response = super::serve::credit::answer(&self.state, body, super::serve::credit::ENGLISH);
        let status = response.status().as_u16();
        let bytes = self.runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX));
        let json = bytes.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        (status, json)
    }

    /// Each response in `answer` (bytes of one connection) as its status
    /// and body, as far as they can be delimited (by Content-Length).
    pub fn responses(answer: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = answer;
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body_start = end + 4;
            let Some(length) = length.filter(|&n| body_start + n <= rest.len()) else {
                out.push((status, rest[body_start..].to_vec()));
                break;
            };
            out.push((status, rest[body_start..body_start + length].to_vec()));
            rest = &rest[body_start + length..];
        }
        out
    }

    /// Sends `request` (raw bytes: request line, headers, body; possibly
    /// several requests or garbage) and returns every byte answered.
    /// Panics if the exchange does not end within `EXCHANGE_LIMIT`.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let limits = super::serve::listener::Limits {
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_connections: 1,
        };
        let mut http = super::serve::listener::http1(&limits);
        // The client half-closes after its bytes; the answers still go out.
        http.half_close(true);
        let request = request.to_vec();
        let app = self.app.clone();
        self.runtime.block_on(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let conn = http.serve_connection(
                hyper_util::rt::TokioIo::new(server),
                hyper_util::service::TowerToHyperService::new(app),
            );
            let served = tokio::spawn(conn);
            let (mut read, mut write) = tokio::io::split(client);
            let writer = tokio::spawn(async move {
                let _ = write.write_all(&request).await;
                let _ = write.shutdown().await;
            });
            let mut answer = Vec::new();
            let read = tokio::time::timeout(EXCHANGE_LIMIT, read.read_to_end(&mut answer));
            assert!(read.await.is_ok(), "the service did not finish answering within {EXCHANGE_LIMIT:?}");
            let _ = writer.await;
            let _ = served.await;
            answer
        })
    }
}
