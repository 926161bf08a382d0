//! Applicant data as the scorer takes it: named columns of numbers or of
//! cells (strings, numbers, missing), checked against the model's schema
//! with every problem collected, so one error names every bad field.

use crate::error::{Error, FieldProblem};

use super::document::ColumnKind;

/// One cell of a categorical (or mixed) column. Missing is `Number(NaN)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number; NaN means missing.
    Number(f64),
    /// A category label.
    Text(String),
}

impl Cell {
    /// The missing cell.
    pub const MISSING: Cell = Cell::Number(f64::NAN);

    /// Whether the cell is missing.
    pub fn is_missing(&self) -> bool {
        matches!(self, Cell::Number(v) if v.is_nan())
    }
}

/// One input column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers (NaN = missing), e.g. a float64 DataFrame column.
    Numbers(Vec<f64>),
    /// Cells, e.g. an object/string column or JSON values.
    Cells(Vec<Cell>),
    /// Dictionary-encoded cells (pandas' `factorize`, Arrow dictionaries):
    /// row `i` holds `labels[codes[i]]`, a negative code is missing. Each
    /// distinct label is matched against the encoders once, not per row.
    Coded {
        /// Per row, an index into `labels` (negative = missing).
        codes: Vec<i64>,
        /// The distinct values.
        labels: Vec<Cell>,
    },
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numbers(v) => v.len(),
            ColumnData::Cells(v) => v.len(),
            ColumnData::Coded { codes, .. } => codes.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ColumnData {
    /// A text column of UTF-8 bytes (`None` = missing, as is a value that
    /// is not UTF-8), as a DataFrame's string column or an Arrow string
    /// array holds it: a few rows as cells, more dictionary-encoded here
    /// (one hash per row, each distinct value checked and copied once), so
    /// a large batch reaches the encoders as codes.
    pub fn from_utf8<'a>(values: impl ExactSizeIterator<Item = Option<&'a [u8]>>) -> ColumnData {
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        if values.len() <= 16 {
            return ColumnData::Cells(values.map(|v| v.and_then(text).map_or(Cell::MISSING, Cell::Text)).collect());
        }
        // Category labels are mostly short: up to 7 bytes, a value is one
        // integer (bytes and length), found among the few seen so far by a
        // scan; longer ones are hashed.
        let short_key = |b: &[u8]| {
            // The bytes little-endian, the length in the top byte; read in
            // at most three loads, not a loop over the bytes.
            let word = |b: &[u8]| match *b {
                [] => 0,
                [a] => u64::from(a),
                [a, b] => u64::from(u16::from_le_bytes([a, b])),
                [a, b, c] => u64::from(u16::from_le_bytes([a, b])) | u64::from(c) << 16,
                _ => 0,
            };
            let len = b.len() as u64;
            match b.len() {
                0..=3 => Some(word(b) | len << 56),
                4..=7 => {
                    let (head, tail) = b.split_at(4);
                    let head = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
                    Some(head | word(tail) << 32 | len << 56)
                }
                _ => None,
            }
        };
        let mut short: Vec<(u64, i64)> = Vec::new();
        let mut long: std::collections::HashMap<&[u8], i64, Fnv> = std::collections::HashMap::default();
        let mut labels = Vec::new();
        let mut label = |bytes: &[u8]| match text(bytes) {
            Some(s) => {
                labels.push(Cell::Text(s));
                labels.len() as i64 - 1
            }
            None => -1,
        };
        // A direct-mapped cache in front of the scan: a short key's slot
        // holds the last key seen there (a key's top byte is its length,
        // at most 7: never the empty slot's u64::MAX).
        let mut cache = [(u64::MAX, 0i64); 256];
        let slot = |k: u64| (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize;
        let codes = values
            .map(|v| {
                let Some(bytes) = v else { return -1 };
                let key = short_key(bytes);
                if let Some(k) = key {
                    let (cached, code) = cache[slot(k)];
                    if cached == k {
                        return code;
                    }
                }
                let code = match key {
                    Some(k) if short.len() < 64 || short.iter().any(|&(s, _)| s == k) => {
                        match short.iter().find(|&&(s, _)| s == k) {
                            Some(&(_, code)) => code,
                            None => {
                                let code = label(bytes);
                                short.push((k, code));
                                code
                            }
                        }
                    }
                    _ => *long.entry(bytes).or_insert_with(|| label(bytes)),
                };
                if let Some(k) = key {
                    cache[slot(k)] = (k, code);
                }
                code
            })
            .collect();
        ColumnData::Coded { codes, labels }
    }
}

