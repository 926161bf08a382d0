"""Isolation forest: a drop-in for ``sklearn.ensemble.IsolationForest``.

Change one import line::

    # from sklearn.ensemble import IsolationForest
    from anomaly import IsolationForest

and keep the rest: same parameters and defaults, ``fit``, ``predict``,
``fit_predict``, ``score_samples``, ``decision_function``, ``offset_``,
``max_samples_``, ``n_features_in_``, ``feature_names_in_``,
``estimators_``, ``estimators_features_``, ``estimators_samples_``, dense or
sparse (CSR/CSC) input, ``warm_start``, scoring in chunks sized by
scikit-learn's ``working_memory``, the same input validation, warnings and
errors (scikit-learn's own ``validate_data``), and
``get_params``/``set_params``/``clone``/pickle. The forest is built and
scored in Rust with the GIL released; scikit-learn's own
``test_iforest.py`` runs against it (``tests/test_sklearn_iforest_peer.py``).

``explain(X)`` adds what scikit-learn lacks: per-feature contributions to
each row's mean path length (exact path-dependent Shapley values, the
quantity SHAP's ``TreeExplainer`` computes for scikit-learn's forest);
negative contributions push a row toward anomalous.

Differences, on purpose:

- ``extension_level`` (default 0, scikit-learn's axis-parallel forest):
  ``k > 0`` grows an extended isolation forest (Hariri et al.) whose cuts are
  hyperplanes through ``k + 1`` features, up to ``n_features - 1``. Its trees
  have no scikit-learn layout (no ``estimators_``) and no explanations.
- ``n_jobs=None`` uses all cores (scikit-learn: one); results are identical
  for any number of threads, so only speed changes. ``n_jobs=1`` for one.
- NaN and infinite values are rejected with scikit-learn's error
  ("Input X contains NaN") instead of being routed as missing values.
- ``sample_weight`` is not supported.
- ``estimators_`` are scikit-learn ``ExtraTreeRegressor`` objects carrying
  our trees (built on first access, then kept); a tree's ``value`` is the
  path length of a leaf (``depth + c(n)``), not a regression mean.
- The random streams differ from numpy's: with the same ``random_state``
  the trees differ from scikit-learn's, with the same accuracy (see the
  README's ROC-AUC table).
"""

from __future__ import annotations

import json
import numbers
import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from anomaly import _anomaly
from anomaly.errors import read_model_file

__all__ = ["IsolationForest", "summarize"]


def _chunk_rows(row_bytes: int, n_rows: int) -> int:
    """Rows per scoring chunk under scikit-learn's ``working_memory``.

    Looked up at call time in the module scikit-learn's own IsolationForest
    uses, so its configuration (and scikit-learn's tests, which patch it
    there) apply to this estimator exactly as to scikit-learn's.
    """
    from sklearn.ensemble import _iforest

    return int(_iforest.get_chunk_n_rows(row_bytes=row_bytes, max_n_rows=n_rows))


