"""Boosted regression trees as plain arrays: learned by scikit-learn, saved as JSON, read back.

The selector's boosted risk model is scikit-learn's ``HistGradientBoostingClassifier``. A saved
model must never be a pickle, so the fitted trees are copied into flat node arrays
(:class:`Trees`), checked against scikit-learn's own predictions on the training rows, and
evaluated here with numpy: every row walks every tree at once, one level a step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, final

import numpy as np

#: How the boosted model is learned (fixed: chosen on the shared CI history, see the docs).
BOOSTING: Final = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15}
#: Rows evaluated at once (bounds the memory of a walk to rows × trees × 8 bytes a step).
CHUNK: Final = 16_384
#: The node fields scikit-learn's tree predictors are read from.
NODE_FIELDS: Final = ("feature_idx", "num_threshold", "left", "right", "value", "is_leaf")


@final
@dataclass(frozen=True, slots=True, eq=False)
class Trees:
    """Regression trees over feature rows; a row's score is the sum of the leaves it reaches.

    Nodes of every tree share the arrays; ``roots`` holds each tree's first node and
    ``children`` the left and right child of every node, interleaved. At a split node a row
    goes left when its ``feature`` is at most ``threshold`` (or is NaN and ``missing_left``),
    else right. Children always come after their parent, so every walk ends, within ``depth``
    steps.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    children: np.ndarray  # [left, right] of every node, interleaved (a leaf's are itself)
    value: np.ndarray
    leaf: np.ndarray
    missing_left: np.ndarray
    depth: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trees):
            return NotImplemented
        return self.depth == other.depth and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in ARRAYS
        )

    __hash__ = None  # type: ignore[assignment]

    def score(self, X: np.ndarray) -> np.ndarray:
        """The summed leaf values of each row of ``X``."""
        X = np.asarray(X, dtype=float)
        if len(X) <= CHUNK:
            return self.walk(X)
        return np.concatenate([self.walk(X[at : at + CHUNK]) for at in range(0, len(X), CHUNK)])

    def walk(self, X: np.ndarray) -> np.ndarray:
        """:meth:`score` of one chunk of rows.

        A leaf is its own child on both sides with a threshold of +inf, so a row that reached
        one stays there; NaN features (never made by this package's features) go the way
        scikit-learn sends missing values.
        """
        rows = np.arange(len(X))[:, None] * X.shape[1]
        flat = X.ravel()
        node = np.broadcast_to(self.roots, (len(X), len(self.roots)))
        if np.isnan(flat).any():
            for _ in range(self.depth):
                x = flat[rows + self.feature[node]]
                right = np.where(np.isnan(x), ~self.missing_left[node], x > self.threshold[node])
                node = self.children[2 * node + right]
        else:
            for _ in range(self.depth):
                right = flat[rows + self.feature[node]] > self.threshold[node]
                node = self.children[2 * node + right]
        return np.asarray(self.value[node].sum(axis=1))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": np.where(self.leaf, 0.0, self.threshold).tolist(),
            "left": self.children[0::2].tolist(),
            "right": self.children[1::2].tolist(),
            "value": self.value.tolist(),
            "leaf": self.leaf.astype(int).tolist(),
            "missing_left": self.missing_left.astype(int).tolist(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], features: int) -> Trees:
        """Inverse of :meth:`to_dict`; ValueError when the trees are damaged."""
        return build(
            np.asarray(raw["roots"], dtype=np.int64),
            np.asarray(raw["feature"], dtype=np.int64),
            np.asarray(raw["threshold"], dtype=float),
            np.asarray(raw["left"], dtype=np.int64),
            np.asarray(raw["right"], dtype=np.int64),
            np.asarray(raw["value"], dtype=float),
            np.asarray(raw["leaf"], dtype=np.int64),
            np.asarray(raw["missing_left"], dtype=np.int64),
            features,
        )


