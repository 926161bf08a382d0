"""Prophet's trend functions, growth initialisations and prediction methods.

A mixin of :class:`anomaly.Prophet`. Trends are evaluated by
``_anomaly.prophet_trend`` and the Monte Carlo intervals and predictive
samples by ``_anomaly.prophet_simulate`` (Prophet's
``sample_posterior_predictive`` for MAP parameters, seeded).
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import EmptyInputError, input_error, whole_number
from anomaly.forecast_interval._features import parse_ds

logger = logging.getLogger("anomaly.forecast_interval")

TREND_INDICATOR = {"linear": 0, "logistic": 1, "flat": 2}


def samples_of(value: Any) -> int:
    """``uncertainty_samples`` as the core's draw count: None and False mean none (as in Prophet),
    anything but a whole number from 0 is a ParameterError naming it."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return int(bool(value))
    return whole_number(value, "uncertainty_samples")


def _scalar(value: Any) -> float:
    return float(np.asarray(value, dtype=float).reshape(-1)[0])


def _trend(t: Any, cap: Any, indicator: int, deltas: Any, k: Any, m: Any, changepoint_ts: Any) -> np.ndarray:
    t = np.ascontiguousarray(t, dtype=float)
    cap = np.zeros(len(t)) if cap is None else np.ascontiguousarray(cap, dtype=float)
    return _anomaly.prophet_trend(
        t,
        cap,
        indicator,
        _scalar(k),
        _scalar(m),
        np.ascontiguousarray(deltas, dtype=float).reshape(-1),
        np.ascontiguousarray(changepoint_ts, dtype=float).reshape(-1),
    )


