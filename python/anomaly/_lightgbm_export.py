"""LightGBM's ``LGBMClassifier`` for :mod:`anomaly.credit_risk` (file version 2):
its booster's trees as the ``lightgbm`` classifier section, pandas category
columns as an ordinal encoder, and the refusals (docs/credit_model_format.md).
Imported only when a pipeline holds such a classifier; lightgbm itself is
never imported here."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np

from anomaly.credit_risk import Json, _category_runs, _f64, _is_missing, _unsupported

# Prediction-time parameters an LGBMClassifier forwards to Booster.predict
# (LGBMModel._process_params(stage="predict")): canonical name -> (aliases,
# default). pred_early_stop changes predict_proba; the others select raw
# scores, leaves, contributions or iterations.
_LIGHTGBM_PREDICT_PARAMS: dict[str, tuple[tuple[str, ...], Any]] = {
    "pred_early_stop": (("pred_early_stop",), False),
    "start_iteration_predict": (("start_iteration_predict",), 0),
    "num_iteration_predict": (("num_iteration_predict",), -1),
    "predict_raw_score": (("predict_raw_score", "raw_score", "is_predict_raw_score", "predict_rawscore"), False),
    "predict_leaf_index": (("predict_leaf_index", "leaf_index", "is_predict_leaf_index"), False),
    "predict_contrib": (("predict_contrib", "contrib", "is_predict_contrib"), False),
}
_LIGHTGBM_OBJECTIVES = {
    # dump_model()'s objective name -> the options its string carries
    "binary": {"sigmoid"},
    "cross_entropy": set(),
    "multiclass": {"num_class"},
    "multiclassova": {"num_class", "sigmoid"},
}
_LIGHTGBM_INF = 1e300  # Common::AvoidInf writes a threshold of +-inf as +-1e300 in dump_model


def _is_lightgbm(est: Any) -> bool:
    """``est`` is exactly ``lightgbm.LGBMClassifier`` (lightgbm is imported lazily:
    if it was never imported, no such estimator exists)."""
    module = sys.modules.get("lightgbm")
    cls = getattr(module, "LGBMClassifier", None)
    return cls is not None and type(est) is cls


def _check_lightgbm_params(path: str, est: Any) -> None:
    params = est.get_params()
    for alias in ("linear_tree", "linear_trees"):
        if params.get(alias):
            raise _unsupported(
                path, est, f"{alias}={params[alias]!r} is not supported "
                "(linear trees add a linear model of the features per leaf)"
            )
    for name, (aliases, default) in _LIGHTGBM_PREDICT_PARAMS.items():
        for alias in aliases:
            value = params.get(alias)
            if value is not None and value != default:
                raise _unsupported(
                    path, est, f"{alias}={value!r}: the prediction-time parameter {name} is forwarded to "
                    "Booster.predict and is not supported"
                )


def _lightgbm_objective(path: str, est: Any, dump: dict[str, Any]) -> tuple[str, float]:
    """The link function's name and sigmoid, from the booster's objective string
    (``"binary sigmoid:1"``, ``"multiclassova num_class:3 sigmoid:1"``...)."""
    objective = dump.get("objective")
    if callable(getattr(est, "_objective", None)) or callable(est.objective) or objective is None:
        raise _unsupported(
            path, est, "objective: a custom (callable) objective is not supported (predict_proba returns raw scores)"
        )
    name, *words = str(objective).split()
    options = dict(w.partition(":")[::2] for w in words)
    if name not in _LIGHTGBM_OBJECTIVES or set(options) != _LIGHTGBM_OBJECTIVES[name] or not all(options.values()):
        raise _unsupported(
            path, est, f"objective={objective!r} is not supported (binary, cross_entropy, multiclass, multiclassova)"
        )
    if "num_class" in options and options["num_class"] != str(len(est.classes_)):
        raise _unsupported(path, est, f"objective={objective!r} with {len(est.classes_)} classes")
    try:
        sigmoid = float(options.get("sigmoid", "1"))
    except ValueError:
        sigmoid = float("nan")
    if not (np.isfinite(sigmoid) and sigmoid > 0):
        raise _unsupported(path, est, f"sigmoid: {options['sigmoid']!r} in objective={objective!r} is not supported")
    return name, sigmoid


class _LightGBMText:
    """What ``Booster.model_to_string()`` has and ``dump_model()`` lacks: exact
    infinite thresholds (the dump writes +-1e300), the categorical features
    and the features' bin infos."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._thresholds: dict[int, list[str]] | None = None

    def _line(self, pattern: str) -> str | None:
        match = re.search(pattern, self.text, re.M)
        return match.group(1) if match else None

    def categorical_features(self) -> list[int] | None:
        line = self._line(r"^\[categorical_feature: ([^\]\n]*)\]$")
        if line is None:
            return None
        try:
            return [int(v) for v in line.split(",") if v.strip()]
        except ValueError:
            return None

    def feature_infos(self) -> list[str] | None:
        line = self._line(r"^feature_infos=(.*)$")
        return None if line is None else line.split(" ")

    def threshold(self, tree: int, node: int) -> float | None:
        """Node ``node``'s threshold in tree ``tree`` as the text model writes it
        (``inf``, ``-inf`` or 17 significant digits), or None."""
        if self._thresholds is None:
            self._thresholds = {}
            starts = [(int(m.group(1)), m.end()) for m in re.finditer(r"^Tree=(\d+)$", self.text, re.M)]
            end = self.text.find("\nend of trees")
            line = re.compile(r"^threshold=(.*)$", re.M)
            for i, (index, pos) in enumerate(starts):
                stop = starts[i + 1][1] if i + 1 < len(starts) else (end if end >= 0 else len(self.text))
                match = line.search(self.text, pos, stop)
                if match:
                    self._thresholds[index] = match.group(1).split(" ")
        values = self._thresholds.get(tree)
        if values is None or not 0 <= node < len(values):
            return None
        try:
            return float(values[node])
        except ValueError:
            return None