/// FNV-1a: category labels are short, and SipHash's per-key set-up costs
/// more than the hashing (a million rows of 20 labels: 3x faster).
#[derive(Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A field absent from a record: `(field, row)`, `row` `None` when absent from every record.
pub type Absent = (String, Option<usize>);

/// Named input columns; extra columns are ignored, order does not matter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applicants {
    columns: Vec<(String, ColumnData)>,
}

impl Applicants {
    /// Empty input, to be filled with [`Applicants::column`].
    pub fn new() -> Self {
        Applicants::default()
    }

    /// Adds a column (a later column of the same name replaces it).
    pub fn column(mut self, name: impl Into<String>, data: ColumnData) -> Self {
        let name = name.into();
        self.columns.retain(|(n, _)| *n != name);
        self.columns.push((name, data));
        self
    }

    /// Applicants from named columns (of a repeated name, the last counts).
    pub fn from_columns(mut columns: Vec<(String, ColumnData)>) -> Self {
        let mut keep: Vec<bool> = {
            let mut seen = std::collections::HashSet::with_capacity(columns.len());
            columns.iter().rev().map(|(n, _)| seen.insert(n.as_str())).collect()
        };
        keep.reverse();
        let mut keep = keep.into_iter();
        columns.retain(|_| keep.next().unwrap_or(false));
        Applicants { columns }
    }

    /// Number of rows (of the first column; all must agree).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The column called `name`.
    pub fn get(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Rows `start..end` (clamped) of every column.
    pub fn slice(&self, start: usize, end: usize) -> Applicants {
        let columns = self
            .columns
            .iter()
            .map(|(name, data)| {
                let (start, end) = (start.min(data.len()), end.min(data.len()));
                let part = match data {
                    ColumnData::Numbers(v) => ColumnData::Numbers(v[start..end].to_vec()),
                    ColumnData::Cells(v) => ColumnData::Cells(v[start..end].to_vec()),
                    ColumnData::Coded { codes, labels } => {
                        ColumnData::Coded { codes: codes[start..end].to_vec(), labels: labels.clone() }
                    }
                };
                (name.clone(), part)
            })
            .collect();
        Applicants { columns }
    }

    /// Column names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    /// Applicants from `rows` records (JSON objects, Python dicts):
    /// `cell(row, field)` is the record's value, `None` when the record has
    /// no such field. The one rule for absent fields, as
    /// `pandas.DataFrame(records)` builds it: a field absent from every
    /// record leaves its column out (the scorer then names it as missing),
    /// one absent from some records is a missing value there. Returns every
    /// absence as `(field, row)`, `row` `None` when absent from all, for
    /// callers that report them (the HTTP service does).
    pub fn from_records<'a, E>(
        fields: impl IntoIterator<Item = &'a str>,
        rows: usize,
        mut cell: impl FnMut(usize, &str) -> std::result::Result<Option<Cell>, E>,
    ) -> std::result::Result<(Applicants, Vec<Absent>), E> {
        let (mut applicants, mut absent) = (Applicants::new(), Vec::new());
        for field in fields {
            let mut cells = Vec::with_capacity(rows);
            let mut missing_rows = Vec::new();
            for row in 0..rows {
                match cell(row, field)? {
                    Some(c) => cells.push(c),
                    None => {
                        missing_rows.push(row);
                        cells.push(Cell::MISSING);
                    }
                }
            }
            if missing_rows.len() == rows {
                absent.push((field.to_owned(), None));
            } else {
                absent.extend(missing_rows.into_iter().map(|r| (field.to_owned(), Some(r))));
                applicants = applicants.column(field, ColumnData::Cells(cells));
            }
        }
        Ok((applicants, absent))
    }
}

/// A column of the scorer's working table, with the name of the input
/// column it comes from (for error messages; shared, not copied, as it
/// flows through the steps).
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) data: Values,
}

/// Numbers, or dictionary-encoded cells: encoders then decide once per
/// distinct label, and a batch of a million rows with twenty categories
/// costs a million index lookups, not a million string comparisons.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    Numbers(Vec<f64>),
    Coded { codes: Vec<u32>, labels: Vec<Cell> },
}

/// A missing cell to point at.
pub(crate) static MISSING: Cell = Cell::MISSING;

