//! `anomaly serve`: the credit model over HTTP, replacing the Flask
//! endpoint. `POST /predict` (and the alias `POST /predecir`, with the
//! Spanish field names the Flask service returned) takes one applicant or a
//! list; `GET /metrics` (Prometheus), `/metrics.json` (the dashboard's
//! KPIs), `/health` (the process answers), `/ready` (model loaded and
//! database answering), `/openapi.json` and `/docs`.
//!
//! Dashboard queries (`--db`) use a small connection pool that tests each
//! connection as it is taken, so a database restart costs the requests in
//! flight during it (503) and nothing after it. The database is opened
//! read-only and nothing is created in it: a table no job has written yet
//! reads as empty, and a database locked by a writer answers 503 within
//! `LOCK_WAIT`.
//!
//! Errors are JSON `{"error": {"code", "message", "fields"}}`: E001 no data,
//! E002 invalid fields (every one listed), E413 body too large, E500 an
//! internal error (no internals shown; logged to stderr).

pub(crate) mod credit;
pub(crate) mod listener;
pub(crate) mod metrics;
mod openapi;
mod queries;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anomaly_core::credit_risk::CreditModel;
use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use log::{info, warn};

use metrics::Metrics;

/// Connections kept for the dashboard queries.
const POOL_SIZE: u32 = 8;
/// How long a request waits for a database connection before its 503.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a query waits for a lock a writer holds before its 503.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Credit model written by `anomaly.credit_risk.export_sklearn`
    /// (serves POST /predict and /predecir).
    #[arg(long, required_unless_present = "db")]
    credit_model: Option<PathBuf>,
    /// Results database for the read-only dashboard queries (GET /anomalies,
    /// /variables, /monthly, /summary): `sqlite:PATH` or `postgres://...`
    /// (with `?sslmode=...` for TLS); ANOMALY_DB as for the jobs.
    #[arg(long, env = "ANOMALY_DB")]
    db: Option<String>,
    /// Results table of the `--db` queries.
    #[arg(long, default_value = "anomalies_detector")]
    results_table: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest request body accepted, in bytes (larger: 413, E413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Connections open at once; more are closed on arrival.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Time a client gets to send a request's headers (also when idle
    /// between requests), e.g. 10s.
    #[arg(long, default_value = "10s")]
    header_timeout: String,
    /// Time to receive a request's body and answer it (then 408), e.g. 30s.
    #[arg(long, default_value = "30s")]
    request_timeout: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Shared by every request.
pub(crate) struct AppState {
    pub(crate) request_timeout: std::time::Duration,
    pub(crate) model: Option<CreditModel>,
    pub(crate) db: Option<Pooled>,
    pub(crate) metrics: Metrics,
    pub(crate) openapi: serde_json::Value,
}

impl AppState {
    /// The service's state: the model, a pool on `db` (a bad URL or table
    /// name is permanent, an error now; an unreachable database is not:
    /// the service starts and answers 503 until it is up) and the metrics.
    pub(crate) fn new(
        model: Option<CreditModel>,
        db: Option<&str>,
        results_table: &str,
        request_timeout: std::time::Duration,
    ) -> Result<AppState> {
        let db = match db {
            Some(url) => {
                let tables = crate::store::forecast::Tables::new("datos_proceso", results_table);
                crate::db::Db::check(url, &tables.names())?;
                let connector = Connector {
                    url: crate::db::DbUrl::new(url),
                    tables: tables.clone(),
                    statement_timeout: request_timeout,
                };
                let pool = r2d2::Pool::builder()
                    .max_size(POOL_SIZE)
                    .min_idle(Some(0))
                    .connection_timeout(POOL_WAIT)
                    .test_on_check_out(true)
                    .build_unchecked(connector);
                // Checked beside the start, which a locked or absent database does not delay.
                let early = Pooled { pool: pool.clone(), tables: tables.clone(), consumption: Default::default() };
                std::thread::spawn(move || {
                    if let Err(e) = early.probe(POOL_WAIT) {
                        warn!("the database does not answer yet ({e}); /ready says so until it does");
                    }
                });
                Some(Pooled { pool, tables, consumption: Default::default() })
            }
            None => None,
        };
        let openapi = openapi::document(model.as_ref(), db.is_some());
        let metrics = Metrics::new(model.as_ref().map(|m| {
            let classes: Vec<String> = m.classes().iter().map(ToString::to_string).collect();
            ("credit", m.sklearn_version(), classes.join(","))
        }));
        Ok(AppState { request_timeout, model, db, metrics, openapi })
    }
}

/// The dashboard's database: a pool and the tables it reads.
pub(crate) struct Pooled {
    pub(crate) pool: r2d2::Pool<Connector>,
    pub(crate) tables: crate::store::forecast::Tables,
    pub(crate) consumption: crate::store::consumption::Tables,
}

impl Pooled {
    /// Whether the database answers a read within about `wait` (plus
    /// `LOCK_WAIT` for a writer's lock), or why not.
    pub(crate) fn probe(&self, wait: std::time::Duration) -> Result<(), String> {
        let mut conn = match self.pool.get_timeout(wait) {
            Ok(conn) => conn,
            // Every connection open and in use: the database answers, the
            // service is loaded; not a reason to take it out of rotation.
            Err(_) if self.busy() => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        conn.probe().map_err(|e| format!("{e:#}"))
    }

    /// Whether every pooled connection is open and in use.
    pub(crate) fn busy(&self) -> bool {
        let state = self.pool.state();
        state.connections >= POOL_SIZE && state.idle_connections == 0
    }
}

/// Opens, checks and replaces the pool's connections, read-only: the
/// service never creates or writes anything in the database, so it can
/// serve a database it may only read, and start before the jobs create
/// their tables.
pub(crate) struct Connector {
    url: crate::db::DbUrl,
    tables: crate::store::forecast::Tables,
    /// The longest a query may run (the request's own limit).
    statement_timeout: std::time::Duration,
}

/// Why a pooled connection could not be made or used.
#[derive(Debug)]
pub(crate) struct PoolError(String);

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PoolError {}

impl r2d2::ManageConnection for Connector {
    type Connection = crate::db::Db;
    type Error = PoolError;

    fn connect(&self) -> Result<crate::db::Db, PoolError> {
        crate::db::Db::open_read_only(&self.url, &self.tables.names(), LOCK_WAIT, self.statement_timeout)
            .map_err(|e| PoolError(format!("{e:#}")))
    }

    fn is_valid(&self, db: &mut crate::db::Db) -> Result<(), PoolError> {
        db.ping().map_err(|e| PoolError(format!("{e:#}")))
    }

    fn has_broken(&self, db: &mut crate::db::Db) -> bool {
        db.is_closed()
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    let limits = listener::Limits {
        header_timeout: crate::jobs::parse_duration("--header-timeout", &args.header_timeout)?,
        request_timeout: crate::jobs::parse_duration("--request-timeout", &args.request_timeout)?,
        max_connections: args.max_connections,
    };
    let model = args.credit_model.as_deref().map(crate::models::load_credit).transpose()?;
    let state = Arc::new(AppState::new(model, args.db.as_deref(), &args.results_table, limits.request_timeout)?);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build().context("cannot start the HTTP runtime")?;
    let served = runtime.block_on(serve(Arc::clone(&state), args, limits));
    // The database clients are dropped here, outside the async runtime:
    // the synchronous PostgreSQL client runs its own, which cannot start
    // inside another one (a panic at every shutdown before).
    drop(runtime);
    drop(state);
    served
}

async fn serve(state: Arc<AppState>, args: ServeArgs, limits: listener::Limits) -> Result<()> {
    {
        let app = router(state, args.max_body_bytes);
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        info!(
            "serving on http://{} ({}{}GET /metrics, /metrics.json, /health, /ready, /docs)",
            listener.local_addr()?,
            if args.credit_model.is_some() { "POST /predict, /predecir; " } else { "" },
            if args.db.is_some() { "GET /anomalies, /variables, /monthly, /summary; " } else { "" },
        );
        listener::serve(listener, app, limits, shutdown()).await.context("HTTP server failed")?;
        info!("stopped");
        Ok(())
    }
}

pub(crate) fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/predict", post(credit::predict_en))
        .route("/predecir", post(credit::predict_es))
        .route("/metrics", get(prometheus_route))
        .route("/metrics.json", get(metrics_route))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi_route))
        .route("/docs", get(docs))
        .route("/anomalies", get(queries::anomalies))
        .route("/variables", get(queries::variables))
        .route("/monthly", get(queries::monthly))
        .route("/summary", get(queries::summary))
        .route("/consumption/anomalies", get(queries::consumption_anomalies))
        .route("/consumption/episodes", get(queries::consumption_episodes))
        .route("/consumption/clients", get(queries::consumption_clients))
        .route("/consumption/monthly", get(queries::consumption_monthly))
        .route("/consumption/summary", get(queries::consumption_summary))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "E404", "no such route; see /docs".into(), serde_json::json!([]))
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "E405",
                "method not allowed on this route; see /docs".into(),
                serde_json::json!([]),
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), record))
        .with_state(state)
}

