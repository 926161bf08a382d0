//! augurs-prophet (the Rust port of Prophet) as an independent reference for
//! our own Prophet model: its view of the problem (scaled time, scaled y,
//! changepoints, Fourier features, priors) must equal ours, and its
//! forecast with OUR fitted parameters must equal our forecast, over the
//! history and a week ahead, in both seasonality modes.
//!
//! augurs fits through an `Optimizer` trait; the one here does not optimise:
//! it records the data augurs hands it and returns our parameters (beta
//! reordered to augurs' feature columns). The objective is checked with a
//! transcription of augurs' `prophet.stan` evaluated on augurs' data, since
//! augurs has no objective to call without Stan. Only the model is pinned,
//! not the optimiser.

use std::cell::RefCell;

use anomaly_core::forecast_interval::{
    FittedProphet, History, Intervals, Mode, ProphetOptions, ProphetParams, SeasonalitySetting,
};
use augurs_prophet::optimizer::{self, Data, InitialParams, OptimizeOpts, OptimizedParams, Optimizer};
use augurs_prophet::{
    EstimationMode, FeatureMode, PredictionData, Prophet, SeasonalityOption, TrainingData, TrendIndicator,
};

const FIVE_MIN_S: i64 = 300;
const START_S: i64 = 1_704_067_200; // 2024-01-01 00:00:00
const DAY_S: i64 = 86_400;
const HISTORY: usize = 14 * 288;
const AHEAD: usize = 7 * 288;

/// splitmix64: a fixed-seed generator, so the series is the same everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// 14 days of 5-minute data (seconds): trend, daily and weekly sinusoids,
/// noise and a few spikes; positive, so multiplicative mode makes sense.
fn series() -> (Vec<i64>, Vec<f64>) {
    let mut rng = SplitMix(20_240_101);
    let ds: Vec<i64> = (0..HISTORY).map(|i| START_S + i as i64 * FIVE_MIN_S).collect();
    let mut y: Vec<f64> = ds
        .iter()
        .map(|&d| {
            let days = (d - START_S) as f64 / DAY_S as f64;
            let tau = std::f64::consts::TAU;
            100.0
                + 0.8 * days
                + 12.0 * (tau * days).sin()
                + 4.0 * (2.0 * tau * days + 0.3).cos()
                + 6.0 * (tau * days / 7.0 + 1.0).sin()
                + 1.5 * rng.normal()
        })
        .collect();
    for (at, size) in [(500, 35.0), (1700, -30.0), (2900, 45.0), (3800, 25.0)] {
        y[at] += size;
    }
    (ds, y)
}

fn ns(seconds: &[i64]) -> Vec<i64> {
    seconds.iter().map(|s| s * 1_000_000_000).collect()
}

/// What augurs handed the optimiser, and how its feature columns map to ours.
#[derive(Debug)]
struct Seen {
    data: Data,
    init: InitialParams,
    /// Our feature column for each of augurs' columns.
    ours_of: Vec<usize>,
    /// Largest |augurs X - our X| over the matched columns.
    x_diff: f64,
}

/// An `Optimizer` that records augurs' problem and answers with our fit.
#[derive(Debug)]
struct Replay {
    params: ProphetParams,
    /// Our feature columns over the history.
    columns: Vec<Vec<f64>>,
    seen: RefCell<Option<Seen>>,
}

