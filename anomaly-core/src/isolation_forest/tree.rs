//! One isolation tree in flat arrays: nodes in one vector, children of node
//! `i` at `left[i]` and `left[i] + 1`, leaf values precomputed as
//! `depth + c(n_leaf)` so scoring is a loop of comparisons.
//!
//! A leaf points to itself with a threshold no finite value exceeds, so an
//! axis-parallel tree is scored branch-free: every row takes exactly
//! `depth` steps, and several rows advance in lock-step, which lets the CPU
//! overlap their memory loads.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Threshold of a leaf: no finite value is above it, so a leaf's "right"
/// step is never taken and it stays on itself.
const LEAF_THRESHOLD: f32 = f32::MAX;
/// Rows advanced in lock-step through an axis-parallel tree.
const LANES: usize = 16;
/// Marks a hyperplane node; the low bits index `Tree::planes`.
const PLANE: u32 = 1 << 31;
/// scikit-learn's `FEATURE_THRESHOLD`: a feature whose range in a node is
/// at most this is constant there.
const FEATURE_THRESHOLD: f32 = 1e-7;
/// Attempts at a hyperplane that puts rows on both sides before giving up.
const PLANE_TRIES: usize = 8;

/// Average path length of an unsuccessful search in a binary search tree of
/// `n` points: the normaliser `c(n)` of Liu et al., with `c(1) = 0` and
/// `c(2) = 1` as in scikit-learn.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Feature index or `PLANE | start` (0 in a leaf).
    feature: u32,
    /// Go right when the value (or projection) is above this.
    threshold: f32,
    /// Index of the left child, the right one following it; a leaf's own
    /// index.
    left: u32,
}

impl Node {
    fn leaf(at: usize) -> Node {
        Node { feature: 0, threshold: LEAF_THRESHOLD, left: at as u32 }
    }
}

/// A hyperplane coefficient; the first entry of a plane holds its length
/// in `feature`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Coef {
    feature: u32,
    coef: f32,
}

/// A fitted isolation tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TreeColumns", into = "TreeColumns")]
pub struct Tree {
    nodes: Vec<Node>,
    /// `depth + c(n_leaf)` of each leaf (0 for internal nodes).
    values: Vec<f64>,
    planes: Vec<Coef>,
    /// Depth of the deepest leaf: the steps every row takes.
    depth: usize,
    /// The largest feature an axis node or leaf reads, when every child
    /// pointer is inside `nodes` (`None` for a tree read from a file that
    /// is malformed): scoring without bounds checks needs both.
    max_feature: Option<u32>,
}

/// A tree in scikit-learn's `tree_` arrays; see [`Tree::sklearn_layout`].
#[derive(Debug, Clone, PartialEq)]
pub struct SklearnTree {
    /// Left child of each node, -1 at a leaf.
    pub children_left: Vec<i64>,
    /// Right child of each node, -1 at a leaf.
    pub children_right: Vec<i64>,
    /// Split feature, -2 at a leaf.
    pub feature: Vec<i64>,
    /// Split threshold (go left at or below), -2 at a leaf.
    pub threshold: Vec<f64>,
    /// Training rows reaching each node.
    pub n_node_samples: Vec<i64>,
    /// Path length of a leaf; cover-weighted mean of the leaves below a node.
    pub value: Vec<f64>,
    /// Depth of the deepest leaf.
    pub max_depth: usize,
}

/// The serialized form: one array per node field (compact JSON).
#[derive(Serialize, Deserialize)]
struct TreeColumns {
    feature: Vec<u32>,
    threshold: Vec<f32>,
    left: Vec<u32>,
    value: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    planes: Vec<Coef>,
}

impl From<Tree> for TreeColumns {
    fn from(t: Tree) -> Self {
        TreeColumns {
            feature: t.nodes.iter().map(|n| n.feature).collect(),
            threshold: t.nodes.iter().map(|n| n.threshold).collect(),
            left: t.nodes.iter().map(|n| n.left).collect(),
            value: t.values,
            planes: t.planes,
        }
    }
}

impl TryFrom<TreeColumns> for Tree {
    type Error = String;

