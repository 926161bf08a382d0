"""The scikit-learn exporter of :mod:`anomaly.credit_risk`, before any Rust scorer.

Every supported estimator is fitted on the German credit data (with missing
values injected) and exported; the document must be strict JSON, round-trip
and have consistent shapes. A small NumPy evaluator written from
``docs/credit_model_format.md`` alone then reproduces ``predict_proba`` and
``predict``, which shows the spec is exact: equal bits for trees, 1e-12 for
logistic regression (scikit-learn's BLAS dot product sums in its own order).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from anomaly.credit_risk import FORMAT, FORMAT_VERSION, export_sklearn, to_document
from anomaly.errors import AnomalyError, UnsupportedModelError

# statlog_german_credit.doc: attributes 1-20, then 1 = good, 2 = bad.
COLUMNS = [
    "checking", "duration", "history", "purpose", "amount", "savings", "employment",
    "installment_rate", "personal", "debtors", "residence", "property", "age",
    "other_plans", "housing", "existing_credits", "job", "people_liable", "telephone",
    "foreign", "default",
]  # fmt: skip
NUMERIC = ["duration", "amount", "installment_rate", "residence", "age", "existing_credits", "people_liable"]
WITH_NAN = ["duration", "amount", "age", "checking", "savings", "purpose"]


# The German attributes' codes (statlog_german_credit.doc), for the stand-in
# data used where ../shared/data is absent.
CODES = {
    "checking": ["A11", "A12", "A13", "A14"], "history": ["A30", "A31", "A32", "A33", "A34"],
    "purpose": ["A40", "A41", "A410", "A42", "A43", "A44", "A45", "A46", "A48", "A49"],
    "savings": ["A61", "A62", "A63", "A64", "A65"], "employment": ["A71", "A72", "A73", "A74", "A75"],
    "personal": ["A91", "A92", "A93", "A94"], "debtors": ["A101", "A102", "A103"],
    "property": ["A121", "A122", "A123", "A124"], "other_plans": ["A141", "A142", "A143"],
    "housing": ["A151", "A152", "A153"], "job": ["A171", "A172", "A173", "A174"],
    "telephone": ["A191", "A192"], "foreign": ["A201", "A202"],
}  # fmt: skip
RANGES = {"duration": (4, 72), "amount": (250, 18424), "installment_rate": (1, 4), "residence": (1, 4),
          "age": (19, 75), "existing_credits": (1, 4), "people_liable": (1, 2)}  # fmt: skip


def stand_in(n: int = 1000) -> tuple[pd.DataFrame, pd.Series]:
    """Applicants with the German schema and codes, drawn at random, with a
    default rule of duration, amount and checking account (for CI machines
    without ../shared/data; the exactness checks do not need real data)."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({c: rng.choice(CODES[c], n) if c in CODES else rng.integers(*RANGES[c], endpoint=True, size=n)
                       for c in COLUMNS[:-1]})  # fmt: skip
    risk = df["duration"] / 24 + df["amount"] / 8000 - (df["checking"] == "A14") * 1.5 + rng.normal(0, 1, n)
    return df, pd.Series(np.where(risk > 1.2, 2, 1), name="default")


class FittedCases(dict):  # type: ignore[type-arg]
    """Model cases (name -> function of the data giving (model, frames to
    score, export sample)), each fitted on first use and kept."""

    def __init__(self, cases: dict[str, Any], data: Any) -> None:
        super().__init__()
        self.cases, self.data = cases, data

    def __missing__(self, name: str) -> Any:
        self[name] = self.cases[name](self.data)
        return self[name]


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.Series]:
    """The 1000 applicants (or, without ../shared/data, a stand-in with the
    same schema), 5% of six columns (three numeric, three categorical) missing."""
    from conftest import SHARED_DATA

    path = SHARED_DATA / "credit" / "statlog_german_credit.data"
    if path.exists():
        df = pd.read_csv(path, sep=" ", header=None, names=COLUMNS)
        y = df.pop("default")
    else:
        print(f"German credit data not found at {path}: using stand-in applicants with its schema")
        df, y = stand_in()
    rng = np.random.default_rng(0)
    for col in WITH_NAN:
        if col in NUMERIC:
            df[col] = df[col].astype(np.float64)
        df.loc[rng.random(len(df)) < 0.05, col] = np.nan
    return df, y


def categorical(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in NUMERIC]


def numeric(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c in NUMERIC]


