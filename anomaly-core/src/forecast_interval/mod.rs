//! Prophet's forecasting model in pure Rust, and the interval detector the
//! plant team runs on it.
//!
//! # The model (as `prophet.Prophet`, MAP fit)
//! `y(t) = trend(t) * (1 + multiplicative(t)) + additive(t) + noise`, in
//! Prophet's scaled units: `y / max|y|` and time scaled to [0, 1] over the
//! history. The trend is piecewise linear with rate changes `delta` at
//! changepoints (an even grid of history rows over the first
//! `changepoint_range`, numpy's rounding) or flat; seasonalities are Fourier
//! series over days since the Unix epoch (`sin, cos` pairs per order);
//! extra regressors are standardised columns. Priors as Prophet's Stan
//! model: `k, m ~ N(0, 5)`, `delta ~ Laplace(0, changepoint_prior_scale)`,
//! `sigma_obs ~ N(0, 0.5)`, `beta ~ N(0, prior_scale)`.
//!
//! The fit minimises the same objective Stan's optimiser does (constants
//! dropped, `log sigma_obs` without Jacobian) from the same initial point
//! (the line through the first and last points), but solves it exactly
//! instead of by L-BFGS: additive models are a convex quadratic plus the
//! Laplace prior's L1 term (coordinate descent with an active-set Newton
//! finish on the Gram matrix, closed-form noise level); multiplicative
//! models are bilinear and converge in a few proximal Gauss-Newton steps.
//! Stan's L-BFGS stops short at the Laplace kinks and along flat trend
//! ridges, so our objective is at most Prophet's, and forecasts agree
//! within the flatness of the optimum, not bit for bit.
//!
//! # Intervals
//! - [`Intervals::Simulated`]: Prophet's method. In the future (scaled time
//!   above 1) a slope change happens at each step with probability
//!   `n_changepoints * step`, Laplace-distributed with scale mean|delta|,
//!   averaged over neighbouring steps and integrated twice; observation
//!   noise `N(0, sigma_obs)` is added; the band is the
//!   `(1 +- interval_width) / 2` quantiles of `uncertainty_samples` draws.
//!   Prophet draws unseeded; here a seed makes it reproducible.
//! - [`Intervals::Analytic`]: deterministic. In the history the band is
//!   `yhat +- z sigma_obs` (the limit of Prophet's own there); ahead, the
//!   variance of the simulated trend changes is added and a normal quantile
//!   taken.
//!
//! # The detector
//! [`MultiDetector`] fits one model per process variable from long-format
//! readings (in parallel) and flags a reading outside `[yhat_lower,
//! yhat_upper]` or with `|y - yhat| > k_sigma * std(training residuals)`
//! (defaults: interval 0.95, `k_sigma` 2, multiplicative daily and weekly
//! seasonality, the plant team's settings). The score is the plant team's:
//! above the band `(y - upper) / (upper - yhat) * 50`, below it
//! `(lower - y) / (yhat - lower) * 50`, the larger of that and
//! `|residual| / std * 20`, clipped to 0..100 ([`anomaly_score`]). Bands
//! are analytic (deterministic) unless a Monte Carlo seed is set. Scoring a
//! new reading evaluates the stored model; nothing is refitted.

mod check;
mod detector;
mod gauss_newton;
mod logistic;
mod map;
mod model;
mod objective;
mod options;
mod process;
mod simulate;

pub use check::{MAX_FEATURES, MAX_UNCERTAINTY_SAMPLES};
pub use detector::{
    anomaly_score, Detection, DetectorConfig, FittedDetector, LongColumns, LongDetection, LongReadings, MultiDetector,
    VariableStats, INDEX_FILE,
};
pub use map::{fit_map, fit_map_many, MapFit, StanData, Trend};
pub use model::{FittedProphet, Forecast, History, Intervals, ProphetParams, RegressorTerm, SeasonalityTerm};
pub use options::{Growth, Mode, ProphetOptions, Regressor, Seasonality, SeasonalitySetting};
pub use process::{simulate_process, ProcessReadings, ProcessSpec, MAX_READINGS};
pub use simulate::{fourier_series, normal_quantile, trend, Bounds, Simulation};
