"""Fuzzing the test-plan loader (``pytest-carbon matrix plan-tests`` output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import (
    JSON_VALUES,
    NASTY_JSON,
    SLOW,
    SMOKE,
    Blob,
    blobs,
    json_bytes,
    load_or_input_error,
    mutated_json,
    rewrite,
)
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_carbon.matrix.tests_plan import PlannedJob, SkippedTest, TestPlan, load_plan

SEED = TestPlan(
    created_at="2026-01-02T03:04:05+00:00",
    jobs=[
        PlannedJob(
            name="py312",
            matrix={"python": "3.12", "os": "linux"},
            skip=[SkippedTest("tests/test_a.py::test_one", "py311", 1e-6, 0.5)],
            load=2.0,
        ),
        PlannedJob(name="py311", matrix={"python": "3.11"}),
    ],
    source_run_ids=["1", "2"],
    kept={"tests/test_a.py::test_two": 3},
    sensitive={"tests/test_a.py": ["python"], "tests/test_b.py": None},
)
VALID: dict[str, Any] = json.loads(SEED.to_json())

INPUTS = blobs(
    st.one_of(
        mutated_json(VALID).map(json_bytes),
        JSON_VALUES.map(json_bytes),
        st.binary(max_size=100),
        st.sampled_from(NASTY_JSON).map(str.encode),
    )
)


def check_plan(path: Path, raw: Blob) -> None:
    """``raw`` as a test plan loads or names ``path``."""
    rewrite(path, raw.data)
    plan = load_or_input_error(lambda: load_plan(path), path)
    if plan is not None:
        assert isinstance(plan, TestPlan)
        json.loads(plan.to_json())


@pytest.mark.slow
@SLOW
@given(raw=INPUTS)
def test_plan_loader_slow(tmp_path: Path, raw: Blob) -> None:
    check_plan(tmp_path / "plan.json", raw)


@SMOKE
@given(raw=INPUTS)
@example(raw=Blob(json_bytes({**VALID, "min_runs": float("inf")})))
@example(raw=Blob(json_bytes({**VALID, "jobs": [{"name": "a", "skip": [], "load": 10**400}]})))
def test_plan_loader(tmp_path: Path, raw: Blob) -> None:
    check_plan(tmp_path / "plan.json", raw)


def test_seed_plan_loads(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    rewrite(path, json_bytes(VALID))
    assert load_plan(path).to_dict() == SEED.to_dict()
