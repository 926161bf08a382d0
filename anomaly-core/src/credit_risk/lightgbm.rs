//! LightGBM's `LGBMClassifier` as its own C++ predicts it (issue 18): the
//! trees of `booster_.dump_model()` in flat arrays, walked with LightGBM's
//! rules (values within 1e-35 of zero read as zero, missing-value types,
//! categorical sets), summed in f64 in model order and linked with libm's
//! `exp` and a sequential softmax, so probabilities equal LightGBM's bit for
//! bit on the same C library (`docs/credit_model_format.md`, `lightgbm`).

use serde::Deserialize;

use crate::error::{Error, Result};

use super::quick::Sums;
use super::split_rule;
use super::walk::{self, Forest, Walked};

fn corrupt(reason: String) -> Error {
    Error::CorruptModel { reason: format!("lightgbm: {reason}") }
}

/// LightGBM's `kZeroThreshold` as the f64 it compares with: its dense-row
/// reader keeps only values above it in magnitude (or NaN), so smaller
/// ones read as 0.
const ZERO_THRESHOLD: f64 = 1.000_000_018_002_509_5e-35;

/// The classifier section of the file.
#[derive(Debug, Deserialize)]
pub(crate) struct LightGbmDoc {
    n_features: usize,
    objective: String,
    #[serde(deserialize_with = "super::document::float")]
    sigmoid: f64,
    trees_per_iteration: usize,
    average_output: bool,
    cast_f32: bool,
    trees: Vec<TreeDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeDoc {
    split_feature: Vec<usize>,
    #[serde(deserialize_with = "super::document::floats_or_null")]
    threshold: Vec<Option<f64>>,
    missing_type: Vec<Missing>,
    default_left: Vec<bool>,
    categories_left: Vec<Option<Vec<i64>>>,
    left_child: Vec<i64>,
    right_child: Vec<i64>,
    #[serde(deserialize_with = "super::document::floats")]
    leaf_value: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Missing {
    None,
    Zero,
    NaN,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    Binary,
    Multiclass,
    MulticlassOva,
}

/// A tree: splits `0..n`, then its `n + 1` leaves as nodes `n..=2n`.
#[derive(Debug, Clone)]
struct Tree {
    walk: walk::Tree<f64>,
    splits: usize,
    leaves: Vec<f64>,
}

/// A compiled LightGBM classifier.
#[derive(Debug, Clone)]
pub(crate) struct LightGbm {
    objective: Objective,
    sigmoid: f64,
    k: usize,
    average_output: bool,
    cast_f32: bool,
    trees: Forest<Tree, f64>,
    /// Binary models' leaf values for scoring in blocks.
    sums: Option<Sums<f64>>,
}

impl Walked<f64> for Tree {
    fn walk(&self) -> &walk::Tree<f64> {
        &self.walk
    }
}

impl Tree {
    fn compile(doc: TreeDoc, n_features: usize) -> Result<Tree> {
        let n = doc.split_feature.len();
        let lengths = [
            ("threshold", doc.threshold.len()),
            ("missing_type", doc.missing_type.len()),
            ("default_left", doc.default_left.len()),
            ("categories_left", doc.categories_left.len()),
            ("left_child", doc.left_child.len()),
            ("right_child", doc.right_child.len()),
        ];
        if let Some((name, len)) = lengths.iter().find(|(_, len)| *len != n) {
            return Err(corrupt(format!("tree {name} has {len} entries for {n} nodes")));
        }
        if doc.leaf_value.len() != n + 1 {
            return Err(corrupt(format!(
                "a tree of {n} splits has {} leaves, expected {}",
                doc.leaf_value.len(),
                n + 1
            )));
        }
        if doc.leaf_value.iter().any(|v| !v.is_finite()) {
            return Err(corrupt("a leaf value is not finite".into()));
        }
        // Every internal node but the root and every leaf has one parent,
        // and an internal child follows its parent: no loop, no sharing.
        let (mut internal_parents, mut leaf_parents) = (vec![0u8; n], vec![0u8; n + 1]);
        let mut splits = Vec::with_capacity(2 * n + 1);
        // A child: a split index, or !leaf (leaf `l` is node `n + l`).
        let node = |c: i64| if c >= 0 { c as u32 } else { (n as i64 + !c) as u32 };
        for i in 0..n {
            for child in [doc.left_child[i], doc.right_child[i]] {
                let seen = match usize::try_from(child) {
                    Ok(c) if c > i && c < n => &mut internal_parents[c],
                    Ok(_) => return Err(corrupt(format!("node {i} has child {child}"))),
                    Err(_) => match usize::try_from(!child) {
                        Ok(leaf) if leaf <= n => &mut leaf_parents[leaf],
                        _ => return Err(corrupt(format!("node {i} has leaf child {child}"))),
                    },
                };
                *seen += 1;
            }
            let feature = doc.split_feature[i];
            if feature >= n_features {
                return Err(corrupt(format!("node {i} splits on feature {feature} of {n_features}")));
            }
            let (feature, left, right) = (feature as u32, node(doc.left_child[i]), node(doc.right_child[i]));
            splits.push(match (&doc.categories_left[i], doc.threshold[i]) {
                (Some(codes), _) => {
                    if codes.iter().any(|&c| !(0..1 << 31).contains(&c)) {
                        return Err(corrupt(format!("node {i} has a category code out of range")));
                    }
                    let rule = walk::CategoryRule::LightGbm { left: split_rule::bitset(codes) };
                    walk::Split::Categorical { feature, rule, nan_left: false, left, right }
                }
                (None, Some(threshold)) if !threshold.is_nan() => {
                    // LightGBM's missing types: None reads NaN as 0; Zero
                    // sends 0 (and NaN, read as 0) the default way; NaN
                    // sends NaN the default way.
                    let default_left = doc.default_left[i];
                    let (nan_left, zero_left) = match doc.missing_type[i] {
                        Missing::None => (0.0 <= threshold, 0.0 <= threshold),
                        Missing::Zero => (default_left, default_left),
                        Missing::NaN => (default_left, 0.0 <= threshold),
                    };
                    walk::Split::Numerical { feature, threshold, nan_left, zero_left, left, right }
                }
                (None, _) => return Err(corrupt(format!("node {i} has neither a threshold nor categories"))),
            });
        }
        let single = |counts: &[u8], skip_root: bool| counts.iter().skip(usize::from(skip_root)).all(|&c| c == 1);
        if n > 0 && !(internal_parents[0] == 0 && single(&internal_parents, true) && single(&leaf_parents, false)) {
            return Err(corrupt("a tree node or leaf has no parent or two".into()));
        }
        splits.extend((0..=n).map(|_| walk::Split::Leaf));
        Ok(Tree { walk: walk::Tree::new(splits), splits: n, leaves: doc.leaf_value })
    }

    fn leaf_value(&self, node: u32) -> f64 {
        self.leaves[node as usize - self.splits]
    }
}

impl LightGbm {
    /// Compiles and checks the section; returns it with its input width.
    pub(crate) fn compile(doc: LightGbmDoc, n_classes: usize) -> Result<(LightGbm, usize)> {
        let objective = match doc.objective.as_str() {
            "binary" | "cross_entropy" => Objective::Binary,
            "multiclass" => Objective::Multiclass,
            "multiclassova" => Objective::MulticlassOva,
            other => return Err(corrupt(format!("objective {other:?} is not supported"))),
        };
        let k = if objective == Objective::Binary { 1 } else { n_classes };
        if (objective == Objective::Binary && n_classes != 2) || doc.trees_per_iteration != k {
            return Err(corrupt(format!(
                "{} trees per iteration for {n_classes} classes ({})",
                doc.trees_per_iteration, doc.objective
            )));
        }
        if !doc.trees.len().is_multiple_of(k) {
            return Err(corrupt(format!("{} trees is not a whole number of iterations of {k}", doc.trees.len())));
        }
        if !(doc.sigmoid.is_finite() && doc.sigmoid > 0.0) {
            return Err(corrupt(format!("sigmoid is {}", doc.sigmoid)));
        }
        let trees: Vec<Tree> =
            doc.trees.into_iter().map(|t| Tree::compile(t, doc.n_features)).collect::<Result<_>>()?;
        let model = LightGbm {
            objective,
            sigmoid: doc.sigmoid,
            k,
            average_output: doc.average_output,
            cast_f32: doc.cast_f32,
            sums: None,
            trees: Forest::new(trees, doc.n_features),
        };
        let sums = model.trees.sums(k, Tree::leaf_value);
        let model = LightGbm { sums, ..model };
        Ok((model, doc.n_features))
    }

    /// Probabilities and labels of `rows` rows, as `score_block`.
    pub(crate) fn score_block(&self, x: &[f64], n_features: usize, proba: &mut [f64], labels: &mut [usize]) {
        let n_classes = proba.len() / labels.len().max(1);
        // LightGBM's dense-row reader: an optional f32 cast, and values
        // within kZeroThreshold of zero read as zero.
        let rows: Vec<f64> = x
            .iter()
            .map(|&v| {
                let v = if self.cast_f32 { f64::from(v as f32) } else { v };
                if v.abs() <= ZERO_THRESHOLD {
                    0.0
                } else {
                    v
                }
            })
            .collect();
        let k = self.k;
        let mut raw = vec![0.0; labels.len() * k];
        let trees = self.trees.trees();
        self.trees.add_leaves(&rows, n_features, &mut raw, (k, self.sums.as_ref()), |t, _| t % k, Tree::leaf_value);
        let iterations = (trees.len() / self.k) as f64;
        for (i, label) in labels.iter_mut().enumerate() {
            let raw = &mut raw[i * k..(i + 1) * k];
            if self.average_output && iterations > 0.0 {
                raw.iter_mut().for_each(|r| *r /= iterations);
            }
            let out = &mut proba[i * n_classes..(i + 1) * n_classes];
            match self.objective {
                Objective::Binary => {
                    let p = 1.0 / (1.0 + (-self.sigmoid * raw[0]).exp());
                    out[0] = 1.0 - p;
                    out[1] = p;
                }
                Objective::Multiclass => {
                    // LightGBM's Common::Softmax: sequential max and sum.
                    let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let mut total = 0.0;
                    for (o, &r) in out.iter_mut().zip(raw.iter()) {
                        *o = (r - max).exp();
                        total += *o;
                    }
                    out.iter_mut().for_each(|o| *o /= total);
                }
                Objective::MulticlassOva => {
                    for (o, &r) in out.iter_mut().zip(raw.iter()) {
                        *o = 1.0 / (1.0 + (-self.sigmoid * r).exp());
                    }
                }
            }
            // LGBMClassifier.predict: the first argmax of predict_proba.
            *label = out.iter().enumerate().fold(0, |best, (c, &p)| if p > out[best] { c } else { best });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::credit_risk::{Applicants, ColumnData, CreditModel};

    /// One numerical stump on `a` (NaN missing type, default left) and one
    /// categorical split on `b` (codes 1 and 65 left).
    fn model(objective: &str, k: usize, classes: &str, trees: &str) -> String {
        format!(
            r#"{{"format": "anomaly.credit_risk", "version": 2, "sklearn_version": "1.9.1", "lightgbm_version": "4.7.0",
              "input": {{"named": true, "columns": [{{"name": "a", "kind": "numeric"}}, {{"name": "b", "kind": "numeric"}}]}},
              "classes": {classes}, "preprocessing": null,
              "classifier": {{"type": "lightgbm", "n_features": 2, "objective": "{objective}", "sigmoid": 1.0,
                             "trees_per_iteration": {k}, "average_output": false, "cast_f32": false, "trees": [{trees}]}}}}"#
        )
    }

    const STUMP: &str = r#"{"split_feature": [0], "threshold": [0.5], "missing_type": ["NaN"], "default_left": [true],
        "categories_left": [null], "left_child": [-1], "right_child": [-2], "leaf_value": [-1.0, 2.0]}"#;
    const CATEGORIES: &str = r#"{"split_feature": [1], "threshold": [null], "missing_type": ["None"], "default_left": [false],
        "categories_left": [[1, 65]], "left_child": [-1], "right_child": [-2], "leaf_value": [0.25, -0.5]}"#;

