"""Fuzzing the GitHub Actions "list jobs for a workflow run" JSON loader."""

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

from pytest_carbon.matrix.history import OUTCOMES, iter_source

JOB: dict[str, Any] = {
    "id": 1,
    "run_id": 42,
    "run_url": "https://api.github.com/repos/acme/app/actions/runs/42",
    "head_sha": "abc",
    "head_branch": "main",
    "status": "completed",
    "conclusion": "failure",
    "started_at": "2024-01-02T03:04:05Z",
    "completed_at": "2024-01-02T03:14:05Z",
    "name": "test (3.12)",
}
VALID: dict[str, Any] = {"total_count": 2, "jobs": [JOB, {**JOB, "id": 2, "name": "lint"}]}

FIELD_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            0,
            -1.5,
            True,
            [],
            {},
            "success",
            "timed_out",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05+14:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "https://github.com/a/b/actions/runs/1",
        ]
    ),
    st.text(max_size=8),
    st.integers(),
    st.floats(),
)


@st.composite
def job_listings(draw: st.DrawFn) -> Any:
    """A jobs listing whose entries take field values of every type."""
    jobs = []
    for _ in range(draw(st.integers(0, 4))):
        keys = draw(st.lists(st.sampled_from(sorted(JOB)), unique=True))
        jobs.append({**JOB, **{key: draw(FIELD_VALUES) for key in keys}})
    return {"jobs": jobs}


INPUTS = blobs(
    st.one_of(
        job_listings().map(json_bytes),
        mutated_json(VALID).map(json_bytes),
        st.dictionaries(st.sampled_from(["jobs", "schema_version", "x"]), JSON_VALUES).map(
            json_bytes
        ),
        JSON_VALUES.map(json_bytes),
        st.binary(max_size=100),
        st.sampled_from(NASTY_JSON).map(str.encode),
    )
)


def check_github(path: Path, raw: Blob) -> None:
    """``raw`` as a jobs listing gives well-formed records or an error naming ``path``."""
    rewrite(path, raw.data)
    records = load_or_input_error(lambda: list(iter_source(path)), path)
    for record in records or ():
        assert record.outcome in OUTCOMES
        assert record.started_at.endswith("Z")
        assert record.duration_s is None or record.duration_s >= 0


@pytest.mark.slow
@SLOW
@given(raw=INPUTS)
def test_github_jobs_loader_slow(tmp_path: Path, raw: Blob) -> None:
    check_github(tmp_path / "jobs.json", raw)


@SMOKE
@given(raw=INPUTS)
@example(raw=Blob(json_bytes({"jobs": [{**JOB, "completed_at": "2024-01-02T03:14:05"}]})))
@example(raw=Blob(json_bytes({"jobs": [{**JOB, "started_at": "0001-01-01T00:00:00+01:00"}]})))
@example(raw=Blob(b'{"jobs": [' * 40_000))
def test_github_jobs_loader(tmp_path: Path, raw: Blob) -> None:
    check_github(tmp_path / "jobs.json", raw)


def test_valid_listing_loads(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(VALID), encoding="utf-8")
    first, second = iter_source(path)
    assert (first.project, first.outcome, first.duration_s) == ("acme/app", "failed", 600.0)
    assert second.job == "lint"
