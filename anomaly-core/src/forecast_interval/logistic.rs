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

    /// Second derivatives of each segment's offset (the rates are linear
    /// in the parameters), `(S + 1)` row-major `width x width` blocks.
    pub(crate) fn offset_hessians(&self, seg: &Segments, t_change: &[f64]) -> Vec<f64> {
        let w = self.width;
        let block = w * w;
        let mut h = vec![0.0; (t_change.len() + 1) * block];
        for (j, &c) in t_change.iter().enumerate() {
            let (r, next, o) = (seg.rate[j], seg.rate[j + 1], seg.offset[j]);
            let q = 1.0 - r / next;
            let d_r = &self.d_rate[j * w..(j + 1) * w];
            let d_next = &self.d_rate[(j + 1) * w..(j + 2) * w];
            let d_o = &self.d_offset[j * w..(j + 1) * w];
            let d_q: Vec<f64> = (0..w).map(|a| -d_r[a] / next + r * d_next[a] / (next * next)).collect();
            let (prev, cur) = h.split_at_mut((j + 1) * block);
            let h_o = &prev[j * block..];
            let out = &mut cur[..block];
            // o' = o + (c - o) q: d2o' = d2o (1 - q) - do dq' - dq do' + (c - o) d2q,
            // d2q = (dr dn' + dn dr') / n^2 - 2 r dn dn' / n^3.
            for a in 0..w {
                for b in 0..w {
                    let d2q = (d_r[a] * d_next[b] + d_next[a] * d_r[b]) / (next * next)
                        - 2.0 * r * d_next[a] * d_next[b] / (next * next * next);
                    out[a * w + b] = h_o[a * w + b] * (1.0 - q) - d_o[a] * d_q[b] - d_q[a] * d_o[b] + (c - o) * d2q;
                }
            }
        }
        h
    }

    /// The reference form the solver's per-segment sums are built from
    /// (`alpha d rate + beta d offset`), kept for the derivative tests.
    #[cfg(test)]
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

/// Per segment, the residual-weighted sums that make up the trend part of
/// the Hessian: `sum w c s''`, `sum w c s'' t`, `sum w c s'' t^2` and
/// `sum w c s'` over the segment's rows (`w` the weight, `c` the cap).
#[derive(Default, Clone, Copy)]
pub(crate) struct CurvatureSums([f64; 4]);

impl CurvatureSums {
    /// Adds a row at `t` with capacity `cap` and weight `weight`.
    pub(crate) fn add(&mut self, seg: &Segments, a: usize, t: f64, cap: f64, weight: f64) {
        let s = sigmoid(seg.rate[a] * (t - seg.offset[a]));
        let first = weight * cap * s * (1.0 - s);
        let second = first * (1.0 - 2.0 * s);
        self.0[0] += second;
        self.0[1] += second * t;
        self.0[2] += second * t * t;
        self.0[3] += first;
    }
}

/// `sum_i weight_i d2 trend_i` over the trend parameters (`width x width`,
/// full), from each segment's [`CurvatureSums`]. With `u = r (t - o)`,
/// `d2 trend = c s'' du du' + c s' d2u`, `du = t dr - e` where
/// `e = o dr + r do`, and `d2u = -(dr do' + do dr') - r d2o`.
pub(crate) fn trend_curvature(
    seg: &Segments,
    jac: &SegmentJacobian,
    offset_hessians: &[f64],
    sums: &[CurvatureSums],
) -> Vec<f64> {
    let w = jac.width;
    let mut out = vec![0.0; w * w];
    for (a, CurvatureSums([c2, c2t, c2tt, c1])) in sums.iter().enumerate() {
        if *c2 == 0.0 && *c1 == 0.0 {
            continue;
        }
        let (r, o) = (seg.rate[a], seg.offset[a]);
        let d_r = &jac.d_rate[a * w..(a + 1) * w];
        let d_o = &jac.d_offset[a * w..(a + 1) * w];
        let e: Vec<f64> = (0..w).map(|x| o * d_r[x] + r * d_o[x]).collect();
        let h_o = &offset_hessians[a * w * w..(a + 1) * w * w];
        for x in 0..w {
            for y in 0..w {
                out[x * w + y] += c2tt * d_r[x] * d_r[y] - c2t * (d_r[x] * e[y] + e[x] * d_r[y]) + c2 * e[x] * e[y]
                    - c1 * (d_r[x] * d_o[y] + d_o[x] * d_r[y] + r * h_o[x * w + y]);
            }
        }
    }
    out
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
    fn curvature_matches_finite_differences() {
        let t_change = [0.2, 0.45, 0.7];
        let p = [1.3, 0.1, 0.4, -0.9, 0.3];
        let rows = [(0.1, 2.0, 0.7), (0.3, 1.5, -0.4), (0.5, 2.0, 1.1), (0.9, 3.0, 0.2), (1.2, 2.5, -0.8)];
        let weighted_gradient = |p: &[f64]| -> Vec<f64> {
            let seg = Segments::new(p[0], p[1], &p[2..], &t_change);
            let jac = SegmentJacobian::new(&seg, &t_change);
            let mut total = vec![0.0; 5];
            let mut row = vec![0.0; 5];
            for &(t, cap, w) in &rows {
                let a = t_change.iter().filter(|&&c| t >= c).count();
                jac.row(&seg, t, cap, a, &mut row);
                total.iter_mut().zip(&row).for_each(|(x, r)| *x += w * r);
            }
            total
        };
        let seg = Segments::new(p[0], p[1], &p[2..], &t_change);
        let jac = SegmentJacobian::new(&seg, &t_change);
        let hessians = jac.offset_hessians(&seg, &t_change);
        let mut sums = vec![CurvatureSums::default(); 4];
        for &(t, cap, w) in &rows {
            let a = t_change.iter().filter(|&&c| t >= c).count();
            sums[a].add(&seg, a, t, cap, w);
        }
        let h = trend_curvature(&seg, &jac, &hessians, &sums);
        for i in 0..5 {
            let step = 1e-6;
            let (mut up, mut down) = (p, p);
            up[i] += step;
            down[i] -= step;
            let (gu, gd) = (weighted_gradient(&up), weighted_gradient(&down));
            for j in 0..5 {
                let numeric = (gu[j] - gd[j]) / (2.0 * step);
                assert!(
                    (numeric - h[j * 5 + i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "{i} {j}: {numeric} vs {}",
                    h[j * 5 + i]
                );
            }
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
