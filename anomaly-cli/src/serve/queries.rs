//! Read-only queries over the results tables, for dashboards (`--db`):
//! `GET /anomalies` (filters, paginated), `/variables`, `/monthly`,
//! `/summary`, and the consumption team's `/consumption/...`. Database
//! calls run on tokio's blocking threads, each on a connection from the
//! service's pool; a table no job has created yet reads as empty.

use std::sync::Arc;

use anomaly_core::isolation_forest::StateThresholds;
use anomaly_core::time::{format_timestamp, parse_timestamp};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{error, AppState, Pooled};
use crate::db::Db;
use crate::store::consumption::{self, Filter as ConsumptionFilter};
use crate::store::forecast::{self, AnomalyFilter};

/// Largest page.
const MAX_LIMIT: i64 = 10_000;

#[derive(Debug, Deserialize)]
pub(crate) struct AnomalyQuery {
    variable: Option<String>,
    from: Option<String>,
    to: Option<String>,
    min_score: Option<f64>,
    #[serde(default)]
    all: bool,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConsumptionQuery {
    client: Option<String>,
    severity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EpisodeQuery {
    client: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    min_severity: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ClientQuery {
    client: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MonthlyQuery {
    variable: Option<String>,
}

/// Runs `work` on a pooled database connection, off the async threads; a
/// table that does not exist yet gives the empty answer (`T::default()`).
async fn with_db<T: Send + Default + 'static>(
    state: Arc<AppState>,
    work: impl FnOnce(&mut Db, &Pooled) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let probe = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        let Some(db) = &state.db else {
            return Err(None);
        };
        let mut conn = db.pool.get().map_err(|e| {
            Some(if db.busy() { anyhow::Error::new(Busy) } else { anyhow::anyhow!("no database connection: {e}") })
        })?;
        match work(&mut conn, db) {
            Err(e) if crate::db::is_missing_table(&e) => Ok(T::default()),
            done => done.map_err(Some),
        }
    })
    .await;
    match outcome {
        Ok(Ok(value)) => {
            probe.metrics.database_up(true);
            Ok(value)
        }
        Ok(Err(None)) => {
            Err(error(StatusCode::NOT_FOUND, "E404", "no database: start the service with --db".into(), json!([])))
        }
        Ok(Err(Some(e))) if e.is::<Busy>() => {
            // Load, not an outage: the database stays "up" in the metrics.
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "E503", e.to_string(), json!([]));
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            Err(response)
        }
        Ok(Err(Some(e))) => {
            log::error!("query failed: {e:#}");
            probe.metrics.database_up(false);
            Err(error(StatusCode::SERVICE_UNAVAILABLE, "E503", "the database is unavailable".into(), json!([])))
        }
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "E500", "internal error".into(), json!([]))),
    }
}

/// Every pooled connection stayed in use for the pool's whole wait.
#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy: every database connection is in use; retry")
    }
}

impl std::error::Error for Busy {}

/// A query string as `T`; one that does not parse is a JSON 400 (E002)
/// naming the parameter, as every other bad input (axum's own `Query`
/// answers plain text).
pub(crate) struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(Params(q)),
            Err(rejection) => Err(bad("query", rejection.body_text())),
        }
    }
}

fn bad(field: &str, reason: String) -> Response {
    let fields = json!([{"field": field, "row": null, "reason": reason}]);
    error(StatusCode::BAD_REQUEST, "E002", format!("{field}: {reason}"), fields)
}

/// A time parameter, or why it is not one.
fn time(text: Option<&str>) -> Result<Option<i64>, String> {
    text.map(|t| parse_timestamp(t).ok_or_else(|| format!("cannot parse {t:?} (YYYY-MM-DD[ HH:MM[:SS]])"))).transpose()
}

