"""Prophet 1.5's plots (``prophet.plot``) for :class:`anomaly.Prophet`.

The functions read only Prophet's public model attributes (``history``,
``params``, ``changepoints``, ``seasonalities``, ``extra_regressors``,
``component_modes``, ``train_holiday_names``, ``uncertainty_samples``,
``logistic_floor``) and call ``setup_dataframe`` and
``predict_seasonal_components``, so they draw ``prophet.Prophet`` models too::

    from anomaly import Prophet
    from anomaly.forecast_interval.plot import add_changepoints_to_plot, plot, plot_components

    m = Prophet().fit(df)
    fcst = m.predict(m.make_future_dataframe(periods=365))
    fig = plot(m, fcst)                          # history as dots, forecast, interval band
    add_changepoints_to_plot(fig.axes[0], m, fcst)
    plot_components(m, fcst).savefig("parts.png")  # trend, holidays, each seasonality, regressors

matplotlib figures are built without pyplot (no global state, safe in web
apps and threads); the ``*_plotly`` variants return plotly figures. Both
libraries are imported only when a figure of theirs is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from anomaly.errors import ColumnError, ParameterError, input_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    import plotly.graph_objects as go
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "add_changepoints_to_plot", "plot", "plot_components", "plot_components_plotly", "plot_cross_validation_metric",
    "plot_forecast_component", "plot_forecast_component_plotly", "plot_plotly", "plot_seasonality",
    "plot_seasonality_plotly", "plot_weekly", "plot_yearly", "seasonality_plot_df", "set_y_as_percent",
]  # fmt: skip

# Prophet's palette, so figures look the same after switching the import.
_BLUE = "#0072B2"
_BAND = "rgba(0, 114, 178, 0.2)"
_TREND = "#B23B00"
_ZEROLINE = "#AAA"
# Seasonal shapes are drawn over one period from this Sunday (weekly plots start on Sunday).
_START = pd.Timestamp("2017-01-01")
_SEASONAL_POINTS = 200
_PLOTLY_MAX_POINTS = 10_000  # Prophet draws a point per minute (525,960 for yearly); this is smooth enough
_HORIZON_UNITS = [(name, pd.Timedelta(1, unit)) for name, unit in [
    ("days", "D"), ("hours", "h"), ("minutes", "min"), ("seconds", "s"), ("milliseconds", "ms"),
    ("microseconds", "us"), ("nanoseconds", "ns")]]  # fmt: skip


# ---- shared helpers ---------------------------------------------------------------------------------


def _history(m: Any) -> pd.DataFrame:
    if getattr(m, "history", None) is None:
        raise input_error(ParameterError, "the model has not been fit: call fit before plotting", "m")
    return m.history


def _need(fcst: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    for column in columns:
        if column not in fcst:
            available = ", ".join(map(str, fcst.columns))
            raise input_error(ColumnError, f"{what} needs column {column!r} of predict's output; available: {available}",
                              column)  # fmt: skip


def _seasonality(m: Any, name: str) -> dict[str, Any]:
    if name not in m.seasonalities:
        known = ", ".join(m.seasonalities) or "none"
        raise input_error(ParameterError, f"no seasonality named {name!r}; the model has: {known}", "name")
    return m.seasonalities[name]


def _multiplicative(m: Any, name: str) -> bool:
    return name in m.component_modes["multiplicative"]


def _band(m: Any, uncertainty: bool, frame: pd.DataFrame, name: str) -> bool:
    return bool(uncertainty and m.uncertainty_samples) and f"{name}_lower" in frame and f"{name}_upper" in frame


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, facecolor="w").add_subplot(111)


def _figure_of(ax: Axes) -> Figure:
    return cast("Figure", ax.get_figure())


def _date_axis(ax: Axes) -> None:
    from matplotlib.dates import AutoDateFormatter, AutoDateLocator

    # Prophet's ticks: not forced onto round multiples, which can leave a short range with one tick.
    locator = AutoDateLocator(interval_multiples=False)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(AutoDateFormatter(locator))


def _finish(ax: Axes, xlabel: str, ylabel: str, percent: bool) -> None:
    ax.grid(True, which="major", c="gray", ls="-", lw=1, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if percent:
        set_y_as_percent(ax)


def set_y_as_percent(ax: Axes) -> Axes:
    """Shows multiplicative components (fractions of the trend) in percent.

    A formatter rather than Prophet's fixed tick labels, so the labels stay
    right after zooming or a new layout.
    """
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{100 * y:.4g}%"))
    return ax


def _capacity(ax: Axes, m: Any, fcst: pd.DataFrame, plot_cap: bool, labels: bool) -> list[Artist]:
    """The dashed cap (and floor, when the model has one) of logistic growth."""
    artists: list[Artist] = []
    if not plot_cap:
        return artists
    if "cap" in fcst:
        artists += ax.plot(fcst["ds"], fcst["cap"], ls="--", c="k", label="Maximum capacity" if labels else None)
    if getattr(m, "logistic_floor", False) and "floor" in fcst:
        artists += ax.plot(fcst["ds"], fcst["floor"], ls="--", c="k", label="Minimum capacity" if labels else None)
    return artists


def _significant_changepoints(m: Any, threshold: float) -> pd.DatetimeIndex:
    """Changepoints whose rate change (mean over samples) is at least ``threshold`` in size."""
    changepoints = getattr(m, "changepoints", None)
    if changepoints is None or len(changepoints) == 0:
        return pd.DatetimeIndex([])
    delta = np.nanmean(np.asarray(m.params["delta"], dtype=float).reshape(-1, len(changepoints)), axis=0)
    return pd.DatetimeIndex(changepoints)[np.abs(delta) >= threshold]


# ---- matplotlib ------------------------------------------------------------------------------------


def plot(
    m: Any,
    fcst: pd.DataFrame,
    ax: Axes | None = None,
    uncertainty: bool = True,
    plot_cap: bool = True,
    xlabel: str = "ds",
    ylabel: str = "y",
    figsize: tuple[float, float] = (10, 6),
    include_legend: bool = False,
) -> Figure:
    """The forecast: the history as black dots, ``yhat`` and its interval band,
    and the cap/floor dashed for logistic growth. Draws on ``ax`` when given."""
    history = _history(m)
    _need(fcst, ["ds", "yhat"], "plot")
    own_axes = ax is None
    ax = _axes(ax, figsize)
    ax.plot(history["ds"], history["y"], "k.", label="Observed data points")
    ax.plot(fcst["ds"], fcst["yhat"], ls="-", c=_BLUE, label="Forecast")
    _capacity(ax, m, fcst, plot_cap, labels=True)
    if _band(m, uncertainty, fcst, "yhat"):
        ax.fill_between(fcst["ds"], fcst["yhat_lower"], fcst["yhat_upper"], color=_BLUE, alpha=0.2,
                        label="Uncertainty interval")  # fmt: skip
    _date_axis(ax)
    _finish(ax, xlabel, ylabel, percent=False)
    if include_legend:
        ax.legend()
    fig = _figure_of(ax)
    if own_axes:
        fig.tight_layout()
    return fig


def _components(m: Any, fcst: pd.DataFrame) -> list[str]:
    """Prophet's panels: trend, holidays, weekly, yearly, the other seasonalities
    by name, then the additive and multiplicative extra regressors."""
    names = ["trend"]
    if m.train_holiday_names is not None and "holidays" in fcst:
        names.append("holidays")
    names += [name for name in ("weekly", "yearly") if name in m.seasonalities and name in fcst]
    names += sorted(name for name in m.seasonalities if name in fcst and name not in ("weekly", "yearly"))
    modes = {props["mode"] for props in m.extra_regressors.values()}
    names += [f"extra_regressors_{mode}" for mode in ("additive", "multiplicative")
              if mode in modes and f"extra_regressors_{mode}" in fcst]  # fmt: skip
    return names


def plot_components(
    m: Any,
    fcst: pd.DataFrame,
    uncertainty: bool = True,
    plot_cap: bool = True,
    weekly_start: int = 0,
    yearly_start: int = 0,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One panel per component: the trend and holidays over the forecast's
    dates, each seasonality over one period (weekly by weekday, starting on
    Sunday + ``weekly_start`` days; yearly from Jan 1 + ``yearly_start`` days),
    extra regressors. Multiplicative components are shown in percent."""
    from matplotlib.figure import Figure

    history = _history(m)
    _need(fcst, ["ds", "trend"], "plot_components")
    names = _components(m, fcst)
    fig = Figure(figsize=figsize or (9, 3 * len(names)), facecolor="w")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    step = history["ds"].diff()
    daily_data = step[step > pd.Timedelta(0)].min() == pd.Timedelta(days=1)
    for ax, name in zip(axes, names, strict=True):
        if name not in m.seasonalities:
            plot_forecast_component(m, fcst, name, ax=ax, uncertainty=uncertainty, plot_cap=plot_cap and name == "trend")
            continue
        period = m.seasonalities[name]["period"]
        # A weekday axis only makes sense when the data has one point a day; finer data gets the continuous plot.
        if (name == "weekly" or period == 7) and daily_data:
            plot_weekly(m, ax=ax, uncertainty=uncertainty, weekly_start=weekly_start, name=name)
        elif name == "yearly" or period == 365.25:
            plot_yearly(m, ax=ax, uncertainty=uncertainty, yearly_start=yearly_start, name=name)
        else:
            plot_seasonality(m, name, ax=ax, uncertainty=uncertainty)
    fig.tight_layout()
    return fig


