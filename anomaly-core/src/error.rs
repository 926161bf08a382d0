//! The one error type of the core. Every variant names what is at fault
//! (a field and row, a parameter, a column, a model file) so that callers in
//! Python and the CLI can point the user at it.

use thiserror::Error;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `anomaly-core`.
///
/// Rows are 0-based positions in the input as given (before any sorting).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// An input that needs at least one element has none.
    #[error("{what} is empty")]
    Empty {
        /// What was empty, e.g. `"readings"`.
        what: String,
    },
    /// Columns of one input have different lengths.
    #[error("{field} has {found} values, expected {expected} (one per row)")]
    LengthMismatch {
        /// The column whose length is off.
        field: String,
        /// Number of rows of the input.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("{field} at row {row} is not finite ({value})")]
    NonFinite {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The offending value.
        value: f64,
    },
    /// A value that must be non-negative is negative.
    #[error("{field} at row {row} is negative ({value})")]
    Negative {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The offending value.
        value: f64,
    },
    /// A value is finite but outside the range the computation accepts.
    #[error("{field} at row {row} is out of range ({value}; {limit})")]
    OutOfRange {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The offending value.
        value: f64,
        /// The accepted range, e.g. `"at most 1e12 kWh"`.
        limit: String,
    },
    /// A timestamp could not be parsed.
    #[error("{field} at row {row}: cannot parse {value:?} as a timestamp (expected YYYY-MM-DD[ HH:MM[:SS]])")]
    BadTimestamp {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The text that failed to parse.
        value: String,
    },
    /// A number could not be parsed.
    #[error("{field} at row {row}: cannot parse {value:?} as a number")]
    BadNumber {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The text that failed to parse.
        value: String,
    },
    /// A text field is not valid UTF-8 (read lossily, distinct values
    /// such as client ids would merge).
    #[error("{field} at row {row}: {value:?} is not UTF-8 text")]
    BadText {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The text, with invalid bytes replaced.
        value: String,
    },
    /// Two rows share the same key (series and timestamp).
    #[error("{field} at row {row} duplicates row {first_row} ({key})")]
    DuplicateTimestamp {
        /// The column.
        field: String,
        /// 0-based row of the later duplicate.
        row: usize,
        /// 0-based row of the first occurrence.
        first_row: usize,
        /// The duplicated key, readable.
        key: String,
    },
    /// A timestamp is earlier than the one before it where order is required.
    #[error("{field} at row {row} is earlier than row {previous_row}; sort the input by time")]
    Unsorted {
        /// The column.
        field: String,
        /// 0-based row that breaks the order.
        row: usize,
        /// 0-based row before it.
        previous_row: usize,
    },
    /// A timestamp is not on the grid of the declared sampling interval.
    #[error(
        "{field} at row {row} ({value}) is not on the {interval_minutes}-minute grid; declare the data's interval"
    )]
    Misaligned {
        /// The column.
        field: String,
        /// 0-based row.
        row: usize,
        /// The timestamp, formatted.
        value: String,
        /// The declared interval.
        interval_minutes: u32,
    },
    /// The readings of one series span more time than the detector can lay out.
    #[error("{field}: series {series:?} spans {days} days, more than the supported {max_days}")]
    SpanTooLong {
        /// The time column.
        field: String,
        /// The series (client, variable).
        series: String,
        /// Days spanned.
        days: i64,
        /// Limit.
        max_days: i64,
    },
    /// An input has the wrong shape.
    #[error("{field}: expected {expected}, got {found}")]
    Shape {
        /// The input.
        field: String,
        /// What was expected, e.g. `"4 columns"`.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A named column does not exist.
    #[error("unknown column {name:?}; available: {available}")]
    UnknownColumn {
        /// The missing column.
        name: String,
        /// The columns that exist, comma-separated.
        available: String,
    },
    /// A parameter is out of its valid range.
    #[error("parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name as the user spells it.
        name: String,
        /// The value given.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// A model file could not be read.
    #[error("model file is corrupt: {reason}")]
    CorruptModel {
        /// What was wrong.
        reason: String,
    },
    /// A model file was written by a newer format version.
    #[error("model file format version {found} is newer than this build supports ({supported}); upgrade anomaly")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// Input fields that failed validation, all of them at once (a form
    /// with three bad fields gets one error naming the three).
    #[error("invalid input: {}", describe(problems))]
    InvalidFields {
        /// Each bad field, in input order.
        problems: Vec<FieldProblem>,
    },
    /// A model file holds a different kind of model.
    #[error("model file holds a {found:?} model, expected {expected:?}")]
    WrongModelKind {
        /// Kind requested.
        expected: String,
        /// Kind found.
        found: String,
    },
}

/// One bad field of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldProblem {
    /// The column or field.
    pub field: String,
    /// 0-based row, when the problem is in one row.
    pub row: Option<usize>,
    /// What is wrong, e.g. `"missing column"`.
    pub reason: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            Some(row) => write!(f, "{} at row {row}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

fn describe(problems: &[FieldProblem]) -> String {
    const SHOWN: usize = 10;
    let mut text = problems.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    text
}

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn param(name: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        Error::InvalidParameter { name: name.to_owned(), value: value.to_string(), reason: reason.to_owned() }
    }

    /// The field, parameter or column the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::LengthMismatch { field, .. }
            | Error::NonFinite { field, .. }
            | Error::Negative { field, .. }
            | Error::OutOfRange { field, .. }
            | Error::BadTimestamp { field, .. }
            | Error::BadNumber { field, .. }
            | Error::BadText { field, .. }
            | Error::DuplicateTimestamp { field, .. }
            | Error::Unsorted { field, .. }
            | Error::Misaligned { field, .. }
            | Error::SpanTooLong { field, .. }
            | Error::Shape { field, .. } => Some(field),
            Error::UnknownColumn { name, .. } | Error::InvalidParameter { name, .. } => Some(name),
            Error::Empty { what } => Some(what),
            Error::InvalidFields { problems } => problems.first().map(|p| p.field.as_str()),
            Error::CorruptModel { .. } | Error::UnsupportedVersion { .. } | Error::WrongModelKind { .. } => None,
        }
    }

    /// The 0-based input row the error is about, if any.
    pub fn row(&self) -> Option<usize> {
        match self {
            Error::NonFinite { row, .. }
            | Error::Negative { row, .. }
            | Error::OutOfRange { row, .. }
            | Error::BadTimestamp { row, .. }
            | Error::BadNumber { row, .. }
            | Error::BadText { row, .. }
            | Error::DuplicateTimestamp { row, .. }
            | Error::Unsorted { row, .. }
            | Error::Misaligned { row, .. } => Some(*row),
            Error::InvalidFields { problems } => problems.first().and_then(|p| p.row),
            _ => None,
        }
    }
}
