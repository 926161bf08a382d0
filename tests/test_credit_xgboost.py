"""XGBoost's ``XGBClassifier`` exported by :mod:`anomaly.credit_risk`.

Two scorers are compared with the installed xgboost's ``predict_proba`` and
``predict``: :func:`_reference_proba`, a NumPy float32 / libm ``expf`` scorer
that reads only the exported document and implements the ``xgboost`` section
of ``docs/credit_model_format.md`` (an executable spec: it must match bit for
bit), and the Rust scorer behind ``anomaly.credit_risk.load`` (exactly, too).

Cases: binary, reg:logistic, multiclass (3 and 5 classes), NaN, ``missing=-999``,
early stopping, scikit-learn pipelines (one-hot, ordinal codes), an int64 array
(values beyond 2^24), native pandas categories (``enable_categorical``).
Every refused option is named in the error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from anomaly.credit_risk import FORMAT, export_sklearn, load, to_document
from anomaly.errors import UnsupportedModelError
from test_credit_export import (  # noqa: F401 - german is a fixture
    FittedCases,
    categorical,
    f64,
    german,
    numbers,
    numeric,
    one_hot_pipeline,
    read_input,
    run_node,
)

xgb = pytest.importorskip("xgboost")

F32 = np.float32
_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


# ------------------------------------------------------------------ the spec, in NumPy float32


def _expf(x: np.float32) -> np.float32:
    """The C library's expf, as XGBoost calls it (numpy's float32 exp is its own SIMD code)."""
    return F32(_libm.expf(float(x)))


def _leaves(tree: dict[str, Any], X32: np.ndarray, missing: np.float32 | None) -> np.ndarray:
    """Each row's leaf: missing (NaN, or == missing) by default_left; categorical
    nodes: x < 0 or >= 2^24 left, else right iff (int)x is listed; numerical:
    left iff x32 < thr32."""
    left, right = np.array(tree["left"]), np.array(tree["right"])
    feature = np.array(tree["feature"])
    value = np.array([f64(v) for v in tree["value"]], dtype=np.float64).astype(F32)
    default_left = np.array(tree["default_left"], dtype=bool)
    is_cat = np.array([c is not None for c in tree["categories_right"]])
    node = np.zeros(len(X32), dtype=np.int64)
    while (live := np.flatnonzero(left[node] != -1)).size:
        k = node[live]
        v = X32[live, feature[k]]
        is_missing = np.isnan(v)
        if missing is not None:
            is_missing |= v == missing
        with np.errstate(invalid="ignore"):
            go_left = v < value[k]
        for n in np.unique(k[is_cat[k]]):
            at = np.flatnonzero(k == n)
            c = v[at]
            with np.errstate(invalid="ignore"):
                outside = (c < 0) | (c >= F32(2.0**24))
                code = np.where(outside | np.isnan(c), -1, c).astype(np.int64)
            go_left[at] = outside | ~np.isin(code, np.array(tree["categories_right"][n], dtype=np.int64))
        go_left = np.where(is_missing, default_left[k], go_left)
        node[live] = np.where(go_left, left[k], right[k])
    return node


def _margin(clf: dict[str, Any], X32: np.ndarray) -> np.ndarray:
    """m[k] = base_margin[k], then each tree's leaf added to m[group] in f32, in order."""
    missing = None if clf["missing"] is None else F32(f64(clf["missing"]))
    base = np.array([f64(b) for b in clf["base_margin"]], dtype=np.float64).astype(F32)
    m = np.tile(base, (len(X32), 1))
    for tree in clf["trees"]:
        value = np.array([f64(v) for v in tree["value"]], dtype=np.float64).astype(F32)
        g = tree["group"]
        m[:, g] = m[:, g] + value[_leaves(tree, X32, missing)]
        assert m.dtype == F32
    return m


def _link(clf: dict[str, Any], m: np.ndarray) -> np.ndarray:
    if clf["objective"] == "binary:logistic":
        out = np.empty((len(m), 2), dtype=F32)
        for r, z in enumerate(m[:, 0]):
            p = F32(1.0) / ((_expf(min(-z, F32(88.7))) + F32(1.0)) + F32(1e-16))
            out[r] = [F32(1.0) - p, p]
        return out
    out = np.empty(m.shape, dtype=F32)
    for r, row in enumerate(m):
        wmax = row[0]
        for v in row[1:]:
            wmax = max(v, wmax)
        e = [_expf(v - wmax) for v in row]
        wsum = 0.0  # f64, in order
        for v in e:
            wsum += float(v)
        out[r] = [v / F32(wsum) for v in e]
    return out