    fn scores(json: &str, a: Vec<f64>, b: Vec<f64>) -> Vec<Vec<f64>> {
        let m = CreditModel::from_json(json.as_bytes()).unwrap();
        let rows = a.len();
        let s = m
            .score(&Applicants::new().column("a", ColumnData::Numbers(a)).column("b", ColumnData::Numbers(b)))
            .unwrap();
        (0..rows).map(|i| s.row(i).to_vec()).collect()
    }

    #[test]
    fn binary_walks_numerical_and_categorical_splits() {
        let json = model("binary", 1, "[0, 1]", &format!("{STUMP}, {CATEGORIES}"));
        let a = vec![0.1, 3.0, f64::NAN, 1e-40, 0.7];
        let b = vec![1.0, 65.9, 2.0, -0.5, f64::NAN];
        // raw: stump (NaN left, 1e-40 reads as 0 <= 0.5) + categories (1, 65.9 -> 65 and -0.5 -> 0: 0 is not in the set).
        let raw: [f64; 5] = [-1.0 + 0.25, 2.0 + 0.25, -1.0 - 0.5, -1.0 - 0.5, 2.0 - 0.5];
        for (row, r) in scores(&json, a, b).iter().zip(raw) {
            let p = 1.0 / (1.0 + (-r).exp());
            assert_eq!(row, &vec![1.0 - p, p]);
        }
    }

