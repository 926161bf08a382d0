//! XGBoost's `XGBClassifier` as its CPU predictor computes it (issue 18):
//! every value cast to f32 and compared `x < threshold`, leaves added to the
//! margin one tree at a time in f32, linked with glibc's `expf` (the
//! sigmoid clamped as XGBoost clamps it, the softmax summed in f64), so the
//! probabilities equal XGBoost's float32 ones bit for bit on the same C
//! library (`docs/credit_model_format.md`, `xgboost`).

use serde::Deserialize;

use crate::error::{Error, Result};

use super::quick::Sums;
use super::split_rule;
use super::walk::{self, Forest, Walked};

fn corrupt(reason: String) -> Error {
    Error::CorruptModel { reason: format!("xgboost: {reason}") }
}

/// The classifier section of the file.
#[derive(Debug, Deserialize)]
pub(crate) struct XgBoostDoc {
    n_features: usize,
    objective: String,
    #[serde(deserialize_with = "super::document::floats")]
    base_margin: Vec<f64>,
    #[serde(default, deserialize_with = "super::document::float_opt")]
    missing: Option<f64>,
    trees: Vec<TreeDoc>,
}

#[derive(Debug, Deserialize)]
struct TreeDoc {
    group: usize,
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<usize>,
    #[serde(deserialize_with = "super::document::floats")]
    value: Vec<f64>,
    default_left: Vec<bool>,
    categories_right: Vec<Option<Vec<i64>>>,
}

/// A tree: the walk, and each node's value (leaves'; 0 elsewhere).
#[derive(Debug, Clone)]
struct Tree {
    group: usize,
    walk: walk::Tree<f32>,
    values: Vec<f32>,
}

impl Tree {
    fn value(&self, leaf: u32) -> f32 {
        self.values[leaf as usize]
    }
}

/// A compiled XGBoost classifier.
#[derive(Debug, Clone)]
pub(crate) struct XgBoost {
    softprob: bool,
    base_margin: Vec<f32>,
    missing: Option<f32>,
    trees: Forest<Tree, f32>,
    /// Binary models' leaf values for scoring in blocks.
    sums: Option<Sums<f32>>,
}

/// The f32 a file's number stands for; a number that is not one is corrupt.
fn f32_exact(what: &str, v: f64) -> Result<f32> {
    let x = v as f32;
    if f64::from(x) == v || v.is_nan() {
        Ok(x)
    } else {
        Err(corrupt(format!("{what} {v} is not a float32 value")))
    }
}

impl Walked<f32> for Tree {
    fn walk(&self) -> &walk::Tree<f32> {
        &self.walk
    }
}

impl Tree {
    fn compile(doc: TreeDoc, n_features: usize, groups: usize) -> Result<Tree> {
        let n = doc.left.len();
        let lengths = [
            ("right", doc.right.len()),
            ("feature", doc.feature.len()),
            ("value", doc.value.len()),
            ("default_left", doc.default_left.len()),
            ("categories_right", doc.categories_right.len()),
        ];
        if n == 0 {
            return Err(corrupt("a tree has no nodes".into()));
        }
        if let Some((name, len)) = lengths.iter().find(|(_, len)| *len != n) {
            return Err(corrupt(format!("tree {name} has {len} entries for {n} nodes")));
        }
        if doc.group >= groups {
            return Err(corrupt(format!("tree group {} of {groups}", doc.group)));
        }
        // Every node reached from the root has one parent, after it: no loop,
        // no sharing. Nodes pruned away stay in XGBoost's arrays unreached.
        let mut parents = vec![0u8; n];
        let mut reached = vec![false; n];
        reached[0] = true;
        let (mut splits, mut values) = (Vec::with_capacity(n), vec![0f32; n]);
        for i in 0..n {
            let (l, r) = (doc.left[i], doc.right[i]);
            if !reached[i] {
                splits.push(walk::Split::Leaf);
                continue;
            }
            if l == -1 && r == -1 {
                let leaf = f32_exact("a leaf value", doc.value[i])?;
                if !leaf.is_finite() {
                    return Err(corrupt("a leaf value is not finite".into()));
                }
                values[i] = leaf;
                splits.push(walk::Split::Leaf);
                continue;
            }
            let child = |c: i64| usize::try_from(c).ok().filter(|&c| c > i && c < n);
            let (Some(left), Some(right)) = (child(l), child(r)) else {
                return Err(corrupt(format!("node {i} has children {l} and {r}")));
            };
            if left == right {
                return Err(corrupt(format!("node {i} has one child twice")));
            }
            parents[left] += 1;
            parents[right] += 1;
            reached[left] = true;
            reached[right] = true;
            let feature = doc.feature[i];
            if feature >= n_features {
                return Err(corrupt(format!("node {i} splits on feature {feature} of {n_features}")));
            }
            // Missing values (NaN, or the model's `missing`, read as NaN) go
            // the default way.
            let (feature, nan_left, left, right) = (feature as u32, doc.default_left[i], left as u32, right as u32);
            splits.push(match &doc.categories_right[i] {
                Some(codes) => {
                    if codes.iter().any(|&c| !(0..1 << 24).contains(&c)) {
                        return Err(corrupt(format!("node {i} has a category code out of range")));
                    }
                    let rule = walk::CategoryRule::XgBoost { right: split_rule::bitset(codes) };
                    walk::Split::Categorical { feature, rule, nan_left, left, right }
                }
                None => {
                    let threshold = f32_exact("a threshold", doc.value[i])?;
                    if threshold.is_nan() {
                        return Err(corrupt(format!("node {i} has a NaN threshold")));
                    }
                    // XGBoost goes left on x < threshold.
                    let (zero_left, threshold) = (0.0 < threshold, split_rule::f32_below(threshold));
                    walk::Split::Numerical { feature, threshold, nan_left, zero_left, left, right }
                }
            });
        }
        if parents[0] != 0 || parents.iter().any(|&p| p > 1) {
            return Err(corrupt("a tree node has two parents, or the root has one".into()));
        }
        Ok(Tree { group: doc.group, walk: walk::Tree::new(splits), values })
    }
}

