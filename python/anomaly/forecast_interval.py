"""Prophet's model in Rust: ``anomaly.Prophet`` is a drop-in for
``prophet.Prophet`` on the supported options.

Change one import line::

    # from prophet import Prophet
    from anomaly import Prophet

and keep ``fit(df)`` with ``ds``/``y``, ``make_future_dataframe``,
``predict`` (the same columns: ``ds, trend, yhat_lower, yhat_upper,
trend_lower, trend_upper``, each component with ``_lower``/``_upper``,
``additive_terms``, ``multiplicative_terms``, ``yhat``), ``add_seasonality``
and ``add_regressor``. The fit is Prophet's MAP estimate, solved exactly in
Rust (no Stan); the GIL is released during fit and predict.

Supported: growth ``linear`` or ``flat``; changepoints (grid or explicit);
yearly/weekly/daily seasonality (``"auto"``, bool or Fourier order);
additive or multiplicative mode; prior scales; custom seasonalities; extra
regressors; ``interval_width``; ``uncertainty_samples``. Unsupported
arguments (logistic growth, holidays, MCMC, conditional seasonalities,
``minmax`` scaling) raise :class:`anomaly.ParameterError` naming them.

Two additions: ``seed`` makes Prophet's Monte Carlo intervals
reproducible, and ``interval_method="analytic"`` gives deterministic bands
(see ``anomaly_core::forecast_interval``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import NumberError, ParameterError, TimestampError, input_error

__all__ = ["ForecastDetector", "Prophet"]


def _ns(ds: pd.Series) -> np.ndarray:
    return ds.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _setting(value: Any, name: str) -> Any:
    if value == "auto" or isinstance(value, (bool, np.bool_)):
        return value if value == "auto" else bool(value)
    if isinstance(value, (int, np.integer)) and value >= 0:
        return int(value)
    raise input_error(ParameterError, f"parameter {name} = {value!r}: expected 'auto', True, False or a Fourier order", name)


class Prophet:
    """Prophet's forecasting model (the supported subset), fitted in Rust."""

    def __init__(
        self,
        growth: str = "linear",
        changepoints: Any = None,
        n_changepoints: int = 25,
        changepoint_range: float = 0.8,
        yearly_seasonality: Any = "auto",
        weekly_seasonality: Any = "auto",
        daily_seasonality: Any = "auto",
        holidays: Any = None,
        seasonality_mode: str = "additive",
        seasonality_prior_scale: float = 10.0,
        holidays_prior_scale: float = 10.0,
        changepoint_prior_scale: float = 0.05,
        mcmc_samples: int = 0,
        interval_width: float = 0.80,
        uncertainty_samples: int = 1000,
        stan_backend: Any = None,
        scaling: str = "absmax",
        holidays_mode: Any = None,
        *,
        seed: int | None = None,
        interval_method: str = "simulated",
    ) -> None:
        unsupported = {
            "growth": growth not in ("linear", "flat"),
            "holidays": holidays is not None,
            "mcmc_samples": mcmc_samples != 0,
            "scaling": scaling != "absmax",
            "holidays_mode": holidays_mode not in (None, seasonality_mode),
        }
        for name, bad in unsupported.items():
            if bad:
                raise input_error(
                    ParameterError,
                    f"Prophet option {name} = {locals()[name]!r} is not supported by anomaly.Prophet "
                    "(supported: linear or flat growth, absmax scaling, MAP fit, no holidays)",
                    name,
                )
        if seasonality_mode not in ("additive", "multiplicative"):
            raise input_error(ParameterError, f"seasonality_mode = {seasonality_mode!r}: expected additive or multiplicative", "seasonality_mode")
        if interval_method not in ("simulated", "analytic"):
            raise input_error(ParameterError, f"interval_method = {interval_method!r}: expected simulated or analytic", "interval_method")
        self.growth = growth
        self.changepoints = None if changepoints is None else pd.Series(pd.to_datetime(changepoints), name="ds")
        self.n_changepoints = n_changepoints
        self.changepoint_range = changepoint_range
        self.yearly_seasonality = _setting(yearly_seasonality, "yearly_seasonality")
        self.weekly_seasonality = _setting(weekly_seasonality, "weekly_seasonality")
        self.daily_seasonality = _setting(daily_seasonality, "daily_seasonality")
        self.seasonality_mode = seasonality_mode
        self.seasonality_prior_scale = float(seasonality_prior_scale)
        self.holidays_prior_scale = float(holidays_prior_scale)
        self.changepoint_prior_scale = float(changepoint_prior_scale)
        self.interval_width = float(interval_width)
        self.uncertainty_samples = int(uncertainty_samples or 0)
        self.seed = seed
        self.interval_method = interval_method
        self.seasonalities: dict[str, dict[str, Any]] = {}
        self.extra_regressors: dict[str, dict[str, Any]] = {}
        self.history: pd.DataFrame | None = None
        self.history_dates: pd.Series | None = None
        self._model: Any = None

    # -- configuration ---------------------------------------------------------------------------

    def add_seasonality(
        self,
        name: str,
        period: float,
        fourier_order: int,
        prior_scale: float | None = None,
        mode: str | None = None,
        condition_name: str | None = None,
    ) -> Prophet:
        """Adds a seasonality (Prophet's signature; ``condition_name`` is not supported)."""
        if self._model is not None:
            raise Exception("Prophet object can only be fit once. Instantiate a new object.")
        if condition_name is not None:
            raise input_error(ParameterError, "condition_name is not supported by anomaly.Prophet", "condition_name")
        self.seasonalities[name] = {
            "period": float(period),
            "fourier_order": int(fourier_order),
            "prior_scale": None if prior_scale is None else float(prior_scale),
            "mode": mode,
        }
        return self

    def add_regressor(
        self, name: str, prior_scale: float | None = None, standardize: Any = "auto", mode: str | None = None
    ) -> Prophet:
        """Adds an extra regressor column (Prophet's signature)."""
        if self._model is not None:
            raise Exception("Prophet object can only add regressors before fitting.")
        self.extra_regressors[name] = {
            "prior_scale": None if prior_scale is None else float(prior_scale),
            "standardize": None if standardize == "auto" else bool(standardize),
            "mode": mode,
        }
        return self

    def _options(self) -> dict[str, Any]:
        return {
            "growth": self.growth,
            "changepoints": None if self.changepoints is None else [int(v) for v in _ns(self.changepoints)],
            "n_changepoints": int(self.n_changepoints),
            "changepoint_range": float(self.changepoint_range),
            "yearly_seasonality": self.yearly_seasonality,
            "weekly_seasonality": self.weekly_seasonality,
            "daily_seasonality": self.daily_seasonality,
            "seasonality_mode": self.seasonality_mode,
            "seasonality_prior_scale": self.seasonality_prior_scale,
            "holidays_prior_scale": self.holidays_prior_scale,
            "changepoint_prior_scale": self.changepoint_prior_scale,
            "interval_width": self.interval_width,
            "uncertainty_samples": self.uncertainty_samples,
            "seasonalities": [{"name": n, **p} for n, p in self.seasonalities.items()],
            "regressors": [{"name": n, **p} for n, p in self.extra_regressors.items()],
        }

    # -- data ------------------------------------------------------------------------------------

    def _frame(self, df: pd.DataFrame, need_y: bool) -> pd.DataFrame:
        """Prophet's input checks and messages, raised as typed errors naming the column and row."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        for col in ["ds", "y"] if need_y else ["ds"]:
            if col not in df:
                message = 'Dataframe must have columns "ds" and "y" with the dates and values respectively.'
                raise input_error(_anomaly.ColumnError, message, col)
        df = df.copy()
        if need_y:
            df["y"] = _numeric(df["y"], "y")
            inf = np.flatnonzero(np.isinf(df["y"].to_numpy(dtype=float)))
            if len(inf):
                raise input_error(_anomaly.NonFiniteError, "Found infinity in column y.", "y", int(inf[0]))
        if df["ds"].dtype == np.int64:
            df["ds"] = df["ds"].astype(str)
        try:
            df["ds"] = pd.to_datetime(df["ds"])
        except (ValueError, TypeError) as err:
            parsed = pd.to_datetime(df["ds"], errors="coerce")
            bad = np.flatnonzero((parsed.isna() & df["ds"].notna()).to_numpy())
            row = int(bad[0]) if len(bad) else None
            raise input_error(TimestampError, f"Column ds cannot be parsed as dates: {err}", "ds", row) from None
        if df["ds"].dt.tz is not None:
            raise input_error(
                TimestampError, "Column ds has timezone specified, which is not supported. Remove timezone.", "ds"
            )
        missing = np.flatnonzero(df["ds"].isnull().to_numpy())
        if len(missing):
            raise input_error(TimestampError, "Found NaN in column ds.", "ds", int(missing[0]))
        for name in self.extra_regressors:
            if name not in df:
                raise input_error(_anomaly.ColumnError, f"Regressor {name!r} missing from dataframe", name)
            df[name] = _numeric(df[name], name)
            missing = np.flatnonzero(df[name].isnull().to_numpy())
            if len(missing):
                raise input_error(_anomaly.NonFiniteError, f"Found NaN in column {name!r}", name, int(missing[0]))
        if df.index.name == "ds":
            df.index.name = None
        # Sorted as Prophet does; repeated timestamps are kept, as Prophet keeps them.
        return df.sort_values("ds", kind="mergesort").reset_index(drop=True)

    def _regressors(self, df: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
        return [(name, df[name].to_numpy(dtype=np.float64)) for name in self.extra_regressors]

    def fit(self, df: pd.DataFrame, **kwargs: Any) -> Prophet:
        """Fits the model to ``df`` (columns ``ds`` and ``y``; NaN ``y`` rows are dropped)."""
        if self._model is not None:
            raise Exception("Prophet object can only be fit once. Instantiate a new object.")
        if kwargs:
            raise input_error(ParameterError, f"fit arguments {sorted(kwargs)} (Stan options) are not supported", sorted(kwargs)[0])
        frame = self._frame(df, need_y=True)
        self._model = _anomaly.ProphetModel.fit(
            json.dumps(self._options()), _ns(frame["ds"]), frame["y"].to_numpy(dtype=np.float64), self._regressors(frame)
        )
        self.history = frame[frame["y"].notnull()].reset_index(drop=True)
        self.history_dates = pd.Series(frame["ds"].unique(), name="ds").sort_values().reset_index(drop=True)
        params = self._model.params()
        self.params = {
            "k": np.array([[params["k"]]]),
            "m": np.array([[params["m"]]]),
            "delta": np.asarray(params["delta"]).reshape(1, -1),
            "sigma_obs": np.array([[params["sigma_obs"]]]),
            "beta": np.asarray(params["beta"]).reshape(1, -1),
        }
        self.y_scale = params["y_scale"]
        self.start = pd.Timestamp(params["start"])
        self.t_scale = pd.Timedelta(int(params["t_scale"]), unit="ns")
        self.changepoints_t = np.asarray(params["changepoints_t"])
        self.objective_ = params["objective"]
        for name in params["seasonalities"]:
            self.seasonalities.setdefault(name, {})
        return self

    def make_future_dataframe(self, periods: int, freq: str = "D", include_history: bool = True) -> pd.DataFrame:
        """Prophet's future frame: ``periods`` steps of ``freq`` after the history."""
        if self.history_dates is None:
            raise Exception("Model has not been fit.")
        if freq is None:
            freq = pd.infer_freq(self.history_dates.tail(5))
            if freq is None:
                raise Exception("Unable to infer `freq`")
        last_date = self.history_dates.max()
        dates = pd.date_range(start=last_date, periods=periods + 1, freq=freq)
        dates = dates[dates > last_date][:periods]
        if include_history:
            dates = np.concatenate((np.array(self.history_dates), dates))
        return pd.DataFrame({"ds": dates})

    def predict(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Forecast with Prophet's columns, sorted by ``ds`` (the history when ``df`` is None)."""
        if self._model is None:
            raise Exception("Model has not been fit.")
        if df is None:
            frame = self.history
        else:
            if df.shape[0] == 0:
                raise ValueError("Dataframe has no rows.")
            frame = self._frame(df, need_y=False)
        assert frame is not None
        intervals = self.interval_method if self.uncertainty_samples else "none"
        seed = self.seed if self.seed is not None else int(np.random.default_rng().integers(2**63))
        raw = self._model.predict(_ns(frame["ds"]), self._regressors(frame), intervals, seed)
        out: dict[str, Any] = {"ds": frame["ds"].to_numpy(), "trend": raw["trend"]}
        if "yhat_lower" in raw:
            for key in ("yhat_lower", "yhat_upper", "trend_lower", "trend_upper"):
                out[key] = raw[key]
        components = dict(raw["components"])
        groups = {"additive_terms": raw["additive_terms"], "multiplicative_terms": raw["multiplicative_terms"]}
        modes = self._component_modes()
        present = sorted(name for name in [*components, *groups] if name in modes["present"])
        names = present + [g for g in groups if g not in present]
        for name in names:
            values = groups.get(name, components.get(name))
            out[name] = values
            out[name + "_lower"] = values
            out[name + "_upper"] = values
        out["yhat"] = raw["yhat"]
        return pd.DataFrame(out)

    def _component_modes(self) -> dict[str, set[str]]:
        """Which component columns Prophet's crosstab would hold."""
        options = json.loads(self._model.options_json())
        default = options["seasonality_mode"]
        names = set(self._model.params()["seasonalities"])
        present = set(names)
        mode_of = {n: (self.seasonalities.get(n, {}).get("mode") or default) for n in names}
        for n, p in self.extra_regressors.items():
            present.add(n)
            mode_of[n] = p["mode"] or default
            present.add("extra_regressors_" + mode_of[n])
        for mode in ("additive", "multiplicative"):
            if any(m == mode for m in mode_of.values()):
                present.add(mode + "_terms")
        return {"present": present}


def _numeric(column: pd.Series, name: str) -> pd.Series:
    """``pd.to_numeric`` as Prophet calls it, with text reported as a NumberError naming the row."""
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        numbers = pd.to_numeric(column, errors="coerce")
        row = int(np.flatnonzero((numbers.isna() & column.notna()).to_numpy())[0])
        raise input_error(NumberError, f"{name} at row {row}: {column.iloc[row]!r} is not a number", name, row) from None


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
        prophet = Prophet(
            interval_width=interval_width,
            changepoint_prior_scale=changepoint_prior_scale,
            seasonality_mode=seasonality_mode,
            daily_seasonality=daily_seasonality,
            weekly_seasonality=weekly_seasonality,
            yearly_seasonality=yearly_seasonality,
            **prophet_options,
        )
        self._config = {"prophet": prophet._options(), "k_sigma": float(k_sigma), "simulated_seed": seed}
        self._models: Any = None

    @staticmethod
    def _long(
        df: pd.DataFrame, time_col: str, value_col: str, variable_col: str | None
    ) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, tuple[str, str, str]]:
        """Codes, variable names, ns timestamps, values, and the column names the core's errors use."""
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
        # Missing is NaN or None; text is a mistake, not a missing reading.
        values = _numeric(df[value_col], value_col).to_numpy(dtype=np.float64)
        if variable_col:
            codes, uniques = pd.factorize(df[variable_col].astype(str))
            names = [str(u) for u in uniques]
        else:
            codes, names = np.zeros(len(df), dtype=np.int64), [str(value_col)]
        columns = (time_col, variable_col or "variable", value_col)
        return codes.astype(np.uint32), names, times.to_numpy(dtype="datetime64[ns]").astype(np.int64), values, columns

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
            stats[col] = pd.to_datetime(stats[col].astype("int64"))
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
