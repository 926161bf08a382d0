//! An isolation-forest model file (`anomaly iforest fit`, `IsolationForest.save`,
//! pickles): loaded, then used to score and explain a few rows.
#![no_main]
use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::FittedIsolationForest;
use anomaly_core::persist::Persist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = FittedIsolationForest::from_bytes(data) else { return };
    let width = model.n_features.min(64);
    let values: Vec<f32> = (0..4 * width).map(|i| [0.0, 1.5, -3.0, 1e30][i % 4]).collect();
    let Ok(view) = ndarray::ArrayView2::from_shape((4, width), &values) else { return };
    let Ok(x) = FeatureMatrix::new(view, Some(model.n_features)) else { return };
    if let Ok(scores) = model.score_samples(&x) {
        assert!(scores.iter().all(|s| s.is_finite()), "non-finite score from a loaded model: {scores:?}");
    }
    let _ = model.explain(&x);
});
