//! `quick.rs`'s tests.

use super::super::walk::{CategoryRule, Split, Tree};
use super::{scan, Lanes, Quick, Word, MAX_LEAVES};

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const VALUES: [f64; 13] =
    [f64::NAN, 0.0, -0.0, 0.5, 1.0, -1.0, 2.0, f64::INFINITY, f64::NEG_INFINITY, -0.99, 63.9, 64.0, 66.0];

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
            // Inline (codes below 64) or not (code 66 listed too).
            1 => Split::Categorical {
                feature,
                rule: CategoryRule::LightGbm { left: if rng.next(2) == 0 { vec![0b10] } else { vec![0b10, 0b100] } },
                nan_left,
                left,
                right,
            },
            k => {
                let threshold = VALUES[1 + rng.next(12) as usize];
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

/// `blocks`' exits stage collecting `(row, tree, leaf)`.
fn collect<'a, B: Word>(
    quick: &'a Quick<f64>,
    run: &'a mut Vec<(usize, usize, u32)>,
) -> impl FnMut(usize, usize, &[Lanes<B>]) + 'a {
    move |start, n, sets| {
        quick.visit(start, n, sets, &mut |t, start, leaves: &[u32]| {
            run.extend(leaves.iter().enumerate().map(|(l, &leaf)| (start + l, t, leaf)));
        });
    }
}

/// `n` random trees of 1 to `most` leaves.
fn forest(rng: &mut Rng, n: usize, most: u64) -> Vec<Tree<f64>> {
    (0..n)
        .map(|_| {
            let leaves = 1 + rng.next(most) as usize;
            tree(rng, leaves)
        })
        .collect()
}

/// 1 to 40 rows of 3 features drawn from `VALUES`: the count and the rows.
fn rows(rng: &mut Rng) -> (usize, Vec<f64>) {
    let rows = 1 + rng.next(40) as usize;
    (rows, (0..3 * rows).map(|_| VALUES[rng.next(VALUES.len() as u64) as usize]).collect())
}

/// Every row's exit leaves, by whichever instruction set this CPU
/// has and by the plain copy, against one walk at a time: trees of one
/// to three leaf-set words, 32-bit words, blocks full and short.
#[test]
fn exit_leaves_are_the_walks() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let trees = forest(&mut rng, 1 + round % 7, [190, 32, 64][round % 3]);
        let (rows, x) = rows(&mut rng);
        let expect: Vec<(usize, usize, u32)> = (0..rows)
            .flat_map(|r| (0..trees.len()).map(move |t| (r, t)))
            .map(|(r, t)| (r, t, trees[t].leaf(&x[r * 3..r * 3 + 3])))
            .collect();
        let each = |found: &mut Vec<_>, t, start, leaves: &[u32]| {
            found.extend(leaves.iter().enumerate().map(|(l, &leaf)| (start + l, t, leaf)));
        };
        let mut runs: Vec<Vec<(usize, usize, u32)>> = Vec::new();
        if let Some(quick) = Quick::new(trees.iter(), 3, false) {
            let mut run = Vec::new();
            quick.each_leaf(&trees, |t| t, &x, 3, |t, start, leaves| each(&mut run, t, start, leaves));
            runs.push(run);
        }
        let wide = Quick::build(trees.iter(), 3, false).expect("under MAX_LEAVES leaves");
        let narrow = Quick::build(trees.iter(), 3, true).expect("under MAX_LEAVES leaves");
        let mut run = Vec::new();
        wide.blocks(&trees, |t| t, &x, 3, scan::<f64, u64>, collect(&wide, &mut run));
        runs.push(run);
        if narrow.narrow {
            let mut run = Vec::new();
            narrow.blocks(&trees, |t| t, &x, 3, scan::<f64, u32>, collect(&narrow, &mut run));
            runs.push(run);
        }
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::kernels;
            use super::Feature;
            if std::is_x86_feature_detected!("avx2") {
                let mut run = Vec::new();
                // SAFETY: the CPU has AVX2.
                let scan = |f: &_, v: &_, s: &mut _| unsafe { kernels::avx2::scan(f, v, s) };
                wide.blocks(&trees, |t| t, &x, 3, scan, collect(&wide, &mut run));
                runs.push(run);
            }
            if kernels::best() == kernels::Kernel::Avx512 {
                let mut run = Vec::new();
                // SAFETY: the CPU has AVX-512F and DQ.
                let scan = |f: &Feature<f64>, v: &_, s: &mut [Lanes<u64>]| unsafe { kernels::avx512::scan(f, v, s) };
                wide.blocks(&trees, |t| t, &x, 3, scan, collect(&wide, &mut run));
                runs.push(run);
                if narrow.narrow {
                    let mut run = Vec::new();
                    // SAFETY: as above.
                    let scan =
                        |f: &Feature<f64>, v: &_, s: &mut [Lanes<u32>]| unsafe { kernels::avx512::scan(f, v, s) };
                    narrow.blocks(&trees, |t| t, &x, 3, scan, collect(&narrow, &mut run));
                    runs.push(run);
                }
            }
        }
        for found in runs {
            // Each row's trees come in model order.
            for r in 0..rows {
                let order: Vec<usize> = found.iter().filter(|v| v.0 == r).map(|v| v.1).collect();
                assert_eq!(order, (0..trees.len()).collect::<Vec<_>>(), "round {round}");
            }
            let mut found = found;
            found.sort_unstable();
            assert_eq!(found, expect, "round {round}");
        }
    }
}

