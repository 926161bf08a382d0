//! QuickScorer (Lucchese et al., SIGIR 2015) for ensembles of small trees,
//! vectorised over rows (vQS, Lucchese et al., SIGIR 2016). Instead of
//! walking each tree, a block of rows visits each feature's splits in
//! threshold order: every split a row fails (`x > threshold`, it goes
//! right) clears its left subtree's leaves from that row's leaf set of the
//! tree, and each tree's exit leaf is the first leaf left in the set (the
//! exit leaf itself is never cleared: only left subtrees of splits the row
//! went right at are). Scanning a feature stops at the first threshold
//! every row of the block passes, so the work is the failed splits, in
//! sequential memory, each compared against `BLOCK` rows at once with no
//! branch; a walk takes one unpredictable branch per tree level and row.
//!
//! Leaf sets are 64-bit words, several per tree past 64 leaves. The exit
//! leaf is the walk's own, node for node: NaN follows each split's missing
//! direction, LightGBM's categorical splits over codes below 64 use the
//! walker's rule in lanes, and the other categorical and zero-as-missing
//! splits are evaluated row by row with the walker itself.

use super::walk::{Tree, Value};

use super::kernels;

/// Rows scored together: one split is compared with this many rows at once.
pub(super) const BLOCK: usize = 16;
/// Trees with more leaves are left to the walk: it is faster on them, and
/// the leaf numbering recurses at most this deep.
const MAX_LEAVES: usize = 1024;

/// One leaf-set word for each row of a block.
pub(super) type Lanes<B = u64> = [B; BLOCK];

/// A leaf-set word: 64 leaves, or 32 where no tree has more than 64 (a
/// split's clear then touches half the bytes: one AVX-512 register for a
/// block).
pub(super) trait Word:
    Copy + Eq + std::ops::BitAndAssign + std::ops::BitOr<Output = Self> + kernels::Clear
{
    const ONES: Self;
    const ZERO: Self;
    const BITS: usize;
    /// The mask's low bits (a 32-bit word's mask is cut for it).
    fn from_mask(mask: u64) -> Self;
    /// All ones, unless `failed`.
    fn unless(failed: bool) -> Self;
    fn trailing_zeros(self) -> u32;
}

impl Word for u64 {
    const ONES: u64 = u64::MAX;
    const ZERO: u64 = 0;
    const BITS: usize = 64;
    fn from_mask(mask: u64) -> u64 {
        mask
    }
    fn unless(failed: bool) -> u64 {
        u64::from(failed).wrapping_sub(1)
    }
    fn trailing_zeros(self) -> u32 {
        u64::trailing_zeros(self)
    }
}

impl Word for u32 {
    const ONES: u32 = u32::MAX;
    const ZERO: u32 = 0;
    const BITS: usize = 32;
    fn from_mask(mask: u64) -> u32 {
        mask as u32
    }
    fn unless(failed: bool) -> u32 {
        u32::from(failed).wrapping_sub(1)
    }
    fn trailing_zeros(self) -> u32 {
        u32::trailing_zeros(self)
    }
}

/// Numbers the leaves under `node` left to right into `leaves`, and each
/// split's left-subtree leaves `lo..mid` into `splits`; `None` past
/// `MAX_LEAVES` leaves, or on a node reached twice.
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
            (leaves.len() <= MAX_LEAVES).then_some(())
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

/// The words holding leaves `lo..mid` of a tree, each with the mask that
/// clears them: `(word within the tree, mask)`.
/// Words are `width` bits (32 or 64; a 32-bit word's mask keeps its high
/// half set).
fn clearing(lo: usize, mid: usize, width: usize) -> impl Iterator<Item = (usize, u64)> {
    (lo / width..mid.div_ceil(width)).map(move |w| {
        let (a, b) = (lo.max(w * width) - w * width, mid.min(w * width + width) - w * width);
        let bits = if b - a == 64 { u64::MAX } else { ((1u64 << (b - a)) - 1) << a };
        (w, !bits)
    })
}

/// A numerical split in a feature's threshold-sorted list.
#[derive(Debug, Clone)]
pub(super) struct Entry<T> {
    pub(super) threshold: T,
    /// The leaf-set word it clears, and how.
    pub(super) word: u32,
    pub(super) mask: u64,
}

