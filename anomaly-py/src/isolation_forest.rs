//! `IsolationForestModel`: the fitted forest on numpy float32 matrices.

use anomaly_core::data::{CsrMatrix, FeatureMatrix, Rows};
use anomaly_core::isolation_forest::{summarize, FittedIsolationForest, IsolationForestParams, StateThresholds};
use anomaly_core::persist::Persist;
use anomaly_core::traits::ParamGuard;
use anomaly_core::Error;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{run, to_py};

/// Runs `work` on `n_threads` threads (all cores when `None`). Each
/// thread count's pool is built once and kept: a pool per call cost its
/// threads' start and their allocator's first touch of fresh memory, about
/// a tenth of a 100k-row credit batch on one thread.
pub(crate) fn with_threads<T: Send>(
    n_threads: Option<usize>,
    work: impl FnOnce() -> anomaly_core::Result<T> + Send,
) -> anomaly_core::Result<T> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let Some(n) = n_threads else { return work() };
    // Never more threads than cores, whatever the caller asks.
    let n = n.clamp(1, std::thread::available_parallelism().map_or(1, |c| c.get()));
    let pool = {
        let mut pools = POOLS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
        match pools.get(&n) {
            Some(pool) => Arc::clone(pool),
            None => {
                let pool = Arc::new(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .map_err(|e| Error::param("n_jobs", n, &e.to_string()))?,
                );
                pools.insert(n, Arc::clone(&pool));
                pool
            }
        }
    };
    pool.install(work)
}

/// A matrix from Python: C-contiguous float32, or scipy's CSR arrays as
/// `(n_features, indptr, indices, data)` (int64, int64, float32).
#[derive(FromPyObject)]
pub(crate) enum Input<'py> {
    Dense(PyReadonlyArray2<'py, f32>),
    Sparse((usize, PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, f32>)),
}

impl Input<'_> {
    /// Validates the matrix (width `expected` when set) and runs `work` on
    /// it with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        expected: Option<usize>,
        work: impl FnOnce(&dyn Rows) -> anomaly_core::Result<T> + Send,
    ) -> PyResult<T> {
        let not_contiguous = |what: &str| Error::Shape {
            field: format!("X.{what}"),
            expected: "a contiguous array".into(),
            found: "a strided view".into(),
        };
        match self {
            Input::Dense(x) => {
                let view = x.as_array();
                run(py, move || work(&FeatureMatrix::new(view, expected)?))
            }
            Input::Sparse((d, indptr, indices, data)) => {
                let (indptr, indices, data) = (
                    indptr.as_slice().map_err(|_| to_py(py, not_contiguous("indptr")))?,
                    indices.as_slice().map_err(|_| to_py(py, not_contiguous("indices")))?,
                    data.as_slice().map_err(|_| to_py(py, not_contiguous("data")))?,
                );
                let d = *d;
                run(py, move || work(&CsrMatrix::new(d, indptr, indices, data, expected)?))
            }
        }
    }
}

/// Row or feature indices handed to numpy.
type Indices<'py> = Bound<'py, PyArray1<i64>>;

/// A fitted isolation forest (see `anomaly_core::isolation_forest`).
#[pyclass(module = "anomaly._anomaly", name = "IsolationForestModel", frozen)]
pub(crate) struct PyIsolationForestModel {
    model: FittedIsolationForest,
}

#[pymethods]
impl PyIsolationForestModel {
    /// Grows a forest on a dense or CSR matrix; the offset is
    /// `contamination="auto"`'s until `with_offset_from_scores` sets it.
    #[staticmethod]
    #[pyo3(signature = (x, params_json, n_threads = None))]
    fn fit(py: Python<'_>, x: Input<'_>, params_json: &str, n_threads: Option<usize>) -> PyResult<Self> {
        let params: IsolationForestParams = serde_json::from_str(params_json)
            .map_err(|e| to_py(py, Error::param("params", params_json, &format!("not a valid parameter set: {e}"))))?;
        let forest = params.check().map_err(|e| to_py(py, e))?;
        let model = x.run(py, None, |x| with_threads(n_threads, || forest.fit_trees(x)))?;
        Ok(PyIsolationForestModel { model })
    }

