//! `anomaly serve`: the credit model over HTTP, replacing the Flask
//! endpoint. `POST /predict` (and the alias `POST /predecir`, with the
//! Spanish field names the Flask service returned) takes one applicant or a
//! list; `GET /metrics`, `GET /health`, `GET /openapi.json` and `GET /docs`.
//!
//! Errors are JSON `{"error": {"code", "message", "fields"}}`: E001 no data,
//! E002 invalid fields (every one listed), E413 body too large, E500 an
//! internal error (no internals shown; logged to stderr).

mod credit;
mod metrics;
mod openapi;
mod queries;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anomaly_core::credit_risk::CreditModel;
use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use log::info;

use metrics::Metrics;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Credit model written by `anomaly.credit_risk.export_sklearn`
    /// (serves POST /predict and /predecir).
    #[arg(long, required_unless_present = "db")]
    credit_model: Option<PathBuf>,
    /// Results database for the read-only dashboard queries (GET /anomalies,
    /// /variables, /monthly, /summary): `sqlite:PATH` or `postgres://...`.
    #[arg(long)]
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
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Shared by every request.
pub(crate) struct AppState {
    pub(crate) model: Option<CreditModel>,
    pub(crate) db: Option<std::sync::Mutex<(crate::db::Db, crate::store::forecast::Tables)>>,
    pub(crate) metrics: Metrics,
    pub(crate) openapi: serde_json::Value,
}

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    let model = args.credit_model.as_deref().map(crate::models::load_credit).transpose()?;
    let db = match &args.db {
        Some(url) => {
            let tables = crate::store::forecast::Tables::new("datos_proceso", &args.results_table);
            let mut db = crate::db::Db::open(url, &tables.names())?;
            // Missing tables are created empty, so every query answers.
            crate::store::forecast::ensure(&mut db, &tables)?;
            crate::store::consumption::ensure(&mut db)?;
            Some(std::sync::Mutex::new((db, tables)))
        }
        None => None,
    };
    let openapi = openapi::document(model.as_ref(), db.is_some());
    let state = Arc::new(AppState { model, db, metrics: Metrics::new(), openapi });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build().context("cannot start the HTTP runtime")?;
    runtime.block_on(async move {
        let app = router(state, args.max_body_bytes);
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        info!(
            "serving on http://{} ({}{}GET /metrics, /health, /docs)",
            listener.local_addr()?,
            if args.credit_model.is_some() { "POST /predict, /predecir; " } else { "" },
            if args.db.is_some() { "GET /anomalies, /variables, /monthly, /summary; " } else { "" },
        );
        axum::serve(listener, app).with_graceful_shutdown(shutdown()).await.context("HTTP server failed")?;
        info!("stopped");
        Ok(())
    })
}

fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/predict", post(credit::predict_en))
        .route("/predecir", post(credit::predict_es))
        .route("/metrics", get(metrics_route))
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_route))
        .route("/docs", get(docs))
        .route("/anomalies", get(queries::anomalies))
        .route("/variables", get(queries::variables))
        .route("/monthly", get(queries::monthly))
        .route("/summary", get(queries::summary))
        .route("/consumption/anomalies", get(queries::consumption_anomalies))
        .route("/consumption/clients", get(queries::consumption_clients))
        .route("/consumption/monthly", get(queries::consumption_monthly))
        .route("/consumption/summary", get(queries::consumption_summary))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
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