/// A LightGBM categorical split over codes below 64: codes in `bits` go left.
#[derive(Debug, Clone)]
pub(super) struct Inline {
    pub(super) bits: u64,
    pub(super) word: u32,
    pub(super) mask: u64,
}

/// A feature's splits.
#[derive(Debug, Clone, Default)]
pub(super) struct Feature<T> {
    /// Numerical splits, ascending by threshold.
    pub(super) numeric: Vec<Entry<T>>,
    /// What NaN clears: the numerical splits it goes right at, their
    /// masks ANDed word by word (one entry per word).
    pub(super) nan_right: Vec<(u32, u64)>,
    pub(super) inline: Vec<Inline>,
}

/// The scorer of one ensemble (built once per model).
#[derive(Debug, Clone)]
pub(crate) struct Quick<T> {
    features: Vec<Feature<T>>,
    /// Splits evaluated row by row: `(tree, node, word, mask)`.
    others: Vec<(u32, u32, u32, u64)>,
    /// Tree `t`'s leaf-set words are `words[t]..words[t + 1]`.
    words: Vec<u32>,
    /// Per tree, its leaves' nodes, left to right.
    leaves: Vec<Vec<u32>>,
    /// The trees' depths, summed.
    depth: usize,
    /// Whether leaf sets are 32-bit words (every tree has at most 64 leaves).
    narrow: bool,
}

