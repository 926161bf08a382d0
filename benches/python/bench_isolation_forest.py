"""anomaly.IsolationForest against scikit-learn's, in the same run.

    .venv/bin/python benches/python/bench_isolation_forest.py

For each data set: fit + score_samples on the training rows, best of 3,
scikit-learn with n_jobs=1 against ours with one and with two threads;
ROC-AUC of each; peak resident memory of a fresh process doing the same
work once (Python, numpy and scikit-learn imports included for both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ADBENCH = ROOT.parent / "shared" / "data" / "adbench"


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "gauss-100k":
        rng = np.random.default_rng(0)
        X = np.vstack([rng.normal(size=(99_000, 10)), rng.uniform(-6, 6, size=(1_000, 10))])
        y = np.r_[np.zeros(99_000), np.ones(1_000)]
        return X, y
    data = np.load(next(ADBENCH.glob(f"*_{name}.npz")))
    return data["X"], data["y"]


def model(tool: str, threads: int):  # type: ignore[no-untyped-def]
    if tool == "sklearn":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(random_state=0, n_jobs=threads)
    from anomaly import IsolationForest

    return IsolationForest(random_state=0, n_jobs=threads)


def run_once(tool: str, name: str, threads: int) -> float:
    X, _ = load(name)
    start = time.perf_counter()
    model(tool, threads).fit(X).score_samples(X)
    return time.perf_counter() - start


def peak_rss_mb(tool: str, name: str, threads: int) -> float:
    code = (
        "import sys, resource; sys.path.insert(0, %r); import bench_isolation_forest as b; "
        "b.run_once(%r, %r, %d); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    ) % (str(Path(__file__).parent), tool, name, threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024


def main() -> None:
    from sklearn.metrics import roc_auc_score

    names = ["gauss-100k"] + (["shuttle", "mammography"] if ADBENCH.is_dir() else [])
    results = []
    for name in names:
        X, y = load(name)
        row: dict[str, object] = {"data": name, "shape": list(X.shape)}
        for tool, threads in (("sklearn", 1), ("anomaly", 1), ("anomaly", 2)):
            key = f"{tool}_{threads}t"
            times = [run_once(tool, name, threads) for _ in range(3)]
            scores = model(tool, threads).fit(X).score_samples(X)
            row[key] = {"seconds": min(times), "auc": roc_auc_score(y, -scores), "peak_rss_mb": peak_rss_mb(tool, name, threads)}
        sk, one, two = row["sklearn_1t"], row["anomaly_1t"], row["anomaly_2t"]  # type: ignore[index]
        row["speedup_1t"] = sk["seconds"] / one["seconds"]  # type: ignore[index]
        row["speedup_2t"] = sk["seconds"] / two["seconds"]  # type: ignore[index]
        row["scaling_2t"] = one["seconds"] / two["seconds"]  # type: ignore[index]
        results.append(row)
        print(
            f"{name:<12} {str(tuple(X.shape)):<12} scikit-learn {sk['seconds']:.3f}s (AUC {sk['auc']:.4f}, {sk['peak_rss_mb']:.0f} MB)"  # type: ignore[index]
            f" | anomaly 1 thread {one['seconds']:.3f}s = {row['speedup_1t']:.1f}x (AUC {one['auc']:.4f}, {one['peak_rss_mb']:.0f} MB)"  # type: ignore[index]
            f" | 2 threads {two['seconds']:.3f}s = {row['speedup_2t']:.1f}x, scaling {row['scaling_2t']:.2f}x"  # type: ignore[index]
        )
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "bench_isolation_forest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
