//! The MAP fit of Prophet's Stan model from its data block: the entry point
//! for callers that assemble Prophet's design themselves (the Python
//! `anomaly.Prophet`, which builds holidays, conditional seasonalities and
//! regressors exactly as Prophet does) and for [`FittedProphet`].
//!
//! [`StanData`] holds what Prophet passes to Stan (`t, y, cap, X, sigmas,
//! s_a, s_m, t_change, tau, trend_indicator`), [`fit_map`] returns the
//! parameters at the exact optimum of the same objective Stan's optimiser
//! climbs, starting from Prophet's `init` (a warm start when it comes from
//! an earlier fit).
//!
//! [`FittedProphet`]: super::FittedProphet

use rayon::prelude::*;

use super::model::ProphetParams;
use super::objective::Problem;
use crate::error::{Error, Result};

/// Prophet's trend models (Stan's `trend_indicator`: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// Piecewise linear.
    Linear,
    /// Piecewise logistic, saturating at `cap`.
    Logistic,
    /// Constant.
    Flat,
}

impl Trend {
    /// From Stan's `trend_indicator`.
    pub fn from_indicator(indicator: i64) -> Result<Trend> {
        match indicator {
            0 => Ok(Trend::Linear),
            1 => Ok(Trend::Logistic),
            2 => Ok(Trend::Flat),
            other => Err(Error::param("trend_indicator", other, "must be 0 (linear), 1 (logistic) or 2 (flat)")),
        }
    }
}

/// Prophet's Stan data, in its scaled units.
#[derive(Debug, Clone, PartialEq)]
pub struct StanData {
    /// Scaled time, sorted.
    pub t: Vec<f64>,
    /// Scaled observations.
    pub y: Vec<f64>,
    /// Scaled capacity (logistic growth; ignored otherwise).
    pub cap: Vec<f64>,
    /// Features, row-major `n x n_features`.
    pub x: Vec<f64>,
    /// Number of feature columns.
    pub n_features: usize,
    /// Prior scale of each feature.
    pub sigmas: Vec<f64>,
    /// Additive indicator of each feature.
    pub s_a: Vec<f64>,
    /// Multiplicative indicator of each feature.
    pub s_m: Vec<f64>,
    /// Changepoint times, sorted (Prophet passes `[0]` when there are none).
    pub t_change: Vec<f64>,
    /// Laplace scale of the rate changes (`changepoint_prior_scale`).
    pub tau: f64,
    /// Trend model.
    pub trend: Trend,
}

/// Parameters at the optimum and the objective there.
#[derive(Debug, Clone, PartialEq)]
pub struct MapFit {
    /// `k, m, delta, sigma_obs, beta`.
    pub params: ProphetParams,
    /// Negative log posterior (Stan's, constants dropped).
    pub objective: f64,
}

fn finite(field: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(Error::NonFinite { field: field.into(), row, value: values[row] }),
        None => Ok(()),
    }
}

fn length(field: &str, values: usize, expected: usize) -> Result<()> {
    if values == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch { field: field.into(), expected, found: values })
    }
}

fn sorted(field: &str, values: &[f64]) -> Result<()> {
    match values.windows(2).position(|w| w[1] < w[0]) {
        Some(row) => Err(Error::Unsorted { field: field.into(), row: row + 1, previous_row: row }),
        None => Ok(()),
    }
}

impl StanData {
    /// Checks every size against `t` and `n_features`, and every value.
    pub fn validate(&self) -> Result<()> {
        let n = self.t.len();
        if n == 0 {
            return Err(Error::Empty { what: "t".into() });
        }
        length("y", self.y.len(), n)?;
        length("cap", self.cap.len(), n)?;
        let k = self.n_features;
        length("X", self.x.len(), n.checked_mul(k).ok_or_else(|| Error::param("n_features", k, "too large"))?)?;
        length("sigmas", self.sigmas.len(), k)?;
        length("s_a", self.s_a.len(), k)?;
        length("s_m", self.s_m.len(), k)?;
        for (field, values) in
            [("t", &self.t), ("y", &self.y), ("X", &self.x), ("t_change", &self.t_change), ("s_a", &self.s_a)]
        {
            finite(field, values)?;
        }
        finite("s_m", &self.s_m)?;
        sorted("t", &self.t)?;
        sorted("t_change", &self.t_change)?;
        if let Some(j) = self.sigmas.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::param("sigmas", self.sigmas[j], "every prior scale must be a finite number > 0"));
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(Error::param("tau", self.tau, "must be a finite number > 0"));
        }
        if self.trend == Trend::Logistic {
            if let Some(row) = self.cap.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
                return Err(Error::param(
                    "cap",
                    self.cap[row],
                    "scaled capacity must be finite and > 0 (cap above floor)",
                ));
            }
        }
        Ok(())
    }

    /// Checks that `init` has this problem's shape and finite values.
    fn check_init(&self, init: &ProphetParams) -> Result<()> {
        length("init delta", init.delta.len(), self.t_change.len())?;
        length("init beta", init.beta.len(), self.n_features)?;
        finite("init", &[init.k, init.m])?;
        finite("init delta", &init.delta)?;
        finite("init beta", &init.beta)
    }
}

