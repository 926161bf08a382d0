//! Prophet's model in Rust: fit a 4032-point five-minute series (daily and
//! weekly seasonality) in both modes, and forecast it plus a week with
//! 1000-draw intervals.

use std::hint::black_box;

use anomaly_core::forecast_interval::{FittedProphet, History, Intervals, Mode, ProphetOptions, SeasonalitySetting};
use anomaly_core::rng::Rng;
use criterion::{criterion_group, criterion_main, Criterion};

const FIVE_MIN: i64 = 300_000_000_000;

fn series() -> History {
    let mut rng = Rng::new(0);
    let ds: Vec<i64> = (0..4032).map(|i| 1_709_510_400_000_000_000 + i * FIVE_MIN).collect();
    let y = (0..4032)
        .map(|i| {
            let t = i as f64;
            50.0 + 0.002 * t
                + 5.0 * (std::f64::consts::TAU * t / 288.0).sin()
                + 2.0 * (std::f64::consts::TAU * t / 2016.0).sin()
                + rng.normal()
        })
        .collect();
    History::new(ds, y, Vec::new()).expect("valid series")
}

fn forecast(c: &mut Criterion) {
    let history = series();
    let mut group = c.benchmark_group("forecast");
    group.sample_size(10);
    for (name, mode) in [("additive", Mode::Additive), ("multiplicative", Mode::Multiplicative)] {
        let options = ProphetOptions {
            seasonality_mode: mode,
            interval_width: 0.95,
            daily_seasonality: SeasonalitySetting::Enabled(true),
            weekly_seasonality: SeasonalitySetting::Enabled(true),
            yearly_seasonality: SeasonalitySetting::Enabled(false),
            ..Default::default()
        };
        group.bench_function(format!("fit_4032_{name}"), |b| {
            b.iter(|| black_box(FittedProphet::fit(&options, &history).expect("fit")))
        });
        let model = FittedProphet::fit(&options, &history).expect("fit");
        let future: Vec<i64> = (0..4032 + 2016).map(|i| 1_709_510_400_000_000_000 + i * FIVE_MIN).collect();
        group.bench_function(format!("predict_6048_with_intervals_{name}"), |b| {
            b.iter(|| black_box(model.predict(&future, &[], Intervals::Simulated { seed: 1 }).expect("predict")))
        });
    }
    group.finish();
}

criterion_group!(benches, forecast);
criterion_main!(benches);
