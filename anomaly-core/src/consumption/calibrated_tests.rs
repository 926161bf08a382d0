//! Tests of the calibrated rules on synthetic households.

use super::*;
use crate::consumption::{ConsumptionParams, ConsumptionReport, Method, Readings};
use crate::traits::{Detect, ParamGuard};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
const T0: i64 = 19_000 * DAY;

/// A deterministic bursty household: low nights, a day level, an evening
/// peak, multiplicative noise and occasional appliance bursts.
fn household(days: i64, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..days * 24)
        .map(|i| {
            let h = i % 24;
            let base = match h {
                0..=5 => 0.3,
                6..=16 => 0.8,
                17..=21 => 1.8,
                _ => 0.6,
            };
            let burst = if uniform() < 0.03 { 1.0 + 2.0 * uniform() } else { 0.0 };
            ((base * (0.6 + 0.8 * uniform()) + burst) * 1000.0).round() / 1000.0
        })
        .collect()
}

fn calibrated() -> crate::consumption::ConsumptionRules {
    ConsumptionParams { method: Method::Calibrated, ..Default::default() }.check().unwrap()
}

fn run(values: &[f64], step: i64) -> ConsumptionReport {
    let rows = values.iter().enumerate().map(|(i, &v)| ("c", T0 + i as i64 * step, v));
    calibrated().detect(&Readings::from_records(rows).unwrap()).unwrap()
}

fn hour_index(day: i64, hour: i64) -> usize {
    (day * 24 + hour) as usize
}

#[test]
fn results_never_change_when_later_readings_arrive() {
    let mut x = household(120, 3);
    for d in 50..60 {
        for h in 0..6 {
            x[hour_index(d, h)] += 1.5;
        }
    }
    for v in &mut x[hour_index(80, 0)..hour_index(82, 0)] {
        *v = 0.9;
    }
    x[hour_index(90, 12)] = 9.0;
    let full = run(&x, HOUR);
    for cut in [24 * 30 + 5, 24 * 55 + 3, 24 * 81, 24 * 90 + 13, 24 * 100] {
        let prefix = run(&x[..cut], HOUR);
        assert_eq!(prefix.flags.score, full.flags.score[..cut], "scores differ with {cut} readings");
        assert_eq!(prefix.flags.types, full.flags.types[..cut]);
    }
    // The series is long enough for every rule to have fired somewhere.
    let fired = full.flags.types.iter().fold(0u8, |acc, t| acc | t.0);
    assert_eq!(fired & 0b11001, 0b11001, "outlier, plantation and flat fire: {fired:b}");
}

#[test]
fn a_plantation_and_a_flat_meter_are_caught_and_a_clean_household_is_quiet() {
    let clean = household(120, 11);
    let mut x = clean.clone();
    for d in 50..60 {
        for h in 0..6 {
            x[hour_index(d, h)] += 1.5;
        }
    }
    for v in &mut x[hour_index(80, 9)..hour_index(82, 9)] {
        *v = 1.2;
    }
    let report = run(&x, HOUR);
    let has = |range: std::ops::Range<usize>, t: AnomalyType| report.flags.types[range].iter().any(|ts| ts.contains(t));
    let severe = |range: std::ops::Range<usize>| {
        report.flags.severity[range].iter().any(|s| *s >= crate::consumption::Severity::Alta)
    };
    let plantation = hour_index(50, 0)..hour_index(60, 0);
    let flat = hour_index(80, 9)..hour_index(82, 9);
    assert!(has(plantation.clone(), AnomalyType::Plantation) && severe(plantation.clone()));
    // Persistence is the evidence: nothing before the third heavy night.
    assert!(!has(hour_index(50, 0)..hour_index(52, 0), AnomalyType::Plantation));
    assert!(has(flat.clone(), AnomalyType::Flat) && severe(flat.clone()));

    let quiet = run(&clean, HOUR);
    let rate = quiet.flags.is_anomaly.iter().filter(|a| **a).count() as f64 / clean.len() as f64;
    assert!(rate < 0.02, "clean flag rate {rate}");
    let structural =
        quiet.flags.types.iter().filter(|t| t.contains(AnomalyType::Plantation) || t.contains(AnomalyType::Flat));
    assert_eq!(structural.count(), 0);
}

