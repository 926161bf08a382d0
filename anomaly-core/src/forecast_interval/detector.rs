//! The plant team's rule on top of the forecast: a reading is anomalous
//! outside `[yhat_lower, yhat_upper]` or when `|y - yhat| > k * std(training
//! residuals)`, with a 0-100 score. One model per process variable.
//!
//! Reading times are seconds since the epoch, as everywhere in the library;
//! `model_times` converts them once to the Prophet model's nanoseconds.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::model::{FittedProphet, History, Intervals};
use super::options::{Mode, ProphetOptions, SeasonalitySetting};
use crate::error::{Error, Result};
use crate::persist::Persist;

/// The detector's settings: Prophet's options plus the rule's thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Prophet options for every variable (the plant team's defaults:
    /// interval 0.95, changepoint prior 0.05, multiplicative, daily and
    /// weekly seasonality, no yearly).
    pub prophet: ProphetOptions,
    /// `k` of the `|y - yhat| > k * std(residuals)` rule.
    pub k_sigma: f64,
    /// Bands from Prophet's Monte Carlo (with this seed) instead of the
    /// deterministic analytic band.
    pub simulated_seed: Option<u64>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            prophet: ProphetOptions {
                interval_width: 0.95,
                changepoint_prior_scale: 0.05,
                seasonality_mode: Mode::Multiplicative,
                daily_seasonality: SeasonalitySetting::Enabled(true),
                weekly_seasonality: SeasonalitySetting::Enabled(true),
                yearly_seasonality: SeasonalitySetting::Enabled(false),
                ..Default::default()
            },
            k_sigma: 2.0,
            simulated_seed: None,
        }
    }
}

impl DetectorConfig {
    /// The plant defaults with the options every front end names (CLI
    /// flags, job settings), checked: `seasonality_mode` is `additive` or
    /// `multiplicative`.
    pub fn from_options(
        k_sigma: f64,
        interval_width: f64,
        changepoint_prior_scale: f64,
        seasonality_mode: &str,
    ) -> Result<DetectorConfig> {
        let mut config = DetectorConfig { k_sigma, ..Default::default() };
        config.prophet.interval_width = interval_width;
        config.prophet.changepoint_prior_scale = changepoint_prior_scale;
        config.prophet.seasonality_mode = match seasonality_mode {
            "additive" => Mode::Additive,
            "multiplicative" => Mode::Multiplicative,
            other => {
                return Err(Error::param("seasonality_mode", other, "expected additive or multiplicative"));
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the thresholds and Prophet options.
    pub fn validate(&self) -> Result<()> {
        self.prophet.validate()?;
        if !(self.k_sigma.is_finite() && self.k_sigma > 0.0) {
            return Err(Error::param("k_sigma", self.k_sigma, "must be a finite number > 0"));
        }
        Ok(())
    }

    fn intervals(&self) -> Intervals {
        match self.simulated_seed {
            Some(seed) => Intervals::Simulated { seed },
            None => Intervals::Analytic,
        }
    }
}

/// Statistics of a variable's training data, kept with its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableStats {
    /// Readings used (non-NaN).
    pub count: usize,
    /// Mean reading.
    pub mean: f64,
    /// Sample standard deviation of the readings.
    pub std: f64,
    /// Smallest reading.
    pub min: f64,
    /// Largest reading.
    pub max: f64,
    /// Sample standard deviation of the training residuals `y - yhat`.
    pub residual_std: f64,
    /// First training timestamp (seconds).
    pub first: i64,
    /// Last training timestamp (seconds).
    pub last: i64,
}

/// One variable's fitted detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedDetector {
    /// The rule's settings.
    pub config: DetectorConfig,
    /// The forecasting model.
    pub model: FittedProphet,
    /// Training statistics.
    pub stats: VariableStats,
}

impl Persist for FittedDetector {
    const KIND: &'static str = "forecast_detector";

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let detector: FittedDetector = crate::persist::read_envelope(bytes)?;
        detector.check()?;
        Ok(detector)
    }

    /// Version 1 kept `stats.first` and `stats.last` in nanoseconds.
    fn upgrade(version: u32, mut model: serde_json::Value) -> Result<serde_json::Value> {
        if version < 2 {
            for key in ["first", "last"] {
                let ns = model["stats"][key].as_i64().ok_or_else(|| Error::CorruptModel {
                    reason: format!("forecast_detector model: stats.{key} is not an integer"),
                })?;
                model["stats"][key] = ns.div_euclid(crate::time::NANOS_PER_SECOND).into();
            }
        }
        Ok(model)
    }
}

