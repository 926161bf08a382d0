//! Fitting Prophet's model and forecasting with it.

use serde::{Deserialize, Serialize};

use super::map::{solve, Trend};
use super::objective::Problem;
use super::options::{Growth, Mode, ProphetOptions, SeasonalitySetting};
use super::simulate::{fourier_row, trend, Simulation};
use crate::error::{Error, Result};
use crate::persist::Persist;

/// Observations to fit: timestamps in nanoseconds (naive wall clock),
/// sorted; `y` may hold NaN (missing, dropped as Prophet does);
/// one column per extra regressor, finite on every row.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    ds: Vec<i64>,
    y: Vec<f64>,
    regressors: Vec<(String, Vec<f64>)>,
}

impl History {
    /// Validates a history.
    pub fn new(ds: Vec<i64>, y: Vec<f64>, regressors: Vec<(String, Vec<f64>)>) -> Result<Self> {
        check_ds(&ds)?;
        if y.len() != ds.len() {
            return Err(Error::LengthMismatch { field: "y".into(), expected: ds.len(), found: y.len() });
        }
        if let Some(row) = y.iter().position(|v| v.is_infinite()) {
            return Err(Error::NonFinite { field: "y".into(), row, value: y[row] });
        }
        check_regressors(&regressors, ds.len())?;
        let observed = y.iter().filter(|v| !v.is_nan()).count();
        if observed < 2 {
            return Err(Error::Shape {
                field: "y".into(),
                expected: "at least 2 non-NaN rows".into(),
                found: format!("{observed}"),
            });
        }
        Ok(History { ds, y, regressors })
    }
}

/// Timestamps must be sorted; equal ones are allowed, as in Prophet (two
/// readings at one time are two observations of the same point).
fn check_ds(ds: &[i64]) -> Result<()> {
    if ds.is_empty() {
        return Err(Error::Empty { what: "ds".into() });
    }
    if let Some(row) = ds.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::Unsorted { field: "ds".into(), row: row + 1, previous_row: row });
    }
    Ok(())
}

fn check_regressors(regressors: &[(String, Vec<f64>)], n: usize) -> Result<()> {
    for (name, values) in regressors {
        if values.len() != n {
            return Err(Error::LengthMismatch { field: name.clone(), expected: n, found: values.len() });
        }
        if let Some(row) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { field: name.clone(), row, value: values[row] });
        }
    }
    Ok(())
}

/// The columns named `names` from `given`, restricted to `rows` when set;
/// a missing one is an unknown column listing those available.
fn named_columns<'a>(
    names: impl Iterator<Item = &'a str>,
    given: &[(String, Vec<f64>)],
    rows: Option<&[usize]>,
) -> Result<Vec<Vec<f64>>> {
    names
        .map(|name| {
            let column = given.iter().find(|(n, _)| n == name).map(|(_, v)| v).ok_or_else(|| Error::UnknownColumn {
                name: name.to_owned(),
                available: given.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            })?;
            Ok(match rows {
                Some(rows) => rows.iter().map(|&i| column[i]).collect(),
                None => column.clone(),
            })
        })
        .collect()
}

/// A seasonality as fitted: built-in ones resolved from their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalityTerm {
    /// Component name.
    pub name: String,
    /// Period in days.
    pub period: f64,
    /// Fourier pairs.
    pub fourier_order: u32,
    /// Prior scale.
    pub prior_scale: f64,
    /// Mode.
    pub mode: Mode,
}

/// A regressor as fitted, with its standardisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressorTerm {
    /// Column name.
    pub name: String,
    /// Mean subtracted.
    pub mu: f64,
    /// Scale divided by.
    pub std: f64,
    /// Prior scale.
    pub prior_scale: f64,
    /// Mode.
    pub mode: Mode,
}

/// The fitted parameters, in Prophet's scaled units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProphetParams {
    /// Base growth rate.
    pub k: f64,
    /// Offset.
    pub m: f64,
    /// Rate changes at the changepoints.
    pub delta: Vec<f64>,
    /// Observation noise.
    pub sigma_obs: f64,
    /// Feature coefficients.
    pub beta: Vec<f64>,
}

