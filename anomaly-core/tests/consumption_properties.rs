//! Properties of the consumption rules: results do not depend on client or
//! row order, nor on the number of threads; appending later readings never
//! changes earlier results; scores are in [0, 1] and severity is monotone.

use anomaly_core::consumption::{ConsumptionParams, ConsumptionReport, Method, Readings};
use anomaly_core::traits::{Detect, ParamGuard};
use proptest::prelude::*;

const HOUR: i64 = 3600;

/// Up to 3 clients, 8-12 days hourly, values with runs, zeros and bursts.
fn readings_strategy() -> impl Strategy<Value = Vec<(String, i64, f64)>> {
    (1usize..=3, 8i64..=12).prop_flat_map(|(clients, days)| {
        let n = (days * 24) as usize;
        proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![4 => 0.0f64..3.0, 1 => Just(0.0), 1 => Just(0.5), 1 => 3.0f64..20.0],
                n,
            ),
            clients,
        )
        .prop_map(|series| {
            let mut rows = Vec::new();
            for (c, values) in series.into_iter().enumerate() {
                for (h, v) in values.into_iter().enumerate() {
                    rows.push((format!("c{c}"), 1_700_000_000 / 86_400 * 86_400 + h as i64 * HOUR, v));
                }
            }
            rows
        })
    })
}

fn methods() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::Literal), Just(Method::Calibrated)]
}

/// Short histories, so that both methods' rules fire within 8-12 days.
fn detect(method: Method, rows: &[(String, i64, f64)]) -> ConsumptionReport {
    let readings = Readings::from_records(rows.iter().map(|(c, t, v)| (c.as_str(), *t, *v))).expect("valid readings");
    let short = ConsumptionParams {
        method,
        min_history_days: 3,
        slot_min_history_days: 3,
        calibration_days: 6,
        calibration_min_days: 2,
        flat_novelty_days: 3,
        ..Default::default()
    };
    short.check().expect("valid").detect(&readings).expect("detect")
}

/// Per-row (types, score) keyed by (client, timestamp).
fn keyed(rows: &[(String, i64, f64)], report: &ConsumptionReport) -> Vec<((String, i64), (u8, u64))> {
    let mut out: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (c, t, _))| ((c.clone(), *t), (report.flags.types[i].0, report.flags.score[i].to_bits())))
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn order_of_rows_and_clients_does_not_matter(method in methods(), rows in readings_strategy(), seed in any::<u64>()) {
        let reference = detect(method, &rows);
        let mut shuffled = rows.clone();
        // A deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let again = detect(method, &shuffled);
        prop_assert_eq!(keyed(&rows, &reference), keyed(&shuffled, &again));
        prop_assert_eq!(reference.clients, again.clients);
        prop_assert_eq!(reference.monthly, again.monthly);
    }

    #[test]
    fn appending_later_readings_never_changes_earlier_results(method in methods(), rows in readings_strategy(), cut_day in 2i64..8) {
        let full = detect(method, &rows);
        let start = rows.iter().map(|r| r.1).min().unwrap_or_default();
        let cut = start + cut_day * 86_400 + 7 * HOUR;
        let early: Vec<_> = rows.iter().filter(|r| r.1 < cut).cloned().collect();
        let partial = detect(method, &early);
        let full_keyed = keyed(&rows, &full);
        let early_keyed = keyed(&early, &partial);
        let full_early: Vec<_> = full_keyed.into_iter().filter(|((_, t), _)| *t < cut).collect();
        prop_assert_eq!(early_keyed, full_early);
    }

    #[test]
    fn episodes_of_a_series_are_the_merge_of_its_parts(method in methods(), rows in readings_strategy(), cut in 0usize..300) {
        // What the SQL job relies on: episodes stored from earlier batches,
        // merged with a new batch's flagged readings, are the whole series'.
        let report = detect(method, &rows);
        let rules = ConsumptionParams { method, ..Default::default() }.check().expect("valid");
        let f = &report.flags;
        let mut parts = (Vec::new(), Vec::new());
        for (i, (client, ts, kwh)) in rows.iter().enumerate() {
            for kind in f.types[i].iter() {
                let e = rules.reading_episode(client, kind, *ts, *kwh, f.usual[i], f.score[i]);
                if (ts / HOUR) as usize % 300 < cut { parts.0.push(e) } else { parts.1.push(e) }
            }
        }
        let mut merged = rules.merge_episodes(parts.0);
        merged.extend(rules.merge_episodes(parts.1));
        let mut merged = rules.merge_episodes(merged);
        // Sums of kWh associate differently: equal to rounding.
        prop_assert_eq!(merged.len(), report.episodes.len());
        for (m, e) in merged.iter_mut().zip(&report.episodes) {
            prop_assert!((m.kwh_above_baseline - e.kwh_above_baseline).abs() <= 1e-9 * (1.0 + e.kwh_above_baseline.abs()));
            m.kwh_above_baseline = e.kwh_above_baseline;
        }
        prop_assert_eq!(merged, report.episodes.clone());
    }

    #[test]
    fn scores_are_bounded_and_severity_is_monotone(method in methods(), rows in readings_strategy()) {
        let report = detect(method, &rows);
        let flags = &report.flags;
        let mut by_score: Vec<_> = flags.score.iter().copied().zip(flags.severity.iter().copied()).collect();
        for (i, &(score, _)) in by_score.iter().enumerate() {
            prop_assert!((0.0..=1.0).contains(&score), "score {} out of range", score);
            prop_assert_eq!(flags.is_anomaly[i], score >= 0.5);
            prop_assert_eq!(flags.is_anomaly[i], !flags.types[i].is_empty());
        }
        by_score.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in by_score.windows(2) {
            prop_assert!(pair[0].1 <= pair[1].1, "severity not monotone: {:?}", pair);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let spec = anomaly_core::consumption::simulate::SimulationSpec { clients: 200, days: 40, ..Default::default() };
    let (readings, _) = anomaly_core::consumption::simulate::simulate(&spec).expect("simulate");
    let rules = ConsumptionParams::default().check().expect("valid");
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool").install(|| rules.detect(&readings))
    };
    // Usual levels are NaN without a baseline, so they compare by bits.
    let bits = |r: &mut anomaly_core::consumption::ConsumptionReport| {
        std::mem::take(&mut r.flags.usual).into_iter().map(f64::to_bits).collect::<Vec<_>>()
    };
    let mut one = run(1).expect("detect");
    let one_usual = bits(&mut one);
    for threads in [2, 5] {
        let mut other = run(threads).expect("detect");
        assert_eq!(one_usual, bits(&mut other));
        assert_eq!(one, other);
    }
}
