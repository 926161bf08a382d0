"""anomaly.IsolationForest: scikit-learn's estimator contract, errors, persistence."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import IsolationForest as SkIsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

import anomaly
from anomaly import IsolationForest
from anomaly.isolation_forest import summarize


# Every check passes: no expected failures to list.
@parametrize_with_checks([IsolationForest(random_state=0), IsolationForest(random_state=0, extension_level=1, n_jobs=1)])
def test_scikit_learn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(500, 4)), rng.uniform(-8, 8, size=(10, 4))])


def test_outliers_score_lowest(data: np.ndarray) -> None:
    forest = IsolationForest(random_state=1).fit(data)
    scores = forest.score_samples(data)
    assert ((scores >= -1) & (scores < 0)).all()
    assert set(np.argsort(scores)[:8]) <= set(range(500, 510))
    np.testing.assert_array_equal(forest.decision_function(data), scores - forest.offset_)
    assert forest.offset_ == -0.5 and forest.max_samples_ == 256 and forest.n_features_in_ == 4


def test_same_seed_same_model_any_threads(data: np.ndarray) -> None:
    a = IsolationForest(random_state=7, n_jobs=1).fit(data).score_samples(data)
    b = IsolationForest(random_state=7, n_jobs=2).fit(data).score_samples(data)
    c = IsolationForest(random_state=8).fit(data).score_samples(data)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_huge_n_jobs_is_capped_at_the_cores(data: np.ndarray) -> None:
    """n_jobs=10**6 once started thousands of threads; 10**30 overflowed the binding."""
    reference = IsolationForest(random_state=0, n_jobs=1).fit(data)
    scores = reference.score_samples(data)
    for n_jobs in (10**6, 10**30, -(10**6)):
        model = IsolationForest(random_state=0, n_jobs=n_jobs).fit(data)
        np.testing.assert_array_equal(model.score_samples(data), scores)
        assert 1 <= model._threads() <= min(os.cpu_count() or 1, model.n_estimators)
    # The binding caps too, for callers that bypass the estimator.
    np.testing.assert_array_equal(reference._forest.score_samples(np.ascontiguousarray(data, dtype=np.float32), 10**6), scores)


def test_contamination_flags_that_fraction(data: np.ndarray) -> None:
    for c in (0.01, 0.05, 0.2):
        labels = IsolationForest(contamination=c, random_state=0).fit_predict(data)
        assert abs((labels == -1).mean() - c) <= 1 / len(data) + 1e-12


def test_warm_start_adds_the_same_trees(data: np.ndarray) -> None:
    warm = IsolationForest(n_estimators=40, warm_start=True, random_state=3).fit(data)
    warm.set_params(n_estimators=100).fit(data)
    full = IsolationForest(n_estimators=100, random_state=3).fit(data)
    assert warm.n_estimators_ == 100
    np.testing.assert_array_equal(warm.score_samples(data), full.score_samples(data))
    with pytest.raises(ValueError, match="must be larger or equal"):
        warm.set_params(n_estimators=50).fit(data)
    with pytest.warns(UserWarning, match="without increasing n_estimators"):
        warm.set_params(n_estimators=100).fit(data)


def test_pickle_deepcopy_clone_and_files(tmp_path, data: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    forest = IsolationForest(random_state=0, contamination=0.05, extension_level=2).fit(data)
    expected = forest.score_samples(data)
    for other in (pickle.loads(pickle.dumps(forest)), copy.deepcopy(forest)):
        np.testing.assert_array_equal(other.score_samples(data), expected)
        assert other.offset_ == forest.offset_
    assert clone(forest).get_params() == forest.get_params()
    path = tmp_path / "forest.json"
    forest.save(path)
    loaded = IsolationForest.load(path)
    np.testing.assert_array_equal(loaded.score_samples(data), expected)
    np.testing.assert_array_equal(loaded.predict(data), forest.predict(data))


@pytest.mark.parametrize(
    "blob",
    [
        b"garbage",
        b'{"format":"anomaly-model","version":1,"kind":"isolation_forest","model":{"trees":[]}}',
        b'{"format":"anomaly-model","version":7,"kind":"isolation_forest","model":{}}',
    ],
)
def test_corrupt_model_files(tmp_path, blob: bytes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.json"
    path.write_bytes(blob)
    with pytest.raises(anomaly.ModelFileError):
        IsolationForest.load(path)


def test_tampered_tree_is_refused(tmp_path, data: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    import json

    path = tmp_path / "forest.json"
    IsolationForest(n_estimators=3, random_state=0).fit(data).save(path)
    doc = json.loads(path.read_text())
    doc["model"]["trees"][1]["left"][0] = 10**6
    path.write_text(json.dumps(doc))
    with pytest.raises(anomaly.ModelFileError, match="tree 1"):
        IsolationForest.load(path)


def test_pandas_feature_names_like_scikit_learn(data: np.ndarray) -> None:
    df = pd.DataFrame(data, columns=["voltage", "current", "power", "temperature"])
    ours, theirs = IsolationForest(random_state=0).fit(df), SkIsolationForest(random_state=0).fit(df)
    assert list(ours.feature_names_in_) == list(theirs.feature_names_in_)
    renamed = df.rename(columns={"power": "potencia"})
    with pytest.raises(ValueError) as ours_err:
        ours.score_samples(renamed)
    with pytest.raises(ValueError) as theirs_err:
        theirs.score_samples(renamed)
    assert str(ours_err.value) == str(theirs_err.value).replace("IsolationForest", "IsolationForest")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours.score_samples(data)
    assert any("feature names" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the feature-names warning comes first, as in scikit-learn
        with pytest.raises(ValueError, match="X has 3 features, but IsolationForest is expecting 4 features"):
            ours.score_samples(data[:, :3])


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.empty((0, 3)), "0 sample"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert"),
        (np.ones(5), "Expected 2D array"),
    ],
    ids=["empty", "nan", "inf", "strings", "1d"],
)
def test_bad_input_gets_clear_errors(X: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IsolationForest().fit(X)


def test_one_row_fits_as_in_scikit_learn() -> None:
    X = np.arange(3.0).reshape(1, 3)
    ours, theirs = IsolationForest().fit(X), SkIsolationForest().fit(X)
    np.testing.assert_array_equal(ours.score_samples(X), theirs.score_samples(X))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_non_numeric_dataframe_column_is_named() -> None:
    df = pd.DataFrame({"voltage": [1.0, 2.0, 3.0], "site": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="could not convert"):
        IsolationForest().fit(df)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="contamination"):
        IsolationForest(contamination=0.7).fit(np.ones((5, 2)))
    with pytest.raises(anomaly.ParameterError, match="extension_level"):
        IsolationForest(extension_level=2).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(anomaly.ParameterError, match="max_features"):
        IsolationForest(max_features=5).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.warns(UserWarning, match="max_samples .* greater than the total number of samples"):
        forest = IsolationForest(max_samples=1000).fit(np.random.default_rng(0).normal(size=(20, 2)))
    assert forest.max_samples_ == 20


def test_summary_states() -> None:
    labels = np.array([1] * 95 + [-1] * 5)
    assert summarize(labels) == {"total": 100, "anomalies": 5, "percent": 5.0, "state": "Precaución"}
    assert summarize(labels, caution_percent=10, critical_percent=20)["state"] == "Normal"
    assert summarize(np.array([-1, -1, 1]))["state"] == "Crítico"
    with pytest.raises(anomaly.ShapeError):
        summarize(np.array([0, 1]))
    with pytest.raises(anomaly.ParameterError):
        summarize(labels, caution_percent=30, critical_percent=20)


def test_gil_is_released_while_scoring() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 8)).astype(np.float32)
    forest = IsolationForest(random_state=0, n_jobs=1).fit(X[:1000])
    ticks: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    start = time.perf_counter()
    forest._forest.score_samples(X, 1)
    end = time.perf_counter()
    done.set()
    thread.join()
    assert len([t for t in ticks if start < t < end]) >= 3


def test_python_model_scores_the_same_in_the_cli(tmp_path, cli, data: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess

    df = pd.DataFrame(data, columns=["voltage", "current", "power", "temperature"])
    forest = IsolationForest(random_state=0, contamination=0.02).fit(df)
    model = tmp_path / "forest.json"
    forest.save(model)
    # Columns in another order, plus an extra one: the CLI selects by name.
    src = tmp_path / "today.csv"
    df[["temperature", "power", "current", "voltage"]].assign(site="north").to_csv(src, index=False)
    out = tmp_path / "scores.csv"
    proc = subprocess.run(
        [cli, "iforest", "score", "--model", model, "--input", src, "--output", out, "--json", "-q"],
        capture_output=True, text=True, check=True,
    )
    scores = pd.read_csv(out)
    expected = forest.score_samples(df)
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(scores["label"].to_numpy(), forest.predict(df))
    summary = json.loads(proc.stdout)
    assert summary == {**summarize(forest.predict(df)), "seconds": summary["seconds"]}
    assert IsolationForest.load(model).feature_names_in_.tolist() == list(df.columns)


def test_model_loaders_refuse_fifos_devices_and_directories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from anomaly import ForecastDetector
    from anomaly.credit_risk import load as load_credit

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A FIFO with no writer would block a plain read forever; /dev/zero never ends.
    for path in [fifo, "/dev/zero", tmp_path]:
        with pytest.raises(anomaly.ModelFileError, match="not a regular file"):
            IsolationForest.load(path)
        with pytest.raises(anomaly.ModelFileError, match="not a regular file"):
            load_credit(path)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    os.symlink("/dev/zero", model_dir / "detector.json")
    with pytest.raises(anomaly.ModelFileError, match="not a regular file"):
        ForecastDetector.load(model_dir)