    #[test]
    fn multiclass_is_a_sequential_softmax_over_trees_per_class() {
        let json = model("multiclass", 3, "[\"x\", \"y\", \"z\"]", &format!("{STUMP}, {CATEGORIES}, {STUMP}"));
        let row = &scores(&json, vec![3.0], vec![1.0])[0];
        let raw = [2.0, 0.25, 2.0];
        let e: Vec<f64> = raw.iter().map(|r| (r - 2.0f64).exp()).collect();
        let total = e[0] + e[1] + e[2];
        assert_eq!(row, &e.iter().map(|v| v / total).collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_trees_are_refused() {
        for (edit, from, to) in [
            ("a loop", r#""left_child": [-1]"#, r#""left_child": [0]"#),
            ("a missing leaf", r#""leaf_value": [-1.0, 2.0]"#, r#""leaf_value": [-1.0]"#),
            ("a feature out of range", r#""split_feature": [0]"#, r#""split_feature": [7]"#),
            ("a shared leaf", r#""right_child": [-2]"#, r#""right_child": [-1]"#),
        ] {
            let json = model("binary", 1, "[0, 1]", &STUMP.replace(from, to));
            assert!(CreditModel::from_json(json.as_bytes()).is_err(), "{edit}");
        }
        let json = model("multiclass", 2, "[0, 1]", STUMP);
        assert!(CreditModel::from_json(json.as_bytes()).is_err(), "multiclass needs trees per class");
    }
}
