"""LightGBM's ``LGBMClassifier`` exported by :mod:`anomaly.credit_risk`.

Two scorers are compared with the installed lightgbm's ``predict_proba`` and
``predict``: :func:`_reference_proba`, a NumPy/libm scorer that reads only the
exported document and implements the ``lightgbm`` section of
``docs/credit_model_format.md`` (an executable spec: it must match bit for
bit), and the Rust scorer behind ``anomaly.credit_risk.load`` (within 1e-12;
the tests record the largest difference, expected to be 0).

Cases: binary (also with a sigmoid), multiclass (3 to 5 classes),
multiclassova, cross_entropy, rf / dart / goss boosting, NaN and infinite
inputs, zero_as_missing (with values within 1e-35 of 0), use_missing=False,
early stopping, scikit-learn pipelines (ordinal codes as categorical features,
one-hot), pandas ``category`` columns given straight to the classifier, int64
arrays (cast to float32 by LightGBM) and unseen categories. Every refused
option is named in the error.
"""

from __future__ import annotations

import json
import math
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

lgb = pytest.importorskip("lightgbm")

# LightGBM's kZeroThreshold (1e-35f as a double): the dense row reader drops
# values this close to 0, which the trees then see as 0.0.
ZERO = 1.0000000180025095e-35
MISSING_TYPES = ("None", "Zero", "NaN")
OBJECTIVES = ("binary", "cross_entropy", "multiclass", "multiclassova")


# ------------------------------------------------------------------ the spec, in NumPy


