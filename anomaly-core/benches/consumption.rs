//! Detection plus monthly aggregates of 7.2 M hourly readings from memory:
//! 10,000 clients x 30 days (literal and calibrated rules) and 1,000 clients
//! x 300 days (calibrated, whose daily tail update dominates long series).

use std::hint::black_box;

use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
use anomaly_core::consumption::{ConsumptionParams, Method};
use anomaly_core::traits::{Detect, ParamGuard};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench_detect(c: &mut Criterion, name: &str, clients: usize, days: u32, method: Method) {
    let spec = SimulationSpec { clients, days, ..Default::default() };
    let (readings, _) = simulate(&spec).expect("valid spec");
    let rules = ConsumptionParams { method, ..Default::default() }.check().expect("valid params");
    let mut group = c.benchmark_group("consumption");
    group.sample_size(10);
    group.bench_function(name, |b| b.iter(|| black_box(rules.detect(black_box(&readings)).expect("detect"))));
    group.finish();
}

fn consumption(c: &mut Criterion) {
    bench_detect(c, "detect_10k_clients_30d_hourly", 10_000, 30, Method::Literal);
}

fn calibrated(c: &mut Criterion) {
    bench_detect(c, "calibrated_10k_clients_30d_hourly", 10_000, 30, Method::Calibrated);
    bench_detect(c, "calibrated_1k_clients_300d_hourly", 1_000, 300, Method::Calibrated);
}

criterion_group!(benches, consumption, calibrated);
criterion_main!(benches);
