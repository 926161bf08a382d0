"""Forecasting intervals: Prophet's model fitted in Rust.

- :class:`Prophet` (:mod:`.prophet`): a drop-in for ``prophet.Prophet`` 1.5
  (all but MCMC), the MAP fit solved exactly in Rust.
- :class:`ForecastDetector` (:mod:`.detector`): the plant team's detector,
  one model per process variable.
- :mod:`.holidays`: country holidays as Prophet builds them.

Mirrors ``anomaly_core::forecast_interval``.
"""

from anomaly.errors import ModelStateError
from anomaly.forecast_interval.detector import ForecastDetector
from anomaly.forecast_interval.prophet import Prophet

__all__ = ["ForecastDetector", "ModelStateError", "Prophet"]