def one_hot_pipeline(df: pd.DataFrame, clf: Any, **one_hot: Any) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric(df)),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(**({"handle_unknown": "ignore"} | one_hot)),
                ),
                categorical(df),
            ),
        ]
    )
    return Pipeline([("pre", pre), ("clf", clf)])


def ordinal_pipeline(df: pd.DataFrame, clf: Any) -> Pipeline:
    """Numeric columns passed through with their NaN (remainder), categories as codes."""
    pre = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=np.nan),
                categorical(df),
            )
        ],
        remainder="passthrough",
    )
    return Pipeline([("pre", pre), ("clf", clf)])


# ------------------------------------------------------------------ the spec, in NumPy


def f64(value: Any) -> float:
    """A float field of the format: a number or "NaN"/"Infinity"/"-Infinity"."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)


def is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def read_input(doc: dict[str, Any], X: pd.DataFrame) -> list[np.ndarray]:
    """Cells by the spec: strings stay strings, numbers become floats, missing is NaN."""
    table = []
    for col in doc["input"]["columns"]:
        values = X[col["name"]].tolist()  # KeyError = the spec's ColumnError
        cells = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            if is_missing(v):
                cells[i] = math.nan
            elif isinstance(v, str):
                assert col["kind"] == "categorical", col
                cells[i] = v
            else:
                cells[i] = float(v)
        table.append(cells)
    return table


def matches(cell: Any, category: Any) -> bool:
    if category is None:
        return isinstance(cell, float) and math.isnan(cell)
    if isinstance(category, str):
        return isinstance(cell, str) and cell == category
    return isinstance(cell, float) and cell == category


def numbers(cells: np.ndarray) -> np.ndarray:
    assert not any(isinstance(c, str) for c in cells), "NumberError"
    return cells.astype(np.float64)


def run_node(node: Any, table: list[np.ndarray]) -> list[np.ndarray]:
    kind = node["type"]
    if kind == "pipeline":
        for step in node["steps"]:
            table = run_node(step["node"], table)
        return table
    if kind == "column_transformer":
        assert len(table) == node["n_features_in"]
        out: list[np.ndarray] = []
        for t in node["transformers"]:
            sub = [table[i] for i in t["columns"]]
            out.extend(sub if t["node"] == "passthrough" else run_node(t["node"], sub))
        return out
    if kind == "simple_imputer":
        mv = node["missing_values"]
        out = []
        for cells, stat in zip(table, node["statistics"], strict=True):
            hit = [matches(c, mv) for c in cells]
            fill = stat if isinstance(stat, str) else float(stat)
            out.append(np.array([fill if h else c for c, h in zip(cells, hit)], dtype=object))
        return out
    if kind == "standard_scaler":
        out = []
        for j, cells in enumerate(table):
            x = numbers(cells)
            if node["mean"] is not None:
                x = x - f64(node["mean"][j])
            if node["scale"] is not None:
                x = x / f64(node["scale"][j])
            out.append(x.astype(object))
        return out
    if kind == "min_max_scaler":
        out = []
        for j, cells in enumerate(table):
            x = numbers(cells) * f64(node["scale"][j])
            x = x + f64(node["min"][j])
            if node["clip"] is not None:
                lo, hi = (f64(v) for v in node["clip"])
                x = np.where(x < lo, lo, np.where(x > hi, hi, x))
            out.append(x.astype(object))
        return out
    if kind == "one_hot_encoder":
        out = []
        for cells, cats, drop in zip(table, node["categories"], node["drop"], strict=True):
            index = [next((k for k, c in enumerate(cats) if matches(cell, c)), None) for cell in cells]
            assert node["handle_unknown"] == "ignore" or None not in index, "UnknownCategory"
            for k in range(len(cats)):
                if k != drop:
                    out.append(np.array([1.0 if i == k else 0.0 for i in index], dtype=object))
        return out
    if kind == "ordinal_encoder":
        out = []
        for cells, cats in zip(table, node["categories"], strict=True):
            codes = []
            for cell in cells:
                k = next((k for k, c in enumerate(cats) if matches(cell, c)), None)
                if k is None:
                    assert node["handle_unknown"] == "use_encoded_value", "UnknownCategory"
                    codes.append(f64(node["unknown_value"]))
                elif cats[k] is None:
                    codes.append(f64(node["encoded_missing_value"]))
                else:
                    codes.append(float(k))
            out.append(np.array(codes, dtype=object))
        return out
    raise AssertionError(f"unknown node {kind}")


def tree_leaves(tree: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Walks every row: float32 cast, NaN by missing_go_to_left, else `f as f64 <= threshold`."""
    left, right = np.array(tree["children_left"]), np.array(tree["children_right"])
    feature, mgl = np.array(tree["feature"]), np.array(tree["missing_go_to_left"])
    threshold = np.array([f64(t) for t in tree["threshold"]])
    X32 = X.astype(np.float32)
    assert np.isfinite(X32[~np.isnan(X32)]).all(), "NonFiniteError"
    node = np.zeros(len(X), dtype=np.intp)
    rows = np.arange(len(X))
    while (active := left[node] != -1).any():
        n = node[active]
        f = X32[rows[active], feature[n]]
        go_left = np.where(np.isnan(f), mgl[n], f.astype(np.float64) <= threshold[n])
        node[active] = np.where(go_left, left[n], right[n])
    return node


