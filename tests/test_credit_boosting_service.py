"""`anomaly serve` with LightGBM and XGBoost pipelines (issue 18): the same
validation and errors as scikit-learn's models, a batch of applicants scored
with the libraries' own probabilities, and every bad field of a batch named
with its row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.credit_risk import export_sklearn
from test_credit_export import german, one_hot_pipeline  # noqa: F401 - fixture
from test_credit_service import Server, records


def classifier(library: str) -> Any:
    if library == "lightgbm":
        return pytest.importorskip("lightgbm").LGBMClassifier(n_estimators=40, num_leaves=8, n_jobs=1, verbose=-1)
    return pytest.importorskip("xgboost").XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1)


@pytest.fixture(scope="module", params=["lightgbm", "xgboost"])
def service(request: pytest.FixtureRequest, german: tuple[pd.DataFrame, pd.Series], cli: str,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any, pd.DataFrame]]:  # fmt: skip
    X, y = german
    pipeline = one_hot_pipeline(X, classifier(request.param)).fit(X, (y == y.max()).astype(int))
    path: Path = tmp_path_factory.mktemp(request.param) / "credit.json"
    export_sklearn(pipeline, path, sample=X)
    server = Server(cli, path)
    yield server, pipeline, X
    err = server.stop()
    assert server.process.returncode == 0, err


def test_a_batch_gets_the_librarys_probabilities(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, pipeline, X = service
    # 300 rows: XGBoost's binary models take their features column by column from 256.
    batch = X.head(300)
    status, out = server.post("/predict", records(batch))
    assert status == 200 and len(out) == len(batch)
    expected = pipeline.predict_proba(batch).astype(np.float64)  # XGBoost answers float32
    got = np.array([[r["probabilities"][str(c)] for c in pipeline.classes_] for r in out])
    np.testing.assert_array_equal(got, expected)
    assert [r["prediction"] for r in out] == [int(p) for p in pipeline.predict(batch)]


def test_every_bad_field_of_a_batch_is_named_with_its_row(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, _, X = service
    batch = records(X.head(4))
    numeric = next(c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]))
    batch[1][numeric] = "lots"
    del batch[3][X.columns[0]]
    batch[2] = ["not", "an", "applicant"]
    status, out = server.post("/predict", batch)
    assert status == 400 and out["error"]["code"] == "E002"
    assert any(f["field"] == "body" and f["row"] == 2 for f in out["error"]["fields"]), out
    batch[2] = records(X.head(3))[2]
    status, out = server.post("/predict", batch)
    assert status == 400
    named = {(f["field"], f["row"]) for f in out["error"]["fields"]}
    assert (numeric, 1) in named and (X.columns[0], 3) in named, named


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_cli_scores_a_csv_with_the_librarys_probabilities(
    library: str, german: tuple[pd.DataFrame, pd.Series], cli: str, tmp_path: Path  # noqa: F811
) -> None:
    """`anomaly credit score` on a CSV (NaN as empty cells) equals the library's predict_proba."""
    import subprocess

    X, y = german
    pipeline = one_hot_pipeline(X, classifier(library)).fit(X, (y == y.max()).astype(int))
    export_sklearn(pipeline, tmp_path / "m.json", sample=X)
    X.to_csv(tmp_path / "in.csv", index=False)
    run = subprocess.run(
        [cli, "credit", "score", "-m", str(tmp_path / "m.json"), "-i", str(tmp_path / "in.csv"),
         "-o", str(tmp_path / "out.csv"), "-q"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    expected = pipeline.predict_proba(pd.read_csv(tmp_path / "in.csv")).astype(np.float64)
    np.testing.assert_array_equal(out[["proba_0", "proba_1"]].to_numpy(), expected)
    np.testing.assert_array_equal(out["prediction"], pipeline.predict(pd.read_csv(tmp_path / "in.csv")))
