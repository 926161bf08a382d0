"""Credit scoring: anomaly against scikit-learn, in the same run.

    .venv/bin/python benches/python/bench_credit.py [--http-seconds 30]

German credit data (../shared/data/credit), the team's pipeline shape
(median imputer + scaler on numbers, constant imputer + one-hot on
categories; ordinal codes for histogram boosting). For each classifier:
one applicant at a time (preprocessing included) through scikit-learn,
through `anomaly.credit_risk` from Python, and in Rust (the `time_credit`
example); then a 100,000-row batch. scikit-learn runs with
OMP_NUM_THREADS=1. Last, `anomaly serve` with the logistic model under wrk
(Debian's `wrk`; installed by `apt-get install wrk` if missing), 32
connections on loopback.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / scikit-learn load their BLAS

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from anomaly.credit_risk import export_sklearn, load  # noqa: E402
from test_credit_export import COLUMNS, NUMERIC, WITH_NAN, one_hot_pipeline, ordinal_pipeline  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "credit" / "statlog_german_credit.data"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def german() -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(DATA, sep=" ", header=None, names=COLUMNS)
    y = df.pop("default")
    rng = np.random.default_rng(0)
    for col in WITH_NAN:
        if col in NUMERIC:
            df[col] = df[col].astype(np.float64)
        df.loc[rng.random(len(df)) < 0.05, col] = np.nan
    return df, y


def per_call(fn: Any, calls: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def rust_timings(model: Path, csv: Path, rows: int) -> dict[str, float]:
    exe = TARGET / "release" / "examples" / "time_credit"
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "anomaly-core", "--example", "time_credit"], cwd=ROOT, check=True
    )
    out = subprocess.run([str(exe), str(model), str(csv), str(rows)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def http(model: Path, applicant: dict[str, Any], seconds: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        wrk = shutil.which("wrk")
    assert wrk is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = TARGET / "release" / "anomaly"
    server = subprocess.Popen([str(cli), "serve", "--credit-model", str(model), "--addr", f"127.0.0.1:{port}", "-q"])
    try:
        time.sleep(0.5)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            body = json.dumps(applicant).replace("\\", "\\\\").replace('"', '\\"')
            lua.write(f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(
            [wrk, "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", lua.name, f"http://127.0.0.1:{port}/predict"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        metrics = json.loads(subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"], capture_output=True,
                                            text=True, check=False).stdout or "{}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    stats: dict[str, Any] = {"wrk": out, "server_errors": metrics.get("server_errors")}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            stats["requests_per_s"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            value = parts[1]
            scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            stats[f"p{parts[0][:-1]}_ms"] = float(value[: -len(unit)]) * scale[unit]
        elif "Non-2xx" in line:
            stats["non_2xx"] = int(parts[-1])
    return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-seconds", type=int, default=30)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"German credit data not found at {DATA}")
    X, y = german()
    big = X.sample(args.batch_rows, replace=True, random_state=0).reset_index(drop=True)
    work = Path(tempfile.mkdtemp())
    csv = work / "applicants.csv"
    X.to_csv(csv, index=False)
    classifiers = {
        "logistic regression": one_hot_pipeline(X, LogisticRegression(max_iter=5000)),
        "random forest (100 trees)": one_hot_pipeline(X, RandomForestClassifier(n_estimators=100, random_state=0)),
        "hist gradient boosting (100)": ordinal_pipeline(X, HistGradientBoostingClassifier(random_state=0)),
    }
    rows = []
    for name, pipeline in classifiers.items():
        pipeline.fit(X, y)
        path = work / "model.json"
        export_sklearn(pipeline, path, sample=X)
        model = load(path)
        singles = [X.iloc[[i]] for i in range(200)]
        forms = [json.loads(s.to_json(orient="records"))[0] for s in singles]  # as a web form arrives
        sk_one = per_call(lambda i: pipeline.predict_proba(singles[i]), 200)
        py_one = per_call(lambda i: model.predict_proba(singles[i]), 200)
        sk_form = per_call(lambda i: pipeline.predict_proba(pd.DataFrame([forms[i]])), 200)
        py_form = per_call(lambda i: model.predict_proba(forms[i]), 200)
        rust = rust_timings(path, csv, args.batch_rows)
        t = time.perf_counter()
        pipeline.predict_proba(big)
        sk_batch = time.perf_counter() - t
        t = time.perf_counter()
        model.predict_proba(big)
        py_batch = time.perf_counter() - t
        rows.append({
            "model": name, "sklearn_row_ms": sk_one * 1e3, "python_row_ms": py_one * 1e3,
            "sklearn_form_ms": sk_form * 1e3, "python_form_ms": py_form * 1e3, "form_ratio": sk_form / py_form,
            "rust_row_us": rust["single_us"], "row_ratio_python": sk_one / py_one,
            "row_ratio_rust": sk_one / (rust["single_us"] * 1e-6),
            "sklearn_batch_s": sk_batch, "python_batch_s": py_batch, "rust_batch_s": rust["batch_s"],
            "batch_ratio_python": sk_batch / py_batch,
        })  # fmt: skip
        r = rows[-1]
        print(
            f"{name:30s} one-row DataFrame: sklearn {r['sklearn_row_ms']:.2f} ms, anomaly from Python "
            f"{r['python_row_ms']:.3f} ms ({r['row_ratio_python']:.0f}x), Rust {r['rust_row_us']:.1f} us "
            f"({r['row_ratio_rust']:.0f}x) | form dict: sklearn {r['sklearn_form_ms']:.2f} ms, anomaly "
            f"{r['python_form_ms']:.3f} ms ({r['form_ratio']:.0f}x) | "
            f"{args.batch_rows} rows: sklearn {sk_batch:.2f} s, Python {py_batch:.3f} s "
            f"({r['batch_ratio_python']:.1f}x), Rust {rust['batch_s']:.3f} s ({rust['threads']} threads)",
            flush=True,
        )
    pipeline = classifiers["logistic regression"]
    export_sklearn(pipeline, work / "logistic.json")
    applicant = json.loads(X.head(1).to_json(orient="records"))[0]
    stats = http(work / "logistic.json", applicant, args.http_seconds)
    print(stats.pop("wrk"))
    print(json.dumps({"http_logistic": stats, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
