//! A Prophet-compatible model (`anomaly.forecast_interval.Prophet` pickles and
//! files): loaded, then asked for forecasts inside, around and far outside
//! its history.
#![no_main]
use anomaly_core::forecast_interval::{FittedProphet, Intervals};
use anomaly_core::persist::Persist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = FittedProphet::from_bytes(data) else { return };
    let ds =
        [model.start, model.history_last, model.history_last.saturating_add(86_400_000_000_000), i64::MAX, i64::MIN];
    let regressors: Vec<(String, Vec<f64>)> =
        model.regressors.iter().map(|r| (r.name.clone(), vec![1.0; ds.len()])).collect();
    for intervals in [Intervals::Analytic, Intervals::None, Intervals::Simulated { seed: 1 }] {
        if let Ok(f) = model.predict(&ds, &regressors, intervals) {
            assert!(f.yhat.iter().all(|v| !v.is_nan()), "NaN forecast from a loaded model");
        }
    }
});
