//! One tree walker for every tree model (scikit-learn's trees, forests and
//! boosting, histogram boosting, LightGBM, XGBoost). Each library's split
//! rule is compiled into one form, `x <= threshold` on prepared features
//! with a direction for NaN and one for zero, so the walk has no
//! per-library branch; categorical splits keep their library's rule.
//!
//! Speed: a walk is a chain of dependent loads, and a branch per level
//! that the CPU mispredicts about half the time. So `LANES` walks run
//! interleaved, each step branch-free: eight rows through one tree
//! (batches), or one row through eight trees (a single applicant). Leaves
//! point to themselves, so trees up to `FIXED_DEPTH` deep are walked a
//! fixed number of steps with no test for the end; deeper ones end each
//! walk at its leaf and give the lane the next walk. Ensembles of small
//! trees may use QuickScorer instead (`Forest`, `quick.rs`), and trees of
//! plain splits the AVX-512 gathered walk (`gathered.rs`). Every row
//! still adds its trees' values in model order: results are the same bits
//! as a one-by-one walk.

use super::gathered::Gathered;
use super::quick::{Quick, Sum, Sums};

/// One step from node `i` for `row`. The common node (numerical, zero
/// going the way `0 <= threshold` sends it) costs two comparisons and no
/// branch; with `INLINE`, so does a LightGBM categorical node whose codes
/// are below 64 (its bitset in the threshold's bits: a tree mixing the two
/// would otherwise mispredict a branch at about every categorical node);
/// other categorical and zero-as-missing nodes take the slow path.
#[inline(always)]
fn step<T: Value, const INLINE: bool>(nodes: &[Node<T>], rules: &[CategoryRule], i: u32, row: &[T]) -> (u32, bool) {
    let node = &nodes[i as usize];
    let x = row.get(node.feature as usize).copied().unwrap_or(T::ZERO);
    let nan_left = node.flags & NAN_LEFT != 0;
    let go_left = if node.flags & SLOW == 0 {
        let numeric = (x <= node.threshold) | (x.is_nan() & nan_left);
        if INLINE {
            // LightGBM truncates the value toward zero: codes 0..63 are
            // values in (-1, 64); NaN and anything else go right.
            let v = x.to_f64();
            let in_range = (v > -1.0) & (v < 64.0);
            let code = (v as i64 & 63) as u32;
            let listed = (node.threshold.bits() >> code) & 1 != 0;
            let inline = node.flags & INLINE_CATEGORICAL != 0;
            (inline & in_range & listed) | (!inline & numeric)
        } else {
            numeric
        }
    } else if node.flags & CATEGORICAL != 0 {
        rules[node.rule as usize].goes_left(x.to_f64(), nan_left)
    } else if x == T::ZERO {
        node.flags & ZERO_LEFT != 0
    } else {
        (x <= node.threshold) | (x.is_nan() & nan_left)
    };
    (node.children[usize::from(!go_left)], node.flags & LEAF != 0)
}

/// Walks run together.
const LANES: usize = 8;

/// A feature value type: f32 (scikit-learn's trees cast to it, XGBoost
/// computes in it) or f64 (histogram boosting, LightGBM).
pub(crate) trait Value: Copy + PartialOrd + Default + Send + Sync + super::kernels::Wide {
    const ZERO: Self;
    fn is_nan(self) -> bool;
    fn to_f64(self) -> f64;
    /// The bit pattern (an inline categorical node's bitset).
    fn bits(self) -> u64;
    /// A value with this bit pattern, if the type is wide enough.
    fn from_bits(bits: u64) -> Option<Self>;
}

impl Value for f32 {
    const ZERO: f32 = 0.0;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn from_bits(bits: u64) -> Option<f32> {
        u32::try_from(bits).ok().map(f32::from_bits)
    }
}

impl Value for f64 {
    const ZERO: f64 = 0.0;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn from_bits(bits: u64) -> Option<f64> {
        Some(f64::from_bits(bits))
    }
}

const LEAF: u8 = 1;
const NAN_LEFT: u8 = 2;
const ZERO_LEFT: u8 = 4;
const CATEGORICAL: u8 = 8;
/// Zero goes where `0 <= threshold` would not send it (LightGBM's zero as missing).
const ZERO_SPECIAL: u8 = 16;
const SLOW: u8 = CATEGORICAL | ZERO_SPECIAL;
/// A LightGBM categorical node with codes below 64, its bitset in the
/// threshold's bits (walked branch-free by trees that have one).
const INLINE_CATEGORICAL: u8 = 32;

fn bit(set: bool, flag: u8) -> u8 {
    if set {
        flag
    } else {
        0
    }
}

