"""DataFrames read block by block in Rust (anomaly-py/src/frame.rs).

Every pandas layout the reader knows (numpy blocks of every numeric dtype
and of objects, Arrow-backed strings and numbers, sliced and multi-chunk
Arrow arrays, python-backed strings, categoricals, nullable masked numbers)
must score exactly as scikit-learn does on the same frame, and must really
take the Rust path (``score_frame`` returns scores, not ``None``); a layout
it does not know (datetimes) falls back to the Python hand-over with the
same answers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from anomaly.credit_risk import export_sklearn, load
from anomaly.errors import InvalidFieldsError

pa = pytest.importorskip("pyarrow")

NUMERIC = ["amount", "age", "rate"]
CATEGORIES = ["purpose", "housing"]


def applicants(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "amount": rng.gamma(2.0, 1500.0, n).round(2),
        "age": rng.integers(19, 75, n).astype(np.float64),
        "rate": rng.integers(1, 5, n),
        "purpose": rng.choice(["car", "radio/TV", "furniture", "education", "business"], n),
        "housing": rng.choice(["own", "rent", "free"], n),
    })  # fmt: skip
    df.loc[rng.random(n) < 0.08, "age"] = np.nan
    df.loc[rng.random(n) < 0.08, "purpose"] = None
    risk = df["amount"] / 3000 - (df["housing"] == "own") + rng.normal(0, 1, n)
    return df, (risk > 0.3).astype(int)


def one_hot(clf: Any) -> Pipeline:
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORIES),
    ])  # fmt: skip
    return Pipeline([("pre", pre), ("clf", clf)])


def ordinal(clf: Any) -> Pipeline:
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=np.nan)
    return Pipeline([("pre", ColumnTransformer([("cat", codes, CATEGORIES)], remainder="passthrough")), ("clf", clf)])


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Pipeline, Any]]:
    X, y = applicants()
    out = {}
    work = Path(tempfile.mkdtemp())
    for name, pipeline in {
        "logistic": one_hot(LogisticRegression(max_iter=2000)),
        "hist": ordinal(HistGradientBoostingClassifier(max_iter=30, random_state=0)),
    }.items():
        pipeline.fit(X, y)
        export_sklearn(pipeline, work / f"{name}.json", sample=X)
        out[name] = (pipeline, load(work / f"{name}.json"))
    return out


def as_object(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: object for c in CATEGORIES})


def python_strings(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: pd.StringDtype("python") for c in CATEGORIES})


def categorical(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: "category" for c in CATEGORIES})


def masked(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"age": "Float64", "rate": "Int64"})


def narrow(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"amount": np.float32, "rate": np.int8})


def arrow_numbers(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"amount": pd.ArrowDtype(pa.float64()), "rate": pd.ArrowDtype(pa.int64())})


def arrow_small_strings(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: pd.ArrowDtype(pa.string()) for c in CATEGORIES})


def chunked(df: pd.DataFrame) -> pd.DataFrame:
    """Two Arrow chunks per string column, the second starting at an offset."""
    half = len(df) // 2
    out = pd.concat([df.iloc[:half], df.iloc[half:]], ignore_index=True)
    assert [c.offset for c in out["purpose"].array._pa_array.chunks] == [0, half]
    return out


def sliced(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[37:301]


def one_row(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[[5]]


def extra_and_reordered(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(note="x", id=np.arange(len(df)))[list(reversed(df.columns)) + ["note", "id"]]


LAYOUTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "default (str = Arrow)": lambda df: df,
    "object": as_object,
    "python strings": python_strings,
    "categorical": categorical,
    "masked Float64/Int64": masked,
    "float32 and int8": narrow,
    "Arrow numbers": arrow_numbers,
    "Arrow utf8 strings": arrow_small_strings,
    "chunked": chunked,
    "sliced": sliced,
    "one row": one_row,
    "one row, categorical": lambda df: categorical(df).iloc[[7]],
    "extra and reordered columns": extra_and_reordered,
}


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The same values as numpy columns scikit-learn takes: float64 with NaN,
    objects with NaN (it refuses pd.NA in some layouts)."""
    out = {}
    for c in frame.columns:
        col = frame[c]
        if c in CATEGORIES:
            out[c] = np.array([np.nan if pd.isna(v) else str(v) for v in col], dtype=object)
        elif pd.api.types.is_numeric_dtype(col.dtype):
            out[c] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[c] = col.to_numpy()
    return pd.DataFrame(out, index=frame.index)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", ["logistic", "hist"])
def test_layouts_score_in_rust_as_sklearn(models: dict[str, Any], name: str, layout: str) -> None:
    pipeline, model = models[name]
    X, _ = applicants(300, seed=1)
    frame = LAYOUTS[layout](X)
    scored = model._model.score_frame(frame)
    assert scored is not None, f"{layout}: the Rust reader fell back to Python"
    expected = pipeline.predict_proba(plain(frame))
    np.testing.assert_allclose(scored[0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(frame), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(frame), pipeline.predict(plain(frame)))


def test_unknown_layout_falls_back(models: dict[str, Any]) -> None:
    pipeline, model = models["logistic"]
    X, _ = applicants(50, seed=2)
    frame = X.assign(amount=X["amount"].astype("timedelta64[s]"))  # a dtype the reader does not take
    assert model._model.score_frame(frame) is None
    # The Python hand-over reports what scikit-learn's input check refuses.
    with pytest.raises(InvalidFieldsError):
        model.predict_proba(frame)


def test_bad_fields_are_named_with_their_rows(models: dict[str, Any]) -> None:
    _, model = models["logistic"]
    X, _ = applicants(40, seed=3)
    frame = X.astype({"age": object}).drop(columns="housing")
    frame.loc[3, "age"] = "thirty"
    with pytest.raises(InvalidFieldsError) as err:
        model.predict_proba(frame)
    found = {(p["field"], p["row"]) for p in err.value.problems}
    assert ("housing", None) in found and ("age", 3) in found


def test_names_cache_follows_the_frame(models: dict[str, Any]) -> None:
    """Frames with the same columns in another order, or renamed, are read by their own names."""
    pipeline, model = models["logistic"]
    X, _ = applicants(30, seed=4)
    for frame in (X, X[list(reversed(X.columns))], X.rename(columns={"amount": "amount_eur"}).assign(amount=X["amount"] * 2)):
        np.testing.assert_allclose(model.predict_proba(frame), pipeline.predict_proba(frame), rtol=0, atol=1e-12)


def test_columns_the_model_does_not_use_are_not_read(models: dict[str, Any]) -> None:
    """An extra column of a dtype the reader does not take leaves the Rust path on."""
    pipeline, model = models["hist"]
    X, _ = applicants(30, seed=5)
    frame = X.assign(seen=pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(len(X)), unit="D"))
    assert model._model.score_frame(frame) is not None
    np.testing.assert_allclose(model.predict_proba(frame), pipeline.predict_proba(X), rtol=0, atol=1e-12)
