"""Writes the fuzz targets' fixtures and seed corpora (run by scripts/fuzz).

Seeds are real inputs of each surface, made the way users make them: model
files saved by the installed package, the repository's example CSV, the
requests the service's tests send. libFuzzer mutates from there.

    python fuzz/seeds.py OUT_DIR    # OUT_DIR/fixtures, OUT_DIR/seeds/<target>/
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import anomaly
from anomaly import credit_risk
from anomaly.consumption import ConsumptionRules
from anomaly.forecast_interval import ForecastDetector

ROOT = Path(__file__).resolve().parent.parent


def write(out: Path, target: str, name: str, data: bytes | str) -> None:
    folder = out / "seeds" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


def applicants(n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "duration": rng.integers(4, 72, n).astype(float),
            "amount": rng.lognormal(8, 0.7, n),
            "age": rng.integers(19, 75, n).astype(float),
            "purpose": rng.choice(["A40", "A41", "A43", "A46"], n),
            "housing": rng.choice(["own", "rent", "free"], n),
        }
    )
    df.loc[rng.random(n) < 0.05, "age"] = np.nan
    return df


def credit(out: Path, fixtures: Path) -> None:
    rng = np.random.default_rng(7)
    df = applicants(400, rng)
    y = (df["duration"] / 72 + rng.random(len(df)) > 1.0).astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["duration", "amount", "age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose", "housing"]),
        ]
    )
    models = {
        "credit_model.json": Pipeline([("pre", pre), ("clf", GradientBoostingClassifier(n_estimators=5, max_depth=2))]),
        "logistic.json": Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]),
    }
    try:  # LightGBM's classifier section (file version 2), when installed
        from lightgbm import LGBMClassifier

        models["lightgbm.json"] = Pipeline([("pre", pre), ("clf", LGBMClassifier(n_estimators=5, num_leaves=4, n_jobs=1, verbose=-1))])
    except ImportError:
        pass
    try:  # XGBoost's classifier section
        from xgboost import XGBClassifier

        models["xgboost.json"] = Pipeline([("pre", pre), ("clf", XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1))])
    except ImportError:
        pass
    for name, pipe in models.items():
        pipe.fit(df, y)
        credit_risk.export_sklearn(pipe, fixtures / name)
        write(out, "credit_model", name, (fixtures / name).read_bytes())
    records = json.loads(df.head(3).to_json(orient="records"))
    write(out, "credit_applicants", "one.json", json.dumps(records[0]))
    write(out, "credit_applicants", "list.json", json.dumps(records))
    write(out, "credit_applicants", "bad.json", json.dumps([{**records[0], "age": "old"}, {"amount": None}]))
    body = json.dumps(records[0])
    requests = {
        "predict": f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n{body}",
        "predecir_chunked": f"POST /predecir HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{len(body):x}\r\n{body}\r\n0\r\n\r\n",
        "health_keepalive": "GET /health HTTP/1.1\r\nhost: x\r\n\r\nGET /ready HTTP/1.1\r\nhost: x\r\n\r\n",
        "anomalies": "GET /anomalies?variable=VAR_01&from=2026-01-01&min_score=50&limit=5&offset=1 HTTP/1.1\r\nhost: x\r\n\r\n",
        "consumption": "GET /consumption/anomalies?client=C1&severity=alta&limit=3 HTTP/1.1\r\nhost: x\r\n\r\n",
        "monthly": "GET /monthly?variable=VAR_02 HTTP/1.1\r\nhost: x\r\n\r\nGET /summary HTTP/1.1\r\nhost: x\r\n\r\n",
        "metrics": "GET /metrics HTTP/1.1\r\nhost: x\r\naccept: application/openmetrics-text\r\n\r\n",
        "missing": "DELETE /nothing HTTP/1.1\r\nhost: x\r\n\r\n",
        # Found by the fuzzer (a harness bug: an HTTP/1.0 answer after a 1.1 one was read as one body).
        "pipelined_http10": "GET /monthZly?variable=VAR_02 HTTP/1.1\r\nhost: x\r\n\r\nGET /summary=VAR_02 HTTP/1.0\r\n"
        "host: x\r\n\r\nGET /summary HTTP HTTP/1.1\r\nhott: x\r\n\r\n",
    }
    for name, text in requests.items():
        write(out, "http", name, text)


def forecast(out: Path, fixtures: Path) -> None:
    ds = pd.date_range("2026-01-01", periods=24 * 10, freq="h")
    hours = np.arange(len(ds))
    df = pd.concat(
        [
            pd.DataFrame({"ds": ds, "variable": v, "y": 50 + 10 * np.sin(hours * 2 * np.pi / 24) + i + np.random.default_rng(i).normal(0, 1, len(ds))})
            for i, v in enumerate(["VAR_01", "VAR_02"])
        ]
    )
    models = fixtures / "forecast_models"
    ForecastDetector().fit(df, variable_col="variable").save(models)
    index = (models / "detector.json").read_bytes()
    files = sorted(p for p in models.iterdir() if p.name != "detector.json")
    write(out, "forecast_model", "directory", index + b"\0" + files[0].read_bytes())
    detector = json.loads(files[0].read_bytes())
    prophet = {"format": detector["format"], "version": detector["version"], "kind": "prophet", "model": detector["model"]["model"]}
    write(out, "prophet_model", "fitted", json.dumps(prophet))
    lines = [
        json.dumps({"datetime": "2026-01-11 03:00:00", "variable_name": "VAR_01", "value": 51.2}),
        json.dumps({"datetime": "2026-01-11 04:00", "variable_name": "VAR_02", "value": "70"}),
        json.dumps({"datetime": "9999-12-31", "variable_name": "VAR_01", "value": 1e308}),
        "not json",
    ]
    write(out, "stream", "lines", "\n".join(lines) + "\n")
    # The dashboard database of the http target: readings, results and
    # consumption flags from the real jobs.
    db = fixtures / "dashboard.db"
    db.unlink(missing_ok=True)
    cli = os.environ.get("ANOMALY_CLI") or str(ROOT / "target" / "release" / "anomaly")
    url = f"sqlite:{db}"
    run = lambda *args: subprocess.run([cli, "-q", *args], check=True, cwd=fixtures)  # noqa: E731
    run("forecast", "simulate", "--db", url, "--variables", "2", "--days", "3")
    run("forecast", "train", "--db", url, "--models", str(fixtures / "db_models"))
    run("forecast", "detect", "--db", url, "--models", str(fixtures / "db_models"), "--once")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM anomalies_detector").fetchone()[0] > 0


def forest(out: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 3))
    for name, kwargs in {"axis": {}, "extended": {"extension_level": 1}}.items():
        path = out / f"forest-{name}.json"
        anomaly.IsolationForest(n_estimators=3, max_samples=16, random_state=1, **kwargs).fit(x).save(path)
        write(out, "forest_model", name, path.read_bytes())
        path.unlink()
    csv = "a,b,c\n" + "\n".join(",".join(f"{v:.3f}" for v in row) for row in x[:20]) + "\n"
    write(out, "matrix_csv", "numeric.csv", csv)
    write(out, "matrix_csv", "bad.csv", "a,b\n1,2\n3,nan\n4,\n")


def consumption(out: Path) -> None:
    for name, rules in {"default": ConsumptionRules(), "half_hourly": ConsumptionRules(interval="30min")}.items():
        write(out, "consumption_params", name, rules.to_bytes())
    lines = (ROOT / "examples" / "data" / "consumption_sample.csv").read_text().splitlines()
    write(out, "consumption_csv", "sample.csv", "\n".join(lines[:24 * 30 + 1]) + "\n")
    write(out, "consumption_csv", "odd.csv", "client_id,timestamp,kwh\nA,2024-01-01 00:00,1\nA,2024-01-01 00:30:00,2\nB,9999-12-31,1e308\n")
    for i, text in enumerate(["2026-03-29 02:30:00", "1970-01-01", "2024-02-29 23:59:59Z", "1h30m", "99999999999999999999d", "250ms"]):
        write(out, "timestamp", f"t{i}", text)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    fixtures = out / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    credit(out, fixtures)
    forecast(out, fixtures)
    forest(out)
    consumption(out)
    print(f"fixtures and seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
