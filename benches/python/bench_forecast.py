"""anomaly.Prophet / ForecastDetector against Python prophet, in the same run.

    .venv/bin/python benches/python/bench_forecast.py

Fit one 4032-point 5-minute series (daily + weekly seasonality) in both
modes, predict the history plus a week with 1000-draw intervals, train 25
variables x 14 days, and detect one new datetime across the 25 models.
Prints times and ratios; writes test-artifacts/bench_forecast.json.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
logging.getLogger("prophet").setLevel(logging.WARNING)

import prophet  # noqa: E402

import anomaly  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(interval_width=0.95, changepoint_prior_scale=0.05, daily_seasonality=True, weekly_seasonality=True, yearly_seasonality=False)


def series(seed: int, n: int = 4032) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + seed + 0.002 * t + 5 * np.sin(2 * np.pi * t / 288) + 2 * np.sin(2 * np.pi * t / 2016) + rng.normal(0, 1, n)
    return pd.DataFrame({"ds": pd.date_range("2024-03-04", periods=n, freq="5min"), "y": y})


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    df = series(0)
    for mode in ("additive", "multiplicative"):
        ours_fit = best(lambda: anomaly.Prophet(seasonality_mode=mode, **SETTINGS).fit(df))
        theirs_fit = best(lambda: prophet.Prophet(seasonality_mode=mode, **SETTINGS).fit(df))
        ours = anomaly.Prophet(seasonality_mode=mode, seed=0, **SETTINGS).fit(df)
        theirs = prophet.Prophet(seasonality_mode=mode, **SETTINGS).fit(df)
        future = theirs.make_future_dataframe(periods=7 * 288, freq="5min")
        ours_predict = best(lambda: ours.predict(future))
        theirs_predict = best(lambda: theirs.predict(future))
        results[f"fit_{mode}"] = {"anomaly": ours_fit, "prophet": theirs_fit}
        results[f"predict_{mode}"] = {"anomaly": ours_predict, "prophet": theirs_predict}

    frames = []
    for v in range(25):
        s = series(v).rename(columns={"ds": "datetime", "y": "value"})
        s["variable_name"] = f"var{v:02d}"
        frames.append(s)
    long = pd.concat(frames, ignore_index=True)
    cols = dict(time_col="datetime", value_col="value", variable_col="variable_name")
    train = best(lambda: anomaly.ForecastDetector().fit(long, **cols), repeat=1)
    theirs_train = best(
        lambda: [
            prophet.Prophet(seasonality_mode="multiplicative", **SETTINGS).fit(g.rename(columns={"datetime": "ds", "value": "y"}))
            for _, g in long.groupby("variable_name")
        ],
        repeat=1,
    )
    results["train_25_variables_multiplicative"] = {"anomaly": train, "prophet": theirs_train}
    det = anomaly.ForecastDetector().fit(long, **cols)
    new = long.groupby("variable_name").tail(1).copy()
    new["datetime"] += pd.Timedelta(minutes=5)
    detect_one = best(lambda: det.detect(new, **cols), repeat=20)
    results["detect_one_datetime_25_variables"] = {"anomaly": detect_one}

    for name, r in results.items():
        ratio = f"{r['prophet'] / r['anomaly']:6.1f}x" if "prophet" in r else "      "
        theirs_s = f"prophet {r['prophet'] * 1000:9.1f} ms" if "prophet" in r else ""
        print(f"{name:<40} anomaly {r['anomaly'] * 1000:9.2f} ms  {theirs_s}  {ratio}")
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "bench_forecast.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
