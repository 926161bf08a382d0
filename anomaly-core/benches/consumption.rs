//! Detection plus monthly aggregates over 10,000 clients x 30 days hourly
//! (7.2 M readings), from memory.

use std::hint::black_box;

use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
use anomaly_core::consumption::ConsumptionParams;
use anomaly_core::traits::{Detect, ParamGuard};
use criterion::{criterion_group, criterion_main, Criterion};

fn consumption(c: &mut Criterion) {
    let spec = SimulationSpec { clients: 10_000, days: 30, ..Default::default() };
    let (readings, _) = simulate(&spec).expect("valid spec");
    let rules = ConsumptionParams::default().check().expect("valid defaults");
    let mut group = c.benchmark_group("consumption");
    group.sample_size(10);
    group.bench_function("detect_10k_clients_30d_hourly", |b| {
        b.iter(|| black_box(rules.detect(black_box(&readings)).expect("detect")))
    });
    group.finish();
}

criterion_group!(benches, consumption);
criterion_main!(benches);
