//! Prophet's posterior predictive simulation for a MAP fit, at the level
//! of its design (scaled time, capacity, floor, the feature terms), shared
//! by [`FittedProphet`](super::FittedProphet) and the Python
//! `anomaly.Prophet`; plus the Fourier features and trends both use.
//!
//! Ahead of the history (scaled time above 1) a slope change happens at
//! each step with probability `S * step`, Laplace-distributed with scale
//! mean|delta|, averaged with the previous step's (Prophet's trend shift
//! matrix); linear trends integrate them twice, logistic trends take them
//! as new changepoints with their continuity offsets (so the curve stays
//! under the cap), flat trends have none. Observation noise
//! `N(0, sigma_obs)` is added. Each sample's future path is drawn from its
//! own stream (seed, sample) and each row's noise from its own (seed, row),
//! so results do not depend on the number of threads.

use rayon::prelude::*;

use super::logistic::Segments;
use super::map::Trend;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Largest number of cells a generated matrix may hold (2^28 doubles, 2 GiB).
const MAX_CELLS: usize = 1 << 28;

fn cells(rows: usize, columns: usize, what: &str) -> Result<usize> {
    rows.checked_mul(columns)
        .filter(|&c| c <= MAX_CELLS)
        .ok_or_else(|| Error::param(what, format!("{rows} x {columns}"), &format!("more than {MAX_CELLS} values")))
}

/// Prophet's Fourier features of timestamps (ns): days since the epoch
/// (whole seconds, as Prophet's integer division), then `sin, cos` of
/// `2 pi (i + 1) t / period` for each order; row-major `n x 2 order`.
pub fn fourier_series(ds: &[i64], period: f64, order: usize) -> Result<Vec<f64>> {
    if !(period.is_finite() && period > 0.0) {
        return Err(Error::param("period", period, "must be a finite number > 0"));
    }
    let width = order.checked_mul(2).ok_or_else(|| Error::param("order", order, "too large"))?;
    let mut out = vec![0.0; cells(ds.len(), width, "fourier_series")?];
    if width == 0 {
        return Ok(out);
    }
    for (row, &d) in out.chunks_mut(width).zip(ds) {
        fourier_row(d, period, row);
    }
    Ok(out)
}

/// One row of [`fourier_series`], `row.len() / 2` orders.
pub(crate) fn fourier_row(ds: i64, period: f64, row: &mut [f64]) {
    let days = ds.div_euclid(crate::time::NANOS_PER_SECOND) as f64 / 86_400.0;
    let x_t = days * std::f64::consts::PI * 2.0;
    for (i, pair) in row.chunks_mut(2).enumerate() {
        let c = x_t * (i + 1) as f64 / period;
        pair[0] = c.sin();
        if let Some(cos) = pair.get_mut(1) {
            *cos = c.cos();
        }
    }
}

/// Prophet's `piecewise_linear`, `piecewise_logistic` or `flat_trend` at
/// scaled times `t` (any order), changepoints sorted.
pub fn trend(
    t: &[f64],
    cap: &[f64],
    growth: Trend,
    (k, m): (f64, f64),
    delta: &[f64],
    changepoints_t: &[f64],
) -> Result<Vec<f64>> {
    if delta.len() != changepoints_t.len() {
        return Err(Error::LengthMismatch {
            field: "deltas".into(),
            expected: changepoints_t.len(),
            found: delta.len(),
        });
    }
    if let Some(row) = changepoints_t.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::Unsorted { field: "changepoints_t".into(), row: row + 1, previous_row: row });
    }
    let active = |ti: f64| changepoints_t.partition_point(|&c| c <= ti);
    Ok(match growth {
        Trend::Flat => vec![m; t.len()],
        Trend::Linear => {
            // Prefix sums of delta and delta * changepoint.
            let mut rate = vec![k];
            let mut offset = vec![m];
            for (d, c) in delta.iter().zip(changepoints_t) {
                rate.push(rate[rate.len() - 1] + d);
                offset.push(offset[offset.len() - 1] - d * c);
            }
            t.iter()
                .map(|&ti| {
                    let a = active(ti);
                    rate[a] * ti + offset[a]
                })
                .collect()
        }
        Trend::Logistic => {
            if cap.len() != t.len() {
                return Err(Error::LengthMismatch { field: "cap".into(), expected: t.len(), found: cap.len() });
            }
            let seg = Segments::new(k, m, delta, changepoints_t);
            t.iter()
                .zip(cap)
                .map(|(&ti, &c)| {
                    let a = active(ti);
                    c / (1.0 + (-seg.rate[a] * (ti - seg.offset[a])).exp())
                })
                .collect()
        }
    })
}

