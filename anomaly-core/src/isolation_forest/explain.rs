//! Per-feature explanations of isolation-forest scores: exact
//! path-dependent Shapley values (TreeSHAP, Lundberg et al. 2018,
//! "Consistent individualized feature attribution for tree ensembles",
//! Algorithm 2) of the forest's additive output, the mean path length
//! `E[h(x)]` over trees, which is what SHAP's `TreeExplainer` explains for
//! scikit-learn's `IsolationForest`.
//!
//! For each row the contributions sum to `E[h(x)]` minus the expected mean
//! path length (each tree's leaf values weighted by the training rows that
//! reached them). A negative contribution shortens the path: it pushes the
//! row toward anomalous. A feature no tree splits on gets exactly 0.
//!
//! Cost per row and tree is O(leaves · depth²) (both children of every
//! node are visited with the path's weights); rows run in parallel.

use rayon::prelude::*;

use super::forest::FittedIsolationForest;
use super::tree::Tree;
use crate::data::Rows;
use crate::error::{Error, Result};

/// Rows explained together (one gathered block for sparse input).
const BLOCK: usize = 256;

/// Explanations of a block of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Row-major `(n_rows, n_features)` contributions to the mean path length.
    pub values: Vec<f64>,
    /// The expected mean path length (SHAP's `expected_value`).
    pub expected: f64,
    /// Width of a row of `values`.
    pub n_features: usize,
}

impl Explanation {
    /// The feature that pushes row `r` most toward anomalous (its most
    /// negative contribution) and that contribution's share of all the
    /// row's negative ones, in (0, 1]; `None` when nothing pushes it there.
    /// Operators read it as "which sensor made this record anomalous".
    pub fn top(&self, r: usize) -> Option<(usize, f64)> {
        let phi = self.values.get(r * self.n_features..(r + 1) * self.n_features)?;
        let pull: f64 = phi.iter().filter(|v| **v < 0.0).sum();
        let (feature, &value) = phi.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1))?;
        (value < 0.0).then(|| (feature, value / pull))
    }
}

/// One element of the path of unique features from the root (the paper's
/// `m`): feature (`u32::MAX` for the root's placeholder), the fraction of
/// "zero" paths (feature absent: rows weighted by cover) and of "one" paths
/// (feature present: 1 along the row's own branch), and the permutation
/// weight.
#[derive(Debug, Clone, Copy)]
struct PathElement {
    feature: u32,
    zero: f64,
    one: f64,
    weight: f64,
}

const NO_FEATURE: u32 = u32::MAX;

/// A tree prepared for explaining: covers and the leaf values scaled by
/// `1 / n_trees` so the forest's output is the mean path length.
struct Prepared<'a> {
    tree: &'a Tree,
    cover: Vec<f64>,
    scale: f64,
}

impl FittedIsolationForest {
    /// Shapley values of every row of `x` (see the module docs). Extended
    /// forests are refused: a hyperplane split mixes features, so their
    /// path-dependent Shapley values are not defined per feature.
    pub fn explain(&self, x: &dyn Rows) -> Result<Explanation> {
        self.check_width(x)?;
        if self.trees().iter().any(Tree::is_extended) {
            return Err(Error::param(
                "extension_level",
                self.params.extension_level,
                "explanations need axis-parallel trees (extension_level=0): a hyperplane split mixes features",
            ));
        }
        let prepared = self.prepared();
        let expected = prepared.iter().map(Prepared::expected).sum();
        let d = self.n_features;
        let depth = self.trees().iter().map(|t| t.depths().into_iter().max().unwrap_or(0)).max().unwrap_or(0);
        let path_len = (depth + 3) * (depth + 4) / 2 + 4;
        let mut values = vec![0.0; x.n_rows() * d];
        values.par_chunks_mut(BLOCK * d).enumerate().for_each_init(
            || (vec![PathElement { feature: NO_FEATURE, zero: 0.0, one: 0.0, weight: 0.0 }; path_len], Vec::new()),
            |(path, gathered), (b, block)| {
                let (first, rows) = (b * BLOCK, block.len() / d);
                let dense = match x.dense() {
                    Some(all) => &all[first * d..][..rows * d],
                    None => {
                        gathered.clear();
                        x.gather(&mut (first..first + rows), gathered);
                        &gathered[..]
                    }
                };
                for (phi, row) in block.chunks_mut(d).zip(dense.chunks(d)) {
                    for tree in &prepared {
                        tree.shap(row, phi, path);
                    }
                }
            },
        );
        Ok(Explanation { values, expected, n_features: d })
    }
}