def _lightgbm_codes_fit(infos: list[str] | None, feature: int, n_categories: int) -> bool:
    """Whether the bin info of categorical ``feature`` (its codes seen at fit,
    ``-1:2:0:1``; ``none`` when constant) fits ``n_categories`` pandas categories."""
    if infos is None or not 0 <= feature < len(infos):
        return False
    info = infos[feature]
    if info == "none":
        return True
    try:
        return all(int(c) < n_categories for c in info.split(":"))
    except ValueError:
        return False  # "[min:max]": a numerical feature


def _lightgbm_tree(path: str, est: Any, info: dict[str, Any], n_features: int, text: _LightGBMText) -> dict[str, Json]:
    """One ``tree_info`` entry of ``dump_model()`` as parallel arrays over the
    internal nodes in LightGBM's numbering (``split_index``); a child >= 0 is an
    internal node, a child < 0 the leaf ``~child``."""
    t = int(info["tree_index"])
    n_leaves = int(info["num_leaves"])
    n = n_leaves - 1
    root = info["tree_structure"]

    def bad(reason: str) -> UnsupportedModelError:
        return _unsupported(path, est, f"tree {t} of the booster: {reason}")

    def leaf(node: dict[str, Any]) -> Json:
        if any(key in node for key in ("leaf_const", "leaf_coeff", "leaf_features")):
            raise _unsupported(path, est, "linear_tree: linear trees are not supported")
        return _f64(node["leaf_value"])

    split_feature: list[Json] = [None] * n
    threshold: list[Json] = [None] * n
    missing_type: list[Json] = [None] * n
    default_left: list[Json] = [None] * n
    categories_left: list[Json] = [None] * n
    left_child: list[Json] = [None] * n
    right_child: list[Json] = [None] * n
    leaf_value: list[Json] = [None] * n_leaves
    if n < 0 or n_leaves > 1 << 30:
        raise bad(f"num_leaves={n_leaves}")
    if n == 0:
        if "split_index" in root:
            raise bad("one leaf but a split")
        leaf_value[0] = leaf(root)
    seen = [False] * n
    stack: list[tuple[dict[str, Any], int]] = [(root, -1)] if n else []
    while stack:
        node, parent = stack.pop()
        if "split_index" not in node:
            j = int(node["leaf_index"])
            if not 0 <= j < n_leaves or leaf_value[j] is not None:
                raise bad(f"leaf {j} is out of range or reached twice")
            leaf_value[j] = leaf(node)
            continue
        i = int(node["split_index"])
        if not (i == 0 if parent < 0 else parent < i < n) or seen[i]:
            raise bad(f"node {i} (parent {parent}) is not numbered as LightGBM numbers them")
        seen[i] = True
        feature = int(node["split_feature"])
        if not 0 <= feature < n_features:
            raise bad(f"node {i} splits on feature {feature}, the model has {n_features}")
        split_feature[i] = feature
        decision = node["decision_type"]
        if decision == "<=":
            value = float(node["threshold"])
            if abs(value) == _LIGHTGBM_INF:
                exact = text.threshold(t, i)
                if exact is None or not (exact == value or (np.isinf(exact) and (exact > 0) == (value > 0))):
                    raise bad(
                        f"node {i}: the threshold {value!r} (an infinite one in dump_model) is not in the text model"
                    )
                value = exact
            threshold[i] = _f64(value)
        elif decision == "==":
            raw = node["threshold"]
            codes = sorted({int(c) for c in str(raw).split("||")}) if isinstance(raw, str) else [int(raw)]
            if any(c < 0 for c in codes):
                raise bad(f"node {i}: negative category codes {codes}")
            categories_left[i] = codes
        else:
            raise bad(f"node {i}: decision_type {decision!r} is not supported")
        if node["missing_type"] not in ("None", "Zero", "NaN"):
            raise bad(f"node {i}: missing_type {node['missing_type']!r} is not supported")
        missing_type[i] = node["missing_type"]
        default_left[i] = bool(node["default_left"])
        children = []
        for side, out in (("left_child", left_child), ("right_child", right_child)):
            child = node[side]
            out[i] = int(child["split_index"]) if "split_index" in child else ~int(child["leaf_index"])
            children.append(child)
        stack.extend((child, i) for child in reversed(children))
    if not all(seen) or any(v is None for v in leaf_value):
        raise bad("some nodes or leaves are unreachable")
    return {
        "split_feature": split_feature,
        "threshold": threshold,
        "missing_type": missing_type,
        "default_left": default_left,
        "categories_left": categories_left,
        "left_child": left_child,
        "right_child": right_child,
        "leaf_value": leaf_value,
    }