impl<T: Value> Quick<T> {
    /// The scorer of `trees` where it beats the walk (see `faster`; the
    /// walk is `gathered` where the trees take it); `None` where it does
    /// not, or cannot take a tree (over `MAX_LEAVES` leaves, a node shared
    /// or repeated: the walk takes those).
    pub(crate) fn new<'a>(
        trees: impl IntoIterator<Item = &'a Tree<T>>,
        n_features: usize,
        gathered: bool,
    ) -> Option<Quick<T>>
    where
        T: 'a,
    {
        // AVX2's kernel takes 64-bit words only.
        #[cfg(target_arch = "x86_64")]
        let narrow = kernels::best() != kernels::Kernel::Avx2;
        #[cfg(not(target_arch = "x86_64"))]
        let narrow = true;
        Self::build(trees, n_features, narrow).filter(|q| q.faster(gathered))
    }

    /// A block pays for about every split (those below its rows' largest
    /// value), sixteen rows at a time; a walk pays an unpredictable branch
    /// per level and row; a split evaluated row by row costs about a level.
    /// Measured on the credit benchmark's ensembles (`bench_credit.py`,
    /// 100k rows, one thread): boosting's trees (3-4 splits per level)
    /// score 2-4x faster in blocks with AVX-512 or AVX2; the forest's
    /// unpruned trees (10 per level) 1.2x faster with AVX-512, 1.1x slower
    /// with AVX2, 1.7x slower with the portable scan. Where the trees take
    /// the `gathered` walk (AVX-512, float32 splits), it beats blocks on the
    /// forest by 2.8x and loses on XGBoost's trees by 1.8x: blocks keep
    /// trees of up to 6 splits per level.
    fn faster(&self, gathered: bool) -> bool {
        let lanes: usize = self.features.iter().map(|f| f.numeric.len() + f.inline.len()).sum();
        let per_level = match kernels::best() {
            #[cfg(target_arch = "x86_64")]
            kernels::Kernel::Avx512 if gathered => 6,
            #[cfg(target_arch = "x86_64")]
            kernels::Kernel::Avx512 => 12,
            #[cfg(target_arch = "x86_64")]
            kernels::Kernel::Avx2 => 8,
            kernels::Kernel::Portable => 4,
        };
        lanes + 8 * self.others.len() <= per_level * self.depth
    }

    /// `narrow`: 32-bit words allowed.
    fn build<'a>(trees: impl IntoIterator<Item = &'a Tree<T>>, n_features: usize, narrow: bool) -> Option<Quick<T>>
    where
        T: 'a,
    {
        let mut quick = Quick {
            features: vec![Feature::default(); n_features],
            others: Vec::new(),
            words: vec![0],
            leaves: Vec::new(),
            depth: 0,
            narrow: true,
        };
        let mut numbered = Vec::new();
        for tree in trees {
            quick.depth += tree.depth();
            let (mut leaves, mut splits) = (Vec::new(), Vec::new());
            number(tree, 0, &mut leaves, &mut vec![false; tree.len()], &mut splits)?;
            numbered.push((tree, leaves, splits));
        }
        // Trees of up to 64 leaves (boosting's) in 32-bit words: most fit
        // one, and a split's clear touches half the bytes.
        quick.narrow = narrow && numbered.iter().all(|(_, leaves, _)| leaves.len() <= 64);
        let width = if quick.narrow { 32 } else { 64 };
        for (t, (tree, leaves, splits)) in numbered.into_iter().enumerate() {
            let t = u32::try_from(t).ok()?;
            let first = *quick.words.last()?;
            for (node, lo, mid) in splits {
                let split = tree.split(node)?;
                let feature = quick.features.get_mut(split.feature as usize)?;
                for (w, mask) in clearing(lo, mid, width) {
                    let word = first + w as u32;
                    match (split.numeric, split.inline) {
                        // A NaN threshold cannot be sorted; it is rare enough to evaluate alone.
                        (Some((threshold, nan_left)), _) if !threshold.is_nan() => {
                            feature.numeric.push(Entry { threshold, word, mask });
                            if !nan_left {
                                // This tree's words are the list's tail (at most 16).
                                let mut tail = feature.nan_right.iter_mut().rev().take_while(|(w, _)| *w >= first);
                                match tail.find(|(w, _)| *w == word) {
                                    Some((_, clears)) => *clears &= mask,
                                    None => feature.nan_right.push((word, mask)),
                                }
                            }
                        }
                        (_, Some(bits)) => feature.inline.push(Inline { bits, word, mask }),
                        _ => quick.others.push((t, node, word, mask)),
                    }
                }
            }
            quick.words.push(first.checked_add(u32::try_from(leaves.len().div_ceil(width)).ok()?)?);
            quick.leaves.push(leaves);
        }
        for feature in &mut quick.features {
            feature.numeric.sort_by(|a, b| a.threshold.partial_cmp(&b.threshold).unwrap_or(std::cmp::Ordering::Equal));
        }
        Some(quick)
    }

    /// As `walk::each_leaf`: `visit(tree, first row, leaf nodes)`, each
    /// row's trees in order (rows in blocks, a block's rows tree by tree).
    pub(crate) fn each_leaf<W>(
        &self,
        trees: &[W],
        tree: impl Fn(&W) -> &Tree<T>,
        x: &[T],
        width: usize,
        mut visit: impl FnMut(usize, usize, &[u32]),
    ) {
        let visit = &mut visit;
        match (kernels::best(), self.narrow) {
            // SAFETY (each kernel): `best` found its instructions on this CPU.
            #[cfg(target_arch = "x86_64")]
            (kernels::Kernel::Avx512, true) => {
                let scan =
                    |f: &Feature<T>, v: &_, sets: &mut [Lanes<u32>]| unsafe { kernels::avx512::scan(f, v, sets) };
                self.visit_blocks(trees, tree, x, width, scan, visit);
            }
            #[cfg(target_arch = "x86_64")]
            (kernels::Kernel::Avx512, false) => {
                let scan =
                    |f: &Feature<T>, v: &_, sets: &mut [Lanes<u64>]| unsafe { kernels::avx512::scan(f, v, sets) };
                self.visit_blocks(trees, tree, x, width, scan, visit);
            }
            #[cfg(target_arch = "x86_64")]
            (kernels::Kernel::Avx2, _) => {
                let scan = |f: &Feature<T>, v: &_, sets: &mut [Lanes]| unsafe { kernels::avx2::scan(f, v, sets) };
                self.visit_blocks(trees, tree, x, width, scan, visit);
            }
            (kernels::Kernel::Portable, true) => self.visit_blocks(trees, tree, x, width, scan::<T, u32>, visit),
            (kernels::Kernel::Portable, false) => self.visit_blocks(trees, tree, x, width, scan::<T, u64>, visit),
        }
    }

    /// `blocks` with `visit` naming each block's exit leaves.
    #[inline(always)]
    fn visit_blocks<W, B: Word>(
        &self,
        trees: &[W],
        tree: impl Fn(&W) -> &Tree<T>,
        x: &[T],
        width: usize,
        scan: impl Fn(&Feature<T>, &[T; BLOCK], &mut [Lanes<B>]),
        visit: &mut impl FnMut(usize, usize, &[u32]),
    ) {
        self.blocks(trees, tree, x, width, scan, |start, n, sets| self.visit(start, n, sets, visit));
    }

    /// The scorer, with the scan of one feature against a block.
    #[inline(always)]
    fn blocks<W, B: Word>(
        &self,
        trees: &[W],
        tree: impl Fn(&W) -> &Tree<T>,
        x: &[T],
        width: usize,
        scan: impl Fn(&Feature<T>, &[T; BLOCK], &mut [Lanes<B>]),
        mut exits: impl FnMut(usize, usize, &[Lanes<B>]),
    ) {
        let rows = x.len().checked_div(width).unwrap_or(0);
        let total = self.words.last().copied().unwrap_or(0) as usize;
        // The words' width is the one the masks were cut for.
        debug_assert!((B::BITS == 32) == self.narrow);
        let mut sets: Vec<Lanes<B>> = vec![[B::ONES; BLOCK]; total];
        let mut columns: Vec<[T; BLOCK]> = vec![[T::ZERO; BLOCK]; width];
        for start in (0..rows).step_by(BLOCK) {
            let n = BLOCK.min(rows - start);
            // The block's rows as columns; a short block repeats its last row.
            for l in 0..BLOCK {
                let r = start + l.min(n - 1);
                for (column, &v) in columns.iter_mut().zip(&x[r * width..(r + 1) * width]) {
                    column[l] = v;
                }
            }
            sets.iter_mut().for_each(|s| *s = [B::ONES; BLOCK]);
            for (feature, column) in self.features.iter().zip(&columns) {
                scan(feature, column, &mut sets);
            }
            for &(t, node, word, mask) in &self.others {
                let (walk, set) = (tree(&trees[t as usize]), &mut sets[word as usize]);
                for (l, s) in set.iter_mut().enumerate().take(n) {
                    let r = start + l;
                    if !walk.goes_left(node, &x[r * width..(r + 1) * width]) {
                        *s &= B::from_mask(mask);
                    }
                }
            }
            exits(start, n, &sets);
        }
    }

    /// `blocks`' stage that names each tree's exit leaves: `visit(tree,
    /// first row, leaf nodes)` for the block's `n` rows from `start`.
    #[inline(always)]
    fn visit<B: Word>(&self, start: usize, n: usize, sets: &[Lanes<B>], visit: &mut impl FnMut(usize, usize, &[u32])) {
        let mut found = [0u32; BLOCK];
        for (t, (span, leaves)) in self.words.windows(2).zip(&self.leaves).enumerate() {
            let words = &sets[span[0] as usize..span[1] as usize];
            if let [set] = words {
                for (f, s) in found.iter_mut().zip(set).take(n) {
                    *f = leaves[s.trailing_zeros() as usize];
                }
            } else {
                for (l, f) in found.iter_mut().enumerate().take(n) {
                    // The exit leaf is never cleared: some word has a bit.
                    let (w, s) = words
                        .iter()
                        .enumerate()
                        .find(|(_, s)| s[l] != B::ZERO)
                        .map_or((0, B::ONES), |(w, s)| (w, s[l]));
                    *f = leaves[w * B::BITS + s.trailing_zeros() as usize];
                }
            }
            visit(t, start, &found[..n]);
        }
    }
}

