"""anomaly.credit_risk.load(...) against scikit-learn itself: the exported
pipeline scores with identical probabilities and labels (0 difference for
trees, forests and boosting on binary data; <= 1e-12 for logistic
regression, whose dot product BLAS sums in its own order; <= 1e-15 for
softmax links, where numpy's AVX512 exp differs from libm in the last bit),
on German credit data with injected NaNs and unseen categories and on
synthetic wide and multiclass data. Every bad field of a request is named
at once."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import anomaly
from anomaly.credit_risk import export_sklearn, load
from anomaly.errors import EmptyInputError, InvalidFieldsError
from test_credit_export import german, models  # noqa: F401 - the German fixture and the model zoo

EXACT_TYPES = {"decision_tree", "forest", "gradient_boosting", "hist_gradient_boosting"}


def tolerance(model: anomaly.credit_risk.CreditModel) -> float:
    import json

    classifier = json.loads(model.to_json())["classifier"]
    if classifier["type"] == "logistic_regression":
        return 1e-12
    return 1e-15 if classifier.get("link") == "softmax" else 0.0


def unseen(X: pd.DataFrame) -> pd.DataFrame:
    """Applicants with categories the pipeline never saw and missing cells."""
    out = X.head(200).copy()
    out.loc[out.index[:20], "purpose"] = "A4711"
    out.loc[out.index[20:40], "savings"] = "A699"
    out.loc[out.index[40:60], "age"] = np.nan
    return out


@pytest.mark.parametrize("name", list(models(pd.DataFrame(columns=["x"])).keys()))
def test_scores_equal_scikit_learn(german: tuple[pd.DataFrame, pd.Series], name: str, tmp_path: Path) -> None:
    X, y = german
    pipeline = models(X)[name].fit(X, y)
    path = tmp_path / "model.json"
    export_sklearn(pipeline, path, sample=X)
    model = load(path)
    handle_error = "drop_first" in name  # OneHotEncoder(handle_unknown="error")
    for frame in [X] + ([] if handle_error else [unseen(X)]):
        expected = pipeline.predict_proba(frame)
        got = model.predict_proba(frame)
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance(model))
        np.testing.assert_array_equal(model.predict(frame), pipeline.predict(frame))
    np.testing.assert_array_equal(model.classes_, pipeline.classes_)
    # Same answers one thread or many, and after a pickle round trip.
    np.testing.assert_array_equal(model.predict_proba(X, n_jobs=1), model.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(X), model.predict_proba(X))


def test_pandas_str_dtype_na_and_records(german: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = german
    pipeline = models(X)["logistic"].fit(X, y)
    export_sklearn(pipeline, tmp_path / "m.json")
    model = load(tmp_path / "m.json")
    head = X.head(50)
    expected = pipeline.predict_proba(head)
    strings = head.astype({c: "string" for c in head.columns if head[c].dtype == object})  # pd.NA for missing
    numbers = strings.astype({"amount": "Float64"})  # nullable floats, pd.NA
    for frame in (strings, numbers, head.to_dict("records"), head.assign(extra=1)[::-1].iloc[::-1]):
        np.testing.assert_allclose(model.predict_proba(frame), expected, rtol=0, atol=1e-12)
    assert list(model.feature_names_in_) == list(X.columns)
    out = model.score_frame(head)
    assert list(out.columns[:2]) == ["prediction", "confidence"]
    np.testing.assert_allclose(out["confidence"], expected.max(axis=1), rtol=0, atol=1e-12)


def test_every_bad_field_is_named(german: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = german
    pipeline = models(X)["logistic_drop_first"].fit(X, y)  # handle_unknown="error"
    export_sklearn(pipeline, tmp_path / "m.json")
    model = load(tmp_path / "m.json")
    bad = X.head(3).drop(columns=["housing"]).astype({"duration": object})
    bad.loc[bad.index[0], "duration"] = "twelve"
    bad.loc[bad.index[1], "purpose"] = "A4711"
    with pytest.raises(InvalidFieldsError) as err:
        model.predict_proba(bad)
    problems = {(p["field"], p["row"]) for p in err.value.problems}
    assert problems == {("housing", None), ("duration", 0), ("purpose", 1)}, err.value.problems
    assert isinstance(err.value, ValueError) and "A4711" in str(err.value)
    with pytest.raises(EmptyInputError, match="E001"):
        model.predict_proba(X.head(0))


@pytest.mark.parametrize(
    ("clf", "n_classes", "n_features"),
    [
        (LogisticRegression(max_iter=2000), 2, 200),
        (LogisticRegression(max_iter=2000), 4, 30),
        (RandomForestClassifier(n_estimators=40, random_state=0), 5, 60),
        (GradientBoostingClassifier(n_estimators=30, random_state=0), 3, 40),
        (HistGradientBoostingClassifier(max_iter=40, random_state=0), 2, 120),
        (HistGradientBoostingClassifier(max_iter=40, random_state=0), 4, 20),
    ],
)
def test_synthetic_wide_and_multiclass(clf: Any, n_classes: int, n_features: int, tmp_path: Path) -> None:
    X, y = make_classification(
        n_samples=1500, n_features=n_features, n_informative=min(10, n_features), n_classes=n_classes, random_state=0
    )
    clf.fit(X, y)
    export_sklearn(clf, tmp_path / "m.json", sample=X[:200])
    model = load(tmp_path / "m.json")
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X), rtol=0, atol=tolerance(model))
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))


def test_cli_scores_equal_scikit_learn(german: tuple[pd.DataFrame, pd.Series], cli: str, tmp_path: Path) -> None:
    import json
    import subprocess

    X, y = german
    pipeline = models(X)["gradient_boosting"].fit(X, y)
    export_sklearn(pipeline, tmp_path / "m.json")
    applicants = unseen(X).assign(id=lambda d: [f"app-{i}" for i in range(len(d))])
    applicants.to_csv(tmp_path / "in.csv", index=False)  # NaN -> empty cells
    run = subprocess.run(
        [cli, "credit", "score", "-m", str(tmp_path / "m.json"), "-i", str(tmp_path / "in.csv"),
         "-o", str(tmp_path / "out.csv"), "--keep", "id", "--json", "-q"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    expected = pipeline.predict_proba(applicants)
    np.testing.assert_array_equal(out[["proba_1", "proba_2"]].to_numpy(), expected)
    np.testing.assert_array_equal(out["prediction"], pipeline.predict(applicants))
    assert list(out["id"]) == list(applicants["id"])
    summary = json.loads(run.stdout)
    assert summary["rows"] == len(applicants) and sum(summary["predictions"].values()) == len(applicants)

    # Every bad field, with its CSV line; exit code 2.
    bad = applicants.drop(columns=["housing"]).astype({"duration": object})
    bad.loc[bad.index[3], "duration"] = "twelve"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    run = subprocess.run(
        [cli, "credit", "score", "-m", str(tmp_path / "m.json"), "-i", str(tmp_path / "bad.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "housing: missing column" in run.stderr and 'duration (line 5): expected a number, found "twelve"' in run.stderr