/// Reading times in seconds as the Prophet model's nanoseconds; a time
/// nanoseconds cannot count is an error naming its row.
fn model_times(ds: &[i64], field: &str) -> Result<Vec<i64>> {
    ds.iter()
        .enumerate()
        .map(|(row, &s)| {
            crate::time::to_nanos(s).ok_or_else(|| Error::Shape {
                field: format!("{field} at row {row}"),
                expected: format!("a time in {} (the forecast model's range)", crate::time::NANOS_RANGE),
                found: crate::time::format_timestamp(s),
            })
        })
        .collect()
}

/// Detection results, one per reading.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    /// Forecast.
    pub yhat: Vec<f64>,
    /// Band.
    pub yhat_lower: Vec<f64>,
    /// Band.
    pub yhat_upper: Vec<f64>,
    /// `y - yhat`.
    pub residual: Vec<f64>,
    /// Outside the band or beyond `k` residual standard deviations.
    pub is_anomaly: Vec<bool>,
    /// 0-100.
    pub score: Vec<f64>,
}

/// The plant team's score: how far outside the band, in half-widths (x50),
/// or the residual in standard deviations (x20), whichever is larger,
/// clipped to 0..100.
pub fn anomaly_score(y: f64, yhat: f64, lower: f64, upper: f64, residual_std: f64) -> f64 {
    let band = if y > upper {
        (y - upper) / (upper - yhat).max(f64::MIN_POSITIVE) * 50.0
    } else if y < lower {
        (lower - y) / (yhat - lower).max(f64::MIN_POSITIVE) * 50.0
    } else {
        0.0
    };
    let residual = if residual_std > 0.0 { (y - yhat).abs() / residual_std * 20.0 } else { 0.0 };
    let score = band.max(residual);
    if score.is_nan() {
        0.0
    } else {
        score.clamp(0.0, 100.0)
    }
}

/// The magnitudes a detector fits (largest `|y|`).
const MIN_MAGNITUDE: f64 = 1e-150;
const MAX_MAGNITUDE: f64 = 1e150;

/// Mean and sample standard deviation, computed in units of the largest
/// magnitude so that neither overflows near 1e300 nor underflows near
/// 1e-300 (squares of such values are not representable).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if values.is_empty() || scale == 0.0 || !scale.is_finite() {
        return (if values.is_empty() { f64::NAN } else { 0.0 }, 0.0);
    }
    let mean = values.iter().map(|v| v / scale).sum::<f64>() / n;
    if values.len() < 2 {
        return (mean * scale, 0.0);
    }
    let var = values.iter().map(|v| (v / scale - mean) * (v / scale - mean)).sum::<f64>() / (n - 1.0);
    (mean * scale, var.sqrt() * scale)
}

impl FittedDetector {
    /// Fits a variable's model to readings at `ds` (seconds) and measures
    /// its training residuals.
    pub fn fit(config: &DetectorConfig, ds: Vec<i64>, y: Vec<f64>) -> Result<FittedDetector> {
        config.validate()?;
        // Outside these magnitudes the band (sigma ~1e-9 of the scale for a
        // clean series) underflows or the spread overflows: every reading
        // would be flagged, or none. Refuse rather than fit nonsense.
        let absmax = y.iter().filter(|v| !v.is_nan()).fold(0.0f64, |m, v| m.max(v.abs()));
        if absmax > 0.0 && !(MIN_MAGNITUDE..=MAX_MAGNITUDE).contains(&absmax) {
            return Err(Error::param(
                "y",
                format!("{absmax:e}"),
                "largest magnitude outside 1e-150 to 1e150: express the values in another unit",
            ));
        }
        let history = History::new(model_times(&ds, "ds")?, y.clone(), Vec::new())?;
        let model = FittedProphet::fit(&config.prophet, &history)?;
        let keep: Vec<usize> = (0..y.len()).filter(|&i| !y[i].is_nan()).collect();
        let ds_kept: Vec<i64> = keep.iter().map(|&i| ds[i]).collect();
        let y_kept: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
        let forecast = model.predict(&model_times(&ds_kept, "ds")?, &[], Intervals::None)?;
        let residuals: Vec<f64> = y_kept.iter().zip(&forecast.yhat).map(|(a, b)| a - b).collect();
        let (mean, std) = mean_std(&y_kept);
        let stats = VariableStats {
            count: y_kept.len(),
            mean,
            std,
            min: y_kept.iter().copied().fold(f64::INFINITY, f64::min),
            max: y_kept.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            residual_std: mean_std(&residuals).1,
            first: ds_kept[0],
            last: ds_kept[ds_kept.len() - 1],
        };
        // Values whose spread overflows (near 1e308) cannot be modelled;
        // say so rather than save a model with infinities inside.
        if ![stats.mean, stats.std, stats.residual_std].iter().all(|v| v.is_finite()) {
            return Err(Error::param("y", stats.max, "values too large to model: their spread overflows"));
        }
        Ok(FittedDetector { config: config.clone(), model, stats })
    }