impl FittedIsolationForest {
    /// The expected mean path length over the training rows' leaves: the
    /// base value explanations start from (SHAP's `expected_value`).
    pub fn expected_path_length(&self) -> f64 {
        self.prepared().iter().map(Prepared::expected).sum()
    }

    fn prepared(&self) -> Vec<Prepared<'_>> {
        let scale = 1.0 / self.n_trees() as f64;
        self.trees()
            .iter()
            .map(|tree| Prepared { tree, cover: tree.node_counts().iter().map(|&c| c as f64).collect(), scale })
            .collect()
    }
}

impl Prepared<'_> {
    /// The tree's expected output: leaf values weighted by cover.
    fn expected(&self) -> f64 {
        let total = self.cover[0];
        (0..self.tree.n_nodes())
            .filter(|&i| self.tree.split(i).is_none())
            .map(|i| self.tree.leaf_value(i) * self.cover[i] / total)
            .sum::<f64>()
            * self.scale
    }

    /// Adds this tree's Shapley values of `row` to `phi`.
    fn shap(&self, row: &[f32], phi: &mut [f64], buf: &mut [PathElement]) {
        self.recurse(row, phi, buf, Step { node: 0, unique: 0, parent: 0, zero: 1.0, one: 1.0, feature: NO_FEATURE });
    }

    /// The paper's RECURSE. Each call owns a segment of `buf` after its
    /// parent's, holding the path of unique features (`step.unique + 1`
    /// elements with the root's placeholder), so siblings see the parent's.
    fn recurse(&self, row: &[f32], phi: &mut [f64], buf: &mut [PathElement], step: Step) {
        let Step { node, mut unique, parent, zero, one, feature } = step;
        let at = parent + unique + 1;
        buf.copy_within(parent..parent + unique + 1, at);
        extend(&mut buf[at..=at + unique], unique, zero, one, feature);
        let Some((split, threshold, left)) = self.tree.split(node) else {
            let value = self.tree.leaf_value(node) * self.scale;
            let path = &buf[at..=at + unique];
            for (i, e) in path.iter().enumerate().skip(1) {
                phi[e.feature as usize] += unwound_sum(path, unique, i) * (e.one - e.zero) * value;
            }
            return;
        };
        let (hot, cold) = if row[split as usize] > threshold { (left + 1, left) } else { (left, left + 1) };
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        if let Some(k) = (1..=unique).find(|&k| buf[at + k].feature == split) {
            incoming_zero = buf[at + k].zero;
            incoming_one = buf[at + k].one;
            unwind(&mut buf[at..=at + unique], unique, k);
            unique -= 1;
        }
        let total = self.cover[node];
        let child =
            |node: usize, zero: f64, one: f64| Step { node, unique: unique + 1, parent: at, zero, one, feature: split };
        self.recurse(row, phi, buf, child(hot, self.cover[hot] / total * incoming_zero, incoming_one));
        self.recurse(row, phi, buf, child(cold, self.cover[cold] / total * incoming_zero, 0.0));
    }
}

/// Where a recursion step starts: the node, the parent's unique-path length
/// and segment, and the fractions of the feature the parent split on.
#[derive(Clone, Copy)]
struct Step {
    node: usize,
    unique: usize,
    parent: usize,
    zero: f64,
    one: f64,
    feature: u32,
}

/// The paper's EXTEND: grows `path[..unique]` by one feature, in place.
fn extend(path: &mut [PathElement], unique: usize, zero: f64, one: f64, feature: u32) {
    path[unique] = PathElement { feature, zero, one, weight: if unique == 0 { 1.0 } else { 0.0 } };
    let n = (unique + 1) as f64;
    for i in (0..unique).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / n;
        path[i].weight = zero * path[i].weight * (unique - i) as f64 / n;
    }
}

/// The paper's UNWIND: removes element `k` from `path[..=unique]`, in place.
fn unwind(path: &mut [PathElement], unique: usize, k: usize) {
    let (one, zero) = (path[k].one, path[k].zero);
    let n = (unique + 1) as f64;
    let mut next = path[unique].weight;
    for i in (0..unique).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * n / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (unique - i) as f64 / n;
        } else {
            path[i].weight = path[i].weight * n / (zero * (unique - i) as f64);
        }
    }
    for i in k..unique {
        let e = path[i + 1];
        path[i] = PathElement { weight: path[i].weight, ..e };
    }
}

