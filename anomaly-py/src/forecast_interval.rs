//! `ProphetModel`: Prophet's model fitted and forecast in Rust.

use anomaly_core::forecast_interval::{FittedProphet, History, Intervals, ProphetOptions};
use anomaly_core::persist::Persist;
use anomaly_core::Error;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{run, to_py};

type Columns<'py> = Vec<(String, PyReadonlyArray1<'py, f64>)>;

fn owned(columns: &Columns<'_>) -> Vec<(String, Vec<f64>)> {
    columns.iter().map(|(name, values)| (name.clone(), values.as_array().to_vec())).collect()
}

/// A fitted Prophet model (see `anomaly_core::forecast_interval`).
#[pyclass(module = "anomaly._anomaly", name = "ProphetModel", frozen)]
pub(crate) struct PyProphetModel {
    model: FittedProphet,
}

#[pymethods]
impl PyProphetModel {
    /// Fits the model: `ds` in nanoseconds (strictly increasing), `y` with
    /// NaN for missing rows, regressor columns by name.
    #[staticmethod]
    #[pyo3(signature = (options_json, ds, y, regressors = Vec::new()))]
    fn fit(
        py: Python<'_>,
        options_json: &str,
        ds: PyReadonlyArray1<'_, i64>,
        y: PyReadonlyArray1<'_, f64>,
        regressors: Columns<'_>,
    ) -> PyResult<Self> {
        let options: ProphetOptions = serde_json::from_str(options_json)
            .map_err(|e| to_py(py, Error::param("options", options_json, &format!("not a valid option set: {e}"))))?;
        let (ds, y, regressors) = (ds.as_array().to_vec(), y.as_array().to_vec(), owned(&regressors));
        let model = run(py, move || FittedProphet::fit(&options, &History::new(ds, y, regressors)?))?;
        Ok(PyProphetModel { model })
    }

    /// Forecast columns at `ds`; `intervals` is "simulated" (with `seed`),
    /// "analytic" or "none".
    #[pyo3(signature = (ds, regressors = Vec::new(), intervals = "simulated", seed = 0))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        ds: PyReadonlyArray1<'py, i64>,
        regressors: Columns<'py>,
        intervals: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let intervals = match intervals {
            "simulated" => Intervals::Simulated { seed },
            "analytic" => Intervals::Analytic,
            "none" => Intervals::None,
            other => {
                return Err(to_py(py, Error::param("intervals", other, "must be simulated, analytic or none")));
            }
        };
        let (ds, regressors) = (ds.as_array().to_vec(), owned(&regressors));
        let model = &self.model;
        let f = run(py, move || model.predict(&ds, &regressors, intervals))?;
        let out = PyDict::new(py);
        out.set_item("ds", f.ds.into_pyarray(py))?;
        out.set_item("trend", f.trend.into_pyarray(py))?;
        out.set_item("additive_terms", f.additive_terms.into_pyarray(py))?;
        out.set_item("multiplicative_terms", f.multiplicative_terms.into_pyarray(py))?;
        out.set_item("yhat", f.yhat.into_pyarray(py))?;
        let components = PyDict::new(py);
        for (name, values) in f.components {
            components.set_item(name, values.into_pyarray(py))?;
        }
        out.set_item("components", components)?;
        if !f.yhat_lower.is_empty() {
            out.set_item("yhat_lower", f.yhat_lower.into_pyarray(py))?;
            out.set_item("yhat_upper", f.yhat_upper.into_pyarray(py))?;
            out.set_item("trend_lower", f.trend_lower.into_pyarray(py))?;
            out.set_item("trend_upper", f.trend_upper.into_pyarray(py))?;
        }
        Ok(out)
    }

    /// The objective of another parameter set (for example Prophet's) on
    /// the same history, to compare optima.
    #[pyo3(signature = (ds, y, k, m, delta, sigma_obs, beta, regressors = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn objective_at(
        &self,
        py: Python<'_>,
        ds: PyReadonlyArray1<'_, i64>,
        y: PyReadonlyArray1<'_, f64>,
        k: f64,
        m: f64,
        delta: Vec<f64>,
        sigma_obs: f64,
        beta: Vec<f64>,
        regressors: Columns<'_>,
    ) -> PyResult<f64> {
        let history = History::new(ds.as_array().to_vec(), y.as_array().to_vec(), owned(&regressors))
            .map_err(|e| to_py(py, e))?;
        let params = anomaly_core::forecast_interval::ProphetParams { k, m, delta, sigma_obs, beta };
        self.model.objective_at(&history, &params).map_err(|e| to_py(py, e))
    }

    /// Fitted parameters and scales, as a dict.
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.model;
        let out = PyDict::new(py);
        out.set_item("k", m.params.k)?;
        out.set_item("m", m.params.m)?;
        out.set_item("delta", m.params.delta.clone().into_pyarray(py))?;
        out.set_item("sigma_obs", m.params.sigma_obs)?;
        out.set_item("beta", m.params.beta.clone().into_pyarray(py))?;
        out.set_item("y_scale", m.y_scale)?;
        out.set_item("start", m.start)?;
        out.set_item("t_scale", m.t_scale)?;
        out.set_item("changepoints_t", m.changepoints_t.clone().into_pyarray(py))?;
        out.set_item("objective", m.objective)?;
        out.set_item("history_last", m.history_last)?;
        out.set_item("seasonalities", m.seasonalities.iter().map(|s| s.name.clone()).collect::<Vec<_>>())?;
        Ok(out)
    }

    /// The options, as JSON.
    fn options_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.model.options).map_err(|e| crate::errors::InternalError::new_err(e.to_string()))
    }

    /// The model as model-file bytes (the same bytes as pickle).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.model.to_bytes().map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads a model from model-file bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let model = run(py, || FittedProphet::from_bytes(data))?;
        Ok(PyProphetModel { model })
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = py.import("anomaly._anomaly")?.getattr("_prophet_from_bytes")?;
        Ok((restore, (self.to_bytes(py)?,)))
    }
}

/// Restores a pickled model (the target of `ProphetModel.__reduce__`).
#[pyfunction]
pub(crate) fn _prophet_from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyProphetModel> {
    PyProphetModel::from_bytes(py, data)
}
