"""Prophet's cross-validation and performance metrics, with prophet 1.5's
signatures and output frames (a drop-in for ``prophet.diagnostics``)::

    from anomaly.diagnostics import cross_validation, performance_metrics

    df_cv = cross_validation(m, initial="365 days", period="30 days", horizon="30 days")
    df_p = performance_metrics(df_cv)

What differs is speed: :func:`cross_validation` prepares each cutoff's model
(``_stan_inputs``) and hands its MAP problem to Rust (``prophet_map_many``,
in batches of one problem per core, on a helper thread: the solver releases
the GIL), so the solves run while the next cutoffs are being prepared; then
it predicts each cutoff from its solved model. The results are those of
fitting each cutoff on its own, as Prophet does.

``parallel`` chooses where the per-cutoff *predictions* run (the solves always
run in Rust, in parallel):

- ``None``: in this thread (the fastest: nothing to ship).
- ``"threads"``: a ``ThreadPoolExecutor``; only prediction's sampling
  releases the GIL, so this is rarely faster than ``None``.
- ``"processes"``: a ``ProcessPoolExecutor`` (forkserver; spawn on Windows and
  macOS); each worker receives its solved model. Starting workers costs more
  than the predictions, so this is only worth it for very long forecasts.
- ``"dask"`` (uses ``dask.distributed.get_client()``), a dask ``Client``, or
  any object with a ``map`` method: :func:`single_cutoff_forecast` is mapped
  there over the solved models; dask futures are gathered.

Models without the solver split (``_stan_inputs``), for example a
``prophet.Prophet``, are fitted one cutoff at a time, exactly as Prophet does.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import logging
import multiprocessing
import os
import sys
from copy import deepcopy
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import ParameterError, input_error

__all__ = [
    "PERFORMANCE_METRICS",
    "coverage",
    "cross_validation",
    "generate_cutoffs",
    "mae",
    "mape",
    "mdape",
    "mse",
    "performance_metrics",
    "prophet_copy",
    "register_performance_metric",
    "rmse",
    "rolling_mean_by_h",
    "rolling_median_by_h",
    "single_cutoff_forecast",
    "smape",
]

logger = logging.getLogger(__name__)


def generate_cutoffs(df: pd.DataFrame, horizon: pd.Timedelta, initial: pd.Timedelta, period: pd.Timedelta) -> list[pd.Timestamp]:
    """Prophet's cutoffs: from ``max(ds) - horizon`` back by ``period`` while at
    least ``initial`` of history remains; a cutoff whose horizon window holds no
    data moves back to the last date before it, minus ``horizon``. Oldest first."""
    ds = np.sort(df["ds"].to_numpy())  # the column's own unit, so cutoffs keep it as Prophet's do
    first, last = pd.Timestamp(ds[0]), pd.Timestamp(ds[-1])
    cutoff = last - horizon
    if cutoff < first:
        raise input_error(ParameterError, "Less data than horizon.", "horizon")
    result = [cutoff]
    while result[-1] >= first + initial:
        cutoff -= period
        # Rows in (cutoff, cutoff + horizon]: positions between the two right-searches.
        lo = np.searchsorted(ds, cutoff.to_datetime64(), side="right")
        hi = np.searchsorted(ds, (cutoff + horizon).to_datetime64(), side="right")
        if hi == lo and cutoff > first:
            cutoff = pd.Timestamp(ds[lo - 1]) - horizon
        result.append(cutoff)
    result = result[:-1]
    if not result:
        raise input_error(
            ParameterError, "Less data than horizon after initial window. Make horizon or initial shorter.", "initial"
        )
    logger.info("Making %d forecasts with cutoffs between %s and %s", len(result), result[-1], result[0])
    return result[::-1]


def cross_validation(
    model: Any,
    horizon: str | pd.Timedelta,
    period: str | pd.Timedelta | None = None,
    initial: str | pd.Timedelta | None = None,
    parallel: Any = None,
    cutoffs: list[pd.Timestamp] | None = None,
    disable_tqdm: bool = False,
    extra_output_columns: str | list[str] | None = None,
) -> pd.DataFrame:
    """Simulated historical forecasts (prophet's ``cross_validation``).

    From each cutoff, the model is refitted on the history up to the cutoff
    and forecasts ``horizon`` ahead. Cutoffs are ``cutoffs`` if given, else
    every ``period`` (default ``horizon / 2``) back from ``max(ds) - horizon``
    while ``initial`` (default ``max(3 * horizon, longest seasonality)``) of
    history remains. Returns ``ds, yhat[, yhat_lower, yhat_upper], *extra,
    y, cutoff``. See the module doc for ``parallel``.
    """
    if getattr(model, "history", None) is None:
        raise Exception("Model has not been fit. Fitting the model provides contextual parameters for cross validation.")
    df = model.history.copy().reset_index(drop=True)
    horizon = pd.Timedelta(horizon)
    predict_columns = ["ds", "yhat"]
    if model.uncertainty_samples:
        predict_columns += ["yhat_lower", "yhat_upper"]
    if extra_output_columns is not None:
        if isinstance(extra_output_columns, str):
            extra_output_columns = [extra_output_columns]
        predict_columns += [c for c in extra_output_columns if c not in predict_columns]

    period_max = max([0.0, *(s["period"] for s in model.seasonalities.values())])
    seasonality_dt = pd.Timedelta(str(period_max) + " days")
    if cutoffs is None:
        period = 0.5 * horizon if period is None else pd.Timedelta(period)
        initial = max(3 * horizon, seasonality_dt) if initial is None else pd.Timedelta(initial)
        cutoffs = generate_cutoffs(df, horizon, initial, period)
    else:
        cutoffs = [pd.Timestamp(c) for c in cutoffs]
        if min(cutoffs) <= df["ds"].min():
            raise input_error(ParameterError, "Minimum cutoff value is not strictly greater than min date in history", "cutoffs")
        if max(cutoffs) > df["ds"].max() - horizon:
            raise input_error(
                ParameterError,
                "Maximum cutoff value is greater than end date minus horizon, no value for cross-validation remaining",
                "cutoffs",
            )
        initial = cutoffs[0] - df["ds"].min()
    if initial < seasonality_dt:
        logger.warning(
            "Seasonality has period of %s days which is larger than initial window. Consider increasing initial.", period_max
        )

    pool, owned = _pool(parallel)
    try:
        # Fitted copies are picked up by single_cutoff_forecast; other models are fitted there.
        args = [_fit_cutoffs(model, df, cutoffs), list(cutoffs)]
        if pool is None:
            pairs = zip(*args)
            if not disable_tqdm:
                pairs = _progress(pairs, len(cutoffs))
            predicts = [single_cutoff_forecast(df, m, c, horizon, predict_columns) for m, c in pairs]
        else:
            data = df
            if parallel == "dask":
                # Ship the history once, as Prophet does, not once per task.
                data = pool.scatter(df, broadcast=True)
            n = len(cutoffs)
            logger.info("Applying in parallel with %s", pool)
            predicts = pool.map(single_cutoff_forecast, [data] * n, *args, [horizon] * n, [predict_columns] * n)
            if hasattr(pool, "gather"):
                predicts = pool.gather(predicts)
    finally:
        if owned:
            pool.shutdown(wait=True)
    return pd.concat(list(predicts), axis=0).reset_index(drop=True)


def _pool(parallel: Any) -> tuple[Any, bool]:
    """The executor for ``parallel`` and whether this call owns (and shuts down) it."""
    if not parallel:
        return None, False
    if parallel == "threads":
        return concurrent.futures.ThreadPoolExecutor(), True
    if parallel == "processes":
        method = "spawn" if sys.platform.startswith("win") or sys.platform == "darwin" else "forkserver"
        return concurrent.futures.ProcessPoolExecutor(mp_context=multiprocessing.get_context(method)), True
    if parallel == "dask":
        try:
            from dask.distributed import get_client
        except ImportError as err:
            raise ImportError("parallel='dask' requires the optional dependency dask.") from err
        return get_client(), False
    if not isinstance(parallel, str) and hasattr(parallel, "map"):
        return parallel, False
    raise input_error(ParameterError, "'parallel' should be one of threads, processes, dask for an instance with a 'map' method", "parallel")


def _progress(items: Any, total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no progress bar without it
        return items
    return tqdm(items, total=total)


class _Fitted:
    """A model already fitted for one cutoff by :func:`cross_validation`'s batched solve."""

    def __init__(self, model: Any, cutoff: pd.Timestamp) -> None:
        self.model = model
        self.cutoff = cutoff


def _fit_cutoffs(model: Any, df: pd.DataFrame, cutoffs: Sequence[pd.Timestamp]) -> list[Any]:
    """One fitted copy per cutoff, the MAP problems solved in Rust by ``prophet_map_many``.

    The problems go to the solver in batches of one per core, on a helper
    thread (the solver releases the GIL), so the solves overlap the
    preparation of the next cutoffs. Falls back to the model itself (fitted
    per cutoff later, as Prophet does) when it has no solver split.
    """
    if not hasattr(model, "_stan_inputs") or not hasattr(_anomaly, "prophet_map_many"):
        return [model] * len(cutoffs)
    ds = df["ds"].to_numpy()
    batch_size = os.cpu_count() or 1
    copies, inits, batch, pending = [], [], [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as solver:
        for cutoff in cutoffs:
            keep = ds <= pd.Timestamp(cutoff).to_datetime64()
            if np.count_nonzero(keep) < 2:
                raise input_error(ParameterError, "Less than two datapoints before cutoff. Increase initial window.", "initial")
            m = prophet_copy(model, cutoff)
            dat, init = m._stan_inputs(df[keep], **model.fit_kwargs)
            copies.append(m)
            inits.append(init)
            batch.append(None if dat is None else dict(dat, init=init))
            if len(batch) == batch_size:
                pending.append(solver.submit(_solve, batch))
                batch = []
        pending.append(solver.submit(_solve, batch))
        results = [r for future in pending for r in future.result()]
    for m, result, init in zip(copies, results, inits):
        m._finish_fit(result, init)
    return [_Fitted(m, c) for m, c in zip(copies, cutoffs)]


def _solve(batch: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    """``prophet_map_many`` over the problems of ``batch``; None (nothing to solve) stays None."""
    problems = [p for p in batch if p is not None]
    solved = iter(_anomaly.prophet_map_many(problems) if problems else [])
    return [None if p is None else next(solved) for p in batch]


def single_cutoff_forecast(
    df: pd.DataFrame, model: Any, cutoff: pd.Timestamp, horizon: pd.Timedelta, predict_columns: list[str]
) -> pd.DataFrame:
    """The forecast from one cutoff: ``predict_columns`` plus ``y`` and ``cutoff``.

    ``model`` is copied and fitted on ``df`` up to ``cutoff`` (prophet's
    behaviour), unless it is a copy :func:`cross_validation` already fitted.
    """
    ds = df["ds"].to_numpy()
    if isinstance(model, _Fitted) and model.cutoff == cutoff:
        m = model.model
    else:
        model = model.model if isinstance(model, _Fitted) else model
        m = prophet_copy(model, cutoff)
        keep = ds <= pd.Timestamp(cutoff).to_datetime64()
        if np.count_nonzero(keep) < 2:
            raise input_error(ParameterError, "Less than two datapoints before cutoff. Increase initial window.", "initial")
        m.fit(df[keep], **model.fit_kwargs)
    ahead = (ds > pd.Timestamp(cutoff).to_datetime64()) & (ds <= pd.Timestamp(cutoff + horizon).to_datetime64())
    columns = ["ds"]
    if m.growth == "logistic":
        columns.append("cap")
        if m.logistic_floor:
            columns.append("floor")
    columns += list(m.extra_regressors)
    columns += [s["condition_name"] for s in m.seasonalities.values() if s.get("condition_name") is not None]
    # Frames built from arrays in one go: per-column pandas indexing costs more than the forecast.
    future = pd.DataFrame({c: df[c].to_numpy()[ahead] for c in dict.fromkeys(columns)})
    yhat = m.predict(future)
    backend = getattr(m, "stan_backend", None)
    if backend is not None and hasattr(backend, "cleanup"):
        backend.cleanup()
    out = {c: yhat[c].to_numpy() for c in predict_columns}
    out["y"] = df["y"].to_numpy()[ahead]
    out["cutoff"] = np.full(len(yhat), pd.Timestamp(cutoff).to_datetime64())  # the cutoff's unit, as in Prophet's frame
    return pd.DataFrame(out)


@functools.lru_cache(maxsize=16)
def _parameters(cls: type) -> Any:
    return inspect.signature(cls).parameters


def prophet_copy(m: Any, cutoff: pd.Timestamp | None = None) -> Any:
    """An unfitted model with ``m``'s settings, seasonalities, regressors and
    country holidays; specified changepoints are kept only before the last
    history date at or before ``cutoff``."""
    if m.history is None:
        raise Exception("This is for copying a fitted Prophet object.")
    changepoints = None
    if m.specified_changepoints:
        changepoints = m.changepoints
        if cutoff is not None:
            history_ds = m.history["ds"]
            changepoints = changepoints[changepoints < history_ds[history_ds <= cutoff].max()]
    backend = getattr(m, "stan_backend", None)
    options = dict(
        growth=m.growth,
        n_changepoints=m.n_changepoints,
        changepoint_range=m.changepoint_range,
        changepoints=changepoints,
        # The seasonalities are already resolved into m.seasonalities.
        yearly_seasonality=False,
        weekly_seasonality=False,
        daily_seasonality=False,
        holidays=m.holidays,
        holidays_mode=m.holidays_mode,
        seasonality_mode=m.seasonality_mode,
        seasonality_prior_scale=m.seasonality_prior_scale,
        changepoint_prior_scale=m.changepoint_prior_scale,
        holidays_prior_scale=m.holidays_prior_scale,
        mcmc_samples=m.mcmc_samples,
        interval_width=m.interval_width,
        uncertainty_samples=m.uncertainty_samples,
        stan_backend=backend.get_type() if backend is not None and hasattr(backend, "get_type") else None,
    )
    # anomaly.Prophet's own options (seed, interval_method, scaling) travel too.
    accepted = _parameters(type(m))
    for name in ("scaling", "seed", "interval_method"):
        if name in accepted and hasattr(m, name):
            options[name] = getattr(m, name)
    # A frame anomaly.Prophet validated when it built m is shared (as Prophet's copies share it),
    # with m's memo of holiday tables; any other frame goes through the constructor's checks.
    share = m.holidays is not None and getattr(m, "_holidays_validated", None) is m.holidays
    if share:
        options["holidays"] = None
    m2 = type(m)(**options)
    if share:
        m2.holidays = m2._holidays_validated = m.holidays
        m2._holiday_memo = m._holiday_memo
    # The fitted regressor models are not copied: the copy's fit refits them.
    m2.extra_regressors = type(m.extra_regressors)(
        (name, {k: (None if k == "predictor" else deepcopy(v)) for k, v in props.items()})
        for name, props in m.extra_regressors.items()
    )
    # Seasonality settings are scalars and strings: copying each dict is a deep copy.
    m2.seasonalities = type(m.seasonalities)((name, dict(props)) for name, props in m.seasonalities.items())
    m2.country_holidays = deepcopy(m.country_holidays)
    return m2


# -- performance metrics ---------------------------------------------------------------------------

PERFORMANCE_METRICS: dict[str, Callable[..., Any]] = {}


def register_performance_metric(func: Callable[..., Any]) -> Callable[..., Any]:
    """Registers ``func(df, w) -> DataFrame[horizon, <func name>]`` under its name."""
    PERFORMANCE_METRICS[func.__name__] = func
    return func


def performance_metrics(
    df: pd.DataFrame, metrics: Sequence[str] | None = None, rolling_window: float = 0.1, monthly: bool = False
) -> pd.DataFrame | None:
    """Metrics of a :func:`cross_validation` frame by horizon (prophet's ``performance_metrics``).

    ``metrics`` defaults to mse, rmse, mae, mape, mdape, smape, coverage
    (coverage only with intervals; mape is skipped when some ``|y| < 1e-8``).
    Each row aggregates ``rolling_window`` of the points (after sorting by
    horizon), right-aligned; 0 gives one row per horizon, a negative value one
    row per point. ``monthly`` counts horizons in calendar months.
    Returns None when no metric is left.
    """
    valid = ["mse", "rmse", "mae", "mape", "mdape", "smape", "coverage"]
    metrics = list(valid if metrics is None else metrics)
    if ("yhat_lower" not in df or "yhat_upper" not in df) and "coverage" in metrics:
        metrics.remove("coverage")
    if len(set(metrics)) != len(metrics):
        raise input_error(ParameterError, "Input metrics must be a list of unique values", "metrics")
    if not set(metrics) <= set(PERFORMANCE_METRICS):
        raise input_error(ParameterError, f"Valid values for metrics are: {valid}", "metrics")
    df_m = df.copy()
    if monthly:
        df_m["horizon"] = df_m["ds"].dt.to_period("M").astype(int) - df_m["cutoff"].dt.to_period("M").astype(int)
    else:
        df_m["horizon"] = df_m["ds"] - df_m["cutoff"]
    # Prophet's (unstable) sort: the order within a horizon decides which points the medians borrow.
    df_m = df_m.sort_values("horizon")
    if "mape" in metrics and df_m["y"].abs().min() < 1e-8:
        logger.info("Skipping MAPE because y close to 0")
        metrics.remove("mape")
    if not metrics:
        return None
    w = int(rolling_window * df_m.shape[0])
    if w >= 0:
        w = min(max(w, 1), df_m.shape[0])
    res = PERFORMANCE_METRICS[metrics[0]](df_m, w)
    for metric in metrics[1:]:
        res_m = PERFORMANCE_METRICS[metric](df_m, w)
        if not np.array_equal(res["horizon"].to_numpy(), res_m["horizon"].to_numpy()):
            raise AssertionError(f"metric {metric} returned other horizons than {metrics[0]}")
        res[metric] = res_m[metric].to_numpy()
    return res


def rolling_mean_by_h(x: Any, h: Any, w: int, name: str) -> pd.DataFrame:
    """Right-aligned rolling mean over at least ``w`` points, one value per horizon.

    Points are first summed per horizon; the window ending at a horizon takes
    whole horizons leftwards and, from the horizon that completes it, only the
    share needed to reach exactly ``w`` points (at that horizon's mean).
    """
    hs, inverse = np.unique(np.asarray(h), return_inverse=True)
    x = np.asarray(x, dtype=np.float64)
    sums = np.bincount(inverse, weights=x, minlength=len(hs))
    counts = np.bincount(inverse, minlength=len(hs))
    csum_x = np.concatenate(([0.0], np.cumsum(sums)))
    csum_n = np.concatenate(([0], np.cumsum(counts)))
    # For the window ending at horizon r, the window starts at the last horizon l
    # with counts[l..r] >= w: the largest l with csum_n[l] <= csum_n[r + 1] - w.
    right = np.arange(len(hs))
    left = np.searchsorted(csum_n, csum_n[right + 1] - w, side="right") - 1
    ok = left >= 0
    right, left = right[ok], left[ok]
    excess = csum_n[right + 1] - csum_n[left] - w
    values = (csum_x[right + 1] - csum_x[left] - excess * sums[left] / counts[left]) / w
    return pd.DataFrame({"horizon": hs[right], name: values})


def rolling_median_by_h(x: Any, h: Any, w: int, name: str) -> pd.DataFrame:
    """Right-aligned rolling median over at least ``w`` points, one value per horizon.

    A horizon with fewer than ``w`` points borrows the points just before its
    first one (the input is sorted by horizon), moving backwards; horizons that
    cannot reach ``w`` points are dropped.
    """
    h = np.asarray(h)
    x = np.asarray(x)
    hs, inverse = np.unique(h, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(hs)))))
    res_h, res_x = [], []
    for g in range(len(hs) - 1, -1, -1):
        members = order[bounds[g] : bounds[g + 1]]
        first = members[0]  # stable order: the first occurrence of this horizon
        need = max(w - len(members), 0)
        borrowed = x[max(first - need, 0) : first]
        if len(members) + len(borrowed) < w:
            break
        res_h.append(hs[g])
        res_x.append(np.median(np.concatenate((x[members], borrowed))))
    return pd.DataFrame({"horizon": np.array(res_h[::-1], dtype=hs.dtype), name: np.array(res_x[::-1], dtype=np.float64)})


