//! Validated inputs shared by the detectors.
//!
//! Validation happens once, at construction, and names the first bad row;
//! algorithms then rely on the invariants without re-checking.

use ndarray::{ArrayView2, CowArray, Ix2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::format_timestamp;

/// A univariate time series: strictly increasing timestamps (seconds, see
/// [`crate::time`]) and finite values, at least one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

impl TimeSeries {
    /// Validates and wraps a series.
    ///
    /// ```
    /// use anomaly_core::data::TimeSeries;
    /// assert!(TimeSeries::new(vec![0, 60], vec![1.0, 2.0]).is_ok());
    /// assert!(TimeSeries::new(vec![60, 0], vec![1.0, 2.0]).is_err());
    /// ```
    pub fn new(timestamps: Vec<i64>, values: Vec<f64>) -> Result<Self> {
        if timestamps.is_empty() {
            return Err(Error::Empty { what: "time series".into() });
        }
        if values.len() != timestamps.len() {
            return Err(Error::LengthMismatch { field: "y".into(), expected: timestamps.len(), found: values.len() });
        }
        check_finite("y", &values)?;
        for (row, pair) in timestamps.windows(2).enumerate() {
            if pair[1] == pair[0] {
                return Err(Error::DuplicateTimestamp {
                    field: "ds".into(),
                    row: row + 1,
                    first_row: row,
                    key: format_timestamp(pair[1]),
                });
            }
            if pair[1] < pair[0] {
                return Err(Error::Unsorted { field: "ds".into(), row: row + 1, previous_row: row });
            }
        }
        Ok(TimeSeries { timestamps, values })
    }

    /// Timestamps, strictly increasing.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Values, all finite.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of points (never zero).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: a series has at least one point.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A dense, row-major `n_rows x n_features` matrix of finite `f32` values
/// (the precision scikit-learn's trees use), at least one row and one column.
/// Borrows the caller's buffer when it is already row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix<'a> {
    data: CowArray<'a, f32, Ix2>,
}

impl<'a> FeatureMatrix<'a> {
    /// Validates a matrix; `expected_features` checks the width against a
    /// fitted model.
    pub fn new(data: impl Into<CowArray<'a, f32, Ix2>>, expected_features: Option<usize>) -> Result<Self> {
        let mut data = data.into();
        let (rows, cols) = data.dim();
        if rows == 0 {
            return Err(Error::Empty { what: "feature matrix".into() });
        }
        if cols == 0 {
            return Err(Error::Shape {
                field: "X".into(),
                expected: "at least 1 feature".into(),
                found: "0 features".into(),
            });
        }
        if let Some(expected) = expected_features.filter(|&e| e != cols) {
            return Err(Error::Shape {
                field: "X".into(),
                expected: format!("{expected} features"),
                found: format!("{cols} features"),
            });
        }
        if !data.is_standard_layout() {
            data = CowArray::from(data.as_standard_layout().into_owned());
        }
        for ((row, col), v) in data.indexed_iter() {
            if !v.is_finite() {
                return Err(Error::NonFinite { field: format!("X[:, {col}]"), row, value: f64::from(*v) });
            }
        }
        Ok(FeatureMatrix { data })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.data.nrows()
    }

    /// Number of features (columns).
    pub fn n_features(&self) -> usize {
        self.data.ncols()
    }

    /// All values, row after row.
    pub fn as_slice(&self) -> &[f32] {
        // Standard layout is ensured in `new`.
        self.data.as_slice().unwrap_or(&[])
    }

    /// One row.
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.n_features();
        &self.as_slice()[i * d..(i + 1) * d]
    }

    /// The validated values.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.data.view()
    }
}

/// Checks that every value is finite, naming the first row that is not.
pub fn check_finite(field: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(Error::NonFinite { field: field.into(), row, value: values[row] }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn series_rejects_each_bad_input() {
        assert!(matches!(TimeSeries::new(vec![], vec![]), Err(Error::Empty { .. })));
        assert!(matches!(TimeSeries::new(vec![0], vec![]), Err(Error::LengthMismatch { .. })));
        assert!(matches!(TimeSeries::new(vec![0, 1], vec![1.0, f64::NAN]), Err(Error::NonFinite { row: 1, .. })));
        assert!(matches!(
            TimeSeries::new(vec![0, 5, 5], vec![1.0; 3]),
            Err(Error::DuplicateTimestamp { row: 2, first_row: 1, .. })
        ));
        assert!(matches!(
            TimeSeries::new(vec![0, 5, 4], vec![1.0; 3]),
            Err(Error::Unsorted { row: 2, previous_row: 1, .. })
        ));
    }

    #[test]
    fn matrix_checks_shape_and_values() {
        let m = FeatureMatrix::new(array![[1.0f32, 2.0], [3.0, 4.0]], Some(2)).unwrap();
        assert_eq!(m.row(1), [3.0, 4.0]);
        let transposed = array![[1.0f32, 3.0], [2.0, 4.0]];
        assert_eq!(FeatureMatrix::new(transposed.t(), None).unwrap().as_slice(), [1.0, 2.0, 3.0, 4.0]);
        assert!(matches!(FeatureMatrix::new(array![[1.0f32, 2.0]], Some(3)), Err(Error::Shape { .. })));
        assert!(matches!(FeatureMatrix::new(Array2::<f32>::zeros((0, 2)), None), Err(Error::Empty { .. })));
        assert!(matches!(FeatureMatrix::new(Array2::<f32>::zeros((2, 0)), None), Err(Error::Shape { .. })));
        let err = FeatureMatrix::new(array![[1.0f32, 2.0], [f32::INFINITY, 0.0]], None).unwrap_err();
        assert_eq!(err.row(), Some(1));
        assert_eq!(err.field(), Some("X[:, 0]"));
    }
}