    /// Applies the rule to readings `(ds, y)` (sorted `ds` in seconds; NaN
    /// `y` gives a forecast and no flag).
    pub fn detect(&self, ds: &[i64], y: &[f64]) -> Result<Detection> {
        if y.len() != ds.len() {
            return Err(Error::LengthMismatch { field: "y".into(), expected: ds.len(), found: y.len() });
        }
        if let Some(row) = y.iter().position(|v| v.is_infinite()) {
            return Err(Error::NonFinite { field: "y".into(), row, value: y[row] });
        }
        let f = self.model.predict(&model_times(ds, "ds")?, &[], self.config.intervals())?;
        let mut out =
            Detection { yhat: f.yhat, yhat_lower: f.yhat_lower, yhat_upper: f.yhat_upper, ..Default::default() };
        let k = self.config.k_sigma * self.stats.residual_std;
        for (i, &yi) in y.iter().enumerate() {
            let residual = yi - out.yhat[i];
            let outside = yi > out.yhat_upper[i] || yi < out.yhat_lower[i];
            out.residual.push(residual);
            out.is_anomaly.push(!yi.is_nan() && (outside || residual.abs() > k));
            out.score.push(if yi.is_nan() {
                0.0
            } else {
                anomaly_score(yi, out.yhat[i], out.yhat_lower[i], out.yhat_upper[i], self.stats.residual_std)
            });
        }
        Ok(out)
    }
}

/// Readings of many variables in long format: `(ds, variable, value)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LongReadings {
    /// Timestamps (seconds).
    pub ds: Vec<i64>,
    /// Variable of each row.
    pub variable: Vec<String>,
    /// Values (NaN = missing).
    pub value: Vec<f64>,
    /// The caller's names of the three columns, for error messages.
    pub columns: LongColumns,
}

/// Column names used in error messages, so users see their own names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongColumns {
    /// Timestamp column.
    pub time: String,
    /// Variable name column.
    pub variable: String,
    /// Value column.
    pub value: String,
}

impl Default for LongColumns {
    fn default() -> Self {
        LongColumns { time: "datetime".into(), variable: "variable".into(), value: "value".into() }
    }
}

impl LongReadings {
    /// Rows of each variable, sorted by time; duplicate `(variable, ds)` is
    /// an error naming both rows.
    fn by_variable(&self) -> Result<BTreeMap<&str, Vec<usize>>> {
        if self.ds.is_empty() {
            return Err(Error::Empty { what: "readings".into() });
        }
        let names = &self.columns;
        for (field, len) in [(&names.variable, self.variable.len()), (&names.value, self.value.len())] {
            if len != self.ds.len() {
                return Err(Error::LengthMismatch { field: field.clone(), expected: self.ds.len(), found: len });
            }
        }
        if let Some(row) = self.value.iter().position(|v| v.is_infinite()) {
            return Err(Error::NonFinite { field: names.value.clone(), row, value: self.value[row] });
        }
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (row, v) in self.variable.iter().enumerate() {
            groups.entry(v.as_str()).or_default().push(row);
        }
        for rows in groups.values_mut() {
            rows.sort_by_key(|&r| (self.ds[r], r));
            if let Some(w) = rows.windows(2).find(|w| self.ds[w[0]] == self.ds[w[1]]) {
                return Err(Error::DuplicateTimestamp {
                    field: names.time.clone(),
                    row: w[1],
                    first_row: w[0],
                    key: format!("{} at {}", self.variable[w[1]], crate::time::format_timestamp(self.ds[w[1]])),
                });
            }
        }
        Ok(groups)
    }
}

/// One detector per variable.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MultiDetector {
    /// Detectors by variable name.
    pub variables: BTreeMap<String, FittedDetector>,
}

