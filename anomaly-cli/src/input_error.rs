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

/// Opens an input file; one that cannot be opened (missing, unreadable, a
/// directory) is the caller's mistake: exit 2, with the path and the reason.
pub(crate) fn open_input(path: &std::path::Path) -> Result<std::fs::File, InputError> {
    std::fs::File::open(path)
        .and_then(|f| if f.metadata()?.is_dir() { Err(std::io::Error::other("is a directory")) } else { Ok(f) })
        .map_err(|e| InputError::Csv { path: path.to_owned(), message: format!("cannot open: {e}") })
}

impl InputError {
    /// Wraps a core error about rows of the CSV at `path` (header on line 1).
    pub(crate) fn data(path: &std::path::Path, error: anomaly_core::Error) -> Self {
        InputError::Data { path: path.to_owned(), line: error.row().map(|r| r + 2), error }
    }
}