impl XgBoost {
    /// Compiles and checks the section; returns it with its input width.
    pub(crate) fn compile(doc: XgBoostDoc, n_classes: usize) -> Result<(XgBoost, usize)> {
        let softprob = match doc.objective.as_str() {
            "binary:logistic" => false,
            "multi:softprob" => true,
            other => return Err(corrupt(format!("objective {other:?} is not supported"))),
        };
        let k = if softprob { n_classes } else { 1 };
        if (!softprob && n_classes != 2) || doc.base_margin.len() != k {
            return Err(corrupt(format!(
                "{} base margins for {n_classes} classes ({})",
                doc.base_margin.len(),
                doc.objective
            )));
        }
        let base_margin = doc.base_margin.iter().map(|&m| f32_exact("base_margin", m)).collect::<Result<Vec<f32>>>()?;
        if base_margin.iter().any(|m| !m.is_finite()) {
            return Err(corrupt("base_margin is not finite".into()));
        }
        let missing = doc.missing.map(|m| f32_exact("missing", m)).transpose()?.filter(|m| !m.is_nan());
        let trees: Vec<Tree> =
            doc.trees.into_iter().map(|t| Tree::compile(t, doc.n_features, k)).collect::<Result<_>>()?;
        let trees = Forest::new(trees, doc.n_features);
        let sums = trees.sums(k, Tree::value);
        Ok((XgBoost { softprob, base_margin, missing, trees, sums }, doc.n_features))
    }

    /// Whether `score_block` takes `rows` rows column by column: binary
    /// models whose trees the gathered walk's tops hold whole (their first
    /// levels' values are then loaded sixteen rows at a time, not gathered),
    /// and enough rows to pay for the tops' value tables (100 trees: 6 us,
    /// where a single row takes 7 us the other way).
    pub(crate) fn column_major(&self, rows: usize) -> bool {
        rows >= 256 && self.base_margin.len() == 1 && self.trees.whole()
    }

    /// Probabilities and labels of `labels.len()` rows of `x`, row-major
    /// (or column by column where `column_major`), `n_features` wide.
    pub(crate) fn score_block(&self, x: &[f64], n_features: usize, proba: &mut [f64], labels: &mut [usize]) {
        let n_classes = proba.len() / labels.len().max(1);
        // XGBoost's input: f32, the model's `missing` value read as NaN
        // (none: NaN, which equals nothing; a select, so it vectorises).
        let missing = self.missing.unwrap_or(f32::NAN);
        let rows: Vec<f32> = x
            .iter()
            .map(|&v| {
                let v = v as f32;
                if v == missing {
                    f32::NAN
                } else {
                    v
                }
            })
            .collect();
        let k = self.base_margin.len();
        let mut margins: Vec<f32> = (0..labels.len()).flat_map(|_| self.base_margin.iter().copied()).collect();
        let at = |_, tree: &Tree| tree.group;
        let column_major = self.column_major(labels.len());
        if !column_major || !self.trees.add_columns(&rows, n_features, &mut margins, Tree::value) {
            let rows = match column_major {
                // Only where `add_columns` declines a block of 2^29 values
                // or more (models of over 131,072 features): back to rows.
                true => (0..labels.len())
                    .flat_map(|r| (0..n_features).map(move |f| (r, f)))
                    .map(|(r, f)| rows[f * labels.len() + r])
                    .collect(),
                false => rows,
            };
            self.trees.add_leaves(&rows, n_features, &mut margins, (k, self.sums.as_ref()), at, Tree::value);
        }
        let mut exps = vec![0f32; k];
        for (i, label) in labels.iter_mut().enumerate() {
            let margin = &margins[i * k..(i + 1) * k];
            let out = &mut proba[i * n_classes..(i + 1) * n_classes];
            if self.softprob {
                let wmax = margin.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut wsum = 0f64;
                for (e, &m) in exps.iter_mut().zip(margin) {
                    *e = (m - wmax).exp();
                    wsum += f64::from(*e);
                }
                let total = wsum as f32;
                let mut best = 0;
                for (c, (o, &e)) in out.iter_mut().zip(&exps).enumerate() {
                    *o = f64::from(e / total);
                    if e / total > exps[best] / total {
                        best = c;
                    }
                }
                *label = best;
            } else {
                let z = (-margin[0]).min(88.7f32);
                let p = 1.0f32 / ((z.exp() + 1.0f32) + 1e-16f32);
                out[0] = f64::from(1.0f32 - p);
                out[1] = f64::from(p);
                *label = usize::from(p > 0.5f32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::credit_risk::{Applicants, ColumnData, CreditModel};

    fn model(objective: &str, margins: &str, classes: &str, missing: &str, trees: &str) -> String {
        format!(
            r#"{{"format": "anomaly.credit_risk", "version": 2, "sklearn_version": "1.9.1", "xgboost_version": "3.2.0",
              "input": {{"named": true, "columns": [{{"name": "a", "kind": "numeric"}}, {{"name": "b", "kind": "numeric"}}]}},
              "classes": {classes}, "preprocessing": null,
              "classifier": {{"type": "xgboost", "n_features": 2, "objective": "{objective}", "base_margin": {margins},
                             "missing": {missing}, "trees": [{trees}]}}}}"#
        )
    }

    /// `a < 0.5` (missing right); then, on `b`, categories 2 and 70 right (missing left).
    fn trees(group_b: usize) -> String {
        format!(
            r#"{{"group": 0, "left": [1, -1, -1], "right": [2, -1, -1], "feature": [0, 0, 0], "value": [0.5, -0.25, 0.75],
                "default_left": [false, false, false], "categories_right": [null, null, null]}},
               {{"group": {group_b}, "left": [1, -1, -1], "right": [2, -1, -1], "feature": [1, 0, 0], "value": [0, 0.125, -0.5],
                "default_left": [true, false, false], "categories_right": [[2, 70], null, null]}}"#
        )
    }

