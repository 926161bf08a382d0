//! Deep trees (random forests' unpruned ones) walked sixteen rows at a
//! time with AVX-512 gathers. QuickScorer pays for about every split of a
//! tree per block of rows, ten per level on those trees; a scalar walk pays
//! a dependent load chain and a mispredicted branch per level. Here each
//! step moves sixteen rows one level down with three gathers (two for the
//! nodes, one for the rows' values) and no branch, three walks interleave
//! to hide the gathers' latency, and a row that reaches its leaf hands its
//! lane to the next row at once (a lane does not wait for the block's
//! deepest walk). A float32 tree's first six levels are taken before, from
//! registers (`Top`): one gather a level instead of three. Measured on the
//! credit benchmark's forest (100 trees of about 200 leaves, 100k rows, one
//! thread): the walk took 0.08 s against QuickScorer's 0.18 s and the
//! scalar walk's 0.35 s; the top levels took the whole scoring from 0.142
//! to 0.125 s (the `time_credit` example). A single applicant's row goes
//! through sixteen trees at once the same way (a job is a tree then).
//!
//! Plain numerical splits, float32 (scikit-learn's trees and forests,
//! XGBoost without categories) or float64 (histogram boosting, LightGBM,
//! whose categorical splits over codes below 64 are taken too): the step
//! is the walker's own rule, `x <= threshold` or NaN going its way, or a
//! code's bit, so the leaves are the walk's, node for node. Float64 nodes
//! keep their threshold apart (two more gathers a step).

use super::walk::{Tree, Value};

/// A packed split's fields (the low half; a float32 threshold's bits are the high half).
pub(super) const RIGHT: u32 = 0xffff;
pub(super) const FEATURE_SHIFT: u32 = 16;
pub(super) const FEATURE: u32 = 0xfff;
/// LightGBM's categorical rule, its code bitset in the threshold's place.
pub(super) const INLINE: u32 = 1 << 28;
pub(super) const NAN_LEFT: u32 = 1 << 29;
pub(super) const LEFT_LEAF: u32 = 1 << 30;
pub(super) const RIGHT_LEAF: u32 = 1 << 31;

/// A forest's trees for the gathered walk: every tree's nodes in preorder
/// (a split's left child is the next node), one array for all trees.
#[derive(Debug, Clone)]
pub(crate) struct Gathered {
    /// Per node: the distance to its right child, feature, rule, whether
    /// each child is a leaf (low 32 bits) and a float32 threshold (high);
    /// leaves are never read.
    nodes: Vec<u64>,
    /// Float64 trees' thresholds (or code bitsets), by node.
    thresholds: Vec<f64>,
    /// Whether the trees are float64.
    wide: bool,
    /// Position in `nodes` to the tree's own node index.
    node: Vec<u32>,
    /// Each tree's root in `nodes` (a leaf for a one-leaf tree).
    roots: Vec<u32>,
    /// Float32 trees' top levels, by tree.
    tops: Vec<Top>,
    n_features: usize,
}

/// Levels of a float32 tree taken from registers (`Top`).
const TOP_LEVELS: usize = 6;
/// A `Top`'s slots (`2^TOP_LEVELS`, four registers).
const TOP_SLOTS: usize = 1 << TOP_LEVELS;
/// Rows in a block: they stay in the first-level cache.
const BLOCK: usize = 128;
/// Where a `Top` outcome is a leaf (the rest is its tree's node index).
const TOP_LEAF: u32 = 1 << 31;

/// A float32 tree's first `TOP_LEVELS` levels as a complete tree in heap
/// order (slot `s`'s children at `2s + 1` and `2s + 2`), each table small
/// enough for four registers: sixteen rows descend them with one gather a level (the
/// rows' values), the splits picked by permutes, where the walk's step
/// gathers twice more for the nodes. A leaf above the last level passes
/// its rows on to the left (threshold +inf, NaN left), so every row ends at
/// one of the 64 outcomes: where its walk goes on, or its leaf.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Top {
    thresholds: [f32; TOP_SLOTS],
    /// Feature, and `NAN_LEFT` where NaN goes left.
    features: [u32; TOP_SLOTS],
    /// Per outcome: the position in `nodes` where the walk goes on, or
    /// `TOP_LEAF` and the leaf's node index.
    outcomes: [u32; TOP_SLOTS],
    /// Whether every outcome is a leaf (the top is the whole tree).
    whole: bool,
}

