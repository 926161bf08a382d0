//! Prophet's MAP objective (the Stan model's negative log posterior, with
//! constants dropped and `sigma_obs` optimised on the log scale without a
//! Jacobian, as Stan's optimiser does), with the noise level profiled out
//! in closed form, and the exact additive solver.
//!
//! Parameters are laid out as `[k, m, delta (S), log_sigma, beta (K)]`.

use super::logistic::{self, Segments};

/// The fixed data of one fit, in Prophet's scaled units.
pub(crate) struct Problem<'a> {
    /// Scaled time, sorted.
    pub(crate) t: &'a [f64],
    /// Scaled observations.
    pub(crate) y: &'a [f64],
    /// Features, row-major `t.len() x n_features`.
    pub(crate) x: &'a [f64],
    pub(crate) n_features: usize,
    /// Prior scale of each feature.
    pub(crate) sigmas: &'a [f64],
    /// Whether each feature is multiplicative (else additive).
    pub(crate) multiplicative: &'a [bool],
    /// Changepoint times, sorted.
    pub(crate) t_change: &'a [f64],
    /// Number of changepoints at or before each row (rows and changepoints
    /// are sorted, so the active ones are a prefix).
    pub(crate) active: Vec<usize>,
    /// Laplace scale of `delta`.
    pub(crate) tau: f64,
    /// Flat growth: `trend = m`.
    pub(crate) flat: bool,
    /// Logistic growth: the capacity of each row (scaled).
    pub(crate) cap: Option<&'a [f64]>,
}

impl<'a> Problem<'a> {
    /// Changepoints active at `t` (Prophet's `t >= t_change`).
    pub(crate) fn count_active(t: &[f64], t_change: &[f64]) -> Vec<usize> {
        let mut c = 0;
        t.iter()
            .map(|&ti| {
                while c < t_change.len() && ti >= t_change[c] {
                    c += 1;
                }
                c
            })
            .collect()
    }

    /// Trend at every row for parameters `p`.
    pub(crate) fn trend(&self, p: &[f64], out: &mut Vec<f64>) {
        let s = self.t_change.len();
        let (k, m, delta) = (p[0], p[1], &p[2..2 + s]);
        out.clear();
        if self.flat {
            out.resize(self.t.len(), m);
            return;
        }
        if let Some(cap) = self.cap {
            let seg = Segments::new(k, m, delta, self.t_change);
            logistic::trend(self.t, cap, &self.active, &seg, out);
            return;
        }
        // Prefix sums of delta and delta * t_change over changepoints.
        let (mut rate, mut offset, mut c) = (k, m, 0);
        for (i, &ti) in self.t.iter().enumerate() {
            while c < self.active[i] {
                rate += delta[c];
                offset -= delta[c] * self.t_change[c];
                c += 1;
            }
            out.push(rate * ti + offset);
        }
    }

    /// The objective with the noise level at its closed-form optimum for
    /// the other parameters (written into `p`), without the gradient: what
    /// a line search or trust-region step needs.
    pub(crate) fn profiled_value(&self, p: &mut [f64], scratch: &mut Scratch) -> f64 {
        let half_ssr = self.half_ssr_value(p, scratch);
        // d f / d log sigma = n + 4 sigma^2 - 2 L / sigma^2 = 0.
        p[2 + self.t_change.len()] = 0.5 * noise_variance(self.t.len() as f64, half_ssr).ln();
        self.value_from(p, half_ssr)
    }

    /// The objective at `p` as it is (no gradient).
    pub(crate) fn value(&self, p: &[f64]) -> f64 {
        self.value_from(p, self.half_ssr_value(p, &mut Scratch::default()))
    }

    /// Half the residual sum of squares, one pass, no gradient.
    fn half_ssr_value(&self, p: &[f64], scratch: &mut Scratch) -> f64 {
        let s = self.t_change.len();
        let kf = self.n_features;
        self.trend(p, &mut scratch.trend);
        let beta = &p[3 + s..];
        let mut sum_sq = 0.0;
        for (i, &trend) in scratch.trend.iter().enumerate() {
            let row = &self.x[i * kf..(i + 1) * kf];
            let (mut mult, mut add) = (0.0, 0.0);
            for ((x, b), &m) in row.iter().zip(beta).zip(self.multiplicative) {
                if m {
                    mult += x * b;
                } else {
                    add += x * b;
                }
            }
            let r = self.y[i] - (trend * (1.0 + mult) + add);
            sum_sq += r * r;
        }
        0.5 * sum_sq
    }

