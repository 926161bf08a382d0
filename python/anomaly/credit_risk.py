"""Credit-default scoring: export a fitted scikit-learn pipeline for the Rust scorer.

A credit team trains its pipeline (impute, scale, one-hot encode, classify)
in scikit-learn (the classifier may be LightGBM's ``LGBMClassifier``) and
exports it once; :func:`export_sklearn` writes the
``anomaly.credit_risk`` JSON file that the Rust scorer reads and evaluates
with the same ``predict_proba`` as scikit-learn (bit for bit for trees). The
format and the exact arithmetic are specified in
``docs/credit_model_format.md``::

    from anomaly.credit_risk import export_sklearn

    export_sklearn(pipeline, "credit.json", sample=X_test)   # once, in the training job
    model = load("credit.json")                               # anywhere: no scikit-learn needed to score
    model.predict_proba(applicants)                           # == pipeline.predict_proba(applicants)

Only fitted parameters are read, so training options (``class_weight``,
``sample_weight``, ``n_jobs``...) do not matter. Anything whose arithmetic
the scorer does not reproduce is refused with
:class:`~anomaly.errors.UnsupportedModelError` naming the step.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from anomaly._credit_model import CreditModel, load
from anomaly.errors import UnsupportedModelError

__all__ = ["FORMAT", "FORMAT_VERSION", "CreditModel", "export_sklearn", "load", "to_document"]

FORMAT = "anomaly.credit_risk"
FORMAT_VERSION = 1
# Files whose classifier comes from a gradient-boosting library (LightGBM, XGBoost) are
# version 2, so an older scorer reports a newer file, not an unknown variant.
_LIBRARY_FORMAT_VERSION = 2

Json = Any
"""A JSON value (dict, list, str, int, float, bool or None)."""

_SUPPORTED_STEPS = (
    "ColumnTransformer, Pipeline, SimpleImputer, StandardScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder"
)
_SUPPORTED_CLASSIFIERS = (
    "LogisticRegression, DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier, "
    "GradientBoostingClassifier, HistGradientBoostingClassifier, lightgbm.LGBMClassifier, xgboost.XGBClassifier"
)
_CLASSIFIER_TYPES = (
    LogisticRegression,
    DecisionTreeClassifier,
    RandomForestClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
)
_SUPPORTED = f"{_SUPPORTED_STEPS}, 'passthrough', 'drop'; classifiers: {_SUPPORTED_CLASSIFIERS}"

# Largest f64 error of each classifier against scikit-learn (see the spec).
_TOLERANCE = {
    "logistic_regression": 1e-12,  # BLAS sums the dot product in its own order
    "softmax": 1e-15,  # numpy's vectorised exp differs from libm by <= 2 ulp
}


def export_sklearn(pipeline: Any, path: str | os.PathLike[str], sample: Any = None) -> None:
    """Writes ``pipeline`` (fitted) to ``path`` in the ``anomaly.credit_risk`` format.

    With ``sample`` (a DataFrame of inputs), the Rust scorer is first run on
    it and must reproduce ``pipeline.predict_proba(sample)`` (exactly for
    trees, within 1e-12 for logistic regression), else nothing is written.
    For a LightGBM classifier the sample also tells what it receives (see
    :func:`to_document`). The file is written to a temporary name and
    renamed, so a reader never sees half a model.

    Raises:
        UnsupportedModelError: a step or an option the scorer cannot
            reproduce, or a scorer mismatch on ``sample``.
    """
    doc = to_document(pipeline, sample=sample)
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    if sample is not None:
        _verify(doc, text, pipeline, sample)
    _write_atomically(Path(path), text)


def to_document(pipeline: Any, *, sample: Any = None) -> dict[str, Json]:
    """The JSON document for a fitted ``Pipeline`` or bare classifier.

    Pure: reads fitted attributes only, writes nothing. The result passes
    ``json.dumps(doc, allow_nan=False)``: non-finite floats are the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` and missing categories ``None``.

    ``sample`` (inputs as given to ``predict_proba``) matters for a LightGBM
    classifier only: LightGBM casts a non-float array to float32, which
    its fitted state does not reveal, so ``cast_f32`` is set when the
    sample's preprocessed form is one (without a sample: float64 input is
    assumed). A bare ``LGBMClassifier`` also stores its column names with
    spaces replaced by ``_``; a sample DataFrame gives back the real ones.
    """
    if isinstance(pipeline, Pipeline):
        steps = [(name, step) for name, step in pipeline.steps if step is not None and step != "passthrough"]
        if not steps:
            raise UnsupportedModelError("the pipeline has no classifier step")
        clf_name, clf = steps[-1]
        pre_steps = steps[:-1]
    else:
        clf_name, clf, pre_steps = type(pipeline).__name__, pipeline, []
    _check_classifier(clf_name, clf)
    from anomaly import _lightgbm_export as _lgb
    from anomaly import _xgboost_export as _xgb

    lightgbm = _lgb._is_lightgbm(clf)
    xgboost = _xgb._is_xgboost(clf)
    n_in = int(pipeline.n_features_in_)
    names = getattr(pipeline, "feature_names_in_", None)
    named = names is not None
    column_names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(n_in)]
    if lightgbm and not pre_steps and named:
        column_names = _lgb._lightgbm_column_names(column_names, sample)

    walker = _Walker()
    cols: list[int | None] = list(range(n_in))
    pre: dict[str, Json] | None = None
    if pre_steps:
        nodes = []
        for name, step in pre_steps:
            node, cols = walker.node(name, step, cols)
            nodes.append({"name": name, "node": node})
        pre = {"type": "pipeline", "steps": nodes}
    cast_f32 = lightgbm and _lgb._lightgbm_casts_f32(pre_steps, sample)
    classifier, internal = walker.classifier(clf_name, clf, cols, cast_f32=cast_f32)
    if internal is not None:
        pre = _append_step(pre, internal["name"], internal["node"])
    used = _used_columns(pre, n_in)

    columns = []
    for i in used:
        cats = walker.categories.get(i)
        columns.append(
            {
                "name": column_names[i],
                "kind": "categorical" if i in walker.strings else "numeric",
                "categories": [c for c in cats if c is not None] if cats is not None else None,
            }
        )
    versions: dict[str, Json] = {"version": FORMAT_VERSION, "sklearn_version": sklearn.__version__}
    if lightgbm:
        versions = {
            "version": _LIBRARY_FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "lightgbm_version": str(sys.modules["lightgbm"].__version__),
        }
    if xgboost:
        versions = {
            "version": _LIBRARY_FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "xgboost_version": str(sys.modules["xgboost"].__version__),
        }
    return {
        "format": FORMAT,
        **versions,
        "input": {"named": named, "columns": columns},
        "classes": [_class_value(c) for c in clf.classes_],
        "preprocessing": pre,
        "classifier": classifier,
    }


# ---------------------------------------------------------------- the walk


@dataclass
class _Walker:
    """Walks the fitted steps, building nodes and learning about the input columns.

    A column "origin" is the index of the input column whose raw values
    (imputed at most) a column holds, or None once a step has transformed
    them: only raw values can tell an input column's kind and categories.
    """

    categories: dict[int, list[Json]] = field(default_factory=dict)
    strings: set[int] = field(default_factory=set)
    sparse: bool = False

    def node(self, path: str, est: Any, cols: list[int | None]) -> tuple[dict[str, Json], list[int | None]]:
        """The node for ``est`` fed with columns ``cols``, and its output columns' origins."""
        kind = type(est)
        if kind is Pipeline:
            steps = []
            for name, step in est.steps:
                if step is None or step == "passthrough":
                    continue
                node, cols = self.node(f"{path}/{name}", step, cols)
                steps.append({"name": name, "node": node})
            return {"type": "pipeline", "steps": steps}, cols
        if kind is ColumnTransformer:
            return self.column_transformer(path, est, cols, internal=False)
        if kind is SimpleImputer:
            return self.simple_imputer(path, est, cols)
        if kind is StandardScaler:
            check_is_fitted(est)
            return {
                "type": "standard_scaler",
                "mean": _floats(path, est, "mean_") if est.with_mean else None,
                "scale": _floats(path, est, "scale_") if est.with_std else None,
            }, [None] * len(cols)
        if kind is MinMaxScaler:
            check_is_fitted(est)
            lo, hi = est.feature_range
            return {
                "type": "min_max_scaler",
                "scale": _floats(path, est, "scale_"),
                "min": _floats(path, est, "min_"),
                "clip": [_f64(lo), _f64(hi)] if est.clip else None,
            }, [None] * len(cols)
        if kind is OneHotEncoder:
            return self.one_hot_encoder(path, est, cols)
        if kind is OrdinalEncoder:
            return self.ordinal_encoder(path, est, cols)
        raise _unsupported(path, est)

    def column_transformer(
        self, path: str, est: Any, cols: list[int | None], *, internal: bool
    ) -> tuple[dict[str, Json], list[int | None]]:
        """Transformers in output order; ``internal``: HistGradientBoosting's own, whose
        numeric part is a FunctionTransformer(check_array), i.e. a passthrough
        (check_array only converts to float64 and would reject a string)."""
        check_is_fitted(est)
        _check_width(path, est, len(cols))
        self.sparse = self.sparse or bool(getattr(est, "sparse_output_", False))
        entries = []
        for name, trans, _ in est.transformers_:
            indices = [int(i) for i in est._transformer_to_input_indices[name]]
            out = est.output_indices_[name]
            if (isinstance(trans, str) and trans == "drop") or not indices or out.stop == out.start:
                continue
            entries.append((out.start, out.stop, name, trans, indices))
        entries.sort(key=lambda e: e[0])
        transformers = []
        out_cols: list[int | None] = []
        for start, stop, name, trans, indices in entries:
            sub = [cols[i] for i in indices]
            if isinstance(trans, str) and trans == "passthrough":
                node: Json = "passthrough"
                produced = sub
            elif type(trans) is FunctionTransformer and (trans.func is None or internal):
                # the fitted remainder="passthrough" is FunctionTransformer(func=None);
                # HistGradientBoosting's numeric part only runs check_array.
                node, produced = "passthrough", sub
            else:
                node, produced = self.node(f"{path}/{name}", trans, sub)
            if start != len(out_cols) or stop - start != len(produced):
                raise UnsupportedModelError(
                    f"step {path!r} (ColumnTransformer): transformer {name!r} writes output columns "
                    f"{start}..{stop}, the export expected {len(out_cols)}..{len(out_cols) + len(produced)}"
                )
            out_cols.extend(produced)
            transformers.append({"name": name, "columns": indices, "node": node})
        return {"type": "column_transformer", "n_features_in": len(cols), "transformers": transformers}, out_cols

    def simple_imputer(self, path: str, est: Any, cols: list[int | None]) -> tuple[dict[str, Json], list[int | None]]:
        check_is_fitted(est)
        _check_width(path, est, len(cols))
        if est.add_indicator:
            raise _unsupported(path, est, "add_indicator=True is not supported")
        stats = np.asarray(est.statistics_)
        if stats.dtype.kind == "f" and stats.dtype != np.float64:
            raise _unsupported(path, est, f"it was fitted on {stats.dtype} data (the scorer computes in float64)")
        statistics = []
        for j, value in enumerate(stats.tolist()):
            if _is_missing(value):
                raise _unsupported(
                    path, est, f"input column {j} had no observed value at fit (scikit-learn drops it); "
                    "use keep_empty_features=True or drop the column"
                )
            statistics.append(self._value(path, est, value, cols[j]))
        return {
            "type": "simple_imputer",
            "missing_values": self._missing_values(path, est),
            "statistics": statistics,
        }, list(cols)

    def one_hot_encoder(self, path: str, est: Any, cols: list[int | None]) -> tuple[dict[str, Json], list[int | None]]:
        check_is_fitted(est)
        _check_width(path, est, len(cols))
        _check_no_infrequent(path, est)
        # Without infrequent categories (refused above), "warn" and
        # "infrequent_if_exist" encode unknown categories as zeros, like "ignore".
        if est.handle_unknown not in ("error", "ignore", "warn", "infrequent_if_exist"):
            raise _unsupported(path, est, f"handle_unknown={est.handle_unknown!r} is not supported")
        _check_numeric_dtype(path, est)
        categories = self._categories(path, est, cols)
        drop_idx = est.drop_idx_
        drop = [None] * len(categories) if drop_idx is None else [None if d is None else int(d) for d in drop_idx]
        n_out = sum(len(c) - (d is not None) for c, d in zip(categories, drop, strict=True))
        return {
            "type": "one_hot_encoder",
            "categories": categories,
            "drop": drop,
            "handle_unknown": "error" if est.handle_unknown == "error" else "ignore",
        }, [None] * n_out

    def ordinal_encoder(self, path: str, est: Any, cols: list[int | None]) -> tuple[dict[str, Json], list[int | None]]:
        check_is_fitted(est)
        _check_width(path, est, len(cols))
        _check_no_infrequent(path, est)
        _check_numeric_dtype(path, est)
        use_value = est.handle_unknown == "use_encoded_value"
        return {
            "type": "ordinal_encoder",
            "categories": self._categories(path, est, cols),
            "handle_unknown": est.handle_unknown,
            "unknown_value": _f64(est.unknown_value) if use_value else None,
            "encoded_missing_value": _f64(est.encoded_missing_value),
        }, [None] * len(cols)

    def classifier(
        self, path: str, est: Any, cols: list[int | None], *, cast_f32: bool = False
    ) -> tuple[dict[str, Json], dict[str, Json] | None]:
        """The classifier node, and the step it needs appended to the preprocessing
        (``{"name", "node"}``: HistGradientBoosting's internal encoder, LightGBM's
        pandas categories) if any."""
        kind = type(est)
        n_features = int(est.n_features_in_)
        if n_features != len(cols):
            raise UnsupportedModelError(
                f"step {path!r} ({kind.__name__}) expects {n_features} features, "
                f"the preprocessing produces {len(cols)}"
            )
        base: dict[str, Json] = {"n_features": n_features}
        if kind is LogisticRegression:
            return {"type": "logistic_regression", **base, "accepts_nan": False, **_logistic(path, est)}, None
        if kind is DecisionTreeClassifier:
            return {
                "type": "decision_tree",
                **base,
                "accepts_nan": self._tree_accepts_nan(est),
                "tree": _tree(est.tree_, est.n_classes_),
            }, None
        if kind in (RandomForestClassifier, ExtraTreesClassifier):
            return {
                "type": "forest",
                "kind": "random_forest" if kind is RandomForestClassifier else "extra_trees",
                **base,
                "accepts_nan": self._tree_accepts_nan(est.estimators_[0]),
                "trees": [_tree(t.tree_, est.n_classes_) for t in est.estimators_],
            }, None
        if kind is GradientBoostingClassifier:
            return {"type": "gradient_boosting", **base, "accepts_nan": False, **_gradient_boosting(path, est)}, None
        if kind is HistGradientBoostingClassifier:
            internal = None
            if est._preprocessor is not None:
                name = f"{path}._preprocessor"
                node, cols = self.column_transformer(name, est._preprocessor, cols, internal=True)
                internal = {"name": name, "node": node}
            return {"type": "hist_gradient_boosting", **base, "accepts_nan": True, **_hist_gradient_boosting(est)}, internal
        from anomaly import _lightgbm_export as _lgb

        if _lgb._is_lightgbm(est):
            return _lgb.classifier(self, path, est, cols, cast_f32)
        from anomaly import _xgboost_export as _xgb

        if _xgb._is_xgboost(est):
            return _xgb.classifier(self, path, est, cols)
        raise _unsupported(path, est)

    # helpers

    def _tree_accepts_nan(self, tree: Any) -> bool:
        # scikit-learn routes NaN through trees only for dense input whose
        # estimator declares allow_nan (splitter="best", no monotonic_cst...).
        return bool(tree.__sklearn_tags__().input_tags.allow_nan) and not self.sparse

    def _categories(self, path: str, est: Any, cols: list[int | None]) -> list[list[Json]]:
        out = []
        for j, cats in enumerate(est.categories_):
            values = [self._value(path, est, c, cols[j]) if not _is_missing(c) else None for c in cats.tolist()]
            present = [v for v in values if v is not None]
            if len(values) - len(present) > 1:
                raise _unsupported(path, est, f"input column {j} has both None and NaN as categories")
            if len({type(v) is str for v in present}) > 1:
                raise _unsupported(path, est, f"input column {j} mixes string and number categories")
            origin = cols[j]
            if origin is not None:
                self.categories.setdefault(origin, values)
            out.append(values)
        return out

    def _value(self, path: str, est: Any, value: Any, origin: int | None) -> Json:
        """A category or fill value as JSON; a string marks its input column categorical."""
        if isinstance(value, (str, np.str_)):
            if origin is not None:
                self.strings.add(origin)
            return str(value)
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and np.isfinite(value):
            return float(value)
        raise _unsupported(path, est, f"the value {value!r} is neither a string nor a finite number")

    def _missing_values(self, path: str, est: Any) -> Json:
        mv = est.missing_values
        if _is_missing(mv):
            return None
        if isinstance(mv, (str, np.str_, int, np.integer, float, np.floating)) and not isinstance(mv, bool):
            return self._value(path, est, mv, None)
        raise _unsupported(path, est, f"missing_values={mv!r} is not supported")


# ---------------------------------------------------------------- classifiers


def _check_classifier(path: str, est: Any) -> None:
    """Refuses other, unfitted and multi-output classifiers before walking anything."""
    from anomaly import _lightgbm_export as _lgb
    from anomaly import _xgboost_export as _xgb

    if type(est) not in _CLASSIFIER_TYPES and not _lgb._is_lightgbm(est) and not _xgb._is_xgboost(est):
        raise _unsupported(path, est)
    check_is_fitted(est)
    if isinstance(est.classes_, list) or getattr(est, "n_outputs_", 1) != 1:
        raise _unsupported(path, est, "multi-output classifiers are not supported")


def _logistic(path: str, est: Any) -> dict[str, Json]:
    if getattr(est, "multi_class", "auto") == "ovr" and len(est.classes_) > 2:
        raise _unsupported(path, est, "one-vs-rest multiclass is not supported (use the multinomial default)")
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim != 2 or coef.shape[0] != (1 if len(est.classes_) == 2 else len(est.classes_)):
        raise _unsupported(path, est, f"coef_ of shape {coef.shape} is not supported")
    return {
        "coef": [[_f64(v) for v in row] for row in coef],
        "intercept": [_f64(v) for v in np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), (coef.shape[0],))],
    }


def _tree(tree: Any, n_classes: Any) -> dict[str, Json]:
    """A scikit-learn ``tree_`` as parallel arrays; classifier trees keep their
    per-node class fractions, GradientBoosting's regression trees one value."""
    value = np.asarray(tree.value)
    if value.shape[1] != 1:
        raise UnsupportedModelError("trees with several outputs are not supported")
    values = value[:, 0, :]
    if n_classes is not None and values.shape[1] != int(n_classes):
        raise UnsupportedModelError(f"a tree has {values.shape[1]} classes, the model {n_classes}")
    return {
        "children_left": tree.children_left.tolist(),
        "children_right": tree.children_right.tolist(),
        "feature": tree.feature.tolist(),
        "threshold": [_f64(v) for v in tree.threshold],
        "missing_go_to_left": [bool(v) for v in tree.missing_go_to_left],
        "value": [[_f64(v) for v in row] for row in values],
    }


def _gradient_boosting(path: str, est: Any) -> dict[str, Json]:
    loss = type(est._loss).__name__
    links = {"HalfBinomialLoss": "logit", "ExponentialLoss": "half_logit", "HalfMultinomialLoss": "softmax"}
    if loss not in links:
        raise _unsupported(path, est, f"loss {loss} is not supported")
    if est.init is not None and not (isinstance(est.init, str) and est.init == "zero"):
        raise _unsupported(path, est, "a custom init estimator is not supported (use init=None or 'zero')")
    # The prior (or zero) raw score does not depend on X: one row of zeros gives it.
    init = est._raw_predict_init(np.zeros((1, est.n_features_in_), dtype=np.float32))[0]
    return {
        "link": links[loss],
        "init_raw": [_f64(v) for v in init],
        "learning_rate": _f64(est.learning_rate),
        "stages": [[_tree(t.tree_, None) for t in stage] for stage in est.estimators_],
    }


def _hist_gradient_boosting(est: Any) -> dict[str, Json]:
    loss = type(est._loss).__name__
    links = {"HalfBinomialLoss": "logit", "HalfMultinomialLoss": "softmax"}
    if loss not in links:
        raise _unsupported(type(est).__name__, est, f"loss {loss} is not supported")
    n_features = int(est.n_features_in_)
    known: list[Json] = [None] * n_features
    if est._preprocessor is not None:
        bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        for f in np.flatnonzero(est._bin_mapper.is_categorical):
            known[int(f)] = _bitset_codes(bitsets[f_idx_map[f]])
    iterations = []
    for predictors in est._predictors:
        iterations.append([_predictor(p) for p in predictors])
    return {
        "link": links[loss],
        "baseline": [_f64(v) for v in np.asarray(est._baseline_prediction, dtype=np.float64).ravel()],
        "known_categories": known,
        "iterations": iterations,
    }


def _predictor(predictor: Any) -> dict[str, Json]:
    nodes = predictor.nodes
    bitsets = predictor.raw_left_cat_bitsets
    left_categories = [
        _bitset_codes(bitsets[int(n["bitset_idx"])]) if n["is_categorical"] and not n["is_leaf"] else None
        for n in nodes
    ]
    return {
        "value": [_f64(v) for v in nodes["value"]],
        "feature": nodes["feature_idx"].tolist(),
        "num_threshold": [_f64(v) for v in nodes["num_threshold"]],
        "missing_go_to_left": [bool(v) for v in nodes["missing_go_to_left"]],
        "left": nodes["left"].tolist(),
        "right": nodes["right"].tolist(),
        "is_leaf": [bool(v) for v in nodes["is_leaf"]],
        "is_categorical": [bool(v) for v in nodes["is_categorical"]],
        "left_categories": left_categories,
    }


def _bitset_codes(bitset: Any) -> list[int]:
    """The codes set in a scikit-learn 256-bit bitset (8 little-endian uint32 words)."""
    words = np.asarray(bitset, dtype=np.uint32)
    return [c for c in range(256) if (int(words[c // 32]) >> (c % 32)) & 1]


# ---------------------------------------------------------------- small helpers


def _category_runs(
    name: str, width: int, categories: dict[int, list[Json]], unknown: dict[str, Json]
) -> dict[str, Json]:
    """A boosting library's own category columns (position -> categories) as
    a column transformer that keeps the column order: an ordinal encoder on
    each run of category columns (unknown ones as ``unknown`` says, missing
    ones NaN), passthrough elsewhere."""
    transformers: list[Json] = []
    start = 0
    while start < width:
        is_cat = start in categories
        stop = start + 1
        while stop < width and (stop in categories) == is_cat:
            stop += 1
        run = list(range(start, stop))
        node: Json = "passthrough"
        if is_cat:
            node = {
                "type": "ordinal_encoder",
                "categories": [categories[p] for p in run],
                **unknown,
                "encoded_missing_value": "NaN",
            }
        transformers.append({"name": f"{'categories' if is_cat else 'numbers'}_{start}", "columns": run, "node": node})
        start = stop
    return {"name": name, "node": {"type": "column_transformer", "n_features_in": width, "transformers": transformers}}


def _append_step(pre: dict[str, Json] | None, name: str, node: dict[str, Json]) -> dict[str, Json]:
    if pre is None:
        return {"type": "pipeline", "steps": [{"name": name, "node": node}]}
    return {"type": "pipeline", "steps": [*pre["steps"], {"name": name, "node": node}]}


def _used_columns(pre: dict[str, Json] | None, n_in: int) -> list[int]:
    """Input columns some step reads; the first ColumnTransformer is renumbered to
    them, so the schema (and the scorer's required columns) leave out dropped ones."""
    first = pre
    while first is not None and first["type"] == "pipeline":
        first = first["steps"][0]["node"] if first["steps"] else None
    if first is None or first["type"] != "column_transformer":
        return list(range(n_in))
    used = sorted({i for t in first["transformers"] for i in t["columns"]})
    position = {old: new for new, old in enumerate(used)}
    for t in first["transformers"]:
        t["columns"] = [position[i] for i in t["columns"]]
    first["n_features_in"] = len(used)
    return used


def _check_width(path: str, est: Any, n: int) -> None:
    if int(est.n_features_in_) != n:
        raise UnsupportedModelError(
            f"step {path!r} ({type(est).__name__}) was fitted on {est.n_features_in_} columns, it receives {n}"
        )


def _check_no_infrequent(path: str, est: Any) -> None:
    if est.min_frequency is not None or est.max_categories is not None or getattr(est, "_infrequent_enabled", False):
        raise _unsupported(path, est, "infrequent categories (min_frequency, max_categories) are not supported")


def _check_numeric_dtype(path: str, est: Any) -> None:
    # 0/1 and category codes are exact in any float or integer dtype.
    if np.dtype(est.dtype).kind not in "fiu":
        raise _unsupported(path, est, f"dtype={est.dtype!r} is not supported")


def _floats(path: str, est: Any, attr: str) -> list[Json]:
    values = np.asarray(getattr(est, attr))
    if values.dtype != np.float64:
        raise _unsupported(path, est, f"{attr} is {values.dtype}: it was fitted on non-float64 data")
    return [_f64(v) for v in values]


def _f64(value: Any) -> Json:
    """A float field: a JSON number, or "NaN"/"Infinity"/"-Infinity" (JSON has none)."""
    x = float(value)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _class_value(value: Any) -> Json:
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return float(value)
    raise UnsupportedModelError(f"class label {value!r} is neither a string, a bool nor a finite number")


def _is_missing(value: Any) -> bool:
    """None, NaN and pd.NA: the one missing value of the format."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return type(value).__name__ in ("NAType", "NaTType")


def _unsupported(path: str, est: Any, reason: str | None = None) -> UnsupportedModelError:
    what = f"step {path!r} ({type(est).__name__})"
    if reason is None:
        return UnsupportedModelError(f"{what} is not supported; supported: {_SUPPORTED}")
    return UnsupportedModelError(f"{what}: {reason}")


# ---------------------------------------------------------------- verification and writing


def _verify(doc: dict[str, Json], text: str, pipeline: Any, sample: Any) -> None:
    """Scores ``sample`` with the Rust scorer and compares with scikit-learn."""
    expected = np.asarray(pipeline.predict_proba(sample), dtype=np.float64)
    got = np.asarray(CreditModel(text).predict_proba(sample), dtype=np.float64)
    if got.shape != expected.shape:
        raise UnsupportedModelError(
            f"the exported model gives probabilities of shape {got.shape}, scikit-learn {expected.shape}; "
            "nothing was written"
        )
    classifier = doc["classifier"]
    tolerance = _TOLERANCE.get(classifier["type"], 0.0)
    if classifier.get("link") == "softmax":
        tolerance = _TOLERANCE["softmax"]
    diff = np.abs(got - expected)
    if not np.all(diff <= tolerance):
        row = int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff).max(axis=1)))
        raise UnsupportedModelError(
            f"the exported model does not reproduce predict_proba: row {row} differs by "
            f"{float(np.nanmax(diff[row])) if not np.isnan(diff[row]).all() else 'NaN'} "
            f"(allowed {tolerance}); nothing was written"
        )


def _write_atomically(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