def _exp(x: float) -> float:
    """The C library's exp (numpy's vectorised exp differs in the last bit)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _features(clf: dict[str, Any], Z: np.ndarray) -> np.ndarray:
    """The values the trees compare: float32-cast when LightGBM casts, then the
    zero snap of the row reader (NaN kept)."""
    Z = np.array(Z, dtype=np.float64)
    if clf["cast_f32"]:
        Z = Z.astype(np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        Z[np.abs(Z) <= ZERO] = 0.0
    return Z


def _leaves(tree: dict[str, Any], Z: np.ndarray) -> np.ndarray:
    """Each row's leaf: numerical nodes by missing_type / default_left / `v <= threshold`,
    categorical nodes by the truncated code (NaN, negative or >= 2^31: right)."""
    if not tree["split_feature"]:
        return np.zeros(len(Z), dtype=np.int64)
    feature = np.array(tree["split_feature"])
    threshold = np.array([math.nan if t is None else f64(t) for t in tree["threshold"]])
    missing = np.array([MISSING_TYPES.index(m) for m in tree["missing_type"]])
    default_left = np.array(tree["default_left"], dtype=bool)
    left, right = np.array(tree["left_child"]), np.array(tree["right_child"])
    is_cat = np.array([c is not None for c in tree["categories_left"]])
    node = np.zeros(len(Z), dtype=np.int64)
    while (live := np.flatnonzero(node >= 0)).size:
        k = node[live]
        v = Z[live, feature[k]]
        nan = np.isnan(v)
        x = np.where(nan & (missing[k] != 2), 0.0, v)  # NaN is 0.0 unless missing_type is NaN
        as_missing = ((missing[k] == 1) & (np.abs(x) <= ZERO)) | ((missing[k] == 2) & np.isnan(x))
        go_left = np.where(as_missing, default_left[k], x <= threshold[k])
        for n in np.unique(k[is_cat[k]]):
            at = np.flatnonzero(k == n)
            c = v[at]
            ok = ~np.isnan(c) & (c < 2.0**31)
            code = np.trunc(np.where(ok, c, -1.0))  # -0.5 and 0.999 are category 0
            cats = np.array(tree["categories_left"][n], dtype=np.float64)
            go_left[at] = ok & (code >= 0) & np.isin(code, cats)
        node[live] = np.where(go_left, left[k], right[k])
    return ~node


def _raw(clf: dict[str, Any], Z: np.ndarray) -> np.ndarray:
    """raw[k] = 0.0 + each tree t's leaf for k = t mod K, in file order; rf divides
    by the number of iterations."""
    K = clf["trees_per_iteration"]
    raw = np.zeros((len(Z), K))
    for t, tree in enumerate(clf["trees"]):
        values = np.array([f64(v) for v in tree["leaf_value"]])
        raw[:, t % K] = raw[:, t % K] + values[_leaves(tree, Z)]
    if clf["average_output"]:
        raw = raw / float(len(clf["trees"]) // K)
    return raw


def _link(clf: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    sigmoid = f64(clf["sigmoid"])
    out = np.empty((len(raw), 2 if raw.shape[1] == 1 else raw.shape[1]))
    for r, z in enumerate(raw.tolist()):
        if clf["objective"] in ("binary", "cross_entropy"):
            p = 1.0 / (1.0 + _exp(-sigmoid * z[0]))
            out[r] = [1.0 - p, p]
        elif clf["objective"] == "multiclassova":
            out[r] = [1.0 / (1.0 + _exp(-sigmoid * v)) for v in z]
        else:  # multiclass: sequential max and sum
            m = z[0]
            for v in z[1:]:
                m = max(v, m)
            e = [_exp(v - m) for v in z]
            s = 0.0
            for v in e:
                s += v
            out[r] = [v / s for v in e]
    return out


def _reference_proba(doc: dict[str, Any], X: Any) -> np.ndarray:
    """predict_proba of an exported LightGBM document, from the document alone."""
    if not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(np.asarray(X), columns=[c["name"] for c in doc["input"]["columns"]])
    table = read_input(doc, X)
    if doc["preprocessing"] is not None:
        table = run_node(doc["preprocessing"], table)
    clf = doc["classifier"]
    assert clf["type"] == "lightgbm" and len(table) == clf["n_features"], "ShapeError"
    Z = _features(clf, np.column_stack([numbers(c) for c in table]))
    return _link(clf, _raw(clf, Z))


def _reference_predict(doc: dict[str, Any], X: Any) -> np.ndarray:
    """The first argmax of the probabilities, as LGBMClassifier.predict."""
    return np.array(doc["classes"], dtype=object)[np.argmax(_reference_proba(doc, X), axis=1)]


def check_document(doc: dict[str, Any]) -> None:
    """The lightgbm section's shape: strict JSON, parallel arrays, LightGBM's numbering."""
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert doc["format"] == FORMAT and doc["version"] == 2
    assert doc["sklearn_version"] and doc["lightgbm_version"] == lgb.__version__
    clf = doc["classifier"]
    assert set(clf) == {
        "type", "n_features", "objective", "sigmoid", "trees_per_iteration", "average_output", "cast_f32", "trees"
    }  # fmt: skip
    assert clf["objective"] in OBJECTIVES
    assert clf["objective"] in ("binary", "multiclassova") or clf["sigmoid"] == 1.0
    n_classes = len(doc["classes"])
    K = clf["trees_per_iteration"]
    assert K == (1 if clf["objective"] in ("binary", "cross_entropy") else n_classes)
    assert clf["trees"] and len(clf["trees"]) % K == 0
    for tree in clf["trees"]:
        n = len(tree["split_feature"])
        for key in ("threshold", "missing_type", "default_left", "categories_left", "left_child", "right_child"):
            assert len(tree[key]) == n, key
        assert len(tree["leaf_value"]) == n + 1
        reached = []
        for i in range(n):
            assert 0 <= tree["split_feature"][i] < clf["n_features"]
            assert tree["missing_type"][i] in MISSING_TYPES
            assert (tree["threshold"][i] is None) == (tree["categories_left"][i] is not None)
            assert tree["threshold"][i] is None or isinstance(f64(tree["threshold"][i]), (int, float))
            assert tree["threshold"][i] != "NaN"
            for child in (tree["left_child"][i], tree["right_child"][i]):
                assert child > i or child < 0
                reached.append(child)
        if n:  # every internal node but the root and every leaf is some node's child, once
            assert sorted(reached) == sorted([*range(1, n), *(~j for j in range(n + 1))])


def export(model: Any, sample: Any = None) -> dict[str, Any]:
    doc = to_document(model, sample=sample)
    check_document(doc)
    return doc


# ------------------------------------------------------------------ data and models


def synthetic(
    n_classes: int = 2, n: int = 1500, seed: int = 0, nan: float = 0.0, zeros: float = 0.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Six features; a class from a noisy score cut at its quantiles; optional
    NaN and zeros in the first two features. Zeros (exact, and values LightGBM
    snaps to 0) raise the score, so that zero_as_missing sends them away
    from where their value would go."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 5] = rng.integers(0, 4, n)
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] - 0.3 * X[:, 5] + rng.normal(0, 0.7, n)
    for j in (0, 1):
        if zeros:
            hit = rng.random(n) < zeros
            X[hit, j] = rng.choice([0.0, -0.0, 1e-36, -1e-40, 1e-35, ZERO, -ZERO, 5e-324, 2e-35], hit.sum())
            score = score + 2.0 * hit
        if nan:
            X[rng.random(n) < nan, j] = np.nan
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(6)]), y


def with_infinities(X: pd.DataFrame) -> pd.DataFrame:
    out = X.copy()
    out.iloc[:30, 0] = np.inf
    out.iloc[30:60, 1] = -np.inf
    out.iloc[60:90, 2] = np.nan
    return out


def classifier(**params: Any) -> Any:
    defaults = {"n_estimators": 60, "num_leaves": 15, "verbose": -1, "random_state": 0, "n_jobs": 1}
    return lgb.LGBMClassifier(**(defaults | params))


def ordinal_lgb_pipeline(df: pd.DataFrame, **params: Any) -> tuple[Pipeline, dict[str, Any]]:
    """Imputed, scaled numbers; categories as codes (-1 unknown, NaN missing)
    declared categorical to LightGBM."""
    num, cats = numeric(df), categorical(df)
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
    fit = {"clf__categorical_feature": list(range(len(num), len(num) + len(cats)))}
    return Pipeline([("pre", pre), ("clf", classifier(min_child_samples=10, **params))]), fit


def unseen(X: pd.DataFrame) -> pd.DataFrame:
    """Applicants with categories never seen at fit, and missing cells."""
    out = X.head(200).copy()
    out.loc[out.index[:20], "purpose"] = "A4711"
    out.loc[out.index[20:40], "savings"] = "A699"
    out.loc[out.index[40:60], "checking"] = np.nan
    out.loc[out.index[60:80], "age"] = np.nan
    return out


def as_categories(X: pd.DataFrame) -> pd.DataFrame:
    """The categorical columns as pandas categories (an unseen label is a category of its own)."""
    return X.astype({c: "category" for c in categorical(X)})


def synthetic_case(n_classes: int = 2, data: dict[str, Any] | None = None, **params: Any) -> Any:
    def build(_: Any) -> tuple[Any, list[Any], Any]:
        X, y = synthetic(n_classes, **(data or {}))
        model = classifier(**params).fit(X, y)
        return model, [X], X

    return build


def early_stopping_case(_: Any) -> tuple[Any, list[Any], Any]:
    X, y = synthetic(3, nan=0.05)
    Xv, yv = synthetic(3, n=500, seed=1, nan=0.05)
    model = classifier(n_estimators=400, learning_rate=0.3).fit(
        X, y, eval_X=(Xv,), eval_y=(yv,), callbacks=[lgb.early_stopping(5, verbose=False)]
    )
    assert 0 < model.best_iteration_ < 400
    return model, [X, Xv], X


def nan_case(_: Any) -> tuple[Any, list[Any], Any]:
    X, y = synthetic(2, nan=0.1)
    model = classifier().fit(X, y)
    more = X.copy()
    more.iloc[::3, 2:5] = np.nan  # NaN in features that had none at fit (missing_type None: read as 0.0)
    return model, [X, more], X


def int64_case(_: Any) -> tuple[Any, list[Any], Any]:
    """Integers beyond 2^24 (not exact in float32) in an int64 array: LightGBM
    casts them to float32, so the thresholds sit between float32 values."""
    rng = np.random.default_rng(3)
    n = 2000
    X = np.column_stack([rng.integers(2**24, 2**24 + 400, n), rng.integers(0, 2**40, n), rng.integers(0, 50, n)])
    y = ((X[:, 0] % 7 > 3) ^ (X[:, 1] > 2**39)).astype(np.int64)
    model = classifier(num_leaves=31, min_child_samples=5).fit(X, y)
    near = X.copy()
    near[:, 0] = near[:, 0] + rng.integers(-2, 3, n)  # neighbours that round to the same float32
    return model, [X, near], X


def pipeline_case(target: str | None = None) -> Any:
    def build(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
        X, y = german
        if target is not None:
            y = X[target]
            X = X.drop(columns=target)
        model, fit = ordinal_lgb_pipeline(X)
        model.fit(X, y, **fit)
        return model, [X, unseen(X)], X

    return build


def one_hot_case(sparse: bool) -> Any:
    def build(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
        X, y = german
        model = one_hot_pipeline(X, classifier())
        model[0].set_params(sparse_threshold=1.0 if sparse else 0.0)
        model.fit(X, y)
        assert model[0].sparse_output_ == sparse
        return model, [X, unseen(X)], X

    return build


def pandas_categories_case(german: tuple[pd.DataFrame, pd.Series]) -> tuple[Any, list[Any], Any]:
    X, y = german
    Xc = as_categories(X)
    model = classifier(min_child_samples=10, cat_smooth=1.0, min_data_per_group=5).fit(Xc, y)
    # unseen categories and missing cells; the categories in another order
    reordered = {c: pd.CategoricalDtype(list(Xc[c].cat.categories)[::-1]) for c in categorical(X)}
    frames = [Xc, as_categories(unseen(X)), X.head(300).astype(reordered)]
    return model, frames, Xc


CASES = {
    "binary": synthetic_case(),
    "binary_sigmoid": synthetic_case(sigmoid=1 / 3),
    "binary_unbalanced": synthetic_case(is_unbalance=True, boost_from_average=False),
    "multiclass_3": synthetic_case(3),
    "multiclass_4": synthetic_case(4, objective="softmax"),
    "multiclass_5": synthetic_case(5, num_leaves=7),
    "multiclass_9": synthetic_case(9, n_estimators=30, num_leaves=7),  # numpy would sum 9 terms pairwise
    "multiclassova": synthetic_case(4, objective="multiclassova", sigmoid=0.7),
    "cross_entropy": synthetic_case(objective="cross_entropy"),
    "xentropy": synthetic_case(objective="xentropy"),
    "rf": synthetic_case(boosting_type="rf", subsample=0.7, subsample_freq=1, colsample_bytree=0.8),
    "rf_multiclass": synthetic_case(3, boosting_type="rf", subsample=0.7, subsample_freq=1),
    "dart": synthetic_case(boosting_type="dart", n_estimators=40),
    "goss": synthetic_case(data_sample_strategy="goss"),
    "nan": nan_case,
    "zero_as_missing": synthetic_case(data={"zeros": 0.2}, zero_as_missing=True),
    "zeros_snapped": synthetic_case(data={"zeros": 0.2}),
    "use_missing_false": synthetic_case(data={"nan": 0.1}, use_missing=False),
    "early_stopping": early_stopping_case,
    "int64_array": int64_case,
    "pipeline_categorical": pipeline_case(),
    "pipeline_categorical_multiclass": pipeline_case("housing"),
    "pipeline_one_hot": one_hot_case(sparse=False),
    "pipeline_one_hot_sparse": one_hot_case(sparse=True),  # LightGBM reads a CSR matrix
    "pandas_categories": pandas_categories_case,
}


@pytest.fixture(scope="module")
def fitted(german: tuple[pd.DataFrame, pd.Series]) -> dict[str, tuple[Any, list[Any], Any]]:
    """Each case fitted once: (model, frames to score, export sample)."""
    return FittedCases(CASES, german)


# ------------------------------------------------------------------ the reference scorer


@pytest.mark.parametrize("name", list(CASES))
def test_reference_reproduces_lightgbm(fitted: dict[str, Any], name: str) -> None:
    """The document alone gives LightGBM's probabilities bit for bit, and its labels."""
    model, frames, sample = fitted[name]
    doc = export(model, sample)
    for X in frames:
        expected = model.predict_proba(X)
        got = _reference_proba(doc, X)
        assert got.shape == expected.shape
        assert_array_equal(got, expected)
        assert_array_equal(_reference_predict(doc, X), model.predict(X))


