"""The scoring side of :mod:`anomaly.credit_risk`: an exported pipeline as a
scikit-learn-style classifier whose ``predict_proba`` runs in Rust."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from anomaly import _anomaly
from anomaly.errors import EmptyInputError, ShapeError, input_error, read_model_file


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
        return cls(read_model_file(path).decode("utf-8"))

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
        if type(X) is pd.DataFrame and len(X.index) > 0:
            # Read block by block in Rust; None: a layout only pandas reads.
            # First: a one-row frame is the common call, and the checks for
            # records below cost microseconds (abstract base classes).
            scored = self._model.score_frame(X, n_threads=n_jobs)
            if scored is not None:
                return scored[0], scored[1]
        if isinstance(X, Mapping) and all(_is_scalar(v) for v in X.values()):
            records: list[Mapping[str, Any]] | None = [X]  # one applicant, as a form sends it
        elif isinstance(X, Sequence) and not isinstance(X, str) and len(X) > 0 and isinstance(X[0], Mapping):
            records = list(X)
        else:
            records = None
        if records is not None:
            if not any(records):
                raise input_error(EmptyInputError, "no applicant fields (E001: empty request)", "X")
            proba, labels = self._model.score_records([dict(r) for r in records], n_threads=n_jobs)
            return proba, labels
        frame = self._frame(X)
        if len(frame) == 0:
            raise input_error(EmptyInputError, "no applicants to score (E001: empty request)", "X")
        if len(frame) <= _SMALL:
            # A few applicants: as records, the cheapest hand-over (half the
            # cost of per-column arrays for a one-row frame).
            proba, labels = self._model.score_records(_records(frame), n_threads=n_jobs)
            return proba, labels
        proba, labels = self._model.score(_columns(frame, self._kinds), n_threads=n_jobs)
        return proba, labels

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, Mapping):
            return pd.DataFrame(X)
        if isinstance(X, Sequence) and not isinstance(X, str) and len(X) == 0:
            return pd.DataFrame()
        array = np.asarray(X, dtype=object)
        if array.ndim != 2:
            raise input_error(ShapeError, f"X: expected a DataFrame, records or a 2-D array, got {array.ndim} dimensions", "X")
        if array.shape[1] != self.n_features_in_:
            raise input_error(
                ShapeError, f"X has {array.shape[1]} columns, the model takes {self.n_features_in_}", "X"
            )
        return pd.DataFrame(array, columns=list(self.feature_names_in_))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float, np.generic)) or value is pd.NA


# Frames this small are sent as records; larger ones as columns, categories
# dictionary-encoded first (pandas' factorize runs in C; the scorer then
# matches each distinct value once).
_SMALL = 64


def _arrays(frame: pd.DataFrame) -> dict[Any, Any]:
    """Column name -> its array. ``DataFrame._iter_column_arrays`` (pandas
    internals, 15x faster than ``frame[name]`` per column) when present."""
    try:
        return dict(zip(frame.columns, frame._iter_column_arrays(), strict=True))
    except (AttributeError, TypeError, ValueError):
        return {name: frame[name].array for name in frame.columns}


def _records(frame: pd.DataFrame) -> list[dict[Any, Any]]:
    arrays = _arrays(frame)
    names = list(arrays)
    values = [a.tolist() if isinstance(a, np.ndarray) else list(a) for a in arrays.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _columns(frame: pd.DataFrame, kinds: dict[str, str]) -> list[tuple[str, Any]]:
    """The model's columns of a large ``frame``: float64 arrays for numbers,
    dictionary-encoded ``(codes, labels)`` for the rest."""
    arrays = _arrays(frame)
    out: list[tuple[str, Any]] = []
    for name, kind in kinds.items():
        if name not in arrays:
            continue  # reported by the scorer with every other problem
        values = arrays[name]
        if kind == "numeric" and isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
            out.append((name, values.astype(np.float64, copy=False)))
        elif kind == "numeric" and pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values, np.ndarray):
            out.append((name, values.to_numpy(dtype=np.float64, na_value=np.nan)))  # nullable Int64 / Float64
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            out.append((name, (codes.astype(np.int64, copy=False), list(uniques))))
    return out


def load(path: str | os.PathLike[str]) -> CreditModel:
    """Loads a model written by :func:`anomaly.credit_risk.export_sklearn`."""
    return CreditModel.from_file(path)


__all__ = ["CreditModel", "load"]
