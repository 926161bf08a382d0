//! Fitting and scoring a forest of isolation trees.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::{Contamination, IsolationForest, IsolationForestParams};
use super::tree::{average_path_length, Tree, TreeInput};
use crate::data::FeatureMatrix;
use crate::error::{Error, Result};
use crate::persist::Persist;
use crate::rng::Rng;
use crate::traits::{Fit, ParamGuard};

/// Rows scored together, tree by tree, so each tree stays in cache.
const BLOCK: usize = 512;

/// A fitted isolation forest: plain data, everything scoring needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedIsolationForest {
    /// The parameters it was fitted with (`n_estimators` = number of trees).
    pub params: IsolationForestParams,
    /// Width of the training matrix.
    pub n_features: usize,
    /// Rows per tree actually used (`max_samples_` in scikit-learn).
    pub max_samples: usize,
    /// `decision_function = score_samples - offset`.
    pub offset: f64,
    /// Names of the training columns, when known (CLI and pandas input), so
    /// that scoring can select columns by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_names: Vec<String>,
    trees: Vec<Tree>,
}

impl Persist for FittedIsolationForest {
    const KIND: &'static str = "isolation_forest";

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let model: FittedIsolationForest = crate::persist::read_envelope(bytes)?;
        model.validate()?;
        Ok(model)
    }
}

impl Fit<FeatureMatrix<'_>> for IsolationForest {
    type Fitted = FittedIsolationForest;

    /// Fits `n_estimators` trees in parallel; tree `t` draws its rows,
    /// features and splits from its own seed, so the result is identical
    /// for any number of threads.
    fn fit(&self, x: &FeatureMatrix<'_>) -> Result<FittedIsolationForest> {
        let n = x.n_rows();
        if n < 2 {
            return Err(Error::Shape {
                field: "X".into(),
                expected: "at least 2 samples to fit".into(),
                found: format!("n_samples = {n}"),
            });
        }
        let mut model = FittedIsolationForest {
            params: self.params.clone(),
            n_features: x.n_features(),
            max_samples: self.max_samples_for(n),
            offset: -0.5,
            feature_names: Vec::new(),
            trees: Vec::new(),
        };
        model.trees = self.grow(x, 0..self.params.n_estimators)?;
        model.set_offset(x)?;
        Ok(model)
    }
}

impl IsolationForest {
    fn grow(&self, x: &FeatureMatrix<'_>, indices: std::ops::Range<usize>) -> Result<Vec<Tree>> {
        let (n, d) = (x.n_rows(), x.n_features());
        let max_samples = self.max_samples_for(n);
        let max_features = self.max_features_for(d)?;
        let max_depth = (max_samples.max(2) as f64).log2().ceil() as usize;
        Ok(indices
            .into_par_iter()
            .map(|t| {
                let (rows, features, mut rng) = self.draw(t, n, max_samples, d, max_features);
                let input = TreeInput {
                    x: x.as_slice(),
                    n_features: d,
                    rows,
                    features,
                    max_depth,
                    extension_level: self.params.extension_level,
                };
                Tree::build(input, &mut rng)
            })
            .collect())
    }

    /// Tree `t`'s rows (of `n`) and features (of `d`), and its stream after
    /// drawing them, which then draws its splits.
    fn draw(&self, t: usize, n: usize, max_samples: usize, d: usize, max_features: usize) -> (Vec<u32>, Vec<u32>, Rng) {
        let p = &self.params;
        let mut rng = Rng::for_index(p.random_state, t as u64);
        let rows = if p.bootstrap {
            (0..max_samples).map(|_| rng.below(n) as u32).collect()
        } else {
            sample_without_replacement(n, max_samples, &mut rng)
        };
        let features = sample_without_replacement(d, max_features, &mut rng);
        (rows, features, rng)
    }
}

/// `k` distinct indices of `0..n` (a partial Fisher-Yates shuffle over a
/// lazily materialised permutation, O(k) memory).
fn sample_without_replacement(n: usize, k: usize, rng: &mut Rng) -> Vec<u32> {
    let mut swapped: std::collections::HashMap<usize, usize> = std::collections::HashMap::with_capacity(k * 2);
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + rng.below(n - i);
        let vj = *swapped.get(&j).unwrap_or(&j);
        let vi = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, vi);
        out.push(vj as u32);
    }
    out
}

impl FittedIsolationForest {
    /// Adds trees up to `n_estimators` (scikit-learn's `warm_start`), fitted
    /// on `x`; the offset is recomputed on `x` when contamination is a
    /// fraction. Existing trees are kept as they are.
    pub fn extend(&self, x: &FeatureMatrix<'_>, n_estimators: usize) -> Result<FittedIsolationForest> {
        if x.n_features() != self.n_features {
            return Err(Error::Shape {
                field: "X".into(),
                expected: format!("{} features", self.n_features),
                found: format!("{} features", x.n_features()),
            });
        }
        if n_estimators < self.trees.len() {
            return Err(Error::param(
                "n_estimators",
                n_estimators,
                &format!("must be at least the {} trees already fitted when warm starting", self.trees.len()),
            ));
        }
        let forest = IsolationForestParams { n_estimators, ..self.params.clone() }.check()?;
        let mut model = self.clone();
        model.params.n_estimators = n_estimators;
        model.max_samples = forest.max_samples_for(x.n_rows());
        let more = forest.grow(x, self.trees.len()..n_estimators)?;
        model.trees.extend(more);
        model.set_offset(x)?;
        Ok(model)
    }