class IsolationForest(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Isolation forest anomaly detector (scikit-learn's API, Rust inside).

    Parameters are scikit-learn's (``n_estimators``, ``max_samples``,
    ``contamination``, ``max_features``, ``bootstrap``, ``n_jobs``,
    ``random_state``, ``verbose``, ``warm_start``) plus ``extension_level``;
    see the module docstring for the few differences.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [
            StrOptions({"auto"}),
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "contamination": [StrOptions({"auto"}), Interval(numbers.Real, 0, 0.5, closed="right")],
        "max_features": [numbers.Integral, Interval(numbers.Real, 0, 1, closed="right")],
        "bootstrap": ["boolean"],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "extension_level": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: str | int | float = "auto",
        contamination: str | float = "auto",
        max_features: int | float = 1.0,
        bootstrap: bool = False,
        n_jobs: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        warm_start: bool = False,
        extension_level: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.extension_level = extension_level

    def _threads(self) -> int | None:
        # Capped at the cores and the trees: more threads cannot be used
        # (results do not depend on the count), and each one costs a stack.
        if self.n_jobs is None:
            return None
        cores = os.cpu_count() or 1
        wanted = cores + 1 + self.n_jobs if self.n_jobs < 0 else self.n_jobs
        return max(1, min(int(wanted), cores, int(self.n_estimators)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X: Any, y: Any = None) -> IsolationForest:
        """Fits the forest (dense or sparse ``X``). ``y`` is ignored."""
        self._validate_params()
        X = validate_data(self, X, accept_sparse=["csc", "csr"], dtype=np.float32, order="C")
        n_samples = X.shape[0]
        if isinstance(self.max_samples, numbers.Integral) and self.max_samples > n_samples:
            import warnings

            warnings.warn(
                f"max_samples ({self.max_samples}) is greater than the total number of samples ({n_samples}). "
                "max_samples will be set to n_samples for estimation.",
                stacklevel=2,
            )
        threads = self._threads()
        rows = _rows(X)
        fitted = getattr(self, "_forest", None)
        if self.warm_start and fitted is not None:
            if self.n_estimators < fitted.n_estimators:
                raise ValueError(
                    f"n_estimators={self.n_estimators} must be larger or equal to "
                    f"len(estimators_)={fitted.n_estimators} when warm_start==True"
                )
            if self.n_estimators == fitted.n_estimators:
                import warnings

                warnings.warn("Warm-start fitting without increasing n_estimators does not fit new trees.", stacklevel=2)
                return self
            self._fit_rows.append((fitted.n_estimators, n_samples))
            forest = fitted.extend(rows, int(self.n_estimators), threads)
        else:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            params = {
                "n_estimators": int(self.n_estimators),
                "max_samples": self.max_samples if isinstance(self.max_samples, str) else _number(self.max_samples),
                "contamination": self.contamination if isinstance(self.contamination, str) else float(self.contamination),
                "max_features": _number(self.max_features),
                "bootstrap": bool(self.bootstrap),
                "random_state": seed,
                "extension_level": int(self.extension_level),
            }
            forest = _anomaly.IsolationForestModel.fit(rows, json.dumps(params), threads)
            self._fit_rows = [(0, n_samples)]
            self._estimators: list[Any] = []
        self._set_forest(forest)
        if self.contamination != "auto":
            self._set_forest(forest.with_offset_from_scores(self._chunked_scores(X)))
        return self

    def _set_forest(self, forest: Any) -> None:
        self._forest = forest
        self.max_samples_ = self._max_samples = forest.max_samples
        self._max_features = forest.max_features
        self.offset_ = forest.offset
        self.n_estimators_ = forest.n_estimators

    def _chunked_scores(self, X: Any) -> np.ndarray:
        """``score_samples`` of validated ``X``, in scikit-learn's chunks."""
        n = X.shape[0]
        scores = np.empty(n)
        threads = self._threads()
        for sl in gen_batches(n, _chunk_rows(16 * self._max_features, n)):
            scores[sl] = self._forest.score_samples(_rows(X[sl]), threads)
        return scores

    def score_samples(self, X: Any) -> np.ndarray:
        """Opposite of the anomaly score of Liu et al., in [-1, 0): lower is more abnormal."""
        check_is_fitted(self, "_forest")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, order="C", reset=False)
        return self._chunked_scores(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers, +1 for inliers."""
        decision = self.decision_function(X)
        is_inlier = np.ones(decision.shape[0], dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier

    def explain(self, X: Any) -> Any:
        """Each feature's contribution to each row's mean path length.

        Exact path-dependent Shapley values (TreeSHAP) of the forest's mean
        path length, the quantity SHAP's ``TreeExplainer`` explains for
        scikit-learn's IsolationForest: a row's contributions sum to its mean
        path length minus :attr:`expected_path_length_`; a negative value
        pushes the row toward anomalous. A DataFrame in gives a DataFrame
        (same index, one column per feature); otherwise an array of shape
        ``(n_samples, n_features)``. Extended forests are refused.
        """
        check_is_fitted(self, "_forest")
        frame = X if hasattr(X, "columns") and hasattr(X, "index") else None
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, order="C", reset=False)
        n = X.shape[0]
        values = np.empty((n, X.shape[1]))
        threads = self._threads()
        for sl in gen_batches(n, _chunk_rows(8 * X.shape[1] + 16 * self._max_features, n)):
            values[sl] = self._forest.explain(_rows(X[sl]), threads)[0]
        if frame is None:
            return values
        import pandas as pd

        return pd.DataFrame(values, index=frame.index, columns=[str(c) for c in frame.columns])

    @property
    def expected_path_length_(self) -> float:
        """Mean path length expected over the training rows: the base value of :meth:`explain`."""
        check_is_fitted(self, "_forest")
        return float(self._forest.expected_path_length)

    @property
    def estimators_(self) -> list[Any]:
        """The trees as scikit-learn ``ExtraTreeRegressor`` objects (built once, then kept)."""
        check_is_fitted(self, "_forest")
        cache = self.__dict__.setdefault("_estimators", [])
        for t in range(len(cache), self._forest.n_estimators):
            cache.append(self._sklearn_tree(t))
        return cache

    @property
    def estimators_features_(self) -> list[np.ndarray]:
        """The features each tree drew (all of them, in order, when it draws all: the tree then reads ``X`` as it is)."""
        check_is_fitted(self, "_forest")
        if self._max_features == self.n_features_in_:
            return [np.arange(self.n_features_in_) for _ in range(self._forest.n_estimators)]
        return [self._draws(t)[1] for t in range(self._forest.n_estimators)]

    @property
    def estimators_samples_(self) -> list[np.ndarray]:
        """The training rows each tree drew (indices into the ``X`` it was fitted on)."""
        return [self._draws(t)[0] for t in range(self._forest.n_estimators)]

    def _draws(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "_forest")
        fits = getattr(self, "_fit_rows", [])
        if not fits:
            raise AttributeError("a loaded model file does not record its training size, which the draws depend on")
        n_rows = next(n for first, n in reversed(fits) if t >= first)
        return self._forest.tree_draws(t, n_rows)

    def _sklearn_tree(self, t: int) -> Any:
        """Tree ``t`` as a fitted ``ExtraTreeRegressor`` over its features."""
        from sklearn.tree import ExtraTreeRegressor
        from sklearn.tree._tree import NODE_DTYPE, Tree

        layout = self._forest.tree_layout(t)
        if layout is None:
            raise AttributeError("estimators_ needs axis-parallel trees (extension_level=0)")
        # As in scikit-learn, a tree sees its drawn columns, in draw order,
        # only when it did not draw them all.
        width = self.n_features_in_
        local = np.arange(width)
        if self._max_features != width:
            features = self._draws(t)[1]
            width = len(features)
            local = np.full(self.n_features_in_, -2, dtype=np.int64)
            local[features] = np.arange(width)
        n = len(layout["feature"])
        nodes = np.zeros(n, dtype=NODE_DTYPE)
        nodes["left_child"] = layout["children_left"]
        nodes["right_child"] = layout["children_right"]
        nodes["feature"] = np.where(layout["feature"] >= 0, local[np.maximum(layout["feature"], 0)], -2)
        nodes["threshold"] = layout["threshold"]
        nodes["n_node_samples"] = layout["n_node_samples"]
        nodes["weighted_n_node_samples"] = layout["n_node_samples"]
        tree = Tree(width, np.ones(1, dtype=np.intp), 1)
        tree.__setstate__(
            {"max_depth": layout["max_depth"], "node_count": n, "nodes": nodes, "values": layout["value"].reshape(n, 1, 1)}
        )
        seed = int(json.loads(self._forest.params_json())["random_state"]) + t
        est = ExtraTreeRegressor(max_depth=self._forest.max_depth, max_features=1, random_state=seed)
        est.tree_, est.n_features_in_, est.n_outputs_, est.max_features_ = tree, width, 1, 1
        return est

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_estimators", None)  # rebuilt from the forest on access
        return state

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the fitted forest as a model file that ``anomaly iforest score`` reads."""
        check_is_fitted(self, "_forest")
        forest = self._forest
        if hasattr(self, "feature_names_in_"):
            forest = forest.with_feature_names([str(c) for c in self.feature_names_in_])
        with open(path, "wb") as f:
            f.write(forest.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IsolationForest:
        """Reads a model file written by :meth:`save` or ``anomaly iforest fit``."""
        forest = _anomaly.IsolationForestModel.from_bytes(read_model_file(path))
        params = json.loads(forest.params_json())
        self = cls(
            n_estimators=params["n_estimators"],
            max_samples=params["max_samples"],
            contamination=params["contamination"],
            max_features=params["max_features"],
            bootstrap=params["bootstrap"],
            random_state=params["random_state"],
            extension_level=params["extension_level"],
        )
        self._set_forest(forest)
        self._fit_rows = []
        self.n_features_in_ = forest.n_features
        if forest.feature_names:
            self.feature_names_in_ = np.asarray(forest.feature_names, dtype=object)
        return self


def _rows(X: Any) -> Any:
    """A validated float32 matrix as the core takes it: the dense array, or
    scipy's CSR arrays ``(n_features, indptr, indices, data)``."""
    if not sp.issparse(X):
        return np.ascontiguousarray(X, dtype=np.float32)
    X = X.tocsr()
    return (
        X.shape[1],
        np.ascontiguousarray(X.indptr, dtype=np.int64),
        np.ascontiguousarray(X.indices, dtype=np.int64),
        np.ascontiguousarray(X.data, dtype=np.float32),
    )


def _number(value: Any) -> int | float:
    """Integers stay integers (counts), other reals become floats (fractions)."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return int(value)
    return float(value)


def summarize(labels: Any, *, caution_percent: float = 5.0, critical_percent: float = 10.0) -> dict[str, Any]:
    """Total, anomalies, percent and state (Normal / Precaución / Crítico) of -1/+1 labels.

    The state is Precaución from ``caution_percent`` percent of anomalous
    records and Crítico from ``critical_percent``.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise _anomaly.ShapeError(f"labels: expected a 1-d array, got shape {arr.shape}")
    return dict(
        _anomaly.summarize_labels(
            arr.astype(np.int8), caution_percent=float(caution_percent), critical_percent=float(critical_percent)
        )
    )
