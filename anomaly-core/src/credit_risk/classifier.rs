//! scikit-learn's classifiers, evaluated with its exact arithmetic
//! (`docs/credit_model_format.md`): logistic regression, decision trees,
//! random forests and extra trees, gradient boosting and histogram
//! gradient boosting.

use crate::error::{Error, Result};

use super::document::{ClassifierDoc, PredictorDoc, TreeDoc};
use super::quick::Sums;
use super::split_rule;
use super::walk::{self, Forest, Walked};

/// A scikit-learn `tree_`: the walk (features cast to f32, as scikit-learn
/// does) and leaf values, `width` per node.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    walk: walk::Tree<f32>,
    values: Vec<f64>,
    width: usize,
}

fn corrupt(reason: String) -> Error {
    Error::CorruptModel { reason }
}

/// Checks a child index: after its parent (scikit-learn numbers nodes
/// depth first, so walks always end) and inside the tree.
fn child(index: i64, parent: usize, len: usize) -> Result<u32> {
    if index > parent as i64 && (index as usize) < len {
        Ok(index as u32)
    } else {
        Err(corrupt(format!("tree node {parent} has child {index} (of {len} nodes)")))
    }
}

fn feature(index: i64, n_features: usize, node: usize) -> Result<u32> {
    if index >= 0 && (index as usize) < n_features {
        Ok(index as u32)
    } else {
        Err(corrupt(format!("tree node {node} splits on feature {index} of {n_features}")))
    }
}

impl Tree {
    fn compile(doc: TreeDoc, n_features: usize, width: usize) -> Result<Tree> {
        let len = doc.children_left.len();
        if len == 0
            || [doc.children_right.len(), doc.feature.len(), doc.threshold.len(), doc.missing_go_to_left.len()]
                .iter()
                .any(|&l| l != len)
            || doc.value.len() != len
        {
            return Err(corrupt("tree arrays differ in length".into()));
        }
        let mut splits = Vec::with_capacity(len);
        let mut values = Vec::with_capacity(len * width);
        for n in 0..len {
            if doc.value[n].len() != width {
                return Err(corrupt(format!("tree node {n} has {} values, expected {width}", doc.value[n].len())));
            }
            values.extend_from_slice(&doc.value[n]);
            splits.push(if doc.children_left[n] < 0 {
                walk::Split::Leaf
            } else {
                let threshold = doc.threshold[n];
                walk::Split::Numerical {
                    feature: feature(doc.feature[n], n_features, n)?,
                    // f64::from(x as f32) <= threshold, in f32.
                    threshold: split_rule::f32_at_most(threshold),
                    nan_left: doc.missing_go_to_left[n],
                    zero_left: 0.0 <= threshold,
                    left: child(doc.children_left[n], n, len)?,
                    right: child(doc.children_right[n], n, len)?,
                }
            });
        }
        Ok(Tree { walk: walk::Tree::new(splits), values, width })
    }

    fn values(&self, leaf: u32) -> &[f64] {
        &self.values[leaf as usize * self.width..(leaf as usize + 1) * self.width]
    }
}

impl Walked<f32> for Tree {
    fn walk(&self) -> &walk::Tree<f32> {
        &self.walk
    }
}

impl Walked<f64> for HistTree {
    fn walk(&self) -> &walk::Tree<f64> {
        &self.walk
    }
}

/// A histogram-gradient-boosting predictor (f64 features, no cast).
#[derive(Debug, Clone)]
pub(crate) struct HistTree {
    walk: walk::Tree<f64>,
    values: Vec<f64>,
}

impl HistTree {
    fn value(&self, leaf: u32) -> f64 {
        self.values[leaf as usize]
    }
}

fn bitset(codes: &[i64], what: &str) -> Result<[u64; 4]> {
    let mut bits = [0u64; 4];
    for &c in codes {
        if !(0..256).contains(&c) {
            return Err(corrupt(format!("{what}: category code {c} outside 0..256")));
        }
        bits[(c / 64) as usize] |= 1 << (c % 64);
    }
    Ok(bits)
}

