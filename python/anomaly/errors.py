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

import numbers
import os
from typing import Any

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


#: The largest value of the core's unsigned 64-bit parameters (``u64``/``usize``: seeds, counts).
U64_MAX = 2**64 - 1


def whole_number(value: Any, name: str, *, low: int = 0, high: int = U64_MAX) -> int:
    """``value`` as a Python int from ``low`` to ``high``, for a size, count or seed the
    core takes as an unsigned integer; anything else is a ParameterError naming ``name``.

    Refused: bools, floats (even ``3.0``), text, negative numbers and numbers past
    ``high`` (by default what 64 bits hold), which pyo3 would turn into a bare
    ``OverflowError`` or ``TypeError``, or which Python would silently truncate.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        message = f"parameter {name} = {value!r}: expected a whole number from {low} to {high}"
        raise input_error(ParameterError, message, name)
    return int(value)


def utf8_names(values: Any, codes: Any, column: str) -> list[str]:
    """``str`` of each distinct value of ``column`` (``codes`` index them, as ``pd.factorize``
    gives), refusing one that is not UTF-8 text with an InvalidInputError naming the column
    and its first row: a lone surrogate (``os.fsdecode`` of non-UTF-8 bytes gives ``'\\udcff'``)
    cannot cross into the core, where pyo3 would raise a bare ``UnicodeEncodeError``."""
    names = [str(v) for v in values]
    try:
        "".join(names).encode("utf-8")  # one pass; joining cannot pair two lone surrogates
    except UnicodeEncodeError:
        import numpy as np

        for code, name in enumerate(names):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                row = int(np.flatnonzero(np.asarray(codes) == code)[0])
                message = (
                    f"{column} at row {row}: {name!r} is not UTF-8 text "
                    "(a lone surrogate, as os.fsdecode makes of non-UTF-8 bytes)"
                )
                raise input_error(InvalidInputError, message, column, row) from None
    return names


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
