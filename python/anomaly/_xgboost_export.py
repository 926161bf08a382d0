"""XGBoost's ``XGBClassifier`` for :mod:`anomaly.credit_risk` (file version 2):
its booster's trees as the ``xgboost`` classifier section, the base margin
taken from XGBoost itself, native pandas category columns as an ordinal
encoder, and the refusals (docs/credit_model_format.md). Imported only when a
pipeline holds such a classifier; xgboost itself is imported only to compute
the base margin of a fitted model."""

from __future__ import annotations

import copy
import json
import math
import sys
from typing import Any

import numpy as np

from anomaly.credit_risk import Json, _category_runs, _f64, _is_missing, _unsupported

# Objectives whose predict_proba the scorer reproduces, and the name written.
_XGBOOST_OBJECTIVES = {
    "binary:logistic": "binary:logistic",
    "reg:logistic": "binary:logistic",  # the same link and predict_proba
    "multi:softprob": "multi:softprob",
}
_XGBOOST_REFUSED_OBJECTIVES = {
    "multi:softmax": "predict_proba is scipy's softmax of the float32 margins (numpy's own float32 exp); "
    "use the default multi:softprob",
    "binary:logitraw": "predict_proba returns margins, not probabilities",
    "binary:hinge": "predict_proba returns labels, not probabilities",
}


def _is_xgboost(est: Any) -> bool:
    """``est`` is exactly ``xgboost.XGBClassifier`` (xgboost is imported lazily:
    if it was never imported, no such estimator exists)."""
    module = sys.modules.get("xgboost")
    cls = getattr(module, "XGBClassifier", None)
    return cls is not None and type(est) is cls


def _f32(value: Any) -> Json:
    """A float32 value as JSON: ``float(np.float32(v))`` (exact in f64)."""
    return _f64(float(np.float32(value)))


def _check_xgboost_params(path: str, est: Any) -> None:
    objective = est.objective
    if callable(objective):
        raise _unsupported(
            path, est, "objective: a custom (callable) objective is not supported (predict_proba returns raw scores)"
        )
    booster = est.booster
    if booster not in (None, "gbtree"):
        reason = (
            "dart applies its tree weights at prediction time" if booster == "dart" else "only tree boosters are"
        )
        raise _unsupported(path, est, f"booster={booster!r} is not supported ({reason} supported: gbtree)")
    device = est.device
    if device not in (None, "cpu"):
        raise _unsupported(path, est, f"device={device!r} is not supported (only the CPU's arithmetic is reproduced)")
    multi_strategy = est.multi_strategy
    if multi_strategy not in (None, "one_output_per_tree"):
        raise _unsupported(
            path, est, f"multi_strategy={multi_strategy!r} is not supported (vector leaves; one_output_per_tree only)"
        )


def _xgboost_objective(path: str, est: Any, learner: dict[str, Any]) -> str:
    name = str(learner["objective"]["name"])
    if name in _XGBOOST_REFUSED_OBJECTIVES:
        raise _unsupported(path, est, f"objective={name!r} is not supported: {_XGBOOST_REFUSED_OBJECTIVES[name]}")
    if name not in _XGBOOST_OBJECTIVES:
        raise _unsupported(
            path, est, f"objective={name!r} is not supported (binary:logistic, reg:logistic, multi:softprob)"
        )
    return _XGBOOST_OBJECTIVES[name]


def _int(value: Any) -> int:
    return int(float(value)) if isinstance(value, str) else int(value)