/// One node. A leaf's children are itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<T> {
    threshold: T,
    feature: u32,
    /// Left, right.
    children: [u32; 2],
    /// Index into the tree's categorical rules (categorical nodes).
    rule: u32,
    flags: u8,
}

/// How a categorical node sends a value, by library.
#[derive(Debug, Clone)]
pub(crate) enum CategoryRule {
    /// Histogram boosting: negative is missing; a listed code goes left, a
    /// code known to the feature goes right, any other is missing.
    Hist { left: [u64; 4], known: Option<[u64; 4]> },
    /// LightGBM: NaN and negative codes go right; the code truncates toward
    /// zero; a listed code goes left.
    LightGbm { left: Vec<u64> },
    /// XGBoost: values outside 0..2^24 go left, listed codes right.
    XgBoost { right: Vec<u64> },
}

fn in_bits(bits: &[u64], code: usize) -> bool {
    bits.get(code / 64).is_some_and(|w| w & (1 << (code % 64)) != 0)
}

impl CategoryRule {
    fn goes_left(&self, x: f64, nan_left: bool) -> bool {
        match self {
            CategoryRule::Hist { left, known } => {
                if x.is_nan() || x < 0.0 {
                    nan_left
                } else if in_bits(left, x as usize) {
                    true
                } else if known.as_ref().is_some_and(|k| in_bits(k, x as usize)) {
                    false
                } else {
                    nan_left
                }
            }
            CategoryRule::LightGbm { left } => {
                let c = x as i64;
                !x.is_nan() && c >= 0 && usize::try_from(c).is_ok_and(|c| in_bits(left, c))
            }
            CategoryRule::XgBoost { right } => {
                if x.is_nan() {
                    nan_left
                } else {
                    !(0.0..16_777_216.0).contains(&x) || !in_bits(right, x as usize)
                }
            }
        }
    }
}

/// A compiled tree: nodes (root first) and its categorical rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree<T> {
    nodes: Vec<Node<T>>,
    rules: Vec<CategoryRule>,
    /// The deepest leaf's depth (the root's is 0).
    depth: usize,
    /// Whether a node is an inline categorical one.
    inline: bool,
}

/// A split as QuickScorer reads it: `numeric` is `(threshold, nan_left)`
/// for a plain numerical split (`x <= threshold` left), `None` for one
/// evaluated alone (categorical, zero-as-missing); `inline` the code
/// bitset of a LightGBM categorical split over codes below 64.
pub(crate) struct SplitView<T> {
    pub(crate) feature: u32,
    pub(crate) left: u32,
    pub(crate) right: u32,
    pub(crate) numeric: Option<(T, bool)>,
    pub(crate) inline: Option<u64>,
}

/// What a node of the compiled tree is. The caller has checked every
/// index (children inside the tree, features inside the row).
pub(crate) enum Split<T> {
    /// A leaf (its values are the caller's, by node index).
    Leaf,
    /// `x <= threshold` goes left; NaN goes `nan_left`; an exact zero goes
    /// `zero_left` (LightGBM's zero-as-missing; elsewhere `0 <= threshold`).
    Numerical { feature: u32, threshold: T, nan_left: bool, zero_left: bool, left: u32, right: u32 },
    /// A categorical node; NaN goes `nan_left` unless the rule says otherwise.
    Categorical { feature: u32, rule: CategoryRule, nan_left: bool, left: u32, right: u32 },
}

impl<T: Value> Tree<T> {
    /// Builds the tree from its nodes in index order.
    pub(crate) fn new(splits: impl IntoIterator<Item = Split<T>>) -> Tree<T> {
        let mut tree = Tree { nodes: Vec::new(), rules: Vec::new(), depth: 0, inline: false };
        for split in splits {
            let i = tree.nodes.len() as u32;
            let node = match split {
                Split::Leaf => Node { threshold: T::ZERO, feature: 0, children: [i, i], rule: 0, flags: LEAF },
                Split::Numerical { feature, threshold, nan_left, zero_left, left, right } => Node {
                    threshold,
                    feature,
                    children: [left, right],
                    rule: 0,
                    flags: bit(nan_left, NAN_LEFT)
                        | bit(zero_left, ZERO_LEFT)
                        | bit(zero_left != (T::ZERO <= threshold), ZERO_SPECIAL),
                },
                Split::Categorical { feature, rule: CategoryRule::LightGbm { left: bits }, left, right, .. }
                    if bits.len() == 1 && T::from_bits(bits[0]).is_some() =>
                {
                    tree.inline = true;
                    let threshold = T::from_bits(bits[0]).unwrap_or(T::ZERO);
                    Node { threshold, feature, children: [left, right], rule: 0, flags: INLINE_CATEGORICAL }
                }
                Split::Categorical { feature, rule, nan_left, left, right } => {
                    tree.rules.push(rule);
                    let rule = tree.rules.len() as u32 - 1;
                    let flags = CATEGORICAL | bit(nan_left, NAN_LEFT);
                    Node { threshold: T::ZERO, feature, children: [left, right], rule, flags }
                }
            };
            tree.nodes.push(node);
        }
        // Children come after their parents (every caller checks it).
        let mut depth = vec![0usize; tree.nodes.len()];
        for (i, node) in tree.nodes.iter().enumerate() {
            let below = depth[i] + 1;
            for &c in &node.children {
                if let Some(d) = depth.get_mut(c as usize).filter(|_| c as usize > i) {
                    *d = below;
                }
            }
        }
        tree.depth = depth.into_iter().max().unwrap_or(0);
        tree
    }