/// A fitted Prophet model: plain data, everything forecasting needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedProphet {
    /// The options it was fitted with.
    pub options: ProphetOptions,
    /// First timestamp of the history (ns).
    pub start: i64,
    /// Span of the history (ns).
    pub t_scale: f64,
    /// Scale of y (Prophet's `absmax` scaling).
    pub y_scale: f64,
    /// Changepoint times in scaled time (a dummy `[0]` when there are none).
    pub changepoints_t: Vec<f64>,
    /// Seasonalities, in Prophet's order.
    pub seasonalities: Vec<SeasonalityTerm>,
    /// Extra regressors, in order.
    pub regressors: Vec<RegressorTerm>,
    /// Fitted parameters.
    pub params: ProphetParams,
    /// Last timestamp of the data passed to fit (NaN rows included).
    pub history_last: i64,
    /// Mean step of the scaled history time.
    pub history_step: f64,
    /// Objective (negative log posterior) at the optimum; NaN when there
    /// was none (a constant series skips the optimiser, as in Prophet),
    /// saved as `null`.
    #[serde(with = "crate::persist::nan_as_null")]
    pub objective: f64,
    /// Whether a feature is multiplicative, per feature column.
    pub(crate) multiplicative: Vec<bool>,
}

impl Persist for FittedProphet {
    const KIND: &'static str = "prophet";

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let model: FittedProphet = crate::persist::read_envelope(bytes)?;
        model.check()?;
        Ok(model)
    }
}

/// Forecast columns, one value per requested timestamp.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecast {
    /// Timestamps (ns).
    pub ds: Vec<i64>,
    /// Trend.
    pub trend: Vec<f64>,
    /// Sum of additive components.
    pub additive_terms: Vec<f64>,
    /// Sum of multiplicative components (relative).
    pub multiplicative_terms: Vec<f64>,
    /// Each seasonality and regressor, plus `extra_regressors_additive` /
    /// `extra_regressors_multiplicative` when there are regressors.
    pub components: Vec<(String, Vec<f64>)>,
    /// `trend * (1 + multiplicative_terms) + additive_terms`.
    pub yhat: Vec<f64>,
    /// Interval bounds (empty when not computed).
    pub yhat_lower: Vec<f64>,
    /// Upper bound.
    pub yhat_upper: Vec<f64>,
    /// Trend interval bounds.
    pub trend_lower: Vec<f64>,
    /// Upper trend bound.
    pub trend_upper: Vec<f64>,
}

/// How intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    /// None.
    None,
    /// Prophet's Monte Carlo method, `uncertainty_samples` draws from a seed.
    Simulated {
        /// Random seed.
        seed: u64,
    },
    /// Deterministic: Gaussian noise band in the history; in the future the
    /// variance of Prophet's simulated trend changes added, with a normal
    /// approximation.
    Analytic,
}

fn resolve_seasonalities(opts: &ProphetOptions, ds: &[i64]) -> Vec<SeasonalityTerm> {
    let mut out: Vec<SeasonalityTerm> = opts
        .seasonalities
        .iter()
        .map(|s| SeasonalityTerm {
            name: s.name.clone(),
            period: s.period,
            fourier_order: s.fourier_order,
            prior_scale: s.prior_scale.unwrap_or(opts.seasonality_prior_scale),
            mode: s.mode.unwrap_or(opts.seasonality_mode),
        })
        .collect();
    let (first, last) = (ds[0], ds[ds.len() - 1]);
    let min_dt = ds.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0).min().unwrap_or(i64::MAX);
    let day = 86_400_000_000_000i64;
    let builtins = [
        ("yearly", opts.yearly_seasonality, 365.25, 10, last - first < 730 * day),
        ("weekly", opts.weekly_seasonality, 7.0, 3, last - first < 14 * day || min_dt >= 7 * day),
        ("daily", opts.daily_seasonality, 1.0, 4, last - first < 2 * day || min_dt >= day),
    ];
    for (name, setting, period, default_order, auto_disable) in builtins {
        if out.iter().any(|s| s.name == name) {
            continue;
        }
        let order = match setting {
            SeasonalitySetting::Auto(_) => {
                if auto_disable {
                    0
                } else {
                    default_order
                }
            }
            SeasonalitySetting::Enabled(true) => default_order,
            SeasonalitySetting::Enabled(false) => 0,
            SeasonalitySetting::Order(o) => o,
        };
        if order > 0 {
            out.push(SeasonalityTerm {
                name: name.into(),
                period,
                fourier_order: order,
                prior_scale: opts.seasonality_prior_scale,
                mode: opts.seasonality_mode,
            });
        }
    }
    out
}

/// numpy's `linspace(start, stop, num)`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| start + i as f64 * step).collect();
    v[num - 1] = stop;
    v
}

