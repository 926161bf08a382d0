//! scikit-learn's classifiers, evaluated with its exact arithmetic
//! (`docs/credit_model_format.md`): logistic regression, decision trees,
//! random forests and extra trees, gradient boosting and histogram
//! gradient boosting.

use crate::error::{Error, Result};

use super::document::{ClassifierDoc, PredictorDoc, TreeDoc};

const LEAF: u32 = u32::MAX;

/// A scikit-learn `tree_`: nodes in file order, leaf values `width` per node.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    nodes: Vec<Split>,
    values: Vec<f64>,
    width: usize,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: u32,
    threshold: f64,
    left: u32,
    right: u32,
    missing_left: bool,
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
        let mut nodes = Vec::with_capacity(len);
        let mut values = Vec::with_capacity(len * width);
        for n in 0..len {
            if doc.value[n].len() != width {
                return Err(corrupt(format!("tree node {n} has {} values, expected {width}", doc.value[n].len())));
            }
            values.extend_from_slice(&doc.value[n]);
            nodes.push(if doc.children_left[n] < 0 {
                Split { feature: 0, threshold: 0.0, left: LEAF, right: LEAF, missing_left: false }
            } else {
                Split {
                    feature: feature(doc.feature[n], n_features, n)?,
                    threshold: doc.threshold[n],
                    left: child(doc.children_left[n], n, len)?,
                    right: child(doc.children_right[n], n, len)?,
                    missing_left: doc.missing_go_to_left[n],
                }
            });
        }
        Ok(Tree { nodes, values, width })
    }

    /// The leaf's values for row `x`: features cast to f32 and compared
    /// with the f64 threshold, NaN routed by the node's missing direction.
    #[inline]
    fn leaf(&self, x: &[f64]) -> &[f64] {
        let mut n = 0usize;
        loop {
            let node = &self.nodes[n];
            if node.left == LEAF {
                return &self.values[n * self.width..(n + 1) * self.width];
            }
            let f = x[node.feature as usize] as f32;
            let left = if f.is_nan() { node.missing_left } else { f64::from(f) <= node.threshold };
            n = if left { node.left } else { node.right } as usize;
        }
    }
}

/// A histogram-gradient-boosting predictor.
#[derive(Debug, Clone)]
pub(crate) struct HistTree {
    nodes: Vec<HistSplit>,
    values: Vec<f64>,
}

#[derive(Debug, Clone)]
struct HistSplit {
    split: Split,
    leaf: bool,
    /// Category codes (< 256) sent left, for categorical splits.
    left_categories: Option<[u64; 4]>,
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

fn in_bitset(bits: &[u64; 4], code: usize) -> bool {
    code < 256 && bits[code / 64] & (1 << (code % 64)) != 0
}

impl HistTree {
    fn compile(doc: PredictorDoc, n_features: usize) -> Result<HistTree> {
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
        let mut nodes = Vec::with_capacity(len);
        for n in 0..len {
            if doc.is_leaf[n] {
                let split = Split { feature: 0, threshold: 0.0, left: LEAF, right: LEAF, missing_left: false };
                nodes.push(HistSplit { split, leaf: true, left_categories: None });
                continue;
            }
            let left_categories = if doc.is_categorical[n] {
                let codes = doc.left_categories[n]
                    .as_deref()
                    .ok_or_else(|| corrupt(format!("categorical node {n} without left_categories")))?;
                Some(bitset(codes, "left_categories")?)
            } else {
                None
            };
            let split = Split {
                feature: feature(doc.feature[n], n_features, n)?,
                threshold: doc.num_threshold[n],
                left: child(doc.left[n], n, len)?,
                right: child(doc.right[n], n, len)?,
                missing_left: doc.missing_go_to_left[n],
            };
            nodes.push(HistSplit { split, leaf: false, left_categories });
        }
        Ok(HistTree { nodes, values: doc.value })
    }

