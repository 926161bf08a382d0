//! Properties of the consumption rules: results do not depend on client or
//! row order, nor on the number of threads; appending later readings never
//! changes earlier results; scores are in [0, 1] and severity is monotone.

use anomaly_core::consumption::{ConsumptionParams, ConsumptionReport, Readings};
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

fn detect(rows: &[(String, i64, f64)]) -> ConsumptionReport {
    let readings = Readings::from_records(rows.iter().map(|(c, t, v)| (c.as_str(), *t, *v))).expect("valid readings");
    ConsumptionParams { min_history_days: 3, ..Default::default() }
        .check()
        .expect("valid")
        .detect(&readings)
        .expect("detect")
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
    fn order_of_rows_and_clients_does_not_matter(rows in readings_strategy(), seed in any::<u64>()) {
        let reference = detect(&rows);
        let mut shuffled = rows.clone();
        // A deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let again = detect(&shuffled);
        prop_assert_eq!(keyed(&rows, &reference), keyed(&shuffled, &again));
        prop_assert_eq!(reference.clients, again.clients);
        prop_assert_eq!(reference.monthly, again.monthly);
    }

    #[test]
    fn appending_later_readings_never_changes_earlier_results(rows in readings_strategy(), cut_day in 2i64..8) {
        let full = detect(&rows);
        let start = rows.iter().map(|r| r.1).min().unwrap_or_default();
        let cut = start + cut_day * 86_400 + 7 * HOUR;
        let early: Vec<_> = rows.iter().filter(|r| r.1 < cut).cloned().collect();
        let partial = detect(&early);
        let full_keyed = keyed(&rows, &full);
        let early_keyed = keyed(&early, &partial);
        let full_early: Vec<_> = full_keyed.into_iter().filter(|((_, t), _)| *t < cut).collect();
        prop_assert_eq!(early_keyed, full_early);
    }

    #[test]
    fn scores_are_bounded_and_severity_is_monotone(rows in readings_strategy()) {
        let report = detect(&rows);
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
    let one = run(1).expect("detect");
    assert_eq!(one, run(2).expect("detect"));
    assert_eq!(one, run(5).expect("detect"));
}