    /// Whoever deserializes the tree, its child pointers are checked here
    /// (for scoring without bounds checks); node arrays of different
    /// lengths are refused, a malformed structure still loads and
    /// `validate` names what is wrong with it.
    fn try_from(c: TreeColumns) -> Result<Self, String> {
        let n = c.feature.len();
        for (name, len) in [("threshold", c.threshold.len()), ("left", c.left.len()), ("value", c.value.len())] {
            if len != n {
                return Err(format!("tree {name} has {len} entries, expected {n} (one per node)"));
            }
        }
        let nodes: Vec<Node> =
            (0..n).map(|i| Node { feature: c.feature[i], threshold: c.threshold[i], left: c.left[i] }).collect();
        let mut tree = Tree { nodes, values: c.value, planes: c.planes, depth: 0, max_feature: None };
        tree.depth = tree.max_depth();
        tree.max_feature = tree.axis_max_feature();
        Ok(tree)
    }
}

/// The largest `f32` not above `t`, so `x <= t` and `x <= result` agree for
/// every `f32` x.
fn f32_at_most(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) > t {
        r.next_down()
    } else {
        r
    }
}

/// What a tree is built from: a row-major matrix, the sampled rows and the
/// features this tree may use.
pub(crate) struct TreeInput<'a> {
    pub(crate) x: &'a [f32],
    pub(crate) n_features: usize,
    pub(crate) rows: Vec<u32>,
    pub(crate) features: Vec<u32>,
    pub(crate) max_depth: usize,
    pub(crate) extension_level: usize,
}

/// What a hyperplane split needs to know.
struct PlaneInput<'a> {
    x: &'a [f32],
    d: usize,
    features: &'a [u32],
    level: usize,
}

impl Tree {
    /// Builds a tree; `rng` makes every random choice.
    pub(crate) fn build(mut input: TreeInput<'_>, rng: &mut Rng) -> Tree {
        let mut tree =
            Tree { nodes: vec![Node::leaf(0)], values: vec![0.0], planes: Vec::new(), depth: 0, max_feature: None };
        let n = input.rows.len();
        let mut stack = vec![(0usize, 0usize, n, 0usize)];
        let mut scratch = input.features.clone();
        let mut bounds: Vec<(u32, f32, f32)> = Vec::new();
        let mut projection: Vec<f64> = Vec::new();
        while let Some((id, lo, hi, depth)) = stack.pop() {
            let count = hi - lo;
            tree.depth = tree.depth.max(depth);
            if depth >= input.max_depth || count < 2 {
                tree.values[id] = depth as f64 + average_path_length(count);
                continue;
            }
            let rows = &mut input.rows[lo..hi];
            let split = if input.extension_level == 0 {
                axis_split(input.x, input.n_features, rows, &mut scratch, rng)
            } else {
                let plane = PlaneInput {
                    x: input.x,
                    d: input.n_features,
                    features: &input.features,
                    level: input.extension_level,
                };
                tree.plane_split(&plane, rows, &mut bounds, &mut projection, rng)
            };
            let Some((feature, threshold, mid)) = split else {
                tree.values[id] = depth as f64 + average_path_length(count);
                continue;
            };
            let left = tree.nodes.len();
            tree.nodes.extend([Node::leaf(left), Node::leaf(left + 1)]);
            tree.values.extend([0.0, 0.0]);
            tree.nodes[id] = Node { feature, threshold, left: left as u32 };
            stack.push((left + 1, lo + mid, hi, depth + 1));
            stack.push((left, lo, lo + mid, depth + 1));
        }
        tree.max_feature = tree.axis_max_feature();
        tree
    }

    /// The largest feature an axis node or a leaf names, if every child
    /// pointer stays inside the tree.
    fn axis_max_feature(&self) -> Option<u32> {
        let n = self.nodes.len();
        let inside = |(i, node): (usize, &Node)| {
            let left = node.left as usize;
            left == i || (left > i && left + 1 < n)
        };
        if n == 0 || self.values.len() != n || !self.nodes.iter().enumerate().all(inside) {
            return None;
        }
        self.nodes.iter().map(|n| n.feature).filter(|f| f & PLANE == 0).max()
    }