impl Top {
    /// The top of the packed tree at `root` in `g.nodes` (a split).
    fn new(g: &Gathered, root: usize) -> Top {
        let mut top = Top {
            thresholds: [f32::INFINITY; TOP_SLOTS],
            features: [NAN_LEFT; TOP_SLOTS],
            outcomes: [0; TOP_SLOTS],
            whole: false,
        };
        if g.nodes.get(root).is_none_or(|&n| n == 0) {
            return top; // a one-leaf tree: not walked
        }
        // (slot, position, leaf?, level)
        let mut stack = vec![(0usize, root, false, 0usize)];
        while let Some((slot, at, leaf, level)) = stack.pop() {
            if level == TOP_LEVELS {
                let outcome = slot + 1 - (1 << TOP_LEVELS);
                top.outcomes[outcome] = if leaf { TOP_LEAF | g.node[at] } else { at as u32 };
                continue;
            }
            let (left, right) = if leaf {
                ((at, true), (at, true))
            } else {
                let n = g.nodes[at];
                let low = n as u32;
                top.thresholds[slot] = f32::from_bits((n >> 32) as u32);
                top.features[slot] = (low >> FEATURE_SHIFT & FEATURE) | (low & NAN_LEFT);
                ((at + 1, low & LEFT_LEAF != 0), (at + (low & RIGHT) as usize, low & RIGHT_LEAF != 0))
            };
            stack.push((2 * slot + 2, right.0, right.1, level + 1));
            stack.push((2 * slot + 1, left.0, left.1, level + 1));
        }
        top.whole = top.outcomes.iter().all(|&o| o & TOP_LEAF != 0);
        top
    }
}

/// Appends `tree` to `g` (`g.node` its own indices); `None` if a split is
/// neither numerical nor (float64 trees) LightGBM's inline categorical
/// one, a right child is 2^16 nodes or more after its parent, a feature
/// index is at or past `n_features` (or 2^12), or a node is reached twice.
fn pack<T: Value>(tree: &Tree<T>, g: &mut Gathered) -> Option<()> {
    let len = tree.len();
    let (mut order, mut at) = (Vec::with_capacity(len), vec![u32::MAX; len]);
    let mut stack = vec![0u32];
    while let Some(i) = stack.pop() {
        let slot = at.get_mut(i as usize)?;
        if *slot != u32::MAX {
            return None;
        }
        *slot = order.len() as u32;
        order.push(i);
        if let Some(split) = tree.split(i) {
            stack.extend([split.right, split.left]);
        }
    }
    for (p, &i) in order.iter().enumerate() {
        let Some(split) = tree.split(i) else {
            g.nodes.push(0);
            g.thresholds.extend(g.wide.then_some(0.0));
            continue;
        };
        let (bits, rule) = match (split.numeric, split.inline) {
            (Some((threshold, nan_left)), _) => (threshold.bits(), if nan_left { NAN_LEFT } else { 0 }),
            (None, Some(codes)) if g.wide => (codes, INLINE),
            _ => return None,
        };
        let feature = split.feature;
        let right = at[split.right as usize].checked_sub(p as u32).filter(|&d| d <= RIGHT)?;
        if feature as usize >= g.n_features || feature > FEATURE {
            return None;
        }
        let leaf = |child: u32| tree.split(child).is_none();
        let low = right
            | feature << FEATURE_SHIFT
            | rule
            | if leaf(split.left) { LEFT_LEAF } else { 0 }
            | if leaf(split.right) { RIGHT_LEAF } else { 0 };
        if g.wide {
            g.nodes.push(u64::from(low));
            g.thresholds.push(f64::from_bits(bits));
        } else {
            // A float32's bits.
            g.nodes.push(u64::from(u32::try_from(bits).ok()?) << 32 | u64::from(low));
        }
    }
    g.node.extend(order);
    Some(())
}

impl Gathered {
    /// The walk for `trees` (`n_features` wide rows) where this CPU has
    /// AVX-512 and every tree packs; `None` otherwise.
    pub(crate) fn new<'a, T: Value + 'a>(
        trees: impl IntoIterator<Item = &'a Tree<T>>,
        n_features: usize,
    ) -> Option<Gathered> {
        #[cfg(target_arch = "x86_64")]
        let gathers = super::kernels::best() == super::kernels::Kernel::Avx512;
        #[cfg(not(target_arch = "x86_64"))]
        let gathers = false;
        if !gathers {
            return None;
        }
        let wide = std::mem::size_of::<T>() == 8;
        let mut g = Gathered {
            nodes: Vec::new(),
            thresholds: Vec::new(),
            wide,
            node: Vec::new(),
            roots: Vec::new(),
            tops: Vec::new(),
            n_features,
        };
        for tree in trees {
            g.roots.push(u32::try_from(g.nodes.len()).ok()?);
            pack(tree, &mut g)?;
        }
        if !wide {
            g.tops = g.roots.iter().map(|&r| Top::new(&g, r as usize)).collect();
        }
        // Node positions are gather indices (i32).
        (g.nodes.len() < i32::MAX as usize).then_some(g)
    }

