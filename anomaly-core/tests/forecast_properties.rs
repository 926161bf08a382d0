//! Properties of the forecasting detector: scaling y scales yhat, shifting y
//! shifts yhat (additive mode, up to the priors' pull on the rescaled
//! problem), save/load changes nothing, scores stay in 0..100, and injected
//! spikes are found.

use anomaly_core::forecast_interval::{
    DetectorConfig, FittedDetector, FittedProphet, History, Intervals, LongReadings, Mode, MultiDetector,
    ProphetOptions, SeasonalitySetting,
};
use anomaly_core::persist::Persist;
use proptest::prelude::*;

const FIVE_MIN: i64 = 300_000_000_000;
const START: i64 = 1_709_510_400_000_000_000; // 2024-03-04

fn series(n: usize, seed: u64, level: f64, noise: f64) -> (Vec<i64>, Vec<f64>) {
    let mut rng = anomaly_core::rng::Rng::new(seed);
    let ds = (0..n).map(|i| START + i as i64 * FIVE_MIN).collect();
    let y = (0..n)
        .map(|i| {
            let t = i as f64;
            level + 0.001 * t + 3.0 * (std::f64::consts::TAU * t / 288.0).sin() + noise * rng.normal()
        })
        .collect();
    (ds, y)
}

/// The detectors count seconds; `series` gives the Prophet model's ns.
fn seconds(ds: &[i64]) -> Vec<i64> {
    ds.iter().map(|d| d / 1_000_000_000).collect()
}

fn options(mode: Mode) -> ProphetOptions {
    ProphetOptions {
        seasonality_mode: mode,
        daily_seasonality: SeasonalitySetting::Enabled(true),
        weekly_seasonality: SeasonalitySetting::Enabled(false),
        yearly_seasonality: SeasonalitySetting::Enabled(false),
        uncertainty_samples: 0,
        ..Default::default()
    }
}

fn yhat(ds: &[i64], y: &[f64], mode: Mode) -> Vec<f64> {
    let model = FittedProphet::fit(&options(mode), &History::new(ds.to_vec(), y.to_vec(), vec![]).expect("valid"))
        .expect("fit");
    model.predict(ds, &[], Intervals::None).expect("predict").yhat
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn scaling_y_scales_yhat(seed in any::<u64>(), factor in 0.01f64..100.0, multiplicative in any::<bool>()) {
        let mode = if multiplicative { Mode::Multiplicative } else { Mode::Additive };
        let (ds, y) = series(600, seed, 20.0, 1.0);
        let base = yhat(&ds, &y, mode);
        let scaled: Vec<f64> = y.iter().map(|v| v * factor).collect();
        let again = yhat(&ds, &scaled, mode);
        // y / max|y| is the same problem; rounding in the scaled data moves
        // the optimiser's stopping point along flat directions by ~1e-5.
        for (a, b) in base.iter().zip(&again) {
            prop_assert!((a * factor - b).abs() <= 1e-4 * factor * 20.0, "{} vs {}", a * factor, b);
        }
    }

    #[test]
    fn shifting_y_shifts_yhat_in_additive_mode(seed in any::<u64>(), shift in -3.0f64..3.0) {
        let (ds, y) = series(600, seed, 20.0, 1.0);
        let base = yhat(&ds, &y, Mode::Additive);
        let shifted: Vec<f64> = y.iter().map(|v| v + shift).collect();
        let again = yhat(&ds, &shifted, Mode::Additive);
        // Prophet's absmax scaling puts the priors on y / max|y|, so a shift
        // changes their strength and the model is only approximately
        // shift-equivariant (exactly so under minmax scaling): for shifts up
        // to 15% of the level, equal up to 5% of the noise level (1.0).
        let worst = base.iter().zip(&again).map(|(a, b)| (a + shift - b).abs()).fold(0.0, f64::max);
        prop_assert!(worst < 0.05, "worst {}", worst);
    }

    #[test]
    fn scores_stay_in_range_and_files_round_trip(seed in any::<u64>(), spike in -50.0f64..50.0) {
        let (ds, mut y) = series(700, seed, 30.0, 0.5);
        let ds = seconds(&ds);
        let (train_ds, train_y) = (ds[..600].to_vec(), y[..600].to_vec());
        let detector = FittedDetector::fit(&DetectorConfig::default(), train_ds, train_y).expect("fit");
        y[650] += spike;
        let d = detector.detect(&ds[600..], &y[600..]).expect("detect");
        for s in &d.score {
            prop_assert!((0.0..=100.0).contains(s));
        }
        let restored = FittedDetector::from_bytes(&detector.to_bytes().expect("bytes")).expect("read");
        prop_assert_eq!(&restored, &detector);
        prop_assert_eq!(restored.detect(&ds[600..], &y[600..]).expect("detect"), d);
    }
}