    /// A random hyperplane through a random point of the node's bounding
    /// box, over `extension_level + 1` random non-constant features (Hariri
    /// et al.). Redrawn when all rows fall on one side.
    fn plane_split(
        &mut self,
        input: &PlaneInput<'_>,
        rows: &mut [u32],
        bounds: &mut Vec<(u32, f32, f32)>,
        projection: &mut Vec<f64>,
        rng: &mut Rng,
    ) -> Option<(u32, f32, usize)> {
        let (x, d) = (input.x, input.d);
        bounds.clear();
        for &f in input.features {
            let (mn, mx) = min_max(x, d, rows, f);
            if mx > mn + FEATURE_THRESHOLD {
                bounds.push((f, mn, mx));
            }
        }
        if bounds.is_empty() {
            return None;
        }
        let k = (input.level + 1).min(bounds.len());
        for _ in 0..PLANE_TRIES {
            // Choose k of the non-constant features.
            for i in 0..k {
                let j = i + rng.below(bounds.len() - i);
                bounds.swap(i, j);
            }
            let start = self.planes.len();
            self.planes.push(Coef { feature: k as u32, coef: 0.0 });
            let mut offset = 0.0f64;
            for &(f, mn, mx) in &bounds[..k] {
                let coef = rng.normal() as f32;
                offset += f64::from(coef) * rng.uniform(f64::from(mn), f64::from(mx));
                self.planes.push(Coef { feature: f, coef });
            }
            let threshold = f32_at_most(offset);
            let plane = &self.planes[start + 1..];
            projection.clear();
            projection.extend(rows.iter().map(|&r| project(plane, &x[r as usize * d..][..d])));
            let left = projection.iter().filter(|&&p| p <= f64::from(threshold)).count();
            if left > 0 && left < rows.len() {
                let mid = partition(rows, |r| project(plane, &x[r as usize * d..][..d]) <= f64::from(threshold));
                return Some((PLANE | start as u32, threshold, mid));
            }
            self.planes.truncate(start);
        }
        None
    }

    /// Adds `depth + c(n_leaf)` of this tree to `out[k]` for each row `k`
    /// of the row-major block `x`.
    pub(crate) fn add_path_lengths(&self, x: &[f32], d: usize, out: &mut [f64]) {
        if !self.planes.is_empty() || self.max_feature.is_none_or(|f| f as usize >= d) || x.len() < out.len() * d {
            for (k, total) in out.iter_mut().enumerate() {
                *total += self.path_length(&x[k * d..][..d]);
            }
            return;
        }
        let nodes = &self.nodes[..];
        let mut chunks = out.chunks_exact_mut(LANES);
        let mut first = 0;
        for chunk in &mut chunks {
            let mut at = [0u32; LANES];
            let block = &x[first * d..(first + LANES) * d];
            for _ in 0..self.depth {
                for (lane, i) in at.iter_mut().enumerate() {
                    // SAFETY: the hot loop of every score, without bounds
                    // checks (a fifth of its time). `*i` starts at the root
                    // and follows `left` (+1), which `max_feature` being
                    // set proves inside `nodes` (a leaf points to itself,
                    // other nodes forward, both children inside);
                    // `node.feature <= max_feature < d` (checked above, no
                    // planes here) and `lane < LANES`, so the index is
                    // inside `block`.
                    let node = unsafe { *nodes.get_unchecked(*i as usize) };
                    let value = unsafe { *block.get_unchecked(lane * d + node.feature as usize) };
                    *i = node.left + u32::from(value > node.threshold);
                }
            }
            for (total, &i) in chunk.iter_mut().zip(&at) {
                *total += self.values[i as usize];
            }
            first += LANES;
        }
        for (k, total) in chunks.into_remainder().iter_mut().enumerate() {
            *total += self.path_length(&x[(first + k) * d..][..d]);
        }
    }