impl HistTree {
    fn compile(doc: PredictorDoc, n_features: usize, known: &[Option<[u64; 4]>]) -> Result<HistTree> {
        let len = doc.value.len();
        let lens = [
            doc.feature.len(),
            doc.num_threshold.len(),
            doc.missing_go_to_left.len(),
            doc.left.len(),
            doc.right.len(),
            doc.is_leaf.len(),
            doc.is_categorical.len(),
            doc.left_categories.len(),
        ];
        if len == 0 || lens.iter().any(|&l| l != len) {
            return Err(corrupt("predictor arrays differ in length".into()));
        }
        let mut splits = Vec::with_capacity(len);
        for n in 0..len {
            if doc.is_leaf[n] {
                splits.push(walk::Split::Leaf);
                continue;
            }
            let (f, left, right) =
                (feature(doc.feature[n], n_features, n)?, child(doc.left[n], n, len)?, child(doc.right[n], n, len)?);
            let nan_left = doc.missing_go_to_left[n];
            splits.push(if doc.is_categorical[n] {
                let codes = doc.left_categories[n]
                    .as_deref()
                    .ok_or_else(|| corrupt(format!("categorical node {n} without left_categories")))?;
                let rule =
                    walk::CategoryRule::Hist { left: bitset(codes, "left_categories")?, known: known[f as usize] };
                walk::Split::Categorical { feature: f, rule, nan_left, left, right }
            } else {
                let threshold = doc.num_threshold[n];
                walk::Split::Numerical { feature: f, threshold, nan_left, zero_left: 0.0 <= threshold, left, right }
            });
        }
        Ok(HistTree { walk: walk::Tree::new(splits), values: doc.value })
    }
}

/// How raw scores become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// `p1 = expit(raw)`.
    Logit,
    /// `p1 = expit(2 raw)` (exponential loss).
    HalfLogit,
    /// Softmax over classes.
    Softmax,
}

impl Link {
    fn parse(text: &str) -> Result<Link> {
        match text {
            "logit" => Ok(Link::Logit),
            "half_logit" => Ok(Link::HalfLogit),
            "softmax" => Ok(Link::Softmax),
            other => Err(corrupt(format!("unknown link {other:?}"))),
        }
    }
}

/// A compiled classifier.
#[derive(Debug, Clone)]
pub(crate) enum Classifier {
    Logistic {
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
    },
    Tree {
        tree: Tree,
        accepts_nan: bool,
    },
    Forest {
        trees: Forest<Tree, f32>,
        accepts_nan: bool,
    },
    /// Stages' trees in order, `init.len()` per stage (one per raw score).
    Boosting {
        link: Link,
        init: Vec<f64>,
        learning_rate: f64,
        trees: Forest<Tree, f32>,
        /// Binary models' `learning_rate * value` for scoring in blocks.
        sums: Option<Sums<f64>>,
    },
    /// Iterations' trees in order, `baseline.len()` per iteration.
    Hist {
        link: Link,
        baseline: Vec<f64>,
        trees: Forest<HistTree, f64>,
        /// Binary models' leaf values for scoring in blocks.
        sums: Option<Sums<f64>>,
    },
    LightGbm(super::lightgbm::LightGbm),
    XgBoost(super::xgboost::XgBoost),
}

/// Raw-score width for a link: one score for two classes, else one per class.
fn raw_width(link: Link, n_classes: usize) -> usize {
    if link == Link::Softmax {
        n_classes
    } else {
        1
    }
}