/// One posterior predictive simulation of a fitted model at `t`.
#[derive(Debug, Clone, Copy)]
pub struct Simulation<'a> {
    /// Scaled time of each row.
    pub t: &'a [f64],
    /// Scaled capacity (logistic growth; else ignored).
    pub cap: &'a [f64],
    /// Floor added to the trend (zeros unless logistic with a floor).
    pub floor: &'a [f64],
    /// Trend model.
    pub growth: Trend,
    /// Base rate and offset.
    pub k: f64,
    /// Offset.
    pub m: f64,
    /// Rate changes at `changepoints_t`.
    pub delta: &'a [f64],
    /// Changepoints (scaled, sorted).
    pub changepoints_t: &'a [f64],
    /// Mean step of the history's scaled time (used when one future row).
    pub history_step: f64,
    /// Additive terms in y units, row-major `n x columns`.
    pub xb_a: &'a [f64],
    /// Multiplicative terms (relative), row-major `n x columns`.
    pub xb_m: &'a [f64],
    /// 1, or one column per sample (regressors drawn per sample).
    pub columns: usize,
    /// Observation noise (scaled).
    pub sigma_obs: f64,
    /// Scale of y.
    pub y_scale: f64,
    /// Number of draws.
    pub n_samples: usize,
    /// Random seed.
    pub seed: u64,
}

/// Interval bounds per row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bounds {
    /// Lower bound of yhat.
    pub yhat_lower: Vec<f64>,
    /// Upper bound of yhat.
    pub yhat_upper: Vec<f64>,
    /// Lower bound of the trend.
    pub trend_lower: Vec<f64>,
    /// Upper bound of the trend.
    pub trend_upper: Vec<f64>,
}

/// Future rows' trend shocks: the scaled uncertainty of each future row
/// for each sample (sample-major), with the rows it belongs to.
struct Shocks {
    /// Index of each future row.
    rows: Vec<usize>,
    /// Position of each row among the future ones (usize::MAX when past).
    position: Vec<usize>,
    /// `n_samples x rows.len()`, scaled units, centred for logistic growth.
    values: Vec<f64>,
}