    /// As `walk::each_leaf`: `visit(tree, first row, leaf nodes)` for
    /// every row of `x` (row-major, `width` wide), each row's trees in
    /// order: a block of rows or more tree by tree (each tree's rows
    /// spread over the lanes), fewer row by row (its trees over the lanes).
    /// `false` (nothing visited) unless the rows are wide enough for the
    /// model and their offsets fit the gathers' 32-bit indices.
    pub(crate) fn each_leaf<T: Value>(
        &self,
        x: &[T],
        width: usize,
        mut visit: impl FnMut(usize, usize, &[u32]),
    ) -> bool {
        let rows = x.len().checked_div(width).unwrap_or(0);
        // The trees' own value type (f32 or f64: `Value`'s only two).
        if self.wide != (std::mem::size_of::<T>() == 8) {
            return false;
        }
        if width < self.n_features || rows == 0 || x.len() >= i32::MAX as usize {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        let x = x.as_ptr().cast::<u8>();
        if rows >= 16 && !self.tops.is_empty() {
            #[cfg(target_arch = "x86_64")]
            self.blocks(x, width, rows, visit);
        } else if rows >= 16 {
            let mut found = vec![0u32; rows];
            #[cfg(target_arch = "x86_64")]
            let mut queue = avx512::Queue::new(rows, |r| (r as i32, (r * width) as i32, 0));
            for (t, &root) in self.roots.iter().enumerate() {
                if self.walked(t) {
                    // SAFETY: `new` found AVX-512 and packed every tree
                    // (children within it, features below `n_features`, so
                    // within a row of `width`); `x` holds `rows` rows of
                    // the trees' value type; the offsets fit 32 bits.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        self.walk(x, &mut queue, Some(root), &mut found)
                    };
                } else {
                    found.fill(self.node[root as usize]);
                }
                visit(t, 0, &found);
            }
        } else {
            let trees: Vec<usize> = (0..self.roots.len()).filter(|&t| self.walked(t)).collect();
            let mut found = vec![0u32; self.roots.len()];
            for (t, f) in found.iter_mut().enumerate() {
                *f = self.node[self.roots[t] as usize];
            }
            for r in 0..rows {
                #[cfg(target_arch = "x86_64")]
                {
                    let job = |j: usize| (trees[j] as i32, (r * width) as i32, self.roots[trees[j]] as i32);
                    let mut queue = avx512::Queue::new(trees.len(), job);
                    // SAFETY: as above.
                    unsafe { self.walk(x, &mut queue, None, &mut found) };
                }
                for (t, leaf) in found.iter().enumerate() {
                    visit(t, r, std::slice::from_ref(leaf));
                }
            }
        }
        true
    }

    /// `each_leaf` for float32 trees and sixteen rows or more: blocks of
    /// rows small enough to stay in the first-level cache go down every
    /// tree's top levels, then the rows not at a leaf walk all trees from
    /// one queue (no tree's walk waits for its last rows).
    #[cfg(target_arch = "x86_64")]
    fn blocks(&self, x: *const u8, width: usize, rows: usize, mut visit: impl FnMut(usize, usize, &[u32])) {
        let trees = self.roots.len();
        // The thread's queue and leaves, kept for the batch's next chunk.
        let (mut queue, mut found) = SCRATCH
            .take()
            .filter(|(q, _)| q.holds(trees * BLOCK / 16))
            .unwrap_or_else(|| (avx512::Queue::regions(trees * BLOCK / 16), Vec::new()));
        found.resize(trees * BLOCK, 0);
        for r0 in (0..rows).step_by(BLOCK) {
            let n = BLOCK.min(rows - r0);
            // SAFETY: `r0` is a row of `x`.
            let block = unsafe { x.add(r0 * width * 4) };
            queue.clear();
            for (t, (top, &root)) in self.tops.iter().zip(&self.roots).enumerate() {
                if !self.walked(t) {
                    found[t * BLOCK..t * BLOCK + n].fill(self.node[root as usize]);
                    continue;
                }
                // SAFETY: as in `each_leaf`; `found` holds `trees * BLOCK`
                // slots; the queue has room for `trees` trees' groups.
                unsafe { avx512::descend(top, block, (width, n), &mut queue, (&mut found, t * BLOCK)) };
            }
            queue.seal();
            // SAFETY: as above; the jobs' roots are the tops' outcomes,
            // splits of their trees.
            unsafe { self.walk(block, &mut queue, None, &mut found) };
            for t in 0..trees {
                visit(t, r0, &found[t * BLOCK..t * BLOCK + n]);
            }
        }
        // Kept for forests of up to 2,048 trees (about 6 MB a thread);
        // larger ones allocate per call rather than hold more.
        if trees <= 2048 {
            SCRATCH.set(Some((queue, found)));
        }
    }