    /// `depth + c(n_leaf)` of the leaf that `row` falls into.
    pub(crate) fn path_length(&self, row: &[f32]) -> f64 {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.left as usize == i {
                return self.values[i];
            }
            let right = if node.feature & PLANE == 0 {
                row[node.feature as usize] > node.threshold
            } else {
                let start = (node.feature & !PLANE) as usize;
                let len = self.planes[start].feature as usize;
                project(&self.planes[start + 1..start + 1 + len], row) > f64::from(node.threshold)
            };
            i = node.left as usize + usize::from(right);
        }
    }

    /// Depth of the deepest leaf (for trees read from files).
    fn max_depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let left = node.left as usize;
            if left > i && left + 1 < self.nodes.len() {
                depth[left] = depth[i] + 1;
                depth[left + 1] = depth[i] + 1;
                deepest = deepest.max(depth[i] + 1);
            }
        }
        deepest
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Whether any split is a hyperplane (extended mode).
    pub fn is_extended(&self) -> bool {
        !self.planes.is_empty()
    }

    /// Node `i` as `(feature, threshold, left child)`, or `None` for a leaf
    /// (axis-parallel trees; a hyperplane node reports its plane's tag).
    pub(crate) fn split(&self, i: usize) -> Option<(u32, f32, usize)> {
        let node = self.nodes[i];
        (node.left as usize != i).then_some((node.feature, node.threshold, node.left as usize))
    }

    /// `depth + c(n_leaf)` of leaf `i`.
    pub(crate) fn leaf_value(&self, i: usize) -> f64 {
        self.values[i]
    }

    /// Depth of every node (children always follow their parent).
    pub(crate) fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0usize; self.nodes.len()];
        for i in 0..self.nodes.len() {
            if let Some((_, _, left)) = self.split(i) {
                depth[left] = depth[i] + 1;
                depth[left + 1] = depth[i] + 1;
            }
        }
        depth
    }

    /// The tree in scikit-learn's `tree_` layout (axis-parallel trees):
    /// leaves have children -1 and feature -2 (`TREE_LEAF`, `TREE_UNDEFINED`)
    /// and threshold -2; rows at or below a threshold go left; `value` is the
    /// leaf's path length `depth + c(n)` and, inside, the cover-weighted mean
    /// of its leaves (what SHAP's `TreeExplainer` recomputes). `None` for an
    /// extended tree, which scikit-learn's layout cannot hold.
    pub fn sklearn_layout(&self) -> Option<SklearnTree> {
        if self.is_extended() {
            return None;
        }
        let counts = self.node_counts();
        let depth = self.depths();
        let n = self.nodes.len();
        let mut t = SklearnTree {
            children_left: vec![-1; n],
            children_right: vec![-1; n],
            feature: vec![-2; n],
            threshold: vec![-2.0; n],
            n_node_samples: counts.iter().map(|&c| c as i64).collect(),
            value: vec![0.0; n],
            max_depth: depth.iter().copied().max().unwrap_or(0),
        };
        for i in (0..n).rev() {
            match self.split(i) {
                Some((f, threshold, left)) => {
                    t.children_left[i] = left as i64;
                    t.children_right[i] = left as i64 + 1;
                    t.feature[i] = i64::from(f);
                    t.threshold[i] = f64::from(threshold);
                    let (a, b) = (counts[left] as f64, counts[left + 1] as f64);
                    t.value[i] = (t.value[left] * a + t.value[left + 1] * b) / (a + b);
                }
                None => t.value[i] = self.values[i],
            }
        }
        Some(t)
    }

    /// Training rows that reached each node. A leaf's count is recovered
    /// from its value `depth + c(n)` (`c` is strictly increasing, and its
    /// steps, about `2 / n`, dwarf rounding), so model files need not store
    /// it; an internal node holds its children's rows.
    pub fn node_counts(&self) -> Vec<u64> {
        let depth = self.depths();
        let mut counts = vec![0u64; self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            counts[i] = match self.split(i) {
                Some((_, _, left)) => counts[left] + counts[left + 1],
                None => leaf_count(self.values[i] - depth[i] as f64),
            };
        }
        counts
    }

    /// Checks the structure of a deserialized tree, so that a corrupt model
    /// file cannot make scoring index out of bounds or loop.
    pub(crate) fn validate(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() || self.values.len() != self.nodes.len() {
            return Err("tree has no nodes, or not one value per node".into());
        }
        let mut has_parent = vec![false; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let left = node.left as usize;
            if left == i {
                if node.threshold != LEAF_THRESHOLD || node.feature as usize >= n_features {
                    return Err(format!("leaf {i} is malformed"));
                }
                if !self.values[i].is_finite() {
                    return Err(format!("leaf {i} has value {}", self.values[i]));
                }
                continue;
            }
            if left <= i || left + 1 >= self.nodes.len() {
                return Err(format!("node {i} has children at {left}"));
            }
            // Every node but the root has exactly one parent: a shared
            // child would count its rows twice.
            for child in [left, left + 1] {
                if std::mem::replace(&mut has_parent[child], true) {
                    return Err(format!("node {child} is a child of two nodes"));
                }
            }
            if node.feature & PLANE == 0 {
                if node.feature as usize >= n_features {
                    return Err(format!("node {i} splits on feature {} of {n_features}", node.feature));
                }
            } else {
                let start = (node.feature & !PLANE) as usize;
                let len = self.planes.get(start).map_or(usize::MAX, |c| c.feature as usize);
                let plane = self.planes.get(start + 1..start.saturating_add(1).saturating_add(len));
                if plane.is_none_or(|p| p.iter().any(|c| c.feature as usize >= n_features)) {
                    return Err(format!("node {i} has a bad hyperplane"));
                }
            }
        }
        Ok(())
    }
}