/// The exact MAP of Prophet's model for `data`, from `init`.
pub fn fit_map(data: &StanData, init: &ProphetParams) -> Result<MapFit> {
    data.validate()?;
    data.check_init(init)?;
    // A column in neither group contributes nothing to Stan's mean.
    let used: Vec<bool> = data.s_a.iter().zip(&data.s_m).map(|(a, m)| *a != 0.0 || *m != 0.0).collect();
    let x: Vec<f64> = if used.iter().all(|&u| u) {
        data.x.clone()
    } else {
        data.x
            .chunks(data.n_features.max(1))
            .flat_map(|row| row.iter().zip(&used).map(|(v, &u)| if u { *v } else { 0.0 }))
            .collect()
    };
    let multiplicative: Vec<bool> = data.s_m.iter().map(|m| *m != 0.0).collect();
    let problem = Problem {
        t: &data.t,
        y: &data.y,
        x: &x,
        n_features: data.n_features,
        sigmas: &data.sigmas,
        multiplicative: &multiplicative,
        t_change: &data.t_change,
        active: Problem::count_active(&data.t, &data.t_change),
        tau: data.tau,
        flat: data.trend == Trend::Flat,
        cap: (data.trend == Trend::Logistic).then_some(&data.cap[..]),
    };
    let s = data.t_change.len();
    let mut x0 = vec![init.k, init.m];
    x0.extend(&init.delta);
    x0.push(if init.sigma_obs > 0.0 && init.sigma_obs.is_finite() { init.sigma_obs.ln() } else { 0.0 });
    x0.extend(&init.beta);
    let warm = init.delta.iter().chain(&init.beta).any(|&v| v != 0.0);
    let p = solve(&problem, x0, warm);
    let value = problem.value(&p);
    if !value.is_finite() {
        return Err(Error::param(
            "data",
            "the model",
            "the objective is not finite at the solution (check cap and scales)",
        ));
    }
    Ok(MapFit {
        params: ProphetParams {
            k: p[0],
            m: p[1],
            delta: p[2..2 + s].to_vec(),
            sigma_obs: p[2 + s].exp(),
            beta: p[3 + s..].to_vec(),
        },
        objective: value,
    })
}

/// Solves many problems in parallel (cross-validation's cutoffs).
pub fn fit_map_many(problems: &[(StanData, ProphetParams)]) -> Vec<Result<MapFit>> {
    problems.par_iter().map(|(data, init)| fit_map(data, init)).collect()
}

/// The optimum from `x0` (`[k, m, delta, log_sigma, beta]`). Additive
/// linear or flat models are convex: coordinate descent with active sets
/// on the Gram matrix reaches the unique optimum from anywhere.
/// Multiplicative ones start from the additive optimum with its seasonal
/// terms turned relative to the trend (close to the multiplicative one);
/// a warm start (`warm`: an earlier fit's parameters) is tried as well and
/// the better optimum kept. Logistic growth runs Gauss-Newton from `x0`.
pub(crate) fn solve(problem: &Problem<'_>, x0: Vec<f64>, warm: bool) -> Vec<f64> {
    let s = problem.t_change.len();
    let objective = |p: &[f64]| problem.value(p);
    if let Some(cap) = problem.cap {
        // Logistic fits are not convex and Prophet's initial point can sit
        // in a poor basin; a second start comes from the piecewise-linear
        // fit of logit(y / cap), whose rates and intercept are the logistic
        // trend's own parameters (its continuity offsets make the curves
        // equal). The better optimum is kept.
        // The two starts are independent: solved side by side.
        let logit_start = || -> Option<Vec<f64>> {
            let z: Vec<f64> = problem
                .y
                .iter()
                .zip(cap)
                .map(|(y, c)| {
                    let p = (y / c).clamp(0.05, 0.95);
                    (p / (1.0 - p)).ln()
                })
                .collect();
            let flags = vec![false; problem.multiplicative.len()];
            let linear =
                Problem { y: &z, cap: None, multiplicative: &flags, active: problem.active.clone(), ..*problem };
            let gram = linear.gram()?;
            let mut start = vec![0.0; x0.len()];
            let n = z.len();
            start[0] = (z[n - 1] - z[0]) / (problem.t[n - 1] - problem.t[0]).max(1e-12);
            start[1] = z[0] - start[0] * problem.t[0];
            let fitted = linear.solve_additive(&gram, start);
            if fitted[0].abs() < 1e-9 || !fitted.iter().all(|v| v.is_finite()) {
                return None;
            }
            let mut start = x0.clone();
            start[0] = fitted[0];
            start[1] = -fitted[1] / fitted[0];
            start[2..2 + s].copy_from_slice(&fitted[2..2 + s]);
            start[3 + s..].iter_mut().for_each(|b| *b = 0.0);
            Some(problem.solve_logistic(start, 500))
        };
        let (from_init, from_logit) = rayon::join(|| problem.solve_logistic(x0.clone(), 500), logit_start);
        let Some(from_logit) = from_logit else { return from_init };
        return if objective(&from_logit) < objective(&from_init) { from_logit } else { from_init };
    }
    if let Some(gram) = problem.gram() {
        return problem.solve_additive(&gram, x0);
    }
    let additive_flags = vec![false; problem.multiplicative.len()];
    let additive = Problem { multiplicative: &additive_flags, active: problem.active.clone(), ..*problem };
    let from_additive = additive.gram().map(|gram| {
        let mut p = additive.solve_additive(&gram, x0.clone());
        let mut trend = Vec::new();
        problem.trend(&p, &mut trend);
        let level = trend.iter().sum::<f64>() / trend.len() as f64;
        if level.abs() > 1e-9 {
            for (j, &m) in problem.multiplicative.iter().enumerate() {
                if m {
                    p[3 + s + j] /= level;
                }
            }
        }
        p
    });
    let start = from_additive.unwrap_or_else(|| x0.clone());
    let (best, other) =
        rayon::join(|| problem.solve_gauss_newton(start, 200), || warm.then(|| problem.solve_gauss_newton(x0, 200)));
    match other {
        Some(other) if objective(&other) < objective(&best) => other,
        _ => best,
    }
}
