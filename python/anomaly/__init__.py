"""anomaly: fast anomaly detection, written in Rust.

Domains (one module each):

- :mod:`anomaly.consumption`: rules that flag suspicious electricity
  consumption per client (outliers, spikes, night use, plantations, flat
  meters), with severities and monthly aggregates.

Every error raised is an :class:`AnomalyError`, a :class:`ValueError`
subclass; input errors carry ``.field`` and ``.row``.
"""

from anomaly import consumption
from anomaly._anomaly import __version__
from anomaly.errors import (
    AnomalyError,
    ColumnError,
    EmptyInputError,
    InternalError,
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
    "InvalidInputError",
    "ModelFileError",
    "NegativeValueError",
    "NonFiniteError",
    "NumberError",
    "ParameterError",
    "ShapeError",
    "TimestampError",
    "__version__",
    "consumption",
]