/// Counts and times every request, by its route pattern.
async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let response = match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!("request not completed within {:?}", state.request_timeout);
            let mut response = error(StatusCode::REQUEST_TIMEOUT, "E408", message, serde_json::json!([]));
            // The body may still be unread: the connection cannot carry another request.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        }
    };
    state.metrics.record(&route, &method, response.status().as_u16(), started.elapsed());
    response
}

/// Resolves on SIGINT or SIGTERM: in-flight requests finish, then the server stops.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => info!("SIGINT: finishing in-flight requests"),
        () = terminate => info!("SIGTERM: finishing in-flight requests"),
    }
}

async fn metrics_route(State(state): State<Arc<AppState>>) -> Json<metrics::Snapshot> {
    Json(state.metrics.snapshot())
}

async fn prometheus_route(State(state): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> Response {
    state.metrics.response(&headers)
}

/// 200 when the model (if configured) is loaded and the database (if
/// configured) answers a read now; 503 with the reason otherwise, within
/// about 2 s plus `LOCK_WAIT`.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let (database, reason) = match &state.db {
        None => (None, None),
        Some(_) => {
            let probe = Arc::clone(&state);
            let answer = tokio::task::spawn_blocking(move || match &probe.db {
                Some(db) => db.probe(std::time::Duration::from_secs(2)),
                None => Ok(()),
            })
            .await
            .unwrap_or_else(|_| Err("the database probe failed".into()));
            state.metrics.database_up(answer.is_ok());
            (Some(answer.is_ok()), answer.err())
        }
    };
    let ok = database != Some(false);
    let mut body = serde_json::json!({"ready": ok, "model": state.model.is_some(), "database": database});
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body)).into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let model = state.model.as_ref().map(|m| {
        serde_json::json!({
            "classes": m.classes(),
            "columns": m.columns().len(),
            "sklearn_version": m.sklearn_version(),
        })
    });
    Json(serde_json::json!({
        "status": "ok",
        "model": model,
        "database": state.db.is_some(),
        "state": state.metrics.snapshot().state,
    }))
}

async fn openapi_route(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Json(state.openapi.clone())).into_response()
}

async fn docs(State(state): State<Arc<AppState>>) -> Html<String> {
    Html(openapi::page(&state.openapi))
}

/// A JSON error body with its status.
pub(crate) fn error(status: StatusCode, code: &str, message: String, fields: serde_json::Value) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message, "fields": fields}});
    (status, Json(body)).into_response()
}
