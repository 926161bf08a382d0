//! Fitting and scoring a forest of isolation trees.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::{Contamination, IsolationForest, IsolationForestParams};
use super::tree::{average_path_length, Tree, TreeInput};
use crate::data::{FeatureMatrix, Rows};
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
        let mut model = self.fit_trees(x)?;
        model.set_offset(x)?;
        Ok(model)
    }
}

/// Values gathered for one sparse tree at most (1 GiB of `f32`): a sparse
/// matrix is densified only in the rows a tree samples.
const MAX_GATHERED: usize = 1 << 28;

impl IsolationForest {
    /// The trees of [`Fit::fit`] on dense or sparse rows, with the offset of
    /// `contamination="auto"` (-0.5): for a fraction, the caller sets it
    /// from the training scores with
    /// [`FittedIsolationForest::set_offset_from_scores`] (Python scores in
    /// scikit-learn's chunks; [`Fit::fit`] does both at once).
    pub fn fit_trees(&self, x: &dyn Rows) -> Result<FittedIsolationForest> {
        let n = x.n_rows();
        if n == 0 {
            return Err(Error::Empty { what: "feature matrix".into() });
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
        Ok(model)
    }

    fn grow(&self, x: &dyn Rows, indices: std::ops::Range<usize>) -> Result<Vec<Tree>> {
        let (n, d) = (x.n_rows(), x.n_features());
        let max_samples = self.max_samples_for(n);
        let max_features = self.max_features_for(d)?;
        let max_depth = depth_limit(max_samples);
        if x.dense().is_none() && max_samples.saturating_mul(d) > MAX_GATHERED {
            return Err(Error::param(
                "max_samples",
                max_samples,
                &format!("times {d} features is above {MAX_GATHERED} values to densify per tree for sparse input"),
            ));
        }
        Ok(indices
            .into_par_iter()
            .map(|t| {
                let (rows, features, mut rng) = self.draw(t, n, max_samples, d, max_features);
                // Sparse rows are densified per tree, renumbered in draw
                // order, so the tree is the one dense input would grow.
                let mut gathered = Vec::new();
                let (x, rows) = match x.dense() {
                    Some(all) => (all, rows),
                    None => {
                        gathered.reserve(rows.len() * d);
                        x.gather(&mut rows.iter().map(|&r| r as usize), &mut gathered);
                        (&gathered[..], (0..rows.len() as u32).collect())
                    }
                };
                let input = TreeInput {
                    x,
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

/// Trees grow to `ceil(log2(max(max_samples, 2)))`, the average depth of
/// a tree of `max_samples` rows.
fn depth_limit(max_samples: usize) -> usize {
    (max_samples.max(2) as f64).log2().ceil() as usize
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
        let mut model = self.extend_trees(x, n_estimators)?;
        model.set_offset(x)?;
        Ok(model)
    }

    /// The trees of [`FittedIsolationForest::extend`] on dense or sparse
    /// rows; the offset is kept (see [`IsolationForest::fit_trees`]).
    pub fn extend_trees(&self, x: &dyn Rows, n_estimators: usize) -> Result<FittedIsolationForest> {
        self.check_width(x)?;
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
        Ok(model)
    }

    fn set_offset(&mut self, x: &dyn Rows) -> Result<()> {
        let scores = match self.params.contamination {
            Contamination::Auto(_) => Vec::new(),
            Contamination::Fraction(_) => self.score_samples(x)?,
        };
        self.set_offset_from_scores(scores)
    }

    /// Sets the offset from the training rows' scores: -0.5 for
    /// `contamination="auto"`, else their `100 c` percentile (numpy's
    /// linear rule), so about `c` of the training rows are outliers.
    pub fn set_offset_from_scores(&mut self, mut scores: Vec<f64>) -> Result<()> {
        self.offset = match self.params.contamination {
            Contamination::Auto(_) => -0.5,
            Contamination::Fraction(_) if scores.is_empty() => {
                return Err(Error::Empty { what: "training scores".into() })
            }
            Contamination::Fraction(c) => {
                scores.sort_unstable_by(f64::total_cmp);
                percentile(&scores, 100.0 * c)
            }
        };
        Ok(())
    }

    /// `x` has the training width.
    pub(crate) fn check_width(&self, x: &dyn Rows) -> Result<()> {
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

    /// Features each tree draws (scikit-learn's `_max_features`).
    pub fn max_features(&self) -> usize {
        self.params.check().and_then(|f| f.max_features_for(self.n_features)).unwrap_or(self.n_features)
    }

    /// The depth trees grow to (scikit-learn's trees' `max_depth` parameter).
    pub fn max_depth(&self) -> usize {
        depth_limit(self.max_samples)
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
    /// [-1, 0); lower is more abnormal. Dense or sparse rows alike.
    pub fn score_samples(&self, x: &dyn Rows) -> Result<Vec<f64>> {
        self.check_width(x)?;
        let d = self.n_features;
        let denominator = self.trees.len() as f64 * average_path_length(self.max_samples);
        let mut scores = vec![0.0f64; x.n_rows()];
        scores.par_chunks_mut(BLOCK).enumerate().for_each_init(Vec::new, |gathered, (b, block)| {
            let first = b * BLOCK;
            let rows = match x.dense() {
                Some(all) => &all[first * d..][..block.len() * d],
                None => {
                    gathered.clear();
                    x.gather(&mut (first..first + block.len()), gathered);
                    &gathered[..]
                }
            };
            for tree in &self.trees {
                tree.add_path_lengths(rows, d, block);
            }
            for s in block.iter_mut() {
                // A single training sample gives c = 0: scikit-learn then
                // divides nothing and scores -2^-1.
                *s = if denominator > 0.0 { -(2f64.powf(-*s / denominator)) } else { -0.5 };
            }
        });
        Ok(scores)
    }

    /// `score_samples - offset`: negative for outliers.
    pub fn decision_function(&self, x: &dyn Rows) -> Result<Vec<f64>> {
        Ok(self.score_samples(x)?.into_iter().map(|s| s - self.offset).collect())
    }

    /// -1 for outliers (`decision_function < 0`), +1 for inliers.
    pub fn predict(&self, x: &dyn Rows) -> Result<Vec<i8>> {
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
        if self.max_samples > u32::MAX as usize {
            return Err(corrupt(format!("max_samples is {}, more rows than a tree can hold", self.max_samples)));
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

    #[test]
    fn sparse_rows_grow_and_score_exactly_as_dense_ones() {
        let mut rng = Rng::new(5);
        let (n, d) = (700, 6);
        let x = ndarray::Array2::from_shape_fn((n, d), |_| if rng.below(3) == 0 { rng.normal() as f32 } else { 0.0 });
        let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
        for row in x.rows() {
            for (j, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
                indices.push(j as i64);
                data.push(v);
            }
            indptr.push(data.len() as i64);
        }
        let dense = FeatureMatrix::new(x.view(), None).unwrap();
        let sparse = crate::data::CsrMatrix::new(d, &indptr, &indices, &data, None).unwrap();
        for bootstrap in [false, true] {
            let params = IsolationForestParams {
                bootstrap,
                contamination: Contamination::Fraction(0.1),
                random_state: 9,
                ..Default::default()
            };
            let forest = params.check().unwrap();
            let a = forest.fit(&dense).unwrap();
            let mut b = forest.fit_trees(&sparse).unwrap();
            b.set_offset_from_scores(b.score_samples(&sparse).unwrap()).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.score_samples(&dense).unwrap(), b.score_samples(&sparse).unwrap());
            assert_eq!(a.explain(&dense).unwrap(), b.explain(&sparse).unwrap());
        }
    }

    #[test]
    fn one_row_fits_and_scores_as_scikit_learn() {
        let x = FeatureMatrix::new(ndarray::array![[1.0f32, 2.0, 3.0]], None).unwrap();
        let forest = IsolationForestParams::default().check().unwrap().fit(&x).unwrap();
        assert_eq!(forest.max_samples, 1);
        // c(1) = 0: scikit-learn leaves the division out and scores -2^-1.
        assert_eq!(forest.score_samples(&x).unwrap(), [-0.5]);
        assert_eq!(forest.predict(&x).unwrap(), [1]);
    }
}