impl Classifier {
    /// Compiles and checks a classifier; returns it with its input width.
    pub(crate) fn compile(doc: ClassifierDoc, n_classes: usize) -> Result<(Classifier, usize)> {
        let check_raw = |what: &str, found: usize, link: Link| {
            let expected = raw_width(link, n_classes);
            if found == expected {
                Ok(())
            } else {
                Err(corrupt(format!("{what} has {found} raw scores for {n_classes} classes")))
            }
        };
        Ok(match doc {
            ClassifierDoc::LogisticRegression { coef, intercept, n_features } => {
                let k = if n_classes == 2 { 1 } else { n_classes };
                if coef.len() != k || intercept.len() != k || coef.iter().any(|row| row.len() != n_features) {
                    return Err(corrupt(format!("logistic_regression: coef must be {k} x {n_features}")));
                }
                (Classifier::Logistic { coef, intercept }, n_features)
            }
            ClassifierDoc::DecisionTree { n_features, accepts_nan, tree } => {
                (Classifier::Tree { tree: Tree::compile(tree, n_features, n_classes)?, accepts_nan }, n_features)
            }
            ClassifierDoc::Forest { kind, n_features, accepts_nan, trees } => {
                if kind != "random_forest" && kind != "extra_trees" {
                    return Err(corrupt(format!("forest kind {kind:?}")));
                }
                if trees.is_empty() {
                    return Err(corrupt("forest without trees".into()));
                }
                let trees = trees
                    .into_iter()
                    .map(|t| Tree::compile(t, n_features, n_classes))
                    .collect::<Result<Vec<Tree>>>()?;
                (Classifier::Forest { trees: Forest::new(trees, n_features), accepts_nan }, n_features)
            }
            ClassifierDoc::GradientBoosting { n_features, link, init_raw, learning_rate, stages } => {
                let link = Link::parse(&link)?;
                check_raw("gradient_boosting init_raw", init_raw.len(), link)?;
                let mut trees = Vec::new();
                for stage in stages {
                    check_raw("gradient_boosting stage", stage.len(), link)?;
                    for t in stage {
                        trees.push(Tree::compile(t, n_features, 1)?);
                    }
                }
                let trees = Forest::new(trees, n_features);
                let sums = trees.sums(init_raw.len(), |tree, node| learning_rate * tree.values(node)[0]);
                (Classifier::Boosting { link, init: init_raw, learning_rate, trees, sums }, n_features)
            }
            ClassifierDoc::HistGradientBoosting { n_features, link, baseline, known_categories, iterations } => {
                let link = Link::parse(&link)?;
                check_raw("hist_gradient_boosting baseline", baseline.len(), link)?;
                if known_categories.len() != n_features {
                    return Err(corrupt("hist_gradient_boosting: known_categories per feature".into()));
                }
                let known = known_categories
                    .iter()
                    .map(|k| k.as_deref().map(|codes| bitset(codes, "known_categories")).transpose())
                    .collect::<Result<Vec<_>>>()?;
                let mut trees = Vec::new();
                for iteration in iterations {
                    check_raw("hist_gradient_boosting iteration", iteration.len(), link)?;
                    for p in iteration {
                        trees.push(HistTree::compile(p, n_features, &known)?);
                    }
                }
                let trees = Forest::new(trees, n_features);
                let sums = trees.sums(baseline.len(), HistTree::value);
                (Classifier::Hist { link, baseline, trees, sums }, n_features)
            }
            ClassifierDoc::Lightgbm(doc) => {
                let (model, n_features) = super::lightgbm::LightGbm::compile(doc, n_classes)?;
                (Classifier::LightGbm(model), n_features)
            }
            ClassifierDoc::Xgboost(doc) => {
                let (model, n_features) = super::xgboost::XgBoost::compile(doc, n_classes)?;
                (Classifier::XgBoost(model), n_features)
            }
        })
    }

    /// Whether NaN features are valid input (trees with missing-value
    /// routing, histogram boosting); elsewhere scikit-learn rejects them.
    pub(crate) fn accepts_nan(&self) -> bool {
        match self {
            Classifier::Tree { accepts_nan, .. } | Classifier::Forest { accepts_nan, .. } => *accepts_nan,
            Classifier::Hist { .. } | Classifier::LightGbm(_) | Classifier::XgBoost(_) => true,
            Classifier::Logistic { .. } | Classifier::Boosting { .. } => false,
        }
    }

    /// Whether infinite features are scored (histogram gradient boosting
    /// bins them, LightGBM compares them; every other estimator's input
    /// check refuses them).
    pub(crate) fn accepts_infinity(&self) -> bool {
        matches!(self, Classifier::Hist { .. } | Classifier::LightGbm(_) | Classifier::XgBoost(_))
    }