def test_what_the_cases_exercise(fitted: dict[str, Any]) -> None:
    """The documents hold what the cases are about: their missing types,
    categorical nodes, one-leaf trees, rf averaging, the float32 cast, the trees
    of the best iteration and the pandas category encoder."""

    def nodes(name: str, key: str) -> set[Any]:
        doc = export(fitted[name][0], fitted[name][2])
        return {json.dumps(v) for t in doc["classifier"]["trees"] for v in t[key]}

    assert '"NaN"' in nodes("nan", "missing_type")
    assert '"Zero"' in nodes("zero_as_missing", "missing_type")
    assert nodes("use_missing_false", "missing_type") == {'"None"'}
    assert any(c != "null" for c in nodes("pipeline_categorical", "categories_left"))
    assert any(c != "null" for c in nodes("pandas_categories", "categories_left"))
    assert export(fitted["rf"][0])["classifier"]["average_output"] is True
    assert export(fitted["binary"][0])["classifier"]["average_output"] is False
    assert export(fitted["binary_sigmoid"][0])["classifier"]["sigmoid"] == 0.333333  # the booster's own text
    assert export(fitted["multiclassova"][0])["classifier"]["sigmoid"] == 0.7
    assert export(fitted["multiclass_5"][0])["classifier"]["trees_per_iteration"] == 5

    model, _, sample = fitted["int64_array"]
    assert export(model, sample)["classifier"]["cast_f32"] is True
    assert export(model)["classifier"]["cast_f32"] is False  # without a sample: float64 input assumed
    assert export(fitted["binary"][0], fitted["binary"][2])["classifier"]["cast_f32"] is False

    model = fitted["early_stopping"][0]
    doc = export(model)
    assert len(doc["classifier"]["trees"]) == 3 * model.best_iteration_

    model, _, sample = fitted["pandas_categories"]
    doc = export(model, sample)
    [step] = doc["preprocessing"]["steps"]
    assert step["name"] == "LGBMClassifier.pandas_categorical"
    transformers = step["node"]["transformers"]
    assert [i for t in transformers for i in t["columns"]] == list(range(len(sample.columns)))
    encoders = [t["node"] for t in transformers if t["node"] != "passthrough"]
    assert all(
        e["type"] == "ordinal_encoder" and e["handle_unknown"] == "use_encoded_value"
        and e["unknown_value"] == "NaN" and e["encoded_missing_value"] == "NaN" for e in encoders
    )  # fmt: skip
    columns = {c["name"]: c for c in doc["input"]["columns"]}
    assert columns["purpose"]["kind"] == "categorical"
    assert columns["purpose"]["categories"] == list(sample["purpose"].cat.categories)
    assert columns["age"] == {"name": "age", "kind": "numeric", "categories": None}


