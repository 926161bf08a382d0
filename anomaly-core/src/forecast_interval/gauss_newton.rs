//! Proximal Gauss-Newton fits for the models whose prediction is not
//! linear in the parameters: multiplicative terms (bilinear, with the
//! trend's Jacobian folded into sums per segment) and logistic growth
//! (a dense Jacobian, the trend carried through its continuity offsets).
//! Each step solves the Gauss-Newton quadratic plus the normal priors and
//! the Laplace prior's L1 term exactly (coordinate descent with an
//! active-set finish), profiles the noise level out in closed form, and
//! backtracks so the objective never rises.

use super::logistic::{trend_curvature, CurvatureSums, SegmentJacobian, Segments};
use super::objective::{cholesky_solve, face_system, lasso_cd, symmetrize, Problem, Scratch};

impl Problem<'_> {
    /// The MAP of a model with multiplicative terms by proximal
    /// Gauss-Newton. `yhat = trend (1 + X_m beta) + X_a beta` is bilinear,
    /// so its Jacobian is cheap and the Gauss-Newton quadratic (plus the
    /// normal priors and the Laplace prior's L1 term) is solved exactly by
    /// coordinate descent; the noise level has a closed form for each
    /// candidate, and a backtracking step keeps the objective falling.
    /// Because the second-derivative terms dropped by Gauss-Newton are
    /// residual-weighted, convergence is fast where the model fits, and the
    /// kinks are handled exactly rather than crawled around as L-BFGS does.
    pub(crate) fn solve_gauss_newton(&self, p: Vec<f64>, max_iterations: usize) -> Vec<f64> {
        let mut bilinear = Bilinear::new(self);
        self.gauss_newton(p, max_iterations, false, |p, gram, rhs| bilinear.normal_equations(self, p, gram, rhs))
    }

    /// The MAP with logistic growth: Newton steps on the Jacobian (trend
    /// parameters through the continuity offsets, then the features) plus
    /// the residual-weighted curvature of the trend, which Gauss-Newton
    /// drops and which makes it crawl here; where that full Hessian is not
    /// positive definite (far from the optimum) the step falls back to
    /// Gauss-Newton. Levenberg-Marquardt damping keeps every step downhill.
    ///
    /// A row's trend derivative is `alpha_i d rate_a + beta_i d offset_a`
    /// for its segment `a`, so every trend block of the normal equations
    /// is a sum over segments of per-segment row sums: a pass over the rows
    /// costs O(features), not O((changepoints + features)^2).
    pub(crate) fn solve_logistic(&self, p: Vec<f64>, max_iterations: usize) -> Vec<f64> {
        let Some(cap) = self.cap else { return p };
        let s = self.t_change.len();
        let (kf, dt) = (self.n_features, 2 + s);
        let dim = dt + kf;
        let mult = self.multiplicative;
        // The additive features' own block does not change between steps.
        let any_mult = mult.iter().any(|&m| m);
        let mut fixed = vec![0.0; if any_mult { 0 } else { kf * kf }];
        for row in self.x.chunks(kf.max(1)).take(if any_mult { 0 } else { self.t.len() }) {
            for j in (0..kf).filter(|&j| !mult[j] && row[j] != 0.0) {
                for l in (j..kf).filter(|&l| !mult[l]) {
                    fixed[j * kf + l] += row[j] * row[l];
                }
            }
        }
        let (prior, _) = self.prior_weights();
        self.gauss_newton(p, max_iterations, true, |p, gram, rhs| {
            let seg = Segments::new(p[0], p[1], &p[2..dt], self.t_change);
            let jac = SegmentJacobian::new(&seg, self.t_change);
            let beta = &p[dt + 1..];
            // Per segment: sums of alpha^2, alpha beta, beta^2, alpha r, beta r.
            let mut sums = vec![[0.0f64; 5]; s + 1];
            // Per segment and feature: sums of alpha z_j, beta z_j, and (Newton
            // cross terms of multiplicative features) r x_j alpha / v, r x_j beta / v.
            let mut ax = vec![0.0; (s + 1) * kf];
            let mut bx = vec![0.0; (s + 1) * kf];
            let mut rax = vec![0.0; if any_mult { (s + 1) * kf } else { 0 }];
            let mut rbx = vec![0.0; rax.len()];
            let mut curvature_sums = vec![CurvatureSums::default(); s + 1];
            let mut z = vec![0.0; kf];
            for (i, (&ti, &c)) in self.t.iter().zip(cap).enumerate() {
                let a = self.active[i];
                let (rate, offset) = (seg.rate[a], seg.offset[a]);
                let sig = 1.0 / (1.0 + (-rate * (ti - offset)).exp());
                let tr = c * sig;
                let scale = c * sig * (1.0 - sig);
                let row = &self.x[i * kf..(i + 1) * kf];
                let (mut m_terms, mut a_terms) = (0.0, 0.0);
                for ((x, b), &m) in row.iter().zip(beta).zip(mult) {
                    if m {
                        m_terms += x * b;
                    } else {
                        a_terms += x * b;
                    }
                }
                let v = 1.0 + m_terms;
                let r = self.y[i] - tr * v - a_terms;
                let (alpha, beta_t) = (v * scale * (ti - offset), -v * scale * rate);
                let e = &mut sums[a];
                e[0] += alpha * alpha;
                e[1] += alpha * beta_t;
                e[2] += beta_t * beta_t;
                e[3] += alpha * r;
                e[4] += beta_t * r;
                for ((zj, &x), &m) in z.iter_mut().zip(row).zip(mult) {
                    *zj = if m { tr * x } else { x };
                }
                let (ax_a, bx_a) = (&mut ax[a * kf..(a + 1) * kf], &mut bx[a * kf..(a + 1) * kf]);
                for ((u, w), &zj) in ax_a.iter_mut().zip(bx_a.iter_mut()).zip(&z) {
                    *u += alpha * zj;
                    *w += beta_t * zj;
                }
                for (j, &zj) in z.iter().enumerate() {
                    rhs[dt + j] += zj * r;
                }
                if any_mult {
                    let (ra, rb) = (r * scale * (ti - offset), -r * scale * rate);
                    for j in 0..kf {
                        if mult[j] {
                            rax[a * kf + j] += ra * row[j];
                            rbx[a * kf + j] += rb * row[j];
                        }
                        // The feature block moves with the trend: a dense outer product.
                        let zj = z[j];
                        if zj != 0.0 {
                            let out = &mut gram[(dt + j) * dim + dt + j..(dt + j + 1) * dim];
                            for (g, zl) in out.iter_mut().zip(&z[j..]) {
                                *g += zj * zl;
                            }
                        }
                    }
                }
                curvature_sums[a].add(&seg, a, ti, c, r * v);
            }
            let w = jac.width;
            for a in 0..=s {
                let (d_r, d_o) = (&jac.d_rate[a * w..(a + 1) * w], &jac.d_offset[a * w..(a + 1) * w]);
                let [saa, sab, sbb, sar, sbr] = sums[a];
                for x in 0..dt {
                    rhs[x] += sar * d_r[x] + sbr * d_o[x];
                    for y in x..dt {
                        gram[x * dim + y] +=
                            saa * d_r[x] * d_r[y] + sab * (d_r[x] * d_o[y] + d_o[x] * d_r[y]) + sbb * d_o[x] * d_o[y];
                    }
                    let out = &mut gram[x * dim + dt..(x + 1) * dim];
                    for ((g, u), v) in out.iter_mut().zip(&ax[a * kf..(a + 1) * kf]).zip(&bx[a * kf..(a + 1) * kf]) {
                        *g += d_r[x] * u + d_o[x] * v;
                    }
                }
            }
            if !any_mult {
                for j in 0..kf {
                    for l in j..kf {
                        gram[(dt + j) * dim + dt + l] += fixed[j * kf + l];
                    }
                }
            }
            // Newton: J'J - sum r d2 yhat (upper triangle), if positive definite.
            let hessians = jac.offset_hessians(&seg, self.t_change);
            let curvature = trend_curvature(&seg, &jac, &hessians, &curvature_sums);
            let mut newton = gram.to_vec();
            for x in 0..dt {
                for y in x..dt {
                    newton[x * dim + y] -= curvature[x * dt + y];
                }
            }
            if any_mult {
                for a in 0..=s {
                    let (d_r, d_o) = (&jac.d_rate[a * w..(a + 1) * w], &jac.d_offset[a * w..(a + 1) * w]);
                    for j in (0..kf).filter(|&j| mult[j]) {
                        let (u, v) = (rax[a * kf + j], rbx[a * kf + j]);
                        for x in 0..dt {
                            newton[x * dim + dt + j] -= d_r[x] * u + d_o[x] * v;
                        }
                    }
                }
            }
            symmetrize(&mut newton, dim);
            // Positive definite where the step can move: the objective's
            // curvature (w J'J + priors) on the coordinates not held at zero
            // by the Laplace prior.
            let weight = (-2.0 * p[dt]).exp();
            let free: Vec<usize> = (0..dim).filter(|&a| !(2..dt).contains(&a) || p[a] != 0.0).collect();
            let m = free.len();
            let mut factor = vec![0.0; m * m];
            face_system(&newton, dim, weight, &prior, &free, &mut factor);
            if cholesky_solve(&mut factor, &mut vec![0.0; m], m) {
                gram.copy_from_slice(&newton);
            }
        })
    }

    /// The Gauss-Newton loop; `normal_equations` adds `J'J` (upper
    /// triangle) and `J'r` at the current parameters into zeroed buffers.
    /// A rejected step is shortened along its line (bilinear models, where
    /// the Gauss-Newton direction is good) or, with `damping`, recomputed
    /// with a larger Levenberg-Marquardt damping (logistic trends).
    fn gauss_newton(
        &self,
        mut p: Vec<f64>,
        max_iterations: usize,
        damping: bool,
        mut normal_equations: impl FnMut(&[f64], &mut [f64], &mut [f64]),
    ) -> Vec<f64> {
        let s = self.t_change.len();
        let kf = self.n_features;
        let dt = 2 + s;
        let dim = dt + kf;
        let model = |a: usize| if a < dt { a } else { a + 1 };
        let (prior, l1) = self.prior_weights();
        let mut scratch = Scratch::default();
        // Profile out the noise level: the objective at its closed-form optimum.
        let profile = |p: &mut Vec<f64>, scratch: &mut Scratch| self.profiled_value(p, scratch);
        let mut value = profile(&mut p, &mut scratch);
        let mut gram = vec![0.0; dim * dim];
        let mut rhs = vec![0.0; dim];
        let mut tolerance = 1e-8;
        // Damping starts moderate: Prophet's initial point is far from the optimum.
        let mut lambda = if damping { 1e-3 } else { 0.0f64 };
        let mut stalled = 0;
        for _ in 0..max_iterations {
            if !value.is_finite() {
                break;
            }
            let w = (-2.0 * p[dt]).exp();
            gram.iter_mut().for_each(|v| *v = 0.0);
            rhs.iter_mut().for_each(|v| *v = 0.0);
            normal_equations(&p, &mut gram, &mut rhs);
            symmetrize(&mut gram, dim);
            // Levenberg-Marquardt: the Gauss-Newton target b = J'r + (G + D) theta0
            // with D = lambda diag(G). A rejected step raises lambda (a shorter
            // step, turned towards the gradient) instead of only shortening
            // it along the Gauss-Newton line, which crawls when that line
            // points along a curved valley (logistic trends).
            let theta0: Vec<f64> = (0..dim).map(|a| p[model(a)]).collect();
            if theta0.iter().chain(rhs.iter()).chain(gram.iter()).any(|v| !v.is_finite()) {
                break;
            }
            let mut accepted = None;
            let mut line: Option<Vec<f64>> = None;
            let mut step = 1.0;
            for _ in 0..40 {
                let theta = match &line {
                    // Backtracking along the first Gauss-Newton step.
                    Some(full) => theta0.iter().zip(full).map(|(a, b)| a + step * (b - a)).collect(),
                    None => {
                        let mut damped = gram.clone();
                        let mut target = rhs.clone();
                        for a in 0..dim {
                            damped[a * dim + a] += lambda * gram[a * dim + a].max(1e-12);
                        }
                        for a in 0..dim {
                            let row = &damped[a * dim..(a + 1) * dim];
                            target[a] += row.iter().zip(&theta0).map(|(x, y)| x * y).sum::<f64>();
                        }
                        let mut theta = theta0.clone();
                        lasso_cd(&damped, &target, &prior, &l1, w, &mut theta, tolerance, 20);
                        theta
                    }
                };
                let mut q = p.clone();
                for a in 0..dim {
                    q[model(a)] = theta[a];
                }
                let candidate = profile(&mut q, &mut scratch);
                if candidate <= value {
                    accepted = Some((q, candidate));
                    lambda = if lambda < 1e-9 { 0.0 } else { lambda / 10.0 };
                    break;
                }
                if damping {
                    lambda = (lambda * 10.0).max(1e-6);
                } else {
                    line.get_or_insert(theta);
                    step *= 0.5;
                }
            }
            let Some((q, candidate)) = accepted else { break };
            let gained = value - candidate;
            p = q;
            value = candidate;
            // Converged: a negligible gain from an undamped step, or several
            // in a row while damping stays up (the steps cannot get longer).
            stalled = if gained <= 1e-10 * value.abs().max(1.0) { stalled + 1 } else { 0 };
            if tolerance <= 1e-12 && stalled > 0 && (lambda < 1e-6 || stalled >= 5) {
                break;
            }
            tolerance = (tolerance * 0.01).max(1e-12);
        }
        p
    }
}

