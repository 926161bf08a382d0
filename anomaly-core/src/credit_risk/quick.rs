//! QuickScorer (Lucchese et al., SIGIR 2015) for ensembles of small trees:
//! boosting's trees of up to 64 leaves. Instead of walking each tree, a
//! row visits each feature's splits in threshold order: every split the
//! row fails (`x > threshold`, it goes right) clears its left subtree's
//! leaves from its tree's 64-bit leaf set, and each tree's exit leaf is the
//! first leaf left in the set. Scanning stops at the first threshold the
//! row passes, so the work is the failed splits, in sequential memory, with
//! one unpredictable branch per feature instead of one per tree level.
//!
//! The exit leaf is the walk's own, node for node: NaN follows each split's
//! missing direction; categorical splits and LightGBM's zero-as-missing
//! splits are evaluated one by one with the walker's rule.

use super::walk::{Tree, Value};

/// Numbers the leaves under `node` left to right into `leaves`, and each
/// split's left-subtree leaves `lo..mid` into `splits`; `None` past 64
/// leaves, or on a node reached twice. Depth is bounded by the leaf count.
fn number<T: Value>(
    tree: &Tree<T>,
    node: u32,
    leaves: &mut Vec<u32>,
    seen: &mut [bool],
    splits: &mut Vec<(u32, usize, usize)>,
) -> Option<()> {
    if std::mem::replace(seen.get_mut(node as usize)?, true) {
        return None;
    }
    match tree.split(node) {
        None => {
            leaves.push(node);
            (leaves.len() <= 64).then_some(())
        }
        Some(split) => {
            if split.left == split.right {
                return None;
            }
            let lo = leaves.len();
            number(tree, split.left, leaves, seen, splits)?;
            splits.push((node, lo, leaves.len()));
            number(tree, split.right, leaves, seen, splits)
        }
    }
}

/// A numerical split in a feature's threshold-sorted list.
#[derive(Debug, Clone)]
struct Entry<T> {
    threshold: T,
    tree: u32,
    nan_left: bool,
    /// The tree's leaves with this split's left subtree cleared.
    mask: u64,
}

/// The scorer of one ensemble (built once per model).
#[derive(Debug, Clone)]
pub(crate) struct Quick<T> {
    features: Vec<Vec<Entry<T>>>,
    /// Splits evaluated one by one: `(tree, node, mask)`.
    others: Vec<(u32, u32, u64)>,
    /// Per tree, its leaves' nodes, left to right.
    leaves: Vec<Vec<u32>>,
    /// The trees' depths, summed.
    depth: usize,
}

