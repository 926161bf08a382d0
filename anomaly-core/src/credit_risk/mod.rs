//! Credit-default ("morosidad") scoring: a scikit-learn pipeline exported
//! once by `anomaly.credit_risk.export_sklearn` and scored here with
//! scikit-learn's own arithmetic, so `predict_proba` is bit-identical for
//! trees, forests and boosting and within 1e-12 for logistic regression
//! (scikit-learn's BLAS dot product sums in its own order). The file format
//! and every rule are in `docs/credit_model_format.md`.
//!
//! Why not ONNX: converters run scalers and imputers in float32 (flipped
//! labels), mishandle NaN in string columns and native categorical splits.
//!
//! Input is checked as a whole: missing columns, text in numeric columns,
//! infinities, unknown categories (where the encoder says `error`) and NaN
//! reaching a classifier that rejects it are collected into one
//! [`Error::InvalidFields`] that names every bad field. Extra columns are
//! ignored, as scikit-learn ignores them.
//!
//! ```
//! use anomaly_core::credit_risk::{Applicants, ColumnData, CreditModel};
//!
//! let json = r#"{"format": "anomaly.credit_risk", "version": 1, "sklearn_version": "1.9.1",
//!   "input": {"named": true, "columns": [{"name": "income", "kind": "numeric", "categories": null}]},
//!   "classes": [0, 1], "preprocessing": null,
//!   "classifier": {"type": "logistic_regression", "coef": [[-0.5]], "intercept": [1.0],
//!                  "n_features": 1, "accepts_nan": false}}"#;
//! let model = CreditModel::from_json(json.as_bytes())?;
//! let applicants = Applicants::new().column("income", ColumnData::Numbers(vec![0.0, 4.0]));
//! let scores = model.score(&applicants)?;
//! assert_eq!(scores.labels, vec![1, 0]);
//! assert!((scores.proba[1] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
//! # Ok::<(), anomaly_core::Error>(())
//! ```

mod classifier;
mod document;
mod gathered;
mod input;
mod kernels;
mod lightgbm;
mod preprocess;
mod quick;
mod split_rule;
mod walk;
mod xgboost;

use rayon::prelude::*;

use crate::error::{Error, FieldProblem, Result};

use classifier::{Classifier, Matrix};
use document::Document;
pub use document::{Category, ColumnKind};
use input::Problems;
pub use input::{Absent, Applicants, Cell, ColumnData};
use preprocess::{Output, Transform};

/// The `format` tag of exported model files.
pub const FORMAT: &str = "anomaly.credit_risk";
/// The highest file version this build reads (2: LightGBM and XGBoost
/// classifiers, which older builds cannot score).
pub const VERSION: u32 = 2;

/// One input column the model needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputColumn {
    /// Column name (`x0`, `x1`, ... for models fitted on arrays).
    pub name: String,
    /// Numbers or category labels.
    pub kind: ColumnKind,
    /// Categories an encoder knows for this column, where one reads it.
    pub categories: Option<Vec<Category>>,
}

/// A class label as scikit-learn holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum ClassLabel {
    /// An integer label.
    Int(i64),
    /// A float label.
    Float(f64),
    /// A boolean label.
    Bool(bool),
    /// A string label.
    Text(String),
}

impl std::fmt::Display for ClassLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassLabel::Int(v) => write!(f, "{v}"),
            ClassLabel::Float(v) => write!(f, "{v}"),
            ClassLabel::Bool(v) => write!(f, "{v}"),
            ClassLabel::Text(v) => f.write_str(v),
        }
    }
}

/// An exported scikit-learn classification pipeline, ready to score.
#[derive(Debug, Clone)]
pub struct CreditModel {
    columns: Vec<InputColumn>,
    named: bool,
    classes: Vec<ClassLabel>,
    sklearn_version: String,
    preprocessing: Option<Transform>,
    classifier: Classifier,
    n_features: usize,
    /// Column names (shared with every scored column) and kinds.
    schema: Vec<(std::sync::Arc<str>, ColumnKind)>,
}