/// A binary model's block sums are each row's own sum of its exit
/// leaves' values, tree by tree, to the bit: by the portable copy and
/// by AVX-512 where the CPU has it, in float64 and float32.
#[test]
fn block_sums_are_each_rows_sum_in_tree_order() {
    let mut rng = Rng(0x51_7cc1_b727_220a);
    for round in 0..40 {
        let trees = forest(&mut rng, 1 + round % 9, 64);
        let quick = Quick::build(trees.iter(), 3, true).expect("under MAX_LEAVES leaves");
        assert!(quick.narrow);
        let (rows, x) = rows(&mut rng);
        let value = |t: usize, node: u32| (t as f64 + 1.0) / 3.0 + f64::from(node) * 1e-3;
        let start: Vec<f64> = (0..rows).map(|r| r as f64 * 0.1).collect();
        let expect: Vec<f64> = (0..rows)
            .map(|r| {
                trees.iter().enumerate().fold(start[r], |s, (t, tree)| s + value(t, tree.leaf(&x[r * 3..r * 3 + 3])))
            })
            .collect();
        let sums = quick.sums(value).expect("32-bit words");
        let mut raw = start.clone();
        quick.add(&trees, |t| t, &x, 3, &sums, &mut raw);
        assert_eq!(raw, expect, "round {round}");
        let mut portable = start.clone();
        let exits = |at: usize, n: usize, sets: &[Lanes<u32>]| {
            super::add(&quick.words, sets, &sums.tables, &mut portable[at..at + n]);
        };
        quick.blocks(&trees, |t| t, &x, 3, scan::<f64, u32>, exits);
        assert_eq!(portable, expect, "round {round}");
        // float32 sums, as XGBoost's margins.
        let sums32 = quick.sums(|t, node| value(t, node) as f32).expect("32-bit words");
        let mut raw32: Vec<f32> = start.iter().map(|&v| v as f32).collect();
        quick.add(&trees, |t| t, &x, 3, &sums32, &mut raw32);
        let expect32: Vec<f32> = (0..rows)
            .map(|r| {
                let leaves = trees.iter().map(|tree| tree.leaf(&x[r * 3..r * 3 + 3]));
                leaves.enumerate().fold(start[r] as f32, |s, (t, leaf)| s + value(t, leaf) as f32)
            })
            .collect();
        assert_eq!(raw32, expect32, "round {round}");
    }
}

#[test]
fn large_trees_are_left_to_the_walk() {
    let mut rng = Rng(7);
    let big = tree(&mut rng, MAX_LEAVES + 1);
    assert!(Quick::build([&big], 3, true).is_none());
    let fits = tree(&mut rng, MAX_LEAVES);
    assert!(Quick::build([&fits], 3, true).is_some());
}