    /// Whether `score_block` takes `rows` rows column by column.
    pub(crate) fn column_major(&self, rows: usize) -> bool {
        matches!(self, Classifier::XgBoost(model) if model.column_major(rows))
    }

    /// Whether inputs go through scikit-learn's float32 cast.
    pub(crate) fn casts_to_f32(&self) -> bool {
        matches!(self, Classifier::Tree { .. } | Classifier::Forest { .. } | Classifier::Boosting { .. })
    }

    /// Probabilities of `rows` rows (row-major `x`, `n_features` wide, or
    /// column by column where `column_major`) into
    /// `proba` (row-major, `n_classes` wide) and each row's label index.
    /// Trees are walked tree-major over the block for cache locality; each
    /// row still accumulates in estimator order, so results are exact.
    pub(crate) fn score_block(&self, x: Matrix<'_>, n_features: usize, proba: &mut [f64], labels: &mut [usize]) {
        let n_classes = proba.len() / labels.len().max(1);
        let rows = labels.len();
        match self {
            Classifier::LightGbm(model) => model.score_block(&x.f64(), n_features, proba, labels),
            Classifier::XgBoost(model) => model.score_block(&x.f64(), n_features, proba, labels),
            Classifier::Logistic { coef, intercept } => {
                let x = x.f64();
                let row = |i: usize| &x[i * n_features..(i + 1) * n_features];
                let mut z = vec![0.0; coef.len()];
                for i in 0..rows {
                    for (k, (w, b)) in coef.iter().zip(intercept).enumerate() {
                        z[k] = row(i).iter().zip(w).fold(0.0, |s, (a, c)| s + a * c) + b;
                    }
                    let out = &mut proba[i * n_classes..(i + 1) * n_classes];
                    if coef.len() == 1 {
                        let p1 = expit(z[0]);
                        out[0] = 1.0 - p1;
                        out[1] = p1;
                        labels[i] = usize::from(z[0] > 0.0);
                    } else {
                        softmax(&z, out);
                        labels[i] = argmax(&z);
                    }
                }
            }
            Classifier::Tree { tree, .. } => {
                let x = x.f32();
                walk::each_leaf(std::slice::from_ref(tree), Tree::walk, &x, n_features, |_, start, leaves| {
                    for (out, &leaf) in proba[start * n_classes..].chunks_exact_mut(n_classes).zip(leaves) {
                        out.copy_from_slice(tree.values(leaf));
                    }
                });
                for (i, label) in labels.iter_mut().enumerate() {
                    *label = argmax(&proba[i * n_classes..(i + 1) * n_classes]);
                }
            }
            Classifier::Forest { trees, .. } => {
                proba.iter_mut().for_each(|p| *p = 0.0);
                let x = x.f32();
                let all = trees.trees();
                trees.each_leaf(&x, n_features, |t, start, leaves| {
                    let tree = &all[t];
                    if n_classes == 2 && tree.width == 2 {
                        // Binary: a pair of additions per leaf. `Tree::values`
                        // with its width known to be 2 (through the method,
                        // the forest's batch took 2-3% longer); a leaf out of
                        // range fails as there.
                        let values = tree.values.as_slice();
                        let pair = |leaf: u32| {
                            let at = leaf as usize * 2;
                            let v = &values[at..at + 2];
                            (v[0], v[1])
                        };
                        // Four rows at a time: their loads before their adds.
                        let four = leaves.len() / 4 * 4;
                        let (head, tail) = proba[start * 2..].split_at_mut(four * 2);
                        for (out, l) in head.chunks_exact_mut(8).zip(leaves.chunks_exact(4)) {
                            let v = [pair(l[0]), pair(l[1]), pair(l[2]), pair(l[3])];
                            for (o, (a, b)) in out.chunks_exact_mut(2).zip(v) {
                                o[0] += a;
                                o[1] += b;
                            }
                        }
                        for (out, &leaf) in tail.chunks_exact_mut(2).zip(&leaves[four..]) {
                            let (a, b) = pair(leaf);
                            out[0] += a;
                            out[1] += b;
                        }
                        return;
                    }
                    for (out, &leaf) in proba[start * n_classes..].chunks_exact_mut(n_classes).zip(leaves) {
                        for (acc, v) in out.iter_mut().zip(tree.values(leaf)) {
                            *acc += v;
                        }
                    }
                });
                let n = all.len() as f64;
                for i in 0..rows {
                    let out = &mut proba[i * n_classes..(i + 1) * n_classes];
                    out.iter_mut().for_each(|p| *p /= n);
                    labels[i] = argmax(out);
                }
            }
            Classifier::Boosting { link, init, learning_rate, trees, sums } => {
                let k = init.len();
                let mut raw: Vec<f64> = (0..rows).flat_map(|_| init.iter().copied()).collect();
                let x = x.f32();
                let value = |tree: &Tree, leaf| learning_rate * tree.values(leaf)[0];
                trees.add_leaves(&x, n_features, &mut raw, (k, sums.as_ref()), |t, _| t % k, value);
                finish(*link, &raw, k, proba, labels, |r| r >= 0.0);
            }
            Classifier::Hist { link, baseline, trees, sums } => {
                let k = baseline.len();
                let mut raw: Vec<f64> = (0..rows).flat_map(|_| baseline.iter().map(|b| 0.0 + b)).collect();
                trees.add_leaves(&x.f64(), n_features, &mut raw, (k, sums.as_ref()), |t, _| t % k, HistTree::value);
                finish(*link, &raw, k, proba, labels, |r| r > 0.0);
            }
        }
    }
}

