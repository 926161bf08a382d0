"""The exception tree of anomaly, rooted in :class:`AnomalyError` (a ValueError).

The classes live in the Rust extension so that errors raised by Rust and by
the Python wrappers are the same classes; the two that only Python code
raises (marked py) are defined here::

    AnomalyError(ValueError)
    ├── InvalidInputError        .field, .row (0-based position)
    │   ├── EmptyInputError
    │   ├── NonFiniteError
    │   ├── NegativeValueError
    │   ├── TimestampError       unparsable, duplicate, unsorted, off-grid
    │   ├── NumberError          not a number
    │   ├── ShapeError
    │   ├── ColumnError          unknown column
    │   └── InvalidFieldsError   .problems: every bad field of a request (field, row, reason)
    ├── ParameterError           .field = the parameter
    ├── ModelFileError           corrupt, newer version, other kind
    ├── ModelStateError          py: a call the model's state forbids (fit twice, predict before fit)
    ├── UnsupportedModelError    py: a scikit-learn step the credit exporter cannot reproduce
    └── InternalError            a bug (a Rust panic caught at the border)
"""

from __future__ import annotations

import os

from anomaly._anomaly import (
    AnomalyError,
    ColumnError,
    EmptyInputError,
    InternalError,
    InvalidFieldsError,
    InvalidInputError,
    ModelFileError,
    NegativeValueError,
    NonFiniteError,
    NumberError,
    ParameterError,
    ShapeError,
    TimestampError,
)

__all__ = [
    "AnomalyError",
    "ColumnError",
    "EmptyInputError",
    "InternalError",
    "InvalidFieldsError",
    "InvalidInputError",
    "ModelFileError",
    "ModelStateError",
    "NegativeValueError",
    "NonFiniteError",
    "NumberError",
    "ParameterError",
    "ShapeError",
    "TimestampError",
    "UnsupportedModelError",
]


class ModelStateError(AnomalyError):
    """A call the model's state does not allow: fitting twice, predicting before fitting,
    adding a component after fitting (Prophet raises a bare ``Exception`` there).

    Defined in Python because only :class:`anomaly.Prophet`, which is Python, raises it.
    """


class UnsupportedModelError(AnomalyError):
    """A fitted scikit-learn step or option that :mod:`anomaly.credit_risk` cannot export.

    The message names the step (``step 'clf' (SVC) is not supported; ...``).
    Defined in Python because only the exporter, which is Python, raises it.
    """


def input_error(cls: type[AnomalyError], message: str, field: str | None, row: int | None = None) -> AnomalyError:
    """Builds an exception of ``cls`` carrying ``.field`` and ``.row``, as the Rust side does."""
    err = cls(message)
    err.field = field  # type: ignore[attr-defined]
    err.row = row  # type: ignore[attr-defined]
    return err


def read_model_file(path: str | os.PathLike[str]) -> bytes:
    """A model file's bytes: a regular file no larger than the core's
    ``MAX_MODEL_BYTES``, so a FIFO or ``/dev/zero`` is refused (ModelFileError)
    instead of blocking or filling memory."""
    import stat

    from anomaly import _anomaly

    cap = _anomaly.MAX_MODEL_BYTES
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
        raise ModelFileError(f"{os.fspath(path)}: not a regular file of at most {cap} bytes")
    with open(path, "rb") as f:
        return f.read(cap)