    /// The objective from half the residual sum of squares and the priors.
    fn value_from(&self, p: &[f64], half_ssr: f64) -> f64 {
        let s = self.t_change.len();
        let n = self.t.len() as f64;
        let log_sigma = p[2 + s];
        let sigma2 = (2.0 * log_sigma).exp();
        let (k, m) = (p[0], p[1]);
        let l1: f64 = p[2..2 + s].iter().map(|d| d.abs()).sum::<f64>() / self.tau;
        let ridge: f64 = p[3 + s..].iter().zip(self.sigmas).map(|(b, sd)| 0.5 * b * b / (sd * sd)).sum();
        half_ssr / sigma2 + n * log_sigma + (k * k + m * m) / 50.0 + l1 + 2.0 * sigma2 + ridge
    }

    /// The Gram form of an additive model: `yhat = Z theta` with
    /// `theta = [k, m, delta, beta]`, so the sum of squares is
    /// `y'y - 2 b' theta + theta' G theta`. `None` when a feature is
    /// multiplicative (then `yhat` is not linear in the parameters).
    pub(crate) fn gram(&self) -> Option<Gram> {
        if self.cap.is_some() || self.multiplicative.iter().any(|&m| m) {
            return None;
        }
        let s = self.t_change.len();
        let kf = self.n_features;
        let dim = 2 + s + kf;
        let mut g = vec![0.0; dim * dim];
        let mut b = vec![0.0; dim];
        let mut z = vec![0.0; dim];
        for i in 0..self.t.len() {
            let ti = self.t[i];
            z.iter_mut().for_each(|v| *v = 0.0);
            z[1] = 1.0;
            if !self.flat {
                z[0] = ti;
                for j in 0..self.active[i] {
                    z[2 + j] = ti - self.t_change[j];
                }
            }
            z[2 + s..].copy_from_slice(&self.x[i * kf..(i + 1) * kf]);
            accumulate(&mut g, &mut b, &z, self.y[i]);
        }
        symmetrize(&mut g, dim);
        Some(Gram { dim, g, b })
    }
}

/// `G = Z'Z` and `b = Z'y` of an additive model.
#[derive(Debug, Clone)]
pub(crate) struct Gram {
    dim: usize,
    g: Vec<f64>,
    b: Vec<f64>,
}

/// The optimal `sigma_obs^2` for half residual sum of squares `half_ssr`
/// over `n` rows: the positive root of `4 s^2 + n s - 2 L = 0`, written
/// as `4 L / (sqrt(n^2 + 32 L) + n)` so a near-perfect fit does not cancel
/// to zero; floored at `sigma_obs = 1e-9`, the noise level Prophet itself
/// uses for an exactly fitted (constant) history, so a model that can
/// interpolate its history keeps a finite objective.
pub(crate) fn noise_variance(n: f64, half_ssr: f64) -> f64 {
    (4.0 * half_ssr / ((n * n + 32.0 * half_ssr).sqrt() + n)).max(1e-18)
}

/// Buffers reused across evaluations.
#[derive(Default)]
pub(crate) struct Scratch {
    trend: Vec<f64>,
}

impl Problem<'_> {
    /// Per coordinate of `[k, m, delta, beta]` (log sigma left out): the
    /// normal priors' curvature (`k, m ~ N(0, 5)`, `beta ~ N(0, sigmas)`)
    /// and the Laplace prior's L1 weight (`delta ~ Laplace(0, tau)`).
    pub(crate) fn prior_weights(&self) -> (Vec<f64>, Vec<f64>) {
        let dt = 2 + self.t_change.len();
        let curvature = (0..dt)
            .map(|a| if a < 2 { 1.0 / 25.0 } else { 0.0 })
            .chain(self.sigmas.iter().map(|sd| 1.0 / (sd * sd)))
            .collect();
        let l1 =
            (0..dt).map(|a| if a < 2 { 0.0 } else { 1.0 / self.tau }).chain(self.sigmas.iter().map(|_| 0.0)).collect();
        (curvature, l1)
    }

    /// The exact MAP of an additive model. For a fixed noise level the
    /// objective is a convex quadratic plus the Laplace prior's L1 term,
    /// solved by coordinate descent with soft-thresholding on the Gram
    /// matrix; the noise level then has a closed form. Alternating the two
    /// converges to the optimum itself, not to where a quasi-Newton method
    /// happens to stop at the L1 kinks.
    pub(crate) fn solve_additive(&self, gram: &Gram, mut p: Vec<f64>) -> Vec<f64> {
        let s = self.t_change.len();
        let dim = gram.dim;
        let (sigma_slot, model) = (2 + s, |a: usize| if a < 2 + s { a } else { a + 1 });
        let mut theta: Vec<f64> = (0..dim).map(|a| p[model(a)]).collect();
        let (prior, l1) = self.prior_weights();
        let mut previous = f64::INFINITY;
        // Early rounds, while the noise level still moves, need no tight
        // inner solve; the tolerance tightens round by round.
        let mut tolerance = 1e-6;
        let mut scratch = Scratch::default();
        for _ in 0..500 {
            let w = (-2.0 * p[sigma_slot]).exp();
            lasso_cd(&gram.g, &gram.b, &prior, &l1, w, &mut theta, tolerance, 10_000);
            // Noise level: d f / d log sigma = n + 4 sigma^2 - 2 L / sigma^2 = 0.
            for a in 0..dim {
                p[model(a)] = theta[a];
            }
            let value = self.profiled_value(&mut p, &mut scratch);
            if tolerance <= 1e-12 && (previous - value).abs() <= 1e-15 * value.abs().max(1.0) {
                break;
            }
            previous = value;
            tolerance = (tolerance * 0.01).max(1e-12);
        }
        p
    }
}