def _lightgbm_casts_f32(pre_steps: list[tuple[str, Any]], sample: Any) -> bool:
    """Whether LightGBM receives ``sample`` (after the preprocessing steps) as a
    non-float array, which it casts to float32 (``_np2d_to_np1d``). A DataFrame
    becomes ``np.result_type(dtypes..., float32)``: exact; an object array is
    converted to float64 by scikit-learn's ``check_array`` first."""
    if sample is None:
        return False
    import pandas as pd

    X = sample
    for _, step in pre_steps:
        X = step.transform(X)
    if isinstance(X, pd.DataFrame):
        return False
    dtype = getattr(X, "dtype", None)
    dtype = np.dtype(dtype) if dtype is not None else np.asarray(X).dtype
    return dtype.kind in "biuf" and dtype not in (np.float32, np.float64)


def _lightgbm_column_names(names: list[str], sample: Any) -> list[str]:
    """A bare LGBMClassifier's ``feature_names_in_`` are its booster's feature
    names, in which LightGBM replaced spaces by "_"; a sample DataFrame whose
    columns give those names back has the real ones."""
    columns = getattr(sample, "columns", None)
    if columns is None or len(columns) != len(names):
        return names
    real = [str(c) for c in columns]
    return real if [c.replace(" ", "_") for c in real] == names else names


# ---------------------------------------------------------------- the walker's part


