"""The scoring side of :mod:`anomaly.credit_risk`: an exported pipeline as a
scikit-learn-style classifier whose ``predict_proba`` runs in Rust."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import EmptyInputError, ShapeError, input_error


class CreditModel:
    """An exported scikit-learn classification pipeline, scored in Rust.

    ``predict_proba`` equals the pipeline's (bit for bit for trees, forests
    and boosting; within 1e-12 for logistic regression). Input is a pandas
    DataFrame (pandas 3 ``str`` columns and ``pd.NA`` included), a list of
    dicts (one per applicant), a dict of columns, or a 2-D array for models
    fitted on arrays. Extra columns are ignored; every bad field of a
    request is reported at once by :class:`~anomaly.errors.InvalidFieldsError`
    (``.problems``). Scoring releases the GIL. Pickles carry the exported
    JSON, so a pickled model scores identically anywhere.
    """

    def __init__(self, text: str) -> None:
        self._model = _anomaly.CreditModel.from_json(text)
        columns = self._model.columns
        self.feature_names_in_ = np.array([name for name, _, _ in columns], dtype=object)
        self.n_features_in_ = len(columns)
        self._kinds = {name: kind for name, kind, _ in columns}
        self.classes_ = np.array(self._model.classes)
        self.sklearn_version_ = self._model.sklearn_version

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CreditModel:
        return cls(Path(path).read_text(encoding="utf-8"))

    def to_json(self) -> str:
        """The exported file's text."""
        return str(self._model.to_json())

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (CreditModel, (self.to_json(),))

    def __repr__(self) -> str:
        return f"CreditModel({self.n_features_in_} columns, classes={list(self.classes_)})"

    def predict_proba(self, X: Any, n_jobs: int | None = None) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order."""
        return self._score(X, n_jobs)[0]

    def predict(self, X: Any, n_jobs: int | None = None) -> np.ndarray:
        """Labels, chosen exactly as the scikit-learn estimator's ``predict`` does."""
        return self.classes_[self._score(X, n_jobs)[1]]

    def confidence(self, X: Any, n_jobs: int | None = None) -> np.ndarray:
        """The probability of each row's predicted class."""
        proba, labels = self._score(X, n_jobs)
        return proba[np.arange(len(labels)), labels]

    def score_frame(self, X: Any, n_jobs: int | None = None) -> pd.DataFrame:
        """``prediction``, ``confidence`` and one ``proba_<class>`` column per class."""
        proba, labels = self._score(X, n_jobs)
        out = pd.DataFrame({"prediction": self.classes_[labels], "confidence": proba[np.arange(len(labels)), labels]})
        for k, label in enumerate(self.classes_):
            out[f"proba_{label}"] = proba[:, k]
        return out

    def _score(self, X: Any, n_jobs: int | None) -> tuple[np.ndarray, np.ndarray]:
        frame = self._frame(X)
        if len(frame) == 0:
            raise input_error(EmptyInputError, "no applicants to score (E001: empty request)", "X")
        columns: list[tuple[str, Any]] = []
        for name in self.feature_names_in_:
            if name not in frame.columns:
                continue  # reported by the scorer with every other problem
            columns.append((str(name), _column(frame[name], self._kinds[name])))
        proba, labels = self._model.score(columns, n_threads=n_jobs)
        return proba, labels.astype(np.intp)

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, Mapping):
            return pd.DataFrame(X) if X and not all(np.isscalar(v) or v is None for v in X.values()) else pd.DataFrame([X])
        if isinstance(X, Sequence) and not isinstance(X, str) and (len(X) == 0 or isinstance(X[0], Mapping)):
            return pd.DataFrame(list(X))
        array = np.asarray(X, dtype=object)
        if array.ndim != 2:
            raise input_error(ShapeError, f"X: expected a DataFrame, records or a 2-D array, got {array.ndim} dimensions", "X")
        if array.shape[1] != self.n_features_in_:
            raise input_error(
                ShapeError, f"X has {array.shape[1]} columns, the model takes {self.n_features_in_}", "X"
            )
        return pd.DataFrame(array, columns=list(self.feature_names_in_))


def _column(series: pd.Series, kind: str) -> Any:
    """A float64 array for numeric data, else a list of str / float (NaN = missing)."""
    if kind == "numeric" and (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    cells: list[Any] = []
    for v, gone in zip(values, missing, strict=True):
        if gone:
            cells.append(float("nan"))
        elif isinstance(v, str):
            cells.append(v)
        elif isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            cells.append(float(v))
        else:
            cells.append(str(v))
    return cells


def load(path: str | os.PathLike[str]) -> CreditModel:
    """Loads a model written by :func:`anomaly.credit_risk.export_sklearn`."""
    return CreditModel.from_file(path)


__all__ = ["CreditModel", "load"]