class PredictMixin:
    """Prophet's trend and prediction methods (see :class:`anomaly.Prophet`)."""

    # -- trend functions -------------------------------------------------------------------------

    @staticmethod
    def piecewise_linear(t: Any, deltas: Any, k: float, m: float, changepoint_ts: Any) -> np.ndarray:
        """The piecewise linear trend at times ``t``: rate ``k`` changing by ``deltas`` at ``changepoint_ts``."""
        return _trend(t, None, 0, deltas, k, m, changepoint_ts)

    @staticmethod
    def piecewise_logistic(t: Any, cap: Any, deltas: Any, k: float, m: float, changepoint_ts: Any) -> np.ndarray:
        """The piecewise logistic trend at times ``t`` under capacity ``cap``."""
        return _trend(t, cap, 1, deltas, k, m, changepoint_ts)

    @staticmethod
    def flat_trend(t: Any, m: float) -> np.ndarray:
        """The flat trend: ``m`` at every ``t``."""
        return np.full(len(t), m, dtype=float) if np.ndim(m) == 0 else m * np.ones_like(t)

    @staticmethod
    def linear_growth_init(df: pd.DataFrame) -> tuple[float, float]:
        """``(k, m)`` of the line through the first and last points (columns ``ds``, ``t``, ``y_scaled``)."""
        i0, i1, t, y = _ends(df)
        k = (y[i1] - y[i0]) / (t[i1] - t[i0])
        return k, y[i0] - k * t[i0]

    @staticmethod
    def logistic_growth_init(df: pd.DataFrame) -> tuple[float, float]:
        """``(k, m)`` of the logistic curve through the first and last points (plus ``cap_scaled``)."""
        i0, i1, t, y = _ends(df)
        cap = df["cap_scaled"].to_numpy(dtype=float)
        span = t[i1] - t[i0]
        c0, c1 = cap[i0], cap[i1]
        # Clipped inside (0, cap) so the logs below exist.
        y0 = max(0.01 * c0, min(0.99 * c0, y[i0]))
        y1 = max(0.01 * c1, min(0.99 * c1, y[i1]))
        r0, r1 = c0 / y0, c1 / y1
        if abs(r0 - r1) <= 0.01:
            r0 = 1.05 * r0
        l0, l1 = np.log(r0 - 1), np.log(r1 - 1)
        return (l0 - l1) / span, l0 * span / (l0 - l1)

    @staticmethod
    def flat_growth_init(df: pd.DataFrame) -> tuple[float, float]:
        """``(0, mean of y_scaled)``."""
        return 0, df["y_scaled"].mean()

    # -- prediction ------------------------------------------------------------------------------

    def _point(self) -> tuple[float, float, np.ndarray]:
        p = self.params
        return float(np.nanmean(p["k"])), float(np.nanmean(p["m"])), np.nanmean(p["delta"], axis=0)

    def predict_trend(self, df: pd.DataFrame) -> np.ndarray:
        """The trend at ``df``'s rows (a prepared frame: ``t``, ``floor``, ``cap_scaled``), in ``y`` units."""
        return self._trend_of(self._trend_inputs(df))

    def _trend_inputs(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """``t``, scaled ``cap`` (zeros unless logistic) and ``floor`` as arrays, read from the frame once."""
        t = df["t"].to_numpy(dtype=float)
        cap = df["cap_scaled"].to_numpy(dtype=float) if self.growth == "logistic" else np.zeros(len(t))
        return {"t": t, "cap": cap, "floor": df["floor"].to_numpy(dtype=float)}

    def _trend_of(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        k, m, deltas = self._point()
        t = inputs["t"]
        if self.growth == "flat":
            trend = self.flat_trend(t, m)
        else:
            cap = inputs["cap"] if self.growth == "logistic" else None
            trend = _trend(t, cap, TREND_INDICATOR[self.growth], deltas, k, m, self.changepoints_t)
        return trend * self.y_scale + inputs["floor"]

    def _component_values(self, x: np.ndarray, table: np.ndarray, labels: list[str]) -> np.ndarray:
        """Each component's value per row (``(n, components)``), additive ones in ``y`` units."""
        beta = np.nanmean(self.params["beta"], axis=0)
        values = x @ (beta[:, None] * table)
        additive = self.component_modes["additive"]
        scale = np.array([self.y_scale if label in additive else 1.0 for label in labels])
        return values * scale

    def predict_seasonal_components(self, df: pd.DataFrame) -> pd.DataFrame:
        """Each seasonality, holiday, regressor and group at ``df``'s rows (with ``_lower``/``_upper``)."""
        x, names, _, modes = self._design(df)
        table, labels, _ = self._checked_components(names, modes)
        values = self._component_values(x, table, labels)
        data: dict[str, np.ndarray] = {}
        for j, label in enumerate(labels):
            data[label] = values[:, j]
            if self.uncertainty_samples:
                # One MAP draw: the percentiles of a single sample are the value itself.
                data[label + "_lower"] = values[:, j]
                data[label + "_upper"] = values[:, j]
        return pd.DataFrame(data)

    def _simulate(
        self,
        df: pd.DataFrame,
        x: np.ndarray,
        names: list[str],
        table: np.ndarray,
        labels: list[str],
        regressor_samples: Any,
        width: Any,
        trend_inputs: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        beta = self.params["beta"][0]
        s_a = table[:, labels.index("additive_terms")].astype(float)
        s_m = table[:, labels.index("multiplicative_terms")].astype(float)
        xb_a = (x @ (beta * s_a) * self.y_scale)[:, None]
        xb_m = (x @ (beta * s_m))[:, None]
        n_samples = samples_of(self.uncertainty_samples)
        if regressor_samples:
            # A column per sample: each draw uses one draw of the regressors' own forecasts.
            xb_a = np.repeat(xb_a, n_samples, axis=1)
            xb_m = np.repeat(xb_m, n_samples, axis=1)
            for name, samples in regressor_samples.items():
                if name not in names:
                    continue
                j = names.index(name)
                draws = samples[:, np.arange(n_samples) % samples.shape[1]] - x[:, [j]]
                xb_a += draws * beta[j] * s_a[j] * self.y_scale
                xb_m += draws * beta[j] * s_m[j]
        k, m, deltas = (self.params["k"][0], self.params["m"][0], self.params["delta"][0])
        inputs = trend_inputs if trend_inputs is not None else self._trend_inputs(df)
        history_t = self.history["t"].to_numpy(dtype=float)
        step = float(np.diff(history_t).mean()) if len(history_t) > 1 else 0.0
        return _anomaly.prophet_simulate(
            np.ascontiguousarray(inputs["t"]),
            inputs["cap"],
            inputs["floor"],
            TREND_INDICATOR[self.growth],
            _scalar(k),
            _scalar(m),
            np.ascontiguousarray(deltas, dtype=float).reshape(-1),
            np.ascontiguousarray(self.changepoints_t, dtype=float),
            step,
            np.ascontiguousarray(xb_a),
            np.ascontiguousarray(xb_m),
            _scalar(self.params["sigma_obs"][0]),
            float(self.y_scale),
            n_samples,
            self._draw_seed(),
            interval_width=width,
            method=self.interval_method if width is not None else "simulated",
        )

    def _draw_seed(self) -> int:
        """The constructor's seed, else fit's, else one drawn from numpy's global generator
        (so ``np.random.seed`` makes Prophet code reproducible here too)."""
        if self.seed is not None:
            return whole_number(self.seed, "seed")
        if self.fit_kwargs.get("seed") is not None:
            return whole_number(self.fit_kwargs["seed"], "seed")
        return int(np.random.randint(0, 2**31 - 1))

    def predict_uncertainty(self, df: pd.DataFrame, vectorized: bool = True, regressor_samples: Any = None) -> pd.DataFrame:
        """``yhat_lower, yhat_upper, trend_lower, trend_upper`` at ``df``'s rows (a prepared frame)."""
        x, names, _, modes = self._design(df)
        table, labels, _ = self._checked_components(names, modes)
        return pd.DataFrame(self._simulate(df, x, names, table, labels, regressor_samples, float(self.interval_width)))

    def sample_posterior_predictive(self, df: pd.DataFrame, vectorized: bool = True, regressor_samples: Any = None) -> dict[str, np.ndarray]:
        """Draws of ``yhat`` and ``trend`` at ``df``'s rows (a prepared frame), each ``(n, uncertainty_samples)``."""
        x, names, _, modes = self._design(df)
        table, labels, _ = self._checked_components(names, modes)
        return self._simulate(df, x, names, table, labels, regressor_samples, None)

    def predictive_samples(self, df: pd.DataFrame, vectorized: bool = True) -> dict[str, np.ndarray]:
        """Draws from the posterior predictive distribution at ``df``'s dates: ``{"yhat", "trend"}``,
        each ``(len(df), uncertainty_samples)``."""
        frame, regressor_samples = self._prepare_regressors_for_predict(df.copy(), self.uncertainty_samples or None)
        frame = self.setup_dataframe(frame)
        return self.sample_posterior_predictive(frame, vectorized, self._standardized(regressor_samples))

    def percentile(self, a: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        """``np.percentile``, or ``np.nanpercentile`` when ``a`` holds NaN."""
        fn = np.nanpercentile if np.isnan(a).any() else np.percentile
        return fn(a, *args, **kwargs)

    # -- regressors forecast by their own models -------------------------------------------------

    def _fit_regressor_models(self, df: pd.DataFrame) -> None:
        """Fits a model per regressor added with ``regressor_predictor``."""
        for name, props in self.extra_regressors.items():
            spec = props.get("predictor_spec")
            if spec is None:
                continue
            frame = df[["ds", name]]
            frame = frame[frame[name].notnull()].rename(columns={name: "y"})
            if frame.shape[0] < 2:
                raise input_error(EmptyInputError, f"Not enough data to fit regressor model for '{name}'.", name)
            logger.info("Fitting regressor model '%s' with %d observations", name, frame.shape[0])
            kwargs = deepcopy(spec)
            if "stan_backend" not in kwargs and self.stan_backend is not None:
                kwargs["stan_backend"] = self.stan_backend.get_type()
            predictor = self.__class__(**kwargs)
            predictor._regressor_name = name
            predictor.fit(frame, **self.fit_kwargs)
            props["predictor"] = predictor

    def _prepare_regressors_for_predict(self, df: pd.DataFrame, n_samples: int | None = None) -> tuple[pd.DataFrame, Any]:
        """Fills regressor columns from their models: history rows from the history, future rows
        from the model's forecast; with ``n_samples``, also the model's predictive draws."""
        samples: dict[str, np.ndarray] | None = {} if n_samples else None
        last = self.history["ds"].max() if self.history is not None else None
        for name, props in self.extra_regressors.items():
            predictor = props.get("predictor")
            if props.get("predictor_spec") is None or predictor is None:
                continue
            if name not in df:
                df[name] = np.nan
            ds = parse_ds(df["ds"])  # setup's parsing and checks (range included), before the regressor's model sees ds
            future = (ds > last).to_numpy() if last is not None else df[name].isna().to_numpy()
            missing = ~future & df[name].isna().to_numpy()
            if missing.any() and self.history is not None and name in self.history:
                known = self.history.set_index("ds")[name] * props["std"] + props["mu"]
                df.loc[missing, name] = known.reindex(ds[missing]).to_numpy()
            if future.any():
                ahead = pd.DataFrame({"ds": ds[future].to_numpy()})
                logger.info("Running regressor model '%s' for %d future dates", name, len(ahead))
                df.loc[future, name] = predictor.predict(ahead)["yhat"].to_numpy()
                if samples is not None:
                    draws = predictor.predictive_samples(ahead)["yhat"]
                    full = np.tile(df[name].to_numpy(dtype=float)[:, None], (1, draws.shape[1]))
                    full[future, :] = draws
                    samples[name] = full
            elif samples is not None:
                samples[name] = np.tile(df[name].to_numpy(dtype=float)[:, None], (1, int(n_samples)))
        return df, (samples or None)

    def _standardized(self, samples: Any) -> Any:
        if not samples:
            return None
        return {
            name: (draws - self.extra_regressors[name]["mu"]) / self.extra_regressors[name]["std"]
            for name, draws in samples.items()
        }


def _ends(df: pd.DataFrame) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Positions of the first and last dates, ``t`` and ``y_scaled``."""
    ds = df["ds"].to_numpy()
    return int(np.argmin(ds)), int(np.argmax(ds)), df["t"].to_numpy(dtype=float), df["y_scaled"].to_numpy(dtype=float)
