//! Prophet's options, with Prophet's names and defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Trend model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Growth {
    /// Piecewise linear trend with changepoints.
    Linear,
    /// A constant level.
    Flat,
}

/// How seasonalities and regressors combine with the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `yhat = trend + seasonal`.
    Additive,
    /// `yhat = trend * (1 + seasonal)`.
    Multiplicative,
}

/// A built-in seasonality setting: `"auto"`, on/off, or a Fourier order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SeasonalitySetting {
    /// `true` / `false`.
    Enabled(bool),
    /// A Fourier order.
    Order(u32),
    /// `"auto"` (Prophet's rules on the history's span and spacing).
    Auto(crate::traits::Auto),
}

/// A seasonality added with `add_seasonality`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonality {
    /// Component name.
    pub name: String,
    /// Period in days.
    pub period: f64,
    /// Number of Fourier pairs.
    pub fourier_order: u32,
    /// Prior scale (defaults to `seasonality_prior_scale`).
    pub prior_scale: Option<f64>,
    /// Mode (defaults to `seasonality_mode`).
    pub mode: Option<Mode>,
}

/// An extra regressor added with `add_regressor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regressor {
    /// Column name.
    pub name: String,
    /// Prior scale (defaults to `holidays_prior_scale`, 10).
    pub prior_scale: Option<f64>,
    /// Standardize: `None` = Prophet's `"auto"` (not binary 0/1 columns).
    pub standardize: Option<bool>,
    /// Mode (defaults to `seasonality_mode`).
    pub mode: Option<Mode>,
}

/// Prophet's constructor arguments (the supported subset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProphetOptions {
    /// `"linear"` or `"flat"`.
    pub growth: Growth,
    /// Explicit changepoints (nanoseconds); `None` = an even grid.
    pub changepoints: Option<Vec<i64>>,
    /// Size of the changepoint grid.
    pub n_changepoints: usize,
    /// Share of the history the grid covers.
    pub changepoint_range: f64,
    /// Yearly seasonality (period 365.25 days, default order 10).
    pub yearly_seasonality: SeasonalitySetting,
    /// Weekly seasonality (period 7, default order 3).
    pub weekly_seasonality: SeasonalitySetting,
    /// Daily seasonality (period 1, default order 4).
    pub daily_seasonality: SeasonalitySetting,
    /// Default mode of seasonalities and regressors.
    pub seasonality_mode: Mode,
    /// Default prior scale of seasonalities.
    pub seasonality_prior_scale: f64,
    /// Default prior scale of regressors (Prophet's `holidays_prior_scale`).
    pub holidays_prior_scale: f64,
    /// Laplace scale of changepoint rate changes.
    pub changepoint_prior_scale: f64,
    /// Width of the uncertainty intervals.
    pub interval_width: f64,
    /// Monte Carlo draws for intervals (0 = no intervals).
    pub uncertainty_samples: usize,
    /// Seasonalities added with `add_seasonality`, in order.
    pub seasonalities: Vec<Seasonality>,
    /// Regressors added with `add_regressor`, in order.
    pub regressors: Vec<Regressor>,
}

impl Default for ProphetOptions {
    fn default() -> Self {
        let auto = SeasonalitySetting::Auto(crate::traits::Auto::Auto);
        ProphetOptions {
            growth: Growth::Linear,
            changepoints: None,
            n_changepoints: 25,
            changepoint_range: 0.8,
            yearly_seasonality: auto,
            weekly_seasonality: auto,
            daily_seasonality: auto,
            seasonality_mode: Mode::Additive,
            seasonality_prior_scale: 10.0,
            holidays_prior_scale: 10.0,
            changepoint_prior_scale: 0.05,
            interval_width: 0.8,
            uncertainty_samples: 1000,
            seasonalities: Vec::new(),
            regressors: Vec::new(),
        }
    }
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be a finite number > 0"))
    }
}

impl ProphetOptions {
    /// Checks every option, naming the first that is out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.changepoint_range > 0.0 && self.changepoint_range <= 1.0) {
            return Err(Error::param("changepoint_range", self.changepoint_range, "must be in (0, 1]"));
        }
        positive("seasonality_prior_scale", self.seasonality_prior_scale)?;
        positive("holidays_prior_scale", self.holidays_prior_scale)?;
        positive("changepoint_prior_scale", self.changepoint_prior_scale)?;
        if !(self.interval_width > 0.0 && self.interval_width < 1.0) {
            return Err(Error::param("interval_width", self.interval_width, "must be in (0, 1)"));
        }
        if self.uncertainty_samples > super::MAX_UNCERTAINTY_SAMPLES {
            return Err(Error::param(
                "uncertainty_samples",
                self.uncertainty_samples,
                &format!("must be at most {}", super::MAX_UNCERTAINTY_SAMPLES),
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        for s in &self.seasonalities {
            if s.name.is_empty() || names.contains(&s.name.as_str()) {
                return Err(Error::param("seasonality name", &s.name, "must be non-empty and unique"));
            }
            names.push(&s.name);
            positive("period", s.period)?;
            if s.fourier_order == 0 {
                return Err(Error::param("fourier_order", 0, "must be at least 1"));
            }
            if let Some(p) = s.prior_scale {
                positive("prior_scale", p)?;
            }
        }
        for r in &self.regressors {
            if r.name.is_empty()
                || names.contains(&r.name.as_str())
                || ["ds", "y", "t", "trend"].contains(&r.name.as_str())
            {
                return Err(Error::param(
                    "regressor name",
                    &r.name,
                    "must be non-empty, unique and not a reserved name",
                ));
            }
            names.push(&r.name);
            if let Some(p) = r.prior_scale {
                positive("prior_scale", p)?;
            }
        }
        Ok(())
    }
}
