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

/// Rows the tree models read: a dense [`FeatureMatrix`] as it is, or a
/// sparse [`CsrMatrix`] a few rows at a time (never densified whole).
pub trait Rows: Sync {
    /// Number of rows.
    fn n_rows(&self) -> usize;
    /// Number of features (columns).
    fn n_features(&self) -> usize;
    /// The whole matrix row-major, when it is stored that way.
    fn dense(&self) -> Option<&[f32]>;
    /// Appends `rows` to `out` as dense row-major values.
    fn gather(&self, rows: &mut dyn Iterator<Item = usize>, out: &mut Vec<f32>);
}

impl Rows for FeatureMatrix<'_> {
    fn n_rows(&self) -> usize {
        self.data.nrows()
    }

    fn n_features(&self) -> usize {
        self.data.ncols()
    }

    fn dense(&self) -> Option<&[f32]> {
        Some(self.as_slice())
    }

    fn gather(&self, rows: &mut dyn Iterator<Item = usize>, out: &mut Vec<f32>) {
        for r in rows {
            out.extend_from_slice(self.row(r));
        }
    }
}

/// A sparse matrix in compressed sparse row form (scipy's `csr_matrix`):
/// row `i` holds `data[indptr[i]..indptr[i + 1]]` at columns `indices[..]`,
/// every other value is 0. Validated once: offsets increasing and within
/// the arrays, columns in range, values finite.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix<'a> {
    n_features: usize,
    indptr: &'a [i64],
    indices: &'a [i64],
    data: &'a [f32],
}

impl<'a> CsrMatrix<'a> {
    /// Validates a CSR matrix of `n_features` columns (`indptr.len() - 1` rows).
    pub fn new(
        n_features: usize,
        indptr: &'a [i64],
        indices: &'a [i64],
        data: &'a [f32],
        expected_features: Option<usize>,
    ) -> Result<Self> {
        let shape =
            |field: &str, expected: String, found: String| Error::Shape { field: field.into(), expected, found };
        if indptr.len() < 2 {
            return Err(Error::Empty { what: "feature matrix".into() });
        }
        if n_features == 0 {
            return Err(shape("X", "at least 1 feature".into(), "0 features".into()));
        }
        if let Some(expected) = expected_features.filter(|&e| e != n_features) {
            return Err(shape("X", format!("{expected} features"), format!("{n_features} features")));
        }
        if indices.len() != data.len() {
            return Err(Error::LengthMismatch {
                field: "X.indices".into(),
                expected: data.len(),
                found: indices.len(),
            });
        }
        if indptr[0] != 0 || indptr.windows(2).any(|w| w[1] < w[0]) || indptr[indptr.len() - 1] != data.len() as i64 {
            return Err(shape(
                "X.indptr",
                format!("offsets from 0 rising to the {} stored values", data.len()),
                "offsets out of order or out of range".into(),
            ));
        }
        if let Some(k) = indices.iter().position(|&c| c < 0 || c as u64 >= n_features as u64) {
            return Err(shape("X.indices", format!("columns in 0..{n_features}"), format!("column {}", indices[k])));
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            let row = indptr.partition_point(|&p| p <= k as i64) - 1;
            let col = indices[k];
            return Err(Error::NonFinite { field: format!("X[:, {col}]"), row, value: f64::from(data[k]) });
        }
        Ok(CsrMatrix { n_features, indptr, indices, data })
    }
}

impl Rows for CsrMatrix<'_> {
    fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn dense(&self) -> Option<&[f32]> {
        None
    }

    fn gather(&self, rows: &mut dyn Iterator<Item = usize>, out: &mut Vec<f32>) {
        for r in rows {
            let start = out.len();
            out.resize(start + self.n_features, 0.0);
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            for (&c, &v) in self.indices[a..b].iter().zip(&self.data[a..b]) {
                // Duplicate entries add up, as scipy reads them.
                out[start + c as usize] += v;
            }
        }
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

    #[test]
    fn csr_rows_gather_as_dense_and_bad_arrays_are_typed_errors() {
        // [[0, 2], [0, 0], [3, 4]]
        let (indptr, indices, data) = ([0i64, 1, 1, 3], [1i64, 0, 1], [2.0f32, 3.0, 4.0]);
        let m = CsrMatrix::new(2, &indptr, &indices, &data, Some(2)).unwrap();
        let mut out = Vec::new();
        m.gather(&mut [2usize, 0, 1].into_iter(), &mut out);
        assert_eq!(out, [3.0, 4.0, 0.0, 2.0, 0.0, 0.0]);
        assert!(matches!(CsrMatrix::new(2, &[0, 1, 0, 3], &indices, &data, None), Err(Error::Shape { .. })));
        assert!(matches!(CsrMatrix::new(2, &indptr, &[1, 0, 2], &data, None), Err(Error::Shape { .. })));
        assert!(matches!(CsrMatrix::new(2, &indptr, &[1, 0], &data, None), Err(Error::LengthMismatch { .. })));
        assert!(matches!(CsrMatrix::new(2, &[0], &[], &[], None), Err(Error::Empty { .. })));
        let err = CsrMatrix::new(2, &indptr, &indices, &[2.0, f32::NAN, 4.0], None).unwrap_err();
        assert_eq!((err.row(), err.field()), (Some(2), Some("X[:, 0]")));
    }
}
