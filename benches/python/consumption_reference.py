"""A plain numpy/Python implementation of the consumption rules.

It follows the definitions in `anomaly_core::consumption` (module docs)
reading by reading, the way a Python stream consumer evaluates them, with
direct window statistics instead of the Rust code's prefix sums. Two uses:
an independent check of the Rust results (tests/test_consumption_reference.py)
and the Python baseline of the speed comparison (bench_consumption.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

DAY = 86_400
EPS = 1e-6
TYPES = ("outlier", "spike", "night_use", "plantation", "flat")


def in_band(band: tuple[int, int], second_of_day: int) -> bool:
    start, end = band[0] * 3600, band[1] * 3600
    return start <= second_of_day < end if start < end else (second_of_day >= start or second_of_day < end)


def rule_score(r: float) -> float:
    return 0.5 * r if r < 1 else 1 - 0.5 / r


def excess(x: float, ref: float, min_excess: float) -> float:
    if min_excess > 0:
        return (x - ref) / min_excess
    return math.inf if x > ref else 0.0


def window_stats(values: np.ndarray) -> tuple[int, float, float]:
    v = values[~np.isnan(values)]
    n = len(v)
    if n == 0:
        return 0, 0.0, 0.0
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    return n, mean, std


def detect_client(ts: np.ndarray, x: np.ndarray, p: dict[str, Any]) -> tuple[list[tuple[str, ...]], list[float]]:
    step = p["interval_minutes"] * 60
    per_day = DAY // step
    d0 = ts[0] // DAY
    days = int(ts[-1] // DAY - d0 + 1)
    grid = np.full((days, per_day), np.nan)
    di = (ts // DAY - d0).astype(int)
    slot = ((ts % DAY) // step).astype(int)
    grid[di, slot] = x
    night_band, B, H = tuple(p["night_band"]), p["baseline_days"], p["min_history_days"]
    night_slots = np.array([in_band(night_band, s * step) for s in range(per_day)])
    night_start = night_band[0] * 3600
    band_hours = (night_band[1] + 24 - night_band[0]) % 24
    slots_per_night = band_hours * 60 // p["interval_minutes"]
    night_sum: dict[int, float] = {}
    night_cnt: dict[int, int] = {}
    run_start = 0
    types_out, scores = [], []
    for i in range(len(x)):
        d, s, xi = int(di[i]), int(slot[i]), float(x[i])
        lo = max(0, d - B)
        r = [0.0] * 5
        c, mean, std = window_stats(grid[lo:d, s])
        if c >= H:
            dev = abs(xi - mean)
            r[0] = min(dev / max(std, p["min_std_kwh"]) / p["zscore_threshold"], excess(dev, 0.0, p["min_excess_kwh"]))
        c_all, mean_all, std_all = window_stats(grid[lo:d, :].ravel())
        same = [grid[d - k, s] for k in range(1, min(p["spike_baseline_days"], d) + 1)]
        same = [v for v in same if not math.isnan(v)]
        if same and len(same) * 2 >= p["spike_baseline_days"]:
            level = mean_all if c_all >= H else 0.0
            consecutive = i > 0 and (d * per_day + s) == (int(di[i - 1]) * per_day + int(slot[i - 1]) + 1)
            previous = float(x[i - 1]) if consecutive else 0.0
            typical = max(float(np.median(same)), level, previous)
            r[1] = min(xi / ((1 + p["spike_increase"]) * max(typical, EPS)), excess(xi, typical, p["min_excess_kwh"]))
        if night_slots[s]:
            c_n, m_n, _ = window_stats(grid[lo:d, night_slots].ravel())
            if c_n >= H:
                r[2] = min(xi / (p["night_factor"] * max(m_n, EPS)), excess(xi, m_n, p["min_excess_kwh"]))
            key = int((ts[i] - night_start) // DAY - d0 + 1)
            night_sum[key] = night_sum.get(key, 0.0) + xi
            night_cnt[key] = night_cnt.get(key, 0) + 1
            r[3] = plantation(key, night_sum, night_cnt, grid, night_slots, slots_per_night, p)
        if i == 0 or (d * per_day + s) != (int(di[i - 1]) * per_day + int(slot[i - 1]) + 1):
            run_start = i
        while x[run_start : i + 1].max() - x[run_start : i + 1].min() > p["flat_tolerance_kwh"]:
            run_start += 1
        if c_all >= H:
            run_hours = (i - run_start + 1) * step / 3600
            varies = std_all / p["flat_min_baseline_std"] if p["flat_min_baseline_std"] > 0 else math.inf
            r[4] = min(run_hours / p["flat_hours"], varies)
        fired, below, none_left = [], 0.0, 1.0
        for k, rk in enumerate(r):
            rk = 0.0 if math.isnan(rk) else max(rk, 0.0)
            sk = rule_score(rk)
            if rk >= 1:
                fired.append(TYPES[k])
                none_left *= 1 - sk
            else:
                below = max(below, sk)
        types_out.append(tuple(fired))
        scores.append(1 - none_left if fired else below)
    return types_out, scores


def plantation(key, night_sum, night_cnt, grid, night_slots, slots_per_night, p) -> float:  # type: ignore[no-untyped-def]
    K = p["plantation_nights"]
    if key + 1 < K:
        return 0.0
    first = key + 1 - K
    if first < 2:
        return 0.0
    hi = first - 1
    lo = max(0, hi - p["baseline_days"])
    c_n, m_n, _ = window_stats(grid[lo:hi, night_slots].ravel())
    c_d, m_d, _ = window_stats(grid[lo:hi, ~night_slots].ravel())
    if c_n < p["min_history_days"] or c_d < p["min_history_days"]:
        return 0.0
    lowest, total, count = math.inf, 0.0, 0
    for k in range(first, key + 1):
        needed = 1 if k == key else -(-slots_per_night // 2)
        if night_cnt.get(k, 0) < needed:
            return 0.0
        lowest = min(lowest, night_sum[k] / night_cnt[k])
        total += night_sum[k]
        count += night_cnt[k]
    heavy = lowest / (p["night_factor"] * max(m_n, EPS))
    over_days = (total / count) / (p["plantation_day_ratio"] * max(m_d, EPS))
    return min(heavy, over_days, excess(lowest, m_n, p["min_excess_kwh"]))


def detect(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Flags for `df` (client_id, timestamp, kwh), in `df`'s row order."""
    seconds = df["timestamp"].to_numpy().astype("datetime64[s]").astype(np.int64)
    kwh = df["kwh"].to_numpy(dtype=float)
    types = np.empty(len(df), dtype=object)
    scores = np.zeros(len(df))
    for _, rows in df.groupby("client_id", sort=True).indices.items():
        order = rows[np.argsort(seconds[rows], kind="stable")]
        t, s = detect_client(seconds[order], kwh[order], params)
        for j, row in enumerate(order):
            types[row] = t[j]
        scores[order] = s
    return pd.DataFrame({"types": types, "score": scores}, index=df.index)