impl Optimizer for &Replay {
    fn optimize(
        &self,
        init: &InitialParams,
        data: &Data,
        _opts: &OptimizeOpts,
    ) -> Result<OptimizedParams, optimizer::Error> {
        let (n, k) = (data.T as usize, data.K as usize);
        if k != self.columns.len() || data.X.len() != n * k {
            return Err(optimizer::Error::string(format!("augurs has {k} features, we have {}", self.columns.len())));
        }
        // augurs keeps seasonalities in a HashMap, so its column order
        // varies: match each of its columns to the nearest of ours.
        let mut ours_of = Vec::with_capacity(k);
        let mut x_diff = 0.0f64;
        for j in 0..k {
            let (best, diff) = self
                .columns
                .iter()
                .map(|ours| (0..n).map(|i| (data.X[i * k + j] - ours[i]).abs()).fold(0.0, f64::max))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .ok_or(optimizer::Error::static_str("no features"))?;
            ours_of.push(best);
            x_diff = x_diff.max(diff);
        }
        let sigma_obs =
            self.params.sigma_obs.try_into().map_err(|_| optimizer::Error::static_str("sigma_obs must be positive"))?;
        let out = OptimizedParams {
            k: self.params.k,
            m: self.params.m,
            sigma_obs,
            delta: self.params.delta.clone(),
            beta: ours_of.iter().map(|&c| self.params.beta[c]).collect(),
            // Stan's transformed trend; augurs' predict does not read it.
            trend: Vec::new(),
        };
        *self.seen.borrow_mut() = Some(Seen { data: data.clone(), init: init.clone(), ours_of, x_diff });
        Ok(out)
    }
}

/// Our feature columns at `ds` (ns), through the public model: with unit
/// scale, zero trend and beta the j-th unit vector, the forecast's additive
/// plus multiplicative terms are exactly column j.
fn our_columns(model: &FittedProphet, ds: &[i64]) -> Vec<Vec<f64>> {
    let k = model.params.beta.len();
    (0..k)
        .map(|j| {
            let mut unit = model.clone();
            unit.y_scale = 1.0;
            unit.params.k = 0.0;
            unit.params.m = 0.0;
            unit.params.delta.iter_mut().for_each(|d| *d = 0.0);
            unit.params.beta = (0..k).map(|c| f64::from(u8::from(c == j))).collect();
            let f = unit.predict(ds, &[], Intervals::None).expect("unit predict");
            f.additive_terms.iter().zip(&f.multiplicative_terms).map(|(a, m)| a + m).collect()
        })
        .collect()
}

/// prophet.stan's negative log posterior as Stan's optimiser sees it
/// (constants dropped, `sigma_obs` without Jacobian), on augurs' data.
fn stan_objective(data: &Data, k: f64, m: f64, delta: &[f64], sigma_obs: f64, beta: &[f64]) -> f64 {
    let (n, kf) = (data.T as usize, data.K as usize);
    let tau = *data.tau;
    let mut half_ssr = 0.0;
    for i in 0..n {
        let t = data.t[i];
        let mut trend = k * t + m;
        for (c, d) in data.t_change.iter().zip(delta) {
            if t >= *c {
                trend += d * (t - c);
            }
        }
        let row = &data.X[i * kf..(i + 1) * kf];
        let (mut add, mut mult) = (0.0, 0.0);
        for j in 0..kf {
            add += row[j] * beta[j] * f64::from(data.s_a[j]);
            mult += row[j] * beta[j] * f64::from(data.s_m[j]);
        }
        let r = data.y[i] - (trend * (1.0 + mult) + add);
        half_ssr += 0.5 * r * r;
    }
    let mut f = half_ssr / (sigma_obs * sigma_obs) + n as f64 * sigma_obs.ln();
    f += (k * k + m * m) / 50.0;
    f += delta.iter().map(|d| d.abs() / tau).sum::<f64>();
    f += sigma_obs * sigma_obs / (2.0 * 0.25);
    f += beta.iter().zip(&data.sigmas).map(|(b, s)| b * b / (2.0 * **s * **s)).sum::<f64>();
    f
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(f64::MIN_POSITIVE)).fold(0.0, f64::max)
}