/// A binary model's leaf values in each tree's leaf order (trees of at
/// most 64 leaves, in 32-bit words), so a block's exit leaves index them
/// directly: its sums are gathered sixteen rows at a time instead of
/// naming each row's leaf node to the model.
#[derive(Debug, Clone)]
pub(crate) struct Sums<F> {
    tables: Vec<[F; 64]>,
}

/// A raw score type: float64, or XGBoost's float32.
pub(crate) trait Sum: Copy + Default + std::ops::AddAssign + kernels::Gather {}
impl Sum for f32 {}
impl Sum for f64 {}

impl<T: Value> Quick<T> {
    /// Tables of `value(tree, leaf node)` for `add`; `None` unless the
    /// leaf sets are 32-bit words.
    pub(crate) fn sums<F: Sum>(&self, value: impl Fn(usize, u32) -> F) -> Option<Sums<F>> {
        let table = |(t, leaves): (usize, &Vec<u32>)| {
            let mut table = [F::default(); 64];
            for (slot, &node) in table.iter_mut().zip(leaves) {
                *slot = value(t, node);
            }
            table
        };
        self.narrow.then(|| Sums { tables: self.leaves.iter().enumerate().map(table).collect() })
    }

    /// Adds each row's trees' values (`sums`, built from this scorer) to
    /// its score in `raw`, one per row, each row's trees in model order:
    /// the same additions as `each_leaf` and the model's sum.
    pub(crate) fn add<W, F: Sum>(
        &self,
        trees: &[W],
        tree: impl Fn(&W) -> &Tree<T>,
        x: &[T],
        width: usize,
        sums: &Sums<F>,
        raw: &mut [F],
    ) {
        match kernels::best() {
            #[cfg(target_arch = "x86_64")]
            kernels::Kernel::Avx512 => {
                // SAFETY: the CPU has the instructions the kernels are compiled for.
                let scan = |f: &Feature<T>, v: &[T; BLOCK], sets: &mut [Lanes<u32>]| unsafe {
                    kernels::avx512::scan(f, v, sets)
                };
                let exits = |start: usize, n: usize, sets: &[Lanes<u32>]| unsafe {
                    kernels::avx512::add(&self.words, sets, &sums.tables, &mut raw[start..start + n]);
                };
                self.blocks(trees, tree, x, width, scan, exits);
            }
            _ => {
                let exits = |start: usize, n: usize, sets: &[Lanes<u32>]| {
                    add(&self.words, sets, &sums.tables, &mut raw[start..start + n])
                };
                self.blocks(trees, tree, x, width, scan::<T, u32>, exits);
            }
        }
    }
}