/// The total weight of the path with element `k` unwound, without
/// changing it.
fn unwound_sum(path: &[PathElement], unique: usize, k: usize) -> f64 {
    let (one, zero) = (path[k].one, path[k].zero);
    let mut next = path[unique].weight;
    let mut total = 0.0;
    for i in (0..unique).rev() {
        if one != 0.0 {
            let tmp = next / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (unique - i) as f64;
        } else if zero != 0.0 {
            total += path[i].weight / (zero * (unique - i) as f64);
        }
    }
    total * (unique + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FeatureMatrix;
    use crate::isolation_forest::IsolationForestParams;
    use crate::rng::Rng;
    use crate::traits::{Fit, ParamGuard};

    fn forest(n: usize, d: usize, seed: u64, trees: usize) -> (FittedIsolationForest, ndarray::Array2<f32>) {
        let mut rng = Rng::new(seed);
        let x = ndarray::Array2::from_shape_fn((n, d), |(_, j)| (rng.normal() * (j + 1) as f64) as f32);
        let params = IsolationForestParams { n_estimators: trees, random_state: seed, ..Default::default() };
        let fitted = params.check().unwrap().fit(&FeatureMatrix::new(x.view(), None).unwrap()).unwrap();
        (fitted, x)
    }

    /// The path-dependent value of a coalition: features in `known` follow
    /// the row, the others split by cover.
    fn coalition_value(tree: &Tree, cover: &[f64], row: &[f32], known: u32, node: usize) -> f64 {
        match tree.split(node) {
            None => tree.leaf_value(node),
            Some((f, t, left)) if known & (1 << f) != 0 => {
                coalition_value(tree, cover, row, known, left + usize::from(row[f as usize] > t))
            }
            Some((_, _, left)) => {
                (0..2).map(|k| cover[left + k] / cover[node] * coalition_value(tree, cover, row, known, left + k)).sum()
            }
        }
    }

    /// Shapley values by their definition, over every subset of features.
    fn brute_force(model: &FittedIsolationForest, row: &[f32]) -> Vec<f64> {
        let d = row.len();
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        let mut phi = vec![0.0; d];
        for tree in model.trees() {
            let cover: Vec<f64> = tree.node_counts().iter().map(|&c| c as f64).collect();
            let v = |s: u32| coalition_value(tree, &cover, row, s, 0) / model.n_trees() as f64;
            for (i, p) in phi.iter_mut().enumerate() {
                for s in 0u32..(1 << d) {
                    if s & (1 << i) == 0 {
                        let k = s.count_ones() as usize;
                        *p += fact(k) * fact(d - k - 1) / fact(d) * (v(s | (1 << i)) - v(s));
                    }
                }
            }
        }
        phi
    }

    #[test]
    fn top_is_the_strongest_pull_toward_anomalous_and_its_share() {
        let e = Explanation { values: vec![-3.0, 1.0, -1.0, 0.5, 0.0, 2.0], expected: 8.0, n_features: 3 };
        assert_eq!(e.top(0), Some((0, 0.75)));
        assert_eq!(e.top(1), None);
        assert_eq!(e.top(2), None);
    }

    #[test]
    fn node_counts_recover_the_training_rows() {
        let (model, _) = forest(300, 3, 7, 20);
        for tree in model.trees() {
            assert_eq!(tree.node_counts()[0], 256);
        }
    }

    #[test]
    fn treeshap_equals_brute_force_shapley_values_and_adds_up() {
        for (d, seed) in [(1, 1), (3, 2), (5, 3), (6, 4)] {
            let (model, x) = forest(200, d, seed, 15);
            let explained = model.explain(&FeatureMatrix::new(x.view(), None).unwrap()).unwrap();
            for r in [0, 17, 199] {
                let row = x.row(r).to_vec();
                let phi = &explained.values[r * d..(r + 1) * d];
                for (a, b) in phi.iter().zip(brute_force(&model, &row)) {
                    assert!((a - b).abs() < 1e-9, "d={d} row {r}: {phi:?} vs brute force");
                }
                let mean_path: f64 =
                    model.trees().iter().map(|t| t.path_length(&row)).sum::<f64>() / model.n_trees() as f64;
                let total: f64 = phi.iter().sum();
                assert!((total + explained.expected - mean_path).abs() < 1e-9);
            }
        }
    }
}
