//! Properties of the isolation forest: scores in [-1, 0), invariance to the
//! order of scored rows, determinism (seed, threads, persistence), and
//! contamination flagging its share of the training rows.

use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::{Contamination, FittedIsolationForest, IsolationForestParams, MaxSamples};
use anomaly_core::persist::Persist;
use anomaly_core::traits::{Fit, ParamGuard};
use ndarray::Array2;
use proptest::prelude::*;

fn matrix_strategy() -> impl Strategy<Value = Array2<f32>> {
    (2usize..120, 1usize..5).prop_flat_map(|(rows, cols)| {
        proptest::collection::vec(prop_oneof![3 => -100.0f32..100.0, 1 => Just(0.0f32), 1 => Just(1.0f32)], rows * cols)
            .prop_map(move |v| Array2::from_shape_vec((rows, cols), v).expect("shape"))
    })
}

fn fit(x: &Array2<f32>, params: IsolationForestParams) -> FittedIsolationForest {
    params.check().expect("valid").fit(&FeatureMatrix::new(x.view(), None).expect("finite")).expect("fit")
}

fn params_strategy() -> impl Strategy<Value = IsolationForestParams> {
    (1usize..30, any::<u64>(), any::<bool>(), 0usize..2, prop_oneof![Just(None), (1u64..300).prop_map(Some)]).prop_map(
        |(n_estimators, random_state, bootstrap, extension_level, count)| IsolationForestParams {
            n_estimators,
            random_state,
            bootstrap,
            extension_level,
            max_samples: count.map_or(IsolationForestParams::default().max_samples, MaxSamples::Count),
            ..Default::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn scores_are_in_range_and_row_order_does_not_matter(x in matrix_strategy(), params in params_strategy(), seed in any::<u64>()) {
        let params = IsolationForestParams { extension_level: params.extension_level.min(x.ncols() - 1), ..params };
        let model = fit(&x, params);
        let scores = model.score_samples(&FeatureMatrix::new(x.view(), None).expect("finite")).expect("score");
        for s in &scores {
            prop_assert!((-1.0..0.0).contains(s), "score {}", s);
        }
        // Reverse and rotate the rows: each row keeps its score.
        let n = x.nrows();
        let shift = (seed as usize) % n;
        let order: Vec<usize> = (0..n).rev().map(|i| (i + shift) % n).collect();
        let shuffled = x.select(ndarray::Axis(0), &order);
        let again = model.score_samples(&FeatureMatrix::new(shuffled.view(), None).expect("finite")).expect("score");
        for (k, &i) in order.iter().enumerate() {
            prop_assert_eq!(again[k].to_bits(), scores[i].to_bits());
        }
    }

    #[test]
    fn same_seed_same_model_on_any_thread_count(x in matrix_strategy(), params in params_strategy()) {
        let params = IsolationForestParams { extension_level: params.extension_level.min(x.ncols() - 1), ..params };
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool").install(|| fit(&x, params.clone()));
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool").install(|| fit(&x, params.clone()));
        prop_assert_eq!(&one, &two);
        let restored = FittedIsolationForest::from_bytes(&one.to_bytes().expect("bytes")).expect("read");
        prop_assert_eq!(&restored, &one);
    }

    #[test]
    fn contamination_flags_its_share_of_training_rows(x in matrix_strategy(), c in 0.01f64..0.5, seed in any::<u64>()) {
        let params = IsolationForestParams { contamination: Contamination::Fraction(c), random_state: seed, ..Default::default() };
        let model = fit(&x, params);
        let decision = model.decision_function(&FeatureMatrix::new(x.view(), None).expect("finite")).expect("score");
        let n = x.nrows() as f64;
        let below = decision.iter().filter(|&&d| d < 0.0).count() as f64;
        let at_or_below = decision.iter().filter(|&&d| d <= 0.0).count() as f64;
        // Up to ties (equal scores straddle the percentile) and interpolation.
        prop_assert!(below <= c * n + 1.0, "{} flagged of {} for c = {}", below, n, c);
        prop_assert!(at_or_below + 1.0 >= c * (n - 1.0), "{} at or below of {} for c = {}", at_or_below, n, c);
    }
}

#[test]
fn warm_start_equals_a_larger_forest() {
    let x = Array2::from_shape_fn((300, 3), |(i, j)| ((i * 31 + j * 17) % 97) as f32 / 9.0);
    let view = FeatureMatrix::new(x.view(), None).expect("finite");
    let small = fit(&x, IsolationForestParams { n_estimators: 20, random_state: 5, ..Default::default() });
    let grown = small.extend(&view, 60).expect("extend");
    let full = fit(&x, IsolationForestParams { n_estimators: 60, random_state: 5, ..Default::default() });
    assert_eq!(grown, full);
    assert!(small.extend(&view, 10).is_err());
}