def test_reference_infinite_inputs(fitted: dict[str, Any]) -> None:
    """+-inf features are compared like any number (NaN ones by missing_type)."""
    model, _, X = fitted["nan"]
    doc = export(model)
    frame = with_infinities(X)
    assert_array_equal(_reference_proba(doc, frame), model.predict_proba(frame))
    assert_array_equal(_reference_predict(doc, frame), model.predict(frame))


def test_one_leaf_tree() -> None:
    """A booster that could not split: one tree, no internal nodes, one leaf."""
    X, y = synthetic()
    model = classifier(min_child_samples=5000).fit(X, y)
    doc = export(model)
    [tree] = doc["classifier"]["trees"]
    assert tree["split_feature"] == [] and tree["left_child"] == [] and len(tree["leaf_value"]) == 1
    assert_array_equal(_reference_proba(doc, X), model.predict_proba(X))


def with_text_thresholds(model: Any, values: dict[int, str]) -> Any:
    """``model`` with some thresholds of its first tree replaced in the text model
    (LightGBM itself writes +-inf there as ``inf``; ``dump_model`` as +-1e300)."""
    text = re.sub(r"^tree_sizes=.*\n", "", model.booster_.model_to_string(), flags=re.M)
    start = text.index("\nthreshold=") + len("\nthreshold=")
    end = text.index("\n", start)
    thresholds = text[start:end].split(" ")
    for node, value in values.items():
        thresholds[node] = value
    booster = lgb.Booster(model_str=text[:start] + " ".join(thresholds) + text[end:])
    model._Booster = booster
    return model


