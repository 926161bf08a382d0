//! `IsolationForestModel`: the fitted forest on numpy float32 matrices.

use anomaly_core::data::FeatureMatrix;
use anomaly_core::isolation_forest::{summarize, FittedIsolationForest, IsolationForestParams, StateThresholds};
use anomaly_core::persist::Persist;
use anomaly_core::traits::{Fit, ParamGuard};
use anomaly_core::Error;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{run, to_py};

/// Runs `work` on `n_threads` threads (all cores when `None`).
pub(crate) fn with_threads<T: Send>(
    n_threads: Option<usize>,
    work: impl FnOnce() -> anomaly_core::Result<T> + Send,
) -> anomaly_core::Result<T> {
    match n_threads {
        None => work(),
        // Never more threads than cores, whatever the caller asks.
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.clamp(1, std::thread::available_parallelism().map_or(1, |c| c.get())))
            .build()
            .map_err(|e| Error::param("n_jobs", n, &e.to_string()))?
            .install(work),
    }
}

/// A fitted isolation forest (see `anomaly_core::isolation_forest`).
#[pyclass(module = "anomaly._anomaly", name = "IsolationForestModel", frozen)]
pub(crate) struct PyIsolationForestModel {
    model: FittedIsolationForest,
}

#[pymethods]
impl PyIsolationForestModel {
    /// Fits a forest to a C-contiguous float32 matrix.
    #[staticmethod]
    #[pyo3(signature = (x, params_json, n_threads = None))]
    fn fit(
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        params_json: &str,
        n_threads: Option<usize>,
    ) -> PyResult<Self> {
        let params: IsolationForestParams = serde_json::from_str(params_json)
            .map_err(|e| to_py(py, Error::param("params", params_json, &format!("not a valid parameter set: {e}"))))?;
        let view = x.as_array();
        let model = run(py, move || {
            let forest = params.check()?;
            let x = FeatureMatrix::new(view, None)?;
            with_threads(n_threads, || forest.fit(&x))
        })?;
        Ok(PyIsolationForestModel { model })
    }

    /// A copy with trees added up to `n_estimators`, fitted on `x` (warm start).
    #[pyo3(signature = (x, n_estimators, n_threads = None))]
    fn extend(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        n_estimators: usize,
        n_threads: Option<usize>,
    ) -> PyResult<Self> {
        let view = x.as_array();
        let current = &self.model;
        let model = run(py, move || {
            let x = FeatureMatrix::new(view, Some(current.n_features))?;
            with_threads(n_threads, || current.extend(&x, n_estimators))
        })?;
        Ok(PyIsolationForestModel { model })
    }

    /// scikit-learn's `score_samples` (lower is more abnormal).
    #[pyo3(signature = (x, n_threads = None))]
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = x.as_array();
        let model = &self.model;
        let scores = run(py, move || {
            let x = FeatureMatrix::new(view, Some(model.n_features))?;
            with_threads(n_threads, || model.score_samples(&x))
        })?;
        Ok(scores.into_pyarray(py))
    }

    /// `decision_function = score_samples - offset`.
    #[getter]
    fn offset(&self) -> f64 {
        self.model.offset
    }

    /// Rows per tree actually used.
    #[getter]
    fn max_samples(&self) -> usize {
        self.model.max_samples
    }

    /// Number of trees.
    #[getter]
    fn n_estimators(&self) -> usize {
        self.model.n_trees()
    }

    /// Width of the training matrix.
    #[getter]
    fn n_features(&self) -> usize {
        self.model.n_features
    }

    /// Names of the training columns (empty when unknown).
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.model.feature_names.clone()
    }

    /// A copy that records the training column names (used by the CLI to
    /// select columns by name).
    fn with_feature_names(&self, py: Python<'_>, names: Vec<String>) -> PyResult<Self> {
        if names.len() != self.model.n_features {
            let err = Error::Shape {
                field: "feature_names".into(),
                expected: format!("{} names", self.model.n_features),
                found: format!("{} names", names.len()),
            };
            return Err(to_py(py, err));
        }
        let mut model = self.model.clone();
        model.feature_names = names;
        Ok(PyIsolationForestModel { model })
    }

    /// The parameters, as JSON.
    fn params_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.model.params).map_err(|e| crate::errors::InternalError::new_err(e.to_string()))
    }

    /// The model as model-file bytes (the same bytes as pickle).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.model.to_bytes().map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads a model from model-file bytes, validating every tree.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let model = run(py, || FittedIsolationForest::from_bytes(data))?;
        Ok(PyIsolationForestModel { model })
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = py.import("anomaly._anomaly")?.getattr("_isolation_forest_from_bytes")?;
        Ok((restore, (self.to_bytes(py)?,)))
    }
}

/// Restores a pickled forest (the target of `IsolationForestModel.__reduce__`).
#[pyfunction]
pub(crate) fn _isolation_forest_from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyIsolationForestModel> {
    PyIsolationForestModel::from_bytes(py, data)
}

/// Total, anomalies, percent and state of labels (-1 / +1).
#[pyfunction]
#[pyo3(signature = (labels, *, caution_percent = 5.0, critical_percent = 10.0))]
pub(crate) fn summarize_labels<'py>(
    py: Python<'py>,
    labels: PyReadonlyArray1<'py, i8>,
    caution_percent: f64,
    critical_percent: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let labels = labels.as_array().to_vec();
    let summary =
        summarize(&labels, StateThresholds { caution_percent, critical_percent }).map_err(|e| to_py(py, e))?;
    let out = PyDict::new(py);
    out.set_item("total", summary.total)?;
    out.set_item("anomalies", summary.anomalies)?;
    out.set_item("percent", summary.percent)?;
    out.set_item("state", summary.state.as_str())?;
    Ok(out)
}