def hgb_leaves(p: dict[str, Any], known: list[Any], X: np.ndarray) -> np.ndarray:
    left, right, feature = np.array(p["left"]), np.array(p["right"]), np.array(p["feature"])
    thr = np.array([f64(t) for t in p["num_threshold"]])
    out = np.empty(len(X), dtype=np.intp)
    for r in range(len(X)):
        n = 0
        while not p["is_leaf"][n]:
            v = X[r, feature[n]]
            as_missing = bool(p["missing_go_to_left"][n])
            if math.isnan(v):
                go_left = as_missing
            elif p["is_categorical"][n]:
                if v < 0:
                    go_left = as_missing
                else:
                    code = int(np.float64(v).astype(np.uint8))
                    if code in p["left_categories"][n]:
                        go_left = True
                    elif code in known[feature[n]]:
                        go_left = False
                    else:
                        go_left = as_missing
            else:
                go_left = bool(v <= thr[n])
            n = left[n] if go_left else right[n]
        out[r] = n
    return out


def expit(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) with the C library's exp, as scipy.special.expit."""
    return np.array([1.0 / (1.0 + math.exp(-v)) for v in z])


def numpy_sum(e: np.ndarray) -> np.ndarray:
    """numpy's pairwise sum along rows, as the spec writes it out."""
    n = e.shape[1]
    if n < 8:
        s = np.zeros(len(e))
        for k in range(n):
            s = s + e[:, k]
        return s
    if n <= 128:
        r = [e[:, i].copy() for i in range(8)]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] = r[j] + e[:, i + j]
            i += 8
        s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for k in range(i, n):
            s = s + e[:, k]
        return s
    n2 = n // 2 - (n // 2) % 8
    return numpy_sum(e[:, :n2]) + numpy_sum(e[:, n2:])


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / numpy_sum(e)[:, None]


def binary(p1: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p1, p1])


def first_argmax(a: np.ndarray) -> np.ndarray:
    return np.argmax(a, axis=1)  # ties to the first, as the spec says