fn number(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

pub(crate) async fn anomalies(State(state): State<Arc<AppState>>, Params(q): Params<AnomalyQuery>) -> Response {
    let (from, to) = match span(q.from.as_deref(), q.to.as_deref()) {
        Ok(span) => span,
        Err((field, reason)) => return bad(field, reason),
    };
    let filter = AnomalyFilter { variable: q.variable, from, to, min_score: q.min_score, all: q.all };
    let (limit, offset) = match page(q.limit, q.offset) {
        Ok(p) => p,
        Err((field, reason)) => return bad(field, reason),
    };
    if let Some(m) = filter.min_score.filter(|m| !m.is_finite()) {
        return bad("min_score", format!("{m} is not a finite number"));
    }
    match with_db(state, move |db, p| forecast::anomalies(db, &p.tables, &filter, limit, offset)).await {
        Ok((total, rows)) => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "ds": format_timestamp(r.ts), "variable": r.variable, "y": number(r.y), "yhat": number(r.yhat),
                        "yhat_lower": number(r.yhat_lower), "yhat_upper": number(r.yhat_upper),
                        "residual": number(r.residual), "is_anomaly": r.is_anomaly, "anomaly_score": number(r.score),
                    })
                })
                .collect();
            Json(json!({"total": total, "limit": limit, "offset": offset, "items": items})).into_response()
        }
        Err(response) => response,
    }
}

pub(crate) async fn variables(State(state): State<Arc<AppState>>) -> Response {
    match with_db(state, |db, p| forecast::variable_stats(db, &p.tables)).await {
        Ok(stats) => Json(json!({"variables": stats})).into_response(),
        Err(response) => response,
    }
}

pub(crate) async fn monthly(State(state): State<Arc<AppState>>, Params(q): Params<MonthlyQuery>) -> Response {
    match with_db(state, move |db, p| forecast::monthly(db, &p.tables, q.variable.as_deref())).await {
        Ok(months) => Json(json!({"months": months})).into_response(),
        Err(response) => response,
    }
}

pub(crate) async fn summary(State(state): State<Arc<AppState>>) -> Response {
    match with_db(state, |db, p| forecast::variable_stats(db, &p.tables)).await {
        Ok(stats) => {
            let results: i64 = stats.iter().map(|s| s.results).sum();
            let anomalies: i64 = stats.iter().map(|s| s.anomalies).sum();
            let percent = if results == 0 { 0.0 } else { 100.0 * anomalies as f64 / results as f64 };
            Json(json!({
                "results": results,
                "anomalies": anomalies,
                "percent": percent,
                "state": StateThresholds::default().state(percent).as_str(),
                "variables": stats.len(),
                "first": stats.iter().map(|s| s.first.as_str()).min(),
                "last": stats.iter().map(|s| s.last.as_str()).max(),
            }))
            .into_response()
        }
        Err(response) => response,
    }
}

/// A bad query parameter and why.
type BadParam = (&'static str, String);

/// A page (limit, offset), or the bad parameter and why.
fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), BadParam> {
    let (limit, offset) = (limit.unwrap_or(100), offset.unwrap_or(0));
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    if offset < 0 {
        return Err(("offset", "must be 0 or more".into()));
    }
    Ok((limit, offset))
}

/// A query's `from` and `to` times, or the bad parameter and why.
fn span(from: Option<&str>, to: Option<&str>) -> Result<(Option<i64>, Option<i64>), BadParam> {
    Ok((time(from).map_err(|reason| ("from", reason))?, time(to).map_err(|reason| ("to", reason))?))
}

const SEVERITIES: [&str; 5] = ["crítica", "alta", "media", "baja", "normal"];

pub(crate) async fn consumption_anomalies(
    State(state): State<Arc<AppState>>,
    Params(q): Params<ConsumptionQuery>,
) -> Response {
    let (limit, offset) = match page(q.limit, q.offset) {
        Ok(p) => p,
        Err((field, reason)) => return bad(field, reason),
    };
    if let Some(s) = &q.severity {
        if !SEVERITIES.contains(&s.as_str()) {
            return bad("severity", format!("{s:?}: expected one of {}", SEVERITIES.join(", ")));
        }
    }
    let filter = match span(q.from.as_deref(), q.to.as_deref()) {
        Ok((from, to)) => ConsumptionFilter { client: q.client, severity: q.severity, from, to },
        Err((field, reason)) => return bad(field, reason),
    };
    match with_db(state, move |db, p| consumption::anomalies(db, &p.consumption, &filter, limit, offset)).await {
        Ok((total, rows)) => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|f| {
                    json!({
                        "client_id": f.client, "timestamp": format_timestamp(f.ts), "kwh": number(f.kwh),
                        "types": f.types, "score": number(f.score), "severity": f.severity,
                    })
                })
                .collect();
            Json(json!({"total": total, "limit": limit, "offset": offset, "items": items})).into_response()
        }
        Err(response) => response,
    }
}

