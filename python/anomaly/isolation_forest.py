"""Isolation forest: a drop-in for ``sklearn.ensemble.IsolationForest``.

Change one import line::

    # from sklearn.ensemble import IsolationForest
    from anomaly import IsolationForest

and keep the rest: same parameters and defaults, ``fit``, ``predict``,
``fit_predict``, ``score_samples``, ``decision_function``, ``offset_``,
``max_samples_``, ``n_features_in_``, ``feature_names_in_``, the same input
validation, warnings and errors (scikit-learn's own ``validate_data``), and
``get_params``/``set_params``/``clone``/pickle. The forest is built and
scored in Rust with the GIL released.

Differences, on purpose:

- ``extension_level`` (default 0, scikit-learn's axis-parallel forest):
  ``k > 0`` grows an extended isolation forest (Hariri et al.) whose cuts are
  hyperplanes through ``k + 1`` features, up to ``n_features - 1``.
- ``n_jobs=None`` uses all cores (scikit-learn: one); results are identical
  for any number of threads, so only speed changes. ``n_jobs=1`` for one.
- NaN and infinite values are rejected with scikit-learn's error
  ("Input X contains NaN") instead of being routed as missing values.
- Sparse input is not accepted; ``sample_weight`` is not supported.
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
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from anomaly import _anomaly

__all__ = ["IsolationForest", "summarize"]


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

    def fit(self, X: Any, y: Any = None) -> IsolationForest:
        """Fits the forest. ``y`` is ignored."""
        self._validate_params()
        X = validate_data(self, X, dtype=np.float32, order="C")
        n_samples = X.shape[0]
        if isinstance(self.max_samples, numbers.Integral) and self.max_samples > n_samples:
            import warnings

            warnings.warn(
                f"max_samples ({self.max_samples}) is greater than the total number of samples ({n_samples}). "
                "max_samples will be set to n_samples for estimation.",
                stacklevel=2,
            )
        threads = self._threads()
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
            else:
                self._forest = fitted.extend(X, int(self.n_estimators), threads)
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
            self._forest = _anomaly.IsolationForestModel.fit(X, json.dumps(params), threads)
        self.max_samples_ = self._forest.max_samples
        self.offset_ = self._forest.offset
        self.n_estimators_ = self._forest.n_estimators
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Opposite of the anomaly score of Liu et al., in [-1, 0): lower is more abnormal."""
        check_is_fitted(self, "_forest")
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        return np.asarray(self._forest.score_samples(X, self._threads()))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers, +1 for inliers."""
        decision = self.decision_function(X)
        is_inlier = np.ones(decision.shape[0], dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier

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
        with open(path, "rb") as f:
            forest = _anomaly.IsolationForestModel.from_bytes(f.read())
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
        self._forest = forest
        self.max_samples_ = forest.max_samples
        self.offset_ = forest.offset
        self.n_estimators_ = forest.n_estimators
        self.n_features_in_ = forest.n_features
        if forest.feature_names:
            self.feature_names_in_ = np.asarray(forest.feature_names, dtype=object)
        return self


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
