"""anomaly.forecast_interval.plot: Prophet 1.5's plots, checked on prophet.Prophet
models and on anomaly.Prophet (the functions read only Prophet's public
attributes); PNGs saved under test-artifacts/ for a look."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import anomaly
from anomaly.forecast_interval import plot as fplot

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")
prophet = pytest.importorskip("prophet")
logging.getLogger("cmdstanpy").setLevel(logging.WARNING)

from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DATA = Path(prophet.__file__).parent / "tests" / "data.csv"
BLUE = "#0072B2"


def model_class(kind: str) -> Any:
    if kind == "prophet":
        return prophet.Prophet
    if not hasattr(anomaly.Prophet, "make_all_seasonality_features"):
        pytest.skip("anomaly.Prophet is still the old class (no make_all_seasonality_features): the rewrite has not landed")
    missing = [f for f in ("prophet_map", "prophet_simulate", "fourier_series") if not hasattr(anomaly._anomaly, f)]
    if missing:
        pytest.skip(f"the extension lacks {', '.join(missing)} (not built yet): anomaly.Prophet cannot fit")
    return anomaly.Prophet


def save(fig: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    fig.savefig(ARTIFACTS / f"prophet_plot_{name}.png", dpi=60)


@pytest.fixture(scope="module", params=["prophet", "anomaly"])
def daily(request: pytest.FixtureRequest) -> tuple[Any, pd.DataFrame, str]:
    """Daily data with US holidays, an additive and a multiplicative regressor,
    and a multiplicative custom seasonality."""
    cls = model_class(request.param)
    rng = np.random.default_rng(0)
    df = pd.read_csv(DATA, parse_dates=["ds"])
    df["temp"] = rng.normal(size=len(df))
    df["promo"] = (rng.random(len(df)) < 0.1).astype(float)
    df["y"] = (df["y"] + 2 * df["temp"]) * (1 + 0.1 * df["promo"])
    m = cls()
    m.add_country_holidays(country_name="US")
    m.add_regressor("temp")
    m.add_regressor("promo", mode="multiplicative")
    m.add_seasonality(name="monthly", period=30.5, fourier_order=5, mode="multiplicative")
    m.fit(df)
    future = m.make_future_dataframe(periods=60)
    future["temp"] = rng.normal(size=len(future))
    future["promo"] = (rng.random(len(future)) < 0.1).astype(float)
    return m, m.predict(future), request.param


@pytest.fixture(scope="module", params=["prophet", "anomaly"])
def hourly(request: pytest.FixtureRequest) -> tuple[Any, pd.DataFrame, str]:
    """Hourly data, logistic growth between a floor and a cap, daily and weekly seasonality."""
    cls = model_class(request.param)
    rng = np.random.default_rng(1)
    ds = pd.date_range("2024-01-01", periods=24 * 40, freq="h")
    t = np.arange(ds.size)
    y = 10 + 80 / (1 + np.exp(-(t - 400) / 120)) + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1.5, t.size)
    df = pd.DataFrame({"ds": ds, "y": y, "cap": 100.0, "floor": 5.0})
    m = cls(growth="logistic", daily_seasonality=True, weekly_seasonality=True, yearly_seasonality=False).fit(df)
    future = m.make_future_dataframe(periods=24 * 7, freq="h")
    future["cap"], future["floor"] = 100.0, 5.0
    return m, m.predict(future), request.param


def significant(m: Any, threshold: float) -> pd.DatetimeIndex:
    delta = np.abs(np.nanmean(np.asarray(m.params["delta"]), axis=0))
    return pd.DatetimeIndex(m.changepoints)[delta >= threshold]


def test_plot_draws_history_forecast_and_band(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, kind = daily
    fig = fplot.plot(m, fc)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    dots, forecast = ax.get_lines()
    assert dots.get_marker() == "." and dots.get_linestyle() == "None" and dots.get_color() == "k"
    assert len(dots.get_ydata()) == len(m.history)
    assert forecast.get_color() == BLUE and np.allclose(forecast.get_ydata(), fc["yhat"])
    assert len(ax.collections) == 1  # the interval band
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("ds", "y")
    save(fig, f"forecast_{kind}")
    assert len(fplot.plot(m, fc, uncertainty=False).axes[0].collections) == 0

    own = Figure()
    target = own.add_subplot(111)
    assert fplot.plot(m, fc, ax=target, xlabel="day", ylabel="sales") is own
    assert target.get_xlabel() == "day"


def test_model_methods_draw_these_plots(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, kind = daily
    if kind != "anomaly":
        pytest.skip("prophet.Prophet's methods draw with prophet.plot")
    assert [line.get_label() for line in m.plot(fc, include_legend=True).axes[0].get_lines()] == [
        "Observed data points", "Forecast"]  # fmt: skip
    assert [ax.get_ylabel() for ax in m.plot_components(fc, weekly_start=1).axes][:3] == ["trend", "holidays", "weekly"]


def test_logistic_plot_shows_cap_and_floor(hourly: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, kind = hourly
    fig = fplot.plot(m, fc, include_legend=True)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["Observed data points", "Forecast", "Maximum capacity", "Minimum capacity"]
    assert all(line.get_linestyle() == "--" for line in ax.get_lines()[2:])
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "Uncertainty interval"
    save(fig, f"logistic_{kind}")
    assert len(fplot.plot(m, fc, plot_cap=False).axes[0].get_lines()) == 2


def test_components_panels_named_after_components(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, kind = daily
    fig = fplot.plot_components(m, fc)
    names = ["trend", "holidays", "weekly", "yearly", "monthly", "extra_regressors_additive",
             "extra_regressors_multiplicative"]  # fmt: skip
    assert [ax.get_ylabel() for ax in fig.axes] == names
    panel = dict(zip(names, fig.axes, strict=True))
    save(fig, f"components_{kind}")

    trend = panel["trend"].get_lines()[0]
    assert np.allclose(trend.get_ydata(), fc["trend"])
    assert len(panel["holidays"].get_lines()[0].get_ydata()) == len(fc)

    weekly = panel["weekly"]
    assert [t.get_text() for t in weekly.get_xticklabels()] == ["Sunday", "Monday", "Tuesday", "Wednesday",
                                                                "Thursday", "Friday", "Saturday"]  # fmt: skip
    by_day = fc.groupby(fc["ds"].dt.day_of_week)["weekly"].first()  # pandas: Monday = 0
    assert np.allclose(weekly.get_lines()[0].get_ydata(), by_day[[6, 0, 1, 2, 3, 4, 5]].to_numpy())

    # Yearly is drawn over 2017; 2013 is exactly 4 * 365.25 days earlier, so the same day of year has the same value.
    yearly = panel["yearly"]
    assert yearly.get_xlabel() == "Day of year"
    rows = fc[fc["ds"].dt.year == 2013]
    assert np.allclose(yearly.get_lines()[0].get_ydata()[rows["ds"].dt.day_of_year - 1], rows["yearly"])

    for name in ("monthly", "extra_regressors_multiplicative"):  # multiplicative: fractions shown in percent
        assert panel[name].yaxis.get_major_formatter()(0.05, 0) == "5%"
    assert panel["yearly"].yaxis.get_major_formatter()(0.05, 0) != "5%"

    shifted = fplot.plot_components(m, fc, weekly_start=1, yearly_start=31, figsize=(8, 12))
    assert shifted.axes[2].get_xticklabels()[0].get_text() == "Monday"
    assert tuple(shifted.get_size_inches()) == (8, 12)


def test_subdaily_components_plot_continuous_seasonalities(hourly: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, kind = hourly
    fig = fplot.plot_components(m, fc)
    assert [(ax.get_ylabel(), ax.get_xlabel()) for ax in fig.axes] == [
        ("trend", "ds"), ("weekly", "Day of Week"), ("daily", "Hour of day")]  # fmt: skip
    trend, weekly, daily_ax = fig.axes
    assert [line.get_linestyle() for line in trend.get_lines()] == ["-", "--", "--"]  # trend, cap, floor
    assert len(daily_ax.get_lines()[0].get_ydata()) == 200
    # 24-hour period: the first and the last point are the same time of day.
    values = daily_ax.get_lines()[0].get_ydata()
    assert values[0] == pytest.approx(values[-1], abs=1e-6 * np.ptp(values))
    save(fig, f"components_hourly_{kind}")
    assert len(fplot.plot_components(m, fc, plot_cap=False).axes[0].get_lines()) == 1


@pytest.mark.parametrize("threshold", [0.0, 0.01, 0.5, 1e9])
def test_changepoints_drawn_where_delta_exceeds_threshold(daily: tuple[Any, pd.DataFrame, str],
                                                          threshold: float) -> None:  # fmt: skip
    m, fc, kind = daily
    fig = fplot.plot(m, fc)
    ax = fig.axes[0]
    artists = fplot.add_changepoints_to_plot(ax, m, fc, threshold=threshold)
    trend, vlines = artists[0], artists[1:]
    assert np.allclose(trend.get_ydata(), fc["trend"]) and trend.get_color() == "r"
    expected = significant(m, threshold)
    assert [pd.Timestamp(line.get_xdata()[0]) for line in vlines] == list(expected)
    assert all(line.get_linestyle() == "--" for line in vlines)
    if threshold == 0.0:
        assert len(vlines) == len(m.changepoints)
    if threshold == 0.01:
        save(fig, f"changepoints_{kind}")
    assert len(fplot.add_changepoints_to_plot(ax, m, fc, threshold=threshold, trend=False)) == len(expected)


def test_single_panels(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, _ = daily
    artists = fplot.plot_seasonality(m, "monthly")
    ax = artists[0].axes
    assert ax.get_xlabel() == "Days" and len(artists[0].get_ydata()) == 200
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["0", "4"]
    assert fplot.plot_seasonality(m, "weekly")[0].axes.get_xlabel() == "Day of Week"
    assert len(fplot.plot_weekly(m)[0].get_ydata()) == 7
    assert len(fplot.plot_yearly(m, uncertainty=False)) == 1
    artists = fplot.plot_forecast_component(m, fc, "holidays")
    assert artists[0].axes.get_ylabel() == "holidays"
    assert fplot.set_y_as_percent(artists[0].axes).yaxis.get_major_formatter()(0.123, 0) == "12.3%"


def test_plotly_forecast(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, _ = daily
    fig = fplot.plot_plotly(m, fc, trend=True, changepoints=True)
    assert [trace.name for trace in fig.data] == ["Actual", None, "Predicted", None, "Trend", None]
    assert fig.data[2].fill == "tonexty" and fig.data[3].fill == "tonexty"
    marks = fig.data[-1]
    expected = significant(m, 0.01)
    assert len(marks.x) == len(expected)
    on_trend = fc.set_index("ds").loc[expected, "trend"]
    assert np.allclose(marks.y, on_trend)
    assert fig.layout.xaxis.rangeslider.visible and fig.layout.width == 900
    plain = fplot.plot_plotly(m, fc, uncertainty=False)
    assert [trace.name for trace in plain.data] == ["Actual", "Predicted"] and plain.data[1].fill == "none"


def test_plotly_logistic(hourly: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, _ = hourly
    assert [t.name for t in fplot.plot_plotly(m, fc).data][-2:] == ["Cap", "Floor"]
    fig = fplot.plot_components_plotly(m, fc)
    assert [t.name for t in fig.data if t.name in ("Cap", "Floor")] == ["Cap", "Floor"]
    daily_trace = next(t for t in fig.data if t.name == "daily")
    assert len(daily_trace.x) == 24  # one point per hour of hourly data


def test_plotly_components(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, _ = daily
    fig = fplot.plot_components_plotly(m, fc)
    panels = ["trend", "holidays", "extra_regressors_additive", "extra_regressors_multiplicative", *m.seasonalities]
    titles = [fig.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in range(1, len(panels) + 1)]
    assert titles == panels and fig.layout.height == 200 * len(panels)
    for i, name in enumerate(panels, start=1):
        axis = fig.layout[f"yaxis{'' if i == 1 else i}"]
        multiplicative = name in m.component_modes["multiplicative"]
        assert (axis.tickformat == "%") == multiplicative, name
    holidays = next(t for t in fig.data if t.name == "holidays")
    named = {part for text in holidays.text if text for part in text.split("<br>")}
    assert named and named <= set(m.train_holiday_names)
    # Every date with a holiday effect names it (a holiday absent from the history has a zero effect but a name).
    assert all(text for text, value in zip(holidays.text, fc["holidays"], strict=True) if value != 0)
    weekly = next(t for t in fig.data if t.name == "weekly")
    assert len(weekly.x) == 7 and fig.layout.xaxis.type == "date"

    assert fplot.plot_forecast_component_plotly(m, fc, "trend").layout.yaxis.title.text == "trend"
    single = fplot.plot_seasonality_plotly(m, "monthly")
    assert single.layout.yaxis.tickformat == "%" and len(single.data[0].x) == 30


def test_same_content_as_prophet(daily: tuple[Any, pd.DataFrame, str]) -> None:
    """Each panel shows what prophet.plot.plot_components shows for the same model (ours included:
    prophet's function only reads Prophet's public attributes)."""
    m, fc, _ = daily
    import matplotlib.pyplot as plt
    from prophet.plot import plot_components as prophet_components

    theirs = prophet_components(m, fc)
    try:
        ours = fplot.plot_components(m, fc)
        assert [ax.get_ylabel() for ax in ours.axes] == [ax.get_ylabel() for ax in theirs.axes]
        for a, b in zip(ours.axes, theirs.axes, strict=True):
            assert a.get_xlabel() == b.get_xlabel()
            assert len(a.get_lines()) == len(b.get_lines())
            for la, lb in zip(a.get_lines(), b.get_lines(), strict=True):
                assert np.allclose(np.asarray(la.get_ydata(), float), np.asarray(lb.get_ydata(), float))
    finally:
        plt.close(theirs)


def test_cross_validation_metric() -> None:
    """Drawn from our performance_metrics; the same points and line as prophet's plot."""
    import matplotlib.pyplot as plt

    from prophet.diagnostics import cross_validation
    from prophet.plot import plot_cross_validation_metric as prophet_metric

    df = pd.read_csv(DATA, parse_dates=["ds"])
    m = prophet.Prophet(yearly_seasonality=False).fit(df)
    df_cv = cross_validation(m, horizon="30 days", period="60 days", initial="400 days")
    fig = fplot.plot_cross_validation_metric(df_cv, "mape")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Horizon (days)" and ax.get_ylabel() == "mape"
    points, rolling = ax.get_lines()
    assert points.get_marker() == "." and rolling.get_color() == "b"
    save(fig, "cv_mape")
    theirs = prophet_metric(df_cv, "mape")
    try:
        for a, b in zip(ax.get_lines(), theirs.axes[0].get_lines(), strict=True):
            assert np.allclose(a.get_xdata(), b.get_xdata()) and np.allclose(a.get_ydata(), b.get_ydata())
    finally:
        plt.close(theirs)
    hours = df_cv.assign(ds=df_cv["ds"], cutoff=df_cv["ds"] - pd.Timedelta(hours=6))
    assert fplot.plot_cross_validation_metric(hours, "mae").axes[0].get_xlabel() == "Horizon (minutes)"
    with pytest.raises(anomaly.ParameterError, match="'mape' cannot be computed"):
        fplot.plot_cross_validation_metric(df_cv.assign(y=0.0), "mape")


def test_bad_input_is_a_clear_error(daily: tuple[Any, pd.DataFrame, str]) -> None:
    m, fc, _ = daily
    with pytest.raises(anomaly.ParameterError, match="no seasonality named 'hourly'"):
        fplot.plot_seasonality(m, "hourly")
    with pytest.raises(anomaly.ColumnError, match="yhat"):
        fplot.plot(m, fc.drop(columns="yhat"))
    with pytest.raises(anomaly.ColumnError, match="trend"):
        fplot.plot_components(m, fc.drop(columns="trend"))
    with pytest.raises(anomaly.ParameterError, match="not been fit"):
        fplot.plot(prophet.Prophet(), fc)
