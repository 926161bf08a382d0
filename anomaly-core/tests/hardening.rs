//! Regression tests of issue 15: files that deserialise but are corrupt,
//! sizes that would allocate without bound, and values whose arithmetic
//! overflows are typed errors, never a panic, an abort or a NaN written out.

// The fixtures' helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

use anomaly_core::consumption::{ColumnNames, Readings, MAX_KWH};
use anomaly_core::credit_risk::{Applicants, ColumnData, CreditModel};
use anomaly_core::data::FeatureMatrix;
use anomaly_core::forecast_interval::{DetectorConfig, FittedDetector, FittedProphet};
use anomaly_core::isolation_forest::{FittedIsolationForest, IsolationForestParams, MAX_ESTIMATORS};
use anomaly_core::persist::Persist;
use anomaly_core::time::{parse_duration, DurationUnit};
use anomaly_core::traits::{Fit, ParamGuard};
use anomaly_core::Error;
use serde_json::Value;

/// Three days of hourly readings with a daily cycle.
fn hourly(scale: f64) -> (Vec<i64>, Vec<f64>) {
    let ds: Vec<i64> = (0..72).map(|h| 1_767_225_600 + h * 3600).collect();
    let y = (0..72).map(|h| scale * (10.0 + (h as f64 * std::f64::consts::TAU / 24.0).sin())).collect();
    (ds, y)
}

fn detector_json() -> Value {
    let (ds, y) = hourly(1.0);
    let d = FittedDetector::fit(&DetectorConfig::default(), ds, y).unwrap();
    serde_json::from_slice(&d.to_bytes().unwrap()).unwrap()
}

fn load_detector(doc: &Value) -> anomaly_core::Result<FittedDetector> {
    FittedDetector::from_bytes(&serde_json::to_vec(doc).unwrap())
}

fn corrupt_reason(result: anomaly_core::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::CorruptModel { reason }) => reason,
        other => panic!("expected a CorruptModel error, got {other:?}"),
    }
}

#[test]
fn corrupt_forecast_models_are_refused_at_load() {
    let good = detector_json();
    load_detector(&good).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc["model"]["model"]);
        corrupt_reason(load_detector(&doc))
    };
    // A beta shorter than the features panicked in predict (index out of bounds).
    let reason = edit(&|m| m["params"]["beta"].as_array_mut().unwrap().truncate(3));
    assert!(reason.contains("beta has 3 values"), "{reason}");
    assert!(edit(&|m| m["params"]["beta"].as_array_mut().unwrap().push(1.0.into())).contains("beta has"));
    assert!(edit(&|m| m["multiplicative"].as_array_mut().unwrap().truncate(2)).contains("multiplicative has 2"));
    // A huge Fourier order allocated 48 GB when predicting.
    let reason = edit(&|m| m["seasonalities"][0]["fourier_order"] = 1_000_000_000.into());
    assert!(reason.contains("feature columns"), "{reason}");
    assert!(edit(&|m| m["y_scale"] = 0.0.into()).contains("y_scale"));
    assert!(edit(&|m| m["params"]["delta"].as_array_mut().unwrap().push(0.0.into())).contains("delta has"));
    assert!(edit(&|m| m["params"]["sigma_obs"] = (-1.0).into()).contains("sigma_obs"));
    assert!(
        edit(&|m| m["options"]["uncertainty_samples"] = 1_000_000_000_000u64.into()).contains("uncertainty_samples")
    );
    let mut doc = good.clone();
    doc["model"]["stats"]["residual_std"] = (-1.0).into();
    corrupt_reason(load_detector(&doc));
    // The same checks guard the Prophet model saved on its own.
    let mut prophet = good.clone();
    prophet["kind"] = "prophet".into();
    prophet["model"] = good["model"]["model"].clone();
    FittedProphet::from_bytes(&serde_json::to_vec(&prophet).unwrap()).unwrap();
    prophet["model"]["params"]["beta"].as_array_mut().unwrap().truncate(1);
    corrupt_reason(FittedProphet::from_bytes(&serde_json::to_vec(&prophet).unwrap()));
}

