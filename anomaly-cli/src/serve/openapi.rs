//! The OpenAPI 3 document of the service, derived from the loaded model
//! (each applicant field with its type and known categories), and a
//! self-contained docs page (no CDN: it works on an air-gapped server).

use anomaly_core::credit_risk::{Category, ColumnKind, CreditModel};
use serde_json::{json, Map, Value};

pub(crate) fn document(model: Option<&CreditModel>, db: bool) -> Value {
    let mut doc = match model {
        Some(model) => credit(model),
        None => json!({
            "openapi": "3.0.3",
            "info": {"title": "anomaly", "version": env!("CARGO_PKG_VERSION"),
                     "description": "Read-only queries over the anomaly results tables."},
            "paths": {},
            "components": {"schemas": {}},
        }),
    };
    if db {
        add_queries(&mut doc);
    }
    doc
}

/// The dashboard query paths (`--db`).
fn add_queries(doc: &mut Value) {
    let q = |name: &str, kind: &str, description: &str| json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": kind}});
    let ok = |description: &str| {
        json!({
            "200": {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "E002 invalid parameter",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "503": {"description": "E503 database unavailable",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
        })
    };
    let paths = &mut doc["paths"];
    paths["/anomalies"] = json!({"get": {
        "summary": "Results, newest first, flagged only unless all=true; paginated",
        "parameters": [
            q("variable", "string", "only this variable"),
            q("from", "string", "from this datetime (YYYY-MM-DD[ HH:MM[:SS]])"),
            q("to", "string", "before this datetime"),
            q("min_score", "number", "only scores at or above (0-100)"),
            q("all", "boolean", "every result, not only anomalies"),
            q("limit", "integer", "page size, 1-10000 (default 100)"),
            q("offset", "integer", "rows to skip (default 0)"),
        ],
        "responses": ok("{total, limit, offset, items}"),
    }});
    paths["/variables"] = json!({"get": {"summary": "Statistics per variable", "responses": ok("{variables}")}});
    paths["/monthly"] = json!({"get": {
        "summary": "Statistics per month and variable",
        "parameters": [q("variable", "string", "only this variable")],
        "responses": ok("{months}"),
    }});
    paths["/consumption/anomalies"] = json!({"get": {
        "summary": "Flagged consumption readings, newest first; paginated",
        "parameters": [
            q("client", "string", "only this client"),
            q("severity", "string", "crítica, alta, media, baja or normal"),
            q("from", "string", "from this datetime"),
            q("to", "string", "before this datetime"),
            q("limit", "integer", "page size, 1-10000 (default 100)"),
            q("offset", "integer", "rows to skip (default 0)"),
        ],
        "responses": ok("{total, limit, offset, items}"),
    }});
    paths["/consumption/episodes"] = json!({"get": {
        "summary": "Episodes (runs of one rule's flags per client), latest start first; paginated",
        "parameters": [
            q("client", "string", "only this client"),
            q("type", "string", "outlier, spike, night_use, plantation or flat"),
            q("min_severity", "string", "peak severity at least this: baja, media, alta or crítica"),
            q("from", "string", "episodes ending after this datetime"),
            q("to", "string", "episodes starting before this datetime"),
            q("limit", "integer", "page size, 1-10000 (default 100)"),
            q("offset", "integer", "rows to skip (default 0)"),
        ],
        "responses": ok("{total, limit, offset, items}"),
    }});
    paths["/consumption/clients"] = json!({"get": {
        "summary": "Per-client statistics, most anomalous first",
        "parameters": [q("client", "string", "only this client")],
        "responses": ok("{clients}"),
    }});
    paths["/consumption/monthly"] = json!({"get": {
        "summary": "Monthly aggregates per client, with each month's suspicion, its rank that month, episodes and rules",
        "parameters": [q("client", "string", "only this client")],
        "responses": ok("{months}"),
    }});
    paths["/consumption/summary"] = json!({"get": {
        "summary": "Totals and the top 10 clients", "responses": ok("{clients, readings, anomalies, ...}"),
    }});
    paths["/summary"] = json!({"get": {
        "summary": "Totals, anomaly percent and state (Normal / Precaución / Crítico)",
        "responses": ok("{results, anomalies, percent, state, variables, first, last}"),
    }});
}

fn credit(model: &CreditModel) -> Value {
    let mut properties = Map::new();
    for column in model.columns() {
        let schema = match column.kind {
            ColumnKind::Numeric => json!({"type": "number", "nullable": true}),
            ColumnKind::Categorical => {
                let known: Vec<Value> = column
                    .categories
                    .iter()
                    .flatten()
                    .filter_map(|c| match c {
                        Category::Text(s) => Some(json!(s)),
                        _ => None,
                    })
                    .collect();
                let mut s = json!({"type": "string", "nullable": true});
                if !known.is_empty() {
                    s["description"] = json!(format!("known categories: {}", join(&known)));
                    s["example"] = known[0].clone();
                }
                s
            }
        };
        properties.insert(column.name.clone(), schema);
    }
    let required: Vec<&str> = model.columns().iter().map(|c| c.name.as_str()).collect();
    let classes: Vec<String> = model.classes().iter().map(ToString::to_string).collect();
    let result = |prediction: &str, probabilities: &str, confidence: &str| {
        json!({
            "type": "object",
            "required": [prediction, probabilities, confidence],
            "properties": {
                prediction: {"description": format!("predicted class, one of {}", classes.join(", "))},
                probabilities: {
                    "type": "object",
                    "description": "probability of each class",
                    "additionalProperties": {"type": "number"},
                },
                confidence: {"type": "number", "description": "probability of the predicted class"},
            },
        })
    };
    let error = json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": ["E001", "E002", "E413", "E500"]},
                "message": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object", "properties": {
                    "field": {"type": "string"},
                    "row": {"type": "integer", "nullable": true},
                    "reason": {"type": "string"},
                }}},
            },
        }},
    });
    let predict = |summary: &str, result_ref: &str| {
        json!({
            "summary": summary,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/Applicant"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Applicant"}},
            ]}}}},
            "responses": {
                "200": {"description": "scores (an object for one applicant, a list for a list)",
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"$ref": result_ref},
                            {"type": "array", "items": {"$ref": result_ref}},
                        ]}}}},
                "400": {"description": "E001 no data, E002 invalid fields (every one listed)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "413": {"description": "E413 body too large",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "500": {"description": "E500 internal error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        })
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "anomaly credit scoring",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "A scikit-learn {} pipeline exported with anomaly.credit_risk.export_sklearn, scored in Rust \
                 with scikit-learn's own arithmetic.",
                model.sklearn_version()
            ),
        },
        "paths": {
            "/predict": {"post": predict("Score one applicant or a list", "#/components/schemas/Result")},
            "/predecir": {"post": predict("Alias of /predict with the Flask service's field names",
                                          "#/components/schemas/Resultado")},
            "/metrics": {"get": {"summary": "Prometheus metrics: requests, latency histograms, model, database",
                "responses": {"200": {"description": "Prometheus text (OpenMetrics on request)", "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}}}}}}},
            "/metrics.json": {"get": {"summary": "Latency percentiles, throughput, success rate and state",
                "responses": {"200": {"description": "KPIs", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["state"], "properties": {
                        "state": {"type": "string", "enum": ["EXCELENTE", "BUENO", "REGULAR", "CRITICO"]}}}}}}}}},
            "/health": {"get": {"summary": "Liveness and the loaded model",
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"]}}}}}}},
            "/ready": {"get": {"summary": "Readiness: the model loaded and the database answering",
                "responses": {
                    "200": {"description": "ready", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["ready"]}}}},
                    "503": {"description": "not ready", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["ready"]}}}}}}},
        },
        "components": {"schemas": {
            "Applicant": {"type": "object", "required": required, "properties": properties},
            "Result": result("prediction", "probabilities", "confidence"),
            "Resultado": result("prediccion", "probabilidades", "confianza"),
            "Error": error,
        }},
    })
}