impl Persist for MultiDetector {
    const KIND: &'static str = "forecast_detectors";

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let models: MultiDetector = crate::persist::read_envelope(bytes)?;
        models.variables.values().try_for_each(FittedDetector::check)?;
        Ok(models)
    }

    fn upgrade(version: u32, mut model: serde_json::Value) -> Result<serde_json::Value> {
        if let Some(variables) = model.get_mut("variables").and_then(|v| v.as_object_mut()) {
            for detector in variables.values_mut() {
                *detector = FittedDetector::upgrade(version, detector.take())?;
            }
        }
        Ok(model)
    }
}

/// Detection over long-format readings, in input row order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LongDetection {
    /// Per-row results (rows of unknown variables get NaN and no flag).
    pub rows: Detection,
    /// Rows whose variable has no model.
    pub unknown_rows: usize,
}

impl MultiDetector {
    /// Fits one detector per variable, in parallel.
    pub fn fit(config: &DetectorConfig, readings: &LongReadings) -> Result<MultiDetector> {
        Self::fit_with_progress(config, readings, &|_| {})
    }

    /// As [`MultiDetector::fit`], calling `done(variable)` as each finishes
    /// (for progress bars).
    pub fn fit_with_progress(
        config: &DetectorConfig,
        readings: &LongReadings,
        done: &(dyn Fn(&str) + Sync),
    ) -> Result<MultiDetector> {
        config.validate()?;
        model_times(&readings.ds, &readings.columns.time)?;
        let groups = readings.by_variable()?;
        let fitted: Vec<(String, Result<FittedDetector>)> = groups
            .into_par_iter()
            .map(|(name, rows)| {
                let ds = rows.iter().map(|&r| readings.ds[r]).collect();
                let y = rows.iter().map(|&r| readings.value[r]).collect();
                let fitted = FittedDetector::fit(config, ds, y);
                done(name);
                (name.to_owned(), fitted)
            })
            .collect();
        let mut variables = BTreeMap::new();
        for (name, result) in fitted {
            let detector = result.map_err(|e| match e {
                Error::Shape { field, expected, found } => {
                    Error::Shape { field: format!("{field} of variable {name:?}"), expected, found }
                }
                other => other,
            })?;
            variables.insert(name, detector);
        }
        Ok(MultiDetector { variables })
    }

    /// Applies each variable's rule to its rows, without refitting.
    pub fn detect(&self, readings: &LongReadings) -> Result<LongDetection> {
        // Times checked in input order first, so an error names the
        // caller's row, not a row of one variable's sorted readings.
        model_times(&readings.ds, &readings.columns.time)?;
        let groups = readings.by_variable()?;
        let n = readings.ds.len();
        let mut out = LongDetection {
            rows: Detection {
                yhat: vec![f64::NAN; n],
                yhat_lower: vec![f64::NAN; n],
                yhat_upper: vec![f64::NAN; n],
                residual: vec![f64::NAN; n],
                is_anomaly: vec![false; n],
                score: vec![0.0; n],
            },
            unknown_rows: 0,
        };
        let results: Vec<(&Vec<usize>, Option<Result<Detection>>)> = groups
            .par_iter()
            .map(|(name, rows)| {
                let result = self.variables.get(*name).map(|d| {
                    let ds: Vec<i64> = rows.iter().map(|&r| readings.ds[r]).collect();
                    let y: Vec<f64> = rows.iter().map(|&r| readings.value[r]).collect();
                    d.detect(&ds, &y)
                });
                (rows, result)
            })
            .collect();
        for (rows, result) in results {
            let Some(result) = result else {
                out.unknown_rows += rows.len();
                continue;
            };
            let d = result?;
            for (k, &r) in rows.iter().enumerate() {
                out.rows.yhat[r] = d.yhat[k];
                out.rows.yhat_lower[r] = d.yhat_lower[k];
                out.rows.yhat_upper[r] = d.yhat_upper[k];
                out.rows.residual[r] = d.residual[k];
                out.rows.is_anomaly[r] = d.is_anomaly[k];
                out.rows.score[r] = d.score[k];
            }
        }
        Ok(out)
    }