impl Simulation<'_> {
    fn validate(&self) -> Result<()> {
        let n = self.t.len();
        for (field, len) in [("cap", self.cap.len()), ("floor", self.floor.len())] {
            if len != n {
                return Err(Error::LengthMismatch { field: field.into(), expected: n, found: len });
            }
        }
        if self.columns != 1 && self.columns != self.n_samples {
            return Err(Error::param("xb columns", self.columns, "must be 1 or n_samples"));
        }
        let expected = cells(n, self.columns, "xb")?;
        for (field, len) in [("xb_a", self.xb_a.len()), ("xb_m", self.xb_m.len())] {
            if len != expected {
                return Err(Error::LengthMismatch { field: field.into(), expected, found: len });
            }
        }
        cells(n, self.n_samples, "samples")?;
        if let Some(row) = self.t.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { field: "t".into(), row, value: self.t[row] });
        }
        if !(self.sigma_obs.is_finite() && self.sigma_obs >= 0.0 && self.y_scale.is_finite()) {
            return Err(Error::param("sigma_obs", self.sigma_obs, "must be finite and >= 0 (and y_scale finite)"));
        }
        Ok(())
    }

    fn expected(&self) -> Result<Vec<f64>> {
        trend(self.t, self.cap, self.growth, (self.k, self.m), self.delta, self.changepoints_t)
    }

    /// Step and change likelihood of the future: Prophet's `single_diff`
    /// and `S * single_diff`.
    fn future_step(&self, rows: &[usize]) -> (f64, f64) {
        let step = if rows.len() > 1 {
            (self.t[rows[rows.len() - 1]] - self.t[rows[0]]) / (rows.len() - 1) as f64
        } else {
            self.history_step
        };
        (step, self.changepoints_t.len() as f64 * step)
    }

    fn mean_delta(&self) -> f64 {
        self.delta.iter().map(|d| d.abs()).sum::<f64>() / self.delta.len().max(1) as f64 + 1e-8
    }

    fn shocks(&self) -> Shocks {
        let rows: Vec<usize> = (0..self.t.len()).filter(|&i| self.t[i] > 1.0).collect();
        let mut position = vec![usize::MAX; self.t.len()];
        for (j, &i) in rows.iter().enumerate() {
            position[i] = j;
        }
        let nf = rows.len();
        if nf == 0 || self.growth == Trend::Flat || self.n_samples == 0 {
            return Shocks { rows, position, values: Vec::new() };
        }
        let (step, likelihood) = self.future_step(&rows);
        let mean_delta = self.mean_delta();
        // The historical rate and offset where the future starts (logistic).
        let seg = Segments::new(self.k, self.m, self.delta, self.changepoints_t);
        let (rate0, offset0) = (seg.rate[seg.rate.len() - 1], seg.offset[seg.offset.len() - 1]);
        let mut values: Vec<f64> = (0..self.n_samples)
            .into_par_iter()
            .flat_map_iter(|sample| {
                let mut rng = Rng::for_index(self.seed, sample as u64);
                let (mut slope, mut level, mut previous) = (0.0, 0.0, 0.0);
                let (mut rate, mut offset) = (rate0, offset0);
                let rows = &rows;
                (0..nf).map(move |j| {
                    let change = if rng.uniform(0.0, 1.0) < likelihood { laplace(&mut rng, mean_delta) } else { 0.0 };
                    let shift = (previous + change) / 2.0;
                    previous = change;
                    if self.growth == Trend::Logistic {
                        // A new changepoint at this row's time.
                        let ti = self.t[rows[j]];
                        let next = rate + shift;
                        offset += (ti - offset) * (1.0 - rate / next);
                        rate = next;
                        self.cap[rows[j]] / (1.0 + (-rate * (ti - offset)).exp())
                    } else {
                        slope += shift;
                        level += slope;
                        level * step
                    }
                })
            })
            .collect();
        if self.growth == Trend::Logistic {
            // Prophet keeps only the spread of the simulated curves.
            let mut mean = vec![0.0; nf];
            for path in values.chunks(nf) {
                mean.iter_mut().zip(path).for_each(|(a, v)| *a += v);
            }
            mean.iter_mut().for_each(|a| *a /= self.n_samples as f64);
            for path in values.chunks_mut(nf) {
                path.iter_mut().zip(&mean).for_each(|(v, a)| *v -= a);
            }
        }
        Shocks { rows, position, values }
    }

    /// Draws of `(yhat, trend)`, each row-major `n x n_samples`
    /// (Prophet's `predictive_samples`).
    pub fn samples(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        self.validate()?;
        let expected = self.expected()?;
        let shocks = self.shocks();
        let ns = self.n_samples;
        let n = self.t.len();
        let mut yhat = vec![0.0; n * ns];
        let mut trend = vec![0.0; n * ns];
        yhat.par_chunks_mut(ns.max(1)).zip(trend.par_chunks_mut(ns.max(1))).enumerate().for_each(|(i, (y, tr))| {
            self.draw_row(i, &expected, &shocks, y, tr);
        });
        Ok((yhat, trend))
    }

    /// Row `i`'s draws into `yhat` and `trend` (n_samples each).
    fn draw_row(&self, i: usize, expected: &[f64], shocks: &Shocks, yhat: &mut [f64], trend: &mut [f64]) {
        let mut rng = Rng::for_index(self.seed ^ 0x5DEE_CE66_D1CE_4E5B, i as u64);
        let future = shocks.position[i];
        let nf = shocks.rows.len();
        let sigma = self.sigma_obs * self.y_scale;
        for sample in 0..self.n_samples {
            let shift = if future != usize::MAX && !shocks.values.is_empty() {
                shocks.values[sample * nf + future]
            } else {
                0.0
            };
            let column = if self.columns == 1 { 0 } else { sample };
            let cell = i * self.columns + column;
            let tr = (expected[i] + shift) * self.y_scale + self.floor[i];
            trend[sample] = tr;
            yhat[sample] = tr * (1.0 + self.xb_m[cell]) + self.xb_a[cell] + rng.normal_fast() * sigma;
        }
    }

    /// Prophet's Monte Carlo interval at `width`: numpy's linear
    /// percentiles of the draws. Rows where only the noise varies take the
    /// band from the noise's order statistics directly ([`noise_band`]).
    pub fn intervals(&self, width: f64) -> Result<Bounds> {
        self.validate()?;
        check_width(width)?;
        let expected = self.expected()?;
        let shocks = self.shocks();
        let (lo, hi) = (100.0 * (1.0 - width) / 2.0, 100.0 * (1.0 + width) / 2.0);
        let ns = self.n_samples;
        let sigma = self.sigma_obs * self.y_scale;
        let bounds: Vec<[f64; 4]> = (0..self.t.len())
            .into_par_iter()
            .map_init(
                || (vec![0.0; ns], vec![0.0; ns]),
                |(yhat, trend), i| {
                    let shifted = shocks.position[i] != usize::MAX && !shocks.values.is_empty();
                    if !shifted && self.columns == 1 {
                        let mut rng = Rng::for_index(self.seed ^ 0x5DEE_CE66_D1CE_4E5B, i as u64);
                        let tr = expected[i] * self.y_scale + self.floor[i];
                        let center = tr * (1.0 + self.xb_m[i]) + self.xb_a[i];
                        if let Some((zlo, zhi)) = noise_band(&mut rng, ns, lo, hi) {
                            return [center + sigma * zlo, center + sigma * zhi, tr, tr];
                        }
                    }
                    self.draw_row(i, &expected, &shocks, yhat, trend);
                    if ns == 0 {
                        return [f64::NAN; 4];
                    }
                    let (ylo, yhi) = two_percentiles(yhat, lo, hi);
                    let (tlo, thi) = if shifted { two_percentiles(trend, lo, hi) } else { (trend[0], trend[0]) };
                    [ylo, yhi, tlo, thi]
                },
            )
            .collect();
        Ok(collect_bounds(bounds))
    }

    /// The deterministic band: Gaussian noise in the history; ahead, the
    /// variance of the simulated slope changes added (the level `j` steps
    /// ahead sums them with weights `q + 1/2`, `q < j`) and a normal
    /// quantile taken. Logistic trends scale it by the curve's local slope.
    /// A row's band does not depend on the other rows predicted with it.
    pub fn analytic(&self, width: f64) -> Result<Bounds> {
        self.validate()?;
        check_width(width)?;
        let expected = self.expected()?;
        let step = self.history_step;
        let likelihood = self.changepoints_t.len() as f64 * step;
        let mean_delta = self.mean_delta();
        let z = normal_quantile((1.0 + width) / 2.0);
        let sigma = self.sigma_obs * self.y_scale;
        let shock_var = likelihood.min(1.0) * 2.0 * mean_delta * mean_delta;
        let bounds = (0..self.t.len())
            .map(|i| {
                let ti = self.t[i];
                let mut trend_sd = if ti > 1.0 && self.growth != Trend::Flat && step > 0.0 {
                    let j = ((ti - 1.0) / step).round().max(1.0);
                    let weights = (j - 1.0) * j * (2.0 * j - 1.0) / 6.0 + (j - 1.0) * j / 2.0 + j / 4.0;
                    (shock_var * weights).sqrt() * step * self.y_scale
                } else {
                    0.0
                };
                if self.growth == Trend::Logistic && self.cap[i] > 0.0 {
                    let s = expected[i] / self.cap[i];
                    trend_sd *= self.cap[i] * s * (1.0 - s);
                }
                let tr = expected[i] * self.y_scale + self.floor[i];
                let yhat = tr * (1.0 + self.xb_m[i * self.columns]) + self.xb_a[i * self.columns];
                let scale = 1.0 + self.xb_m[i * self.columns];
                let sd = (sigma * sigma + (trend_sd * scale).powi(2)).sqrt();
                [yhat - z * sd, yhat + z * sd, tr - z * trend_sd, tr + z * trend_sd]
            })
            .collect();
        Ok(collect_bounds(bounds))
    }
}