impl FittedProphet {
    /// Fits Prophet's model (the MAP estimate, as Prophet's default `fit`).
    pub fn fit(options: &ProphetOptions, history: &History) -> Result<FittedProphet> {
        options.validate()?;
        let keep: Vec<usize> = (0..history.y.len()).filter(|&i| !history.y[i].is_nan()).collect();
        let regressor_rows =
            named_columns(options.regressors.iter().map(|r| r.name.as_str()), &history.regressors, Some(&keep))?;
        let ds: Vec<i64> = keep.iter().map(|&i| history.ds[i]).collect();
        let y: Vec<f64> = keep.iter().map(|&i| history.y[i]).collect();
        let start = ds[0];
        let t_scale = (ds[ds.len() - 1] - start) as f64;
        let y_scale = match y.iter().fold(0.0f64, |a, v| a.max(v.abs())) {
            0.0 => 1.0,
            s => s,
        };
        let t: Vec<f64> = ds.iter().map(|&d| (d - start) as f64 / t_scale).collect();
        let y_scaled: Vec<f64> = y.iter().map(|v| v / y_scale).collect();

        let seasonalities = resolve_seasonalities(options, &ds);
        super::check::feature_count(seasonalities.iter().map(|s| s.fourier_order), options.regressors.len())?;
        let regressors: Vec<RegressorTerm> = options
            .regressors
            .iter()
            .zip(&regressor_rows)
            .map(|(r, values)| {
                let mut distinct = values.clone();
                distinct.sort_by(f64::total_cmp);
                distinct.dedup();
                let binary = distinct == [0.0, 1.0];
                let standardize = distinct.len() >= 2 && r.standardize.unwrap_or(!binary);
                let (mu, std) = if standardize {
                    let n = values.len() as f64;
                    let mu = values.iter().sum::<f64>() / n;
                    let var = values.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (n - 1.0);
                    (mu, var.sqrt())
                } else {
                    (0.0, 1.0)
                };
                RegressorTerm {
                    name: r.name.clone(),
                    mu,
                    std,
                    prior_scale: r.prior_scale.unwrap_or(options.holidays_prior_scale),
                    mode: r.mode.unwrap_or(options.seasonality_mode),
                }
            })
            .collect();

        // Changepoints: Prophet's even grid of row indices over the first
        // `changepoint_range` of the history, or the ones given.
        let changepoints_t: Vec<f64> = match &options.changepoints {
            Some(given) if !given.is_empty() => {
                if given.iter().any(|&c| c < ds[0] || c > ds[ds.len() - 1]) {
                    return Err(Error::param("changepoints", given.len(), "must fall within the training data"));
                }
                let mut cps: Vec<f64> = given.iter().map(|&c| (c - start) as f64 / t_scale).collect();
                cps.sort_by(f64::total_cmp);
                cps
            }
            Some(_) => Vec::new(),
            None => {
                let hist_size = (ds.len() as f64 * options.changepoint_range).floor() as usize;
                let n_cp = options.n_changepoints.min(hist_size.saturating_sub(1));
                if n_cp > 0 {
                    linspace(0.0, (hist_size - 1) as f64, n_cp + 1)
                        .into_iter()
                        .skip(1)
                        .map(|i| t[i.round_ties_even() as usize])
                        .collect()
                } else {
                    Vec::new()
                }
            }
        };
        let has_changepoints = !changepoints_t.is_empty();
        let changepoints_t = if has_changepoints { changepoints_t } else { vec![0.0] };

        let mut model = FittedProphet {
            options: options.clone(),
            start,
            t_scale,
            y_scale,
            changepoints_t,
            seasonalities,
            regressors,
            params: ProphetParams { k: 0.0, m: 0.0, delta: Vec::new(), sigma_obs: 1.0, beta: Vec::new() },
            history_last: history.ds[history.ds.len() - 1],
            history_step: if t.len() > 1 { 1.0 / (t.len() - 1) as f64 } else { 0.0 },
            objective: 0.0,
            multiplicative: Vec::new(),
        };
        let (x, sigmas, multiplicative) = model.features(&ds, &regressor_rows);
        model.multiplicative = multiplicative;
        let n_features = sigmas.len();
        let s = model.changepoints_t.len();

        // Prophet's initialisation.
        let (k0, m0) = match options.growth {
            Growth::Linear => {
                let k = (y_scaled[y_scaled.len() - 1] - y_scaled[0]) / (t[t.len() - 1] - t[0]);
                (k, y_scaled[0] - k * t[0])
            }
            Growth::Flat => (0.0, y_scaled.iter().sum::<f64>() / y_scaled.len() as f64),
        };
        let mut x0 = vec![0.0; 3 + s + n_features];
        x0[0] = k0;
        x0[1] = m0;
        let constant = y.iter().all(|&v| v == y[0]);
        let (p, objective) = if constant {
            // Prophet skips the optimiser for a constant series.
            x0[2 + s] = 1e-9f64.ln();
            (x0, f64::NAN)
        } else {
            let problem = Problem {
                t: &t,
                y: &y_scaled,
                x: &x,
                n_features,
                sigmas: &sigmas,
                multiplicative: &model.multiplicative,
                t_change: &model.changepoints_t,
                active: Problem::count_active(&t, &model.changepoints_t),
                tau: options.changepoint_prior_scale,
                flat: options.growth == Growth::Flat,
                cap: None,
            };
            let p = solve(&problem, x0, false);
            let value = problem.value(&p);
            (p, value)
        };
        model.objective = objective;
        let mut params = ProphetParams {
            k: p[0],
            m: p[1],
            delta: p[2..2 + s].to_vec(),
            sigma_obs: p[2 + s].exp(),
            beta: p[3 + s..].to_vec(),
        };
        if !has_changepoints {
            params.k += params.delta[0];
            params.delta = vec![0.0];
        }
        model.params = params;
        Ok(model)
    }

