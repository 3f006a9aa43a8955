"""Fuzzing the saved-model loaders: the matrix selector and the Mozilla-style baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import (
    JSON_VALUES,
    PATTERNS,
    SLOW,
    SMOKE,
    Blob,
    blobs,
    json_bytes,
    load_or_input_error,
    make_runs,
    mutated_json,
    rewrite,
)
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.selector import MatrixSelector


def saved(model: MatrixSelector | MozillaBaseline, folder: Path) -> dict[str, Any]:
    """The JSON document ``model.save`` writes."""
    path = folder / f"{model.kind}.json"
    model.save(path)
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("models")
    runs = make_runs(PATTERNS)
    return {
        "MatrixSelector": saved(MatrixSelector(min_history=2).fit(runs), folder),
        "MozillaBaseline": saved(MozillaBaseline(min_support=1).fit(runs), folder),
    }


LOADERS = {"MatrixSelector": MatrixSelector.load, "MozillaBaseline": MozillaBaseline.load}


def model_inputs(seed: dict[str, Any]) -> st.SearchStrategy[Blob]:
    """Mutations of ``seed`` (the state most often), random JSON and random bytes."""
    state_only = st.builds(
        lambda state: {**seed, "state": state}, mutated_json(seed["state"], max_mutations=2)
    )
    return blobs(
        st.one_of(
            state_only.map(json_bytes),
            mutated_json(seed).map(json_bytes),
            JSON_VALUES.map(json_bytes),
            st.binary(max_size=100),
        )
    )


def check_model(kind: str, path: Path, raw: Blob) -> None:
    """``raw`` as a saved ``kind`` loads (and is that kind) or names ``path``."""
    rewrite(path, raw.data)
    model = load_or_input_error(lambda: LOADERS[kind](path), path)
    if model is not None:
        assert model.kind == kind


@pytest.mark.slow
@SLOW
@given(data=st.data())
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_model_loader_slow(
    tmp_path: Path, documents: dict[str, dict[str, Any]], kind: str, data: st.DataObject
) -> None:
    check_model(kind, tmp_path / "model.json", data.draw(model_inputs(documents[kind])))


@SMOKE
@given(data=st.data())
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_model_loader(
    tmp_path: Path, documents: dict[str, dict[str, Any]], kind: str, data: st.DataObject
) -> None:
    check_model(kind, tmp_path / "model.json", data.draw(model_inputs(documents[kind])))


@SMOKE
@given(value=st.sampled_from([float("inf"), float("-inf"), float("nan"), 10**400, "1", [1]]))
@example(value=float("inf"))
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_model_counts_out_of_range(
    tmp_path: Path, documents: dict[str, dict[str, Any]], kind: str, value: Any
) -> None:
    """A count that is no integer (infinity, NaN, text) is refused, never a crash."""
    document = json.loads(json.dumps(documents[kind]))
    project = (
        next(iter(document["state"]["projects"].values()))
        if kind == "MatrixSelector"
        else (next(iter(document["state"].values())))
    )
    first = next(iter(project["pairs"].values()))
    first[next(iter(first))][0] = value
    check_model(kind, tmp_path / "model.json", Blob(json_bytes(document)))


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_seed_models_load(tmp_path: Path, documents: dict[str, dict[str, Any]], kind: str) -> None:
    path = tmp_path / "model.json"
    rewrite(path, json_bytes(documents[kind]))
    model = LOADERS[kind](path)
    assert model.plan(["a", "b", "c"]).run