def plot_forecast_component(
    m: Any,
    fcst: pd.DataFrame,
    name: str,
    ax: Axes | None = None,
    uncertainty: bool = True,
    plot_cap: bool = False,
    figsize: tuple[float, float] = (10, 6),
) -> list[Artist]:
    """One column of the forecast (``trend``, ``holidays``, a regressor, ...)
    over its dates, with its band; returns the artists drawn."""
    _need(fcst, ["ds", name], "plot_forecast_component")
    ax = _axes(ax, figsize)
    artists: list[Artist] = list(ax.plot(fcst["ds"], fcst[name], ls="-", c=_BLUE))
    artists += _capacity(ax, m, fcst, plot_cap, labels=False)
    if _band(m, uncertainty, fcst, name):
        artists.append(ax.fill_between(fcst["ds"], fcst[f"{name}_lower"], fcst[f"{name}_upper"], color=_BLUE, alpha=0.2))
    _date_axis(ax)
    _finish(ax, "ds", name, percent=_multiplicative(m, name))
    return artists


def seasonality_plot_df(m: Any, ds: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> pd.DataFrame:
    """The model's input frame for the dates ``ds``, ready for
    ``predict_seasonal_components``: regressors at 0 and every condition on,
    so each seasonality shows its whole shape."""
    frame: dict[str, Any] = {"ds": ds, "cap": 1.0, "floor": 0.0}
    frame.update({name: 0.0 for name in m.extra_regressors})
    frame.update({props["condition_name"]: True for props in m.seasonalities.values()
                  if props.get("condition_name") is not None})  # fmt: skip
    return m.setup_dataframe(pd.DataFrame(frame))


def _seasonal(m: Any, name: str, ds: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    _seasonality(m, name)
    grid = seasonality_plot_df(m, ds)
    return grid, m.predict_seasonal_components(grid)


def _draw_seasonal(ax: Axes, m: Any, name: str, x: Any, seas: pd.DataFrame, uncertainty: bool) -> list[Artist]:
    artists: list[Artist] = list(ax.plot(x, seas[name], ls="-", c=_BLUE))
    if _band(m, uncertainty, seas, name):
        artists.append(ax.fill_between(x, seas[f"{name}_lower"], seas[f"{name}_upper"], color=_BLUE, alpha=0.2))
    return artists


def plot_weekly(
    m: Any,
    ax: Axes | None = None,
    uncertainty: bool = True,
    weekly_start: int = 0,
    figsize: tuple[float, float] = (10, 6),
    name: str = "weekly",
) -> list[Artist]:
    """A weekly seasonality by day of week, from Sunday + ``weekly_start`` days."""
    ax = _axes(ax, figsize)
    days = pd.date_range(_START, periods=7) + pd.Timedelta(days=weekly_start)
    _, seas = _seasonal(m, name, days)
    artists = _draw_seasonal(ax, m, name, np.arange(7), seas, uncertainty)
    ax.set_xticks(range(7), list(days.day_name()))
    _finish(ax, "Day of week", name, percent=m.seasonalities[name]["mode"] == "multiplicative")
    return artists


def plot_yearly(
    m: Any,
    ax: Axes | None = None,
    uncertainty: bool = True,
    yearly_start: int = 0,
    figsize: tuple[float, float] = (10, 6),
    name: str = "yearly",
) -> list[Artist]:
    """A yearly seasonality over 365 days from Jan 1 + ``yearly_start`` days."""
    from matplotlib.dates import MonthLocator, num2date
    from matplotlib.ticker import FuncFormatter

    ax = _axes(ax, figsize)
    days = pd.date_range(_START, periods=365) + pd.Timedelta(days=yearly_start)
    grid, seas = _seasonal(m, name, days)
    artists = _draw_seasonal(ax, m, name, grid["ds"], seas, uncertainty)
    ax.xaxis.set_major_locator(MonthLocator(range(1, 13), bymonthday=1, interval=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{num2date(x):%B} {num2date(x).day}"))
    _finish(ax, "Day of year", name, percent=m.seasonalities[name]["mode"] == "multiplicative")
    return artists


def plot_seasonality(
    m: Any,
    name: str,
    ax: Axes | None = None,
    uncertainty: bool = True,
    figsize: tuple[float, float] = (10, 6),
) -> list[Artist]:
    """Any seasonality over one period from Jan 1 2017 (200 points), with
    eight ticks labelled as clock times, weekdays, dates or days, by period."""
    from matplotlib.dates import date2num, num2date
    from matplotlib.ticker import FuncFormatter

    period = _seasonality(m, name)["period"]
    ax = _axes(ax, figsize)
    end = _START + pd.Timedelta(days=period)
    days = pd.to_datetime(np.linspace(_START.value, end.value, _SEASONAL_POINTS).astype(np.int64))
    grid, seas = _seasonal(m, name, days)
    artists = _draw_seasonal(ax, m, name, grid["ds"], seas, uncertainty)
    ax.set_xticks(pd.to_datetime(np.linspace(_START.value, end.value, 8).astype(np.int64)).to_pydatetime())
    origin = date2num(_START)
    if name == "yearly":
        label, text = "Day of year", lambda x: f"{num2date(x):%B} {num2date(x).day}"
    elif name == "weekly":
        label, text = "Day of Week", lambda x: f"{num2date(x):%A}"
    elif name == "daily" or period <= 2:
        label, text = "Hour of day" if name == "daily" else "Hours", lambda x: f"{num2date(x):%H:%M:%S}"
    else:
        label, text = "Days", lambda x: f"{x - origin:.0f}"  # days into the period
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: text(x)))
    _finish(ax, label, name, percent=m.seasonalities[name]["mode"] == "multiplicative")
    return artists


def add_changepoints_to_plot(
    ax: Axes,
    m: Any,
    fcst: pd.DataFrame,
    threshold: float = 0.01,
    cp_color: str = "r",
    cp_linestyle: str = "--",
    trend: bool = True,
) -> list[Artist]:
    """Vertical lines at the changepoints whose rate change is at least
    ``threshold`` in size (and the trend, when ``trend``) on a forecast plot::

        fig = plot(m, fcst)
        add_changepoints_to_plot(fig.axes[0], m, fcst)
    """
    artists: list[Artist] = []
    if trend:
        _need(fcst, ["ds", "trend"], "add_changepoints_to_plot")
        artists += ax.plot(fcst["ds"], fcst["trend"], c=cp_color)
    artists += [ax.axvline(x=cp, c=cp_color, ls=cp_linestyle) for cp in _significant_changepoints(m, threshold)]
    return artists


def plot_cross_validation_metric(
    df_cv: pd.DataFrame,
    metric: str,
    rolling_window: float = 0.1,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (10, 6),
    color: str = "b",
    point_color: str = "gray",
) -> Figure:
    """A metric against the horizon, from ``cross_validation``'s output: each
    prediction's value as a faint dot, and the mean over a rolling window of
    ``rolling_window`` of the predictions as a line. The horizon is shown in
    the largest unit that gives about ten ticks."""
    from anomaly.forecast_interval.diagnostics import performance_metrics

    ax = _axes(ax, figsize)
    points = performance_metrics(df_cv, metrics=[metric], rolling_window=-1)
    rolling = performance_metrics(df_cv, metrics=[metric], rolling_window=rolling_window)
    if points is None or rolling is None:
        raise input_error(ParameterError, f"metric {metric!r} cannot be computed on this frame (mape needs no y near "
                          "0, coverage needs yhat_lower and yhat_upper)", "metric")  # fmt: skip
    tick = points["horizon"].max() / 10
    unit_name, unit = next(((n, u) for n, u in _HORIZON_UNITS if u < tick), _HORIZON_UNITS[-1])
    ax.plot(points["horizon"] / unit, points[metric], ".", alpha=0.1, c=point_color)
    ax.plot(rolling["horizon"] / unit, rolling[metric], "-", c=color)
    ax.grid(True)
    ax.set_xlabel(f"Horizon ({unit_name})")
    ax.set_ylabel(metric)
    return _figure_of(ax)


# ---- plotly ----------------------------------------------------------------------------------------


def plot_plotly(
    m: Any,
    fcst: pd.DataFrame,
    uncertainty: bool = True,
    plot_cap: bool = True,
    trend: bool = False,
    changepoints: bool = False,
    changepoints_threshold: float = 0.01,
    xlabel: str = "ds",
    ylabel: str = "y",
    figsize: tuple[int, int] = (900, 600),
) -> go.Figure:
    """The forecast as an interactive plotly figure, with a range slider and
    1w/1m/6m/1y/all buttons; ``trend`` and ``changepoints`` add the trend line
    and marks at the significant changepoints."""
    import plotly.graph_objects as go

    history = _history(m)
    _need(fcst, ["ds", "yhat"], "plot_plotly")
    band = _band(m, uncertainty, fcst, "yhat")
    line = {"color": _BLUE, "width": 2}
    data = [go.Scatter(name="Actual", x=history["ds"], y=history["y"], mode="markers",
                       marker={"color": "black", "size": 4})]  # fmt: skip
    if band:
        data.append(go.Scatter(x=fcst["ds"], y=fcst["yhat_lower"], mode="lines", line={"width": 0}, hoverinfo="skip"))
    data.append(go.Scatter(name="Predicted", x=fcst["ds"], y=fcst["yhat"], mode="lines", line=line,
                           fillcolor=_BAND, fill="tonexty" if band else "none"))  # fmt: skip
    if band:
        data.append(go.Scatter(x=fcst["ds"], y=fcst["yhat_upper"], mode="lines", line={"width": 0}, fillcolor=_BAND,
                               fill="tonexty", hoverinfo="skip"))  # fmt: skip
    data += _capacity_traces(m, fcst, plot_cap)
    if trend or changepoints:
        _need(fcst, ["trend"], "plot_plotly")
    if trend:
        data.append(go.Scatter(name="Trend", x=fcst["ds"], y=fcst["trend"], mode="lines",
                               line={"color": _TREND, "width": 2}))  # fmt: skip
    if changepoints:
        cps = _significant_changepoints(m, changepoints_threshold)
        # The trend at each changepoint, interpolated so marks sit on it even between forecast rows.
        at = np.interp(cps.as_unit("ns").asi8, pd.DatetimeIndex(fcst["ds"]).as_unit("ns").asi8, fcst["trend"].to_numpy(float))
        data.append(go.Scatter(x=cps, y=at, mode="markers", hoverinfo="skip",
                               marker={"size": 50, "symbol": "line-ns-open", "color": _TREND, "line": {"width": 2}}))  # fmt: skip
    buttons = [{"count": 7, "label": "1w", "step": "day", "stepmode": "backward"},
               {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
               {"count": 6, "label": "6m", "step": "month", "stepmode": "backward"},
               {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
               {"step": "all"}]  # fmt: skip
    layout = {
        "showlegend": False,
        "width": figsize[0],
        "height": figsize[1],
        "yaxis": {"title": {"text": ylabel}},
        "xaxis": {"title": {"text": xlabel}, "type": "date", "rangeselector": {"buttons": buttons},
                  "rangeslider": {"visible": True}},  # fmt: skip
    }
    return go.Figure(data=data, layout=layout)


def _capacity_traces(m: Any, fcst: pd.DataFrame, plot_cap: bool) -> list[go.Scatter]:
    import plotly.graph_objects as go

    dashed = {"color": "black", "dash": "dash", "width": 2}
    traces = []
    if plot_cap and "cap" in fcst:
        traces.append(go.Scatter(name="Cap", x=fcst["ds"], y=fcst["cap"], mode="lines", line=dashed))
    if plot_cap and getattr(m, "logistic_floor", False) and "floor" in fcst:
        traces.append(go.Scatter(name="Floor", x=fcst["ds"], y=fcst["floor"], mode="lines", line=dashed))
    return traces


def _band_traces(name: str, x: Any, lower: Any, upper: Any) -> list[go.Scatter]:
    import plotly.graph_objects as go

    edge = {"width": 0, "color": _BAND}
    return [go.Scatter(name=f"{name}_upper", x=x, y=upper, mode="lines", line=edge),
            go.Scatter(name=f"{name}_lower", x=x, y=lower, mode="lines", line=edge, fillcolor=_BAND, fill="tonexty")]  # fmt: skip


def _holiday_text(m: Any, ds: pd.Series) -> list[str] | None:
    """Hover text naming the holidays (and their window days) on each date."""
    if not hasattr(m, "construct_holiday_dataframe") or not hasattr(m, "make_holiday_features"):
        return None
    features, _, _ = m.make_holiday_features(ds, m.construct_holiday_dataframe(ds))
    labels = [str(c).replace("_delim_", "").replace("+0", "") for c in features.columns]
    text = [""] * len(ds)
    for row, col in zip(*np.nonzero(features.to_numpy() != 0), strict=True):
        text[row] = f"{text[row]}<br>{labels[col]}" if text[row] else labels[col]
    return text


def _component_props(m: Any, fcst: pd.DataFrame, name: str, uncertainty: bool = True,
                     plot_cap: bool = False) -> dict[str, Any]:  # fmt: skip
    """Traces and axes of one forecast column, for a figure or a subplot."""
    import plotly.graph_objects as go

    _need(fcst, ["ds", name], "plot_components_plotly")
    ds = fcst["ds"]
    text = _holiday_text(m, ds) if name == "holidays" else None
    traces = [go.Scatter(name=name, x=ds, y=fcst[name], mode="lines", line={"color": _BLUE, "width": 2}, text=text)]
    if _band(m, uncertainty, fcst, name) and (fcst[f"{name}_upper"] != fcst[f"{name}_lower"]).any():
        traces += _band_traces(name, ds, fcst[f"{name}_lower"], fcst[f"{name}_upper"])
    traces += _capacity_traces(m, fcst, plot_cap)
    margin = (ds.max() - ds.min()) * 0.05
    yaxis = {"rangemode": "normal" if name == "trend" else "tozero", "title": {"text": name},
             "zerolinecolor": _ZEROLINE}  # fmt: skip
    if _multiplicative(m, name):
        yaxis.update(tickformat="%", hoverformat=".2%")
    return {"traces": traces, "xaxis": {"type": "date", "range": [ds.min() - margin, ds.max() + margin]},
            "yaxis": yaxis}  # fmt: skip


def _seasonality_props(m: Any, name: str, uncertainty: bool = True) -> dict[str, Any]:
    """Traces and axes of one seasonality over one period, a point per step of the data's resolution."""
    import plotly.graph_objects as go

    period = _seasonality(m, name)["period"]
    ds = _history(m)["ds"]
    per_day = 1 if (ds.dt.hour == 0).all() else 24 if (ds.dt.minute == 0).all() else 24 * 60
    points = max(1, min(int(np.floor(period * per_day)), _PLOTLY_MAX_POINTS))
    end = _START + pd.Timedelta(days=period)
    days = pd.to_datetime(np.linspace(_START.value, end.value, points, endpoint=False).astype(np.int64))
    grid, seas = _seasonal(m, name, days)
    traces = [go.Scatter(name=name, x=grid["ds"], y=seas[name], mode="lines", line={"color": _BLUE, "width": 2})]
    if _band(m, uncertainty, seas, name) and (seas[f"{name}_upper"] != seas[f"{name}_lower"]).any():
        traces += _band_traces(name, grid["ds"], seas[f"{name}_lower"], seas[f"{name}_upper"])
    # Tick labels by period, e.g. for 2017-01-06 21:15: "21:15", "Friday 21:15", "Friday", "January  6".
    tickformat = "%H:%M" if period <= 2 else "%A %H:%M" if period < 7 else "%A" if period < 14 else "%B %e"
    margin = (grid["ds"].max() - grid["ds"].min()) * 0.05
    yaxis: dict[str, Any] = {"title": {"text": name}, "zerolinecolor": _ZEROLINE}
    if m.seasonalities[name]["mode"] == "multiplicative":
        yaxis.update(tickformat="%", hoverformat=".2%")
    xaxis = {"tickformat": tickformat, "type": "date", "range": [grid["ds"].min() - margin, grid["ds"].max() + margin]}
    return {"traces": traces, "xaxis": xaxis, "yaxis": yaxis}


def _single(props: dict[str, Any], figsize: tuple[int, int]) -> go.Figure:
    import plotly.graph_objects as go

    layout = {"width": figsize[0], "height": figsize[1], "showlegend": False, "xaxis": props["xaxis"],
              "yaxis": props["yaxis"]}  # fmt: skip
    return go.Figure(data=props["traces"], layout=layout)


def plot_components_plotly(
    m: Any,
    fcst: pd.DataFrame,
    uncertainty: bool = True,
    plot_cap: bool = True,
    figsize: tuple[int, int] = (900, 200),
) -> go.Figure:
    """:func:`plot_components` in plotly: trend, holidays (hover names them),
    extra regressors, then each seasonality over one period; ``figsize`` is
    the size of one panel in pixels."""
    from plotly.subplots import make_subplots

    _history(m)
    _need(fcst, ["ds", "trend"], "plot_components_plotly")
    panels = {"trend": _component_props(m, fcst, "trend", uncertainty, plot_cap)}
    if m.train_holiday_names is not None and "holidays" in fcst:
        panels["holidays"] = _component_props(m, fcst, "holidays", uncertainty)
    modes = {props["mode"] for props in m.extra_regressors.values()}
    for mode in ("additive", "multiplicative"):
        if mode in modes and f"extra_regressors_{mode}" in fcst:
            panels[f"extra_regressors_{mode}"] = _component_props(m, fcst, f"extra_regressors_{mode}", uncertainty)
    for name in m.seasonalities:
        panels[name] = _seasonality_props(m, name, uncertainty)
    fig = make_subplots(rows=len(panels), cols=1, print_grid=False)
    fig.update_layout(showlegend=False, width=figsize[0], height=figsize[1] * len(panels))
    for row, props in enumerate(panels.values(), start=1):
        suffix = "" if row == 1 else str(row)
        fig.layout[f"xaxis{suffix}"].update(props["xaxis"])
        fig.layout[f"yaxis{suffix}"].update(props["yaxis"])
        for trace in props["traces"]:
            fig.add_trace(trace, row=row, col=1)
    return fig


def plot_forecast_component_plotly(
    m: Any,
    fcst: pd.DataFrame,
    name: str,
    uncertainty: bool = True,
    plot_cap: bool = False,
    figsize: tuple[int, int] = (900, 300),
) -> go.Figure:
    """:func:`plot_forecast_component` in plotly."""
    return _single(_component_props(m, fcst, name, uncertainty, plot_cap), figsize)


def plot_seasonality_plotly(
    m: Any, name: str, uncertainty: bool = True, figsize: tuple[int, int] = (900, 300)
) -> go.Figure:
    """One seasonality over one period, in plotly."""
    return _single(_seasonality_props(m, name, uncertainty), figsize)