/// The `n >= 1` with `c(n)` nearest `c`: from the inverse of the
/// asymptotic `c(n) ~ 2 ln(n - 1) + 2 γ - 2`, then stepped to the exact one
/// (a few steps; bounded, so a corrupt value cannot loop).
fn leaf_count(c: f64) -> u64 {
    if c.is_nan() || c < 0.5 {
        return 1;
    }
    let guess = ((c + 2.0) / 2.0 - 0.577_215_664_901_532_9).exp() + 1.0;
    let mut n = guess.round().clamp(2.0, 1e12) as u64;
    let gap = |n: u64| (average_path_length(n as usize) - c).abs();
    for _ in 0..64 {
        if n > 2 && gap(n - 1) < gap(n) {
            n -= 1;
        } else if gap(n + 1) < gap(n) {
            n += 1;
        } else {
            break;
        }
    }
    n
}

fn project(plane: &[Coef], row: &[f32]) -> f64 {
    plane.iter().map(|c| f64::from(c.coef) * f64::from(row[c.feature as usize])).sum()
}

fn min_max(x: &[f32], d: usize, rows: &[u32], f: u32) -> (f32, f32) {
    let f = f as usize;
    rows.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(mn, mx), &r| {
        let v = x[r as usize * d + f];
        (mn.min(v), mx.max(v))
    })
}

/// scikit-learn's random splitter with `max_features=1`: draw features
/// without replacement until one is not constant in the node, then a
/// threshold uniform in [min, max) (min when the draw rounds to max).
fn axis_split(x: &[f32], d: usize, rows: &mut [u32], scratch: &mut [u32], rng: &mut Rng) -> Option<(u32, f32, usize)> {
    let mut remaining = scratch.len();
    while remaining > 0 {
        let j = rng.below(remaining);
        scratch.swap(j, remaining - 1);
        remaining -= 1;
        let f = scratch[remaining];
        let (mn, mx) = min_max(x, d, rows, f);
        if mx <= mn + FEATURE_THRESHOLD {
            continue;
        }
        let mut t = rng.uniform(f64::from(mn), f64::from(mx));
        if t == f64::from(mx) {
            t = f64::from(mn);
        }
        let threshold = f32_at_most(t);
        let col = f as usize;
        let mid = partition(rows, |r| x[r as usize * d + col] <= threshold);
        return Some((f, threshold, mid));
    }
    None
}

/// Moves rows satisfying `left` to the front; returns how many there are.
fn partition(rows: &mut [u32], left: impl Fn(u32) -> bool) -> usize {
    let mut mid = 0;
    for i in 0..rows.len() {
        if left(rows[i]) {
            rows.swap(i, mid);
            mid += 1;
        }
    }
    mid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_path_length_matches_scikit_learn() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // sklearn.ensemble._iforest._average_path_length([256]) and ([3])
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
        assert!((average_path_length(3) - 1.207_392_357_589_623).abs() < 1e-12);
    }

    #[test]
    fn thresholds_round_down_to_f32() {
        let t = 0.1f64;
        let r = f32_at_most(t);
        assert!(f64::from(r) <= t && f64::from(r.next_up()) > t);
    }

    #[test]
    fn a_tree_isolates_an_outlier_quickly() {
        let mut x = Vec::new();
        for i in 0..64 {
            x.extend([(i % 8) as f32 * 0.1, (i / 8) as f32 * 0.1]);
        }
        x.extend([10.0, 10.0]);
        let input = TreeInput {
            x: &x,
            n_features: 2,
            rows: (0..65).collect(),
            features: vec![0, 1],
            max_depth: 7,
            extension_level: 0,
        };
        let mut total = (0.0, 0.0);
        for seed in 0..50 {
            let tree = Tree::build(
                TreeInput { rows: input.rows.clone(), features: input.features.clone(), ..input },
                &mut Rng::new(seed),
            );
            assert!(tree.validate(2).is_ok());
            total.0 += tree.path_length(&[10.0, 10.0]);
            total.1 += tree.path_length(&[0.3, 0.4]);
        }
        assert!(total.0 < total.1 / 2.0, "{total:?}");
    }
}
