//! `gathered.rs`'s tests.

use super::super::walk::{CategoryRule, Split, Tree, Value};
use super::Gathered;
use crate::rng::Rng;

const VALUES: [f32; 13] =
    [f32::NAN, 0.0, -0.0, 0.5, 1.0, -1.0, 2.0, f32::INFINITY, f32::NEG_INFINITY, -0.99, 5.0, 63.9, 64.0];
const FEATURES: usize = 5;

/// A random tree of `leaves` leaves, nodes numbered parents first (in no
/// particular order, so the packing's preorder differs from it); with
/// `codes`, a quarter of the splits are LightGBM's categorical ones over
/// codes below 64.
fn tree<T: Value + From<f32>>(rng: &mut Rng, leaves: usize, codes: bool) -> Tree<T> {
    let mut splits: Vec<Option<Split<T>>> = vec![None];
    let mut open = vec![(0usize, leaves)];
    while let Some((at, n)) = open.pop() {
        if n <= 1 {
            splits[at] = Some(Split::Leaf);
            continue;
        }
        let (left, right) = (splits.len() as u32 + 1, splits.len() as u32);
        splits.extend([None, None]);
        let feature = rng.below(FEATURES) as u32;
        let nan_left = rng.below(2) == 0;
        splits[at] = Some(if codes && rng.below(4) == 0 {
            let rule = CategoryRule::LightGbm { left: vec![rng.next_u64()] };
            Split::Categorical { feature, rule, nan_left, left, right }
        } else {
            let threshold = T::from(VALUES[rng.below(VALUES.len())]);
            let zero_left = T::ZERO <= threshold;
            Split::Numerical { feature, threshold, nan_left, zero_left, left, right }
        });
        let l = 1 + rng.below(n - 1);
        open.push((left as usize, l));
        open.push((right as usize, n - l));
    }
    Tree::new(splits.into_iter().map(|s| s.unwrap_or(Split::Leaf)))
}

/// Trees of 1 to 300 leaves (every tenth a single leaf).
fn forest<T: Value + From<f32>>(rng: &mut Rng, codes: bool) -> Vec<Tree<T>> {
    (0..40)
        .map(|i| {
            let leaves = if i % 10 == 0 { 1 } else { 1 + rng.below(300) };
            tree(rng, leaves, codes)
        })
        .collect()
}

fn rows<T: From<f32>>(rng: &mut Rng, n: usize) -> Vec<T> {
    (0..n * FEATURES).map(|_| T::from(VALUES[rng.below(VALUES.len())])).collect()
}

/// Every row's leaves from the gathered walk equal the walker's, each
/// row's trees once and in order, for 1 to 1000 rows.
fn check<T: Value + From<f32>>(trees: &[Tree<T>], rng: &mut Rng) {
    let Some(gathered) = Gathered::new(trees.iter(), FEATURES) else {
        eprintln!("no AVX-512 here: the gathered walk is not used");
        return;
    };
    // From one row (trees over the lanes) to past three walks of sixteen
    // lanes (rows over the lanes).
    for n in [1, 2, 7, 15, 16, 17, 47, 48, 49, 1000] {
        let x: Vec<T> = rows(rng, n);
        let mut seen = vec![Vec::new(); n];
        let ran = gathered.each_leaf(&x, FEATURES, |t, start, leaves| {
            for (r, &leaf) in leaves.iter().enumerate() {
                let row = &x[(start + r) * FEATURES..(start + r + 1) * FEATURES];
                assert_eq!(leaf, trees[t].leaf(row), "tree {t}, row {}", start + r);
                seen[start + r].push(t);
            }
        });
        assert!(ran, "{n} rows");
        assert!(seen.iter().all(|ts| ts.iter().copied().eq(0..trees.len())), "{n} rows");
    }
    // Rows narrower than the model's features are left to the walk.
    let x: Vec<T> = rows(rng, 40);
    assert!(!gathered.each_leaf(&x[..40 * 4], 4, |_, _, _| panic!("visited")));
}

#[test]
fn float32_leaves_are_the_walks() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let trees: Vec<Tree<f32>> = forest(&mut rng, false);
    check(&trees, &mut rng);
}

#[test]
fn float64_leaves_are_the_walks_categorical_splits_too() {
    let mut rng = Rng::new(11);
    let trees: Vec<Tree<f64>> = forest(&mut rng, true);
    check(&trees, &mut rng);
}

fn categorical<T: Value>(rule: CategoryRule) -> Tree<T> {
    Tree::new([Split::Categorical { feature: 0, rule, nan_left: true, left: 1, right: 2 }, Split::Leaf, Split::Leaf])
}