    /// The deepest leaf's depth.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s split (`None` for a leaf or an index out of range).
    pub(crate) fn split(&self, i: u32) -> Option<SplitView<T>> {
        let node = self.nodes.get(i as usize)?;
        (node.flags & LEAF == 0).then(|| SplitView {
            feature: node.feature,
            left: node.children[0],
            right: node.children[1],
            numeric: (node.flags & (SLOW | INLINE_CATEGORICAL) == 0)
                .then_some((node.threshold, node.flags & NAN_LEFT != 0)),
            inline: (node.flags & INLINE_CATEGORICAL != 0).then(|| node.threshold.bits()),
        })
    }

    /// Whether `row` goes left at split `i`.
    pub(crate) fn goes_left(&self, i: u32, row: &[T]) -> bool {
        let (next, _) = self.step(i, row);
        self.nodes.get(i as usize).is_some_and(|n| next == n.children[0])
    }

    /// One step from node `i` for `row`: the next node (itself at a leaf).
    #[inline(always)]
    fn step(&self, i: u32, row: &[T]) -> (u32, bool) {
        if self.inline {
            step::<T, true>(&self.nodes, &self.rules, i, row)
        } else {
            step::<T, false>(&self.nodes, &self.rules, i, row)
        }
    }

    /// The leaf `row` reaches, one walk alone.
    #[cfg(test)]
    pub(crate) fn leaf(&self, row: &[T]) -> u32 {
        let mut i = 0;
        loop {
            let (next, leaf) = self.step(i, row);
            if leaf {
                return i;
            }
            i = next;
        }
    }
}

/// Runs `n` walks, `LANES` at a time: job `j` starts at the root of
/// `job(j)` (a lane's tree and row), `walk(lane, node)` is one step, and a
/// lane that reaches its leaf reports it (`done(j, leaf)`) and takes the
/// next job, so no lane waits for the deepest walk.
#[inline(always)]
fn run<L: Copy>(
    n: usize,
    job: impl Fn(usize) -> L,
    walk: impl Fn(L, u32) -> (u32, bool),
    mut done: impl FnMut(usize, u32),
) {
    if n == 0 {
        return;
    }
    let first = LANES.min(n);
    let mut jobs = [usize::MAX; LANES];
    let mut at = [0u32; LANES];
    let mut lanes: [L; LANES] = std::array::from_fn(|l| job(l.min(first - 1)));
    for (l, j) in jobs.iter_mut().enumerate().take(first) {
        *j = l;
    }
    let (mut next, mut active) = (first, first);
    while active > 0 {
        for l in 0..LANES {
            if jobs[l] == usize::MAX {
                continue;
            }
            let (step, leaf) = walk(lanes[l], at[l]);
            if !leaf {
                at[l] = step;
                continue;
            }
            done(jobs[l], at[l]);
            at[l] = 0;
            if next < n {
                (jobs[l], lanes[l]) = (next, job(next));
                next += 1;
            } else {
                jobs[l] = usize::MAX;
                active -= 1;
            }
        }
    }
}

/// `run` for rows of `x` (`width` wide) through one tree, its arrays
/// loaded once: `done(row, leaf)` as each walk ends.
fn run_rows<T: Value>(tree: &Tree<T>, x: &[T], width: usize, done: impl FnMut(usize, u32)) {
    let (nodes, rules) = (&tree.nodes[..], &tree.rules[..]);
    let n = x.len().checked_div(width).unwrap_or(0);
    let row = |r: usize| &x[r * width..(r + 1) * width];
    if tree.inline {
        run(n, row, |row, at| step::<T, true>(nodes, rules, at, row), done);
    } else {
        run(n, row, |row, at| step::<T, false>(nodes, rules, at, row), done);
    }
}

