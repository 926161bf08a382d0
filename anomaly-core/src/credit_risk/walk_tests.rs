//! `walk.rs`'s tests.

use super::*;

#[test]
fn inline_categorical_nodes_follow_lightgbms_rule() {
    // Codes below 64 go inline in f64 and f32 trees alike (a bitset of
    // 32 bits fits an f32); above, the rule's own path.
    let values = [
        f64::NAN,
        -1.0,
        -0.99,
        -0.5,
        -0.0,
        0.0,
        0.7,
        1.0,
        5.5,
        31.0,
        32.0,
        63.0,
        63.9,
        64.0,
        65.0,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for bits in [vec![0b1011], vec![1 << 40 | 1 << 63 | 1], vec![0b10, 1 << 1]] {
        let rule = CategoryRule::LightGbm { left: bits.clone() };
        fn stump<T: Value>(rule: CategoryRule) -> Tree<T> {
            let split = Split::Categorical { feature: 0, rule, nan_left: true, left: 1, right: 2 };
            Tree::new([split, Split::Leaf, Split::Leaf])
        }
        let (wide, narrow) = (stump::<f64>(rule.clone()), stump::<f32>(rule.clone()));
        assert_eq!(wide.inline, bits.len() == 1);
        assert_eq!(narrow.inline, bits.len() == 1 && bits[0] >> 32 == 0);
        for x in values {
            assert_eq!(wide.goes_left(0, &[x]), rule.goes_left(x, true), "{bits:?} at {x}");
            let y = x as f32;
            assert_eq!(narrow.goes_left(0, &[y]), rule.goes_left(f64::from(y), true), "{bits:?} at {y}");
        }
    }
}

/// A stump on feature 0 at 0.5 (NaN right) over leaves 1 and 2.
fn stump() -> Tree<f64> {
    Tree::new([
        Split::Numerical { feature: 0, threshold: 0.5, nan_left: false, zero_left: true, left: 1, right: 2 },
        Split::Leaf,
        Split::Leaf,
    ])
}

#[test]
fn lanes_agree_with_single_walks() {
    let trees: Vec<Tree<f64>> = (0..11).map(|_| stump()).collect();
    for rows in [1usize, 3, 8, 13] {
        let x: Vec<f64> = (0..rows).map(|i| if i % 3 == 2 { f64::NAN } else { i as f64 * 0.3 }).collect();
        let mut seen = Vec::new();
        each_leaf(
            &trees,
            |t| t,
            &x,
            1,
            |t, start, leaves| {
                seen.extend(leaves.iter().enumerate().map(|(l, &leaf)| (start + l, t, leaf)));
            },
        );
        seen.sort();
        let expect: Vec<(usize, usize, u32)> = (0..rows)
            .flat_map(|r| (0..11).map(move |t| (r, t)))
            .map(|(r, t)| (r, t, stump().leaf(&x[r..=r])))
            .collect();
        assert_eq!(seen, expect);
        assert!(expect.iter().all(|&(r, _, leaf)| leaf == if x[r] <= 0.5 { 1 } else { 2 }));
    }
}