def _xgboost_tree(path: str, est: Any, t: int, tree: dict[str, Any], group: int, n_features: int) -> dict[str, Json]:
    """One tree of the booster as parallel arrays over all its nodes, in XGBoost's
    numbering (-1 children at leaves)."""

    def bad(reason: str) -> Exception:
        return _unsupported(path, est, f"tree {t} of the booster: {reason}")

    param = tree.get("tree_param", {})
    if _int(param.get("size_leaf_vector", 1)) > 1:
        raise _unsupported(path, est, f"size_leaf_vector={param['size_leaf_vector']}: vector leaves are not supported")
    left = [int(c) for c in tree["left_children"]]
    right = [int(c) for c in tree["right_children"]]
    n = len(left)
    feature = [int(f) for f in tree["split_indices"]]
    conditions = tree["split_conditions"]
    default_left = [bool(d) for d in tree["default_left"]]
    split_type = [int(s) for s in tree.get("split_type", [0] * n)]
    if n == 0 or any(len(a) != n for a in (right, feature, conditions, default_left, split_type)):
        raise bad("its node arrays have different lengths")
    categories_right: list[Json] = [None] * n
    cats = [int(c) for c in tree.get("categories", [])]
    for node, start, size in zip(
        tree.get("categories_nodes", []), tree.get("categories_segments", []), tree.get("categories_sizes", []),
        strict=True,
    ):
        node, start, size = int(node), int(start), int(size)
        if not 0 <= node < n or split_type[node] != 1 or start < 0 or start + size > len(cats):
            raise bad(f"categorical node {node} is out of range")
        codes = sorted(set(cats[start : start + size]))
        if any(not 0 <= c < 1 << 24 for c in codes):
            raise bad(f"node {node}: category codes out of range")
        categories_right[node] = codes
    # Walk from the root: every reached split has two children in range, each reached once.
    reached = [False] * n
    stack = [0]
    while stack:
        i = stack.pop()
        if reached[i]:
            raise bad(f"node {i} is reached twice")
        reached[i] = True
        if left[i] == -1:
            if right[i] != -1:
                raise bad(f"node {i} has one child")
            continue
        if split_type[i] not in (0, 1) or (split_type[i] == 1) != (categories_right[i] is not None):
            raise bad(f"node {i}: split_type {split_type[i]} is not supported")
        if not 0 <= feature[i] < n_features:
            raise bad(f"node {i} splits on feature {feature[i]}, the model has {n_features}")
        for child in (left[i], right[i]):
            if not 0 < child < n:
                raise bad(f"node {i} has the child {child}")
            stack.append(child)
    value: list[Json] = []
    for i in range(n):
        v = float(np.float32(conditions[i]))
        if reached[i] and (math.isnan(v) or (left[i] == -1 and math.isinf(v))):
            raise bad(f"node {i} has the value {v!r}")
        value.append(_f64(v))
    return {
        "group": group,
        "left": left,
        "right": right,
        "feature": feature,
        "value": value,
        "default_left": default_left,
        "categories_right": categories_right,
    }


def _base_margin(learner_doc: dict[str, Any], n_features: int, k: int) -> list[float]:
    """The float32 margin XGBoost starts each row from, from XGBoost itself: the
    model with every leaf set to 0 (and no categorical split) predicts it for
    any row; adding f32 zeros is exact."""
    import xgboost

    doc = copy.deepcopy(learner_doc)
    learner = doc["learner"]
    learner["feature_types"] = ["float"] * n_features
    model = learner["gradient_booster"]["model"]
    for tree in model["trees"]:
        n = len(tree["left_children"])
        tree["left_children"] = [-1] * n
        tree["right_children"] = [-1] * n
        tree["split_conditions"] = [0.0] * n
        tree["base_weights"] = [0.0] * n
        tree["split_type"] = [0] * n
        for key in ("categories", "categories_nodes", "categories_segments", "categories_sizes"):
            tree[key] = []
    if "cats" in model:
        model["cats"] = {"enc": [], "feature_segments": [], "sorted_idx": []}
    booster = xgboost.Booster(model_file=bytearray(json.dumps(doc).encode()))
    booster.set_param({"nthread": 1})
    margin = booster.inplace_predict(np.zeros((1, n_features), dtype=np.float32), predict_type="margin")
    margin = np.asarray(margin, dtype=np.float32).reshape(-1)
    if margin.size != k:
        raise ValueError(f"the base margin has {margin.size} values, expected {k}")
    return [float(v) for v in margin]


def _check_base_margin(objective: str, learner: dict[str, Any], margin: list[float]) -> bool:
    """Cross-check of the binary margin with the formula of design 2.1:
    ``-logf(1/b - 1)`` in float32 (the Python log agrees to within an ulp)."""
    if objective != "binary:logistic":
        return True
    base = str(learner["learner_model_param"]["base_score"]).strip("[]").split(",")
    try:
        b = np.float32(float(base[0]))
    except ValueError:
        return False
    if not 0 < b < 1:
        return False
    expected = -math.log(float(np.float32(np.float32(1.0) / b - np.float32(1.0))))
    return abs(expected - margin[0]) <= 1e-6 * max(1.0, abs(expected))


# ---------------------------------------------------------------- the walker's part