    /// The objective (negative log posterior, as Stan's optimiser sees it)
    /// of `params` on `history`, with this model's scales, changepoints and
    /// features: compares any parameter set, Prophet's included, with ours.
    pub fn objective_at(&self, history: &History, params: &ProphetParams) -> Result<f64> {
        let keep: Vec<usize> = (0..history.y.len()).filter(|&i| !history.y[i].is_nan()).collect();
        let ds: Vec<i64> = keep.iter().map(|&i| history.ds[i]).collect();
        let t: Vec<f64> = ds.iter().map(|&d| self.scaled_time(d)).collect();
        let y: Vec<f64> = keep.iter().map(|&i| history.y[i] / self.y_scale).collect();
        let columns = named_columns(self.regressors.iter().map(|r| r.name.as_str()), &history.regressors, Some(&keep))?;
        let (x, sigmas, multiplicative) = self.features(&ds, &columns);
        let s = self.changepoints_t.len();
        if params.delta.len() != s || params.beta.len() != sigmas.len() {
            return Err(Error::Shape {
                field: "params".into(),
                expected: format!("{s} deltas and {} betas", sigmas.len()),
                found: format!("{} and {}", params.delta.len(), params.beta.len()),
            });
        }
        let problem = Problem {
            t: &t,
            y: &y,
            x: &x,
            n_features: sigmas.len(),
            sigmas: &sigmas,
            multiplicative: &multiplicative,
            t_change: &self.changepoints_t,
            active: Problem::count_active(&t, &self.changepoints_t),
            tau: self.options.changepoint_prior_scale,
            flat: self.options.growth == Growth::Flat,
            cap: None,
        };
        let mut p = vec![params.k, params.m];
        p.extend(&params.delta);
        p.push(params.sigma_obs.ln());
        p.extend(&params.beta);
        Ok(problem.value(&p))
    }

    /// Feature matrix (row-major), prior scales and multiplicative flags
    /// for timestamps `ds` and raw regressor columns.
    fn features(&self, ds: &[i64], regressors: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let mut sigmas = Vec::new();
        let mut multiplicative = Vec::new();
        for s in &self.seasonalities {
            for _ in 0..2 * s.fourier_order {
                sigmas.push(s.prior_scale);
                multiplicative.push(s.mode == Mode::Multiplicative);
            }
        }
        for r in &self.regressors {
            sigmas.push(r.prior_scale);
            multiplicative.push(r.mode == Mode::Multiplicative);
        }
        let zeros = sigmas.is_empty();
        if zeros {
            // Prophet adds a column of zeros when there is no feature.
            sigmas.push(1.0);
            multiplicative.push(false);
        }
        let width = sigmas.len();
        let mut x = vec![0.0; ds.len() * width];
        for (i, &d) in ds.iter().enumerate() {
            let row = &mut x[i * width..(i + 1) * width];
            let mut col = 0;
            for s in &self.seasonalities {
                let width = 2 * s.fourier_order as usize;
                fourier_row(d, s.period, &mut row[col..col + width]);
                col += width;
            }
            for (r, values) in self.regressors.iter().zip(regressors) {
                row[col] = (values[i] - r.mu) / r.std;
                col += 1;
            }
        }
        (x, sigmas, multiplicative)
    }

    /// Scaled time of a timestamp.
    fn scaled_time(&self, ds: i64) -> f64 {
        (ds - self.start) as f64 / self.t_scale
    }

