"""Hostile input to the design-level Rust functions anomaly.Prophet calls
(prophet_map, prophet_map_many, prophet_simulate, prophet_trend,
fourier_series): every bad size, value or index is a typed AnomalyError
(never InternalError, the class a caught panic becomes), and no declared
size allocates before it is checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import anomaly
from anomaly import _anomaly


def problem(n: int = 30, k: int = 4, s: int = 3) -> dict[str, Any]:
    t = np.linspace(0, 1, n)
    return {
        "t": t, "y": 0.5 + 0.2 * t, "cap": np.ones(n), "x": np.column_stack([np.sin(t * (j + 1)) for j in range(k)]),
        "sigmas": np.full(k, 10.0), "s_a": np.ones(k), "s_m": np.zeros(k), "t_change": np.linspace(0.2, 0.6, s),
        "tau": 0.05, "trend_indicator": 0,
        "init": {"k": 0.2, "m": 0.5, "delta": np.zeros(s), "beta": np.zeros(k), "sigma_obs": 1.0},
    }  # fmt: skip


def test_a_good_problem_solves() -> None:
    fit = _anomaly.prophet_map(**problem())
    assert np.isfinite(fit["objective"]) and fit["delta"].shape == (3,) and fit["beta"].shape == (4,)
    many = _anomaly.prophet_map_many([problem(), problem(n=40)])
    assert len(many) == 2


BAD_MAP = {
    "y shorter": ({"y": np.zeros(29)}, anomaly.ShapeError),
    "nan y": ({"y": np.r_[np.zeros(29), np.nan]}, anomaly.NonFiniteError),
    "inf x": ({"x": np.full((30, 4), np.inf)}, anomaly.NonFiniteError),
    "x rows": ({"x": np.zeros((29, 4))}, anomaly.ShapeError),
    "x 1-d": ({"x": np.zeros(30)}, anomaly.ParameterError),
    "sigmas length": ({"sigmas": np.ones(3)}, anomaly.ShapeError),
    "zero sigma": ({"sigmas": np.array([1.0, 0.0, 1.0, 1.0])}, anomaly.ParameterError),
    "unsorted t": ({"t": np.linspace(1, 0, 30)}, anomaly.TimestampError),
    "unsorted changepoints": ({"t_change": np.array([0.6, 0.2, 0.4])}, anomaly.TimestampError),
    "tau": ({"tau": -1.0}, anomaly.ParameterError),
    "trend indicator": ({"trend_indicator": 7}, anomaly.ParameterError),
    "logistic cap 0": ({"trend_indicator": 1, "cap": np.zeros(30)}, anomaly.ParameterError),
    "empty": ({"t": np.zeros(0), "y": np.zeros(0), "cap": np.zeros(0), "x": np.zeros((0, 4))}, anomaly.EmptyInputError),
    "init delta": ({"init": {"k": 0.2, "m": 0.5, "delta": np.zeros(9), "beta": np.zeros(4)}}, anomaly.ShapeError),
    "init nan": ({"init": {"k": np.nan, "m": 0.5, "delta": np.zeros(3), "beta": np.zeros(4)}}, anomaly.NonFiniteError),
    "init missing": ({"init": {"k": 0.2}}, anomaly.ColumnError),
}


@pytest.mark.parametrize("name", BAD_MAP)
def test_bad_stan_data_is_a_typed_error(name: str) -> None:
    change, error = BAD_MAP[name]
    with pytest.raises(error) as err:
        _anomaly.prophet_map(**{**problem(), **change})
    assert not isinstance(err.value, anomaly.InternalError)
    with pytest.raises(error):
        _anomaly.prophet_map_many([problem(), {**problem(), **change}])


def simulate(**change: Any) -> dict[str, Any]:
    n = 20
    args: dict[str, Any] = {
        "t": np.linspace(0.5, 1.5, n), "cap": np.ones(n), "floor": np.zeros(n), "trend_indicator": 0, "k": 0.2, "m": 0.5,
        "delta": np.full(3, 0.01), "changepoints_t": np.array([0.2, 0.4, 0.6]), "history_step": 0.05,
        "xb_a": np.zeros((n, 1)), "xb_m": np.zeros((n, 1)), "sigma_obs": 0.1, "y_scale": 10.0, "n_samples": 50,
        "seed": 1, "interval_width": 0.8,
    }  # fmt: skip
    args.update(change)
    return _anomaly.prophet_simulate(**args)


BAD_SIMULATE = {
    "floor length": ({"floor": np.zeros(3)}, anomaly.ShapeError),
    "xb columns": ({"xb_a": np.zeros((20, 7)), "xb_m": np.zeros((20, 7))}, anomaly.ParameterError),
    "xb_m columns differ": ({"xb_m": np.zeros((20, 2))}, anomaly.ParameterError),
    "nan t": ({"t": np.r_[np.zeros(19), np.nan]}, anomaly.NonFiniteError),
    "delta length": ({"delta": np.zeros(5)}, anomaly.ShapeError),
    "width": ({"interval_width": 1.5}, anomaly.ParameterError),
    "method": ({"method": "guess"}, anomaly.ParameterError),
    "huge samples": ({"n_samples": 10**15, "interval_width": None}, anomaly.ParameterError),
    "negative sigma": ({"sigma_obs": -1.0}, anomaly.ParameterError),
}


def test_good_simulation_has_ordered_bands() -> None:
    out = simulate()
    assert np.all(out["yhat_lower"] <= out["yhat_upper"])
    samples = simulate(interval_width=None)
    assert samples["yhat"].shape == (20, 50)


@pytest.mark.parametrize("name", BAD_SIMULATE)
def test_bad_simulation_input_is_a_typed_error(name: str) -> None:
    change, error = BAD_SIMULATE[name]
    with pytest.raises(error) as err:
        simulate(**change)
    assert not isinstance(err.value, anomaly.InternalError)


def test_fourier_and_trend_refuse_bad_sizes() -> None:
    ds = np.arange(5, dtype=np.int64) * 86_400 * 10**9
    with pytest.raises(anomaly.ParameterError, match="more than"):
        _anomaly.fourier_series(ds, 7.0, 10**12)  # checked before allocating
    with pytest.raises(anomaly.ParameterError, match="too large"):
        _anomaly.fourier_series(ds, 7.0, 2**64 - 1)  # 2 x order would wrap
    with pytest.raises(anomaly.ParameterError):
        _anomaly.fourier_series(ds, 0.0, 3)
    with pytest.raises(anomaly.ShapeError):
        _anomaly.prophet_trend(np.arange(3.0), np.ones(3), 0, 1.0, 0.0, np.zeros(2), np.array([1.0]))
    with pytest.raises(anomaly.TimestampError):
        _anomaly.prophet_trend(np.arange(3.0), np.ones(3), 0, 1.0, 0.0, np.zeros(2), np.array([2.0, 1.0]))
    with pytest.raises(anomaly.ShapeError):
        _anomaly.prophet_trend(np.arange(3.0), np.ones(2), 1, 1.0, 0.0, np.zeros(1), np.array([1.0]))