/// Minimises `w (1/2 x'Gx - b'x) + 1/2 sum prior x^2 + sum l1 |x|` from `x`,
/// in at most `max_sweeps` rounds (an outer Gauss-Newton step needs no
/// exact inner solve: its line search only asks for a descent).
/// Coordinate descent (soft-thresholding) finds the sign pattern; on an
/// ill-conditioned Gram matrix (neighbouring changepoints are nearly
/// collinear) it then crawls, so after every few sweeps the quadratic
/// restricted to the nonzero coordinates with their signs fixed is solved
/// exactly (Cholesky). When that point keeps its signs and the zero
/// coordinates satisfy the optimality condition, it is the minimum.
/// Otherwise it is kept if it lowers the objective, and the sweeps go on
/// until none moves the objective by more than `tolerance`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lasso_cd(
    g: &[f64],
    b: &[f64],
    prior: &[f64],
    l1: &[f64],
    w: f64,
    x: &mut [f64],
    tolerance: f64,
    max_sweeps: usize,
) {
    let dim = x.len();
    let gradient = |x: &[f64]| -> Vec<f64> {
        (0..dim)
            .map(|a| {
                let row = &g[a * dim..(a + 1) * dim];
                w * (row.iter().zip(x.iter()).map(|(gi, xi)| gi * xi).sum::<f64>() - b[a]) + prior[a] * x[a]
            })
            .collect()
    };
    // Objective from the smooth gradient: f = 1/2 x'(grad - w b) ... written out directly.
    let objective = |x: &[f64], grad: &[f64]| -> f64 {
        (0..dim).map(|a| 0.5 * x[a] * (grad[a] - w * b[a]) + l1[a] * x[a].abs()).sum()
    };
    let mut grad = gradient(x);
    let mut system = vec![0.0; dim * dim];
    let mut rhs = vec![0.0; dim];
    for _ in 0..max_sweeps {
        let mut largest = 0.0f64;
        for a in 0..dim {
            let q = w * g[a * dim + a] + prior[a];
            let old = x[a];
            let new = if q <= 0.0 {
                0.0
            } else {
                let z = q * old - grad[a];
                let shrunk = z.abs() - l1[a];
                if shrunk > 0.0 {
                    shrunk.copysign(z) / q
                } else {
                    0.0
                }
            };
            let change = new - old;
            if change != 0.0 {
                x[a] = new;
                let column = &g[a * dim..(a + 1) * dim];
                for (gr, c) in grad.iter_mut().zip(column) {
                    *gr += w * c * change;
                }
                grad[a] += prior[a] * change;
                largest = largest.max(0.5 * q * change * change);
            }
        }
        if largest < tolerance {
            break;
        }
        // Active-set refinement: minimise on the current face; where a
        // coordinate would change sign on the way, stop there, zero it and
        // solve the smaller face, until the face's minimum keeps its signs.
        for _ in 0..dim {
            let free: Vec<usize> = (0..dim).filter(|&a| x[a] != 0.0 || l1[a] == 0.0).collect();
            let m = free.len();
            face_system(g, dim, w, prior, &free, &mut system[..m * m]);
            for (i, &a) in free.iter().enumerate() {
                rhs[i] = w * b[a] - if l1[a] > 0.0 { l1[a] * x[a].signum() } else { 0.0 };
            }
            if !cholesky_solve(&mut system[..m * m], &mut rhs[..m], m) {
                break;
            }
            let mut step = 1.0f64;
            let mut blocking = None;
            for (i, &a) in free.iter().enumerate() {
                if l1[a] > 0.0 && rhs[i].signum() != x[a].signum() {
                    let reach = x[a] / (x[a] - rhs[i]);
                    if reach < step {
                        step = reach;
                        blocking = Some(a);
                    }
                }
            }
            let mut candidate = x.to_vec();
            for (i, &a) in free.iter().enumerate() {
                candidate[a] = x[a] + step * (rhs[i] - x[a]);
            }
            if let Some(blocked) = blocking {
                candidate[blocked] = 0.0;
            }
            let candidate_grad = gradient(&candidate);
            if objective(&candidate, &candidate_grad) > objective(x, &grad) {
                break;
            }
            x.copy_from_slice(&candidate);
            grad = candidate_grad;
            if blocking.is_none() {
                break;
            }
        }
        // Optimal when every zero coordinate's gradient is inside its L1 band
        // (the nonzero ones are at their face's minimum).
        if (0..dim).all(|a| x[a] != 0.0 || l1[a] == 0.0 || grad[a].abs() <= l1[a]) {
            break;
        }
    }
}

