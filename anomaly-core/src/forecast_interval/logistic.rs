//! Prophet's logistic growth: `trend = cap / (1 + exp(-r (t - o)))` with
//! the rate `r` and offset `o` of the segment `t` falls in. Each
//! changepoint's offset change `gamma` keeps the curve continuous (Stan's
//! `logistic_gamma`), so `o` depends on every earlier rate: the trend is
//! not linear in `(k, m, delta)` and its Jacobian is carried forward
//! through the recursion here, for the Gauss-Newton fit.

/// Rates and offsets of each segment (`S + 1` of them): segment `a` holds
/// the rows with `a` active changepoints.
pub(crate) struct Segments {
    /// Rate of each segment.
    pub(crate) rate: Vec<f64>,
    /// Offset of each segment.
    pub(crate) offset: Vec<f64>,
}

impl Segments {
    /// Rates and continuity offsets for `k, m, delta` at `t_change`.
    pub(crate) fn new(k: f64, m: f64, delta: &[f64], t_change: &[f64]) -> Segments {
        let s = t_change.len();
        let mut rate = Vec::with_capacity(s + 1);
        let mut offset = Vec::with_capacity(s + 1);
        let (mut r, mut o) = (k, m);
        rate.push(r);
        offset.push(o);
        for (d, c) in delta.iter().zip(t_change) {
            let next = r + d;
            o += (c - o) * (1.0 - r / next);
            r = next;
            rate.push(r);
            offset.push(o);
        }
        Segments { rate, offset }
    }
}

/// The logistic trend at every row, `active[i]` changepoints active at row `i`.
pub(crate) fn trend(t: &[f64], cap: &[f64], active: &[usize], seg: &Segments, out: &mut Vec<f64>) {
    out.clear();
    out.extend(t.iter().zip(cap).zip(active).map(|((&ti, &c), &a)| c * sigmoid(seg.rate[a] * (ti - seg.offset[a]))));
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Derivatives of each segment's rate and offset with respect to the trend
/// parameters `[k, m, delta_0 .. delta_{S-1}]`, row-major `(S + 1) x (2 + S)`.
pub(crate) struct SegmentJacobian {
    pub(crate) d_rate: Vec<f64>,
    pub(crate) d_offset: Vec<f64>,
    pub(crate) width: usize,
}

impl SegmentJacobian {
    /// Forward-mode differentiation of [`Segments::new`].
    pub(crate) fn new(seg: &Segments, t_change: &[f64]) -> SegmentJacobian {
        let s = t_change.len();
        let width = 2 + s;
        let mut d_rate = vec![0.0; (s + 1) * width];
        let mut d_offset = vec![0.0; (s + 1) * width];
        // Segment 0: rate k, offset m.
        d_rate[0] = 1.0;
        d_offset[1] = 1.0;
        for j in 0..s {
            let (r, next, o, c) = (seg.rate[j], seg.rate[j + 1], seg.offset[j], t_change[j]);
            let q = 1.0 - r / next;
            let (prev, cur) = d_rate.split_at_mut((j + 1) * width);
            let d_r = &prev[j * width..];
            // rate_{j+1} = rate_j + delta_j.
            cur[..width].copy_from_slice(d_r);
            cur[2 + j] += 1.0;
            let d_next = &cur[..width];
            let (prev_o, cur_o) = d_offset.split_at_mut((j + 1) * width);
            let d_o = &prev_o[j * width..];
            // offset_{j+1} = o + (c - o) q, q = 1 - r / next.
            for a in 0..width {
                let d_q = -(d_r[a] * next - r * d_next[a]) / (next * next);
                cur_o[a] = d_o[a] * (1.0 - q) + (c - o) * d_q;
            }
        }
        SegmentJacobian { d_rate, d_offset, width }
    }

    /// `d trend_i / d [k, m, delta]` for a row at `t` with capacity `cap`
    /// in segment `a`, written into `out`; returns the trend.
    pub(crate) fn row(&self, seg: &Segments, t: f64, cap: f64, a: usize, out: &mut [f64]) -> f64 {
        let (r, o) = (seg.rate[a], seg.offset[a]);
        let s = sigmoid(r * (t - o));
        let scale = cap * s * (1.0 - s);
        let (d_r, d_o) = (&self.d_rate[a * self.width..(a + 1) * self.width], &self.d_offset[a * self.width..]);
        for ((v, dr), d_o) in out.iter_mut().zip(d_r).zip(d_o) {
            *v = scale * ((t - o) * dr - r * d_o);
        }
        cap * s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_prophets_piecewise_logistic() {
        // prophet's test_piecewise_logistic: cap 10, k 1, m 0, delta 0.5 at t = 5.
        let t: Vec<f64> = (0..11).map(f64::from).collect();
        let cap = vec![10.0; 11];
        let seg = Segments::new(1.0, 0.0, &[0.5], &[5.0]);
        let active: Vec<usize> = t.iter().map(|&v| usize::from(v >= 5.0)).collect();
        let mut out = Vec::new();
        trend(&t, &cap, &active, &seg, &mut out);
        let expected = [
            5.000000, 7.310586, 8.807971, 9.525741, 9.820138, 9.933071, 9.984988, 9.996646, 9.999252, 9.999833,
            9.999963,
        ];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let t_change = [0.2, 0.45, 0.7];
        let p = [1.3, 0.1, 0.4, -0.9, 0.3];
        let at = |p: &[f64], t: f64| {
            let seg = Segments::new(p[0], p[1], &p[2..], &t_change);
            let a = t_change.iter().filter(|&&c| t >= c).count();
            2.0 * sigmoid(seg.rate[a] * (t - seg.offset[a]))
        };
        for &t in &[0.1, 0.3, 0.5, 0.9, 1.2] {
            let seg = Segments::new(p[0], p[1], &p[2..], &t_change);
            let jac = SegmentJacobian::new(&seg, &t_change);
            let a = t_change.iter().filter(|&&c| t >= c).count();
            let mut row = vec![0.0; 5];
            jac.row(&seg, t, 2.0, a, &mut row);
            for i in 0..5 {
                let h = 1e-6;
                let (mut up, mut down) = (p, p);
                up[i] += h;
                down[i] -= h;
                let numeric = (at(&up, t) - at(&down, t)) / (2.0 * h);
                assert!((numeric - row[i]).abs() < 1e-6, "t {t} param {i}: {numeric} vs {}", row[i]);
            }
        }
    }
}
