"""anomaly: fast anomaly detection, written in Rust.

Domains (one module each):

- :class:`Prophet` (:mod:`anomaly.forecast_interval`): Prophet's forecasting
  model fitted in Rust, a drop-in for ``prophet.Prophet``, with Prophet's
  helper modules as :mod:`anomaly.diagnostics`, :mod:`anomaly.serialize` and
  :mod:`anomaly.utilities`.
- :class:`IsolationForest` (:mod:`anomaly.isolation_forest`): a drop-in for
  scikit-learn's, plus the extended isolation forest and sensor metrics.
- :mod:`anomaly.credit_risk`: scikit-learn credit-scoring pipelines exported
  once and scored in Rust with identical probabilities.
- :mod:`anomaly.consumption`: rules that flag suspicious electricity
  consumption per client (outliers, spikes, night use, plantations, flat
  meters), with severities and monthly aggregates.

Every error raised is an :class:`AnomalyError`, a :class:`ValueError`
subclass; input errors carry ``.field`` and ``.row``.
"""

from anomaly import (
    consumption,
    credit_risk,
    diagnostics,
    errors,
    forecast_interval,
    isolation_forest,
    serialize,
    utilities,
)
from anomaly._anomaly import __version__
from anomaly.errors import *  # noqa: F403 - the exception classes
from anomaly.forecast_interval import ForecastDetector, Prophet
from anomaly.isolation_forest import IsolationForest

__all__ = [
    *errors.__all__,
    "ForecastDetector",
    "IsolationForest",
    "Prophet",
    "__version__",
    "consumption",
    "credit_risk",
    "diagnostics",
    "forecast_interval",
    "isolation_forest",
    "serialize",
    "utilities",
]