/// Trees at most this deep are walked a fixed number of steps, with no
/// test for the end (leaves point to themselves); deeper ones (forests'
/// unpruned trees) end each walk at its leaf and start the next.
const FIXED_DEPTH: usize = 12;

/// `depth` steps of each lane, interleaved: the lanes' leaves.
#[inline(always)]
fn fixed<T: Value>(trees: [&Tree<T>; LANES], rows: [&[T]; LANES], depth: usize) -> [u32; LANES] {
    let mut at = [0u32; LANES];
    for _ in 0..depth {
        for l in 0..LANES {
            at[l] = trees[l].step(at[l], rows[l]).0;
        }
    }
    at
}

/// `fixed` for lanes that share one tree (its arrays loaded once).
#[inline(always)]
fn fixed_rows<T: Value>(tree: &Tree<T>, rows: [&[T]; LANES]) -> [u32; LANES] {
    if tree.inline {
        fixed_rows_with::<T, true>(tree, rows)
    } else {
        fixed_rows_with::<T, false>(tree, rows)
    }
}

#[inline(always)]
fn fixed_rows_with<T: Value, const INLINE: bool>(tree: &Tree<T>, rows: [&[T]; LANES]) -> [u32; LANES] {
    let (nodes, rules) = (&tree.nodes[..], &tree.rules[..]);
    let mut at = [0u32; LANES];
    for _ in 0..tree.depth {
        for l in 0..LANES {
            at[l] = step::<T, INLINE>(nodes, rules, at[l], rows[l]).0;
        }
    }
    at
}

/// Calls `visit(tree, first row, leaves)` with every tree's leaves for
/// rows of `x` (row-major, `width` wide) from the first on, each row's
/// trees in order. Many rows: the rows go through one tree, then the next;
/// few: each row's trees are walked together.
pub(crate) fn each_leaf<W, T: Value>(
    trees: &[W],
    tree: impl Fn(&W) -> &Tree<T>,
    x: &[T],
    width: usize,
    mut visit: impl FnMut(usize, usize, &[u32]),
) {
    let rows = x.len().checked_div(width).unwrap_or(0);
    let row = |i: usize| &x[i * width..(i + 1) * width];
    if rows >= LANES {
        let mut found = vec![0u32; rows];
        for (t, w) in trees.iter().enumerate() {
            let walk = tree(w);
            if walk.depth > FIXED_DEPTH {
                run_rows(walk, x, width, |r, leaf| found[r] = leaf);
            } else {
                for start in (0..rows).step_by(LANES) {
                    // The last group repeats its last row to fill the lanes.
                    let lane_rows = std::array::from_fn(|l| row((start + l).min(rows - 1)));
                    let leaves = fixed_rows(walk, lane_rows);
                    let n = LANES.min(rows - start);
                    found[start..start + n].copy_from_slice(&leaves[..n]);
                }
            }
            visit(t, 0, &found);
        }
    } else {
        let mut leaves = vec![0u32; trees.len()];
        let deep = trees.iter().any(|w| tree(w).depth > FIXED_DEPTH);
        for r in 0..rows {
            if deep {
                let job = |t: usize| (tree(&trees[t]), row(r));
                run(trees.len(), job, |(tree, row), at| tree.step(at, row), |t, leaf| leaves[t] = leaf);
            } else {
                for start in (0..trees.len()).step_by(LANES) {
                    let lane_trees: [&Tree<T>; LANES] =
                        std::array::from_fn(|l| tree(&trees[(start + l).min(trees.len() - 1)]));
                    let depth = lane_trees.iter().map(|t| t.depth).max().unwrap_or(0);
                    let found = fixed(lane_trees, [row(r); LANES], depth);
                    for (l, &leaf) in found.iter().enumerate().take(trees.len() - start) {
                        leaves[start + l] = leaf;
                    }
                }
            }
            for (t, leaf) in leaves.iter().enumerate() {
                visit(t, r, std::slice::from_ref(leaf));
            }
        }
    }
}

/// Adds a tree's leaf values to the raw scores of rows `start..` (`k`
/// classes per row, this tree's `class`). Binary models (`k` 1) take a
/// plain loop, no index arithmetic.
#[inline(always)]
fn accumulate<F: Copy + std::ops::AddAssign>(
    raw: &mut [F],
    (k, class): (usize, usize),
    start: usize,
    leaves: &[u32],
    value: impl Fn(u32) -> F,
) {
    if k == 1 {
        for (r, &leaf) in raw[start..].iter_mut().zip(leaves) {
            *r += value(leaf);
        }
    } else {
        for (r, &leaf) in raw[start * k..].chunks_exact_mut(k).zip(leaves) {
            r[class] += value(leaf);
        }
    }
}

