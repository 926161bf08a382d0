//! scikit-learn's preprocessing steps, with its exact arithmetic
//! (`docs/credit_model_format.md`): imputation, scaling, one-hot and
//! ordinal encoding, column selection and pipelines.

use crate::error::{Error, Result};

use super::document::{BranchNode, Category, NodeDoc};
use super::input::{Cell, Column, Problems, Values};

/// A compiled preprocessing node.
#[derive(Debug, Clone)]
pub(crate) enum Transform {
    Pipeline(Vec<Transform>),
    Columns { branches: Vec<Branch>, n_in: usize },
    Impute { missing: Option<Category>, statistics: Vec<Category> },
    Standardize { mean: Option<Vec<f64>>, scale: Option<Vec<f64>> },
    MinMax { scale: Vec<f64>, min: Vec<f64>, clip: Option<(f64, f64)> },
    OneHot { categories: Vec<Vec<Category>>, drop: Vec<Option<usize>>, ignore_unknown: bool },
    Ordinal { categories: Vec<Vec<Category>>, unknown_value: Option<f64>, encoded_missing: f64 },
}

/// One branch of a column transformer: input positions and the node
/// (`None` = passthrough).
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    columns: Vec<usize>,
    node: Option<Transform>,
}

fn corrupt(reason: String) -> Error {
    Error::CorruptModel { reason }
}

/// Fitted numbers must be finite, and scales positive.
fn check_floats(what: &str, values: &[f64], positive: bool) -> Result<()> {
    match values.iter().position(|v| !v.is_finite() || (positive && *v <= 0.0)) {
        Some(i) => Err(corrupt(format!(
            "{what}[{i}] is {}, expected a finite number{}",
            values[i],
            if positive { " > 0" } else { "" }
        ))),
        None => Ok(()),
    }
}

impl Transform {
    pub(crate) fn compile(doc: NodeDoc) -> Result<Transform> {
        Ok(match doc {
            NodeDoc::Pipeline { steps } => {
                Transform::Pipeline(steps.into_iter().map(|s| Transform::compile(s.node)).collect::<Result<_>>()?)
            }
            NodeDoc::ColumnTransformer { transformers, n_features_in } => {
                let branches = transformers
                    .into_iter()
                    .map(|b| {
                        if let Some(&c) = b.columns.iter().find(|&&c| c >= n_features_in) {
                            return Err(corrupt(format!(
                                "transformer {:?} selects column {c} of {n_features_in}",
                                b.name
                            )));
                        }
                        let node = match b.node {
                            BranchNode::Passthrough => None,
                            BranchNode::Node(n) => Some(Transform::compile(n)?),
                        };
                        Ok(Branch { columns: b.columns, node })
                    })
                    .collect::<Result<_>>()?;
                Transform::Columns { branches, n_in: n_features_in }
            }
            NodeDoc::SimpleImputer { missing_values, statistics } => {
                Transform::Impute { missing: missing_values, statistics }
            }
            NodeDoc::StandardScaler { mean, scale } => {
                // scikit-learn's scale_ is a standard deviation with zeros
                // replaced by 1: never 0, negative or infinite.
                check_floats("standard_scaler: mean", mean.as_deref().unwrap_or_default(), false)?;
                check_floats("standard_scaler: scale", scale.as_deref().unwrap_or_default(), true)?;
                Transform::Standardize { mean, scale }
            }
            NodeDoc::MinMaxScaler { scale, min, clip } => {
                if scale.len() != min.len() {
                    return Err(corrupt("min_max_scaler: scale and min differ in length".into()));
                }
                check_floats("min_max_scaler: scale", &scale, true)?;
                check_floats("min_max_scaler: min", &min, false)?;
                let clip = match clip.as_deref() {
                    None => None,
                    Some(&[lo, hi]) => Some((lo, hi)),
                    Some(_) => return Err(corrupt("min_max_scaler: clip must be [lo, hi]".into())),
                };
                Transform::MinMax { scale, min, clip }
            }
            NodeDoc::OneHotEncoder { categories, drop, handle_unknown } => {
                if drop.len() != categories.len() {
                    return Err(corrupt("one_hot_encoder: drop and categories differ in length".into()));
                }
                if drop.iter().zip(&categories).any(|(d, c)| d.is_some_and(|d| d >= c.len())) {
                    return Err(corrupt("one_hot_encoder: drop index out of range".into()));
                }
                let ignore_unknown = match handle_unknown.as_str() {
                    "ignore" => true,
                    "error" => false,
                    other => return Err(corrupt(format!("one_hot_encoder: handle_unknown {other:?}"))),
                };
                Transform::OneHot { categories, drop, ignore_unknown }
            }
            NodeDoc::OrdinalEncoder { categories, handle_unknown, unknown_value, encoded_missing_value } => {
                let unknown_value =
                    match handle_unknown.as_str() {
                        "use_encoded_value" => Some(unknown_value.ok_or_else(|| {
                            corrupt("ordinal_encoder: use_encoded_value without unknown_value".into())
                        })?),
                        "error" => None,
                        other => return Err(corrupt(format!("ordinal_encoder: handle_unknown {other:?}"))),
                    };
                Transform::Ordinal { categories, unknown_value, encoded_missing: encoded_missing_value }
            }
        })
    }