#[test]
fn daily_meters_get_no_hour_of_day_rules() {
    // One reading a day at midnight, inside the night band 0-6.
    let hourly = household(400, 5);
    let mut x: Vec<f64> = hourly.chunks(24).map(|d| d.iter().sum()).collect();
    for v in &mut x[200..207] {
        *v = 60.0; // a week of heavy use: no night rule may fire on it
    }
    for v in &mut x[300..305] {
        *v = 20.0; // five equal days: a flat meter
    }
    x[350] = 200.0;
    // One reading per "night" is enough here, so only the daily gate keeps the night rules off.
    let params = ConsumptionParams {
        method: Method::Calibrated,
        interval_minutes: 1440,
        night_min_readings: 1,
        ..Default::default()
    };
    let rows = x.iter().enumerate().map(|(i, &v)| ("c", T0 + i as i64 * DAY, v));
    let report = params.check().unwrap().detect(&Readings::from_records(rows).unwrap()).unwrap();
    for t in &report.flags.types {
        assert!(!t.contains(AnomalyType::NightUse) && !t.contains(AnomalyType::Plantation), "{t:?}");
    }
    assert!(report.flags.types[302..305].iter().all(|t| t.contains(AnomalyType::Flat)));
    assert!(
        report.flags.types[350].contains(AnomalyType::Outlier) || report.flags.types[350].contains(AnomalyType::Spike)
    );
}

#[test]
fn groups_do_not_double_count() {
    let (types, score) = combine_grouped(&[2.0, 2.0, 0.0, 0.0, 0.0]);
    assert_eq!(types.0, 0b11);
    assert!((score - 0.75).abs() < 1e-15);
    let (types, score) = combine_grouped(&[2.0, 0.0, 0.0, 0.0, 2.0]);
    assert_eq!(types.0, 0b10001);
    assert!((score - (1.0 - 0.25 * 0.25)).abs() < 1e-15);
    assert_eq!(combine_grouped(&[0.5, f64::NAN, 0.9, 0.0, 0.0]), (AnomalyTypes(0), 0.45));
}

#[test]
fn tail_quantiles_match_linear_interpolation() {
    let mut tail = Tail::new(2, 1.0, 0.0035);
    let values: Vec<f64> = (0..200).map(|i| ((i * 37) % 200) as f64).collect();
    for &v in &values {
        tail.push(0, v);
    }
    tail.start_day(1);
    // Sorted 0..199: q95 at 189.05, q99 at 197.01.
    assert!((tail.q95 - 189.05).abs() < 1e-9, "{}", tail.q95);
    assert!((tail.spread - (197.01 - 189.05)).abs() < 1e-9);
    tail.start_day(3); // the values have left the window
    assert!(!tail.ok);
}

#[test]
fn a_standby_run_much_longer_than_the_clients_own_is_novel() {
    // Every night 0-6 h the meter idles at exactly 0.05 kWh: completed 6-h runs at that level.
    let mut x = household(120, 7);
    for d in 0..120 {
        for h in 0..6 {
            x[hour_index(d, h)] = 0.05;
        }
    }
    // A 30-h run at the standby level (day 80 00:00 to day 81 06:00).
    for v in &mut x[hour_index(80, 0)..hour_index(81, 6)] {
        *v = 0.05;
    }
    let end = hour_index(81, 5);
    let with = run(&x, HOUR);
    // Evidence alone: 18 day-time hours below their slot's 5% quantile, ratio 1.5 (media).
    // Novelty: 30 h / max(12 h, 1.5 x 6 h) = 2.5 (alta).
    assert!(with.flags.types[end].contains(AnomalyType::Flat));
    assert!((with.flags.score[end] - 0.8).abs() < 1e-12, "{}", with.flags.score[end]);
    let rows = x.iter().enumerate().map(|(i, &v)| ("c", T0 + i as i64 * HOUR, v));
    let params = ConsumptionParams { method: Method::Calibrated, flat_novelty_days: 0, ..Default::default() };
    let without = params.check().unwrap().detect(&Readings::from_records(rows).unwrap()).unwrap();
    assert!((without.flags.score[end] - (1.0 - 0.5 / 1.5)).abs() < 1e-12, "{}", without.flags.score[end]);
    // The nightly 6-h runs themselves stay unflagged: 6 h / 12 h.
    let nights = (60..79).flat_map(|d| hour_index(d, 0)..hour_index(d, 6));
    assert!(nights.clone().all(|i| !with.flags.types[i].contains(AnomalyType::Flat)));
}