def evaluate(doc: dict[str, Any], X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """predict_proba and predict of the document on X, following the spec only."""
    table = read_input(doc, X)
    if doc["preprocessing"] is not None:
        table = run_node(doc["preprocessing"], table)
    clf = doc["classifier"]
    assert len(table) == clf["n_features"], "ShapeError"
    Z = np.column_stack([numbers(c) for c in table])
    assert not np.isinf(Z).any(), "NonFiniteError"
    assert clf["accepts_nan"] or not np.isnan(Z).any(), "NonFiniteError"
    kind = clf["type"]
    if kind == "logistic_regression":
        coef = np.array([[f64(v) for v in row] for row in clf["coef"]])
        raw = np.zeros((len(Z), len(coef)))
        for k in range(len(coef)):
            s = np.zeros(len(Z))
            for j in range(Z.shape[1]):
                s = s + Z[:, j] * coef[k, j]
            raw[:, k] = s + f64(clf["intercept"][k])
        if len(coef) == 1:
            proba, label = binary(expit(raw[:, 0])), (raw[:, 0] > 0).astype(int)
        else:
            proba, label = softmax(raw), first_argmax(raw)
    elif kind == "decision_tree":
        proba = np.array(clf["tree"]["value"])[tree_leaves(clf["tree"], Z)]
        label = first_argmax(proba)
    elif kind == "forest":
        proba = np.zeros((len(Z), len(doc["classes"])))
        for tree in clf["trees"]:
            proba = proba + np.array(tree["value"])[tree_leaves(tree, Z)]
        proba = proba / float(len(clf["trees"]))
        label = first_argmax(proba)
    elif kind == "gradient_boosting":
        raw = np.tile(np.array([f64(v) for v in clf["init_raw"]]), (len(Z), 1))
        lr = f64(clf["learning_rate"])
        for stage in clf["stages"]:
            for k, tree in enumerate(stage):
                raw[:, k] = raw[:, k] + lr * np.array(tree["value"])[tree_leaves(tree, Z), 0]
        proba = {
            "logit": lambda r: binary(expit(r[:, 0])),
            "half_logit": lambda r: binary(expit(2.0 * r[:, 0])),
            "softmax": softmax,
        }[clf["link"]](raw)
        label = (raw[:, 0] >= 0).astype(int) if raw.shape[1] == 1 else first_argmax(raw)
    elif kind == "hist_gradient_boosting":
        raw = 0.0 + np.tile(np.array([f64(v) for v in clf["baseline"]]), (len(Z), 1))
        for predictors in clf["iterations"]:
            for k, p in enumerate(predictors):
                raw[:, k] = raw[:, k] + np.array([f64(v) for v in p["value"]])[hgb_leaves(p, clf["known_categories"], Z)]
        proba = binary(expit(raw[:, 0])) if clf["link"] == "logit" else softmax(raw)
        label = (raw[:, 0] > 0).astype(int) if raw.shape[1] == 1 else first_argmax(raw)
    else:
        raise AssertionError(kind)
    return proba, np.array(doc["classes"], dtype=object)[label]


# ------------------------------------------------------------------ shape checks


def node_width(node: Any, n_in: int) -> int:
    """Checks a preprocessing node's field shapes; returns its output width."""
    kind = node["type"]
    if kind == "pipeline":
        for step in node["steps"]:
            n_in = node_width(step["node"], n_in)
        return n_in
    if kind == "column_transformer":
        assert node["n_features_in"] == n_in
        out = 0
        for t in node["transformers"]:
            assert t["columns"] and all(0 <= i < n_in for i in t["columns"])
            out += len(t["columns"]) if t["node"] == "passthrough" else node_width(t["node"], len(t["columns"]))
        return out
    if kind == "simple_imputer":
        assert len(node["statistics"]) == n_in
        return n_in
    if kind == "standard_scaler":
        assert all(v is None or len(v) == n_in for v in (node["mean"], node["scale"]))
        return n_in
    if kind == "min_max_scaler":
        assert len(node["scale"]) == len(node["min"]) == n_in
        assert node["clip"] is None or len(node["clip"]) == 2
        return n_in
    if kind in ("one_hot_encoder", "ordinal_encoder"):
        assert len(node["categories"]) == n_in
        assert all(sum(c is None for c in cats) <= 1 for cats in node["categories"])
        if kind == "ordinal_encoder":
            return n_in
        assert len(node["drop"]) == n_in and node["handle_unknown"] in ("error", "ignore")
        assert all(d is None or 0 <= d < len(c) for c, d in zip(node["categories"], node["drop"], strict=True))
        return sum(len(c) - (d is not None) for c, d in zip(node["categories"], node["drop"], strict=True))
    raise AssertionError(f"unknown node {kind}")


def check_tree(tree: dict[str, Any], n_features: int, n_values: int) -> None:
    n = len(tree["children_left"])
    for key in ("children_right", "feature", "threshold", "missing_go_to_left", "value"):
        assert len(tree[key]) == n, key
    for i in range(n):
        if tree["children_left"][i] == -1:
            assert tree["children_right"][i] == -1
        else:
            assert 0 < tree["children_left"][i] < n and 0 < tree["children_right"][i] < n
            assert 0 <= tree["feature"][i] < n_features
        assert len(tree["value"][i]) == n_values


def check_shapes(doc: dict[str, Any]) -> None:
    assert doc["format"] == FORMAT and doc["version"] == FORMAT_VERSION and doc["sklearn_version"]
    columns = doc["input"]["columns"]
    assert len({c["name"] for c in columns}) == len(columns)
    assert all(c["kind"] in ("numeric", "categorical") for c in columns)
    width = len(columns) if doc["preprocessing"] is None else node_width(doc["preprocessing"], len(columns))
    clf = doc["classifier"]
    assert clf["n_features"] == width
    n_classes = len(doc["classes"])
    K = 1 if n_classes == 2 else n_classes
    kind = clf["type"]
    if kind == "logistic_regression":
        assert len(clf["coef"]) == len(clf["intercept"]) == K
        assert all(len(row) == width for row in clf["coef"])
    elif kind == "decision_tree":
        check_tree(clf["tree"], width, n_classes)
    elif kind == "forest":
        assert clf["trees"]
        for tree in clf["trees"]:
            check_tree(tree, width, n_classes)
    elif kind == "gradient_boosting":
        assert len(clf["init_raw"]) == K
        for stage in clf["stages"]:
            assert len(stage) == K
            for tree in stage:
                check_tree(tree, width, 1)
    elif kind == "hist_gradient_boosting":
        assert len(clf["baseline"]) == K and len(clf["known_categories"]) == width
        for predictors in clf["iterations"]:
            assert len(predictors) == K
            for p in predictors:
                n = len(p["value"])
                assert all(len(v) == n for v in p.values())
                for i in range(n):
                    categorical = p["is_categorical"][i] and not p["is_leaf"][i]
                    assert (p["left_categories"][i] is not None) == categorical
                    if categorical:
                        assert clf["known_categories"][p["feature"][i]] is not None
    else:
        raise AssertionError(kind)


def export(model: Any) -> dict[str, Any]:
    """to_document, checked: strict JSON, round trip, shapes."""
    doc = to_document(model)
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    check_shapes(doc)
    return doc


# ------------------------------------------------------------------ tests


def models(df: pd.DataFrame) -> dict[str, Any]:
    cats = categorical(df)
    return {
        "logistic": one_hot_pipeline(df, LogisticRegression(max_iter=5000)),
        "logistic_drop_first": one_hot_pipeline(df, LogisticRegression(max_iter=5000), drop="first", handle_unknown="error"),
        "logistic_minmax_clip": Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", make_pipeline(SimpleImputer(), MinMaxScaler(clip=True)), numeric(df)),
                            ("cat", OneHotEncoder(drop="if_binary", handle_unknown="ignore"), cats),
                        ]
                    ),
                ),
                ("clf", LogisticRegression(max_iter=5000)),
            ]
        ),
        "decision_tree_nan": ordinal_pipeline(df, DecisionTreeClassifier(max_depth=8, random_state=0)),
        "decision_tree": one_hot_pipeline(df, DecisionTreeClassifier(random_state=0)),
        "random_forest": one_hot_pipeline(df, RandomForestClassifier(n_estimators=50, random_state=0)),
        "random_forest_nan": ordinal_pipeline(df, RandomForestClassifier(n_estimators=30, random_state=0)),
        "extra_trees": ordinal_pipeline(df, ExtraTreesClassifier(n_estimators=30, random_state=0)),
        "gradient_boosting": one_hot_pipeline(df, GradientBoostingClassifier(n_estimators=60, random_state=0)),
        "gradient_boosting_exponential": one_hot_pipeline(
            df, GradientBoostingClassifier(loss="exponential", n_estimators=40, random_state=0)
        ),
        "hist_gradient_boosting": ordinal_pipeline(df, HistGradientBoostingClassifier(max_iter=60, random_state=0)),
        "hist_gradient_boosting_native": ordinal_pipeline(
            df, HistGradientBoostingClassifier(max_iter=60, categorical_features=list(range(len(cats))), random_state=0)
        ),
    }