fn join(values: &[Value]) -> String {
    values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A readable page of the document: endpoints, the applicant's fields, and
/// a form that posts an example to `/predict`.
pub(crate) fn page(doc: &Value) -> String {
    let mut rows = String::new();
    let applicant = &doc["components"]["schemas"]["Applicant"]["properties"];
    let mut example = Map::new();
    if let Some(fields) = applicant.as_object() {
        for (name, schema) in fields {
            let kind = schema["type"].as_str().unwrap_or("");
            let note = schema["description"].as_str().unwrap_or("");
            rows.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(name),
                escape(kind),
                escape(note)
            ));
            example.insert(name.clone(), if kind == "number" { json!(0) } else { schema["example"].clone() });
        }
    }
    let mut endpoints = String::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for (method, op) in ops.as_object().into_iter().flatten() {
                endpoints.push_str(&format!(
                    "<li><code>{} {}</code>: {}</li>\n",
                    method.to_uppercase(),
                    escape(path),
                    escape(op["summary"].as_str().unwrap_or(""))
                ));
            }
        }
    }
    let example = escape(&serde_json::to_string_pretty(&Value::Object(example)).unwrap_or_default());
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd}}
textarea{{width:100%;height:16em;font-family:monospace}}pre{{background:#f4f4f4;padding:1em}}</style></head>
<body><h1>{title}</h1><p>{description}</p>
<h2>Endpoints</h2><ul>{endpoints}</ul><p>The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Applicant fields</h2><table><tr><th>field</th><th>type</th><th>notes</th></tr>{rows}</table>
<h2>Try it</h2><textarea id="body">{example}</textarea><br><button id="send" onclick="send()">POST /predict</button>
<pre id="out"></pre>
<script>
async function send() {{
  const r = await fetch('/predict', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                                      body: document.getElementById('body').value}});
  document.getElementById('out').textContent = r.status + '\n' + JSON.stringify(await r.json(), null, 2);
}}
</script></body></html>"#,
        title = escape(doc["info"]["title"].as_str().unwrap_or("")),
        description = escape(doc["info"]["description"].as_str().unwrap_or("")),
    )
}
