//! What a forecast model must satisfy before it is used, checked when it
//! is read: every length agrees with what it describes and every number is
//! finite and in range. A file that deserialises but breaks one of these (a
//! `beta` shorter than the features panicked in `predict`; a huge Fourier
//! order allocated gigabytes; `y_scale = 0` flagged every reading) is a
//! typed error at load, before anything is allocated from its sizes.

use super::detector::FittedDetector;
use super::model::FittedProphet;
use crate::error::{Error, Result};

/// The most feature columns (Fourier terms and regressors) a model may
/// have: Prophet's defaults have under 50; the bound keeps the design
/// matrix a file or option can make `predict` allocate in proportion.
pub const MAX_FEATURES: u64 = 10_000;

/// The most Monte Carlo draws per forecast (Prophet's default is 1000).
pub const MAX_UNCERTAINTY_SAMPLES: usize = 100_000;

fn corrupt(what: String) -> Error {
    Error::CorruptModel { reason: format!("forecast model: {what}") }
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(corrupt(format!("{name} = {v}, expected a finite number > 0")))
    }
}

fn finite(name: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(corrupt(format!("{name}[{i}] = {} is not finite", values[i]))),
        None => Ok(()),
    }
}

/// The number of feature columns of seasonalities with these Fourier
/// orders and `regressors` regressors, or an error past [`MAX_FEATURES`].
pub(crate) fn feature_count(fourier_orders: impl IntoIterator<Item = u32>, regressors: usize) -> Result<usize> {
    let n = fourier_orders.into_iter().map(|o| 2 * u64::from(o)).sum::<u64>() + regressors as u64;
    if n > MAX_FEATURES {
        return Err(Error::param(
            "fourier_order",
            n / 2,
            &format!("gives {n} feature columns, more than {MAX_FEATURES}"),
        ));
    }
    Ok(n as usize)
}

impl FittedProphet {
    /// Checks a model read from a file (see the module docs).
    pub(crate) fn check(&self) -> Result<()> {
        self.options.validate().map_err(|e| corrupt(format!("options: {e}")))?;
        positive("t_scale", self.t_scale)?;
        positive("y_scale", self.y_scale)?;
        if !(self.history_step.is_finite() && self.history_step >= 0.0) {
            return Err(corrupt(format!("history_step = {} is not a finite number >= 0", self.history_step)));
        }
        if self.history_last < self.start {
            return Err(corrupt("history_last is before start".into()));
        }
        for s in &self.seasonalities {
            positive(&format!("seasonality {:?} period", s.name), s.period)?;
            positive(&format!("seasonality {:?} prior_scale", s.name), s.prior_scale)?;
        }
        for r in &self.regressors {
            finite(&format!("regressor {:?} mu", r.name), &[r.mu])?;
            positive(&format!("regressor {:?} std", r.name), r.std)?;
            positive(&format!("regressor {:?} prior_scale", r.name), r.prior_scale)?;
        }
        let features = feature_count(self.seasonalities.iter().map(|s| s.fourier_order), self.regressors.len())
            .map_err(|e| corrupt(e.to_string()))?;
        // Prophet's design matrix has one column of zeros when there is no feature.
        let width = features.max(1);
        let p = &self.params;
        if p.beta.len() != width {
            return Err(corrupt(format!("beta has {} values, expected {width} (one per feature)", p.beta.len())));
        }
        if self.multiplicative.len() != width {
            return Err(corrupt(format!("multiplicative has {} values, expected {width}", self.multiplicative.len())));
        }
        if self.changepoints_t.is_empty() {
            return Err(corrupt("changepoints_t is empty".into()));
        }
        finite("changepoints_t", &self.changepoints_t)?;
        if self.changepoints_t.windows(2).any(|w| w[1] < w[0]) {
            return Err(corrupt("changepoints_t is not sorted".into()));
        }
        if p.delta.len() != self.changepoints_t.len() {
            return Err(corrupt(format!(
                "delta has {} values, expected {} (one per changepoint)",
                p.delta.len(),
                self.changepoints_t.len()
            )));
        }
        finite("k", &[p.k])?;
        finite("m", &[p.m])?;
        finite("delta", &p.delta)?;
        finite("beta", &p.beta)?;
        if !(p.sigma_obs.is_finite() && p.sigma_obs >= 0.0) {
            return Err(corrupt(format!("sigma_obs = {}, expected a finite number >= 0", p.sigma_obs)));
        }
        Ok(())
    }
}

impl FittedDetector {
    /// Checks a detector read from a file: its settings, its model and its
    /// training statistics.
    pub(crate) fn check(&self) -> Result<()> {
        self.config.validate().map_err(|e| corrupt(format!("config: {e}")))?;
        self.model.check()?;
        let s = &self.stats;
        finite("stats", &[s.mean, s.std, s.min, s.max, s.residual_std])?;
        if s.std < 0.0 || s.residual_std < 0.0 || s.min > s.max || s.first > s.last {
            return Err(corrupt("stats are inconsistent (negative std, min > max or first > last)".into()));
        }
        Ok(())
    }
}
