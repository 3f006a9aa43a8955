"""Boosted trees: learned by the real scikit-learn, kept as arrays, saved as JSON, read back."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from pytest_carbon.matrix import trees as trees_module
from pytest_carbon.matrix.risk import FEATURES, RiskModel
from pytest_carbon.matrix.trees import BOOSTING, Trees, fit_boosted


def interacting_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where failing needs two things at once (no linear model can tell), with NaNs."""
    X = rng.random((n, len(FEATURES)))
    risky = (X[:, 0] > 0.7) & (X[:, 1] > 0.7)
    y = (rng.random(n) < np.where(risky, 0.7, 0.02)).astype(int)
    X[rng.random(n) < 0.05, 2] = np.nan
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[np.ndarray, np.ndarray, RiskModel]:
    X, y = interacting_rows(np.random.default_rng(5), 20_000)
    return X, y, RiskModel.fit(X, y, C=1.0, min_failures=200, kind="boosted")


def test_boosted_trees_give_scikit_learns_predictions_on_rows_never_seen(
    fitted: tuple[np.ndarray, np.ndarray, RiskModel],
) -> None:
    X, y, model = fitted
    assert model.kind == "boosted"
    assert model.trees is not None
    reference = HistGradientBoostingClassifier(random_state=0, **BOOSTING).fit(X, y)
    unseen, _ = interacting_rows(np.random.default_rng(6), 3000)
    assert np.isnan(unseen).any()
    assert np.allclose(model.predict(unseen), reference.predict_proba(unseen)[:, 1], atol=1e-9)
    risky = (unseen[:, 0] > 0.7) & (unseen[:, 1] > 0.7)
    assert model.predict(unseen[risky]).mean() > 0.5 > 0.1 > model.predict(unseen[~risky]).mean()


def test_boosted_trees_round_trip_through_strict_json(
    fitted: tuple[np.ndarray, np.ndarray, RiskModel],
) -> None:
    X, _, model = fitted
    text = json.dumps(model.to_dict(), allow_nan=False)
    again = RiskModel.from_dict(json.loads(text))
    assert again == model
    assert np.array_equal(again.predict(X[:500]), model.predict(X[:500]))


def damage(model: RiskModel, change: Any) -> dict[str, Any]:
    """The model's JSON form with ``change`` applied to its trees."""
    raw = json.loads(json.dumps(model.to_dict()))
    change(raw["trees"])
    return dict(raw)


def first_split(raw: dict[str, Any]) -> int:
    """Index of the first split node."""
    return next(i for i, leaf in enumerate(raw["leaf"]) if not leaf)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["left"].__setitem__(first_split(t), first_split(t)), "child before it"),
        (lambda t: t["feature"].__setitem__(first_split(t), 999), "missing feature"),
        (lambda t: t["value"].__setitem__(0, float("nan")), "not finite"),
        (lambda t: t["roots"].append(10**9), "root is outside"),
        (lambda t: t["right"].pop(), "differ in length"),
        (lambda t: t["leaf"].__setitem__(0, 2), "not 0 or 1"),
    ],
)
def test_damaged_trees_are_refused(
    fitted: tuple[np.ndarray, np.ndarray, RiskModel], change: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RiskModel.from_dict(damage(fitted[2], change))


def test_trees_that_cannot_be_read_are_learned_as_logistic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = interacting_rows(np.random.default_rng(7), 5000)
    X = np.nan_to_num(X)

    def unreadable(nodes: list[Any], features: int) -> Trees:
        raise KeyError("num_threshold")

    monkeypatch.setattr(trees_module, "from_nodes", unreadable)
    assert fit_boosted(X, y) is None
    assert RiskModel.fit(X, y, C=1.0, min_failures=50, kind="boosted").kind == "logistic"
