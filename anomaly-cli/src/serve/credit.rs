//! `POST /predict` and `POST /predecir`: one applicant (a JSON object) or a
//! list of them; every bad field reported at once (E002).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use anomaly_core::credit_risk::{Applicants, Cell, CreditModel};
use anomaly_core::Error;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use log::error as log_error;
use serde_json::{json, Map, Value};

use super::{error, AppState};

/// Field names of the response: English, or the Flask service's Spanish.
#[derive(Clone, Copy)]
pub(crate) struct Names {
    prediction: &'static str,
    probabilities: &'static str,
    confidence: &'static str,
}

pub(crate) const ENGLISH: Names =
    Names { prediction: "prediction", probabilities: "probabilities", confidence: "confidence" };
const SPANISH: Names = Names { prediction: "prediccion", probabilities: "probabilidades", confidence: "confianza" };

pub(crate) async fn predict_en(state: State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    predict(state, body, ENGLISH)
}

pub(crate) async fn predict_es(state: State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    predict(state, body, SPANISH)
}

fn predict(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>, names: Names) -> Response {
    match body {
        Ok(bytes) => match catch_unwind(AssertUnwindSafe(|| answer(&state, &bytes, names))) {
            Ok(response) => response,
            Err(_) => {
                log_error!("internal error while scoring a request (panic caught)");
                error(StatusCode::INTERNAL_SERVER_ERROR, "E500", "internal error".into(), json!([]))
            }
        },
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            error(StatusCode::PAYLOAD_TOO_LARGE, "E413", "request body too large".into(), json!([]))
        }
        Err(rejection) => error(StatusCode::BAD_REQUEST, "E002", rejection.body_text(), json!([])),
    }
}

pub(crate) fn answer(state: &AppState, bytes: &[u8], names: Names) -> Response {
    let Some(model) = &state.model else {
        return error(StatusCode::NOT_FOUND, "E404", "no credit model: start with --credit-model".into(), json!([]));
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return error(StatusCode::BAD_REQUEST, "E001", "no data: send one applicant or a list".into(), json!([]));
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let fields = json!([{"field": "body", "row": null, "reason": e.to_string()}]);
            return error(StatusCode::BAD_REQUEST, "E002", format!("body is not valid JSON: {e}"), fields);
        }
    };
    let (records, single) = match value {
        Value::Object(map) => (vec![map], true),
        Value::Array(items) => {
            let mut records = Vec::with_capacity(items.len());
            let mut bad = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(map) => records.push(map),
                    _ => bad.push(json!({"field": "body", "row": i, "reason": "expected an object (one applicant)"})),
                }
            }
            if !bad.is_empty() {
                return error(StatusCode::BAD_REQUEST, "E002", "invalid applicants".into(), Value::Array(bad));
            }
            (records, false)
        }
        _ => {
            let fields = json!([{"field": "body", "row": null, "reason": "expected an object or a list of objects"}]);
            return error(StatusCode::BAD_REQUEST, "E002", "expected an object or a list of objects".into(), fields);
        }
    };
    if records.is_empty() || records.iter().all(Map::is_empty) {
        return error(
            StatusCode::BAD_REQUEST,
            "E001",
            "no data: the request has no applicant fields".into(),
            json!([]),
        );
    }
    let (applicants, mut problems) = table(model, &records);
    let scored = model.score(&applicants);
    let scores = match scored {
        Ok(scores) if problems.is_empty() => scores,
        Ok(_) => return invalid(problems),
        Err(Error::InvalidFields { problems: found }) => {
            problems.extend(found.into_iter().map(|p| json!({"field": p.field, "row": p.row, "reason": p.reason})));
            return invalid(problems);
        }
        Err(other) => {
            log_error!("scoring failed: {other}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "E500", "internal error".into(), json!([]));
        }
    };
    let classes = model.classes();
    let results: Vec<Value> = (0..scores.rows())
        .map(|i| {
            let probabilities: Map<String, Value> =
                classes.iter().zip(scores.row(i)).map(|(c, p)| (c.to_string(), json!(p))).collect();
            let mut out = Map::new();
            out.insert(names.prediction.into(), json!(classes[scores.labels[i]]));
            out.insert(names.probabilities.into(), Value::Object(probabilities));
            out.insert(names.confidence.into(), json!(scores.confidence(i)));
            Value::Object(out)
        })
        .collect();
    if single {
        Json(results.into_iter().next().unwrap_or(Value::Null)).into_response()
    } else {
        Json(Value::Array(results)).into_response()
    }
}

fn invalid(problems: Vec<Value>) -> Response {
    let listed: Vec<String> = problems
        .iter()
        .map(|p| {
            let field = p["field"].as_str().unwrap_or("?");
            let reason = p["reason"].as_str().unwrap_or("");
            match p["row"].as_u64() {
                Some(row) => format!("{field} (applicant {row}): {reason}"),
                None => format!("{field}: {reason}"),
            }
        })
        .collect();
    error(StatusCode::BAD_REQUEST, "E002", format!("invalid fields: {}", listed.join("; ")), Value::Array(problems))
}

/// The applicants as the model's columns; absent keys and values of the
/// wrong JSON type are listed (field, applicant index) and stand as missing.
fn table(model: &CreditModel, records: &[Map<String, Value>]) -> (Applicants, Vec<Value>) {
    let mut problems = Vec::new();
    let names = model.columns().iter().map(|c| c.name.as_str());
    let converted = Applicants::from_records(names, records.len(), |row, name| {
        let Some(value) = records[row].get(name) else { return Ok::<_, std::convert::Infallible>(None) };
        Ok(match value {
            Value::Null => Some(Cell::MISSING),
            Value::Number(n) => Some(Cell::Number(n.as_f64().unwrap_or(f64::NAN))),
            Value::Bool(b) => Some(Cell::Number(f64::from(u8::from(*b)))),
            Value::String(s) => Some(Cell::Text(s.clone())),
            _ => {
                problems.push(json!({"field": name, "row": row, "reason": "expected a number, a string or null"}));
                Some(Cell::MISSING)
            }
        })
    });
    let (applicants, absent) = match converted {
        Ok(done) => done,
        Err(never) => match never {},
    };
    problems
        .extend(absent.into_iter().map(|(field, row)| json!({"field": field, "row": row, "reason": "missing field"})));
    (applicants, problems)
}
