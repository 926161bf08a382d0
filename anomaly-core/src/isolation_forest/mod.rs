//! Isolation forest (Liu, Ting & Zhou 2008) with scikit-learn's semantics,
//! and the extended isolation forest (Hariri, Kind & Brunner 2021).
//!
//! # Semantics (as `sklearn.ensemble.IsolationForest`)
//! - `n_estimators` trees (default 100). Each draws `max_samples` rows:
//!   `"auto"` = `min(256, n)`, a count (clamped to `n`), or a fraction of
//!   `n`; with `bootstrap` rows are drawn with replacement. Each draws
//!   `max_features` features without replacement (a count or a fraction,
//!   at least one).
//! - Trees grow to depth `ceil(log2(max(max_samples, 2)))`. At each node a
//!   feature is drawn among those not constant in the node (range above
//!   1e-7); a node where all are constant, or with one row, is a leaf. The
//!   threshold is uniform between the node's min and max; rows at or below
//!   it go left. Inputs are `f32`, as in scikit-learn's trees.
//! - A leaf holding `n` training rows at depth `d` scores `d + c(n)`, with
//!   `c(n) = 2 (ln(n - 1) + γ) - 2 (n - 1) / n`, `c(2) = 1`, `c(1) = 0`.
//! - `score_samples = -2^(-mean path length / c(max_samples))`, in [-1, 0);
//!   lower is more abnormal. `decision_function = score_samples - offset`;
//!   `predict` is -1 where it is negative, +1 elsewhere.
//! - `contamination`: `"auto"` sets `offset = -0.5`; a fraction `c` in
//!   (0, 0.5] sets it to the `100 c` percentile (numpy's linear rule) of
//!   the training scores, so about `c` of the training rows are outliers.
//! - `random_state`: tree `t` draws everything from a stream seeded by
//!   `(random_state, t)`, so a forest is identical for any number of
//!   threads, and warm starting ([`FittedIsolationForest::extend`]) adds
//!   trees `n_old..n_new` exactly as a larger forest would have them.
//!
//! The random streams differ from numpy's, so scores match scikit-learn in
//! distribution and accuracy (ROC-AUC), not bit for bit.
//!
//! # Extended mode
//! With `extension_level = k > 0` each split is a hyperplane through a
//! random point of the node's bounding box, with standard normal
//! coefficients on `k + 1` random non-constant features (stored sparsely);
//! a draw that leaves a side empty is redrawn (up to 8 times) before the
//! node becomes a leaf. `k` ranges up to `n_features - 1` (a fully
//! oblique cut). Standard mode stays the default: extended cuts help on
//! some data and lose on other.
//!
//! # Example
//! ```
//! use anomaly_core::data::FeatureMatrix;
//! use anomaly_core::isolation_forest::IsolationForestParams;
//! use anomaly_core::traits::{Fit, ParamGuard};
//! use ndarray::Array2;
//!
//! let mut x = Array2::<f32>::zeros((200, 2));
//! for i in 0..200 {
//!     x[[i, 0]] = (i % 20) as f32 * 0.05;
//!     x[[i, 1]] = (i / 20) as f32 * 0.1;
//! }
//! x[[199, 0]] = 25.0; // an outlier
//! let x = FeatureMatrix::new(x, None).unwrap();
//! let forest = IsolationForestParams::default().check().unwrap().fit(&x).unwrap();
//! let scores = forest.score_samples(&x).unwrap();
//! let lowest = (0..200).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
//! assert_eq!(lowest, 199);
//! assert!(scores.iter().all(|s| (-1.0..0.0).contains(s)));
//! ```

mod explain;
mod forest;
mod params;
mod summary;
mod tree;

pub use crate::traits::Auto;
pub use explain::Explanation;
pub use forest::FittedIsolationForest;
pub use params::{Contamination, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples, MAX_ESTIMATORS};
pub use summary::{summarize, AnomalySummary, State, StateThresholds};
pub use tree::{average_path_length, SklearnTree, Tree};