    /// Output width for `n_in` input columns; a mismatch means a corrupt file.
    pub(crate) fn width(&self, n_in: usize) -> Result<usize> {
        let expect = |what: &str, n: usize| {
            if n == n_in {
                Ok(n)
            } else {
                Err(corrupt(format!("{what} is fitted on {n} columns but receives {n_in}")))
            }
        };
        match self {
            Transform::Pipeline(steps) => steps.iter().try_fold(n_in, |n, s| s.width(n)),
            Transform::Columns { branches, n_in: n } => {
                expect("column_transformer", *n)?;
                branches.iter().try_fold(0, |total, b| {
                    let w = match &b.node {
                        Some(node) => node.width(b.columns.len())?,
                        None => b.columns.len(),
                    };
                    Ok(total + w)
                })
            }
            Transform::Impute { statistics, .. } => expect("simple_imputer", statistics.len()),
            Transform::Standardize { mean, scale } => {
                let n = mean.as_ref().or(scale.as_ref()).map_or(n_in, Vec::len);
                if let (Some(m), Some(s)) = (mean, scale) {
                    if m.len() != s.len() {
                        return Err(corrupt("standard_scaler: mean and scale differ in length".into()));
                    }
                }
                expect("standard_scaler", n)
            }
            Transform::MinMax { scale, .. } => expect("min_max_scaler", scale.len()),
            Transform::OneHot { categories, drop, .. } => {
                expect("one_hot_encoder", categories.len())?;
                Ok(categories.iter().zip(drop).map(|(c, d)| c.len() - usize::from(d.is_some())).sum())
            }
            Transform::Ordinal { categories, .. } => expect("ordinal_encoder", categories.len()),
        }
    }

    /// Applies the node to `columns` (of the width it was compiled for),
    /// recording bad cells in `problems` and carrying on, so that one pass
    /// finds every bad field. One-hot blocks stay sparse in the output;
    /// a step after them gets them dense.
    pub(crate) fn apply(&self, columns: Vec<Column>, problems: &mut Problems) -> Vec<Output> {
        match self {
            Transform::Pipeline(steps) => match steps.split_last() {
                Some((last, first)) => {
                    let columns = first.iter().fold(columns, |cols, step| dense(step.apply(cols, problems)));
                    last.apply(columns, problems)
                }
                None => columns.into_iter().map(Output::Column).collect(),
            },
            Transform::Columns { branches, .. } => {
                // A column selected once (the usual case) is moved, not copied.
                let mut uses = vec![0usize; columns.len()];
                branches.iter().flat_map(|b| &b.columns).for_each(|&c| uses[c] += 1);
                let mut columns: Vec<Option<Column>> = columns.into_iter().map(Some).collect();
                let mut out = Vec::new();
                for branch in branches {
                    let picked: Vec<Column> = branch
                        .columns
                        .iter()
                        .filter_map(|&c| {
                            uses[c] -= 1;
                            if uses[c] == 0 {
                                columns[c].take()
                            } else {
                                columns[c].clone()
                            }
                        })
                        .collect();
                    match &branch.node {
                        Some(node) => out.extend(node.apply(picked, problems)),
                        None => out.extend(picked.into_iter().map(Output::Column)),
                    }
                }
                out
            }
            Transform::OneHot { categories, drop, ignore_unknown } => {
                let mut out = Vec::with_capacity(columns.len());
                for ((column, cats), dropped) in columns.iter().zip(categories).zip(drop) {
                    // Output positions: the categories', less the dropped one.
                    let position = |c: usize| match *dropped {
                        Some(d) if c == d => NONE,
                        Some(d) if c > d => c as u32 - 1,
                        _ => c as u32,
                    };
                    let hot = lookup(column, cats)
                        .into_iter()
                        .enumerate()
                        .map(|(row, found)| match found {
                            Some(c) => position(c),
                            None => {
                                if !*ignore_unknown {
                                    unknown(column, row, cats, problems);
                                }
                                NONE
                            }
                        })
                        .collect();
                    let width = cats.len() - usize::from(dropped.is_some());
                    out.push(Output::Hot { name: column.name.clone(), hot, width });
                }
                out
            }
            dense_step => dense_step.apply_dense(columns, problems).into_iter().map(Output::Column).collect(),
        }
    }