impl<T: Value> Quick<T> {
    /// The scorer of `trees` where it beats the walk (see `faster`);
    /// `None` where it does not, or cannot take a tree (over 64 leaves, a
    /// node shared or repeated: the walk takes those).
    pub(crate) fn new<'a>(trees: impl IntoIterator<Item = &'a Tree<T>>, n_features: usize) -> Option<Quick<T>>
    where
        T: 'a,
    {
        Self::build(trees, n_features).filter(Quick::faster)
    }

    /// A row fails about half the splits; a walk takes one step per level.
    /// Bushy trees (XGBoost's full depth-6 trees: 63 splits for 6 levels)
    /// walk faster; so do ensembles whose splits are mostly evaluated one
    /// by one (categorical ones).
    fn faster(&self) -> bool {
        let splits: usize = self.features.iter().map(Vec::len).sum::<usize>() + self.others.len();
        splits <= 6 * self.depth && self.others.len() * 10 <= splits
    }

    fn build<'a>(trees: impl IntoIterator<Item = &'a Tree<T>>, n_features: usize) -> Option<Quick<T>>
    where
        T: 'a,
    {
        let mut quick =
            Quick { features: vec![Vec::new(); n_features], others: Vec::new(), leaves: Vec::new(), depth: 0 };
        let mut depth = 0;
        for (t, tree) in trees.into_iter().enumerate() {
            let t = u32::try_from(t).ok()?;
            depth += tree.depth();
            let (mut leaves, mut splits) = (Vec::new(), Vec::new());
            number(tree, 0, &mut leaves, &mut vec![false; tree.len()], &mut splits)?;
            for (node, lo, mid) in splits {
                // Leaves lo..mid (in-order) are the node's left subtree.
                let left = if mid - lo >= 64 { u64::MAX } else { ((1u64 << (mid - lo)) - 1) << lo };
                let mask = !left;
                let split = tree.split(node)?;
                match split.numeric {
                    // A NaN threshold cannot be sorted; it is rare enough to evaluate alone.
                    Some((threshold, nan_left)) if !threshold.is_nan() => {
                        let list = quick.features.get_mut(split.feature as usize)?;
                        list.push(Entry { threshold, tree: t, nan_left, mask });
                    }
                    _ => quick.others.push((t, node, mask)),
                }
            }
            quick.leaves.push(leaves);
        }
        quick.depth = depth;
        for list in &mut quick.features {
            list.sort_by(|a, b| a.threshold.partial_cmp(&b.threshold).unwrap_or(std::cmp::Ordering::Equal));
        }
        Some(quick)
    }

    /// As `walk::each_leaf`: `visit(tree, row, leaf node)`, each row's
    /// trees in order.
    pub(crate) fn each_leaf<W>(
        &self,
        trees: &[W],
        tree: impl Fn(&W) -> &Tree<T>,
        x: &[T],
        width: usize,
        mut visit: impl FnMut(usize, usize, u32),
    ) {
        let rows = x.len().checked_div(width).unwrap_or(0);
        let mut sets = vec![u64::MAX; self.leaves.len()];
        for r in 0..rows {
            let row = &x[r * width..(r + 1) * width];
            sets.iter_mut().for_each(|s| *s = u64::MAX);
            for (list, &v) in self.features.iter().zip(row) {
                if v.is_nan() {
                    for e in list.iter().filter(|e| !e.nan_left) {
                        sets[e.tree as usize] &= e.mask;
                    }
                } else {
                    for e in list {
                        if v <= e.threshold {
                            break;
                        }
                        sets[e.tree as usize] &= e.mask;
                    }
                }
            }
            for &(t, node, mask) in &self.others {
                if !tree(&trees[t as usize]).goes_left(node, row) {
                    sets[t as usize] &= mask;
                }
            }
            for (t, (set, leaves)) in sets.iter().zip(&self.leaves).enumerate() {
                visit(t, r, leaves[set.trailing_zeros() as usize]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::walk::{CategoryRule, Split, Tree};
    use super::Quick;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    const VALUES: [f64; 9] = [f64::NAN, 0.0, -0.0, 0.5, 1.0, -1.0, 2.0, f64::INFINITY, f64::NEG_INFINITY];

    /// A random tree of up to `leaves` leaves, nodes numbered parents first.
    fn tree(rng: &mut Rng, leaves: usize) -> Tree<f64> {
        let mut splits: Vec<Option<Split<f64>>> = vec![None];
        let mut open = vec![(0usize, leaves)];
        while let Some((at, n)) = open.pop() {
            if n <= 1 {
                splits[at] = Some(Split::Leaf);
                continue;
            }
            let (left, right) = (splits.len() as u32, splits.len() as u32 + 1);
            splits.extend([None, None]);
            let feature = rng.next(3) as u32;
            let nan_left = rng.next(2) == 0;
            splits[at] = Some(match rng.next(6) {
                0 => Split::Categorical {
                    feature,
                    rule: CategoryRule::Hist { left: [0b101, 0, 0, 0], known: Some([0b111, 0, 0, 0]) },
                    nan_left,
                    left,
                    right,
                },
                1 => Split::Categorical {
                    feature,
                    rule: CategoryRule::LightGbm { left: vec![0b10] },
                    nan_left,
                    left,
                    right,
                },
                k => {
                    let threshold = VALUES[1 + rng.next(8) as usize];
                    // One in four: zero goes against its comparison (LightGBM's zero as missing).
                    let zero_left = (k == 2) != (0.0 <= threshold);
                    Split::Numerical { feature, threshold, nan_left, zero_left, left, right }
                }
            });
            let l = 1 + rng.next(n as u64 - 1) as usize;
            open.push((left as usize, l));
            open.push((right as usize, n - l));
        }
        Tree::new(splits.into_iter().map(|s| s.unwrap_or(Split::Leaf)))
    }

    #[test]
    fn exit_leaves_are_the_walks() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..50 {
            let trees: Vec<Tree<f64>> = (0..1 + round % 7)
                .map(|_| {
                    let leaves = 1 + rng.next(64) as usize;
                    tree(&mut rng, leaves)
                })
                .collect();
            let quick = Quick::build(trees.iter(), 3).expect("at most 64 leaves");
            let x: Vec<f64> = (0..3 * 40).map(|_| VALUES[rng.next(9) as usize]).collect();
            let mut found = Vec::new();
            quick.each_leaf(&trees, |t| t, &x, 3, |t, r, leaf| found.push((r, t, leaf)));
            let expect: Vec<(usize, usize, u32)> = (0..40)
                .flat_map(|r| (0..trees.len()).map(move |t| (r, t)))
                .map(|(r, t)| (r, t, trees[t].leaf(&x[r * 3..r * 3 + 3])))
                .collect();
            assert_eq!(found, expect, "round {round}");
        }
    }

    #[test]
    fn large_trees_are_left_to_the_walk() {
        let mut rng = Rng(7);
        let big = tree(&mut rng, 65);
        assert!(Quick::build([&big], 3).is_none());
    }
}