def test_infinite_thresholds_come_from_the_text_model() -> None:
    X, y = synthetic(nan=0.1)
    model = with_text_thresholds(classifier(n_estimators=10).fit(X, y), {1: "inf", 2: "-inf"})
    dumped = model.booster_.dump_model()["tree_info"][0]["tree_structure"]
    assert "1e+300" in json.dumps(dumped)  # what the dump says
    doc = export(model)
    first = doc["classifier"]["trees"][0]["threshold"]
    assert first[1] == "Infinity" and first[2] == "-Infinity"
    frames = [X, with_infinities(X)]
    for frame in frames:
        assert_array_equal(_reference_proba(doc, frame), model.predict_proba(frame))
    text = json.dumps(doc, allow_nan=False)
    assert '"Infinity"' in text and "1e+300" not in text


def test_column_names_with_spaces() -> None:
    """LightGBM replaces spaces in a bare classifier's feature names; the sample
    gives the frame's real names back."""
    X, y = synthetic()
    X.columns = ["loan amount", "age", "monthly income", "f3", "f4", "f5"]
    model = classifier(n_estimators=10).fit(X, y)
    assert list(model.feature_names_in_)[:3] == ["loan_amount", "age", "monthly_income"]
    assert [c["name"] for c in export(model, X)["input"]["columns"]] == list(X.columns)
    assert [c["name"] for c in export(model)["input"]["columns"]] == list(model.feature_names_in_)


