//! Prophet's model at the level of its design: the exact MAP fit of its
//! Stan data, the posterior predictive simulation, trends and Fourier
//! features. `anomaly.Prophet` (Python) assembles the design as Prophet
//! does and calls these.

use anomaly_core::forecast_interval::{
    fit_map, fit_map_many, trend, MapFit, ProphetParams, Simulation, StanData, Trend,
};
use anomaly_core::Error;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{run, to_py};

// -- Prophet's design level: the functions `anomaly.Prophet` calls ------------------------------

/// A float array from any array-like (numpy scalar, list, array of any shape), flattened.
fn floats(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let np = py.import("numpy")?;
    let array = np.call_method1("asarray", (value, "float64"))?.call_method0("ravel")?;
    Ok(array.extract::<PyReadonlyArray1<'_, f64>>()?.as_array().to_vec())
}

fn scalar(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    match floats(py, value)?.as_slice() {
        [v] => Ok(*v),
        other => Err(to_py(py, Error::param(name, other.len(), "must be a single number"))),
    }
}

fn item<'py>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?.ok_or_else(|| {
        to_py(
            dict.py(),
            Error::UnknownColumn { name: key.to_owned(), available: "k, m, delta, beta, sigma_obs".into() },
        )
    })
}

/// Prophet's `stan_init` dict as parameters.
fn init_params(py: Python<'_>, init: &Bound<'_, PyDict>) -> PyResult<ProphetParams> {
    Ok(ProphetParams {
        k: scalar(py, "k", &item(init, "k")?)?,
        m: scalar(py, "m", &item(init, "m")?)?,
        delta: floats(py, &item(init, "delta")?)?,
        sigma_obs: match init.get_item("sigma_obs")? {
            Some(v) => scalar(py, "sigma_obs", &v)?,
            None => 1.0,
        },
        beta: floats(py, &item(init, "beta")?)?,
    })
}

/// Prophet's Stan data from the keyword arguments of `prophet_map`.
fn stan_data(py: Python<'_>, args: &Bound<'_, PyDict>) -> PyResult<StanData> {
    let get = |key: &str| item(args, key);
    let x = get("x")?;
    let np = py.import("numpy")?;
    let x = np.call_method1("asarray", (x, "float64"))?;
    let shape: Vec<usize> = x.getattr("shape")?.extract()?;
    let (rows, n_features) = match shape.as_slice() {
        [r, c] => (*r, *c),
        _ => return Err(to_py(py, Error::param("x", format!("{shape:?}"), "must be a 2-D array (rows x features)"))),
    };
    let flat = floats(py, &x)?;
    let t = floats(py, &get("t")?)?;
    if rows != t.len() {
        return Err(to_py(py, Error::LengthMismatch { field: "X rows".into(), expected: t.len(), found: rows }));
    }
    let indicator: i64 = get("trend_indicator")?.extract()?;
    Ok(StanData {
        t,
        y: floats(py, &get("y")?)?,
        cap: floats(py, &get("cap")?)?,
        x: flat,
        n_features,
        sigmas: floats(py, &get("sigmas")?)?,
        s_a: floats(py, &get("s_a")?)?,
        s_m: floats(py, &get("s_m")?)?,
        t_change: floats(py, &get("t_change")?)?,
        tau: scalar(py, "tau", &get("tau")?)?,
        trend: Trend::from_indicator(indicator).map_err(|e| to_py(py, e))?,
    })
}

fn map_result<'py>(py: Python<'py>, fit: MapFit) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("k", fit.params.k)?;
    out.set_item("m", fit.params.m)?;
    out.set_item("delta", fit.params.delta.into_pyarray(py))?;
    out.set_item("sigma_obs", fit.params.sigma_obs)?;
    out.set_item("beta", fit.params.beta.into_pyarray(py))?;
    out.set_item("objective", fit.objective)?;
    Ok(out)
}

/// The exact MAP of Prophet's Stan model for its data block (`t, y, cap,
/// x, sigmas, s_a, s_m, t_change, tau, trend_indicator`) from `init`.
#[pyfunction]
#[pyo3(signature = (**kwargs))]
pub(crate) fn prophet_map<'py>(py: Python<'py>, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyDict>> {
    let empty = PyDict::new(py);
    let args = kwargs.unwrap_or(&empty);
    let data = stan_data(py, args)?;
    let init = init_params(py, item(args, "init")?.cast()?)?;
    let fit = run(py, move || fit_map(&data, &init))?;
    map_result(py, fit)
}

/// `prophet_map` for many problems (each a dict of its keyword
/// arguments), solved in parallel.
#[pyfunction]
pub(crate) fn prophet_map_many<'py>(
    py: Python<'py>,
    problems: Vec<Bound<'py, PyDict>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let mut parsed = Vec::with_capacity(problems.len());
    for args in &problems {
        parsed.push((stan_data(py, args)?, init_params(py, item(args, "init")?.cast()?)?));
    }
    let fits = run(py, move || fit_map_many(&parsed).into_iter().collect::<anomaly_core::Result<Vec<_>>>())?;
    fits.into_iter().map(|fit| map_result(py, fit)).collect()
}

