"""IsolationForest beyond fit and score: sparse input, scikit-learn's tree
objects (``estimators_``) and per-feature explanations, checked against
scikit-learn's own scoring and SHAP's ``TreeExplainer`` on the same trees."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.ensemble import IsolationForest as SkIsolationForest

from anomaly import IsolationForest


def data(n: int = 400, d: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.arange(1, d + 1)
    X[:8] += 6.0  # a few outliers
    return X


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_sparse_input_gives_the_dense_results(fmt: str, contamination: str | float) -> None:
    X = data()
    X[np.abs(X) < 1.0] = 0.0
    S = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense = IsolationForest(random_state=3, contamination=contamination).fit(X)
    sparse = IsolationForest(random_state=3, contamination=contamination).fit(S)
    assert sparse.offset_ == dense.offset_
    np.testing.assert_array_equal(sparse.score_samples(S), dense.score_samples(X))
    np.testing.assert_array_equal(sparse.score_samples(X), dense.score_samples(S))
    np.testing.assert_array_equal(sparse.explain(S), dense.explain(X))


def scikit_learn_forest_carrying(ours: IsolationForest, X: np.ndarray) -> SkIsolationForest:
    """A fitted scikit-learn IsolationForest whose trees are ours."""
    sk = SkIsolationForest(
        n_estimators=ours.n_estimators, max_samples=ours.max_samples_, max_features=ours.max_features, random_state=0
    ).fit(X)
    sk.estimators_ = ours.estimators_
    sk.estimators_features_ = ours.estimators_features_
    sk.offset_ = ours.offset_
    # What scikit-learn's fit precomputes from its trees, from ours instead.
    from sklearn.ensemble._iforest import _average_path_length

    sk._average_path_length_per_tree = [_average_path_length(e.tree_.n_node_samples) for e in sk.estimators_]
    sk._decision_path_lengths = [e.tree_.compute_node_depths() for e in sk.estimators_]
    return sk


@pytest.mark.parametrize("max_features", [1.0, 3])
def test_scikit_learn_scores_our_trees_as_we_do(max_features: float) -> None:
    X = data()
    ours = IsolationForest(random_state=1, max_features=max_features).fit(X)
    trees = ours.estimators_
    assert trees is ours.estimators_ and len(trees) == 100
    assert all(t.tree_.children_left[0] > 0 and t.tree_.max_depth <= 8 and t.max_depth == 8 for t in trees)
    leaves = trees[0].tree_.children_left == -1
    assert (trees[0].tree_.feature[leaves] == -2).all()
    assert trees[0].tree_.n_node_samples[0] == ours.max_samples_ == 256
    sk = scikit_learn_forest_carrying(ours, X)
    np.testing.assert_allclose(sk.score_samples(X), ours.score_samples(X), rtol=1e-12)
    # Each tree's own predict walks its tree_ like any scikit-learn tree.
    cols = ours.estimators_features_[0]
    assert trees[0].predict(X[:, cols] if max_features != 1.0 else X).shape == (len(X),)


def test_estimators_samples_are_the_rows_each_tree_drew() -> None:
    X = data(300)
    ours = IsolationForest(random_state=2, max_samples=100, bootstrap=True).fit(X)
    samples = ours.estimators_samples_
    assert len(samples) == 100 and all(len(s) == 100 and s.max() < 300 for s in samples)
    assert any(len(np.unique(s)) < 100 for s in samples)  # bootstrap repeats rows
    warm = IsolationForest(random_state=2, n_estimators=50, warm_start=True).fit(X)
    first = list(warm.estimators_)
    warm.set_params(n_estimators=60).fit(X[:200])
    assert all(a is b for a, b in zip(warm.estimators_, first)) and len(warm.estimators_) == 60
    assert max(s.max() for s in warm.estimators_samples_[50:]) < 200


def brute_force_shapley(tree, features: np.ndarray, row: np.ndarray, d: int, scale: float) -> np.ndarray:
    """Shapley values of one scikit-learn-layout tree by their definition."""
    t = tree.tree_
    from sklearn.ensemble._iforest import _average_path_length

    depth = t.compute_node_depths() - 1

    def value(node: int, known: set[int]) -> float:
        if t.children_left[node] == -1:
            return float(depth[node] + _average_path_length([t.n_node_samples[node]])[0])
        f, left, right = features[t.feature[node]], t.children_left[node], t.children_right[node]
        if f in known:
            return value(left if row[f] <= t.threshold[node] else right, known)
        n = t.n_node_samples
        return (n[left] * value(left, known) + n[right] * value(right, known)) / n[node]

    phi = np.zeros(d)
    fact = np.math.factorial if hasattr(np, "math") else __import__("math").factorial
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for k in range(d):
            for s in itertools.combinations(others, k):
                w = fact(k) * fact(d - k - 1) / fact(d)
                phi[i] += w * (value(0, set(s) | {i}) - value(0, set(s))) * scale
    return phi


def test_explanations_are_shapley_values_that_add_up() -> None:
    X = data(300, 4)
    ours = IsolationForest(random_state=4, n_estimators=10, max_features=3).fit(X)
    phi = ours.explain(X[:5])
    from sklearn.ensemble._iforest import _average_path_length

    c = _average_path_length([ours.max_samples_])[0]
    mean_path = -np.log2(-ours.score_samples(X[:5])) * c
    np.testing.assert_allclose(phi.sum(axis=1) + ours.expected_path_length_, mean_path, atol=1e-9)
    feats = ours.estimators_features_
    for r in range(2):
        expected = sum(brute_force_shapley(t, f, X[r], 4, 1 / 10) for t, f in zip(ours.estimators_, feats))
        np.testing.assert_allclose(phi[r], expected, atol=1e-9)


def test_explanations_match_shap_tree_explainer_on_the_same_trees() -> None:
    import shap
    X = data(500, 6)
    ours = IsolationForest(random_state=5, n_estimators=200).fit(X)
    sk = scikit_learn_forest_carrying(ours, X)
    explainer = shap.TreeExplainer(sk)
    theirs = explainer.shap_values(X[:50])
    np.testing.assert_allclose(ours.explain(X[:50]), theirs, atol=1e-6)
    assert abs(float(np.ravel(explainer.expected_value)[0]) - ours.expected_path_length_) < 1e-6


def test_explanation_properties() -> None:
    X = data(400, 4)
    X[:, 3] = 1.0  # constant: no tree can split on it
    ours = IsolationForest(random_state=6).fit(X)
    phi = ours.explain(X)
    assert (phi[:, 3] == 0).all()
    # The outliers' strongest contributions are negative (toward anomalous).
    assert (phi[:8].min(axis=1) < 0).all()
    # Scoring permuted columns with the same trees permutes the contributions.
    perm = [2, 0, 1, 3]
    carried = scikit_learn_forest_carrying(ours, X)
    for e in carried.estimators_:
        e.tree_.feature[e.tree_.feature >= 0] = np.argsort(perm)[e.tree_.feature[e.tree_.feature >= 0]]
    import shap
    np.testing.assert_allclose(shap.TreeExplainer(carried).shap_values(X[:20, perm]), phi[:20, perm], atol=1e-6)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"], index=range(100, 500))
    named = IsolationForest(random_state=6).fit(frame).explain(frame)
    assert list(named.columns) == ["a", "b", "c", "d"] and named.index[0] == 100
    np.testing.assert_array_equal(named.to_numpy(), phi)
    # Extended trees mix features: refused with the reason.
    with pytest.raises(ValueError, match="axis-parallel"):
        IsolationForest(extension_level=1, random_state=0).fit(X).explain(X)


def test_pickles_without_the_tree_cache() -> None:
    X = data(200)
    ours = IsolationForest(random_state=7).fit(X)
    _ = ours.estimators_
    again = pickle.loads(pickle.dumps(ours))
    assert "_estimators" not in again.__dict__
    np.testing.assert_array_equal(again.score_samples(X), ours.score_samples(X))
    assert len(again.estimators_) == 100