MODELS = list(models(pd.DataFrame(columns=COLUMNS[:-1])).keys())
EXACT = {"decision_tree", "forest", "gradient_boosting", "hist_gradient_boosting"}


@pytest.mark.parametrize("name", MODELS)
def test_export_reproduces_predict_proba(german: tuple[pd.DataFrame, pd.Series], name: str) -> None:
    X, y = german
    model = models(X)[name].fit(X, y)
    doc = export(model)
    assert doc["classes"] == [1, 2]
    proba, label = evaluate(doc, X)
    expected = model.predict_proba(X)
    if doc["classifier"]["type"] in EXACT:
        assert_array_equal(proba, expected)
    else:
        assert_allclose(proba, expected, rtol=0, atol=1e-12)
    assert_array_equal(label, model.predict(X))


def test_schema_lists_columns_kinds_and_categories(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    doc = export(models(X)["logistic"].fit(X, y))
    columns = {c["name"]: c for c in doc["input"]["columns"]}
    assert list(columns) == list(X.columns)  # input order, not the transformers' order
    assert columns["age"] == {"name": "age", "kind": "numeric", "categories": None}
    assert columns["checking"]["kind"] == "categorical"
    # the encoder knows the imputer's fill value too; missing is never a category
    assert columns["checking"]["categories"] == ["A11", "A12", "A13", "A14", "missing"]


def test_multiclass(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """Three classes (housing as the target): multinomial softmax, exactly as numpy sums it."""
    X, _ = german
    y = X["housing"]
    X = X.drop(columns="housing")
    for clf in (
        LogisticRegression(max_iter=5000),
        GradientBoostingClassifier(n_estimators=20, random_state=0),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        RandomForestClassifier(n_estimators=20, random_state=0),
    ):
        model = one_hot_pipeline(X, clf).fit(X, y)
        doc = export(model)
        assert doc["classes"] == ["A151", "A152", "A153"]
        proba, label = evaluate(doc, X)
        if isinstance(clf, LogisticRegression):
            assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-12)
        else:
            assert_array_equal(proba, model.predict_proba(X))
        assert_array_equal(label, model.predict(X))


def test_numpy_sum_order() -> None:
    """The spec's pairwise summation is numpy's, for every width a softmax can have."""
    rng = np.random.default_rng(1)
    for n in (2, 3, 7, 8, 9, 16, 23, 130, 300):
        e = rng.uniform(0, 1, (500, n)) * np.exp(rng.normal(0, 3, (500, n)))
        assert_array_equal(numpy_sum(e), e.sum(axis=1))


def test_native_categorical_from_dtype(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """A bare HistGradientBoosting on pandas categories: its internal encoder is exported,
    categorical columns first, unknown categories routed as missing."""
    X, y = german
    Xc = X.astype({c: "category" for c in categorical(X)})
    model = HistGradientBoostingClassifier(max_iter=60, categorical_features="from_dtype", random_state=0).fit(Xc, y)
    doc = export(model)
    [step] = doc["preprocessing"]["steps"]
    encoder = step["node"]["transformers"][0]
    assert encoder["node"]["type"] == "ordinal_encoder"
    assert [doc["input"]["columns"][i]["name"] for i in encoder["columns"]] == categorical(X)
    proba, label = evaluate(doc, X)
    assert_array_equal(proba, model.predict_proba(Xc))
    assert_array_equal(label, model.predict(Xc))

    unseen = X.head(50).copy()
    unseen["purpose"] = "A47"  # never seen at fit: NaN after the encoder, then missing
    unseen.loc[unseen.index[::3], "checking"] = np.nan
    proba, _ = evaluate(doc, unseen)
    assert_array_equal(proba, model.predict_proba(unseen.astype({c: "category" for c in categorical(X)})))


def test_bare_classifier_and_index_selections(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """Integer and boolean column selections, a dropped column, a passthrough remainder,
    a nested pipeline and a bare array input (columns x0, x1, ...)."""
    X, y = german
    scaled = [X.columns.get_loc(c) for c in ("duration", "amount", "age")]  # the other numbers: remainder
    is_cat = np.array([c not in NUMERIC and c != "foreign" for c in X.columns])
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(with_mean=False)), scaled),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), is_cat),
            ("gone", "drop", ["foreign"]),
        ],
        remainder="passthrough",
    )
    model = Pipeline([("pre", pre), ("clf", DecisionTreeClassifier(max_depth=6, random_state=0))]).fit(X, y)
    doc = export(model)
    assert "foreign" not in [c["name"] for c in doc["input"]["columns"]]
    proba, _ = evaluate(doc, X)
    assert_array_equal(proba, model.predict_proba(X))

    arr = X[numeric(X)].to_numpy()
    bare = RandomForestClassifier(n_estimators=10, random_state=0).fit(arr, y)
    doc = export(bare)
    assert doc["preprocessing"] is None and doc["input"]["named"] is False
    assert [c["name"] for c in doc["input"]["columns"]] == [f"x{i}" for i in range(arr.shape[1])]
    proba, _ = evaluate(doc, pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])]))
    assert_array_equal(proba, bare.predict_proba(arr))