    /// Forecasts at `ds` (sorted), with the regressors' values
    /// there, and intervals as asked.
    pub fn predict(&self, ds: &[i64], regressors: &[(String, Vec<f64>)], intervals: Intervals) -> Result<Forecast> {
        check_ds(ds)?;
        check_regressors(regressors, ds.len())?;
        let columns = named_columns(self.regressors.iter().map(|r| r.name.as_str()), regressors, None)?;
        let (x, _, multiplicative) = self.features(ds, &columns);
        let width = multiplicative.len();
        let p = &self.params;
        let n = ds.len();
        let t: Vec<f64> = ds.iter().map(|&d| self.scaled_time(d)).collect();
        let trend_scaled = trend(&t, &[], self.trend_model(), (p.k, p.m), &p.delta, &self.changepoints_t)?;
        let mut f = Forecast { ds: ds.to_vec(), ..Default::default() };
        f.trend = trend_scaled.iter().map(|v| v * self.y_scale).collect();

        // Components: each seasonality, each regressor, and the groups.
        let mut col = 0;
        let mut component = |len: usize, mode: Mode| -> Vec<f64> {
            let scale = if mode == Mode::Additive { self.y_scale } else { 1.0 };
            let values =
                (0..n).map(|i| (col..col + len).map(|j| x[i * width + j] * p.beta[j]).sum::<f64>() * scale).collect();
            col += len;
            values
        };
        let mut comps: Vec<(String, Vec<f64>, Mode)> = Vec::new();
        for s in &self.seasonalities {
            comps.push((s.name.clone(), component(2 * s.fourier_order as usize, s.mode), s.mode));
        }
        let mut regressor_comps = Vec::new();
        for r in &self.regressors {
            regressor_comps.push((r.name.clone(), component(1, r.mode), r.mode));
        }
        let sum = |items: &[&(String, Vec<f64>, Mode)]| -> Vec<f64> {
            (0..n).map(|i| items.iter().map(|c| c.1[i]).sum()).collect()
        };
        for mode in [Mode::Additive, Mode::Multiplicative] {
            let of_mode: Vec<&(String, Vec<f64>, Mode)> =
                comps.iter().chain(&regressor_comps).filter(|c| c.2 == mode).collect();
            let total = sum(&of_mode);
            match mode {
                Mode::Additive => f.additive_terms = total,
                Mode::Multiplicative => f.multiplicative_terms = total,
            }
            if !self.regressors.is_empty() {
                let regs: Vec<&(String, Vec<f64>, Mode)> = regressor_comps.iter().filter(|c| c.2 == mode).collect();
                let name = match mode {
                    Mode::Additive => "extra_regressors_additive",
                    Mode::Multiplicative => "extra_regressors_multiplicative",
                };
                f.components.push((name.into(), sum(&regs)));
            }
        }
        f.components.extend(comps.into_iter().chain(regressor_comps).map(|(name, v, _)| (name, v)));
        f.yhat = (0..n).map(|i| f.trend[i] * (1.0 + f.multiplicative_terms[i]) + f.additive_terms[i]).collect();

        let zeros = vec![0.0; n];
        let sim = Simulation {
            t: &t,
            cap: &zeros,
            floor: &zeros,
            growth: self.trend_model(),
            k: p.k,
            m: p.m,
            delta: &p.delta,
            changepoints_t: &self.changepoints_t,
            history_step: self.history_step,
            xb_a: &f.additive_terms,
            xb_m: &f.multiplicative_terms,
            columns: 1,
            sigma_obs: p.sigma_obs,
            y_scale: self.y_scale,
            n_samples: self.options.uncertainty_samples,
            seed: 0,
        };
        let bounds = match intervals {
            Intervals::Simulated { seed } if self.options.uncertainty_samples > 0 => {
                Some(Simulation { seed, ..sim }.intervals(self.options.interval_width)?)
            }
            Intervals::Analytic => Some(sim.analytic(self.options.interval_width)?),
            Intervals::None | Intervals::Simulated { .. } => None,
        };
        if let Some(b) = bounds {
            (f.yhat_lower, f.yhat_upper, f.trend_lower, f.trend_upper) =
                (b.yhat_lower, b.yhat_upper, b.trend_lower, b.trend_upper);
        }
        Ok(f)
    }

    fn trend_model(&self) -> Trend {
        match self.options.growth {
            Growth::Linear => Trend::Linear,
            Growth::Flat => Trend::Flat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        assert_eq!(linspace(0.0, 10.0, 3), vec![0.0, 5.0, 10.0]);
        let v = linspace(0.0, 3224.0, 26);
        assert_eq!(v[25], 3224.0);
    }
}