/// Buffers of the bilinear (multiplicative) normal equations.
struct Bilinear {
    trend: Vec<f64>,
    f: Vec<f64>,
    /// Per number of active changepoints: sums of v^2, v^2 t, v^2 t^2, v r, v r t
    /// (trend block) and, per feature, v f and v f t (trend-feature block).
    sums: Vec<[f64; 5]>,
    cross: Vec<f64>,
}

impl Bilinear {
    fn new(problem: &Problem<'_>) -> Bilinear {
        let (s, kf) = (problem.t_change.len(), problem.n_features);
        Bilinear {
            trend: Vec::with_capacity(problem.t.len()),
            f: vec![0.0; kf],
            sums: vec![[0.0f64; 5]; s + 1],
            cross: vec![0.0f64; (s + 1) * kf * 2],
        }
    }

    fn normal_equations(&mut self, problem: &Problem<'_>, p: &[f64], gram: &mut [f64], rhs: &mut [f64]) {
        let s = problem.t_change.len();
        let kf = problem.n_features;
        let dt = 2 + s;
        let dim = dt + kf;
        let Bilinear { trend, f, sums, cross } = self;
        problem.trend(p, trend);
        let beta = &p[dt + 1..];
        sums.iter_mut().for_each(|e| *e = [0.0; 5]);
        cross.iter_mut().for_each(|v| *v = 0.0);
        for (i, &tr) in trend.iter().enumerate() {
            let row = &problem.x[i * kf..(i + 1) * kf];
            let (mut mult, mut add) = (0.0, 0.0);
            for j in 0..kf {
                if problem.multiplicative[j] {
                    mult += row[j] * beta[j];
                } else {
                    add += row[j] * beta[j];
                }
            }
            let (v, ti) = (1.0 + mult, problem.t[i]);
            let r = problem.y[i] - tr * v - add;
            for ((fj, &x), &m) in f.iter_mut().zip(row).zip(problem.multiplicative) {
                *fj = if m { tr * x } else { x };
            }
            let group = if problem.flat { 0 } else { problem.active[i] };
            let e = &mut sums[group];
            e[0] += v * v;
            e[1] += v * v * ti;
            e[2] += v * v * ti * ti;
            e[3] += v * r;
            e[4] += v * r * ti;
            let c = &mut cross[group * kf * 2..(group + 1) * kf * 2];
            for (j, &fj) in f.iter().enumerate() {
                c[2 * j] += v * fj;
                c[2 * j + 1] += v * fj * ti;
            }
            // Feature block, offset into the full matrix.
            for a in 0..kf {
                let fa = f[a];
                rhs[dt + a] += fa * r;
                let out = &mut gram[(dt + a) * dim + dt..(dt + a + 1) * dim];
                for c in a..kf {
                    out[c] += fa * f[c];
                }
            }
        }
        // Trend rows (upper triangle): k, m, then each changepoint from
        // the sums over rows with more than j active changepoints.
        let fold = |from: usize, width: usize, src: &[f64]| -> Vec<f64> {
            let mut acc = vec![0.0; width];
            for g in from..=s {
                for (x, y) in acc.iter_mut().zip(&src[g * width..(g + 1) * width]) {
                    *x += y;
                }
            }
            acc
        };
        let flat_sums: Vec<f64> = sums.iter().flatten().copied().collect();
        let total = fold(0, 5, &flat_sums);
        let total_cross = fold(0, 2 * kf, cross);
        gram[dim + 1] = total[0];
        rhs[1] = total[3];
        for j in 0..kf {
            gram[dim + dt + j] = total_cross[2 * j];
        }
        if !problem.flat {
            gram[0] = total[2];
            gram[1] = total[1];
            rhs[0] = total[4];
            for j in 0..kf {
                gram[dt + j] = total_cross[2 * j + 1];
            }
            let mut tail = vec![0.0f64; 5];
            let mut tail_cross = vec![0.0f64; 2 * kf];
            let mut tails = vec![[0.0f64; 5]; s];
            for j in (0..s).rev() {
                for (x, y) in tail.iter_mut().zip(&sums[j + 1]) {
                    *x += y;
                }
                for (x, y) in tail_cross.iter_mut().zip(&cross[(j + 1) * 2 * kf..(j + 2) * 2 * kf]) {
                    *x += y;
                }
                tails[j].copy_from_slice(&tail);
                let (cj, row) = (problem.t_change[j], (2 + j) * dim);
                gram[2 + j] = tail[2] - cj * tail[1];
                gram[dim + 2 + j] = tail[1] - cj * tail[0];
                rhs[2 + j] = tail[4] - cj * tail[3];
                for l in 0..kf {
                    gram[row + dt + l] = tail_cross[2 * l + 1] - cj * tail_cross[2 * l];
                }
            }
            for j in 0..s {
                let cj = problem.t_change[j];
                for l in j..s {
                    let (cl, tm) = (problem.t_change[l], &tails[l]);
                    gram[(2 + j) * dim + 2 + l] = tm[2] - (cj + cl) * tm[1] + cj * cl * tm[0];
                }
            }
        }
    }
}
