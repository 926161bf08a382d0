//! `gathered.rs`'s tests.

use super::super::walk::{CategoryRule, Split, Tree};
use super::Gathered;

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const VALUES: [f32; 9] = [f32::NAN, 0.0, -0.0, 0.5, 1.0, -1.0, 2.0, f32::INFINITY, f32::NEG_INFINITY];
const FEATURES: u64 = 5;

/// A random tree of `leaves` leaves, nodes numbered parents first (in no
/// particular order, so the packing's preorder differs from it).
fn tree(rng: &mut Rng, leaves: usize) -> Tree<f32> {
    let mut splits: Vec<Option<Split<f32>>> = vec![None];
    let mut open = vec![(0usize, leaves)];
    while let Some((at, n)) = open.pop() {
        if n <= 1 {
            splits[at] = Some(Split::Leaf);
            continue;
        }
        let (left, right) = (splits.len() as u32 + 1, splits.len() as u32);
        splits.extend([None, None]);
        let threshold = VALUES[rng.next(VALUES.len() as u64) as usize];
        let feature = rng.next(FEATURES) as u32;
        let nan_left = rng.next(2) == 0;
        let zero_left = 0.0 <= threshold;
        splits[at] = Some(Split::Numerical { feature, threshold, nan_left, zero_left, left, right });
        let l = 1 + rng.next(n as u64 - 1) as usize;
        open.push((left as usize, l));
        open.push((right as usize, n - l));
    }
    Tree::new(splits.into_iter().map(|s| s.unwrap_or(Split::Leaf)))
}

fn rows(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n * FEATURES as usize).map(|_| VALUES[rng.next(VALUES.len() as u64) as usize]).collect()
}

#[test]
fn leaves_are_the_walks() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Trees of 1 to 300 leaves (single-leaf ones too), deep and shallow.
    let trees: Vec<Tree<f32>> = (0..40)
        .map(|i| {
            let leaves = if i % 10 == 0 { 1 } else { 1 + rng.next(300) as usize };
            tree(&mut rng, leaves)
        })
        .collect();
    let Some(gathered) = Gathered::new(trees.iter(), FEATURES as usize) else {
        eprintln!("no AVX-512 here: the gathered walk is not used");
        return;
    };
    // Row counts from one (trees over the lanes) to past three walks of
    // sixteen lanes (rows over the lanes).
    for n in [1, 2, 7, 15, 16, 17, 47, 48, 49, 1000] {
        let x = rows(&mut rng, n);
        let mut seen = vec![Vec::new(); n];
        let ran = gathered.each_leaf(&x, FEATURES as usize, |t, start, leaves| {
            for (r, &leaf) in leaves.iter().enumerate() {
                let row = &x[(start + r) * FEATURES as usize..(start + r + 1) * FEATURES as usize];
                assert_eq!(leaf, trees[t].leaf(row), "tree {t}, row {}", start + r);
                seen[start + r].push(t);
            }
        });
        assert!(ran, "{n} rows");
        // Every row's trees, each once and in order.
        assert!(seen.iter().all(|ts| ts.iter().copied().eq(0..trees.len())), "{n} rows");
    }
    // Rows narrower than the model's features are left to the walk.
    let x = rows(&mut rng, 40);
    assert!(!gathered.each_leaf(&x[..40 * 4], 4, |_, _, _| panic!("visited")));
}

#[test]
fn only_plain_float32_splits_pack() {
    let mut rng = Rng(7);
    let plain = tree(&mut rng, 20);
    if Gathered::new([&plain], FEATURES as usize).is_none() {
        return; // No AVX-512 here.
    }
    // A feature past the model's width, a categorical split, a float64 tree.
    let far: Tree<f32> = Tree::new([
        Split::Numerical { feature: 3, threshold: 0.5, nan_left: true, zero_left: true, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ]);
    assert!(Gathered::new([&far], 4).is_some());
    assert!(Gathered::new([&far], 3).is_none());
    let rule = CategoryRule::XgBoost { right: vec![1] };
    let categorical = Tree::new([
        Split::Categorical { feature: 0, rule, nan_left: true, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ]);
    assert!(Gathered::new([&plain, &categorical], FEATURES as usize).is_none());
    let wide: Tree<f64> = Tree::new([
        Split::Numerical { feature: 0, threshold: 0.5, nan_left: true, zero_left: true, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ]);
    assert!(Gathered::new([&wide], 1).is_none());
}