    /// Whether tree `t` is walked: not a single leaf.
    fn walked(&self, t: usize) -> bool {
        self.nodes.get(self.roots[t] as usize).is_some_and(|&n| n != 0)
    }

    /// Whether `add_columns` takes these trees: float32 ones, none deeper
    /// than its top (XGBoost's default depth of six).
    pub(crate) fn whole(&self) -> bool {
        !self.tops.is_empty() && (0..self.roots.len()).all(|t| !self.walked(t) || self.tops[t].whole)
    }

    /// Adds each row's trees' leaf values, `value(tree, leaf node)`, to its
    /// `sums`, each row's trees in order (the walker's sums, bit for bit),
    /// for rows of float32 `x` stored column by column (`sums.len()` rows):
    /// the rows go down each tree's top, its first levels' values loaded
    /// sixteen rows at a time, and add the value picked for their outcome.
    /// `false` (nothing added) unless `whole` and the sizes agree.
    pub(crate) fn add_columns<T: Value>(
        &self,
        x: &[T],
        width: usize,
        sums: &mut [f32],
        value: impl Fn(usize, u32) -> f32,
    ) -> bool {
        let rows = sums.len();
        if !self.whole()
            || std::mem::size_of::<T>() != 4
            || width < self.n_features
            || rows == 0
            || width.checked_mul(rows) != Some(x.len())
            || x.len() >= NAN_LEFT as usize
        {
            return false;
        }
        // Per tree: each slot's column offset (NaN's way in `NAN_LEFT`),
        // each outcome's value (a one-leaf tree's everywhere).
        let tables: Vec<([u32; TOP_SLOTS], [f32; TOP_SLOTS])> = (0..self.roots.len())
            .map(|t| match self.walked(t) {
                true => {
                    let top = &self.tops[t];
                    let offset = |f: u32| ((f & FEATURE) * rows as u32) | (f & NAN_LEFT);
                    (top.features.map(offset), top.outcomes.map(|o| value(t, o & !TOP_LEAF)))
                }
                false => ([0; TOP_SLOTS], [value(t, self.node[self.roots[t] as usize]); TOP_SLOTS]),
            })
            .collect();
        #[cfg(target_arch = "x86_64")]
        for r0 in (0..rows).step_by(BLOCK) {
            let n = BLOCK.min(rows - r0);
            for (t, (offsets, values)) in tables.iter().enumerate() {
                if self.walked(t) {
                    // SAFETY: `new` found AVX-512; the top is whole; its
                    // features are below `n_features`, so every offset plus
                    // a row is within `x`, all below `NAN_LEFT`.
                    unsafe {
                        avx512::add_columns(
                            &self.tops[t],
                            (offsets, values),
                            x.as_ptr().cast(),
                            r0,
                            &mut sums[r0..r0 + n],
                        )
                    };
                } else {
                    sums[r0..r0 + n].iter_mut().for_each(|s| *s += values[0]);
                }
            }
        }
        true
    }

    /// `avx512::walk` for the trees' value type.
    ///
    /// # Safety
    /// As `avx512::walk`, `x` pointing to values of the trees' type.
    #[cfg(target_arch = "x86_64")]
    unsafe fn walk(&self, x: *const u8, q: &mut avx512::Queue, root: Option<u32>, found: &mut [u32]) {
        if self.wide {
            avx512::walk::<true>(self, x, q, root, found)
        } else {
            avx512::walk::<false>(self, x, q, root, found)
        }
    }
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// `Gathered::blocks`' queue and leaves, between calls.
    static SCRATCH: std::cell::Cell<Option<(avx512::Queue, Vec<u32>)>> = const { std::cell::Cell::new(None) };
}

/// The walk's kernel.
#[cfg(target_arch = "x86_64")]
#[path = "gathered_avx512.rs"]
mod avx512;

#[cfg(test)]
#[path = "gathered_tests.rs"]
mod tests;