/// Scores of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Row-major probabilities, one per class in [`CreditModel::classes`] order.
    pub proba: Vec<f64>,
    /// Index into the classes of each row's prediction (scikit-learn's `predict`).
    pub labels: Vec<usize>,
    /// Number of classes (the width of `proba`).
    pub n_classes: usize,
}

impl Scores {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Probabilities of row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.proba[i * self.n_classes..(i + 1) * self.n_classes]
    }

    /// Confidence of row `i`: the probability of its predicted class.
    pub fn confidence(&self, i: usize) -> f64 {
        self.row(i)[self.labels[i]]
    }
}

impl CreditModel {
    /// Reads and checks an exported model file.
    pub fn from_json(bytes: &[u8]) -> Result<CreditModel> {
        let header: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::CorruptModel { reason: format!("not a JSON model file ({e})") })?;
        let format = header.get("format").and_then(|f| f.as_str()).unwrap_or_default();
        if format != FORMAT {
            return Err(Error::CorruptModel { reason: format!("format is {format:?}, expected {FORMAT:?}") });
        }
        let version = header.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version > u64::from(VERSION) {
            return Err(Error::UnsupportedVersion { found: version as u32, supported: VERSION });
        }
        let doc: Document =
            serde_json::from_value(header).map_err(|e| Error::CorruptModel { reason: format!("credit model: {e}") })?;
        Self::compile(doc)
    }

    fn compile(doc: Document) -> Result<CreditModel> {
        debug_assert!(doc.format == FORMAT && doc.version <= VERSION);
        let classes = doc
            .classes
            .iter()
            .map(|c| match c {
                serde_json::Value::Bool(b) => Ok(ClassLabel::Bool(*b)),
                serde_json::Value::Number(n) => {
                    Ok(n.as_i64().map_or_else(|| ClassLabel::Float(n.as_f64().unwrap_or(f64::NAN)), ClassLabel::Int))
                }
                serde_json::Value::String(s) => Ok(ClassLabel::Text(s.clone())),
                other => Err(Error::CorruptModel { reason: format!("class label {other}") }),
            })
            .collect::<Result<Vec<_>>>()?;
        if classes.len() < 2 {
            return Err(Error::CorruptModel {
                reason: format!("{} classes; a classifier needs 2 or more", classes.len()),
            });
        }
        let columns: Vec<InputColumn> = doc
            .input
            .columns
            .into_iter()
            .map(|c| InputColumn { name: c.name, kind: c.kind, categories: c.categories })
            .collect();
        let preprocessing = doc.preprocessing.map(Transform::compile).transpose()?;
        let width = match &preprocessing {
            Some(t) => t.width(columns.len())?,
            None => columns.len(),
        };
        let (classifier, n_features) = Classifier::compile(doc.classifier, classes.len())?;
        if width != n_features {
            return Err(Error::CorruptModel {
                reason: format!("preprocessing gives {width} features, the classifier takes {n_features}"),
            });
        }
        let schema = columns.iter().map(|c| (c.name.as_str().into(), c.kind)).collect();
        Ok(CreditModel {
            schema,
            columns,
            named: doc.input.named,
            classes,
            sklearn_version: doc.sklearn_version,
            preprocessing,
            classifier,
            n_features,
        })
    }

    /// The input schema, in the order the model was fitted on.
    pub fn columns(&self) -> &[InputColumn] {
        &self.columns
    }

    /// Whether the model was fitted on named columns (a DataFrame).
    pub fn named(&self) -> bool {
        self.named
    }

    /// Class labels, in `predict_proba` column order.
    pub fn classes(&self) -> &[ClassLabel] {
        &self.classes
    }

    /// The scikit-learn version the model was exported from.
    pub fn sklearn_version(&self) -> &str {
        &self.sklearn_version
    }

    /// Features the classifier sees after preprocessing.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Preprocesses and scores every row. Any bad field fails the whole
    /// batch with one [`Error::InvalidFields`] naming all of them. Large
    /// batches are cut into chunks preprocessed and scored in parallel;
    /// each row's arithmetic is the same whatever the chunking or the
    /// thread count.
    pub fn score(&self, applicants: &Applicants) -> Result<Scores> {
        const CHUNK: usize = 4096;
        let rows = applicants.rows();
        if rows <= CHUNK {
            return self.score_chunk(applicants, 0..rows);
        }
        let starts: Vec<usize> = (0..rows).step_by(CHUNK).collect();
        let parts: Vec<Result<Scores>> =
            starts.par_iter().map(|&start| self.score_chunk(applicants, start..(start + CHUNK).min(rows))).collect();
        let n_classes = self.classes.len();
        let mut scores =
            Scores { proba: Vec::with_capacity(rows * n_classes), labels: Vec::with_capacity(rows), n_classes };
        let mut problems: Vec<FieldProblem> = Vec::new();
        for (part, start) in parts.into_iter().zip(starts) {
            match part {
                Ok(s) => {
                    scores.proba.extend(s.proba);
                    scores.labels.extend(s.labels);
                }
                Err(Error::InvalidFields { problems: found }) => {
                    for mut p in found {
                        match p.row.as_mut() {
                            Some(row) => *row += start,
                            // Whole-column problems repeat in every chunk: keep one.
                            None if problems.iter().any(|q| q.row.is_none() && q.field == p.field) => continue,
                            None => {}
                        }
                        problems.push(p);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        if problems.is_empty() {
            Ok(scores)
        } else {
            Err(Error::InvalidFields { problems })
        }
    }

    /// Scores rows `span` (a chunk: problems name rows within it).
    fn score_chunk(&self, applicants: &Applicants, span: std::ops::Range<usize>) -> Result<Scores> {
        let rows = span.len();
        let column_major = self.classifier.column_major(rows);
        let n_classes = self.classes.len();
        let mut proba = vec![0.0; rows * n_classes];
        let mut labels = vec![0usize; rows];
        // scikit-learn's trees take float32: the matrix is built so, not
        // built in float64 and then cast.
        if self.classifier.casts_to_f32() {
            let x: Vec<f32> = self.features_of(applicants, span, column_major)?;
            self.classifier.score_block(Matrix::F32(&x), self.n_features, &mut proba, &mut labels);
        } else {
            let x: Vec<f64> = self.features_of(applicants, span, column_major)?;
            self.classifier.score_block(Matrix::F64(&x), self.n_features, &mut proba, &mut labels);
        }
        // Finite features can still overflow inside a linear model (two
        // huge terms of opposite sign): never answer a NaN probability.
        let bad: Vec<FieldProblem> = (0..rows)
            .filter(|&i| proba[i * n_classes..(i + 1) * n_classes].iter().any(|p| !p.is_finite()))
            .map(|i| FieldProblem {
                field: "applicant".into(),
                row: Some(i),
                reason: "values too large: the model's probabilities overflow".into(),
            })
            .collect();
        if !bad.is_empty() {
            return Err(Error::InvalidFields { problems: bad });
        }
        Ok(Scores { proba, labels, n_classes })
    }

    /// The classifier's input matrix (row-major), after preprocessing and
    /// the classifier's own checks.
    pub fn features(&self, applicants: &Applicants) -> Result<Vec<f64>> {
        self.features_of(applicants, 0..applicants.rows(), false)
    }

    /// `features` of rows `span`, column by column if `column_major`, as
    /// float64 or float32 (`x as f32`, scikit-learn's cast).
    fn features_of<V: Feature>(
        &self,
        applicants: &Applicants,
        span: std::ops::Range<usize>,
        column_major: bool,
    ) -> Result<Vec<V>> {
        let rows = span.len();
        let mut problems = Problems::default();
        // Infinite inputs reach only a classifier that takes them (LightGBM,
        // histogram boosting) with no preprocessing, whose scikit-learn
        // transformers would refuse them.
        let allow_infinite = self.preprocessing.is_none() && self.classifier.accepts_infinity();
        let columns = input::gather(applicants, span, &self.schema, &mut problems, allow_infinite);
        let outputs = match &self.preprocessing {
            Some(t) => t.apply(columns, &mut problems),
            None => columns.into_iter().map(Output::Column).collect(),
        };
        // Columns as numbers at their feature position; one-hot blocks
        // stay sparse (their zeros and ones are always clean).
        let (mut numbers, mut blocks, mut width) = (Vec::new(), Vec::new(), 0);
        for output in outputs {
            match output {
                Output::Column(c) => {
                    numbers.push((width, preprocess::numbers(c, &mut problems)));
                    width += 1;
                }
                Output::Hot { hot, width: w, .. } => {
                    blocks.push((width, hot, w));
                    width += w;
                }
            }
        }
        // NaN reaching a classifier that rejects it: only worth reporting
        // when the input itself was clean (a missing column shows up here
        // as NaN features, already reported by name).
        let accepts_nan = self.classifier.accepts_nan() || !problems.0.is_empty();
        let cast = self.classifier.casts_to_f32();
        let accepts_infinity = self.classifier.accepts_infinity();
        for (_, (name, v)) in &numbers {
            // The common case, a column with nothing to report (NaN the
            // model takes counts as clean), in one vectorised pass: no
            // early exit, which would keep the loop scalar.
            let fine = |x: f64| (x.is_nan() & accepts_nan) | (x.is_finite() & (!cast | (x as f32).is_finite()));
            if v.iter().fold(true, |clean, &x| clean & fine(x)) {
                continue;
            }
            for (row, &x) in v.iter().enumerate() {
                if x.is_nan() && !accepts_nan {
                    problems.push(name, Some(row), "is missing (NaN) and the model has no imputer for it");
                } else if cast && x.is_finite() && (x as f32).is_infinite() {
                    problems.push(name, Some(row), format!("{x} is too large for the model's float32 features"));
                } else if x.is_infinite() && !accepts_infinity {
                    // scikit-learn raises "Input X contains infinity" here; a
                    // linear model would answer NaN probabilities.
                    problems.push(name, Some(row), "is too large: infinite after preprocessing");
                }
            }
        }
        problems.into_result()?;
        // Columns to rows, eight columns at a time: each row's eight values
        // are about one cache line, where column by column every value was one.
        let mut x = vec![V::default(); rows * width];
        if width == 0 {
            return Ok(x);
        }
        if column_major {
            for (at, (_, v)) in &numbers {
                for (x, &v) in x[at * rows..(at + 1) * rows].iter_mut().zip(v) {
                    *x = V::of(v);
                }
            }
            for (at, hot, w) in &blocks {
                for (row, &h) in hot.iter().enumerate() {
                    if (h as usize) < *w {
                        x[(at + h as usize) * rows + row] = V::ONE;
                    }
                }
            }
            return Ok(x);
        }
        for group in numbers.chunks(8) {
            for (i, row) in x.chunks_exact_mut(width).enumerate() {
                for (at, (_, v)) in group {
                    row[*at] = V::of(v[i]);
                }
            }
        }
        for (at, hot, w) in &blocks {
            for (row, &h) in x.chunks_exact_mut(width).zip(hot) {
                if (h as usize) < *w {
                    row[at + h as usize] = V::ONE;
                }
            }
        }
        Ok(x)
    }
}

/// An input matrix's value type: float64, or float32 for scikit-learn's
/// trees (which cast their input).
trait Feature: Copy + Default {
    const ONE: Self;
    fn of(x: f64) -> Self;
}

impl Feature for f64 {
    const ONE: f64 = 1.0;
    fn of(x: f64) -> f64 {
        x
    }
}

impl Feature for f32 {
    const ONE: f32 = 1.0;
    fn of(x: f64) -> f32 {
        x as f32
    }
}