/// A block's input matrix: float64, or float32 for the classifiers that
/// cast to it (`casts_to_f32`), built so by the preprocessing.
pub(crate) enum Matrix<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
}

impl Matrix<'_> {
    fn f64(&self) -> std::borrow::Cow<'_, [f64]> {
        match self {
            Matrix::F64(x) => std::borrow::Cow::Borrowed(x),
            Matrix::F32(x) => x.iter().map(|&v| f64::from(v)).collect(),
        }
    }

    fn f32(&self) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Matrix::F64(x) => x.iter().map(|&v| v as f32).collect(),
            Matrix::F32(x) => std::borrow::Cow::Borrowed(x),
        }
    }
}

/// Raw scores to probabilities and labels; `positive` is the binary
/// decision rule (`>= 0` or `> 0`, as the estimator's `predict`).
fn finish(link: Link, raw: &[f64], k: usize, proba: &mut [f64], labels: &mut [usize], positive: impl Fn(f64) -> bool) {
    let n_classes = proba.len() / labels.len().max(1);
    for (i, label) in labels.iter_mut().enumerate() {
        let r = &raw[i * k..(i + 1) * k];
        let out = &mut proba[i * n_classes..(i + 1) * n_classes];
        match link {
            Link::Logit | Link::HalfLogit => {
                let z = if link == Link::HalfLogit { 2.0 * r[0] } else { r[0] };
                let p1 = expit(z);
                out[0] = 1.0 - p1;
                out[1] = p1;
                *label = usize::from(positive(r[0]));
            }
            Link::Softmax => {
                softmax(r, out);
                *label = argmax(r);
            }
        }
    }
}

/// scipy's `expit`: `1 / (1 + exp(-x))`.
fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The first index of the largest value (numpy's argmax: ties to the first).
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// scikit-learn's softmax: `exp(z - max) / sum`, the sum in numpy's
/// pairwise order.
fn softmax(z: &[f64], out: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for (o, &v) in out.iter_mut().zip(z) {
        *o = (v - max).exp();
    }
    let total = pairwise_sum(out);
    out.iter_mut().for_each(|o| *o /= total);
}

/// numpy's pairwise summation (`npy_pairwise_sum`), bit for bit.
pub(crate) fn pairwise_sum(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 8 {
        v.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i + 8 <= n {
            for (acc, x) in r.iter_mut().zip(&v[i..i + 8]) {
                *acc += x;
            }
            i += 8;
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &v[i..] {
            sum += x;
        }
        sum
    } else {
        let half = n / 2;
        let split = half - half % 8;
        pairwise_sum(&v[..split]) + pairwise_sum(&v[split..])
    }
}