pub(crate) async fn consumption_episodes(
    State(state): State<Arc<AppState>>,
    Params(q): Params<EpisodeQuery>,
) -> Response {
    use anomaly_core::consumption::{AnomalyType, Severity};
    let (limit, offset) = match page(q.limit, q.offset) {
        Ok(p) => p,
        Err((field, reason)) => return bad(field, reason),
    };
    if let Some(kind) = &q.kind {
        if AnomalyType::from_name(kind).is_none() {
            let known: Vec<&str> = AnomalyType::ALL.iter().map(|t| t.as_str()).collect();
            return bad("type", format!("{kind:?}: expected one of {}", known.join(", ")));
        }
    }
    let min_severity = match &q.min_severity {
        None => None,
        Some(s) => match Severity::from_name(s) {
            Some(v) => Some(v),
            None => return bad("min_severity", format!("{s:?}: expected one of {}", SEVERITIES.join(", "))),
        },
    };
    let filter = match span(q.from.as_deref(), q.to.as_deref()) {
        Ok((from, to)) => consumption::EpisodeFilter { client: q.client, kind: q.kind, min_severity, from, to },
        Err((field, reason)) => return bad(field, reason),
    };
    match with_db(state, move |db, p| consumption::episodes(db, &p.consumption, &filter, limit, offset)).await {
        Ok((total, rows)) => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(e, severity)| {
                    json!({
                        "client_id": e.client, "type": e.kind.as_str(), "start": format_timestamp(e.start),
                        "end": format_timestamp(e.end), "readings": e.n_readings, "peak_score": number(e.peak_score),
                        "peak_severity": severity, "kwh_above_baseline": number(e.kwh_above_baseline),
                    })
                })
                .collect();
            Json(json!({"total": total, "limit": limit, "offset": offset, "items": items})).into_response()
        }
        Err(response) => response,
    }
}

pub(crate) async fn consumption_clients(
    State(state): State<Arc<AppState>>,
    Params(q): Params<ClientQuery>,
) -> Response {
    match with_db(state, |db, p| consumption::client_stats(db, &p.consumption)).await {
        Ok(stats) => {
            let stats: Vec<_> =
                stats.into_iter().filter(|s| q.client.as_ref().is_none_or(|c| *c == s.client_id)).collect();
            Json(json!({"clients": stats})).into_response()
        }
        Err(response) => response,
    }
}

pub(crate) async fn consumption_monthly(
    State(state): State<Arc<AppState>>,
    Params(q): Params<ClientQuery>,
) -> Response {
    match with_db(state, move |db, p| consumption::monthly(db, &p.consumption, q.client.as_deref())).await {
        Ok(months) => {
            let months: Vec<serde_json::Value> = months
                .iter()
                .map(|m| {
                    json!({
                        "client_id": m.client, "month": m.month, "readings": m.readings, "total_kwh": number(m.total_kwh),
                        "anomalies": m.anomalies, "critical": m.critical,
                        "night_mean_kwh": m.night_mean_kwh.map(number), "peak_mean_kwh": m.peak_mean_kwh.map(number),
                        "score": number(m.score), "suspicion": m.suspicion.map(number),
                        "suspicious": m.suspicious, "rank": m.rank, "episodes": m.episodes,
                        "severe_episodes": m.severe_episodes, "rules": m.rules,
                    })
                })
                .collect();
            Json(json!({"months": months})).into_response()
        }
        Err(response) => response,
    }
}

pub(crate) async fn consumption_summary(State(state): State<Arc<AppState>>) -> Response {
    match with_db(state, |db, p| consumption::client_stats(db, &p.consumption)).await {
        Ok(stats) => {
            let readings: i64 = stats.iter().map(|s| s.readings).sum();
            let anomalies: i64 = stats.iter().map(|s| s.anomalies).sum();
            let percent = if readings == 0 { 0.0 } else { 100.0 * anomalies as f64 / readings as f64 };
            Json(json!({
                "clients": stats.len(),
                "readings": readings,
                "anomalies": anomalies,
                "percent": percent,
                "critical": stats.iter().map(|s| s.critical).sum::<i64>(),
                "clients_with_critical": stats.iter().filter(|s| s.critical > 0).count(),
                "top_clients": stats.iter().take(10).collect::<Vec<_>>(),
            }))
            .into_response()
        }
        Err(response) => response,
    }
}