    /// `apply` for the steps whose output is one dense column per input.
    fn apply_dense(&self, columns: Vec<Column>, problems: &mut Problems) -> Vec<Column> {
        match self {
            Transform::Pipeline(_) | Transform::Columns { .. } | Transform::OneHot { .. } => {
                dense(self.apply(columns, problems))
            }
            Transform::Impute { missing, statistics } => {
                columns.into_iter().zip(statistics).map(|(c, stat)| impute(c, missing.as_ref(), stat)).collect()
            }
            Transform::Standardize { mean, scale } => columns
                .into_iter()
                .enumerate()
                .map(|(j, c)| {
                    let (name, mut v) = numbers(c, problems);
                    if let Some(mean) = mean {
                        v.iter_mut().for_each(|x| *x -= mean[j]);
                    }
                    if let Some(scale) = scale {
                        v.iter_mut().for_each(|x| *x /= scale[j]);
                    }
                    Column { name, data: Values::Numbers(v) }
                })
                .collect(),
            Transform::MinMax { scale, min, clip } => columns
                .into_iter()
                .enumerate()
                .map(|(j, c)| {
                    let (name, mut v) = numbers(c, problems);
                    for x in v.iter_mut() {
                        // Two roundings, as numpy's `X *= scale; X += min`.
                        let scaled = *x * scale[j];
                        *x = scaled + min[j];
                        if let Some((lo, hi)) = clip {
                            // NaN stays NaN (as np.clip), unlike f64::clamp's callers expect.
                            if *x < *lo {
                                *x = *lo;
                            } else if *x > *hi {
                                *x = *hi;
                            }
                        }
                    }
                    Column { name, data: Values::Numbers(v) }
                })
                .collect(),
            Transform::Ordinal { categories, unknown_value, encoded_missing } => columns
                .iter()
                .zip(categories)
                .map(|(column, cats)| {
                    let encoded = |c: usize| match cats[c] {
                        Category::Missing(()) => *encoded_missing,
                        _ => c as f64,
                    };
                    // Coded cells: each label's encoding once, then one pass
                    // over the codes (unless a label is unknown with no
                    // value for it: the general path names its rows).
                    if let Values::Coded { codes, labels } = &column.data {
                        let table: Vec<Option<f64>> =
                            positions(labels, cats).into_iter().map(|p| p.map(encoded).or(*unknown_value)).collect();
                        let mut known = true;
                        let v = codes
                            .iter()
                            .map(|&c| {
                                let e = table[c as usize];
                                known &= e.is_some();
                                e.unwrap_or(f64::NAN)
                            })
                            .collect();
                        if known {
                            return Column { name: column.name.clone(), data: Values::Numbers(v) };
                        }
                    }
                    let v = lookup(column, cats)
                        .into_iter()
                        .enumerate()
                        .map(|(row, found)| match found {
                            Some(c) => encoded(c),
                            None => unknown_value.unwrap_or_else(|| {
                                unknown(column, row, cats, problems);
                                f64::NAN
                            }),
                        })
                        .collect();
                    Column { name: column.name.clone(), data: Values::Numbers(v) }
                })
                .collect(),
        }
    }
}

/// A one-hot row's position where no category is set.
const NONE: u32 = u32::MAX;

/// A node's output: a column, or a one-hot block of `width` features
/// (each row's one set position in `hot`, or `NONE`), which the model's
/// input matrix takes as it is: the dense block would be one column per
/// category, mostly zeros, each written and moved for every row.
#[derive(Debug)]
pub(crate) enum Output {
    Column(Column),
    Hot { name: std::sync::Arc<str>, hot: Vec<u32>, width: usize },
}

/// `outputs` with every one-hot block as its columns of zeros and ones.
fn dense(outputs: Vec<Output>) -> Vec<Column> {
    let mut out = Vec::with_capacity(outputs.len());
    for output in outputs {
        match output {
            Output::Column(c) => out.push(c),
            Output::Hot { name, hot, width } => out.extend((0..width as u32).map(|p| Column {
                name: name.clone(),
                data: Values::Numbers(hot.iter().map(|&h| f64::from(u8::from(h == p))).collect()),
            })),
        }
    }
    out
}