def classifier(
    w: Any, path: str, est: Any, cols: list[int | None], cast_f32: bool
) -> tuple[dict[str, Json], dict[str, Json] | None]:
    """An ``LGBMClassifier``: its booster's trees (those ``predict_proba``
    uses: ``best_iteration``) as flat arrays, and an encoder for the
    pandas ``category`` columns it was fitted on, if any."""
    _check_lightgbm_params(path, est)
    booster = est.booster_
    dump = booster.dump_model()  # num_iteration=None: best_iteration, as predict_proba
    text = booster.model_to_string()
    objective, sigmoid = _lightgbm_objective(path, est, dump)
    n_features = int(est.n_features_in_)
    booster_features = int(dump["max_feature_idx"]) + 1
    if booster_features != n_features:
        raise _unsupported(
            path, est, f"the booster has {booster_features} features, n_features_in_ is {n_features}"
        )
    n_classes = len(est.classes_)
    k = int(dump["num_tree_per_iteration"])
    binary = objective in ("binary", "cross_entropy")
    if (binary and n_classes != 2) or k != (1 if binary else n_classes):
        raise _unsupported(
            path, est, f"objective {objective!r} with {n_classes} classes and {k} trees per iteration"
        )
    infos = dump["tree_info"]
    if not infos or len(infos) % k:
        raise _unsupported(path, est, f"{len(infos)} trees is not a whole number of iterations of {k} trees")
    text_thresholds = _LightGBMText(text)
    trees = [_lightgbm_tree(path, est, info, n_features, text_thresholds) for info in infos]
    return {
        "type": "lightgbm",
        "n_features": n_features,
        "objective": objective,
        "sigmoid": _f64(sigmoid),
        "trees_per_iteration": k,
        "average_output": bool(dump.get("average_output", False)),
        "cast_f32": bool(cast_f32),
        "trees": trees,
    }, categories(w, path, est, dump, text_thresholds, cols)

def categories(
    w: Any, path: str, est: Any, dump: dict[str, Any], text: _LightGBMText, cols: list[int | None]
) -> dict[str, Json] | None:
    """pandas ``category`` columns given straight to LightGBM become their codes in
    the fit-time categories (``pandas_categorical``, pandas order), unknown and
    missing ones NaN: an ordinal encoder on those columns, in place."""
    pandas_categorical = dump.get("pandas_categorical")
    if not pandas_categorical:
        return None
    # With categorical_feature="auto" the category columns are exactly the
    # categorical features; ordered categories (numeric features) or an
    # explicit list leave them unknown.
    positions = text.categorical_features()
    infos = text.feature_infos()
    if (
        positions is None
        or len(positions) != len(pandas_categorical)
        or positions != sorted(set(positions))
        or (positions and positions[-1] >= len(cols))
        or any(not _lightgbm_codes_fit(infos, p, len(c)) for p, c in zip(positions, pandas_categorical))
    ):
        raise _unsupported(
            path, est, f"pandas_categorical: it was fitted on {len(pandas_categorical)} pandas category columns "
            f"but its categorical features are {positions}, so the category columns are unknown "
            "(ordered categories or an explicit categorical_feature); fit with unordered category columns "
            "and categorical_feature='auto', or encode them in the pipeline"
        )
    node_path = f"{path}.pandas_categorical"
    categories: dict[int, list[Json]] = {}
    for p, cats in zip(positions, pandas_categorical, strict=True):
        values = []
        for c in cats:
            if _is_missing(c):
                raise _unsupported(node_path, est, f"feature {p} has a missing category")
            values.append(w._value(node_path, est, c, cols[p]))
        if len({type(v) is str for v in values}) > 1:
            raise _unsupported(node_path, est, f"feature {p} mixes string and number categories")
        origin = cols[p]
        if origin is not None:
            w.categories.setdefault(origin, values)
        categories[p] = values
    unknown = {"handle_unknown": "use_encoded_value", "unknown_value": "NaN"}
    return _category_runs(node_path, len(cols), categories, unknown)