/// Dictionary-encodes a slice of cells.
pub(crate) fn encode_cells(cells: &[Cell]) -> Values {
    encode(cells.iter())
}

/// Dictionary-encodes cells (all NaN cells share one missing label).
fn encode<'a>(cells: impl Iterator<Item = &'a Cell> + Clone) -> Values {
    // A form or a small request: a linear scan beats hashing.
    if cells.clone().take(17).count() <= 16 {
        let mut labels: Vec<Cell> = Vec::new();
        let codes = cells
            .map(|cell| {
                let found = labels.iter().position(|l| match (l, cell) {
                    (Cell::Text(a), Cell::Text(b)) => a == b,
                    (Cell::Number(a), Cell::Number(b)) => a == b || (a.is_nan() && b.is_nan()),
                    _ => false,
                });
                found.unwrap_or_else(|| {
                    labels.push(if cell.is_missing() { Cell::MISSING } else { cell.clone() });
                    labels.len() - 1
                }) as u32
            })
            .collect();
        return Values::Coded { codes, labels };
    }
    #[derive(PartialEq, Eq, Hash)]
    enum Key<'k> {
        Text(&'k str),
        Number(u64),
        Missing,
    }
    let mut index: std::collections::HashMap<Key<'a>, u32, Fnv> = std::collections::HashMap::default();
    let mut labels = Vec::new();
    let codes = cells
        .map(|cell| {
            let key = match cell {
                Cell::Text(s) => Key::Text(s),
                Cell::Number(x) if x.is_nan() => Key::Missing,
                Cell::Number(x) => Key::Number((x + 0.0).to_bits()),
            };
            *index.entry(key).or_insert_with(|| {
                labels.push(if cell.is_missing() { Cell::MISSING } else { cell.clone() });
                (labels.len() - 1) as u32
            })
        })
        .collect();
    Values::Coded { codes, labels }
}

/// Problems found so far; scoring fails with all of them at once.
/// Fields already reported as absent are not reported again as they flow
/// through the steps (as missing values, or as unknown categories).
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<FieldProblem>, Vec<String>);

impl Problems {
    /// At most this many are kept: enough to name every bad field of a
    /// form, bounded for a bad million-row batch.
    const LIMIT: usize = 1000;

    pub(crate) fn push(&mut self, field: &str, row: Option<usize>, reason: impl Into<String>) {
        if self.0.len() < Self::LIMIT && !self.1.iter().any(|f| f == field) {
            self.0.push(FieldProblem { field: field.to_owned(), row, reason: reason.into() });
        }
    }

    /// Reports `field` as a whole and silences its later problems.
    fn absent(&mut self, field: &str, reason: impl Into<String>) {
        self.push(field, None, reason);
        self.1.push(field.to_owned());
    }

    pub(crate) fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidFields { problems: self.0 })
        }
    }
}

/// Rows `span` of a column, borrowed.
enum Part<'a> {
    Numbers(&'a [f64]),
    Cells(&'a [Cell]),
    Coded(&'a [i64], &'a [Cell]),
}

impl ColumnData {
    fn part(&self, span: std::ops::Range<usize>) -> Part<'_> {
        match self {
            ColumnData::Numbers(v) => Part::Numbers(&v[span]),
            ColumnData::Cells(v) => Part::Cells(&v[span]),
            ColumnData::Coded { codes, labels } => Part::Coded(&codes[span], labels),
        }
    }
}