/// Whether a cell is the category (numbers by `==`, NaN only the missing one).
fn matches(cell: &Cell, category: &Category) -> bool {
    match (cell, category) {
        (Cell::Number(x), Category::Number(v)) => x == v,
        (Cell::Number(x), Category::Missing(())) => x.is_nan(),
        (Cell::Text(s), Category::Text(t)) => s == t,
        _ => false,
    }
}

fn cell_at(column: &Column, row: usize) -> Cell {
    match &column.data {
        Values::Numbers(v) => Cell::Number(v[row]),
        Values::Coded { codes, labels } => labels[codes[row] as usize].clone(),
    }
}

/// Per row, the index of its category (`None`: unknown). Coded columns are
/// matched once per distinct label.
fn lookup(column: &Column, categories: &[Category]) -> Vec<Option<usize>> {
    match &column.data {
        Values::Numbers(v) => v.iter().map(|&x| position(&Cell::Number(x), categories)).collect(),
        Values::Coded { codes, labels } => {
            let per_label = positions(labels, categories);
            codes.iter().map(|&c| per_label[c as usize]).collect()
        }
    }
}

/// The category `cell` is, if any.
fn position(cell: &Cell, categories: &[Category]) -> Option<usize> {
    categories.iter().position(|c| matches(cell, c))
}

/// Each of a coded column's labels' category (decided once per label).
fn positions(labels: &[Cell], categories: &[Category]) -> Vec<Option<usize>> {
    labels.iter().map(|l| position(l, categories)).collect()
}

fn label(category: &Category) -> String {
    match category {
        Category::Number(v) => v.to_string(),
        Category::Text(s) => s.clone(),
        Category::Missing(()) => "missing".into(),
    }
}

fn unknown(column: &Column, row: usize, categories: &[Category], problems: &mut Problems) {
    let value = match cell_at(column, row) {
        Cell::Number(x) if x.is_nan() => "a missing value".to_owned(),
        Cell::Number(x) => format!("{x}"),
        Cell::Text(s) => format!("{s:?}"),
    };
    let known: Vec<String> = categories.iter().map(label).collect();
    problems.push(&column.name, Some(row), format!("unknown category {value}; known: {}", known.join(", ")));
}

fn impute(column: Column, missing: Option<&Category>, statistic: &Category) -> Column {
    let is_missing = |cell: &Cell| match missing {
        None | Some(Category::Missing(())) => cell.is_missing(),
        Some(marker) => matches(cell, marker),
    };
    let fill = match statistic {
        Category::Number(v) => Cell::Number(*v),
        Category::Text(s) => Cell::Text(s.clone()),
        Category::Missing(()) => Cell::MISSING,
    };
    let data = match (column.data, &fill) {
        (Values::Numbers(mut v), Cell::Number(fill)) => {
            for x in v.iter_mut() {
                if is_missing(&Cell::Number(*x)) {
                    *x = *fill;
                }
            }
            Values::Numbers(v)
        }
        (Values::Numbers(v), _) => {
            // A text statistic on a numeric column: encode, then fill.
            let cells: Vec<Cell> = v.into_iter().map(Cell::Number).collect();
            let Values::Coded { codes, mut labels } = super::input::encode_cells(&cells) else { unreachable!() };
            labels.iter_mut().filter(|l| is_missing(l)).for_each(|l| *l = fill.clone());
            Values::Coded { codes, labels }
        }
        (Values::Coded { codes, mut labels }, _) => {
            // Once per distinct label.
            labels.iter_mut().filter(|l| is_missing(l)).for_each(|l| *l = fill.clone());
            Values::Coded { codes, labels }
        }
    };
    Column { name: column.name, data }
}

/// The column as numbers; a text cell is a problem (and NaN here).
pub(crate) fn numbers(column: Column, problems: &mut Problems) -> (std::sync::Arc<str>, Vec<f64>) {
    let v = match column.data {
        Values::Numbers(v) => v,
        Values::Coded { codes, labels } => {
            let values: Vec<Option<f64>> = labels
                .iter()
                .map(|l| match l {
                    Cell::Number(x) => Some(*x),
                    Cell::Text(_) => None,
                })
                .collect();
            codes
                .iter()
                .enumerate()
                .map(|(row, &c)| {
                    values[c as usize].unwrap_or_else(|| {
                        if let Cell::Text(t) = &labels[c as usize] {
                            problems.push(&column.name, Some(row), format!("expected a number, found {t:?}"));
                        }
                        f64::NAN
                    })
                })
                .collect()
        }
    };
    (column.name, v)
}