def classifier(w: Any, path: str, est: Any, cols: list[int | None]) -> tuple[dict[str, Json], dict[str, Json] | None]:
    """An ``XGBClassifier``: its booster's trees (those ``predict_proba`` uses:
    up to ``best_iteration`` after early stopping) as flat arrays, and an
    encoder for the pandas ``category`` columns it was fitted on, if any."""
    _check_xgboost_params(path, est)
    booster = est.get_booster()
    raw = json.loads(booster.save_raw("json"))
    learner = raw["learner"]
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise _unsupported(path, est, f"booster={gb['name']!r} is not supported (supported: gbtree)")
    objective = _xgboost_objective(path, est, learner)
    params = learner["learner_model_param"]
    if _int(params.get("num_target", 1)) > 1:
        raise _unsupported(path, est, f"num_target={params['num_target']}: multi-target models are not supported")
    n_features = int(est.n_features_in_)
    booster_features = _int(params["num_feature"])
    if booster_features != n_features:
        raise _unsupported(path, est, f"the booster has {booster_features} features, n_features_in_ is {n_features}")
    n_classes = len(est.classes_)
    num_class = _int(params.get("num_class", 0))
    binary = objective == "binary:logistic"
    k = 1 if binary else num_class
    if (binary and (n_classes != 2 or num_class > 1)) or (not binary and num_class != n_classes):
        raise _unsupported(path, est, f"objective {objective!r} with {n_classes} classes and num_class={num_class}")
    model = gb["model"]
    indptr = [int(i) for i in model["iteration_indptr"]]
    n_iterations = len(indptr) - 1
    try:
        end = int(est.best_iteration) + 1
    except AttributeError:
        end = n_iterations
    if not 0 < end <= n_iterations:
        raise _unsupported(path, est, f"best_iteration={end - 1} with {n_iterations} iterations")
    n_trees = indptr[end]
    tree_info = [int(g) for g in model["tree_info"]]
    trees = []
    for t in range(n_trees):
        group = tree_info[t]
        if not 0 <= group < k:
            raise _unsupported(path, est, f"tree {t} of the booster: class group {group} of {k}")
        trees.append(_xgboost_tree(path, est, t, model["trees"][t], group, n_features))
    margin = _base_margin(raw, n_features, k)
    if not _check_base_margin(objective, learner, margin):
        raise _unsupported(path, est, f"base_score {params['base_score']!r} does not give the base margin {margin}")
    missing = float(est.missing)
    return {
        "type": "xgboost",
        "n_features": n_features,
        "objective": objective,
        "base_margin": [_f64(m) for m in margin],
        "missing": None if math.isnan(missing) else _f32(missing),
        "trees": trees,
    }, categories(w, path, est, learner, booster, cols)


def categories(
    w: Any, path: str, est: Any, learner: dict[str, Any], booster: Any, cols: list[int | None]
) -> dict[str, Json] | None:
    """pandas ``category`` columns given straight to XGBoost (``enable_categorical``)
    are re-coded to their fit-time categories; an unknown one is an error
    (XGBoost 3.1 and the fixed 3.2 raise), a missing one NaN: an ordinal
    encoder on those columns, in place."""
    types = learner.get("feature_types") or []
    if "c" not in types:
        return None
    node_path = f"{path}.categories"
    try:
        stored = booster.get_categories(export_to_arrow=True).to_arrow()
    except Exception as error:  # noqa: BLE001 - an XGBoost without the re-coder
        raise _unsupported(
            path, est, f"enable_categorical: the booster's categories are not available ({error}); "
            "encode the categories in the pipeline"
        ) from None
    width = len(cols)
    if len(stored) != width:
        raise _unsupported(path, est, f"enable_categorical: {len(stored)} feature categories for {width} features")
    categories: dict[int, list[Json]] = {}
    for p, (_, cats) in enumerate(stored):
        if cats is None:
            continue  # a numeric feature, or codes given as numbers
        values = []
        for c in cats.to_pylist():
            if _is_missing(c):
                raise _unsupported(node_path, est, f"feature {p} has a missing category")
            values.append(w._value(node_path, est, c, cols[p]))
        if len({type(v) is str for v in values}) > 1:
            raise _unsupported(node_path, est, f"feature {p} mixes string and number categories")
        origin = cols[p]
        if origin is not None:
            w.categories.setdefault(origin, [*values, None])
        # The missing category last (scikit-learn's place for it): a missing
        # cell becomes encoded_missing_value (NaN), anything unknown an error.
        categories[p] = [*values, None]
    if not categories:
        return None
    return _category_runs(node_path, width, categories, {"handle_unknown": "error", "unknown_value": None})