def _by_h(df: pd.DataFrame, w: int, name: str, values: pd.Series, agg: Callable[..., pd.DataFrame] = rolling_mean_by_h) -> pd.DataFrame:
    if w < 0:
        return pd.DataFrame({"horizon": df["horizon"], name: values})
    return agg(values.to_numpy(), df["horizon"].to_numpy(), w, name)


@register_performance_metric
def mse(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Mean squared error by horizon."""
    return _by_h(df, w, "mse", (df["y"] - df["yhat"]) ** 2)


@register_performance_metric
def rmse(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Root mean squared error by horizon."""
    res = mse(df, w)
    return pd.DataFrame({"horizon": res["horizon"], "rmse": np.sqrt(res["mse"])})


@register_performance_metric
def mae(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Mean absolute error by horizon."""
    return _by_h(df, w, "mae", (df["y"] - df["yhat"]).abs())


@register_performance_metric
def mape(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Mean absolute percent error by horizon."""
    return _by_h(df, w, "mape", ((df["y"] - df["yhat"]) / df["y"]).abs())


@register_performance_metric
def mdape(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Median absolute percent error by horizon."""
    return _by_h(df, w, "mdape", ((df["y"] - df["yhat"]) / df["y"]).abs(), rolling_median_by_h)


@register_performance_metric
def smape(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Symmetric mean absolute percent error by horizon (Chen and Yang 2004); 0/0 counts as 0."""
    sape = (df["y"] - df["yhat"]).abs() / ((df["y"].abs() + df["yhat"].abs()) / 2)
    return _by_h(df, w, "smape", sape.fillna(0))


@register_performance_metric
def coverage(df: pd.DataFrame, w: int) -> pd.DataFrame:
    """Share of ``y`` inside ``[yhat_lower, yhat_upper]`` by horizon."""
    return _by_h(df, w, "coverage", (df["y"] >= df["yhat_lower"]) & (df["y"] <= df["yhat_upper"]))