def test_lightgbm_is_imported_lazily() -> None:
    code = "import sys, anomaly.credit_risk; assert 'lightgbm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ refusals


class SubClassifier(lgb.LGBMClassifier):  # type: ignore[misc]
    pass


def logistic_objective(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-y_pred))
    return p - y_true, p * (1.0 - p)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": logistic_objective}, "objective: a custom (callable) objective is not supported"),
        ({"objective": "cross_entropy_lambda"}, "objective='cross_entropy_lambda' is not supported"),
        ({"objective": "regression"}, "objective='regression' is not supported"),
        ({"linear_tree": True}, "linear_tree=True is not supported"),
        ({"linear_trees": True}, "linear_trees=True is not supported"),
        ({"pred_early_stop": True}, "pred_early_stop=True: the prediction-time parameter pred_early_stop"),
        ({"start_iteration_predict": 3}, "start_iteration_predict=3: the prediction-time parameter"),
        ({"num_iteration_predict": 3}, "num_iteration_predict=3: the prediction-time parameter"),
        ({"raw_score": True}, "raw_score=True: the prediction-time parameter predict_raw_score"),
        ({"predict_leaf_index": True}, "predict_leaf_index=True: the prediction-time parameter"),
        ({"contrib": True}, "contrib=True: the prediction-time parameter predict_contrib"),
    ],
)
def test_refusals_name_the_parameter(params: dict[str, Any], message: str) -> None:
    X, y = synthetic()
    model = classifier(n_estimators=5, **params).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=re.escape(f"step 'LGBMClassifier' (LGBMClassifier): {message}")):
        to_document(model)
    with pytest.raises(UnsupportedModelError, match=re.escape(f"step 'clf' (LGBMClassifier): {message}")):
        to_document(Pipeline([("scale", StandardScaler()), ("clf", model)]).fit(X, y))


def test_linear_trees_refused_from_the_trees_too() -> None:
    """A linear booster is refused even when the estimator's parameter says otherwise."""
    X, y = synthetic()
    model = classifier(n_estimators=5, linear_tree=True).fit(X, y)
    model.set_params(linear_tree=False)
    with pytest.raises(UnsupportedModelError, match="linear_tree: linear trees are not supported"):
        to_document(model)


