//! `ConsumptionRules`: the consumption rules on numpy columns.

use anomaly_core::consumption::simulate::{simulate, SimulationSpec};
use anomaly_core::consumption::{
    AnomalyType, ColumnNames, ConsumptionParams, ConsumptionReport, HourBand, Readings, Severity,
};
use anomaly_core::persist::Persist;
use anomaly_core::traits::{Detect, ParamGuard};
use anomaly_core::Error;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{run, to_py};

/// Validated consumption rules. Built from a JSON object of parameters (the
/// Python wrapper `anomaly.consumption.ConsumptionRules` does this).
#[pyclass(module = "anomaly._anomaly", name = "ConsumptionRules", frozen)]
pub(crate) struct PyConsumptionRules {
    params: ConsumptionParams,
}

fn checked(py: Python<'_>, params: ConsumptionParams) -> PyResult<PyConsumptionRules> {
    params.check().map_err(|e| to_py(py, e))?;
    Ok(PyConsumptionRules { params })
}

#[pymethods]
impl PyConsumptionRules {
    #[new]
    #[pyo3(signature = (params_json = None))]
    fn new(py: Python<'_>, params_json: Option<&str>) -> PyResult<Self> {
        let params = match params_json {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| to_py(py, Error::param("params", text, &format!("not a valid parameter set: {e}"))))?,
            None => ConsumptionParams::default(),
        };
        checked(py, params)
    }

    /// A named parameter set: `calibrated` (the defaults) or `literal`.
    #[staticmethod]
    fn preset(py: Python<'_>, name: &str) -> PyResult<Self> {
        checked(py, ConsumptionParams::preset("preset", name).map_err(|e| to_py(py, e))?)
    }

    /// The parameters as a JSON object.
    fn params_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.params).map_err(|e| crate::errors::InternalError::new_err(e.to_string()))
    }

    /// The rules as model-file bytes (the same bytes as pickle).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.params.to_bytes().map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads rules from model-file bytes.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let params = ConsumptionParams::from_bytes(data).map_err(|e| to_py(py, e))?;
        checked(py, params)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = py.import("anomaly._anomaly")?.getattr("_consumption_rules_from_bytes")?;
        Ok((restore, (self.to_bytes(py)?,)))
    }

    /// Runs the rules over readings given as columns: client codes into
    /// `client_names`, timestamps in seconds, kWh. With `source_interval`
    /// (minutes) below the rules' interval, readings are first summed into
    /// complete buckets. Returns a dict of columns: `readings` (the scored
    /// rows), `clients` and `monthly`.
    #[pyo3(signature = (client_codes, client_names, timestamps, kwh, *, columns = None, source_interval = None))]
    #[allow(clippy::too_many_arguments)]
    fn detect<'py>(
        &self,
        py: Python<'py>,
        client_codes: PyReadonlyArray1<'py, u32>,
        client_names: Vec<String>,
        timestamps: PyReadonlyArray1<'py, i64>,
        kwh: PyReadonlyArray1<'py, f64>,
        columns: Option<(String, String, String)>,
        source_interval: Option<u32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let names = columns.map(|(client, time, value)| ColumnNames { client, time, value }).unwrap_or_default();
        let (codes, ts, values) = (client_codes.as_array(), timestamps.as_array(), kwh.as_array());
        let params = &self.params;
        let (readings, report) = run(py, move || {
            let mut readings = Readings::with_names(names, client_names, codes.to_vec(), ts.to_vec(), values.to_vec())?;
            if let Some(from) = source_interval.filter(|&m| m != params.interval_minutes) {
                readings = readings.aggregate(from, params.interval_minutes)?;
            }
            let report = params.check()?.detect(&readings)?;
            Ok((readings, report))
        })?;
        report_to_dict(py, readings, report)
    }
}

