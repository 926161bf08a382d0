//! `CreditModel`: an exported scikit-learn pipeline, scored in Rust.

use anomaly_core::credit_risk::{Applicants, Category, Cell, ClassLabel, ColumnData, ColumnKind, CreditModel};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::{run, to_py};
use crate::isolation_forest::with_threads;

/// One input column from Python: a float64 array (NaN = missing) or a list
/// of cells (str, or float with NaN = missing).
#[derive(FromPyObject)]
pub(crate) enum ColumnArg<'py> {
    Numbers(PyReadonlyArray1<'py, f64>),
    Cells(Vec<CellArg>),
}

#[derive(FromPyObject)]
pub(crate) enum CellArg {
    Text(String),
    Number(f64),
}

/// `(name, kind, categories or None)` of one input column.
type ColumnInfo<'py> = (String, &'static str, Option<Bound<'py, PyList>>);
/// Probabilities (rows x classes) and label indices.
type Scored<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<usize>>);

/// An exported credit model (see `anomaly_core::credit_risk`).
#[pyclass(module = "anomaly._anomaly", name = "CreditModel", frozen)]
pub(crate) struct PyCreditModel {
    model: CreditModel,
    text: String,
}

fn category<'py>(py: Python<'py>, c: &Category) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c {
        Category::Number(v) => v.into_pyobject(py)?.into_any(),
        Category::Text(s) => s.into_pyobject(py)?.into_any(),
        Category::Missing(()) => py.None().into_bound(py),
    })
}

#[pymethods]
impl PyCreditModel {
    /// Reads an exported model (the JSON text of the file).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: String) -> PyResult<Self> {
        let model = CreditModel::from_json(text.as_bytes()).map_err(|e| to_py(py, e))?;
        Ok(PyCreditModel { model, text })
    }

    /// The file's JSON text (pickles carry it).
    fn to_json(&self) -> &str {
        &self.text
    }

    /// Input columns: `(name, kind, categories or None)`.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Vec<ColumnInfo<'py>>> {
        self.model
            .columns()
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ColumnKind::Numeric => "numeric",
                    ColumnKind::Categorical => "categorical",
                };
                let categories = c
                    .categories
                    .as_ref()
                    .map(|cats| {
                        let items = cats.iter().map(|v| category(py, v)).collect::<PyResult<Vec<_>>>()?;
                        PyList::new(py, items)
                    })
                    .transpose()?;
                Ok((c.name.clone(), kind, categories))
            })
            .collect()
    }

    /// Whether the model was fitted on named columns.
    #[getter]
    fn named(&self) -> bool {
        self.model.named()
    }

    /// Class labels, in probability column order.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.model
            .classes()
            .iter()
            .map(|c| {
                Ok(match c {
                    ClassLabel::Int(v) => v.into_pyobject(py)?.into_any(),
                    ClassLabel::Float(v) => v.into_pyobject(py)?.into_any(),
                    ClassLabel::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
                    ClassLabel::Text(v) => v.into_pyobject(py)?.into_any(),
                })
            })
            .collect()
    }

    /// The scikit-learn version of the export.
    #[getter]
    fn sklearn_version(&self) -> &str {
        self.model.sklearn_version()
    }

    /// Scores named columns: `(proba, label indices)`.
    #[pyo3(signature = (columns, n_threads = None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<(String, ColumnArg<'py>)>,
        n_threads: Option<usize>,
    ) -> PyResult<Scored<'py>> {
        let mut applicants = Applicants::new();
        for (name, column) in columns {
            let data = match column {
                ColumnArg::Numbers(v) => ColumnData::Numbers(v.as_array().iter().copied().collect()),
                ColumnArg::Cells(cells) => ColumnData::Cells(
                    cells
                        .into_iter()
                        .map(|c| match c {
                            CellArg::Text(s) => Cell::Text(s),
                            CellArg::Number(v) => Cell::Number(v),
                        })
                        .collect(),
                ),
            };
            applicants = applicants.column(name, data);
        }
        let model = &self.model;
        let scores = run(py, move || with_threads(n_threads, || model.score(&applicants)))?;
        let rows = scores.rows();
        let proba = ndarray_2d(scores.proba, rows, scores.n_classes);
        Ok((proba.into_pyarray(py), scores.labels.into_pyarray(py)))
    }
}

fn ndarray_2d(v: Vec<f64>, rows: usize, cols: usize) -> numpy::ndarray::Array2<f64> {
    // The shape always matches: the scorer returns rows x classes values.
    numpy::ndarray::Array2::from_shape_vec((rows, cols), v).unwrap_or_else(|_| numpy::ndarray::Array2::zeros((0, cols)))
}
