//! Errors that are the input's fault (exit code 2), as opposed to I/O or
//! internal failures (exit code 1).

use std::path::PathBuf;

/// Bad input: a file whose content, columns or values are wrong, or a bad
/// parameter.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// A CSV the reader cannot parse.
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
    /// A value or row rejected by the core; `row` is shown with its CSV line.
    #[error("{path}: {error}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Data { path: PathBuf, line: Option<usize>, error: anomaly_core::Error },
    /// A bad parameter or parameter file.
    #[error(transparent)]
    Params(#[from] anomaly_core::Error),
}

impl InputError {
    /// Wraps a core error about rows of the CSV at `path` (header on line 1).
    pub(crate) fn data(path: &std::path::Path, error: anomaly_core::Error) -> Self {
        InputError::Data { path: path.to_owned(), line: error.row().map(|r| r + 2), error }
    }
}
