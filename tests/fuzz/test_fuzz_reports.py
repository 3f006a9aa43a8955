"""Fuzzing the JSON session-report loader and the baseline it also reads (``--carbon-baseline``)."""

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

from carbon_factory import make_report
from pytest_carbon.matrix.history import OUTCOMES, JobResult, load_report_file
from pytest_carbon.options import Settings
from pytest_carbon.report.compare import baseline_lines
from pytest_carbon.report.model import SessionReport, load_report
from pytest_carbon.report.outputs import judge

VALID: dict[str, Any] = make_report().to_dict()

#: A mutated report, random JSON, random text or random bytes.
REPORTS = blobs(
    st.one_of(
        mutated_json(VALID).map(json_bytes),
        mutated_json(VALID, max_mutations=1).map(lambda value: json_bytes(value, indent=1)),
        JSON_VALUES.map(json_bytes),
        st.text(max_size=200).map(str.encode),
        st.binary(max_size=200),
        st.sampled_from(NASTY_JSON).map(str.encode),
    )
)


def check_report(path: Path, raw: Blob) -> None:
    """Write ``raw`` to ``path``: the report loader reads it or names it; so does the history
    reader on a report the loader accepts (a refused report never reaches it)."""
    rewrite(path, raw.data)
    lines = raw.data.count(b"\n") + 1
    report = load_or_input_error(lambda: load_report(path), path, lines=lines)
    if report is None:
        return
    assert isinstance(report, SessionReport)
    assert json.loads(report.to_json())["schema_version"] == 1
    record = load_or_input_error(lambda: load_report_file(path), path, lines=lines)
    if record is not None:
        assert isinstance(record, JobResult)
        assert record.outcome in OUTCOMES
        assert record.started_at.endswith("Z")


def check_baseline(path: Path, raw: Blob) -> None:
    """``path`` as a baseline: a bad one becomes one error line naming it; a good one compares."""
    verdict = judge(make_report(), Settings(baseline_path=str(path)), {})
    if verdict.diff is None:
        assert len(verdict.errors) == 1
        assert verdict.errors[0].startswith(f"baseline not compared: {path}"), verdict.errors
    else:
        assert not verdict.errors
        assert baseline_lines(verdict.diff)[0].startswith(f"Against baseline {path.name}")


@pytest.mark.slow
@SLOW
@given(raw=REPORTS)
def test_report_and_baseline_slow(tmp_path: Path, raw: Blob) -> None:
    check_report(tmp_path / "baseline.json", raw)
    check_baseline(tmp_path / "baseline.json", raw)


@SMOKE
@given(raw=REPORTS)
@example(raw=Blob(json_bytes(VALID)))
@example(raw=Blob(b"[" * 100_000))
@example(raw=Blob(b'{"a":' * 50_000))
@example(raw=Blob(b"1" * 5_000))
@example(raw=Blob(json_bytes({**VALID, "wall_s": 10**400})))
@example(raw=Blob(json_bytes({**VALID, "started_at": "0001-01-01T00:00:00+05:00"})))
@example(raw=Blob(json_bytes({**VALID, "energy": {"cpu_kwh": float("nan")}})))
def test_report_and_baseline(tmp_path: Path, raw: Blob) -> None:
    check_report(tmp_path / "baseline.json", raw)
    check_baseline(tmp_path / "baseline.json", raw)


def test_valid_report_loads(tmp_path: Path) -> None:
    """The seed of the mutations is itself a report (else every mutation tests nothing)."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(VALID), encoding="utf-8")
    assert load_report(path).to_dict() == VALID
