"""The plant team's detector: one Prophet model per process variable, in Rust.

Built on the Rust ``ForecastDetectorModel`` (fitted in parallel, GIL
released, saved as a model directory); it takes Prophet's constructor
options but not :class:`anomaly.Prophet`'s ``fit``: the core fits and
evaluates every variable itself.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import ParameterError, TimestampError, input_error, utf8_names, whole_number
from anomaly.forecast_interval._features import FOURIER_ORDER_MAX, ns_of, ns_range_error, out_of_ns_range
from anomaly.forecast_interval._features import numeric as _numeric
from anomaly.forecast_interval._predict import samples_of

__all__ = ["ForecastDetector"]

# Prophet's options the core's detector supports, with their defaults.
_DEFAULTS: dict[str, Any] = {
    "growth": "linear",
    "changepoints": None,
    "n_changepoints": 25,
    "changepoint_range": 0.8,
    "holidays": None,
    "seasonality_prior_scale": 10.0,
    "holidays_prior_scale": 10.0,
    "mcmc_samples": 0,
    "uncertainty_samples": 1000,
    "stan_backend": None,
    "scaling": "absmax",
    "holidays_mode": None,
    "interval_method": "simulated",
}


def _setting(value: Any, name: str) -> Any:
    if value == "auto" or isinstance(value, (bool, np.bool_)):
        return value if value == "auto" else bool(value)
    if isinstance(value, (int, np.integer)) and 0 <= value <= FOURIER_ORDER_MAX:
        return int(value)
    raise input_error(ParameterError, f"parameter {name} = {value!r}: expected 'auto', True, False or a Fourier order", name)


def _options(
    interval_width: float,
    changepoint_prior_scale: float,
    seasonality_mode: str,
    daily_seasonality: Any,
    weekly_seasonality: Any,
    yearly_seasonality: Any,
    prophet_options: dict[str, Any],
) -> dict[str, Any]:
    """The core's Prophet options, refusing what the detector does not support."""
    unknown = sorted(set(prophet_options) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"ForecastDetector got an unexpected keyword argument {unknown[0]!r}")
    o = {**_DEFAULTS, **prophet_options}
    # Counts the core takes as unsigned integers: a ParameterError naming them, not the config's.
    whole_number(o["mcmc_samples"], "mcmc_samples")
    n_changepoints = whole_number(o["n_changepoints"], "n_changepoints")
    samples = samples_of(o["uncertainty_samples"])
    unsupported = {
        "growth": o["growth"] not in ("linear", "flat"),
        "holidays": o["holidays"] is not None,
        "mcmc_samples": o["mcmc_samples"] != 0,
        "scaling": o["scaling"] != "absmax",
        "holidays_mode": o["holidays_mode"] not in (None, seasonality_mode),
    }
    for name, bad in unsupported.items():
        if bad:
            raise input_error(
                ParameterError,
                f"Prophet option {name} = {o[name]!r} is not supported by ForecastDetector "
                "(supported: linear or flat growth, absmax scaling, MAP fit, no holidays)",
                name,
            )
    if seasonality_mode not in ("additive", "multiplicative"):
        raise input_error(ParameterError, f"seasonality_mode = {seasonality_mode!r}: expected additive or multiplicative", "seasonality_mode")
    if o["interval_method"] not in ("simulated", "analytic"):
        raise input_error(ParameterError, f"interval_method = {o['interval_method']!r}: expected simulated or analytic", "interval_method")
    changepoints = o["changepoints"]
    if changepoints is not None:
        changepoints = [int(v) for v in ns_of(pd.to_datetime(pd.Series(changepoints)), "changepoints")]
    return {
        "growth": o["growth"],
        "changepoints": changepoints,
        "n_changepoints": n_changepoints,
        "changepoint_range": float(o["changepoint_range"]),
        "yearly_seasonality": _setting(yearly_seasonality, "yearly_seasonality"),
        "weekly_seasonality": _setting(weekly_seasonality, "weekly_seasonality"),
        "daily_seasonality": _setting(daily_seasonality, "daily_seasonality"),
        "seasonality_mode": seasonality_mode,
        "seasonality_prior_scale": float(o["seasonality_prior_scale"]),
        "holidays_prior_scale": float(o["holidays_prior_scale"]),
        "changepoint_prior_scale": float(changepoint_prior_scale),
        "interval_width": float(interval_width),
        "uncertainty_samples": samples,
        "seasonalities": [],
        "regressors": [],
    }