/// A model's tree: its walk, beside the leaf values the model keeps.
pub(crate) trait Walked<T> {
    fn walk(&self) -> &Tree<T>;
}

/// An ensemble's trees in model order, and QuickScorer over them where it
/// beats walking (chosen once, when the model is read).
#[derive(Debug, Clone)]
pub(crate) struct Forest<W, T> {
    trees: Vec<W>,
    quick: Option<Quick<T>>,
    gathered: Option<Gathered>,
}

impl<W: Walked<T>, T: Value> Forest<W, T> {
    pub(crate) fn new(trees: Vec<W>, n_features: usize) -> Self {
        let gathered = Gathered::new(trees.iter().map(W::walk), n_features);
        let quick = Quick::new(trees.iter().map(W::walk), n_features, gathered.is_some());
        Forest { trees, quick, gathered }
    }

    /// The trees, in model order.
    pub(crate) fn trees(&self) -> &[W] {
        &self.trees
    }

    /// `visit(tree, first row, leaves)` as the free `each_leaf`: every tree's
    /// leaves for the rows of `x` (row-major, `width` wide), each row's
    /// trees in model order.
    pub(crate) fn each_leaf(&self, x: &[T], width: usize, mut visit: impl FnMut(usize, usize, &[u32])) {
        // A few rows fill few of a block's lanes: walking each row's trees
        // together is faster (one applicant: 5-14 us against 6-28 us), and
        // faster still with gathers (the forest's 12.5 us row in 8.5 us).
        let rows = x.len().checked_div(width).unwrap_or(0);
        match (&self.quick, &self.gathered) {
            (Some(quick), _) if rows >= LANES => quick.each_leaf(&self.trees, W::walk, x, width, visit),
            (_, Some(gathered)) if gathered.each_leaf(x, width, &mut visit) => {}
            _ => each_leaf(&self.trees, W::walk, x, width, visit),
        }
    }
}

impl<W: Walked<T>, T: Value> Forest<W, T> {
    /// Whether `add_columns` takes this forest (see `Gathered::whole`).
    pub(crate) fn whole(&self) -> bool {
        self.gathered.as_ref().is_some_and(Gathered::whole)
    }

    /// `Gathered::add_columns`: each row's trees' values added to its
    /// `sums`, the rows of `x` stored column by column; `false` (nothing
    /// added) where it does not apply.
    pub(crate) fn add_columns(&self, x: &[T], width: usize, sums: &mut [f32], value: impl Fn(&W, u32) -> f32) -> bool {
        let value = |t: usize, node| value(&self.trees[t], node);
        self.gathered.as_ref().is_some_and(|g| g.add_columns(x, width, sums, value))
    }

    /// A binary model's (`k` 1) leaf values, `value(tree, leaf node)`, for
    /// `add_leaves` to add in blocks; `None` for other models and where the
    /// rows are not scored in blocks of 32-bit leaf sets.
    pub(crate) fn sums<F: Sum>(&self, k: usize, value: impl Fn(&W, u32) -> F) -> Option<Sums<F>> {
        let quick = self.quick.as_ref().filter(|_| k == 1)?;
        quick.sums(|t, node| value(&self.trees[t], node))
    }

    /// Adds every row's trees' values to its raw scores in `raw` (`k` per
    /// row; tree `t`'s at `class(t, tree)`), each row's trees in model
    /// order: `value(tree, leaf node)` as `sums` (this forest's, built with
    /// the same `value`) holds it. In blocks with `sums` where the rows fill
    /// them; otherwise leaf by leaf.
    pub(crate) fn add_leaves<F: Sum>(
        &self,
        x: &[T],
        width: usize,
        raw: &mut [F],
        (k, sums): (usize, Option<&Sums<F>>),
        class: impl Fn(usize, &W) -> usize,
        value: impl Fn(&W, u32) -> F,
    ) {
        let rows = x.len().checked_div(width).unwrap_or(0);
        if let (Some(quick), Some(sums)) = (&self.quick, sums) {
            if rows >= LANES && raw.len() == rows {
                return quick.add(&self.trees, W::walk, x, width, sums, raw);
            }
        }
        self.each_leaf(x, width, |t, start, leaves| {
            let tree = &self.trees[t];
            accumulate(raw, (k, class(t, tree)), start, leaves, |leaf| value(tree, leaf));
        });
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