/// A block's exit leaves' values added to its rows' scores (`raw`, one per
/// row of the block), tree by tree: the portable copy of
/// `kernels::avx512::add`. A tree has one or two 32-bit words.
pub(super) fn add<F: Sum>(words: &[u32], sets: &[Lanes<u32>], tables: &[[F; 64]], raw: &mut [F]) {
    for (span, table) in words.windows(2).zip(tables) {
        let (first, second) =
            (&sets[span[0] as usize], sets.get(span[0] as usize + 1).filter(|_| span[1] - span[0] == 2));
        for (l, r) in raw.iter_mut().enumerate() {
            let leaf = match second {
                Some(second) if first[l] == 0 => 32 + second[l].trailing_zeros(),
                _ => first[l].trailing_zeros(),
            };
            *r += table[leaf as usize & 63];
        }
    }
}

/// One feature's splits against a block's values: the failed ones clear
/// their leaves (the portable copy of `kernels`' scans).
pub(super) fn scan<T: Value, B: Word>(feature: &Feature<T>, v: &[T; BLOCK], sets: &mut [Lanes<B>]) {
    for e in &feature.numeric {
        let mut failed = false;
        let mask = B::from_mask(e.mask);
        for (s, &x) in sets[e.word as usize].iter_mut().zip(v) {
            failed |= x > e.threshold;
            *s &= mask | B::unless(x > e.threshold);
        }
        // Thresholds ascend: no row fails this one or any after it.
        if !failed {
            break;
        }
    }
    if v.iter().any(|x| x.is_nan()) {
        for &(word, mask) in &feature.nan_right {
            for (s, &x) in sets[word as usize].iter_mut().zip(v) {
                *s &= B::from_mask(mask) | B::unless(x.is_nan());
            }
        }
    }
    for c in &feature.inline {
        for (s, &x) in sets[c.word as usize].iter_mut().zip(v) {
            // The walker's rule: codes truncate toward zero; NaN and values
            // outside (-1, 64) go right.
            let x = x.to_f64();
            let listed = (c.bits >> ((x as i64 & 63) as u32)) & 1 != 0;
            *s &= B::from_mask(c.mask) | B::unless(!((x > -1.0) & (x < 64.0) & listed));
        }
    }
}

#[cfg(test)]
#[path = "quick_tests.rs"]
mod tests;
