"""Plots of the detectors' results, as matplotlib or plotly figures.

Each function takes the DataFrames the detectors return and a ``backend``
(``"matplotlib"``, the default, or ``"plotly"``) and returns the figure,
so notebooks show it, Streamlit apps pass it to ``st.pyplot`` /
``st.plotly_chart``, and scripts save it::

    import anomaly
    from anomaly import plot

    flags = anomaly.ForecastDetector().fit(history).detect(history)
    plot.forecast(flags).savefig("forecast.png")             # band, readings, anomalies in red
    plot.components(model.predict()).savefig("parts.png")    # trend, daily, weekly
    plot.scores(forest.score_samples(X), offset=forest.offset_, backend="plotly").show()
    plot.consumption_heatmap(readings, client="C00001")      # hour x weekday mean kWh

matplotlib and plotly are imported only when a figure of theirs is asked
for; plotly is optional (``pip install plotly``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from anomaly.errors import ColumnError, ParameterError, input_error

__all__ = ["components", "consumption_heatmap", "forecast", "scores"]

_BACKENDS = ("matplotlib", "plotly")
_BAND = "#9ecae1"
_LINE = "#08519c"
_ANOMALY = "#d62728"


def _check(df: pd.DataFrame, columns: list[str], what: str) -> None:
    for column in columns:
        if column not in df.columns:
            raise input_error(
                ColumnError, f"{what} needs column {column!r}; available: {', '.join(map(str, df.columns))}", column
            )


def _backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise input_error(ParameterError, f"backend = {backend!r}: expected matplotlib or plotly", "backend")
    return backend


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure without pyplot: no GUI backend, no global state,
    safe in web apps and threads (Streamlit's ``st.pyplot(fig)`` takes it)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def forecast(
    df: pd.DataFrame,
    history: pd.DataFrame | None = None,
    *,
    title: str | None = None,
    backend: str = "matplotlib",
) -> Any:
    """A forecast with its interval, the readings, and the flagged ones.

    ``df`` holds ``ds, yhat, yhat_lower, yhat_upper`` (Prophet's or
    :class:`~anomaly.Prophet`'s ``predict``, or :meth:`ForecastDetector.detect`'s
    output, which adds ``y`` and ``is_anomaly``). Readings come from ``df['y']``
    or from ``history`` (``ds``, ``y``); anomalies are drawn in red.
    """
    _check(df, ["ds", "yhat", "yhat_lower", "yhat_upper"], "plot.forecast")
    points = df if "y" in df.columns else history
    flagged = df[df["is_anomaly"].astype(bool)] if "is_anomaly" in df.columns else df.iloc[0:0]
    if _backend(backend) == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_trace(go.Scatter(x=df["ds"], y=df["yhat_upper"], line={"width": 0}, showlegend=False, hoverinfo="skip"))
        fig.add_trace(
            go.Scatter(x=df["ds"], y=df["yhat_lower"], fill="tonexty", fillcolor="rgba(158,202,225,0.5)",
                       line={"width": 0}, name="interval")  # fmt: skip
        )
        fig.add_trace(go.Scatter(x=df["ds"], y=df["yhat"], line={"color": _LINE}, name="yhat"))
        if points is not None:
            fig.add_trace(go.Scatter(x=points["ds"], y=points["y"], mode="markers", marker={"size": 3, "color": "black"},
                                     name="y"))  # fmt: skip
        if len(flagged):
            fig.add_trace(go.Scatter(x=flagged["ds"], y=flagged["y"], mode="markers",
                                     marker={"size": 7, "color": _ANOMALY}, name="anomaly"))  # fmt: skip
        fig.update_layout(title=title, xaxis_title="ds", yaxis_title="y")
        return fig
    fig = _figure(11, 4)
    ax = fig.subplots()
    ax.fill_between(df["ds"], df["yhat_lower"], df["yhat_upper"], color=_BAND, alpha=0.6, label="interval")
    ax.plot(df["ds"], df["yhat"], color=_LINE, linewidth=1.2, label="yhat")
    if points is not None:
        ax.plot(points["ds"], points["y"], ".", color="black", markersize=2, label="y")
    if len(flagged):
        ax.plot(flagged["ds"], flagged["y"], "o", color=_ANOMALY, markersize=5, label="anomaly")
    ax.set_xlabel("ds")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def components(df: pd.DataFrame, *, backend: str = "matplotlib") -> Any:
    """Trend and each seasonal component of a ``predict`` frame, one panel each."""
    _check(df, ["ds", "trend"], "plot.components")
    skip = {"additive_terms", "multiplicative_terms", "yhat", "trend"}
    names = ["trend"] + [
        c for c in df.columns if f"{c}_lower" in df.columns and c not in skip and not c.endswith(("_lower", "_upper"))
    ]
    if _backend(backend) == "plotly":
        from plotly.subplots import make_subplots

        import plotly.graph_objects as go

        fig = make_subplots(rows=len(names), cols=1, shared_xaxes=False, subplot_titles=names)
        for i, name in enumerate(names, start=1):
            fig.add_trace(go.Scatter(x=df["ds"], y=df[name], line={"color": _LINE}, name=name), row=i, col=1)
        fig.update_layout(height=250 * len(names), showlegend=False)
        return fig
    fig = _figure(11, 2.6 * len(names))
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        ax.plot(df["ds"], df[name], color=_LINE)
        if f"{name}_lower" in df.columns:
            ax.fill_between(df["ds"], df[f"{name}_lower"], df[f"{name}_upper"], color=_BAND, alpha=0.5)
        ax.set_ylabel(name)
    fig.tight_layout()
    return fig


def scores(
    score_samples: Any,
    *,
    offset: float | None = None,
    bins: int = 50,
    backend: str = "matplotlib",
) -> Any:
    """Distribution of isolation-forest scores (``score_samples``), with the
    decision threshold (the model's ``offset_``) when given."""
    values = np.asarray(score_samples, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise input_error(ParameterError, "score_samples must be a non-empty array of finite numbers", "score_samples")
    flagged = int(np.sum(values < offset)) if offset is not None else None
    label = f"{flagged} of {values.size} below the threshold" if flagged is not None else f"{values.size} scores"
    if _backend(backend) == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Histogram(x=values, nbinsx=bins, marker={"color": _LINE}, name="score"))
        if offset is not None:
            fig.add_vline(x=offset, line={"color": _ANOMALY, "dash": "dash"}, annotation_text="threshold")
        fig.update_layout(title=label, xaxis_title="score_samples (lower = more abnormal)", yaxis_title="records")
        return fig
    fig = _figure(8, 4)
    ax = fig.subplots()
    ax.hist(values, bins=bins, color=_LINE, alpha=0.8)
    if offset is not None:
        ax.axvline(offset, color=_ANOMALY, linestyle="--", label="threshold")
        ax.legend()
    ax.set_xlabel("score_samples (lower = more abnormal)")
    ax.set_ylabel("records")
    ax.set_title(label)
    fig.tight_layout()
    return fig


def consumption_heatmap(
    readings: pd.DataFrame,
    *,
    client: str | None = None,
    client_col: str = "client_id",
    time_col: str = "timestamp",
    value_col: str = "kwh",
    backend: str = "matplotlib",
) -> Any:
    """Mean consumption by hour of day (rows) and day of week (columns), for
    one client or all: night-time use and flat meters show at a glance."""
    _check(readings, [time_col, value_col] + ([client_col] if client is not None else []), "plot.consumption_heatmap")
    df = readings if client is None else readings[readings[client_col] == client]
    if df.empty:
        raise input_error(ParameterError, f"no readings for client {client!r}", "client")
    ts = pd.to_datetime(df[time_col])
    table = (
        pd.DataFrame({"hour": ts.dt.hour, "day": ts.dt.day_of_week, "kwh": df[value_col].to_numpy(dtype=float)})
        .pivot_table(index="hour", columns="day", values="kwh", aggfunc="mean")
        .reindex(index=range(24), columns=range(7))
    )
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    title = f"mean {value_col} by hour and weekday" + (f" - {client}" if client is not None else "")
    if _backend(backend) == "plotly":
        import plotly.graph_objects as go

        fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=days, y=list(range(24)), colorscale="YlOrRd",
                                   colorbar={"title": value_col}))  # fmt: skip
        fig.update_layout(title=title, xaxis_title="weekday", yaxis_title="hour")
        return fig
    fig = _figure(7, 7)
    ax = fig.subplots()
    image = ax.imshow(table.to_numpy(), aspect="auto", cmap="YlOrRd", origin="lower")
    ax.set_xticks(range(7), days)
    ax.set_yticks(range(0, 24, 2))
    ax.set_xlabel("weekday")
    ax.set_ylabel("hour")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=value_col)
    fig.tight_layout()
    return fig