/// `w G + diag(prior)` restricted to the coordinates `free` (row-major
/// `free.len()` square, into `out`): the quadratic on one face of the L1 term.
pub(crate) fn face_system(g: &[f64], dim: usize, w: f64, prior: &[f64], free: &[usize], out: &mut [f64]) {
    let m = free.len();
    for (i, &a) in free.iter().enumerate() {
        for (j, &c) in free.iter().enumerate() {
            out[i * m + j] = w * g[a * dim + c] + if a == c { prior[a] } else { 0.0 };
        }
    }
}

/// Solves `A x = b` in place for a symmetric positive definite `A`
/// (row-major `m x m`, overwritten by its Cholesky factor); false when `A`
/// is not numerically positive definite.
pub(crate) fn cholesky_solve(a: &mut [f64], b: &mut [f64], m: usize) -> bool {
    for j in 0..m {
        let (_, rest) = a.split_at_mut(j * m);
        let (row_j, below) = rest.split_at_mut(m);
        let d = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        row_j[j] = d;
        for row_i in below.chunks_mut(m) {
            row_i[j] = (row_i[j] - dot(&row_i[..j], &row_j[..j])) / d;
        }
    }
    for i in 0..m {
        let row = &a[i * m..(i + 1) * m];
        b[i] = (b[i] - dot(&row[..i], &b[..i])) / row[i];
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for k in i + 1..m {
            s -= a[k * m + i] * b[k];
        }
        b[i] = s / a[i * m + i];
    }
    true
}

/// Dot product with four running sums, so it vectorises.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for k in 0..4 {
            acc[k] += a[k] * b[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Accumulates `G += z z'` (upper triangle) and `b += z y` for one row.
pub(crate) fn accumulate(g: &mut [f64], b: &mut [f64], z: &[f64], y: f64) {
    let dim = z.len();
    for a in 0..dim {
        let za = z[a];
        if za == 0.0 {
            continue;
        }
        b[a] += za * y;
        let row = &mut g[a * dim..(a + 1) * dim];
        for c in a..dim {
            row[c] += za * z[c];
        }
    }
}

pub(crate) fn symmetrize(g: &mut [f64], dim: usize) {
    for a in 0..dim {
        for c in 0..a {
            g[a * dim + c] = g[c * dim + a];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiled_noise_level_is_the_optimum() {
        // The closed-form sigma_obs minimises the objective in log sigma for
        // the other parameters, in every kind of model.
        let n = 40;
        let t: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let y: Vec<f64> = t.iter().map(|&ti| 0.3 + 0.5 * ti + 0.1 * (ti * 20.0).sin()).collect();
        let x: Vec<f64> = t.iter().flat_map(|&ti| [(ti * 20.0).sin(), (ti * 20.0).cos(), ti * ti]).collect();
        let t_change = [0.2, 0.5, 0.7];
        let cap = vec![2.0; n];
        for (multiplicative, flat, logistic) in [
            ([false, false, false], false, false),
            ([true, false, true], false, false),
            ([true, true, false], true, false),
            ([false, true, false], false, true),
        ] {
            let problem = Problem {
                t: &t,
                y: &y,
                x: &x,
                n_features: 3,
                sigmas: &[10.0, 10.0, 3.0],
                multiplicative: &multiplicative,
                t_change: &t_change,
                active: Problem::count_active(&t, &t_change),
                tau: 0.05,
                flat,
                cap: logistic.then_some(&cap[..]),
            };
            let mut p = [0.4, 0.2, 0.03, -0.02, 0.01, 0.0, 0.1, -0.05, 0.2];
            let best = problem.profiled_value(&mut p, &mut Scratch::default());
            assert_eq!(best, problem.value(&p));
            for h in [-1e-3, 1e-3] {
                let mut q = p;
                q[5] += h;
                assert!(problem.value(&q) > best, "log sigma {} + {h}", p[5]);
            }
        }
    }
}