#[test]
fn injected_spikes_are_flagged_and_a_directory_round_trips() {
    let mut readings = LongReadings::default();
    let mut spikes = Vec::new();
    for (v, name) in ["flow", "level", "temperature"].iter().enumerate() {
        let (ds, mut y) = series(4032, v as u64, 40.0 + 10.0 * v as f64, 0.8);
        for k in 0..5 {
            let i = 500 + k * 700 + v * 13;
            y[i] += if k % 2 == 0 { 12.0 } else { -12.0 };
            spikes.push(readings.ds.len() + i);
        }
        readings.ds.extend(seconds(&ds));
        readings.variable.extend(std::iter::repeat_n(name.to_string(), 4032));
        readings.value.extend(y);
    }
    let detectors = MultiDetector::fit(&DetectorConfig::default(), &readings).expect("fit");
    let result = detectors.detect(&readings).expect("detect");
    for &row in &spikes {
        assert!(result.rows.is_anomaly[row], "spike at row {row} missed");
        assert!(result.rows.score[row] > 50.0);
    }
    let flagged = result.rows.is_anomaly.iter().filter(|a| **a).count();
    assert!(flagged < readings.ds.len() / 10, "{flagged} flags");

    let mut files: std::collections::BTreeMap<String, Vec<u8>> =
        detectors.to_directory().expect("serialise").into_iter().collect();
    let read = |files: &std::collections::BTreeMap<String, Vec<u8>>, name: &str| {
        files.get(name).cloned().ok_or_else(|| format!("{name}: missing"))
    };
    let loaded = MultiDetector::from_directory(|name| read(&files, name)).expect("load");
    assert_eq!(loaded, detectors);
    assert_eq!(loaded.detect(&readings).expect("detect"), result);
    files.insert("detector.json".into(), b"{\"format\":\"anomaly-model-directory\",\"version\":9}".to_vec());
    assert!(MultiDetector::from_directory(|name| read(&files, name)).is_err());

    // A duplicate (variable, datetime) names both rows.
    let mut dup = readings.clone();
    dup.ds.push(dup.ds[3]);
    dup.variable.push("flow".into());
    dup.value.push(1.0);
    let err = detectors.detect(&dup).expect_err("duplicate");
    assert_eq!(err.row(), Some(dup.ds.len() - 1));
}

/// A streaming detector scores one datetime at a time: each row's analytic
/// band must not depend on the other rows predicted with it.
#[test]
fn analytic_bands_do_not_depend_on_the_batch() {
    let (ds, y) = series(600, 5, 30.0, 1.0);
    let model =
        FittedProphet::fit(&options(Mode::Multiplicative), &History::new(ds.clone(), y, vec![]).expect("valid"))
            .expect("fit");
    let ahead: Vec<i64> = (1..=300).map(|i| ds[599] + i * FIVE_MIN).collect();
    let all = model.predict(&ahead, &[], Intervals::Analytic).expect("predict");
    for (i, &d) in ahead.iter().enumerate().step_by(37) {
        let one = model.predict(&[d], &[], Intervals::Analytic).expect("predict");
        assert_eq!((one.yhat_lower[0], one.yhat_upper[0]), (all.yhat_lower[i], all.yhat_upper[i]), "row {i}");
    }
    // The band widens ahead of the history.
    assert!(all.yhat_upper[299] - all.yhat_lower[299] > all.yhat_upper[0] - all.yhat_lower[0]);
}
