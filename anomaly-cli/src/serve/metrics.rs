//! Service metrics, recorded for every request by one middleware:
//! `GET /metrics` in Prometheus' text format (request counts by route,
//! method and status; latency histograms by route; model info; database
//! up), and the credit team's JSON KPIs at `GET /metrics.json` (latency
//! percentiles, throughput and error rates over the last minute, and the
//! state their dashboard shows: EXCELENTE / BUENO / REGULAR / CRITICO).
//!
//! Both come from histograms: recording is a few atomic adds and reading
//! merges fixed-size bucket arrays (no samples kept, nothing sorted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Seconds of history for the JSON KPIs, in slots of `SLOT_S` seconds.
const SLOTS: usize = 6;
const SLOT_S: u64 = 10;
/// Latency buckets of the JSON KPIs: bucket `b` holds `[2^(b/8), 2^((b+1)/8))`
/// microseconds, so a percentile is known within 9%; 240 buckets reach 17 min.
const BUCKETS: usize = 240;

/// Degradation thresholds: p95 above 3 s, server errors above 5%, or
/// fewer than 1 request/s while requests are arriving.
const SLOW_P95_MS: f64 = 3000.0;
const MAX_ERROR_RATE: f64 = 0.05;
const MIN_THROUGHPUT: f64 = 1.0;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

pub(crate) struct Metrics {
    started: Instant,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    database_up: Gauge,
    window: Mutex<[Slot; SLOTS]>,
    total: AtomicU64,
}

/// Ten seconds of requests for the JSON KPIs.
#[derive(Clone)]
struct Slot {
    epoch: u64,
    buckets: [u32; BUCKETS],
    total: u64,
    succeeded: u64,
    client_errors: u64,
    server_errors: u64,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { epoch: u64::MAX, buckets: [0; BUCKETS], total: 0, succeeded: 0, client_errors: 0, server_errors: 0 }
    }
}

/// What `GET /metrics.json` returns (the last minute).
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    pub(crate) state: &'static str,
    pub(crate) requests: u64,
    pub(crate) requests_total: u64,
    pub(crate) succeeded: u64,
    pub(crate) client_errors: u64,
    pub(crate) server_errors: u64,
    pub(crate) success_rate: f64,
    pub(crate) error_rate: f64,
    pub(crate) throughput_per_s: f64,
    pub(crate) latency_ms: Latency,
    pub(crate) uptime_s: f64,
    pub(crate) degraded_because: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) window_s: u64,
}

impl Metrics {
    /// Metrics of a service; `model` is `(kind, version, classes)` of the
    /// served model, exported as `anomaly_model_info`.
    pub(crate) fn new(model: Option<(&str, &str, String)>) -> Self {
        let mut registry = Registry::with_prefix("anomaly");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
        });
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the results database answered its last use, else 0",
            database_up.clone(),
        );
        if let Some((kind, version, classes)) = model {
            let info = Info::new(vec![
                ("kind".to_owned(), kind.to_owned()),
                ("sklearn_version".to_owned(), version.to_owned()),
                ("classes".to_owned(), classes),
            ]);
            registry.register("model", "The served model", info);
        }
        Metrics {
            started: Instant::now(),
            registry,
            requests,
            latency,
            database_up,
            window: Mutex::new(std::array::from_fn(|_| Slot::default())),
            total: AtomicU64::new(0),
        }
    }

    /// Records one request: its route (the matched pattern), method,
    /// status and latency.
    pub(crate) fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_owned(), method: method.to_owned(), status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(elapsed.as_secs_f64());
        self.total.fetch_add(1, Ordering::Relaxed);
        let epoch = self.started.elapsed().as_secs() / SLOT_S;
        let micros = elapsed.as_micros().max(1) as f64;
        let bucket = ((micros.log2() * 8.0) as usize).min(BUCKETS - 1);
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = &mut window[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot { epoch, ..Slot::default() };
        }
        slot.buckets[bucket] += 1;
        slot.total += 1;
        match status {
            200..=299 => slot.succeeded += 1,
            400..=499 => slot.client_errors += 1,
            _ => slot.server_errors += 1,
        }
    }

    /// Whether the database answered its last use.
    pub(crate) fn database_up(&self, up: bool) {
        self.database_up.set(i64::from(up));
    }

    /// `GET /metrics`, negotiated (see [`exposition`]).
    pub(crate) fn response(&self, headers: &axum::http::HeaderMap) -> axum::response::Response {
        exposition(&self.registry, headers)
    }

    /// The JSON KPIs over the last minute.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = self.started.elapsed();
        let epoch = now.as_secs() / SLOT_S;
        let mut merged = Slot { epoch, ..Slot::default() };
        {
            let window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for slot in window.iter().filter(|s| s.epoch <= epoch && s.epoch + SLOTS as u64 > epoch) {
                for (m, b) in merged.buckets.iter_mut().zip(&slot.buckets) {
                    *m += b;
                }
                merged.total += slot.total;
                merged.succeeded += slot.succeeded;
                merged.client_errors += slot.client_errors;
                merged.server_errors += slot.server_errors;
            }
        }
        let percentile = |q: f64| -> f64 {
            let rank = (q * merged.total as f64).ceil().max(1.0) as u64;
            let mut seen = 0u64;
            for (b, &n) in merged.buckets.iter().enumerate() {
                seen += u64::from(n);
                if seen >= rank && merged.total > 0 {
                    // The bucket's geometric middle, in ms.
                    return 2f64.powf((b as f64 + 0.5) / 8.0) / 1000.0;
                }
            }
            0.0
        };
        let latency = Latency {
            p50: percentile(0.50),
            p95: percentile(0.95),
            p99: percentile(0.99),
            window_s: SLOTS as u64 * SLOT_S,
        };
        let span = now.as_secs_f64().clamp(1.0, (SLOTS as u64 * SLOT_S) as f64);
        let throughput = merged.total as f64 / span;
        let rate = |n: u64| if merged.total == 0 { 0.0 } else { n as f64 / merged.total as f64 };
        let (success_rate, error_rate) =
            (if merged.total == 0 { 1.0 } else { rate(merged.succeeded) }, rate(merged.server_errors));
        let mut degraded = Vec::new();
        if latency.p95 > SLOW_P95_MS {
            degraded.push("p95 latency above 3 s");
        }
        if error_rate > MAX_ERROR_RATE {
            degraded.push("server error rate above 5%");
        }
        if merged.total > 0 && throughput < MIN_THROUGHPUT {
            degraded.push("throughput below 1 request/s");
        }
        let state = match degraded.len() {
            0 if error_rate < 0.01 && latency.p95 < 1000.0 => "EXCELENTE",
            0 => "BUENO",
            1 => "REGULAR",
            _ => "CRITICO",
        };
        Snapshot {
            state,
            requests: merged.total,
            requests_total: self.total.load(Ordering::Relaxed),
            succeeded: merged.succeeded,
            client_errors: merged.client_errors,
            server_errors: merged.server_errors,
            success_rate,
            error_rate,
            throughput_per_s: throughput,
            latency_ms: latency,
            uptime_s: now.as_secs_f64(),
            degraded_because: degraded,
        }
    }
}