#[test]
fn a_constant_series_fits_saves_and_loads() {
    // Prophet skips the optimiser for a constant series: no objective,
    // which JSON cannot hold as NaN (the saved model could not be read).
    let (ds, _) = hourly(1.0);
    let d = FittedDetector::fit(&DetectorConfig::default(), ds.clone(), vec![5.0; ds.len()]).unwrap();
    assert!(d.model.objective.is_nan());
    let back = FittedDetector::from_bytes(&d.to_bytes().unwrap()).unwrap();
    assert!(back.model.objective.is_nan());
    let flags = back.detect(&ds, &vec![5.0; ds.len()]).unwrap();
    assert!(flags.is_anomaly.iter().all(|a| !a), "a constant series flags nothing at its own value");
}

#[test]
fn extreme_magnitudes_fit_with_finite_statistics_or_are_refused() {
    // Near 1e-300 the band underflowed and every reading was flagged; near
    // 1e300 the spread overflowed to an infinite std and a model that
    // could not be saved.
    for scale in [1e-140, 1e140] {
        let (ds, y) = hourly(scale);
        let d = FittedDetector::fit(&DetectorConfig::default(), ds.clone(), y.clone()).unwrap();
        let s = &d.stats;
        assert!(s.mean.is_finite() && s.std > 0.0 && s.std.is_finite() && s.residual_std.is_finite(), "{s:?}");
        FittedDetector::from_bytes(&d.to_bytes().unwrap()).unwrap();
        let flagged = d.detect(&ds, &y).unwrap().is_anomaly.iter().filter(|&&a| a).count();
        assert!(flagged < ds.len() / 4, "{scale}: {flagged} of {} training readings flagged", ds.len());
    }
    for scale in [1e-300, 1e-160, 1e160, 1e300] {
        let (ds, y) = hourly(scale);
        match FittedDetector::fit(&DetectorConfig::default(), ds, y) {
            Err(Error::InvalidParameter { name, reason, .. }) => assert!(name == "y" && reason.contains("1e150")),
            other => panic!("{scale}: {other:?}"),
        }
    }
}

#[test]
fn a_prophet_fit_with_too_many_fourier_terms_is_refused_before_allocating() {
    let mut options = DetectorConfig::default().prophet;
    options.seasonalities.push(anomaly_core::forecast_interval::Seasonality {
        name: "huge".into(),
        period: 7.0,
        fourier_order: 1_000_000_000,
        prior_scale: None,
        mode: None,
    });
    let (ds, y) = hourly(1.0);
    let ns: Vec<i64> = ds.iter().map(|s| s * 1_000_000_000).collect();
    let history = anomaly_core::forecast_interval::History::new(ns, y, Vec::new()).unwrap();
    let err = FittedProphet::fit(&options, &history).unwrap_err();
    assert!(err.to_string().contains("feature columns"), "{err}");
}

fn forest_json() -> Value {
    let x: Vec<f32> = (0..200).map(|i| ((i * 37) % 101) as f32).collect();
    let view = ndarray::ArrayView2::from_shape((100, 2), &x).unwrap();
    let params = IsolationForestParams { n_estimators: 3, random_state: 1, ..Default::default() };
    let forest = params.check().unwrap().fit(&FeatureMatrix::new(view, None).unwrap()).unwrap();
    serde_json::from_slice(&forest.to_bytes().unwrap()).unwrap()
}