    /// The files of a model directory, as `(file name, bytes)`: one model
    /// file per variable and `detector.json` indexing them (variable, file,
    /// statistics). The core only serialises; callers write the files.
    pub fn to_directory(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::with_capacity(self.variables.len() + 1);
        let mut index = Vec::new();
        for (i, (name, detector)) in self.variables.iter().enumerate() {
            let safe: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
            let file = format!("{i:03}_{safe}.json");
            files.push((file.clone(), detector.to_bytes()?));
            index.push(serde_json::json!({ "variable": name, "file": file, "stats": detector.stats }));
        }
        let doc = serde_json::json!({ "format": "anomaly-model-directory", "version": 1, "variables": index });
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::CorruptModel { reason: e.to_string() })?;
        files.push((INDEX_FILE.to_owned(), bytes));
        Ok(files)
    }

    /// Reads a model directory written from [`MultiDetector::to_directory`]:
    /// `read(name)` returns a file's bytes or why it cannot. File names are
    /// checked before they are read (none points outside the directory).
    pub fn from_directory(mut read: impl FnMut(&str) -> std::result::Result<Vec<u8>, String>) -> Result<MultiDetector> {
        let corrupt = |reason: String| Error::CorruptModel { reason };
        let bytes = read(INDEX_FILE).map_err(corrupt)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("{INDEX_FILE}: {e}")))?;
        if doc["format"] != "anomaly-model-directory" {
            return Err(corrupt(format!("{INDEX_FILE} is not an anomaly model directory index")));
        }
        let version = doc["version"].as_u64().unwrap_or(0);
        if version > 1 {
            return Err(Error::UnsupportedVersion { found: u32::try_from(version).unwrap_or(u32::MAX), supported: 1 });
        }
        let entries = doc["variables"].as_array().ok_or_else(|| corrupt(format!("{INDEX_FILE} lists no variables")))?;
        let mut variables = BTreeMap::new();
        for entry in entries {
            let (Some(name), Some(file)) = (entry["variable"].as_str(), entry["file"].as_str()) else {
                return Err(corrupt(format!("{INDEX_FILE} has an entry without variable or file")));
            };
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(corrupt(format!("model file name {file:?} points outside the directory")));
            }
            let bytes = read(file).map_err(corrupt)?;
            variables.insert(name.to_owned(), FittedDetector::from_bytes(&bytes)?);
        }
        Ok(MultiDetector { variables })
    }
}

/// The index file of a model directory.
pub const INDEX_FILE: &str = "detector.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_follows_the_plant_rule() {
        // Inside the band, the residual term: |res| / std * 20.
        assert_eq!(anomaly_score(10.5, 10.0, 9.0, 11.0, 1.0), 10.0);
        // Above the band by half its upper width: 25, unless the residual term is larger.
        assert_eq!(anomaly_score(11.5, 10.0, 9.0, 11.0, 10.0), 25.0);
        assert_eq!(anomaly_score(11.5, 10.0, 9.0, 11.0, 1.0), 30.0);
        // Below the band, clipped at 100.
        assert_eq!(anomaly_score(-100.0, 10.0, 9.0, 11.0, 1.0), 100.0);
        assert_eq!(anomaly_score(7.0, 10.0, 9.0, 11.0, 100.0), 100.0);
    }

    fn hourly(days: i64) -> (Vec<i64>, Vec<f64>) {
        let ds: Vec<i64> = (0..days * 24).map(|h| 1_700_000_000 + h * 3600).collect();
        let y = ds.iter().map(|&t| ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin()).collect();
        (ds, y)
    }

    #[test]
    fn version_1_files_counted_statistics_in_nanoseconds() {
        let (ds, y) = hourly(10);
        let fitted = FittedDetector::fit(&DetectorConfig::default(), ds.clone(), y).unwrap();
        assert_eq!((fitted.stats.first, fitted.stats.last), (ds[0], ds[ds.len() - 1]));
        let mut envelope: serde_json::Value = serde_json::from_slice(&fitted.to_bytes().unwrap()).unwrap();
        envelope["version"] = 1.into();
        for key in ["first", "last"] {
            let s = envelope["model"]["stats"][key].as_i64().unwrap();
            envelope["model"]["stats"][key] = (s * 1_000_000_000).into();
        }
        let old = FittedDetector::from_bytes(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(old, fitted);
        let many = serde_json::json!({"format": "anomaly-model", "version": 1, "kind": "forecast_detectors",
            "model": {"variables": {"TI-101": envelope["model"].clone()}}});
        let old = MultiDetector::from_bytes(&serde_json::to_vec(&many).unwrap()).unwrap();
        assert_eq!(old.variables["TI-101"], fitted);
    }

    #[test]
    fn a_time_nanoseconds_cannot_count_is_an_error_naming_its_row() {
        let (mut ds, y) = hourly(10);
        let fitted = FittedDetector::fit(&DetectorConfig::default(), ds.clone(), y.clone()).unwrap();
        ds[5] = crate::time::parse_timestamp("9999-01-01").unwrap();
        ds.sort_unstable();
        let err = fitted.detect(&ds, &y).unwrap_err().to_string();
        assert!(err.contains("ds at row 239") && err.contains("9999-01-01"), "{err}");
    }
}
