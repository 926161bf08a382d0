//! Live service KPIs: latency percentiles over the last requests,
//! throughput over the last minute, success and error rates, and the state
//! the credit team's dashboard shows (EXCELENTE / BUENO / REGULAR / CRITICO).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Latencies kept for the percentiles.
const WINDOW: usize = 10_000;
/// Seconds of history for the throughput.
const SECONDS: u64 = 60;

/// Degradation thresholds: p95 above 3 s, server errors above 5%, or
/// fewer than 1 request/s while requests are arriving.
const SLOW_P95_MS: f64 = 3000.0;
const MAX_ERROR_RATE: f64 = 0.05;
const MIN_THROUGHPUT: f64 = 1.0;

#[derive(Debug)]
pub(crate) struct Metrics {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    latencies_us: VecDeque<u64>,
    /// (second since start, requests in that second), oldest first.
    per_second: VecDeque<(u64, u64)>,
    total: u64,
    succeeded: u64,
    client_errors: u64,
    server_errors: u64,
}

/// What `GET /metrics` returns.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    pub(crate) state: &'static str,
    pub(crate) requests: u64,
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
    pub(crate) window: usize,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics { started: Instant::now(), inner: Mutex::new(Inner::default()) }
    }

    /// Records one scoring request with its HTTP status.
    pub(crate) fn record(&self, elapsed: Duration, status: u16) {
        let second = self.started.elapsed().as_secs();
        let mut m = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.total += 1;
        match status {
            200..=299 => m.succeeded += 1,
            400..=499 => m.client_errors += 1,
            _ => m.server_errors += 1,
        }
        if m.latencies_us.len() == WINDOW {
            m.latencies_us.pop_front();
        }
        m.latencies_us.push_back(elapsed.as_micros() as u64);
        match m.per_second.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => m.per_second.push_back((second, 1)),
        }
        while m.per_second.front().is_some_and(|(s, _)| s + SECONDS <= second) {
            m.per_second.pop_front();
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = self.started.elapsed();
        let m = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sorted: Vec<u64> = m.latencies_us.iter().copied().collect();
        sorted.sort_unstable();
        let percentile = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let at = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[at] as f64 / 1000.0
        };
        let latency =
            Latency { p50: percentile(0.50), p95: percentile(0.95), p99: percentile(0.99), window: sorted.len() };
        let recent: u64 = m.per_second.iter().filter(|(s, _)| s + SECONDS > now.as_secs()).map(|(_, n)| n).sum();
        let span = now.as_secs_f64().clamp(1.0, SECONDS as f64);
        let throughput = recent as f64 / span;
        let rate = |n: u64| if m.total == 0 { 0.0 } else { n as f64 / m.total as f64 };
        let (success_rate, error_rate) = (if m.total == 0 { 1.0 } else { rate(m.succeeded) }, rate(m.server_errors));
        let mut degraded = Vec::new();
        if latency.p95 > SLOW_P95_MS {
            degraded.push("p95 latency above 3 s");
        }
        if error_rate > MAX_ERROR_RATE {
            degraded.push("server error rate above 5%");
        }
        if recent > 0 && throughput < MIN_THROUGHPUT {
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
            requests: m.total,
            succeeded: m.succeeded,
            client_errors: m.client_errors,
            server_errors: m.server_errors,
            success_rate,
            error_rate,
            throughput_per_s: throughput,
            latency_ms: latency,
            uptime_s: now.as_secs_f64(),
            degraded_because: degraded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_thresholds() {
        let m = Metrics::new();
        assert_eq!(m.snapshot().state, "EXCELENTE");
        for _ in 0..90 {
            m.record(Duration::from_millis(2), 200);
        }
        for _ in 0..10 {
            m.record(Duration::from_millis(2), 500);
        }
        let s = m.snapshot();
        assert_eq!((s.requests, s.server_errors), (100, 10));
        assert!(s.degraded_because.contains(&"server error rate above 5%"), "{s:?}");
        assert_ne!(s.state, "EXCELENTE");
        for _ in 0..10 {
            m.record(Duration::from_secs(5), 200);
        }
        let s = m.snapshot();
        assert!(s.latency_ms.p99 >= 5000.0 && s.latency_ms.p50 < 3.0);
    }
}