def test_imputer_missing_values_none_and_constant(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """Object columns whose missing cells are None, imputed with missing_values=None."""
    X, y = german
    cats = ["checking", "savings", "purpose"]
    Xo = X[cats].astype(object).where(X[cats].notna(), None)
    model = Pipeline(
        [
            ("impute", SimpleImputer(missing_values=None, strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
            ("clf", LogisticRegression(max_iter=5000)),
        ]
    ).fit(Xo, y)
    doc = export(model)
    assert doc["preprocessing"]["steps"][0]["node"]["missing_values"] is None
    proba, _ = evaluate(doc, Xo)
    assert_allclose(proba, model.predict_proba(Xo), rtol=0, atol=1e-12)


def test_non_finite_floats_are_strings(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    model = ordinal_pipeline(X, HistGradientBoostingClassifier(max_iter=5, random_state=0)).fit(X, y)
    text = json.dumps(to_document(model), allow_nan=False)
    assert '"NaN"' in text  # the encoder's encoded_missing_value


def numbers_only(df: pd.DataFrame) -> pd.DataFrame:
    return df[["amount", "age", "duration"]].fillna(1.0)


@pytest.mark.parametrize(
    ("build", "data", "message"),
    [
        (lambda df: one_hot_pipeline(df, SVC()), None, "step 'clf' (SVC) is not supported"),
        (
            lambda df: make_pipeline(SimpleImputer(), PCA(2), LogisticRegression()),
            numbers_only,
            "step 'pca' (PCA) is not supported",
        ),
        (
            lambda df: Pipeline(
                [
                    ("pre", ColumnTransformer([("log", FunctionTransformer(np.log1p), ["amount"])])),
                    ("clf", LogisticRegression()),
                ]
            ),
            numbers_only,
            "step 'pre/log' (FunctionTransformer) is not supported",
        ),
        (
            lambda df: one_hot_pipeline(df, LogisticRegression(max_iter=5000), min_frequency=20),
            None,
            "step 'pre/cat/onehotencoder' (OneHotEncoder): infrequent categories",
        ),
        (
            lambda df: Pipeline([("impute", SimpleImputer(add_indicator=True)), ("clf", LogisticRegression())]),
            numbers_only,
            "step 'impute' (SimpleImputer): add_indicator=True",
        ),
        (
            lambda df: one_hot_pipeline(
                df, GradientBoostingClassifier(init=DecisionTreeClassifier(max_depth=1), n_estimators=3)
            ),
            None,
            "step 'clf' (GradientBoostingClassifier): a custom init estimator",
        ),
    ],
)
def test_unsupported_steps_are_named(
    german: tuple[pd.DataFrame, pd.Series], build: Any, data: Any, message: str
) -> None:
    X, y = german
    model = build(X).fit(X if data is None else data(X), y)
    with pytest.raises(UnsupportedModelError, match=re.escape(message)) as err:
        to_document(model)
    assert isinstance(err.value, AnomalyError) and isinstance(err.value, ValueError)


def test_multi_output_refused(german: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = german
    arr = X[["amount", "age"]].fillna(0.0).to_numpy()
    model = DecisionTreeClassifier(max_depth=3).fit(arr, np.column_stack([y, y]))
    with pytest.raises(UnsupportedModelError, match="multi-output"):
        to_document(model)


def test_export_writes_atomically(german: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = german
    model = one_hot_pipeline(X, LogisticRegression(max_iter=5000)).fit(X, y)
    path = tmp_path / "credit.json"
    export_sklearn(model, path)
    assert json.loads(path.read_text()) == to_document(model)
    assert [p.name for p in tmp_path.iterdir()] == ["credit.json"]

    # With a sample, the Rust scorer is checked against the pipeline first.
    path.unlink()
    export_sklearn(model, path, sample=X.head(100))
    assert [p.name for p in tmp_path.iterdir()] == ["credit.json"]


def test_step_after_one_hot_sees_it_dense(german: tuple[pd.DataFrame, pd.Series]) -> None:
    """One-hot blocks stay sparse for the classifier; a scaler after them gets every column."""
    X, y = german
    cats = ["checking", "savings", "purpose"]
    model = Pipeline(
        [
            ("encode", OneHotEncoder(handle_unknown="ignore", drop="first", sparse_output=False)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(max_iter=5000)),
        ]
    ).fit(X[cats].fillna("none"), y)
    frame = X[cats].fillna("none")
    frame.iloc[3, 0] = "never seen"  # unknown: all zeros, scaled
    proba, _ = evaluate(export(model), frame)
    assert_allclose(proba, model.predict_proba(frame), rtol=0, atol=1e-12)
