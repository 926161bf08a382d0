"""``anomaly.Prophet``: Prophet 1.5's forecaster with the MAP fit solved exactly in Rust.

Change one import line::

    # from prophet import Prophet
    from anomaly import Prophet

Everything Prophet 1.5 offers except MCMC sampling works with Prophet's
names, DataFrames, attributes and messages: linear, logistic and flat
growth; changepoints; built-in, custom and conditional seasonalities;
holidays (a frame or ``add_country_holidays``); extra regressors
(``regressor_predictor`` too); additive or multiplicative modes; absmax or
minmax scaling; ``predictive_samples``; warm starts (``fit(init=...)``).
Prophet's helpers (``prophet.diagnostics.cross_validation``,
``prophet.utilities.regressor_coefficients``, the plots) run on it as they
do on Prophet's model.

The fit is Prophet's MAP estimate (its Stan model's optimum), found exactly
by ``_anomaly.prophet_map``, not by Stan's L-BFGS, which stops short of it;
Stan's options passed to ``fit`` are accepted and ignored. Errors are
:class:`anomaly.AnomalyError` subclasses carrying Prophet's messages.

Two keyword-only additions: ``seed`` makes the Monte Carlo intervals
reproducible (``fit(seed=...)`` does too; without either, draws follow
``np.random``), and ``interval_method="analytic"`` gives deterministic bands.

>>> m = Prophet(seed=0).fit(df)                                      # doctest: +SKIP
>>> forecast = m.predict(m.make_future_dataframe(periods=30))        # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from copy import deepcopy
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from anomaly import _anomaly
from anomaly.errors import (
    ColumnError,
    EmptyInputError,
    InvalidInputError,
    ModelStateError,
    NonFiniteError,
    ParameterError,
    TimestampError,
    input_error,
    whole_number,
)
from anomaly.forecast_interval import holidays as country_holidays
from anomaly.forecast_interval._features import (
    FOURIER_ORDER_MAX,
    NS_RANGE,
    FeaturesMixin,
    ns_of,
    out_of_ns_range,
    parse_ds,
)
from anomaly.forecast_interval._predict import TREND_INDICATOR, PredictMixin, samples_of

try:  # pandas >= 3
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - older pandas builds the frame with DataFrame.insert
    _from_blocks = None

__all__ = ["Prophet"]

logger = logging.getLogger("anomaly.forecast_interval")

_RESERVED = [
    "trend", "additive_terms", "daily", "weekly", "yearly", "holidays", "zeros", "extra_regressors_additive",
    "yhat", "extra_regressors_multiplicative", "multiplicative_terms",
]  # fmt: skip
RESERVED_NAMES = frozenset(
    _RESERVED + [n + "_lower" for n in _RESERVED] + [n + "_upper" for n in _RESERVED]
    + ["ds", "y", "cap", "floor", "y_scaled", "cap_scaled"]
)  # fmt: skip


class StanBackend:
    """Stands where Prophet keeps its Stan backend: ``get_type()`` returns the name given
    to the constructor, ``cleanup()`` does nothing. There is no Stan here."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def get_type(self) -> str | None:
        return self.name

    def cleanup(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"StanBackend({self.name!r})"


class Prophet(FeaturesMixin, PredictMixin):
    """Prophet 1.5's forecaster (all of it but MCMC), fitted exactly in Rust.

    The arguments are Prophet's (see ``prophet.Prophet``), plus ``seed`` and
    ``interval_method`` (``"simulated"``: Prophet's Monte Carlo band;
    ``"analytic"``: a deterministic band). ``mcmc_samples > 0`` is refused.
    """

    # Caches live in slots, outside __dict__: code that compares or saves a model's
    # __dict__ (prophet's serialize tests, model_to_dict) sees Prophet's attributes only.
    __slots__ = ("_holiday_memo", "_trained_cache", "_holidays_validated")

    def __init__(
        self,
        growth: str = "linear",
        changepoints: Any = None,
        n_changepoints: int = 25,
        changepoint_range: float = 0.8,
        yearly_seasonality: Any = "auto",
        weekly_seasonality: Any = "auto",
        daily_seasonality: Any = "auto",
        holidays: pd.DataFrame | None = None,
        seasonality_mode: str = "additive",
        seasonality_prior_scale: float = 10.0,
        holidays_prior_scale: float = 10.0,
        changepoint_prior_scale: float = 0.05,
        mcmc_samples: int = 0,
        interval_width: float = 0.80,
        uncertainty_samples: int = 1000,
        stan_backend: str | None = None,
        scaling: str = "absmax",
        holidays_mode: str | None = None,
        *,
        seed: int | None = None,
        interval_method: str = "simulated",
    ) -> None:
        self.growth = growth
        if changepoints is not None:
            self.changepoints = pd.Series(pd.to_datetime(changepoints), name="ds")
            self.n_changepoints = len(self.changepoints)
            self.specified_changepoints = True
        else:
            self.changepoints = None
            # Not a count the core takes, but a negative one is a mistake Prophet lets through.
            self.n_changepoints = whole_number(n_changepoints, "n_changepoints")
            self.specified_changepoints = False
        self.changepoint_range = changepoint_range
        self.yearly_seasonality = yearly_seasonality
        self.weekly_seasonality = weekly_seasonality
        self.daily_seasonality = daily_seasonality
        # A copy: Prophet parses ds in place, in the caller's frame.
        self.holidays = holidays.copy() if isinstance(holidays, pd.DataFrame) else holidays
        self.seasonality_mode = seasonality_mode
        self.holidays_mode = holidays_mode or seasonality_mode
        self.seasonality_prior_scale = float(seasonality_prior_scale)
        self.changepoint_prior_scale = float(changepoint_prior_scale)
        self.holidays_prior_scale = float(holidays_prior_scale)
        whole_number(mcmc_samples, "mcmc_samples")
        if mcmc_samples > 0:
            raise input_error(
                ParameterError,
                f"mcmc_samples = {mcmc_samples}: anomaly.Prophet has no MCMC sampler. It fits Prophet's MAP "
                "estimate exactly; use mcmc_samples=0 with uncertainty_samples for Monte Carlo intervals, "
                "or interval_method='analytic' for deterministic ones.",
                "mcmc_samples",
            )
        self.mcmc_samples = mcmc_samples
        self.interval_width = interval_width
        samples_of(uncertainty_samples)  # checked here, kept as given (None or False: no intervals)
        self.uncertainty_samples = uncertainty_samples
        if scaling not in ("absmax", "minmax"):
            raise input_error(ParameterError, "scaling must be one of 'absmax' or 'minmax'", "scaling")
        self.scaling = scaling
        if interval_method not in ("simulated", "analytic"):
            message = f"interval_method = {interval_method!r}: expected 'simulated' or 'analytic'"
            raise input_error(ParameterError, message, "interval_method")
        self.seed = seed if seed is None else whole_number(seed, "seed")
        self.interval_method = interval_method

        self.start: pd.Timestamp | None = None
        self.y_min: float | None = None
        self.y_scale: float | None = None
        self.logistic_floor = False
        self.t_scale: pd.Timedelta | None = None
        self.changepoints_t: np.ndarray | None = None
        self.seasonalities: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.extra_regressors: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.country_holidays: str | None = None
        self.stan_fit = None
        self.params: dict[str, np.ndarray] = {}
        self.history: pd.DataFrame | None = None
        self.history_dates: pd.Series | None = None
        self.train_component_cols: pd.DataFrame | None = None
        self.component_modes: dict[str, list[str]] | None = None
        self.train_holiday_names: pd.Series | None = None
        self.fit_kwargs: dict[str, Any] = {}
        self.objective_: float | None = None
        self._regressor_name: str | None = None
        # Memos of holiday tables (shared with prophet_copy's copies) and of train_holiday_names;
        # the frame validated at construction, so copies need not validate it again.
        self._holiday_memo: dict[Any, Any] = {}
        self._trained_cache: tuple[Any, tuple[str, ...]] | None = None
        self._holidays_validated: pd.DataFrame | None = None
        self.validate_inputs()
        self.stan_backend = StanBackend(stan_backend)

    def validate_inputs(self) -> None:
        """Prophet's checks of the constructor's arguments."""
        if self.growth not in ("linear", "logistic", "flat"):
            raise input_error(ParameterError, 'Parameter "growth" should be "linear", "logistic" or "flat".', "growth")
        if not isinstance(self.changepoint_range, (int, float)):
            raise input_error(ParameterError, "changepoint_range must be a number in [0, 1]'", "changepoint_range")
        if self.changepoint_range < 0 or self.changepoint_range > 1:
            raise input_error(ParameterError, 'Parameter "changepoint_range" must be in [0, 1]', "changepoint_range")
        if self.holidays is not None:
            self._validate_holidays()
        if self.seasonality_mode not in ("additive", "multiplicative"):
            raise input_error(ParameterError, 'seasonality_mode must be "additive" or "multiplicative"', "seasonality_mode")
        if self.holidays_mode not in ("additive", "multiplicative"):
            raise input_error(ParameterError, 'holidays_mode must be "additive" or "multiplicative"', "holidays_mode")

    def _validate_holidays(self) -> None:
        h = self.holidays
        if not (isinstance(h, pd.DataFrame) and "ds" in h and "holiday" in h):
            raise input_error(ColumnError, 'holidays must be a DataFrame with "ds" and "holiday" columns.', "holidays")
        ds = h["ds"]
        if ds.dtype.kind != "M":  # to_datetime returns datetime columns unchanged; setting one costs
            h["ds"] = ds = pd.to_datetime(ds)
        for col, values in (("ds", ds), ("holiday", h["holiday"])):
            missing = np.flatnonzero(values.isna().to_numpy())
            if len(missing):
                raise input_error(NonFiniteError, "Found a NaN in holidays dataframe.", col, int(missing[0]))
        ns_of(ds, "ds", what="holidays ds")  # a date nanoseconds cannot hold would wrap into another century
        has_lower, has_upper = "lower_window" in h, "upper_window" in h
        if has_lower + has_upper == 1:
            raise input_error(ColumnError, "Holidays must have both lower_window and upper_window, or neither", "holidays")
        if has_lower:
            if h["lower_window"].max() > 0:
                raise input_error(InvalidInputError, "Holiday lower_window should be <= 0", "lower_window")
            if h["upper_window"].min() < 0:
                raise input_error(InvalidInputError, "Holiday upper_window should be >= 0", "upper_window")
        for name in h["holiday"].unique():
            self.validate_column_name(name, check_holidays=False)
        self._holidays_validated = h

    def validate_column_name(
        self, name: str, check_holidays: bool = True, check_seasonalities: bool = True, check_regressors: bool = True
    ) -> None:
        """Refuses a seasonality, holiday or regressor name that is reserved or already used."""
        if "_delim_" in name:
            raise input_error(ParameterError, 'Name cannot contain "_delim_"', name)
        if name in RESERVED_NAMES:
            raise input_error(ParameterError, f"Name {name!r} is reserved.", name)
        if check_holidays and self.holidays is not None and name in set(self.holidays["holiday"].unique()):
            raise input_error(ParameterError, f"Name {name!r} already used for a holiday.", name)
        if (
            check_holidays
            and self.country_holidays is not None
            and name in country_holidays.get_holiday_names(self.country_holidays)
        ):
            raise input_error(ParameterError, f"Name {name!r} is a holiday name in {self.country_holidays}.", name)
        if check_seasonalities and name in self.seasonalities:
            raise input_error(ParameterError, f"Name {name!r} already used for a seasonality.", name)
        if check_regressors and name in self.extra_regressors:
            raise input_error(ParameterError, f"Name {name!r} already used for an added regressor.", name)

    # -- configuration ---------------------------------------------------------------------------

    def add_regressor(
        self,
        name: str,
        prior_scale: float | None = None,
        standardize: Any = "auto",
        mode: str | None = None,
        regressor_predictor: bool | dict[str, Any] | None = None,
    ) -> Prophet:
        """Adds a column of ``df`` as a regressor (prior scale defaults to ``holidays_prior_scale``,
        mode to ``seasonality_mode``). With ``regressor_predictor`` (True or a dict of constructor
        arguments), a model of its own forecasts it where ``predict`` is not given it."""
        if self.history is not None:
            raise ModelStateError("Regressors must be added prior to model fitting.")
        self.validate_column_name(name, check_regressors=False)
        if prior_scale is None:
            prior_scale = float(self.holidays_prior_scale)
        if mode is None:
            mode = self.seasonality_mode
        if prior_scale <= 0:
            raise input_error(ParameterError, "Prior scale must be > 0", "prior_scale")
        if mode not in ("additive", "multiplicative"):
            raise input_error(ParameterError, "mode must be 'additive' or 'multiplicative'", "mode")
        spec = None
        if regressor_predictor:
            spec = deepcopy(regressor_predictor) if isinstance(regressor_predictor, dict) else {}
        self.extra_regressors[name] = {
            "prior_scale": prior_scale,
            "standardize": standardize,
            "mu": 0.0,
            "std": 1.0,
            "mode": mode,
            "predictor_spec": spec,
            "predictor": None,
        }
        return self

    def add_seasonality(
        self,
        name: str,
        period: float,
        fourier_order: int,
        prior_scale: float | None = None,
        mode: str | None = None,
        condition_name: str | None = None,
    ) -> Prophet:
        """Adds a seasonality of ``period`` days with ``fourier_order`` terms; with
        ``condition_name``, it applies only where that boolean column of ``df`` is True."""
        if self.history is not None:
            raise ModelStateError("Seasonality must be added prior to model fitting.")
        if name not in ("daily", "weekly", "yearly"):
            self.validate_column_name(name, check_seasonalities=False)
        ps = self.seasonality_prior_scale if prior_scale is None else float(prior_scale)
        if ps <= 0:
            raise input_error(ParameterError, "Prior scale must be > 0", "prior_scale")
        if isinstance(fourier_order, (int, np.integer)) and fourier_order <= 0:
            raise input_error(ParameterError, "Fourier Order must be > 0", "fourier_order")
        fourier_order = whole_number(fourier_order, "fourier_order", low=1, high=FOURIER_ORDER_MAX)
        if mode is None:
            mode = self.seasonality_mode
        if mode not in ("additive", "multiplicative"):
            raise input_error(ParameterError, 'mode must be "additive" or "multiplicative"', "mode")
        if condition_name is not None:
            self.validate_column_name(condition_name)
        self.seasonalities[name] = {
            "period": period,
            "fourier_order": fourier_order,
            "prior_scale": ps,
            "mode": mode,
            "condition_name": condition_name,
        }
        return self

    def add_country_holidays(self, country_name: str) -> Prophet:
        """Adds the built-in holidays of one country (``"US"``, ``"UnitedStates"``, ...)."""
        if self.history is not None:
            raise ModelStateError("Country holidays must be added prior to model fitting.")
        for name in country_holidays.get_holiday_names(country_name):
            self.validate_column_name(name, check_holidays=False)
        if self.country_holidays is not None:
            logger.warning("Changing country holidays from %r to %r.", self.country_holidays, country_name)
        self.country_holidays = country_name
        return self

    # -- fitting ---------------------------------------------------------------------------------

    def preprocess(self, df: pd.DataFrame, **kwargs: Any) -> dict[str, Any]:
        """Prepares the history, seasonalities and changepoints; returns Prophet's Stan data
        (``T, S, K, tau, trend_indicator, y, t, cap, t_change, X, sigmas, s_a, s_m``)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
        for col in ("ds", "y"):
            if col not in df:
                message = 'Dataframe must have columns "ds" and "y" with the dates and values respectively.'
                raise input_error(ColumnError, message, col)
        keep = df["y"].notnull().to_numpy()
        history = df[keep].copy() if not keep.all() else df.copy()
        if history.shape[0] < 2:
            raise input_error(EmptyInputError, "Dataframe has less than 2 non-NaN rows.", "y")
        rows = np.flatnonzero(keep)
        history["ds"] = parse_ds(history["ds"], rows)
        dates = history["ds"].to_numpy()
        if not keep.all():
            # Rows without y still count among the history's dates (make_future_dataframe).
            others = df["ds"][~keep]
            present = others.notna().to_numpy()
            parsed = parse_ds(others[present], np.flatnonzero(~keep)[present])
            dates = np.concatenate([dates, parsed.to_numpy().astype(dates.dtype)])
        self.history_dates = pd.Series(pd.unique(dates), name="ds").sort_values()

        self.history = self._setup(history, True, rows)
        self.set_auto_seasonalities()
        x, names, priors, modes = self._design(self.history)
        table, labels, modes = self._checked_components(names, modes)
        self.train_component_cols = _frame(table, labels)
        self.component_modes = modes
        self.fit_kwargs = deepcopy(kwargs)
        self.set_changepoints()
        history = self.history
        cap = history["cap_scaled"].to_numpy(dtype=float) if self.growth == "logistic" else np.zeros(len(history))
        return {
            "T": history.shape[0],
            "S": len(self.changepoints_t),
            "K": x.shape[1],
            "tau": self.changepoint_prior_scale,
            "trend_indicator": TREND_INDICATOR[self.growth],
            "y": history["y_scaled"].to_numpy(dtype=float),
            "t": history["t"].to_numpy(dtype=float),
            "cap": cap,
            "t_change": np.asarray(self.changepoints_t, dtype=float),
            "X": x,
            "sigmas": priors,
            "s_a": table[:, labels.index("additive_terms")],
            "s_m": table[:, labels.index("multiplicative_terms")],
        }

    def calculate_initial_params(self, num_total_regressors: int) -> dict[str, Any]:
        """Prophet's starting point: the growth's ``(k, m)`` through the ends, zero ``delta`` and ``beta``."""
        init = {"linear": self.linear_growth_init, "flat": self.flat_growth_init, "logistic": self.logistic_growth_init}
        k, m = init[self.growth](self.history)
        return {
            "k": k,
            "m": m,
            "delta": np.zeros_like(self.changepoints_t, dtype=float),
            "beta": np.zeros(num_total_regressors),
            "sigma_obs": 1.0,
        }

    def _stan_inputs(self, df: pd.DataFrame, **kwargs: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Everything ``fit`` does before solving: ``(keyword arguments of prophet_map but init, init)``;
        the arguments are None when there is nothing to solve (a constant linear or flat history)."""
        if self.history is not None:
            raise ModelStateError("Prophet object can only be fit once. Instantiate a new object.")
        data = self.preprocess(df, **kwargs)
        self._fit_regressor_models(df)
        init = self.calculate_initial_params(data["K"])
        if "inits" not in kwargs and kwargs.get("init") is not None:
            init = _warm_start(init, kwargs["init"])
        y = self.history["y"].to_numpy()
        if y.min() == y.max() and self.growth in ("linear", "flat"):
            return None, init
        dat = {
            "t": data["t"],
            "y": data["y"],
            "cap": data["cap"],
            "x": np.ascontiguousarray(data["X"], dtype=float),
            "sigmas": np.asarray(data["sigmas"], dtype=float),
            "s_a": data["s_a"].astype(float),
            "s_m": data["s_m"].astype(float),
            "t_change": data["t_change"],
            "tau": float(data["tau"]),
            "trend_indicator": int(data["trend_indicator"]),
        }
        return dat, init

    def _finish_fit(self, result: dict[str, Any] | None, init: dict[str, Any]) -> Prophet:
        """Stores ``prophet_map``'s result (or ``init`` when there was nothing to solve) as
        Prophet's ``params``: ``k, m, sigma_obs`` (1, 1), ``delta`` (1, S), ``beta`` (1, K)."""
        source = result if result is not None else {**init, "sigma_obs": 1e-9}
        self.params = {
            name: np.asarray(source[name], dtype=float).reshape((1, -1)) for name in ("k", "m", "delta", "sigma_obs", "beta")
        }
        self.objective_ = None if result is None else float(result["objective"])
        if len(self.changepoints) == 0:
            # No changepoints: the dummy one's delta is folded into the base rate.
            self.params["k"] = self.params["k"] + self.params["delta"].reshape(-1)
            self.params["delta"] = np.zeros(self.params["delta"].shape).reshape((-1, 1))
        return self

    def fit(self, df: pd.DataFrame, **kwargs: Any) -> Prophet:
        """Fits Prophet's MAP estimate to ``df`` (``ds``, ``y``; ``cap``/``floor`` for logistic growth;
        the regressor and condition columns). Stan's options are stored in ``fit_kwargs``; only
        ``seed`` (the intervals' seed) and ``init`` (the starting point) are used."""
        if kwargs.get("seed") is not None:
            whole_number(kwargs["seed"], "seed")
        dat, init = self._stan_inputs(df, **kwargs)
        result = _anomaly.prophet_map(**dat, init=init) if dat is not None else None
        return self._finish_fit(result, init)

    # -- prediction ------------------------------------------------------------------------------

    def predict(self, df: pd.DataFrame | None = None, vectorized: bool = True) -> pd.DataFrame:
        """Prophet's forecast frame for ``df``'s rows (the history when None): ``ds``, ``trend``,
        [``cap``, ``floor``], the intervals, each component with ``_lower``/``_upper``, ``yhat``."""
        if self.history is None:
            raise ModelStateError("Model has not been fit.")
        regressor_samples = None
        if df is None:
            frame = self.history.copy()
        else:
            if df.shape[0] == 0:
                raise input_error(EmptyInputError, "Dataframe has no rows.", "ds")
            frame, regressor_samples = self._prepare_regressors_for_predict(df.copy(), self.uncertainty_samples or None)
            frame = self.setup_dataframe(frame)
        regressor_samples = self._standardized(regressor_samples)

        inputs = self._trend_inputs(frame)
        trend = self._trend_of(inputs)
        x, names, _, modes = self._design(frame)
        table, labels, _ = self._checked_components(names, modes)
        values = self._component_values(x, table, labels)
        # Every column but ds (and a non-float cap) goes into one float block: a frame
        # built from ~70 separate arrays costs more than the rest of predict.
        names_out: list[str] = ["trend"]
        blocks: list[np.ndarray] = [trend[:, None]]
        head: dict[str, Any] = {"ds": frame["ds"].array}
        if "cap" in frame:
            cap = frame["cap"]
            if cap.dtype == np.float64:
                names_out.append("cap")
                blocks.append(cap.to_numpy()[:, None])
            else:
                head["cap"] = cap.array
        if self.logistic_floor:
            names_out.append("floor")
            blocks.append(inputs["floor"][:, None])
        if self.uncertainty_samples:
            bands = self._simulate(frame, x, names, table, labels, regressor_samples, float(self.interval_width), inputs)
            for key in ("yhat_lower", "yhat_upper", "trend_lower", "trend_upper"):
                names_out.append(key)
                blocks.append(np.asarray(bands[key], dtype=float)[:, None])
        if self.uncertainty_samples:
            # One MAP draw: a component's percentiles are the component itself.
            blocks.append(np.repeat(values, 3, axis=1))
            for label in labels:
                names_out += [label, label + "_lower", label + "_upper"]
        else:
            blocks.append(values)
            names_out += labels
        multiplicative = values[:, labels.index("multiplicative_terms")]
        additive = values[:, labels.index("additive_terms")]
        blocks.append((trend * (1 + multiplicative) + additive)[:, None])
        names_out.append("yhat")
        block = np.concatenate(blocks, axis=1)
        if "cap" not in head and _from_blocks is not None:
            # The two blocks as they are: DataFrame.insert of ds would cost as much again as the frame.
            return _from_blocks(
                [(block.T, np.arange(1, len(names_out) + 1)), (head["ds"], np.array([0]))],
                index=pd.RangeIndex(len(block)),
                columns=pd.Index(["ds", *names_out]),
            )
        out = pd.DataFrame(block, columns=names_out, copy=False)
        out.insert(0, "ds", head["ds"])
        if "cap" in head:
            out.insert(2, "cap", head["cap"])  # Prophet's order: ds, trend, cap, floor
        return out

    def make_future_dataframe(self, periods: int, freq: Any = "D", include_history: bool = True) -> pd.DataFrame:
        """``ds`` for ``periods`` steps of ``freq`` after the history (and the history's dates).

        Dates past 2262-04-11, which nanosecond timestamps cannot hold, are a TimestampError."""
        if self.history_dates is None:
            raise ModelStateError("Model has not been fit.")
        periods = whole_number(periods, "periods", high=2**63 - 2)
        if freq is None:
            freq = pd.infer_freq(self.history_dates.tail(5))
            if freq is None:
                raise input_error(ParameterError, "Unable to infer `freq`", "freq")
        last = self.history_dates.max()
        dates = None
        try:
            # The last date first: past 2262 (or past what 64 bits count) nothing is allocated.
            end = last + periods * to_offset(freq)
            if end <= pd.Timestamp.max:
                dates = pd.date_range(start=last, periods=periods + 1, freq=freq)
        except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
            pass
        if dates is not None:
            dates = dates[dates > last][:periods]
        if dates is None or len(out_of_ns_range(dates.to_numpy())):
            message = (
                f"ds: make_future_dataframe(periods={periods}, freq={freq!r}) after {last} goes past the "
                f"supported range {NS_RANGE} (times are int64 nanoseconds since 1970, as pandas' datetime64[ns])"
            )
            raise input_error(TimestampError, message, "ds")
        if include_history:
            dates = np.concatenate((np.array(self.history_dates), dates))
        return pd.DataFrame({"ds": dates})

    def plot(
        self,
        fcst: pd.DataFrame,
        ax: Any = None,
        uncertainty: bool = True,
        plot_cap: bool = True,
        xlabel: str = "ds",
        ylabel: str = "y",
        figsize: tuple[float, float] = (10, 6),
        include_legend: bool = False,
    ) -> Any:
        """Prophet's forecast plot (matplotlib); see :func:`anomaly.forecast_interval.plot.plot`."""
        from anomaly.forecast_interval.plot import plot

        return plot(
            m=self, fcst=fcst, ax=ax, uncertainty=uncertainty, plot_cap=plot_cap, xlabel=xlabel, ylabel=ylabel,
            figsize=figsize, include_legend=include_legend,
        )  # fmt: skip

    def plot_components(
        self,
        fcst: pd.DataFrame,
        uncertainty: bool = True,
        plot_cap: bool = True,
        weekly_start: int = 0,
        yearly_start: int = 0,
        figsize: tuple[float, float] | None = None,
    ) -> Any:
        """Prophet's components plot; see :func:`anomaly.forecast_interval.plot.plot_components`."""
        from anomaly.forecast_interval.plot import plot_components

        return plot_components(
            m=self, fcst=fcst, uncertainty=uncertainty, plot_cap=plot_cap, weekly_start=weekly_start,
            yearly_start=yearly_start, figsize=figsize,
        )  # fmt: skip


def _frame(table: np.ndarray, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(table, columns=pd.Index(labels, name="component"), index=pd.RangeIndex(len(table), name="col"))


def _warm_start(default: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Prophet's sanitising of ``fit(init=...)``: each value that does not fit the model keeps the default."""
    out = dict(default)
    for name in ("k", "m", "sigma_obs"):
        try:
            out[name] = float(given[name])
        except (KeyError, TypeError, ValueError):
            pass
    for name in ("delta", "beta"):
        value = np.asarray(given.get(name, []), dtype=float)
        if value.shape == np.shape(default[name]):
            out[name] = value
    return out
