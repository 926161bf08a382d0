//! `CreditModel`: an exported scikit-learn pipeline, scored in Rust.

use anomaly_core::credit_risk::{Applicants, Category, Cell, ClassLabel, ColumnData, ColumnKind, CreditModel, Scores};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use rayon::prelude::*;

use crate::errors::{run, to_py};
use crate::frame::FrameReader;
use crate::isolation_forest::with_threads;

/// One input column from Python: a float64 array (NaN = missing),
/// dictionary-encoded `(codes, labels)` (pandas' `factorize`; code -1 =
/// missing), or a list of cells.
#[derive(FromPyObject)]
pub(crate) enum ColumnArg<'py> {
    Numbers(PyReadonlyArray1<'py, f64>),
    Coded((PyReadonlyArray1<'py, i64>, Vec<CellArg>)),
    Cells(Vec<CellArg>),
}

/// One Python value as a cell: `str` is text; `None`, NaN, `pd.NA` and
/// `pd.NaT` are missing; anything `float()` accepts (bool, int, numpy
/// scalars) is a number; anything else is its `str()`.
pub(crate) struct CellArg(pub(crate) Cell);

impl<'a, 'py> FromPyObject<'a, 'py> for CellArg {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = value.cast::<PyString>() {
            return Ok(CellArg(Cell::Text(s.to_str()?.to_owned())));
        }
        if value.is_none() {
            return Ok(CellArg(Cell::MISSING));
        }
        if let Ok(x) = value.extract::<f64>() {
            return Ok(CellArg(Cell::Number(x)));
        }
        let kind = value.get_type().name()?;
        if kind == "NAType" || kind == "NaTType" {
            return Ok(CellArg(Cell::MISSING));
        }
        Ok(CellArg(Cell::Text(value.str()?.to_str()?.to_owned())))
    }
}

fn column_data(column: ColumnArg<'_>) -> ColumnData {
    match column {
        ColumnArg::Numbers(v) => ColumnData::Numbers(v.as_array().to_vec()),
        ColumnArg::Coded((codes, labels)) => {
            ColumnData::Coded { codes: codes.as_array().to_vec(), labels: labels.into_iter().map(|c| c.0).collect() }
        }
        ColumnArg::Cells(cells) => ColumnData::Cells(cells.into_iter().map(|c| c.0).collect()),
    }
}

/// `(name, kind, categories or None)` of one input column.
type ColumnInfo<'py> = (String, &'static str, Option<Bound<'py, PyList>>);
/// Probabilities (rows x classes) and label indices.
type Scored<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<isize>>);

/// An exported credit model (see `anomaly_core::credit_risk`).
#[pyclass(module = "anomaly._anomaly", name = "CreditModel", frozen)]
pub(crate) struct PyCreditModel {
    model: CreditModel,
    text: String,
    frames: FrameReader,
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
        Ok(PyCreditModel { model, text, frames: FrameReader::default() })
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

    /// Scores applicants given as dicts (a form, JSON records): a field
    /// absent from every record is a missing column; absent from some, a
    /// missing value (as `pandas.DataFrame(records)` makes it).
    #[pyo3(signature = (records, n_threads = None))]
    fn score_records<'py>(
        &self,
        py: Python<'py>,
        records: Vec<Bound<'py, PyDict>>,
        n_threads: Option<usize>,
    ) -> PyResult<Scored<'py>> {
        let names = self.model.columns().iter().map(|c| c.name.as_str());
        let (applicants, _) = Applicants::from_records(names, records.len(), |row, field| {
            records[row].get_item(field)?.map(|v| v.extract::<CellArg>().map(|c| c.0)).transpose()
        })?;
        self.scored(py, applicants, n_threads)
    }

    /// Scores a pandas DataFrame read block by block in Rust (see
    /// `frame.rs`); `None` when its layout is one the reader does not know
    /// (the caller then hands over columns from Python).
    #[pyo3(signature = (frame, n_threads = None))]
    fn score_frame<'py>(
        &self,
        py: Python<'py>,
        frame: &Bound<'py, PyAny>,
        n_threads: Option<usize>,
    ) -> PyResult<Option<Scored<'py>>> {
        let wanted = |name: &str| self.model.columns().iter().any(|c| c.name == name);
        let Some(mut columns) = self.frames.read(frame, &wanted)? else { return Ok(None) };
        let model = &self.model;
        let columns_ref = &mut columns;
        let scores = run(py, move || {
            with_threads(n_threads, move || {
                // Arrow columns decoded off the GIL, in parallel for a large frame.
                let large = columns_ref.first().is_some_and(|(_, c)| c.len() > 1024);
                let decoded: Vec<(String, ColumnData)> = if large {
                    columns_ref.par_iter_mut().map(|(n, c)| (n.clone(), c.decode())).collect()
                } else {
                    columns_ref.iter_mut().map(|(n, c)| (n.clone(), c.decode())).collect()
                };
                model.score(&Applicants::from_columns(decoded))
            })
        })?;
        drop(columns); // Arrow arrays released here, with the GIL
        Ok(Some(to_python(py, scores)))
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
            applicants = applicants.column(name, column_data(column));
        }
        self.scored(py, applicants, n_threads)
    }
}

impl PyCreditModel {
    fn scored<'py>(&self, py: Python<'py>, applicants: Applicants, n_threads: Option<usize>) -> PyResult<Scored<'py>> {
        let model = &self.model;
        let scores = run(py, move || with_threads(n_threads, || model.score(&applicants)))?;
        Ok(to_python(py, scores))
    }
}

/// Probabilities (rows x classes) and label indices as numpy arrays.
fn to_python(py: Python<'_>, scores: Scores) -> Scored<'_> {
    let rows = scores.rows();
    let proba = ndarray_2d(scores.proba, rows, scores.n_classes);
    // Label indices as numpy's index type (intp), ready for `classes_[...]`.
    let labels: Vec<isize> = scores.labels.into_iter().map(|l| l as isize).collect();
    (proba.into_pyarray(py), labels.into_pyarray(py))
}

fn ndarray_2d(v: Vec<f64>, rows: usize, cols: usize) -> numpy::ndarray::Array2<f64> {
    // The shape always matches: the scorer returns rows x classes values.
    numpy::ndarray::Array2::from_shape_vec((rows, cols), v).unwrap_or_else(|_| numpy::ndarray::Array2::zeros((0, cols)))
}