def _reference_proba(doc: dict[str, Any], X: Any) -> np.ndarray:
    """predict_proba of an exported XGBoost document, from the document alone (float32 values)."""
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X), columns=[c["name"] for c in doc["input"]["columns"]])
    table = read_input(doc, X)
    if doc["preprocessing"] is not None:
        table = run_node(doc["preprocessing"], table)
    clf = doc["classifier"]
    assert clf["type"] == "xgboost" and len(table) == clf["n_features"], "ShapeError"
    with np.errstate(over="ignore"):
        X32 = np.column_stack([numbers(c) for c in table]).astype(F32)
    return _link(clf, _margin(clf, X32))


def _reference_predict(doc: dict[str, Any], X: Any) -> np.ndarray:
    """binary: class 1 iff p > 0.5; multiclass: the first argmax."""
    proba = _reference_proba(doc, X)
    classes = np.array(doc["classes"], dtype=object)
    if doc["classifier"]["objective"] == "binary:logistic":
        return classes[(proba[:, 1] > F32(0.5)).astype(np.int64)]
    return classes[np.argmax(proba, axis=1)]


def check_document(doc: dict[str, Any]) -> None:
    """The xgboost section's shape: strict JSON, parallel arrays over all nodes."""
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert doc["format"] == FORMAT and doc["version"] == 2
    assert doc["sklearn_version"] and doc["xgboost_version"] == xgb.__version__
    clf = doc["classifier"]
    assert set(clf) == {"type", "n_features", "objective", "base_margin", "missing", "trees"}
    assert clf["objective"] in ("binary:logistic", "multi:softprob")
    K = 1 if clf["objective"] == "binary:logistic" else len(doc["classes"])
    assert len(clf["base_margin"]) == K
    assert all(float(F32(b)) == b for b in clf["base_margin"])
    assert clf["missing"] is None or float(F32(f64(clf["missing"]))) == f64(clf["missing"])
    assert clf["trees"]
    for tree in clf["trees"]:
        assert set(tree) == {"group", "left", "right", "feature", "value", "default_left", "categories_right"}
        assert 0 <= tree["group"] < K
        n = len(tree["left"])
        for key in ("right", "feature", "value", "default_left", "categories_right"):
            assert len(tree[key]) == n, key
        for i in range(n):
            v = f64(tree["value"][i])
            assert v != v or float(F32(v)) == v  # float32 values
            if tree["left"][i] == -1:
                assert tree["right"][i] == -1 and tree["categories_right"][i] is None
            else:
                assert 0 < tree["left"][i] < n and 0 < tree["right"][i] < n
                assert 0 <= tree["feature"][i] < clf["n_features"]


def export(model: Any, sample: Any = None) -> dict[str, Any]:
    doc = to_document(model, sample=sample)
    check_document(doc)
    return doc


# ------------------------------------------------------------------ data and models


def synthetic(
    n_classes: int = 2, n: int = 1200, seed: int = 0, nan: float = 0.0, sentinel: float | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Six features; a class from a noisy score cut at its quantiles; optional
    NaN (or a sentinel value) in the first two features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 5] = rng.integers(0, 4, n)
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] - 0.3 * X[:, 5] + rng.normal(0, 0.7, n)
    for j in (0, 1):
        hit = rng.random(n) < nan
        if hit.any():
            X[hit, j] = np.nan if sentinel is None else sentinel
            score = score + 1.5 * hit
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(6)]), y


def classifier(**params: Any) -> Any:
    defaults = {"n_estimators": 30, "max_depth": 4, "random_state": 0, "n_jobs": 1, "tree_method": "hist"}
    return xgb.XGBClassifier(**(defaults | params))


def unseen(X: pd.DataFrame) -> pd.DataFrame:
    """Applicants with categories never seen at fit, and missing cells."""
    out = X.head(200).copy()
    out.loc[out.index[:20], "purpose"] = "A4711"
    out.loc[out.index[20:40], "savings"] = "A699"
    out.loc[out.index[40:60], "checking"] = np.nan
    out.loc[out.index[60:80], "age"] = np.nan
    return out


def missing_cells(X: pd.DataFrame) -> pd.DataFrame:
    out = X.head(200).copy()
    out.loc[out.index[40:60], "checking"] = np.nan
    out.loc[out.index[60:80], "age"] = np.nan
    return out


def synthetic_case(n_classes: int = 2, data: dict[str, Any] | None = None, **params: Any) -> Any:
    def build(_: Any) -> tuple[Any, list[Any], Any]:
        X, y = synthetic(n_classes, **(data or {}))
        model = classifier(**params).fit(X, y)
        more = X.copy()
        more.iloc[::3, 2:5] = np.nan  # NaN in features that had none at fit
        return model, [X, more], X

    return build