/// Prophet's posterior predictive simulation for MAP parameters: draws
/// (`interval_width=None`) or interval bounds ("simulated" or "analytic").
#[pyfunction]
#[pyo3(signature = (t, cap, floor, trend_indicator, k, m, delta, changepoints_t, history_step, xb_a, xb_m,
                    sigma_obs, y_scale, n_samples, seed, interval_width = None, method = "simulated"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prophet_simulate<'py>(
    py: Python<'py>,
    t: PyReadonlyArray1<'py, f64>,
    cap: PyReadonlyArray1<'py, f64>,
    floor: PyReadonlyArray1<'py, f64>,
    trend_indicator: i64,
    k: f64,
    m: f64,
    delta: PyReadonlyArray1<'py, f64>,
    changepoints_t: PyReadonlyArray1<'py, f64>,
    history_step: f64,
    xb_a: PyReadonlyArray2<'py, f64>,
    xb_m: PyReadonlyArray2<'py, f64>,
    sigma_obs: f64,
    y_scale: f64,
    n_samples: usize,
    seed: u64,
    interval_width: Option<f64>,
    method: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let growth = Trend::from_indicator(trend_indicator).map_err(|e| to_py(py, e))?;
    let columns = xb_a.as_array().ncols();
    if xb_m.as_array().ncols() != columns {
        return Err(to_py(py, Error::param("xb_m", xb_m.as_array().ncols(), "must have as many columns as xb_a")));
    }
    let (t, cap, floor) = (t.as_array().to_vec(), cap.as_array().to_vec(), floor.as_array().to_vec());
    let (delta, changepoints_t) = (delta.as_array().to_vec(), changepoints_t.as_array().to_vec());
    let xb_a: Vec<f64> = xb_a.as_array().iter().copied().collect();
    let xb_m: Vec<f64> = xb_m.as_array().iter().copied().collect();
    let n = t.len();
    let out = PyDict::new(py);
    let analytic = match method {
        "simulated" => false,
        "analytic" => true,
        other => return Err(to_py(py, Error::param("method", other, "must be simulated or analytic"))),
    };
    let work = move || {
        let sim = Simulation {
            t: &t,
            cap: &cap,
            floor: &floor,
            growth,
            k,
            m,
            delta: &delta,
            changepoints_t: &changepoints_t,
            history_step,
            xb_a: &xb_a,
            xb_m: &xb_m,
            columns,
            sigma_obs,
            y_scale,
            n_samples,
            seed,
        };
        match interval_width {
            None => sim.samples().map(|(yhat, trend)| (Some((yhat, trend)), None)),
            Some(w) if analytic => sim.analytic(w).map(|b| (None, Some(b))),
            Some(w) => sim.intervals(w).map(|b| (None, Some(b))),
        }
    };
    match run(py, work)? {
        (Some((yhat, trend)), _) => {
            let shape = (n, n_samples);
            let as_matrix = |v: Vec<f64>| {
                Array2::from_shape_vec(shape, v).map_err(|e| crate::errors::InternalError::new_err(e.to_string()))
            };
            out.set_item("yhat", as_matrix(yhat)?.into_pyarray(py))?;
            out.set_item("trend", as_matrix(trend)?.into_pyarray(py))?;
        }
        (_, Some(b)) => {
            out.set_item("yhat_lower", b.yhat_lower.into_pyarray(py))?;
            out.set_item("yhat_upper", b.yhat_upper.into_pyarray(py))?;
            out.set_item("trend_lower", b.trend_lower.into_pyarray(py))?;
            out.set_item("trend_upper", b.trend_upper.into_pyarray(py))?;
        }
        (None, None) => {}
    }
    Ok(out)
}

/// Prophet's piecewise-linear, piecewise-logistic or flat trend at scaled
/// times `t` (`cap` read only for logistic growth).
#[pyfunction]
#[pyo3(signature = (t, cap, trend_indicator, k, m, delta, changepoints_t))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prophet_trend<'py>(
    py: Python<'py>,
    t: &Bound<'py, PyAny>,
    cap: &Bound<'py, PyAny>,
    trend_indicator: i64,
    k: f64,
    m: f64,
    delta: &Bound<'py, PyAny>,
    changepoints_t: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let growth = Trend::from_indicator(trend_indicator).map_err(|e| to_py(py, e))?;
    let (t, delta, changepoints_t) = (floats(py, t)?, floats(py, delta)?, floats(py, changepoints_t)?);
    let cap = if growth == Trend::Logistic { floats(py, cap)? } else { Vec::new() };
    let values = run(py, move || trend(&t, &cap, growth, (k, m), &delta, &changepoints_t))?;
    Ok(values.into_pyarray(py))
}

/// Prophet's Fourier features of timestamps in nanoseconds: `(n, 2 order)`.
#[pyfunction]
pub(crate) fn fourier_series<'py>(
    py: Python<'py>,
    ds: PyReadonlyArray1<'py, i64>,
    period: f64,
    order: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let ds = ds.as_array().to_vec();
    let n = ds.len();
    let values = run(py, move || anomaly_core::forecast_interval::fourier_series(&ds, period, order))?;
    let matrix = Array2::from_shape_vec((n, 2 * order), values)
        .map_err(|e| crate::errors::InternalError::new_err(e.to_string()))?;
    Ok(matrix.into_pyarray(py))
}