fn check_width(width: f64) -> Result<()> {
    if width > 0.0 && width < 1.0 {
        Ok(())
    } else {
        Err(Error::param("interval_width", width, "must be in (0, 1)"))
    }
}

fn collect_bounds(rows: Vec<[f64; 4]>) -> Bounds {
    let mut b = Bounds::default();
    for r in rows {
        b.yhat_lower.push(r[0]);
        b.yhat_upper.push(r[1]);
        b.trend_lower.push(r[2]);
        b.trend_upper.push(r[3]);
    }
    b
}

pub(crate) fn laplace(rng: &mut Rng, scale: f64) -> f64 {
    let u = rng.uniform(-0.5, 0.5);
    -scale * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
}

/// The `lo` and `hi` percentiles (numpy's linear rule) of `samples`
/// standard normal draws, drawn from their exact joint distribution
/// instead of from the draws: the uniform order statistics are a Markov
/// chain (the k-th of n is Beta(k, n + 1 - k); given it, the rest are
/// uniform above it), mapped through the normal quantile function. Where
/// only observation noise varies (the history, flat growth), this is
/// Prophet's Monte Carlo band in distribution at O(1) cost per row. `None`
/// when the percentiles are too close for the chain (then draw).
pub(crate) fn noise_band(rng: &mut Rng, samples: usize, lo: f64, hi: f64) -> Option<(f64, f64)> {
    let n = samples as f64;
    let position = |q: f64| {
        let pos = q / 100.0 * (n - 1.0);
        (pos.floor(), pos - pos.floor())
    };
    let ((lo_at, lo_frac), (hi_at, hi_frac)) = (position(lo), position(hi));
    // 1-based ranks k1 < k1 + 1 < k3 < k3 + 1 <= n.
    let (k1, k3) = (lo_at + 1.0, hi_at + 1.0);
    if samples < 4 || k3 - (k1 + 1.0) < 1.0 || k3 + 1.0 > n {
        return None;
    }
    // The smallest of m uniforms on (0, 1): 1 - V^(1/m).
    let next_min = |rng: &mut Rng, m: f64| -(rng.uniform(f64::MIN_POSITIVE, 1.0).ln() / m).exp_m1();
    let u1 = rng.beta(k1, n + 1.0 - k1);
    let u2 = u1 + (1.0 - u1) * next_min(rng, n - k1);
    let u3 = u2 + (1.0 - u2) * rng.beta(k3 - k1 - 1.0, n - k3 + 1.0);
    let u4 = u3 + (1.0 - u3) * next_min(rng, n - k3);
    let z = |u: f64| normal_quantile(u.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON));
    let (z1, z2, z3, z4) = (z(u1), z(u2), z(u3), z(u4));
    Some((z1 + (z2 - z1) * lo_frac, z3 + (z4 - z3) * hi_frac))
}