    fn scores(json: &str, a: Vec<f64>, b: Vec<f64>) -> Vec<Vec<f64>> {
        let m = CreditModel::from_json(json.as_bytes()).unwrap();
        let rows = a.len();
        let s = m
            .score(&Applicants::new().column("a", ColumnData::Numbers(a)).column("b", ColumnData::Numbers(b)))
            .unwrap();
        (0..rows).map(|i| s.row(i).to_vec()).collect()
    }

    fn sigmoid32(m: f32) -> f32 {
        1.0f32 / (((-m).min(88.7f32).exp() + 1.0f32) + 1e-16f32)
    }

    #[test]
    fn binary_margins_add_in_f32_with_xgboost_routing() {
        let json = model("binary:logistic", "[0.25]", "[0, 1]", "-999.0", &trees(0));
        // a: 0.49999999 rounds to f32 0.5 and is not < 0.5 (right); NaN and -999 are missing (right).
        let a = vec![0.1, 0.499_999_999, f64::NAN, -999.0];
        // b: 70.9 truncates to 70 (right); -1 and 2^24 go left; NaN is missing (default left).
        let b = vec![70.9, -1.0, 16_777_216.0, f64::NAN];
        let leaves = [(-0.25f32, -0.5f32), (0.75, 0.125), (0.75, 0.125), (0.75, 0.125)];
        for (row, (l1, l2)) in scores(&json, a, b).iter().zip(leaves) {
            let p = sigmoid32(0.25f32 + l1 + l2);
            assert_eq!(row, &vec![f64::from(1.0f32 - p), f64::from(p)]);
        }
    }

    #[test]
    fn softprob_sums_in_f64_and_divides_in_f32() {
        let json = model("multi:softprob", "[0.5, -0.25, 0.0]", "[\"x\", \"y\", \"z\"]", "null", &trees(2));
        let row = &scores(&json, vec![0.1], vec![2.0])[0];
        let m = [0.5f32 + -0.25, -0.25, 0.0 + -0.5];
        let wmax = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = m.iter().map(|v| (v - wmax).exp()).collect();
        let total = e.iter().map(|&v| f64::from(v)).sum::<f64>() as f32;
        assert_eq!(row, &e.iter().map(|v| f64::from(v / total)).collect::<Vec<_>>());
    }

    #[test]
    fn corrupt_trees_are_refused() {
        let good = model("binary:logistic", "[0.25]", "[0, 1]", "null", &trees(0));
        CreditModel::from_json(good.as_bytes()).unwrap();
        for (what, from, to) in [
            ("a loop", r#""left": [1, -1, -1], "right": [2"#, r#""left": [0, -1, -1], "right": [2"#),
            ("a shared child", r#""right": [2, -1, -1], "feature": [0"#, r#""right": [1, -1, -1], "feature": [0"#),
            ("a feature out of range", r#""feature": [0, 0, 0]"#, r#""feature": [5, 0, 0]"#),
            ("a value that is no float32", r#""value": [0.5,"#, r#""value": [0.1,"#),
            ("a group past the margins", r#""group": 0"#, r#""group": 3"#),
        ] {
            assert!(CreditModel::from_json(good.replacen(from, to, 1).as_bytes()).is_err(), "{what}");
        }
    }
}
