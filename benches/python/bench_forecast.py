"""anomaly.Prophet / ForecastDetector against Python prophet, in the same run.

    .venv/bin/python benches/python/bench_forecast.py                  # everything, best of 3
    .venv/bin/python benches/python/bench_forecast.py --repeat 1 --sections models,cv   # a dry run

Sections (--sections, comma-separated; all by default):
- plant: one 4032-point 5-minute series (daily + weekly seasonality) fitted in
  both modes, predicted over the history plus a week with 1000-draw intervals;
  25 variables x 14 days trained, one new datetime detected across them.
- models: on prophet's own tests/data.csv (510 daily rows) and on NAB's
  ambient_temperature_system_failure as hourly means (7267 rows, 2013-07 to
  2014-05), fit and predict (history + 30 periods, 1000-draw intervals) of
  custom + US country holidays; logistic growth (cap 1.2 x max, floor
  0.8 x min) with the same holidays; two regressors (a smooth additive one and
  a binary multiplicative one, both functions of ds, so the future has them).
  Peak memory: each (tool, data, model) runs again in a fresh subprocess after
  a warm-up; per phase the kernel's peak-RSS mark is reset (/proc/self/clear_refs)
  and the peak above the phase's starting RSS is reported, plus the peak RSS of
  Stan's own process for prophet's fit (RUSAGE_CHILDREN). Our Rust heap is in
  our process; Stan's is not, hence the separate column.
- cv: cross_validation on data.csv with the holidays model, initial 365 days,
  period 30 days, horizon 30 days (same cutoffs, checked); anomaly solves the
  cutoffs in parallel in Rust, prophet refits them one by one (parallel=None).

Prints times and ratios; writes test-artifacts/bench_forecast.json
({name: {"anomaly": s, "prophet": s, *_peak_mib}}, plus "_meta").
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

import prophet
import prophet.diagnostics
from cmdstanpy.utils import get_logger

# Quiet Stan's per-fit lines and both tools' "Seasonality has period of 365.25 days ..." per
# cross-validation call; cmdstanpy resets its level the first time it is asked for its logger.
get_logger()
for _name in ("cmdstanpy", "prophet", "anomaly"):
    logging.getLogger(_name).setLevel(logging.ERROR)

import anomaly  # noqa: E402
import anomaly.diagnostics  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAB = Path(os.environ.get("ANOMALY_SHARED_DATA", ROOT.parent / "shared" / "data")) / "nab"
SETTINGS: dict[str, Any] = dict(interval_width=0.95, changepoint_prior_scale=0.05, daily_seasonality=True, weekly_seasonality=True, yearly_seasonality=False)
TOOLS: dict[str, Any] = {"anomaly": anomaly.Prophet, "prophet": prophet.Prophet}
HOLIDAYS = pd.DataFrame(
    {
        "holiday": ["black_friday", "black_friday", "xmas_week", "xmas_week"],
        "ds": pd.to_datetime(["2012-11-23", "2013-11-29", "2012-12-25", "2013-12-25"]),
        "lower_window": [0, 0, -3, -3],
        "upper_window": [3, 3, 3, 3],
        "prior_scale": [5.0, 5.0, 10.0, 10.0],
    }
)


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# -- data and models of the "models" and "cv" sections -------------------------------------------


def prophet_daily() -> pd.DataFrame:
    return pd.read_csv(Path(prophet.__file__).parent / "tests" / "data.csv", parse_dates=["ds"])


def ambient_hourly() -> pd.DataFrame:
    raw = pd.read_csv(NAB / "realKnownCause" / "ambient_temperature_system_failure.csv", parse_dates=["timestamp"])
    hourly = raw.set_index("timestamp")["value"].resample("h").mean().dropna()  # the sensor's gaps dropped
    return hourly.rename_axis("ds").rename("y").reset_index()


DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "data.csv": (prophet_daily, "D"),
    "nab_ambient_hourly": (ambient_hourly, "h"),
}
MODELS = ("holidays", "logistic_holidays", "regressors")


def model(tool: str, name: str) -> Any:
    m = TOOLS[tool](growth="logistic" if name == "logistic_holidays" else "linear", holidays=None if name == "regressors" else HOLIDAYS)
    if name == "regressors":
        return m.add_regressor("load").add_regressor("promo", mode="multiplicative")
    return m.add_country_holidays("US")


def with_columns(frame: pd.DataFrame, name: str, history: pd.DataFrame) -> pd.DataFrame:
    """cap/floor (logistic) or the regressors, as functions of ds and the history, so the future gets them too."""
    if name == "logistic_holidays":
        return frame.assign(cap=1.2 * history["y"].max(), floor=0.8 * history["y"].min())
    if name == "regressors":
        days = (frame["ds"] - pd.Timestamp("2012-01-01")).dt.total_seconds() / 86400
        return frame.assign(load=np.sin(2 * np.pi * days / 9.0), promo=(frame["ds"].dt.day <= 3).astype(float))
    return frame


def frames(dataset: str, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training frame, future frame: the history plus 30 periods at the data's frequency)."""
    load, freq = DATASETS[dataset]
    raw = load()
    df = with_columns(raw, name, raw)
    last = df["ds"].max()
    future = pd.concat([df[["ds"]], pd.DataFrame({"ds": pd.date_range(last, periods=31, freq=freq)[1:]})], ignore_index=True)
    return df, with_columns(future, name, raw)