/// numpy's linear percentiles `lo` and `hi` (in percent) of `values`
/// (reordered), by selection rather than a full sort.
pub(crate) fn two_percentiles(values: &mut [f64], lo: f64, hi: f64) -> (f64, f64) {
    let n = values.len();
    let position = |q: f64| {
        let pos = q / 100.0 * (n - 1) as f64;
        (pos.floor() as usize, pos - pos.floor())
    };
    let ((lo_at, lo_frac), (hi_at, hi_frac)) = (position(lo), position(hi));
    // Select the lower index, then the upper one inside the right-hand part.
    let (_, &mut a, rest) = values.select_nth_unstable_by(lo_at, f64::total_cmp);
    let lower = if lo_frac > 0.0 {
        let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
        a + (b - a) * lo_frac
    } else {
        a
    };
    let upper = if hi_at == lo_at {
        let b = if hi_frac > 0.0 { rest.iter().copied().fold(f64::INFINITY, f64::min) } else { a };
        a + (b - a) * hi_frac
    } else {
        let (_, &mut c, tail) = rest.select_nth_unstable_by(hi_at - lo_at - 1, f64::total_cmp);
        let d = if hi_frac > 0.0 { tail.iter().copied().fold(f64::INFINITY, f64::min) } else { c };
        c + (d - c) * hi_frac
    };
    (lower, upper)
}