class ForecastDetector:
    """The plant team's detector: one Prophet model per process variable.

    A reading is anomalous outside ``[yhat_lower, yhat_upper]`` or when
    ``|y - yhat| > k_sigma * std(training residuals)``; ``anomaly_score`` is
    0-100 (band overshoot in half-widths x 50, or the residual in standard
    deviations x 20, whichever is larger). Defaults are the plant team's:
    interval 0.95, ``k_sigma`` 2, multiplicative daily and weekly
    seasonality, changepoint prior 0.05. Bands are deterministic (analytic)
    unless ``seed`` asks for Prophet's Monte Carlo band.

    ``fit`` and ``detect`` take a single series (``ds``, ``y``) or a long
    frame with ``variable_col`` (for example ``datetime, variable_name,
    value``). Detecting new readings evaluates the stored models: nothing is
    refitted.
    """

    def __init__(
        self,
        *,
        k_sigma: float = 2.0,
        interval_width: float = 0.95,
        changepoint_prior_scale: float = 0.05,
        seasonality_mode: str = "multiplicative",
        daily_seasonality: Any = True,
        weekly_seasonality: Any = True,
        yearly_seasonality: Any = False,
        seed: int | None = None,
        **prophet_options: Any,
    ) -> None:
        options = _options(
            interval_width,
            changepoint_prior_scale,
            seasonality_mode,
            daily_seasonality,
            weekly_seasonality,
            yearly_seasonality,
            prophet_options,
        )
        seed = seed if seed is None else whole_number(seed, "seed")
        self._config = {"prophet": options, "k_sigma": float(k_sigma), "simulated_seed": seed}
        self._models: Any = None

    @staticmethod
    def _long(
        df: pd.DataFrame, time_col: str, value_col: str, variable_col: str | None
    ) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, tuple[str, str, str]]:
        """Codes, variable names, timestamps (seconds), values, and the column names the core's errors use."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        for col in [time_col, value_col] + ([variable_col] if variable_col else []):
            if col not in df.columns:
                raise input_error(_anomaly.ColumnError, f"unknown column {col!r}; available: {', '.join(map(str, df.columns))}", col)
        times = pd.to_datetime(df[time_col], errors="coerce")
        if getattr(times.dt, "tz", None) is not None:
            raise input_error(TimestampError, f"{time_col} has a timezone; use naive local timestamps", time_col)
        bad = np.flatnonzero(times.isna().to_numpy())
        if len(bad):
            row = int(bad[0])
            raise input_error(TimestampError, f"{time_col} at row {row}: cannot parse {df[time_col].iloc[row]!r}", time_col, row)
        # The models count nanoseconds: a time they cannot hold (pandas 3 parses year 9999 text, and
        # datetime64[s] holds it) is refused here, before it becomes seconds.
        outside = out_of_ns_range(times.to_numpy())
        if len(outside):
            raise ns_range_error(time_col, times.iloc[int(outside[0])], int(outside[0]))
        # Missing is NaN or None; text is a mistake, not a missing reading.
        values = _numeric(df[value_col], value_col).to_numpy(dtype=np.float64)
        if variable_col:
            try:
                text = df[variable_col].astype(str)
            except UnicodeEncodeError:  # pandas' Arrow strings refuse a lone surrogate: utf8_names names it
                text = np.array([str(v) for v in df[variable_col]], dtype=object)
            codes, uniques = pd.factorize(text)
            names = utf8_names(uniques, codes, variable_col)
        else:
            codes, names = np.zeros(len(df), dtype=np.int64), [str(value_col)]
        columns = (time_col, variable_col or "variable", value_col)
        return codes.astype(np.uint32), names, times.to_numpy(dtype="datetime64[s]").astype(np.int64), values, columns

    def fit(self, df: pd.DataFrame, *, time_col: str = "ds", value_col: str = "y", variable_col: str | None = None) -> ForecastDetector:
        """Fits one model per variable (in parallel, GIL released)."""
        codes, names, ds, values, columns = self._long(df, time_col, value_col, variable_col)
        self._models = _anomaly.ForecastDetectorModel.fit(json.dumps(self._config), codes, names, ds, values, columns=columns)
        return self

    def detect(self, df: pd.DataFrame, *, time_col: str = "ds", value_col: str = "y", variable_col: str | None = None) -> pd.DataFrame:
        """``df`` plus ``yhat, yhat_lower, yhat_upper, residual, is_anomaly, anomaly_score``."""
        if self._models is None:
            raise Exception("Model has not been fit.")
        codes, names, ds, values, columns = self._long(df, time_col, value_col, variable_col)
        raw = self._models.detect(codes, names, ds, values, columns=columns)
        out = df.copy()
        for key in ("yhat", "yhat_lower", "yhat_upper", "residual", "is_anomaly", "anomaly_score"):
            out[key] = raw[key]
        return out

    @property
    def stats_(self) -> pd.DataFrame:
        """Per-variable training statistics (count, mean, std, min, max, residual_std, first, last)."""
        if self._models is None:
            raise Exception("Model has not been fit.")
        stats = pd.DataFrame(json.loads(self._models.stats_json())).T
        for col in ("first", "last"):
            stats[col] = pd.to_datetime(stats[col].astype("int64"), unit="s")
        return stats

    def save(self, path: Any) -> None:
        """Writes a model directory: one file per variable plus ``detector.json``."""
        if self._models is None:
            raise Exception("Model has not been fit.")
        self._models.save(str(path))

    @classmethod
    def load(cls, path: Any) -> ForecastDetector:
        """Reads a model directory written by :meth:`save` or ``anomaly forecast train``."""
        self = cls.__new__(cls)
        self._models = _anomaly.ForecastDetectorModel.load(str(path))
        self._config = {}
        return self