fn report_to_dict<'py>(py: Python<'py>, readings: Readings, report: ConsumptionReport) -> PyResult<Bound<'py, PyDict>> {
    let flags = report.flags;
    let rows = PyDict::new(py);
    rows.set_item("client", readings.clients().to_vec().into_pyarray(py))?;
    rows.set_item("timestamp", readings.timestamps().to_vec().into_pyarray(py))?;
    rows.set_item("kwh", readings.kwh().to_vec().into_pyarray(py))?;
    rows.set_item("is_anomaly", flags.is_anomaly.into_pyarray(py))?;
    rows.set_item("types", flags.types.iter().map(|t| t.0).collect::<Vec<u8>>().into_pyarray(py))?;
    rows.set_item("score", flags.score.into_pyarray(py))?;
    rows.set_item("severity", flags.severity.iter().map(|s| *s as u8).collect::<Vec<u8>>().into_pyarray(py))?;

    let c = &report.clients;
    let clients = PyDict::new(py);
    clients.set_item("client", c.iter().map(|s| s.client.clone()).collect::<Vec<_>>())?;
    clients.set_item("n_readings", c.iter().map(|s| s.n_readings as u64).collect::<Vec<_>>().into_pyarray(py))?;
    clients.set_item("n_anomalies", c.iter().map(|s| s.n_anomalies as u64).collect::<Vec<_>>().into_pyarray(py))?;
    for (k, t) in AnomalyType::ALL.iter().enumerate() {
        let counts: Vec<u64> = c.iter().map(|s| s.n_by_type[k] as u64).collect();
        clients.set_item(format!("n_{}", t.as_str()), counts.into_pyarray(py))?;
    }
    clients.set_item("n_critical", c.iter().map(|s| s.n_critical as u64).collect::<Vec<_>>().into_pyarray(py))?;
    clients.set_item("n_severe", c.iter().map(|s| s.n_severe as u64).collect::<Vec<_>>().into_pyarray(py))?;
    clients.set_item("max_score", c.iter().map(|s| s.max_score).collect::<Vec<_>>().into_pyarray(py))?;
    clients.set_item("suspicious", c.iter().map(|s| s.suspicious).collect::<Vec<_>>().into_pyarray(py))?;

    let m = &report.monthly;
    let monthly = PyDict::new(py);
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    monthly.set_item("client", m.iter().map(|a| a.client.clone()).collect::<Vec<_>>())?;
    monthly.set_item("year", m.iter().map(|a| a.year).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("month", m.iter().map(|a| a.month).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("n_readings", m.iter().map(|a| a.n_readings as u64).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("total_kwh", m.iter().map(|a| a.total_kwh).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("mean_kwh", m.iter().map(|a| a.mean_kwh).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("min_kwh", m.iter().map(|a| a.min_kwh).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("max_kwh", m.iter().map(|a| a.max_kwh).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("n_anomalies", m.iter().map(|a| a.n_anomalies as u64).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("n_critical", m.iter().map(|a| a.n_critical as u64).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("night_mean_kwh", m.iter().map(|a| opt(a.night_mean_kwh)).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("peak_mean_kwh", m.iter().map(|a| opt(a.peak_mean_kwh)).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("score", m.iter().map(|a| a.score).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("suspicion", m.iter().map(|a| a.suspicion).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("suspicious", m.iter().map(|a| a.suspicious).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("rank", m.iter().map(|a| a.rank as u64).collect::<Vec<_>>().into_pyarray(py))?;
    monthly.set_item("n_episodes", m.iter().map(|a| a.n_episodes as u64).collect::<Vec<_>>().into_pyarray(py))?;
    let severe: Vec<u64> = m.iter().map(|a| a.n_severe_episodes as u64).collect();
    monthly.set_item("n_severe_episodes", severe.into_pyarray(py))?;
    monthly.set_item("rules", m.iter().map(|a| a.rules.0).collect::<Vec<u8>>().into_pyarray(py))?;

    let e = &report.episodes;
    let episodes = PyDict::new(py);
    episodes.set_item("client", e.iter().map(|e| e.client.clone()).collect::<Vec<_>>())?;
    episodes.set_item("type", e.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())?;
    episodes.set_item("start", e.iter().map(|e| e.start).collect::<Vec<_>>().into_pyarray(py))?;
    episodes.set_item("end", e.iter().map(|e| e.end).collect::<Vec<_>>().into_pyarray(py))?;
    episodes.set_item("n_readings", e.iter().map(|e| e.n_readings as u64).collect::<Vec<_>>().into_pyarray(py))?;
    episodes.set_item("peak_score", e.iter().map(|e| e.peak_score).collect::<Vec<_>>().into_pyarray(py))?;
    episodes.set_item("peak_severity", e.iter().map(|e| e.peak_severity as u8).collect::<Vec<_>>().into_pyarray(py))?;
    episodes
        .set_item("kwh_above_baseline", e.iter().map(|e| e.kwh_above_baseline).collect::<Vec<_>>().into_pyarray(py))?;

    let out = PyDict::new(py);
    out.set_item("readings", rows)?;
    out.set_item("episodes", episodes)?;
    out.set_item("clients", clients)?;
    out.set_item("monthly", monthly)?;
    Ok(out)
}

/// Restores pickled rules (the target of `ConsumptionRules.__reduce__`).
#[pyfunction]
pub(crate) fn _consumption_rules_from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<PyConsumptionRules> {
    PyConsumptionRules::from_bytes(py, data)
}

/// Names of the anomaly types, in bit order of the `types` column.
pub(crate) fn anomaly_type_names() -> Vec<&'static str> {
    AnomalyType::ALL.iter().map(|t| t.as_str()).collect()
}

/// Names of the severities, in the order of the `severity` codes.
pub(crate) fn severity_names() -> Vec<&'static str> {
    Severity::ALL.iter().map(|s| s.as_str()).collect()
}

/// Synthetic readings with injected anomalies (see `anomaly_core::consumption::simulate`).
#[pyfunction]
#[pyo3(signature = (*, clients = 50, days = 60, start = 1_704_067_200, interval_minutes = 60, anomaly_rate = 0.2, seed = 7))]
pub(crate) fn simulate_consumption<'py>(
    py: Python<'py>,
    clients: usize,
    days: u32,
    start: i64,
    interval_minutes: u32,
    anomaly_rate: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = SimulationSpec { clients, days, start, interval_minutes, anomaly_rate, seed };
    let (readings, events) = run(py, move || simulate(&spec))?;
    let out = PyDict::new(py);
    out.set_item("client_names", readings.client_names().to_vec())?;
    out.set_item("client", readings.clients().to_vec().into_pyarray(py))?;
    out.set_item("timestamp", readings.timestamps().to_vec().into_pyarray(py))?;
    out.set_item("kwh", readings.kwh().to_vec().into_pyarray(py))?;
    let ev = PyDict::new(py);
    ev.set_item("client", events.iter().map(|e| e.client.clone()).collect::<Vec<_>>())?;
    ev.set_item("kind", events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())?;
    ev.set_item("start", events.iter().map(|e| e.start).collect::<Vec<_>>().into_pyarray(py))?;
    ev.set_item("end", events.iter().map(|e| e.end).collect::<Vec<_>>().into_pyarray(py))?;
    out.set_item("events", ev)?;
    Ok(out)
}

/// A sampling interval in whole minutes, parsed by the core's one duration
/// grammar (`"30m"`, `"1h"`, `"90"` = 90 minutes); errors name `name`.
#[pyfunction]
pub(crate) fn parse_minutes(py: Python<'_>, name: &str, text: &str) -> PyResult<u32> {
    anomaly_core::time::parse_minutes(name, text).map_err(|e| to_py(py, e))
}

/// An hour band `"START-END"` (e.g. `"22-6"`) as `(start_hour, end_hour)`,
/// parsed and checked by the core; errors name `name`.
#[pyfunction]
pub(crate) fn parse_hour_band(py: Python<'_>, name: &str, text: &str) -> PyResult<(u32, u32)> {
    let band = HourBand::parse(name, text).map_err(|e| to_py(py, e))?;
    Ok((band.start_hour, band.end_hour))
}