#[test]
fn only_plain_splits_pack() {
    let mut rng = Rng::new(7);
    let plain: Tree<f32> = tree(&mut rng, 20, false);
    if Gathered::new([&plain], FEATURES).is_none() {
        return; // No AVX-512 here.
    }
    // A feature past the model's width; categorical splits other than
    // LightGBM's inline ones, and those in float32 trees.
    let far: Tree<f32> = Tree::new([
        Split::Numerical { feature: 3, threshold: 0.5, nan_left: true, zero_left: true, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ]);
    assert!(Gathered::new([&far], 4).is_some());
    assert!(Gathered::new([&far], 3).is_none());
    let xgboost: Tree<f32> = categorical(CategoryRule::XgBoost { right: vec![1] });
    assert!(Gathered::new([&plain, &xgboost], FEATURES).is_none());
    let inline32: Tree<f32> = categorical(CategoryRule::LightGbm { left: vec![0b101] });
    assert!(Gathered::new([&inline32], FEATURES).is_none());
    let inline64: Tree<f64> = categorical(CategoryRule::LightGbm { left: vec![0b101] });
    assert!(Gathered::new([&inline64], FEATURES).is_some());
    let wide_codes: Tree<f64> = categorical(CategoryRule::LightGbm { left: vec![1, 1] });
    assert!(Gathered::new([&wide_codes], FEATURES).is_none());
    // LightGBM's zero as missing (zero goes against its comparison).
    let zero: Tree<f64> = Tree::new([
        Split::Numerical { feature: 0, threshold: 0.5, nan_left: true, zero_left: false, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ]);
    assert!(Gathered::new([&zero], FEATURES).is_none());
}

/// A random float32 tree no deeper than `depth` (its splits numerical).
fn shallow(rng: &mut Rng, depth: usize) -> Tree<f32> {
    let mut splits: Vec<Option<Split<f32>>> = vec![None];
    let mut open = vec![(0usize, 0usize)];
    while let Some((at, level)) = open.pop() {
        if level == depth || rng.below(5) == 0 {
            splits[at] = Some(Split::Leaf);
            continue;
        }
        let (left, right) = (splits.len() as u32, splits.len() as u32 + 1);
        splits.extend([None, None]);
        let threshold = VALUES[rng.below(VALUES.len())];
        let (feature, nan_left) = (rng.below(FEATURES) as u32, rng.below(2) == 0);
        splits[at] = Some(Split::Numerical { feature, threshold, nan_left, zero_left: 0.0 <= threshold, left, right });
        open.extend([(left as usize, level + 1), (right as usize, level + 1)]);
    }
    Tree::new(splits.into_iter().map(|s| s.unwrap_or(Split::Leaf)))
}

/// Trees within the top levels add, from column-major rows, each row's
/// leaf values in tree order: the walker's sums, bit for bit.
#[test]
fn whole_tops_add_the_walks_values() {
    let mut rng = Rng::new(23);
    let trees: Vec<Tree<f32>> = (0..30).map(|i| shallow(&mut rng, [6, 5, 1, 0][i % 4])).collect();
    let Some(gathered) = Gathered::new(trees.iter(), FEATURES) else { return };
    assert!(gathered.whole());
    let value = |t: usize, node: u32| ((t * 31 + node as usize * 7) % 13) as f32 * 0.37 - 1.1;
    for n in [1, 15, 16, 17, 64, 129, 300] {
        let x: Vec<f32> = rows(&mut rng, n);
        let columns: Vec<f32> =
            (0..FEATURES).flat_map(|f| (0..n).map(move |r| (f, r))).map(|(f, r)| x[r * FEATURES + f]).collect();
        let mut sums = vec![0.25f32; n];
        assert!(gathered.add_columns(&columns, FEATURES, &mut sums, value));
        for (r, &s) in sums.iter().enumerate() {
            let row = &x[r * FEATURES..(r + 1) * FEATURES];
            let want = trees.iter().enumerate().fold(0.25f32, |s, (t, tree)| s + value(t, tree.leaf(row)));
            assert_eq!(s.to_bits(), want.to_bits(), "{n} rows, row {r}");
        }
        // Rows and columns that disagree add nothing.
        assert!(!gathered.add_columns(&columns[1..], FEATURES, &mut sums, value));
    }
    // A tree deeper than the tops (a chain of eight splits): not whole.
    let chain = (0..8u32).flat_map(|d| {
        let split = Split::Numerical {
            feature: 0,
            threshold: 0.5,
            nan_left: true,
            zero_left: true,
            left: 2 * d + 1,
            right: 2 * d + 2,
        };
        [split, Split::Leaf]
    });
    let deep: Tree<f32> = Tree::new(chain.chain([Split::Leaf]));
    let g = Gathered::new([&trees[0], &deep], FEATURES).expect("packs");
    assert!(!g.whole());
    assert!(!g.add_columns(&vec![0.0; FEATURES * 20], FEATURES, &mut [0.0; 20], value));
}