/// Inverse of the standard normal CDF (Acklam's rational approximation,
/// relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p > 1.0 - 0.02425 {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_band_has_the_monte_carlo_distribution() {
        // The band from the order-statistic chain against the band from
        // 1000 actual draws, over 20,000 rows each: means within 4 standard
        // errors, standard deviations within 4%.
        let rows = 20_000;
        let (mut rng_a, mut rng_b) = (Rng::new(1), Rng::new(2));
        let mut chain = (Vec::new(), Vec::new());
        let mut drawn = (Vec::new(), Vec::new());
        let mut values = vec![0.0; 1000];
        for _ in 0..rows {
            let (lo, hi) = noise_band(&mut rng_a, 1000, 2.5, 97.5).expect("chain applies");
            chain.0.push(lo);
            chain.1.push(hi);
            values.iter_mut().for_each(|v| *v = rng_b.normal_fast());
            let (lo, hi) = two_percentiles(&mut values, 2.5, 97.5);
            drawn.0.push(lo);
            drawn.1.push(hi);
        }
        let stats = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
            (mean, sd)
        };
        for (a, b) in [(&chain.0, &drawn.0), (&chain.1, &drawn.1)] {
            let ((ma, sa), (mb, sb)) = (stats(a), stats(b));
            let se = (sa * sa / rows as f64 + sb * sb / rows as f64).sqrt();
            assert!((ma - mb).abs() < 4.0 * se, "means {ma} {mb} (se {se})");
            assert!((sa / sb - 1.0).abs() < 0.04, "sds {sa} {sb}");
        }
        assert!(noise_band(&mut rng_a, 3, 2.5, 97.5).is_none());
    }

    #[test]
    fn tail_percentiles_match_selection() {
        let mut rng = Rng::new(7);
        for &(n, lo, hi) in
            &[(1000, 2.5, 97.5), (1000, 10.0, 90.0), (200, 0.5, 99.5), (37, 5.0, 95.0), (1000, 25.0, 75.0)]
        {
            let values: Vec<f64> = (0..n).map(|_| rng.normal_fast()).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let numpy = |q: f64| {
                let pos = q / 100.0 * (n - 1) as f64;
                let (i, frac) = (pos.floor() as usize, pos - pos.floor());
                if frac > 0.0 {
                    sorted[i] + (sorted[i + 1] - sorted[i]) * frac
                } else {
                    sorted[i]
                }
            };
            let got = two_percentiles(&mut values.clone(), lo, hi);
            assert_eq!(got, (numpy(lo), numpy(hi)), "n {n} lo {lo} hi {hi}");
        }
    }

    #[test]
    fn normal_quantiles() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.9) - 1.281_551_565_544_601).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874_040_841).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-12);
    }
}