/// A registry's `GET /metrics` answer: Prometheus' text format 0.0.4,
/// or OpenMetrics when the scraper's `Accept` asks for it.
pub(crate) fn exposition(registry: &Registry, headers: &axum::http::HeaderMap) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (content_type, classic) = if accept.contains("application/openmetrics-text") {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", false)
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", true)
    };
    ([(header::CONTENT_TYPE, content_type)], encode(registry, classic)).into_response()
}

/// The registry in OpenMetrics text, or with `classic` in Prometheus' text
/// format 0.0.4 (what scrapers and parsers assume unless they ask for
/// OpenMetrics): counter and info families named by their samples
/// (`_total`, `_info`, an info as a gauge), no `# EOF`.
pub(crate) fn encode(registry: &Registry, classic: bool) -> String {
    let mut open = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut open, registry);
    if !classic {
        return open;
    }
    let kinds: std::collections::HashMap<&str, &str> =
        open.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' ')).collect();
    let renamed = |name: &str| match kinds.get(name).copied() {
        Some("counter") => (format!("{name}_total"), "counter"),
        Some("info") => (format!("{name}_info"), "gauge"),
        Some("unknown") | None => (name.to_owned(), "untyped"),
        Some(kind) => (name.to_owned(), kind),
    };
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = renamed(rest.split(' ').next().unwrap_or_default());
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name).0));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_percentiles_follow_the_requests() {
        let m = Metrics::new(None);
        assert_eq!(m.snapshot().state, "EXCELENTE");
        for _ in 0..90 {
            m.record("/predict", "POST", 200, Duration::from_millis(2));
        }
        for _ in 0..10 {
            m.record("/predict", "POST", 500, Duration::from_millis(2));
        }
        let s = m.snapshot();
        assert_eq!((s.requests, s.server_errors), (100, 10));
        assert!(s.degraded_because.contains(&"server error rate above 5%"), "{s:?}");
        assert_ne!(s.state, "EXCELENTE");
        for _ in 0..10 {
            m.record("/anomalies", "GET", 200, Duration::from_secs(5));
        }
        let s = m.snapshot();
        // Within the buckets' 9%.
        assert!((s.latency_ms.p99 / 5000.0 - 1.0).abs() < 0.09 && (s.latency_ms.p50 / 2.0 - 1.0).abs() < 0.09, "{s:?}");
        let text = encode(&m.registry, true);
        assert!(text.contains("# TYPE anomaly_http_requests_total counter") && !text.contains("# EOF"), "{text}");
        assert!(encode(&m.registry, false).ends_with("# EOF\n"));
        assert!(
            text.contains("anomaly_http_requests_total{route=\"/predict\",method=\"POST\",status=\"500\"} 10"),
            "{text}"
        );
        assert!(text.contains("anomaly_http_request_duration_seconds_count{route=\"/anomalies\"} 10"), "{text}");
    }
}