# -- peak memory, in a fresh subprocess per (tool, data, model) ---------------------------------


def _rss_kib() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) in KiB, from /proc/self/status."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _phase_peak_mib(fn: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the OS, so the starting RSS is live data
    except (OSError, AttributeError):
        pass
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    start, _ = _rss_kib()
    out = fn()
    _, peak = _rss_kib()
    return out, (peak - start) / 1024


def memory_child(tool: str, dataset: str, name: str) -> None:
    """Runs in the subprocess: a warm-up (imports, Stan's binary, holiday tables), then the measured phases."""
    df, future = frames(dataset, name)
    model(tool, name).fit(df).predict(future)
    m, out = model(tool, name), {}
    _, out["fit"] = _phase_peak_mib(lambda: m.fit(df))
    _, out["predict"] = _phase_peak_mib(lambda: m.predict(future))
    if dataset == "data.csv" and name == "holidays":
        _, out["cv"] = _phase_peak_mib(lambda: cross_validation(tool, m))
    # Stan's process (prophet's fits run cmdstan as a child): its peak RSS, warm-up included.
    out["stan_child"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if tool == "prophet" else 0.0
    print(json.dumps(out))


def memory(tool: str, dataset: str, name: str) -> dict[str, float] | None:
    cmd = [sys.executable, __file__, "--memory-child", tool, dataset, name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  memory of {tool} {dataset} {name} not measured: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- sections ----------------------------------------------------------------------------------


def plant_series(seed: int, n: int = 4032) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + seed + 0.002 * t + 5 * np.sin(2 * np.pi * t / 288) + 2 * np.sin(2 * np.pi * t / 2016) + rng.normal(0, 1, n)
    return pd.DataFrame({"ds": pd.date_range("2024-03-04", periods=n, freq="5min"), "y": y})


def plant(results: dict[str, dict[str, float]], repeat: int) -> None:
    df = plant_series(0)
    for mode in ("additive", "multiplicative"):
        ours_fit = best(lambda: anomaly.Prophet(seasonality_mode=mode, **SETTINGS).fit(df), repeat)
        theirs_fit = best(lambda: prophet.Prophet(seasonality_mode=mode, **SETTINGS).fit(df), repeat)
        ours = anomaly.Prophet(seasonality_mode=mode, seed=0, **SETTINGS).fit(df)
        theirs = prophet.Prophet(seasonality_mode=mode, **SETTINGS).fit(df)
        future = theirs.make_future_dataframe(periods=7 * 288, freq="5min")
        results[f"fit_{mode}"] = {"anomaly": ours_fit, "prophet": theirs_fit}
        results[f"predict_{mode}"] = {"anomaly": best(lambda: ours.predict(future), repeat), "prophet": best(lambda: theirs.predict(future), repeat)}

    frames_ = []
    for v in range(25):
        s = plant_series(v).rename(columns={"ds": "datetime", "y": "value"})
        s["variable_name"] = f"var{v:02d}"
        frames_.append(s)
    long = pd.concat(frames_, ignore_index=True)
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
    results["detect_one_datetime_25_variables"] = {"anomaly": best(lambda: det.detect(new, **cols), repeat=20)}


def models(results: dict[str, dict[str, float]], repeat: int, measure_memory: bool) -> None:
    for dataset in DATASETS:
        for name in MODELS:
            df, future = frames(dataset, name)
            fitted = {tool: model(tool, name).fit(df) for tool in TOOLS}  # also warms both up
            fit = {tool: best(lambda: model(tool, name).fit(df), repeat) for tool in TOOLS}
            predict = {tool: best(lambda: fitted[tool].predict(future), repeat) for tool in TOOLS}
            results[f"fit_{name}_{dataset}"] = fit
            results[f"predict_{name}_{dataset}"] = predict
            results[f"fit_predict_{name}_{dataset}"] = {tool: fit[tool] + predict[tool] for tool in TOOLS}
            if measure_memory:
                for tool in TOOLS:
                    peaks = memory(tool, dataset, name)
                    if peaks is None:
                        continue
                    for phase in ("fit", "predict"):
                        results[f"{phase}_{name}_{dataset}"][f"{tool}_peak_mib"] = peaks[phase]
                    if tool == "prophet":
                        results[f"fit_{name}_{dataset}"]["prophet_stan_peak_mib"] = peaks["stan_child"]
                    if "cv" in peaks:
                        results.setdefault("cv_holidays_data.csv", {})[f"{tool}_peak_mib"] = peaks["cv"]


def cross_validation(tool: str, m: Any) -> pd.DataFrame:
    cv = anomaly.diagnostics.cross_validation if tool == "anomaly" else prophet.diagnostics.cross_validation  # type: ignore[attr-defined]
    return cv(m, initial="365 days", period="30 days", horizon="30 days", disable_tqdm=True)


def cv(results: dict[str, dict[str, float]], repeat: int) -> None:
    df, _ = frames("data.csv", "holidays")
    fitted = {tool: model(tool, "holidays").fit(df) for tool in TOOLS}
    cutoffs = {tool: sorted(cross_validation(tool, m)["cutoff"].unique()) for tool, m in fitted.items()}
    if cutoffs["anomaly"] != cutoffs["prophet"]:
        raise SystemExit(f"cross_validation cutoffs differ: {cutoffs}")
    row = results.setdefault("cv_holidays_data.csv", {})
    row.update({tool: best(lambda: cross_validation(tool, m), repeat) for tool, m in fitted.items()})
    row["cutoffs"] = float(len(cutoffs["anomaly"]))


def report(results: dict[str, dict[str, float]]) -> None:
    for name, r in results.items():
        line = f"{name:<50} anomaly {r['anomaly'] * 1000:9.2f} ms"
        if "prophet" in r:
            line += f"  prophet {r['prophet'] * 1000:9.1f} ms  {r['prophet'] / r['anomaly']:6.1f}x"
        peaks = [f"{k.removesuffix('_peak_mib')} {v:.1f}" for k, v in r.items() if k.endswith("_peak_mib")]
        if peaks:
            line += "  peak MiB: " + ", ".join(peaks)
        if "cutoffs" in r:
            line += f"  ({r['cutoffs']:.0f} cutoffs)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings (default 3)")
    parser.add_argument("--sections", default="plant,models,cv", help="comma-separated: plant, models, cv")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-phase peak-memory subprocesses")
    parser.add_argument("--memory-child", nargs=3, metavar=("TOOL", "DATA", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    sections = set(args.sections.split(","))
    if not NAB.is_dir():
        print(f"NAB series not found at {NAB}: the models section runs on data.csv only")
        DATASETS.pop("nab_ambient_hourly")
    results: dict[str, dict[str, float]] = {}
    if "plant" in sections:
        plant(results, args.repeat)
    if "models" in sections:
        models(results, args.repeat, measure_memory=not args.no_memory)
    if "cv" in sections:
        cv(results, args.repeat)
    report(results)
    meta = {
        "argv": sys.argv[1:],
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "prophet": prophet.__version__,
        "anomaly": getattr(anomaly, "__version__", None),
        "loadavg_1min": os.getloadavg()[0],
    }
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "bench_forecast.json").write_text(json.dumps({**results, "_meta": meta}, indent=2))


if __name__ == "__main__":
    main()