    /// A copy with trees added up to `n_estimators`, grown on `x` (warm
    /// start); the offset is kept until `with_offset_from_scores`.
    #[pyo3(signature = (x, n_estimators, n_threads = None))]
    fn extend(&self, py: Python<'_>, x: Input<'_>, n_estimators: usize, n_threads: Option<usize>) -> PyResult<Self> {
        let current = &self.model;
        let model = x.run(py, None, |x| with_threads(n_threads, || current.extend_trees(x, n_estimators)))?;
        Ok(PyIsolationForestModel { model })
    }

    /// A copy whose offset comes from the training rows' scores (the
    /// contamination rule of the core).
    fn with_offset_from_scores(&self, py: Python<'_>, scores: PyReadonlyArray1<'_, f64>) -> PyResult<Self> {
        let mut model = self.model.clone();
        model.set_offset_from_scores(scores.as_array().to_vec()).map_err(|e| to_py(py, e))?;
        Ok(PyIsolationForestModel { model })
    }

    /// scikit-learn's `score_samples` (lower is more abnormal).
    #[pyo3(signature = (x, n_threads = None))]
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: Input<'py>,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let model = &self.model;
        let scores = x.run(py, Some(model.n_features), |x| with_threads(n_threads, || model.score_samples(x)))?;
        Ok(scores.into_pyarray(py))
    }

    /// Shapley values of the mean path length, `(n_rows, n_features)`, and
    /// their base value (the expected mean path length).
    #[pyo3(signature = (x, n_threads = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        x: Input<'py>,
        n_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, f64)> {
        let model = &self.model;
        let e = x.run(py, Some(model.n_features), |x| with_threads(n_threads, || model.explain(x)))?;
        let rows = e.values.len() / e.n_features.max(1);
        let values = numpy::ndarray::Array2::from_shape_vec((rows, e.n_features), e.values)
            .map_err(|err| crate::errors::InternalError::new_err(err.to_string()))?;
        Ok((values.into_pyarray(py), e.expected))
    }

    /// Tree `t` in scikit-learn's `tree_` arrays (a dict), or None for an
    /// extended tree.
    fn tree_layout<'py>(&self, py: Python<'py>, t: usize) -> PyResult<Option<Bound<'py, PyDict>>> {
        let tree =
            self.model.trees().get(t).ok_or_else(|| {
                to_py(py, Error::param("tree", t, &format!("must be below {}", self.model.n_trees())))
            })?;
        let Some(layout) = tree.sklearn_layout() else { return Ok(None) };
        let out = PyDict::new(py);
        out.set_item("children_left", layout.children_left.into_pyarray(py))?;
        out.set_item("children_right", layout.children_right.into_pyarray(py))?;
        out.set_item("feature", layout.feature.into_pyarray(py))?;
        out.set_item("threshold", layout.threshold.into_pyarray(py))?;
        out.set_item("n_node_samples", layout.n_node_samples.into_pyarray(py))?;
        out.set_item("value", layout.value.into_pyarray(py))?;
        out.set_item("max_depth", layout.max_depth)?;
        Ok(Some(out))
    }

    /// The training rows (of `n_rows`) and the features tree `t` drew.
    fn tree_draws<'py>(&self, py: Python<'py>, t: usize, n_rows: usize) -> PyResult<(Indices<'py>, Indices<'py>)> {
        let (rows, features) = self.model.tree_draws(t, n_rows).map_err(|e| to_py(py, e))?;
        let wide = |v: Vec<u32>| v.into_iter().map(i64::from).collect::<Vec<_>>().into_pyarray(py);
        Ok((wide(rows), wide(features)))
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

    /// Features each tree draws.
    #[getter]
    fn max_features(&self) -> usize {
        self.model.max_features()
    }

    /// The depth trees grow to.
    #[getter]
    fn max_depth(&self) -> usize {
        self.model.max_depth()
    }

    /// The expected mean path length (the base value of `explain`).
    #[getter]
    fn expected_path_length(&self) -> f64 {
        self.model.expected_path_length()
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