fn check_mode(mode: Mode) {
    let (ds_s, y) = series();
    let ds_ns = ns(&ds_s);
    let options = ProphetOptions {
        seasonality_mode: mode,
        interval_width: 0.95,
        changepoint_prior_scale: 0.05,
        daily_seasonality: SeasonalitySetting::Enabled(true),
        weekly_seasonality: SeasonalitySetting::Enabled(true),
        yearly_seasonality: SeasonalitySetting::Enabled(false),
        ..Default::default()
    };
    let history = History::new(ds_ns.clone(), y.clone(), Vec::new()).expect("history");
    let model = FittedProphet::fit(&options, &history).expect("our fit");

    let replay =
        Replay { params: model.params.clone(), columns: our_columns(&model, &ds_ns), seen: RefCell::new(None) };
    let augurs_options = augurs_prophet::ProphetOptions {
        seasonality_mode: match mode {
            Mode::Additive => FeatureMode::Additive,
            Mode::Multiplicative => FeatureMode::Multiplicative,
        },
        interval_width: 0.95.try_into().expect("interval width"),
        changepoint_prior_scale: 0.05.try_into().expect("prior scale"),
        daily_seasonality: SeasonalityOption::Manual(true),
        weekly_seasonality: SeasonalityOption::Manual(true),
        yearly_seasonality: SeasonalityOption::Manual(false),
        estimation: EstimationMode::Map,
        // Intervals are Monte Carlo (unseeded) in augurs: compare point forecasts.
        uncertainty_samples: 0,
        ..Default::default()
    };
    let mut prophet = Prophet::new(augurs_options, &replay);
    prophet
        .fit(TrainingData::new(ds_s.clone(), y.clone()).expect("training data"), OptimizeOpts::default())
        .expect("augurs fit");
    let seen = replay.seen.borrow_mut().take().expect("augurs called the optimizer");
    let data = &seen.data;
    let label = format!("{mode:?}");

    // The problem as augurs states it.
    let n = HISTORY;
    assert_eq!(data.T as usize, n);
    assert_eq!(data.trend_indicator, TrendIndicator::Linear);
    assert!(data.cap.iter().all(|&c| c == 0.0));
    assert_eq!(*data.tau, 0.05);
    let mut matched = seen.ours_of.clone();
    matched.sort_unstable();
    assert_eq!(matched, (0..model.params.beta.len()).collect::<Vec<_>>(), "{label}: feature columns 1:1");
    assert!(seen.x_diff <= 1e-9, "{label}: features differ by {:e}", seen.x_diff);
    // Our prior scales and modes per column, through the same mapping.
    let ours_mult: Vec<bool> = model
        .seasonalities
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.mode == Mode::Multiplicative, 2 * s.fourier_order as usize))
        .collect();
    let ours_sigma: Vec<f64> = model
        .seasonalities
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.prior_scale, 2 * s.fourier_order as usize))
        .collect();
    for (j, &c) in seen.ours_of.iter().enumerate() {
        assert_eq!(data.s_m[j] == 1, ours_mult[c], "{label}: mode of column {j}");
        assert_eq!(data.s_a[j] == 1, !ours_mult[c], "{label}: mode of column {j}");
        assert_eq!(*data.sigmas[j], ours_sigma[c], "{label}: prior scale of column {j}");
    }
    // Changepoints, scaled time and scaled y.
    assert_eq!(data.S as usize, model.changepoints_t.len());
    let cp_diff = max_rel_diff(&data.t_change, &model.changepoints_t);
    assert!(cp_diff <= 1e-12, "{label}: changepoints differ by {cp_diff:e}");
    let our_t: Vec<f64> = ds_ns.iter().map(|&d| (d - model.start) as f64 / model.t_scale).collect();
    let t_diff = max_rel_diff(&data.t, &our_t);
    assert!(t_diff <= 1e-12, "{label}: scaled t differs by {t_diff:e}");
    let our_y: Vec<f64> = y.iter().map(|v| v / model.y_scale).collect();
    let y_diff = max_rel_diff(&data.y, &our_y);
    assert!(y_diff <= 1e-12, "{label}: scaled y differs by {y_diff:e}");
    // augurs' absmax scale, read off its largest scaled value.
    let top = (0..n).max_by(|&a, &b| data.y[a].abs().total_cmp(&data.y[b].abs())).expect("rows");
    let augurs_y_scale = y[top] / data.y[top];
    let y_scale_diff = (augurs_y_scale - model.y_scale).abs() / model.y_scale;
    assert!(y_scale_diff <= 1e-12, "{label}: y scale differs by {y_scale_diff:e}");
    // Prophet's initial point: the line through the first and last points.
    let k0 = (our_y[n - 1] - our_y[0]) / (our_t[n - 1] - our_t[0]);
    assert!((seen.init.k - k0).abs() <= 1e-12 * k0.abs() && (seen.init.m - our_y[0]).abs() <= 1e-12);

    // The objective: prophet.stan on augurs' data at our optimum.
    let beta: Vec<f64> = seen.ours_of.iter().map(|&c| model.params.beta[c]).collect();
    let p = &model.params;
    let stan = stan_objective(data, p.k, p.m, &p.delta, p.sigma_obs, &beta);
    let objective_diff = (stan - model.objective).abs() / model.objective.abs();
    assert!(objective_diff <= 1e-10, "{label}: objective {stan} vs ours {}", model.objective);

    // Forecasts over the history and a week ahead, with our parameters.
    let future_s: Vec<i64> = (0..HISTORY + AHEAD).map(|i| START_S + i as i64 * FIVE_MIN_S).collect();
    let theirs = prophet.predict(PredictionData::new(future_s.clone())).expect("augurs predict");
    let ours = model.predict(&ns(&future_s), &[], Intervals::Analytic).expect("our predict");
    assert_eq!(theirs.ds, future_s);
    let mean = y.iter().sum::<f64>() / n as f64;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let tol = 1e-9 * sd;
    // Multiplicative terms are relative: an error e moves yhat by trend * e.
    let tol_relative = tol / model.y_scale;
    let component = |name: &str| {
        let ours = &ours.components.iter().find(|c| c.0 == name).expect("our component").1;
        let theirs = &theirs.seasonalities.get(name).expect("augurs component").point;
        max_abs_diff(ours, theirs)
    };
    let (seasonal_tol, seasonal_unit) = match mode {
        Mode::Additive => (tol, ""),
        Mode::Multiplicative => (tol_relative, " (relative)"),
    };
    let rows = [
        ("yhat", max_abs_diff(&ours.yhat, &theirs.yhat.point), tol, ""),
        ("trend", max_abs_diff(&ours.trend, &theirs.trend.point), tol, ""),
        ("additive_terms", max_abs_diff(&ours.additive_terms, &theirs.additive.point), tol, ""),
        (
            "multiplicative_terms",
            max_abs_diff(&ours.multiplicative_terms, &theirs.multiplicative.point),
            tol_relative,
            " (relative)",
        ),
        ("daily", component("daily"), seasonal_tol, seasonal_unit),
        ("weekly", component("weekly"), seasonal_tol, seasonal_unit),
    ];
    println!(
        "{label}: std(y) {sd:.4}, y_scale {:.4}; max rel diff changepoints {cp_diff:e}, t {t_diff:e}, y {y_diff:e}, \
         y_scale {y_scale_diff:e}; max |X diff| {:e}; objective {:.10} vs stan(augurs data) {:.10} (rel {objective_diff:e})",
        model.y_scale, seen.x_diff, model.objective, stan
    );
    for (name, diff, tolerance, unit) in rows {
        println!("{label}: {name}{unit} max |ours - augurs| {diff:.3e} (tolerance {tolerance:.3e})");
        assert!(diff <= tolerance, "{label}: {name} differs by {diff:e} (tolerance {tolerance:e})");
    }
}

#[test]
fn additive_model_matches_augurs() {
    check_mode(Mode::Additive);
}

#[test]
fn multiplicative_model_matches_augurs() {
    check_mode(Mode::Multiplicative);
}