#[test]
fn corrupt_forests_are_refused_at_load() {
    let good = forest_json();
    FittedIsolationForest::from_bytes(&serde_json::to_vec(&good).unwrap()).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc["model"]);
        corrupt_reason(FittedIsolationForest::from_bytes(&serde_json::to_vec(&doc).unwrap()))
    };
    // Node 0 splits into nodes 1 and 2; pointing node 1 at 2 makes 2 (and 3) share a parent.
    let reason = edit(&|m| {
        let tree = &mut m["trees"][0];
        let left = tree["left"][1].as_u64().unwrap();
        assert_ne!(left, 1, "node 1 of the fixture is a split");
        let shared = tree["left"][0].as_u64().unwrap() + 1;
        tree["left"][1] = shared.into();
    });
    assert!(reason.contains("child of two nodes") || reason.contains("children at"), "{reason}");
    let reason = edit(&|m| m["trees"][0]["threshold"].as_array_mut().unwrap().truncate(5));
    assert!(reason.contains("threshold has 5 entries"), "{reason}");
    let reason = edit(&|m| m["max_samples"] = (1u64 << 63).into());
    assert!(reason.contains("max_samples"), "{reason}");
}

#[test]
fn forest_sizes_are_bounded() {
    let params = IsolationForestParams { n_estimators: MAX_ESTIMATORS + 1, ..Default::default() };
    assert!(matches!(params.check(), Err(Error::InvalidParameter { name, .. }) if name == "n_estimators"));
}

fn credit(scale: &str) -> String {
    format!(
        r#"{{"format": "anomaly.credit_risk", "version": 1, "sklearn_version": "1.9.1",
      "input": {{"named": true, "columns": [{{"name": "a", "kind": "numeric", "categories": null}},
                                            {{"name": "b", "kind": "numeric", "categories": null}}]}},
      "classes": [0, 1],
      "preprocessing": {{"type": "standard_scaler", "mean": [0.0, 0.0], "scale": {scale}}},
      "classifier": {{"type": "logistic_regression", "coef": [[1.0, -1.0]], "intercept": [0.0],
                     "n_features": 2, "accepts_nan": false}}}}"#
    )
}

#[test]
fn credit_scalers_and_overflowing_features() {
    for bad in ["[0.0, 1.0]", "[-2.0, 1.0]"] {
        let reason = corrupt_reason(CreditModel::from_json(credit(bad).as_bytes()));
        assert!(reason.contains("scale"), "{reason}");
    }
    let model = CreditModel::from_json(credit("[0.001, 0.001]").as_bytes()).unwrap();
    let rows = |a: f64, b: f64| {
        Applicants::new().column("a", ColumnData::Numbers(vec![1.0, a])).column("b", ColumnData::Numbers(vec![2.0, b]))
    };
    // 1e308 / 0.001 is infinite: scikit-learn raises "Input X contains
    // infinity"; the scorer answered NaN probabilities.
    match model.score(&rows(1e308, 1e308)) {
        Err(Error::InvalidFields { problems }) => {
            assert!(problems.iter().all(|p| p.row == Some(1)), "{problems:?}");
            assert_eq!(problems.len(), 2, "{problems:?}");
        }
        other => panic!("{other:?}"),
    }
    let scores = model.score(&rows(3.0, 4.0)).unwrap();
    assert!((0..2).all(|i| scores.row(i).iter().all(|p| p.is_finite())));
}

#[test]
fn readings_above_the_kwh_bound_are_refused_so_aggregates_stay_finite() {
    let names = vec!["a".to_owned()];
    let err = Readings::new(names, vec![0, 0], vec![0, 3600], vec![1.0, 1e308]).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { row: 1, .. }), "{err}");
    assert!(err.to_string().contains("1e12"));
    Readings::new(vec!["a".into()], vec![0], vec![0], vec![MAX_KWH]).unwrap();
    let _ = ColumnNames::default();
}

#[test]
fn durations_past_a_century_are_refused() {
    for text in ["101y", "18446744073709551615s", "9223372036854775807s", "36525d1s", "5300w"] {
        assert!(parse_duration("--interval", text, DurationUnit::Second).is_err(), "{text}");
    }
    assert!(parse_duration("--older-than", "36500d", DurationUnit::Second).is_ok());
}