ARRAYS: Final = (
    "roots", "feature", "threshold", "children", "value", "leaf", "missing_left",
)  # fmt: skip


def build(
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    value: np.ndarray,
    leaf: np.ndarray,
    missing_left: np.ndarray,
    features: int,
) -> Trees:
    """Checked :class:`Trees` from node arrays; ValueError when they do not form trees."""
    n = len(feature)
    columns = (threshold, left, right, value, leaf, missing_left)
    if n == 0 or any(column.shape != (n,) for column in columns) or roots.ndim != 1:
        raise ValueError("the trees' node arrays differ in length or are empty")
    if not (np.isin(leaf, (0, 1)).all() and np.isin(missing_left, (0, 1)).all()):
        raise ValueError("a tree's leaf or missing-value flags are not 0 or 1")
    if len(roots) == 0 or roots.min() < 0 or roots.max() >= n:
        raise ValueError("a tree's root is outside its nodes")
    is_leaf = leaf.astype(bool)
    split = ~is_leaf
    index = np.arange(n)
    if not (np.isfinite(threshold[split]).all() and np.isfinite(value).all()):
        raise ValueError("a tree threshold or leaf value is not finite")
    if (
        (feature[split] < 0).any()
        or (feature[split] >= features).any()
        or (left[split] <= index[split]).any()
        or (right[split] <= index[split]).any()
        or (left[split] >= n).any()
        or (right[split] >= n).any()
    ):
        raise ValueError("a tree split names a missing feature or a child before it")
    depth = np.zeros(n, dtype=np.int64)
    for node in np.flatnonzero(split):  # children come after parents: one pass suffices
        depth[left[node]] = max(depth[left[node]], depth[node] + 1)
        depth[right[node]] = max(depth[right[node]], depth[node] + 1)
    children = np.column_stack((np.where(split, left, index), np.where(split, right, index)))
    return Trees(
        roots,
        np.where(split, feature, 0),
        np.where(split, threshold, np.inf),
        children.ravel(),
        value,
        is_leaf,
        missing_left.astype(bool),
        int(depth.max()),
    )


def fit_boosted(X: np.ndarray, y: np.ndarray) -> tuple[Trees, float] | None:
    """Learn boosted trees on ``X``, ``y``: the trees and the baseline score.

    None when the fitted trees cannot be read from this scikit-learn, or do not give its own
    predictions back (the caller then learns another model).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=0, **BOOSTING)
    model.fit(X, y)
    try:
        predictors = model._predictors
        baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        trees = from_nodes([predictor[0].nodes for predictor in predictors], X.shape[1])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    sample = X[:: max(1, len(X) // 2000)]
    expected = np.asarray(model.decision_function(sample), dtype=float).ravel()
    if not np.allclose(trees.score(sample) + baseline, expected, rtol=0.0, atol=1e-6):
        return None
    return trees, baseline


def from_nodes(nodes: list[Any], features: int) -> Trees:
    """:class:`Trees` from scikit-learn's per-tree node records (fields :data:`NODE_FIELDS`)."""
    roots = []
    parts: dict[str, list[np.ndarray]] = {name: [] for name in NODE_FIELDS}
    missing: list[np.ndarray] = []
    offset = 0
    for tree in nodes:
        roots.append(offset)
        for name in NODE_FIELDS:
            column = np.asarray(tree[name])
            parts[name].append(column + offset if name in ("left", "right") else column)
        missing.append(np.asarray(tree["missing_go_to_left"]))
        offset += len(tree)
    joined = {name: np.concatenate(columns) for name, columns in parts.items()}
    return build(
        np.asarray(roots, dtype=np.int64),
        joined["feature_idx"].astype(np.int64),
        joined["num_threshold"].astype(float),
        joined["left"].astype(np.int64),
        joined["right"].astype(np.int64),
        joined["value"].astype(float),
        joined["is_leaf"].astype(np.int64),
        np.concatenate(missing).astype(np.int64),
        features,
    )