def sentinel_case(_: Any) -> tuple[Any, list[Any], Any]:
    X, y = synthetic(2, nan=0.15, sentinel=-999.0)
    model = classifier(missing=-999).fit(X, y)
    more = X.copy()
    more.iloc[::4, 3] = -999.0
    more.iloc[1::4, 4] = np.nan  # NaN is missing too
    return model, [X, more], X


def early_stopping_case(_: Any) -> tuple[Any, list[Any], Any]:
    X, y = synthetic(3, nan=0.05)
    Xv, yv = synthetic(3, n=500, seed=1, nan=0.05)
    model = classifier(n_estimators=300, learning_rate=0.5, early_stopping_rounds=3)
    model.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    assert 0 < model.best_iteration < 299
    return model, [X, Xv], X


def int64_case(_: Any) -> tuple[Any, list[Any], Any]:
    """Integers beyond 2^24 (not exact in float32) in an int64 array: XGBoost
    casts every input to float32."""
    rng = np.random.default_rng(3)
    n = 1500
    X = np.column_stack([rng.integers(2**24, 2**24 + 400, n), rng.integers(0, 2**40, n), rng.integers(0, 50, n)])
    y = ((X[:, 0] % 7 > 3) ^ (X[:, 1] > 2**39)).astype(np.int64)
    model = classifier(max_depth=6).fit(X, y)
    near = X.copy()
    near[:, 0] = near[:, 0] + rng.integers(-2, 3, n)
    return model, [X, near], X


def ordinal_pipeline_case(target: str | None = None) -> Any:
    def build(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
        X, y = german
        if target is not None:
            y = X[target]
            X = X.drop(columns=target)
        y = codes(y)
        num, cats = numeric(X), categorical(X)
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=np.nan),
                    cats,
                ),
            ]
        )
        model = Pipeline([("pre", pre), ("clf", classifier())]).fit(X, y)
        return model, [X, unseen(X)], X

    return build