    /// The leaf value for row `x` (float64, no cast).
    #[inline]
    fn leaf(&self, x: &[f64], known: &[Option<[u64; 4]>]) -> f64 {
        let mut n = 0usize;
        loop {
            let node = &self.nodes[n];
            if node.leaf {
                return self.values[n];
            }
            let s = &node.split;
            let v = x[s.feature as usize];
            let left = if v.is_nan() {
                s.missing_left
            } else if let Some(bits) = &node.left_categories {
                if v < 0.0 {
                    s.missing_left
                } else {
                    let code = v as usize;
                    if in_bitset(bits, code) {
                        true
                    } else if known[s.feature as usize].as_ref().is_some_and(|k| in_bitset(k, code)) {
                        false
                    } else {
                        s.missing_left
                    }
                }
            } else {
                v <= s.threshold
            };
            n = if left { s.left } else { s.right } as usize;
        }
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
    Logistic { coef: Vec<Vec<f64>>, intercept: Vec<f64> },
    Tree { tree: Tree, accepts_nan: bool },
    Forest { trees: Vec<Tree>, accepts_nan: bool },
    Boosting { link: Link, init: Vec<f64>, learning_rate: f64, stages: Vec<Vec<Tree>> },
    Hist { link: Link, baseline: Vec<f64>, known: Vec<Option<[u64; 4]>>, iterations: Vec<Vec<HistTree>> },
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
                let trees =
                    trees.into_iter().map(|t| Tree::compile(t, n_features, n_classes)).collect::<Result<_>>()?;
                (Classifier::Forest { trees, accepts_nan }, n_features)
            }
            ClassifierDoc::GradientBoosting { n_features, link, init_raw, learning_rate, stages } => {
                let link = Link::parse(&link)?;
                check_raw("gradient_boosting init_raw", init_raw.len(), link)?;
                let stages = stages
                    .into_iter()
                    .map(|stage| {
                        check_raw("gradient_boosting stage", stage.len(), link)?;
                        stage.into_iter().map(|t| Tree::compile(t, n_features, 1)).collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<_>>()?;
                (Classifier::Boosting { link, init: init_raw, learning_rate, stages }, n_features)
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
                    .collect::<Result<_>>()?;
                let iterations = iterations
                    .into_iter()
                    .map(|it| {
                        check_raw("hist_gradient_boosting iteration", it.len(), link)?;
                        it.into_iter().map(|p| HistTree::compile(p, n_features)).collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<_>>()?;
                (Classifier::Hist { link, baseline, known, iterations }, n_features)
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

    /// Whether inputs go through scikit-learn's float32 cast.
    pub(crate) fn casts_to_f32(&self) -> bool {
        matches!(self, Classifier::Tree { .. } | Classifier::Forest { .. } | Classifier::Boosting { .. })
    }

    /// Probabilities of `rows` rows (row-major `x`, `n_features` wide) into
    /// `proba` (row-major, `n_classes` wide) and each row's label index.
    /// Trees are walked tree-major over the block for cache locality; each
    /// row still accumulates in estimator order, so results are exact.
    pub(crate) fn score_block(&self, x: &[f64], n_features: usize, proba: &mut [f64], labels: &mut [usize]) {
        let n_classes = proba.len() / labels.len().max(1);
        let rows = labels.len();
        let row = |i: usize| &x[i * n_features..(i + 1) * n_features];
        match self {
            Classifier::LightGbm(model) => model.score_block(x, n_features, proba, labels),
            Classifier::XgBoost(model) => model.score_block(x, n_features, proba, labels),
            Classifier::Logistic { coef, intercept } => {
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
                for i in 0..rows {
                    let out = &mut proba[i * n_classes..(i + 1) * n_classes];
                    out.copy_from_slice(tree.leaf(row(i)));
                    labels[i] = argmax(out);
                }
            }
            Classifier::Forest { trees, .. } => {
                proba.iter_mut().for_each(|p| *p = 0.0);
                for tree in trees {
                    for i in 0..rows {
                        let leaf = tree.leaf(row(i));
                        for (acc, v) in proba[i * n_classes..(i + 1) * n_classes].iter_mut().zip(leaf) {
                            *acc += v;
                        }
                    }
                }
                let n = trees.len() as f64;
                for i in 0..rows {
                    let out = &mut proba[i * n_classes..(i + 1) * n_classes];
                    out.iter_mut().for_each(|p| *p /= n);
                    labels[i] = argmax(out);
                }
            }
            Classifier::Boosting { link, init, learning_rate, stages } => {
                let k = init.len();
                let mut raw: Vec<f64> = (0..rows).flat_map(|_| init.iter().copied()).collect();
                for stage in stages {
                    for (c, tree) in stage.iter().enumerate() {
                        for i in 0..rows {
                            let step = learning_rate * tree.leaf(row(i))[0];
                            raw[i * k + c] += step;
                        }
                    }
                }
                finish(*link, &raw, k, proba, labels, |r| r >= 0.0);
            }
            Classifier::Hist { link, baseline, known, iterations } => {
                let k = baseline.len();
                let mut raw: Vec<f64> = (0..rows).flat_map(|_| baseline.iter().map(|b| 0.0 + b)).collect();
                for iteration in iterations {
                    for (c, tree) in iteration.iter().enumerate() {
                        for i in 0..rows {
                            raw[i * k + c] += tree.leaf(row(i), known);
                        }
                    }
                }
                finish(*link, &raw, k, proba, labels, |r| r > 0.0);
            }
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
