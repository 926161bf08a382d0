//! Python bindings of `anomaly`: the `anomaly._anomaly` extension module.
//!
//! Thin on purpose: each file converts Python/numpy types, calls
//! `anomaly-core` with the GIL released, and converts the results back.
//! The idiomatic API (pandas, scikit-learn conventions) lives in the pure
//! Python package `python/anomaly/`.

use pyo3::prelude::*;

/// mimalloc for the extension's own allocations: small, short-lived
/// vectors dominate one-applicant scoring (see anomaly-py/Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod consumption;
mod credit_risk;
mod errors;
mod forecast_detector;
mod forecast_interval;
mod frame;
mod isolation_forest;

#[pymodule]
fn _anomaly(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<consumption::PyConsumptionRules>()?;
    m.add_function(wrap_pyfunction!(consumption::_consumption_rules_from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(consumption::simulate_consumption, m)?)?;
    m.add_function(wrap_pyfunction!(consumption::parse_minutes, m)?)?;
    m.add_function(wrap_pyfunction!(consumption::parse_hour_band, m)?)?;
    m.add_class::<credit_risk::PyCreditModel>()?;
    m.add_class::<isolation_forest::PyIsolationForestModel>()?;
    m.add_function(wrap_pyfunction!(isolation_forest::_isolation_forest_from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(isolation_forest::summarize_labels, m)?)?;
    m.add_class::<forecast_detector::PyForecastDetector>()?;
    m.add_function(wrap_pyfunction!(forecast_detector::_forecast_detector_from_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_interval::prophet_map, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_interval::prophet_map_many, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_interval::prophet_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_interval::prophet_trend, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_interval::fourier_series, m)?)?;
    m.add("MODEL_FORMAT", anomaly_core::persist::FORMAT)?;
    m.add("MODEL_FORMAT_VERSION", anomaly_core::persist::VERSION)?;
    m.add("MAX_MODEL_BYTES", anomaly_core::persist::MAX_MODEL_BYTES)?;
    m.add("ANOMALY_TYPES", consumption::anomaly_type_names())?;
    m.add("SEVERITIES", consumption::severity_names())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
