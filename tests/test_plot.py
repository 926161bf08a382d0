"""anomaly.plot: every figure in both backends, from the detectors' own
output; PNGs saved under test-artifacts/ for a look."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import anomaly
from anomaly import plot

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def flagged() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    t = np.arange(2016)
    y = 50 + 5 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, t.size)
    y[[300, 900, 1500]] += [15, -14, 18]
    history = pd.DataFrame({"ds": pd.date_range("2024-03-04", periods=t.size, freq="5min"), "y": y})
    return history, anomaly.ForecastDetector(k_sigma=4).fit(history).detect(history)


def save(fig: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    fig.savefig(ARTIFACTS / f"plot_{name}.png", dpi=60)  # type: ignore[attr-defined]


def test_forecast_figure_marks_the_anomalies(flagged: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    history, detected = flagged
    n = int(detected["is_anomaly"].sum())
    assert n >= 3
    fig = plot.forecast(detected, title="plant variable")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["yhat", "y", "anomaly"]
    assert len(ax.get_lines()[2].get_xdata()) == n
    save(fig, "forecast")
    pfig = plot.forecast(detected, backend="plotly")
    names = [trace.name for trace in pfig.data]
    assert names[-2:] == ["y", "anomaly"] and len(pfig.data[-1].x) == n


def test_components_and_prophet_frames(flagged: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    history, _ = flagged
    forecast = anomaly.Prophet(daily_seasonality=True, weekly_seasonality=True, seed=0).fit(history).predict()
    fig = plot.components(forecast)
    assert [ax.get_ylabel() for ax in fig.axes] == ["trend", "daily", "weekly"]
    save(fig, "components")
    assert len(plot.components(forecast, backend="plotly").data) == 3
    assert len(plot.forecast(forecast, history).axes[0].get_lines()) == 2  # no flags in a plain forecast


def test_scores_and_heatmap() -> None:
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(500, 3)), rng.uniform(-6, 6, size=(10, 3))])
    forest = anomaly.IsolationForest(random_state=0, contamination=0.02).fit(X)
    fig = plot.scores(forest.score_samples(X), offset=forest.offset_)
    assert "of 510 below the threshold" in fig.axes[0].get_title()
    save(fig, "scores")
    assert plot.scores(forest.score_samples(X), backend="plotly").data[0].type == "histogram"

    readings, _ = anomaly.consumption.simulate(clients=3, days=21, seed=2)
    fig = plot.consumption_heatmap(readings, client="C00001")
    assert fig.axes[0].images[0].get_array().shape == (24, 7)
    save(fig, "heatmap")
    heat = plot.consumption_heatmap(readings, backend="plotly")
    assert np.asarray(heat.data[0].z).shape == (24, 7)


def test_bad_input_is_a_clear_error(flagged: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    history, detected = flagged
    with pytest.raises(anomaly.ColumnError, match="yhat"):
        plot.forecast(history)
    with pytest.raises(anomaly.ParameterError, match="backend"):
        plot.forecast(detected, backend="bokeh")
    with pytest.raises(anomaly.ParameterError, match="finite"):
        plot.scores([0.1, float("nan")])
    readings, _ = anomaly.consumption.simulate(clients=1, days=3, seed=2)
    with pytest.raises(anomaly.ParameterError, match="no readings"):
        plot.consumption_heatmap(readings, client="nobody")