    fn set_offset(&mut self, x: &FeatureMatrix<'_>) -> Result<()> {
        self.offset = match self.params.contamination {
            Contamination::Auto(_) => -0.5,
            Contamination::Fraction(c) => {
                let mut scores = self.score_samples(x)?;
                scores.sort_unstable_by(f64::total_cmp);
                percentile(&scores, 100.0 * c)
            }
        };
        Ok(())
    }

    /// `x` has the training width.
    pub(crate) fn check_width(&self, x: &FeatureMatrix<'_>) -> Result<()> {
        if x.n_features() != self.n_features {
            return Err(Error::Shape {
                field: "X".into(),
                expected: format!("{} features", self.n_features),
                found: format!("{} features", x.n_features()),
            });
        }
        Ok(())
    }

    /// The training rows (of `n_rows`, the size of the matrix tree `t` was
    /// fitted on) and features tree `t` drew: scikit-learn's
    /// `estimators_samples_` and `estimators_features_`, recomputed from
    /// the tree's seed as scikit-learn recomputes them.
    pub fn tree_draws(&self, t: usize, n_rows: usize) -> Result<(Vec<u32>, Vec<u32>)> {
        if t >= self.trees.len() || n_rows == 0 || u32::try_from(n_rows).is_err() {
            return Err(Error::param(
                "tree",
                t,
                &format!("needs a tree below {} and 1 to 2^32 rows", self.trees.len()),
            ));
        }
        let forest = self.params.check()?;
        let max_features = forest.max_features_for(self.n_features)?;
        let (rows, features, _) = forest.draw(t, n_rows, forest.max_samples_for(n_rows), self.n_features, max_features);
        Ok((rows, features))
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The trees.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// scikit-learn's `score_samples`: `-2^(-E[h(x)] / c(max_samples))`, in
    /// [-1, 0); lower is more abnormal.
    pub fn score_samples(&self, x: &FeatureMatrix<'_>) -> Result<Vec<f64>> {
        self.check_width(x)?;
        let d = self.n_features;
        let denominator = self.trees.len() as f64 * average_path_length(self.max_samples);
        let mut scores = vec![0.0f64; x.n_rows()];
        scores.par_chunks_mut(BLOCK).enumerate().for_each(|(b, block)| {
            let rows = &x.as_slice()[b * BLOCK * d..][..block.len() * d];
            for tree in &self.trees {
                tree.add_path_lengths(rows, d, block);
            }
            for s in block.iter_mut() {
                // A single training sample gives c = 0: scikit-learn scores 1.
                *s = if denominator > 0.0 { -(2f64.powf(-*s / denominator)) } else { -1.0 };
            }
        });
        Ok(scores)
    }

    /// `score_samples - offset`: negative for outliers.
    pub fn decision_function(&self, x: &FeatureMatrix<'_>) -> Result<Vec<f64>> {
        Ok(self.score_samples(x)?.into_iter().map(|s| s - self.offset).collect())
    }

    /// -1 for outliers (`decision_function < 0`), +1 for inliers.
    pub fn predict(&self, x: &FeatureMatrix<'_>) -> Result<Vec<i8>> {
        Ok(self.decision_function(x)?.into_iter().map(|d| if d < 0.0 { -1 } else { 1 }).collect())
    }

    fn validate(&self) -> Result<()> {
        let corrupt = |reason: String| Error::CorruptModel { reason };
        self.params.check().map_err(|e| corrupt(format!("parameters: {e}")))?;
        if self.trees.is_empty() || self.n_features == 0 || self.max_samples == 0 {
            return Err(corrupt("isolation forest without trees, features or samples".into()));
        }
        if !self.feature_names.is_empty() && self.feature_names.len() != self.n_features {
            return Err(corrupt(format!(
                "{} feature names for {} features",
                self.feature_names.len(),
                self.n_features
            )));
        }
        if !self.offset.is_finite() {
            return Err(corrupt(format!("offset is {}", self.offset)));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            tree.validate(self.n_features).map_err(|e| corrupt(format!("tree {t}: {e}")))?;
        }
        Ok(())
    }
}

/// numpy's default (linear) percentile of sorted values, including its
/// interpolation formula, so offsets match scikit-learn's.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_without_replacement_is_distinct_and_complete() {
        let mut rng = Rng::new(3);
        let mut s = sample_without_replacement(10, 10, &mut rng);
        s.sort_unstable();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        let s = sample_without_replacement(1_000_000, 256, &mut rng);
        let set: std::collections::HashSet<_> = s.iter().collect();
        assert_eq!(set.len(), 256);
    }

    #[test]
    fn percentile_matches_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 8.0);
        assert!((percentile(&v, 10.0) - 1.3).abs() < 1e-12); // np.percentile([1,2,4,8], 10)
        assert!((percentile(&v, 75.0) - 5.0).abs() < 1e-12);
    }
}
