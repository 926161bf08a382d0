"""Speed of anomaly.consumption against the plain Python implementation of
the same rules (consumption_reference.py), measured in the same run.

    .venv/bin/python benches/python/bench_consumption.py [CLIENTS] [DAYS]

Prints the time of each and the ratio (the reference implements the literal
preset), then the Rust time of both presets on 10,000 clients x 30 days
through pandas (DataFrame in, DataFrame out).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import consumption_reference as reference  # noqa: E402

from anomaly import consumption  # noqa: E402


def best_of(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    df, _ = consumption.simulate(clients=clients, days=days, seed=1)
    params = consumption.ConsumptionRules.preset("literal").get_params()

    rust = best_of(5, lambda: consumption.detect(df, preset="literal"))
    python = best_of(1, lambda: reference.detect(df, params))
    scores = consumption.detect(df, preset="literal")["score"]
    same = np.allclose(scores, reference.detect(df, params)["score"], rtol=1e-9, atol=1e-12)
    print(f"{len(df):,} readings ({clients} clients x {days} days), identical results: {same}")
    print(f"  python reference  {python:8.3f} s   {len(df) / python:12,.0f} readings/s")
    print(f"  anomaly (Rust)    {rust:8.3f} s   {len(df) / rust:12,.0f} readings/s")
    print(f"  ratio             {python / rust:8.0f}x faster")

    big, _ = consumption.simulate(clients=10_000, days=30, seed=1)
    for preset in ("calibrated", "literal"):
        t = best_of(3, lambda p=preset: consumption.analyze(big, preset=p))
        print(f"10,000 clients x 30 days ({len(big):,} readings), pandas in and out, {preset}: {t:.2f} s")


if __name__ == "__main__":
    main()