def one_hot_case(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
    X, y = german
    model = one_hot_pipeline(X, classifier())
    model[0].set_params(sparse_threshold=0.0)
    model.fit(X, codes(y))
    return model, [X, unseen(X)], X


def codes(y: Any) -> np.ndarray:
    """Labels as 0..K-1 (XGBClassifier's classes_ are always those)."""
    return np.unique(np.asarray(y), return_inverse=True)[1]


def as_categories(X: pd.DataFrame) -> pd.DataFrame:
    return X.astype({c: "category" for c in categorical(X)})


def native_categories_case(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
    """enable_categorical with pandas category columns; missing cells and
    categories reordered at predict time, no unseen category (XGBoost 3.2.0
    maps those to the next category, dmlc/xgboost#12189; the format raises)."""
    X, y = german
    Xc = as_categories(X)
    model = classifier(enable_categorical=True, max_cat_to_onehot=1).fit(Xc, codes(y))
    reordered = {c: pd.CategoricalDtype(list(Xc[c].cat.categories)[::-1]) for c in categorical(X)}
    frames = [Xc, as_categories(missing_cells(X)), X.head(300).astype(reordered)]
    return model, frames, Xc


CASES = {
    "binary": synthetic_case(),
    # Deeper than the six levels scored from registers: the other paths.
    "binary_deep": synthetic_case(max_depth=10),
    "reg_logistic": synthetic_case(objective="reg:logistic"),
    "binary_base_score": synthetic_case(base_score=0.3, scale_pos_weight=2.0),
    "multiclass_3": synthetic_case(3),
    "multiclass_5": synthetic_case(5, max_depth=3),
    "nan": synthetic_case(data={"nan": 0.1}),
    "missing_sentinel": sentinel_case,
    "early_stopping": early_stopping_case,
    "int64_array": int64_case,
    "pipeline_ordinal": ordinal_pipeline_case(),
    "pipeline_ordinal_multiclass": ordinal_pipeline_case("housing"),
    "pipeline_one_hot": one_hot_case,
    "native_categories": native_categories_case,
}


@pytest.fixture(scope="module")
def fitted(german: tuple[pd.DataFrame, pd.Series]) -> dict[str, tuple[Any, list[Any], Any]]:
    """Each case fitted once: (model, frames to score, export sample)."""
    return FittedCases(CASES, german)


# ------------------------------------------------------------------ the reference scorer


@pytest.mark.parametrize("name", list(CASES))
def test_reference_reproduces_xgboost(fitted: dict[str, Any], name: str) -> None:
    """The document alone gives XGBoost's float32 probabilities bit for bit, and its labels."""
    model, frames, sample = fitted[name]
    doc = export(model, sample)
    for X in frames:
        expected = model.predict_proba(X)
        assert expected.dtype == F32
        got = _reference_proba(doc, X)
        assert got.shape == expected.shape
        assert_array_equal(got, expected)
        assert_array_equal(_reference_predict(doc, X), model.predict(X))


def test_what_the_cases_exercise(fitted: dict[str, Any]) -> None:
    """The documents hold what the cases are about."""

    def trees(name: str) -> list[dict[str, Any]]:
        return export(fitted[name][0], fitted[name][2])["classifier"]["trees"]

    assert export(fitted["binary"][0])["classifier"]["missing"] is None
    assert export(fitted["missing_sentinel"][0])["classifier"]["missing"] == -999.0
    assert export(fitted["reg_logistic"][0])["classifier"]["objective"] == "binary:logistic"
    doc = export(fitted["multiclass_5"][0])
    assert doc["classifier"]["objective"] == "multi:softprob" and len(doc["classifier"]["base_margin"]) == 5
    assert {t["group"] for t in doc["classifier"]["trees"]} == set(range(5))
    assert any(any(t["default_left"]) for t in trees("nan"))
    model = fitted["early_stopping"][0]
    assert len(export(model)["classifier"]["trees"]) == 3 * (model.best_iteration + 1)
    assert any(c is not None for t in trees("native_categories") for c in t["categories_right"])

    model, _, sample = fitted["native_categories"]
    doc = export(model, sample)
    [step] = doc["preprocessing"]["steps"]
    assert step["name"] == "XGBClassifier.categories"
    transformers = step["node"]["transformers"]
    assert [i for t in transformers for i in t["columns"]] == list(range(len(sample.columns)))
    encoders = [t["node"] for t in transformers if t["node"] != "passthrough"]
    assert encoders and all(
        e["type"] == "ordinal_encoder" and e["handle_unknown"] == "error"
        and e["unknown_value"] is None and e["encoded_missing_value"] == "NaN" for e in encoders
    )  # fmt: skip
    columns = {c["name"]: c for c in doc["input"]["columns"]}
    assert columns["purpose"]["kind"] == "categorical"
    assert columns["purpose"]["categories"] == list(sample["purpose"].cat.categories)
    assert columns["age"] == {"name": "age", "kind": "numeric", "categories": None}


def test_base_margin_is_xgboosts(fitted: dict[str, Any]) -> None:
    """The base margin is what XGBoost's margin prediction starts from: a
    one-leaf-everywhere check through output_margin on a row with no tree."""
    model, _, X = fitted["binary"]
    doc = export(model)
    margin = model.predict(X.head(50), output_margin=True)
    X32 = X.head(50).to_numpy().astype(F32)
    assert_array_equal(_margin(doc["classifier"], X32)[:, 0], margin)
    model, _, X = fitted["multiclass_3"]
    doc = export(model)
    assert_array_equal(_margin(doc["classifier"], X.head(50).to_numpy().astype(F32)),
                       model.predict(X.head(50), output_margin=True))  # fmt: skip


def test_reference_infinite_inputs(fitted: dict[str, Any]) -> None:
    """+-inf (and overflowing) features are compared like any number."""
    model, _, X = fitted["nan"]
    doc = export(model)
    frame = X.copy()
    frame.iloc[:30, 0] = np.inf
    frame.iloc[30:60, 1] = -np.inf
    frame.iloc[60:90, 2] = 1e39
    assert_array_equal(_reference_proba(doc, frame), model.predict_proba(frame))


def test_unseen_native_category_is_an_error(fitted: dict[str, Any], german: tuple[pd.DataFrame, pd.Series]) -> None:
    """The format raises UnknownCategory for an unseen pandas category (XGBoost 3.2.0 maps it)."""
    model, _, sample = fitted["native_categories"]
    doc = export(model, sample)
    with pytest.raises(AssertionError, match="UnknownCategory"):
        _reference_proba(doc, as_categories(unseen(german[0])))


def test_xgboost_is_imported_lazily() -> None:
    code = "import sys, anomaly.credit_risk; assert 'xgboost' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ refusals


class SubClassifier(xgb.XGBClassifier):  # type: ignore[misc]
    pass


def logistic_objective(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-y_pred))
    return p - y_true, p * (1.0 - p)


@pytest.mark.parametrize(
    ("n_classes", "params", "message"),
    [
        (2, {"objective": logistic_objective}, "objective: a custom (callable) objective is not supported"),
        (2, {"booster": "dart"}, "booster='dart' is not supported"),
        (2, {"booster": "gblinear"}, "booster='gblinear' is not supported"),
        (3, {"objective": "multi:softmax"}, "objective='multi:softmax' is not supported"),
        (2, {"objective": "binary:logitraw"}, "objective='binary:logitraw' is not supported"),
        (2, {"objective": "binary:hinge"}, "objective='binary:hinge' is not supported"),
        (3, {"multi_strategy": "multi_output_tree"}, "multi_strategy='multi_output_tree' is not supported"),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # gblinear: "max_depth, tree_method are not used"
def test_refusals_name_the_parameter(n_classes: int, params: dict[str, Any], message: str) -> None:
    X, y = synthetic(n_classes, n=300)
    model = classifier(n_estimators=3, **params).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=re.escape(f"step 'XGBClassifier' (XGBClassifier): {message}")):
        to_document(model)
    with pytest.raises(UnsupportedModelError, match=re.escape(f"step 'clf' (XGBClassifier): {message}")):
        to_document(Pipeline([("scale", StandardScaler()), ("clf", model)]).fit(X, y))


def test_other_refusals() -> None:
    X, y = synthetic(n=300)
    with pytest.raises(UnsupportedModelError, match=re.escape("step 'SubClassifier' (SubClassifier) is not supported")):
        to_document(SubClassifier(n_estimators=3, n_jobs=1).fit(X, y))
    model = classifier(n_estimators=3).fit(X, y)
    model.device = "cuda"  # as if fitted on a GPU (set on the estimator only: no GPU here)
    with pytest.raises(UnsupportedModelError, match=re.escape("device='cuda' is not supported")):
        to_document(model)
    # the booster itself is read too, whatever the estimator's parameters say
    model = classifier(n_estimators=3, booster="dart").fit(X, y)
    model.set_params(booster=None)
    with pytest.raises(UnsupportedModelError, match=re.escape("booster='dart' is not supported")):
        to_document(model)


# ------------------------------------------------------------------ the Rust scorer (anomaly.credit_risk.load)


@pytest.mark.parametrize("name", list(CASES))
def test_scorer_reproduces_xgboost(fitted: dict[str, Any], name: str, tmp_path: Path, record_property: Any) -> None:
    """export_sklearn (checked on the sample) then load: XGBoost's float32
    probabilities widened to f64, bit for bit, and its labels."""
    model, frames, sample = fitted[name]
    path = tmp_path / "model.json"
    export_sklearn(model, path, sample=sample)
    scorer = load(path)
    worst = 0.0
    for X in frames:
        expected = model.predict_proba(X).astype(np.float64)
        got = scorer.predict_proba(X)
        assert got.shape == expected.shape
        worst = max(worst, float(np.max(np.abs(got - expected))))
        assert_array_equal(scorer.predict(X), model.predict(X))
        one = X.iloc[[7]] if isinstance(X, pd.DataFrame) else X[[7]]
        assert_array_equal(scorer.predict_proba(one), model.predict_proba(one).astype(np.float64))  # one row
    record_property("max_abs_diff", worst)
    assert worst == 0.0, f"{name}: max |diff| {worst}"
    assert_array_equal(scorer.classes_, model.classes_)


def test_file_round_trip(fitted: dict[str, Any], tmp_path: Path) -> None:
    """The written file is the document (version 2, xgboost_version); loaded, it scores as XGBoost."""
    model, frames, _ = fitted["pipeline_ordinal"]
    path = tmp_path / "credit.json"
    export_sklearn(model, path)
    doc = json.loads(path.read_text())
    assert doc == to_document(model)
    assert doc["version"] == 2 and doc["xgboost_version"] == xgb.__version__
    assert [p.name for p in tmp_path.iterdir()] == ["credit.json"]
    scorer = load(path)
    for frame in frames:
        assert_array_equal(scorer.predict_proba(frame), model.predict_proba(frame).astype(np.float64))
        assert_array_equal(scorer.predict(frame), model.predict(frame))


def test_scorer_accepts_infinite_inputs(fitted: dict[str, Any], tmp_path: Path) -> None:
    """XGBoost compares +-inf (and float32 overflows) like any number; so does the scorer."""
    model, _, X = fitted["nan"]
    export_sklearn(model, tmp_path / "m.json", sample=X)
    frame = X.copy()
    frame.iloc[:30, 0] = np.inf
    frame.iloc[30:60, 1] = -np.inf
    frame.iloc[60:90, 2] = 1e39
    got = load(tmp_path / "m.json").predict_proba(frame)
    assert_array_equal(got, model.predict_proba(frame).astype(np.float64))