/// Gathers the schema's columns from `input` in schema order, checking
/// presence, lengths and types into `problems`. A missing or malformed
/// column is stood in for by missing values, so that preprocessing still
/// runs and reports the other fields' problems too.
pub(crate) fn gather(
    input: &Applicants,
    span: std::ops::Range<usize>,
    schema: &[(std::sync::Arc<str>, ColumnKind)],
    problems: &mut Problems,
    allow_infinite: bool,
) -> Vec<Column> {
    let (all, rows) = (input.rows(), span.len());
    let mut out = Vec::with_capacity(schema.len());
    for (shared, kind) in schema {
        let (name, shared) = (&**shared, shared.clone());
        let stand_in = || Column { name: shared.clone(), data: Values::Numbers(vec![f64::NAN; rows]) };
        let Some(data) = input.get(name) else {
            problems.absent(name, "missing column");
            out.push(stand_in());
            continue;
        };
        if data.len() != all {
            problems.absent(name, format!("has {} values, expected {all} (one per row)", data.len()));
            out.push(stand_in());
            continue;
        }
        let values = match (kind, &data.part(span.clone())) {
            (ColumnKind::Numeric, Part::Numbers(v)) => {
                // Checked in one branch-free pass first (it vectorises): the
                // rows are named only when some value is infinite.
                if !allow_infinite && v.iter().fold(false, |any, x| any | x.is_infinite()) {
                    for (row, x) in v.iter().enumerate().filter(|(_, x)| x.is_infinite()) {
                        problems.push(name, Some(row), format!("is not finite ({x})"));
                    }
                }
                Values::Numbers(v.to_vec())
            }
            (ColumnKind::Numeric, part @ (Part::Cells(_) | Part::Coded(..))) => {
                let mut v = Vec::with_capacity(rows);
                for row in 0..rows {
                    let cell = match part {
                        Part::Cells(cells) => &cells[row],
                        Part::Coded(codes, labels) => {
                            usize::try_from(codes[row]).ok().and_then(|c| labels.get(c)).unwrap_or(&MISSING)
                        }
                        Part::Numbers(_) => &MISSING,
                    };
                    match cell {
                        Cell::Number(x) if x.is_infinite() && !allow_infinite => {
                            problems.push(name, Some(row), format!("is not finite ({x})"));
                            v.push(f64::NAN);
                        }
                        Cell::Number(x) => v.push(*x),
                        Cell::Text(t) => {
                            problems.push(name, Some(row), format!("expected a number, found {t:?}"));
                            v.push(f64::NAN);
                        }
                    }
                }
                Values::Numbers(v)
            }
            (ColumnKind::Categorical, Part::Numbers(v)) => {
                let cells: Vec<Cell> = v.iter().map(|&x| Cell::Number(x)).collect();
                encode(cells.iter())
            }
            (ColumnKind::Categorical, Part::Cells(cells)) => encode(cells.iter()),
            (ColumnKind::Categorical, Part::Coded(codes, labels)) => {
                // The labels may repeat or hold NaN: encode them (and the
                // missing label, last) once, then map every code through them.
                let out_of_range = |c: i64| c >= labels.len() as i64;
                if codes.iter().fold(false, |any, &c| any | out_of_range(c)) {
                    let row = codes.iter().position(|&c| out_of_range(c)).unwrap_or(0);
                    problems.push(name, Some(row), format!("code out of range ({} labels)", labels.len()));
                }
                let Values::Coded { codes: relabel, labels: distinct } =
                    encode(labels.iter().chain(std::iter::once(&MISSING)))
                else {
                    unreachable!("encode gives codes")
                };
                let missing = relabel[labels.len()];
                let codes = codes
                    .iter()
                    .map(|&c| usize::try_from(c).ok().and_then(|c| relabel.get(c).copied()).unwrap_or(missing))
                    .collect();
                Values::Coded { codes, labels: distinct }
            }
        };
        out.push(Column { name: shared, data: values });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Cell, ColumnData};

    /// Every cell's code names its own label, whatever the mix: short (0-7
    /// bytes) and long labels, more than 64 short ones (past the scan), labels whose
    /// cache slots collide, missing cells and bytes that are not UTF-8.
    #[test]
    fn dictionary_codes_name_each_cells_label() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let vocabulary: Vec<Vec<u8>> = (0..300u32)
            .map(|i| match i % 5 {
                0 => format!("A{i}").into_bytes(),
                1 => format!("a long label {i}").into_bytes(),
                2 => vec![0xff, i as u8],
                3 => i.to_le_bytes()[..i as usize % 5].to_vec(),
                _ if i % 2 == 0 => format!("{i}").into_bytes(),
                _ => format!("k{:0w$}", i, w = 4 + i as usize % 3).into_bytes(),
            })
            .collect();
        let cells: Vec<Option<&[u8]>> = (0..20_000)
            .map(|_| {
                let i = next(301) as usize;
                vocabulary.get(i).map(Vec::as_slice)
            })
            .collect();
        let ColumnData::Coded { codes, labels } = ColumnData::from_utf8(cells.iter().copied()) else {
            panic!("a large column is dictionary-encoded");
        };
        for (cell, &code) in cells.iter().zip(&codes) {
            let expect = cell.and_then(|b| std::str::from_utf8(b).ok());
            let found = usize::try_from(code).ok().map(|c| match &labels[c] {
                Cell::Text(s) => s.as_str(),
                other => panic!("label {other:?}"),
            });
            assert_eq!(found, expect);
        }
    }
}