def test_other_refusals(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = synthetic()
    with pytest.raises(UnsupportedModelError, match=re.escape("step 'SubClassifier' (SubClassifier) is not supported")):
        to_document(SubClassifier(n_estimators=3, verbose=-1).fit(X, y))

    # +-1e300 in dump_model with no text model to say whether it is infinite
    model = with_text_thresholds(classifier(n_estimators=3).fit(X, y), {1: "inf"})
    model.booster_.model_to_string = lambda *args, **kwargs: ""
    with pytest.raises(UnsupportedModelError, match=re.escape("threshold 1e+300 (an infinite one in dump_model)")):
        to_document(model)

    model = classifier(n_estimators=3).fit(X, y)
    model._n_features_in = 7  # what max_feature_idx + 1 != n_features_in_ looks like
    with pytest.raises(UnsupportedModelError, match="the booster has 6 features, n_features_in_ is 7"):
        to_document(model)

    # An ordered category column is coded but not a categorical feature: the
    # category columns cannot be told from the booster.
    G, target = german
    G = as_categories(G).astype({"housing": pd.CategoricalDtype(["A151", "A152", "A153"], ordered=True)})
    model = classifier(n_estimators=3).fit(G, target)
    message = "(LGBMClassifier): pandas_categorical: it was fitted on 13 pandas category columns"
    with pytest.raises(UnsupportedModelError, match=re.escape(message)):
        to_document(model)


# ------------------------------------------------------------------ the Rust scorer (anomaly.credit_risk.load)


@pytest.mark.parametrize("name", list(CASES))
def test_scorer_reproduces_lightgbm(
    fitted: dict[str, Any], name: str, tmp_path: Path, record_property: Any
) -> None:
    """export_sklearn (checked on the sample) then load: LightGBM's probabilities
    bit for bit (glibc's exp on both sides) and its labels."""
    model, frames, sample = fitted[name]
    path = tmp_path / "model.json"
    export_sklearn(model, path, sample=sample)
    scorer = load(path)
    worst = 0.0
    for X in frames:
        expected = model.predict_proba(X)
        got = scorer.predict_proba(X)
        assert got.shape == expected.shape
        worst = max(worst, float(np.max(np.abs(got - expected))))
        assert_array_equal(scorer.predict(X), model.predict(X))
        one = X.iloc[[7]] if isinstance(X, pd.DataFrame) else X[[7]]
        assert_array_equal(scorer.predict_proba(one), model.predict_proba(one))  # the one-row path
    record_property("max_abs_diff", worst)
    assert worst == 0.0, f"{name}: max |diff| {worst}"
    assert_array_equal(scorer.classes_, model.classes_)


def test_file_round_trip(german: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    """The written file is the document (version 2, lightgbm_version); loaded, it scores as LightGBM."""
    X, y = german
    model, fit = ordinal_lgb_pipeline(X)
    model.fit(X, y, **fit)
    path = tmp_path / "credit.json"
    export_sklearn(model, path)
    doc = json.loads(path.read_text())
    assert doc == to_document(model)
    assert doc["version"] == 2 and doc["lightgbm_version"] == lgb.__version__
    assert [p.name for p in tmp_path.iterdir()] == ["credit.json"]
    scorer = load(path)
    for frame in (X, unseen(X)):
        got, expected = scorer.predict_proba(frame), model.predict_proba(frame)
        assert float(np.max(np.abs(got - expected))) <= 1e-12
        assert_array_equal(scorer.predict(frame), model.predict(frame))
    assert_array_equal(_reference_proba(doc, X), model.predict_proba(X))


def test_scorer_accepts_infinite_inputs(fitted: dict[str, Any], tmp_path: Path) -> None:
    """LightGBM compares +-inf like any number; so does the scorer (no NonFiniteError)."""
    model, _, X = fitted["nan"]
    export_sklearn(model, tmp_path / "m.json", sample=X)
    frame = with_infinities(X)
    got = load(tmp_path / "m.json").predict_proba(frame)
    assert float(np.max(np.abs(got - model.predict_proba(frame)))) <= 1e-12
