//! `ForecastDetectorModel`: one forecasting detector per variable.

use anomaly_core::forecast_interval::{DetectorConfig, LongColumns, LongReadings, MultiDetector};
use anomaly_core::persist::Persist;
use anomaly_core::Error;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{run, to_py};

/// The caller's `(time, variable, value)` column names, for error messages
/// (the core's defaults when absent).
type Columns = Option<(String, String, String)>;

fn readings(
    codes: &PyReadonlyArray1<'_, u32>,
    names: &[String],
    ds: &PyReadonlyArray1<'_, i64>,
    value: &PyReadonlyArray1<'_, f64>,
    columns: Columns,
) -> anomaly_core::Result<LongReadings> {
    let columns =
        columns.map_or_else(LongColumns::default, |(time, variable, value)| LongColumns { time, variable, value });
    let variable = codes
        .as_array()
        .iter()
        .map(|&c| {
            names.get(c as usize).cloned().ok_or_else(|| Error::Shape {
                field: columns.variable.clone(),
                expected: format!("codes below {}", names.len()),
                found: format!("{c}"),
            })
        })
        .collect::<anomaly_core::Result<_>>()?;
    Ok(LongReadings { ds: ds.as_array().to_vec(), variable, value: value.as_array().to_vec(), columns })
}

/// Detectors by variable (see `anomaly_core::forecast_interval::MultiDetector`).
#[pyclass(module = "anomaly._anomaly", name = "ForecastDetectorModel", frozen)]
pub(crate) struct PyForecastDetector {
    inner: MultiDetector,
}

#[pymethods]
impl PyForecastDetector {
    /// Fits one model per variable: variable codes into `names`, `ds` in seconds.
    #[staticmethod]
    #[pyo3(signature = (config_json, codes, names, ds, value, *, columns = None))]
    fn fit(
        py: Python<'_>,
        config_json: &str,
        codes: PyReadonlyArray1<'_, u32>,
        names: Vec<String>,
        ds: PyReadonlyArray1<'_, i64>,
        value: PyReadonlyArray1<'_, f64>,
        columns: Columns,
    ) -> PyResult<Self> {
        let config: DetectorConfig = serde_json::from_str(config_json).map_err(|e| {
            to_py(py, Error::param("config", config_json, &format!("not a valid detector config: {e}")))
        })?;
        let data = readings(&codes, &names, &ds, &value, columns).map_err(|e| to_py(py, e))?;
        let inner = run(py, move || MultiDetector::fit(&config, &data))?;
        Ok(PyForecastDetector { inner })
    }

    /// Flags readings; columns in input row order.
    #[pyo3(signature = (codes, names, ds, value, *, columns = None))]
    fn detect<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray1<'py, u32>,
        names: Vec<String>,
        ds: PyReadonlyArray1<'py, i64>,
        value: PyReadonlyArray1<'py, f64>,
        columns: Columns,
    ) -> PyResult<Bound<'py, PyDict>> {
        let data = readings(&codes, &names, &ds, &value, columns).map_err(|e| to_py(py, e))?;
        let inner = &self.inner;
        let d = run(py, move || inner.detect(&data))?;
        let out = PyDict::new(py);
        out.set_item("yhat", d.rows.yhat.into_pyarray(py))?;
        out.set_item("yhat_lower", d.rows.yhat_lower.into_pyarray(py))?;
        out.set_item("yhat_upper", d.rows.yhat_upper.into_pyarray(py))?;
        out.set_item("residual", d.rows.residual.into_pyarray(py))?;
        out.set_item("is_anomaly", d.rows.is_anomaly.into_pyarray(py))?;
        out.set_item("anomaly_score", d.rows.score.into_pyarray(py))?;
        out.set_item("unknown_rows", d.unknown_rows)?;
        Ok(out)
    }

    /// Variables with a model.
    fn variables(&self) -> Vec<String> {
        self.inner.variables.keys().cloned().collect()
    }

    /// Per-variable training statistics as JSON.
    fn stats_json(&self) -> PyResult<String> {
        let stats: std::collections::BTreeMap<&String, _> =
            self.inner.variables.iter().map(|(k, v)| (k, &v.stats)).collect();
        serde_json::to_string(&stats).map_err(|e| crate::errors::InternalError::new_err(e.to_string()))
    }

    /// Writes a model directory (one file per variable plus `detector.json`).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let inner = &self.inner;
        let files = inner.to_directory().map_err(|e| to_py(py, e))?;
        py.detach(|| -> std::io::Result<()> {
            std::fs::create_dir_all(&path)?;
            files.iter().try_for_each(|(name, bytes)| std::fs::write(path.join(name), bytes))
        })
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
    }

    /// Reads a model directory.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let read = |name: &str| read_model_file(&path.join(name));
        let inner = run(py, move || MultiDetector::from_directory(read))?;
        Ok(PyForecastDetector { inner })
    }

    /// All models as one model-file blob (the same bytes as pickle).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.inner.to_bytes().map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads models from `to_bytes` output.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = run(py, || MultiDetector::from_bytes(data))?;
        Ok(PyForecastDetector { inner })
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = py.import("anomaly._anomaly")?.getattr("_forecast_detector_from_bytes")?;
        Ok((restore, (self.to_bytes(py)?,)))
    }
}

/// Restores pickled detectors.
#[pyfunction]
pub(crate) fn _forecast_detector_from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyForecastDetector> {
    PyForecastDetector::from_bytes(py, data)
}

/// A model file's bytes: a regular file of at most `MAX_MODEL_BYTES`, so a
/// FIFO or `/dev/zero` is refused instead of blocking or filling memory.
fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cap = anomaly_core::persist::MAX_MODEL_BYTES;
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(&e))?;
    if !meta.is_file() || meta.len() > cap {
        return Err(fail(&format!("not a regular file of at most {cap} bytes")));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(cap).read_to_end(&mut bytes)).map_err(|e| fail(&e))?;
    Ok(bytes)
}
