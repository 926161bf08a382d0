//! Each library's split rule in the walker's one form, `x <= threshold`
//! on the prepared features, and its category lists as bitsets. The
//! conversions are exact: the walk answers every split as the library does.

/// Category codes (checked non-negative by the caller) as a bitset.
pub(crate) fn bitset(codes: &[i64]) -> Vec<u64> {
    let top = codes.iter().copied().max().unwrap_or(0).max(0) as usize;
    let mut bits = vec![0u64; top / 64 + 1];
    for &c in codes {
        bits[c as usize / 64] |= 1 << (c % 64);
    }
    bits
}

/// The largest f32 not above `t`: `f64::from(x) <= t` is `x <= below(t)`
/// for every f32 `x` (scikit-learn's trees cast features to f32 and
/// compare them with f64 thresholds).
pub(crate) fn f32_at_most(t: f64) -> f32 {
    let c = t as f32;
    if f64::from(c) > t {
        c.next_down()
    } else {
        c
    }
}

/// `x < t` as `x <= strictly_below(t)` for f32 `x` (XGBoost's rule); for
/// `t = -inf` nothing is below, and a NaN threshold answers false.
pub(crate) fn f32_below(t: f32) -> f32 {
    if t == f32::NEG_INFINITY {
        f32::NAN
    } else {
        t.next_down()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_keep_the_comparison() {
        for t in [0.5f64, 0.1, -0.1, 1e-300, 3.4e38, 1e39, -1e39, 2.5, f64::INFINITY] {
            let b = f32_at_most(t);
            for x in [t as f32, (t as f32).next_up(), (t as f32).next_down(), 0.0, f32::INFINITY, f32::NEG_INFINITY] {
                assert_eq!(f64::from(x) <= t, x <= b, "x {x} t {t}");
            }
        }
        for t in [0.5f32, -0.1, 0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE] {
            let b = f32_below(t);
            for x in [t, t.next_up(), t.next_down(), 0.0, f32::INFINITY, f32::NEG_INFINITY] {
                assert_eq!(x < t, x <= b, "x {x} t {t}");
            }
        }
    }
}
