//! The Python exception tree, and the one place core errors map onto it.
//!
//! ```text
//! AnomalyError(ValueError)
//! ├── InvalidInputError        .field, .row
//! │   ├── EmptyInputError
//! │   ├── NonFiniteError
//! │   ├── NegativeValueError
//! │   ├── TimestampError       unparsable, duplicate, unsorted, off-grid
//! │   ├── NumberError          unparsable number
//! │   ├── ShapeError
//! │   ├── ColumnError          unknown column
//! │   └── InvalidFieldsError   .problems: every bad field of a request
//! ├── ParameterError           .field = the parameter
//! ├── ModelFileError           corrupt, newer version, other kind
//! └── InternalError            a bug: a Rust panic, caught at the border
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};

use anomaly_core::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// Declares the exception classes and `register`, which adds them all to
/// the module, from one list.
macro_rules! exceptions {
    ($($name:ident($base:ty): $doc:literal;)*) => {
        $(create_exception!(anomaly._anomaly, $name, $base, $doc);)*

        /// Adds the exception classes to the module.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $(m.add(stringify!($name), m.py().get_type::<$name>())?;)*
            Ok(())
        }
    };
}

exceptions! {
    AnomalyError(PyValueError): "Root of every error raised by anomaly (a ValueError).";
    InvalidInputError(AnomalyError): "Bad input data; `.field` and `.row` (0-based position) name the culprit.";
    EmptyInputError(InvalidInputError): "An input that needs rows has none.";
    NonFiniteError(InvalidInputError): "A value is NaN or infinite.";
    NegativeValueError(InvalidInputError): "A value that must be >= 0 is negative.";
    TimestampError(InvalidInputError): "A timestamp is unparsable, duplicated, out of order or off the interval grid.";
    NumberError(InvalidInputError): "A value is not a number.";
    ShapeError(InvalidInputError): "Inputs have the wrong shape or length.";
    ColumnError(InvalidInputError): "A named column does not exist.";
    InvalidFieldsError(InvalidInputError): "Input fields failed validation; `.problems` lists each as a dict (field, row, reason).";
    ParameterError(AnomalyError): "A parameter is out of range; `.field` names it.";
    ModelFileError(AnomalyError): "A model file (or pickle) is corrupt, too new, or of another kind.";
    InternalError(AnomalyError): "An internal bug (a caught Rust panic); please report it.";
}

/// Converts a core error into its Python exception, with `.field` and `.row`.
pub(crate) fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let exc = match &err {
        Error::Empty { .. } => EmptyInputError::new_err(message),
        Error::NonFinite { .. } => NonFiniteError::new_err(message),
        Error::Negative { .. } => NegativeValueError::new_err(message),
        Error::OutOfRange { .. } => InvalidInputError::new_err(message),
        Error::BadTimestamp { .. }
        | Error::DuplicateTimestamp { .. }
        | Error::Unsorted { .. }
        | Error::Misaligned { .. }
        | Error::SpanTooLong { .. } => TimestampError::new_err(message),
        Error::BadNumber { .. } => NumberError::new_err(message),
        Error::BadText { .. } => InvalidInputError::new_err(message),
        Error::LengthMismatch { .. } | Error::Shape { .. } => ShapeError::new_err(message),
        Error::UnknownColumn { .. } => ColumnError::new_err(message),
        Error::InvalidParameter { .. } => ParameterError::new_err(message),
        Error::InvalidFields { .. } => InvalidFieldsError::new_err(message),
        Error::CorruptModel { .. } | Error::UnsupportedVersion { .. } | Error::WrongModelKind { .. } => {
            ModelFileError::new_err(message)
        }
        _ => AnomalyError::new_err(message),
    };
    let value = exc.value(py);
    // Setting attributes on a fresh exception instance cannot fail in practice;
    // if it did, the exception itself is still the right one to raise.
    let _ = value.setattr("field", err.field());
    let _ = value.setattr("row", err.row());
    if let Error::InvalidFields { problems } = &err {
        let list: Vec<_> = problems
            .iter()
            .map(|p| {
                let d = pyo3::types::PyDict::new(py);
                let _ = d.set_item("field", &p.field);
                let _ = d.set_item("row", p.row);
                let _ = d.set_item("reason", &p.reason);
                d
            })
            .collect();
        let _ = value.setattr("problems", list);
    }
    exc
}

/// Runs heavy core work with the GIL released, turning core errors into
/// Python exceptions and a panic into `InternalError` instead of letting it
/// cross into Python.
pub(crate) fn run<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> anomaly_core::Result<T> + Send,
    T: Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(work))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(to_py(py, err)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(InternalError::new_err(format!("internal error (please report): {what}")))
        }
    }
}
