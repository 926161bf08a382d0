//! Each consumption rule fires on its pattern, and only there.

use anomaly_core::consumption::{AnomalyType, ConsumptionParams, ConsumptionReport, Readings, Severity};
use anomaly_core::traits::{Detect, ParamGuard};
use anomaly_core::Error;
use approx::assert_relative_eq;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// A regular household: low nights, a busier day, a small deterministic wobble.
fn household(days: i64) -> Vec<(i64, f64)> {
    (0..days * 24)
        .map(|k| {
            let (d, h) = (k / 24, k % 24);
            let wobble = ((d * 7 + h * 3) % 5) as f64 * 0.05;
            let level = if h < 6 { 0.3 } else { 1.0 };
            (k * HOUR, level + wobble)
        })
        .collect()
}

/// These tests pin the analysts' literal rules (the calibrated ones are
/// pinned against their reference in tests/test_consumption_calibrated.py).
fn literal() -> ConsumptionParams {
    ConsumptionParams::preset("preset", "literal").expect("a preset")
}

fn run(series: &[(i64, f64)]) -> ConsumptionReport {
    let readings = Readings::from_records(series.iter().map(|&(t, v)| ("house", t, v))).expect("valid");
    literal().check().expect("valid").detect(&readings).expect("detect")
}

fn at(day: i64, hour: i64) -> usize {
    (day * 24 + hour) as usize
}

fn types(report: &ConsumptionReport, i: usize) -> Vec<AnomalyType> {
    report.flags.types[i].iter().collect()
}

#[test]
fn regular_consumption_is_never_flagged() {
    let report = run(&household(40));
    assert!(report.flags.is_anomaly.iter().all(|a| !a));
    assert!(report.flags.score.iter().all(|&s| s < 0.5));
    assert!(!report.clients[0].suspicious);
    assert_eq!(report.monthly.len(), 2);
    assert_relative_eq!(report.monthly[0].score, 0.0);
}

#[test]
fn a_spike_is_flagged_as_spike_and_outlier() {
    let mut s = household(30);
    s[at(20, 12)].1 = 5.0;
    let report = run(&s);
    assert_eq!(types(&report, at(20, 12)), [AnomalyType::Outlier, AnomalyType::Spike]);
    assert_eq!(report.flags.severity[at(20, 12)], Severity::Critica);
    assert_eq!(report.flags.is_anomaly.iter().filter(|a| **a).count(), 1);
}

#[test]
fn a_single_heavy_night_hour_is_night_use_not_plantation() {
    let mut s = household(30);
    s[at(20, 2)].1 = 1.5;
    let report = run(&s);
    let t = types(&report, at(20, 2));
    assert!(t.contains(&AnomalyType::NightUse), "{t:?}");
    assert!(!t.contains(&AnomalyType::Plantation));
}

#[test]
fn a_plantation_is_flagged_from_its_third_night() {
    let mut s = household(35);
    for d in 20..27 {
        for h in 0..6 {
            s[at(d, h)].1 += 2.0;
        }
    }
    let report = run(&s);
    let plantation = |d, h| types(&report, at(d, h)).contains(&AnomalyType::Plantation);
    assert!(!plantation(20, 3) && !plantation(21, 3), "needs three nights");
    assert!((22..27).all(|d| (0..6).all(|h| plantation(d, h))));
    assert!(!plantation(22, 12), "daytime readings are not plantation readings");
    assert!(report.clients[0].suspicious);
    assert!(report.clients[0].n_by_type[3] >= 30);
}

#[test]
fn a_flat_meter_is_flagged_after_a_full_day() {
    let mut s = household(30);
    for reading in &mut s[at(20, 0)..at(22, 0)] {
        reading.1 = 0.0;
    }
    let report = run(&s);
    let flat = |k: usize| types(&report, k).contains(&AnomalyType::Flat);
    assert!(!flat(at(20, 22)), "23 hours is not yet a day");
    assert!(flat(at(20, 23)) && flat(at(21, 23)));
    assert!(!flat(at(22, 1)));
    assert!(report.clients[0].suspicious);
}

#[test]
fn a_gap_breaks_a_flat_run_and_is_otherwise_harmless() {
    let mut s = household(30);
    for reading in &mut s[at(20, 0)..at(22, 0)] {
        reading.1 = 0.0;
    }
    s.remove(at(20, 12)); // one missing hour in the middle of the run
    let report = run(&s);
    let flat_count = (0..s.len()).filter(|&k| report.flags.types[k].contains(AnomalyType::Flat)).count();
    // The run restarts after the gap, so only hours 12..=23 of day 21 complete 24 hours.
    assert_eq!(flat_count, 12);
}

#[test]
fn nothing_fires_during_warm_up() {
    let mut s = household(10);
    s[at(2, 12)].1 = 50.0;
    let report = run(&s);
    assert!(!report.flags.is_anomaly[at(2, 12)]);
}

#[test]
fn native_half_hourly_readings_work() {
    let s: Vec<(i64, f64)> = household(30).into_iter().flat_map(|(t, v)| [(t, v / 2.0), (t + 1800, v / 2.0)]).collect();
    let mut spiked = s.clone();
    spiked[2 * at(20, 12)].1 = 4.0;
    let readings = Readings::from_records(spiked.iter().map(|&(t, v)| ("house", t, v))).expect("valid");
    let report = ConsumptionParams { interval_minutes: 30, ..literal() }
        .check()
        .expect("valid")
        .detect(&readings)
        .expect("detect");
    assert!(report.flags.is_anomaly[2 * at(20, 12)]);
    assert_eq!(report.flags.is_anomaly.iter().filter(|a| **a).count(), 1);
    // With the hourly default, half-hour stamps are off the grid.
    let err = literal().check().expect("valid").detect(&readings).unwrap_err();
    assert!(matches!(err, Error::Misaligned { row: 1, interval_minutes: 60, .. }), "{err}");
}

#[test]
fn a_series_spanning_centuries_is_refused() {
    let readings = Readings::from_records([("a", 0, 1.0), ("a", 40_000 * DAY, 1.0)]).expect("valid");
    let err = literal().check().expect("valid").detect(&readings).unwrap_err();
    assert!(matches!(err, Error::SpanTooLong { .. }), "{err}");
}

#[test]
fn parameter_files_from_before_the_calibrated_default_keep_the_literal_rules() {
    use anomaly_core::consumption::Method;
    use anomaly_core::persist::Persist;
    let old = br#"{"format": "anomaly-model", "version": 2, "kind": "consumption_rules", "model": {"zscore_threshold": 4.0}}"#;
    let params = ConsumptionParams::from_bytes(old).expect("a version 2 file");
    assert_eq!((params.method, params.zscore_threshold), (Method::Literal, 4.0));
    let chosen =
        br#"{"format": "anomaly-model", "version": 2, "kind": "consumption_rules", "model": {"method": "calibrated"}}"#;
    assert_eq!(ConsumptionParams::from_bytes(chosen).expect("a version 2 file").method, Method::Calibrated);
    let new = br#"{"format": "anomaly-model", "version": 3, "kind": "consumption_rules", "model": {}}"#;
    assert_eq!(ConsumptionParams::from_bytes(new).expect("a version 3 file").method, Method::Calibrated);
}
