"""Helpers of the per-test plan tests: tiny runs, reports and plans written from code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from carbon_factory import make_report
from pytest_carbon.matrix.tests_plan import (
    PLAN_FORMAT,
    PLAN_FORMAT_VERSION,
    JobCell,
    JobTests,
    RunTests,
)
from pytest_carbon.report.model import Energy, JobIdentity, PhaseRecord, TestRecord

DATA_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "travis-python-dev.csv.gz"
)

#: Four cells of a 2 x 2 matrix (db x python).
CELLS = (
    JobCell.of("pg-3.11", {"db": "pg", "python": "3.11"}),
    JobCell.of("pg-3.12", {"db": "pg", "python": "3.12"}),
    JobCell.of("my-3.11", {"db": "my", "python": "3.11"}),
    JobCell.of("my-3.12", {"db": "my", "python": "3.12"}),
)


def make_run(
    index: int,
    outcomes: Mapping[JobCell, Mapping[str, str]],
    *,
    cost: Mapping[str, float] | None = None,
    commit: str | None = None,
) -> RunTests:
    """Run ``index``: each cell's test categories; ``cost`` is each test's wall time (s)."""
    jobs = []
    for cell, tests in outcomes.items():
        wall = {nodeid: (cost or {}).get(nodeid, 1.0) for nodeid in tests}
        energy = {nodeid: seconds * 1e-5 for nodeid, seconds in wall.items()}
        jobs.append(JobTests(cell, dict(tests), energy, wall))
    return RunTests(
        run_id=str(index),
        started_at=f"2026-01-01T00:{index // 60:02d}:{index % 60:02d}Z",
        jobs=jobs,
        commit=commit or f"c{index}",
    )


def uniform_run(
    index: int,
    tests: Sequence[str],
    cells: Sequence[JobCell] = CELLS,
    *,
    failing: Mapping[str, Sequence[JobCell]] | None = None,
    cost: Mapping[str, float] | None = None,
    commit: str | None = None,
) -> RunTests:
    """Every cell runs ``tests``; ``failing`` names the cells where a test fails."""
    failing = failing or {}
    outcomes = {
        cell: {t: "failed" if cell in failing.get(t, ()) else "passed" for t in tests}
        for cell in cells
    }
    return make_run(index, outcomes, cost=cost, commit=commit)


def record_of(nodeid: str, outcome: str, wall_s: float, energy_kwh: float) -> TestRecord:
    """One test of a report with a single call phase."""
    return TestRecord(
        nodeid=nodeid,
        path=nodeid.split("::")[0],
        outcome=outcome,
        method="cpu-time-model",
        phases={"call": PhaseRecord(wall_s, wall_s, Energy(energy_kwh, 0.0, 0.0), 0.0)},
    )


def write_report(
    folder: Path,
    *,
    run: int,
    job: str,
    matrix: Mapping[str, str],
    outcomes: Mapping[str, str],
    project: str = "acme/shop",
    run_id: str | None = None,
) -> Path:
    """A JSON report of one job of run ``run``; each test costs 0.1 s and 1e-6 kWh."""
    report = make_report(
        identity=JobIdentity(
            job=job,
            matrix=dict(matrix),
            commit=f"c{run}",
            run_id=run_id if run_id is not None else str(run),
            project=project,
        ),
        started_at=f"2026-01-01T00:00:{run:02d}+00:00",
        finished_at=f"2026-01-01T00:00:{run:02d}+00:00",
        tests=[record_of(nodeid, outcome, 0.1, 1e-6) for nodeid, outcome in outcomes.items()],
    )
    path = folder / f"run{run}" / f"{job}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json(), encoding="utf-8")
    return path


def plan_document(
    skips: Mapping[str, Sequence[str]],
    *,
    created_at: str = "2026-01-01T00:00:00+00:00",
    matrix: Mapping[str, Mapping[str, str]] | None = None,
    energy_kwh: float = 1e-4,
) -> dict[str, object]:
    """A plan's JSON form: ``skips`` maps job names to the node ids they skip."""
    return {
        "format": PLAN_FORMAT,
        "format_version": PLAN_FORMAT_VERSION,
        "tool_version": "0.1.0",
        "created_at": created_at,
        "jobs": [
            {
                "name": name,
                "matrix": dict((matrix or {}).get(name, {})),
                "skip": [
                    {"nodeid": nodeid, "covered_by": "other", "energy_kwh": energy_kwh}
                    for nodeid in nodeids
                ],
            }
            for name, nodeids in skips.items()
        ],
    }


def write_plan(
    path: Path,
    skips: Mapping[str, Sequence[str]],
    *,
    created_at: str = "2026-01-01T00:00:00+00:00",
    matrix: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a plan (see :func:`plan_document`) to ``path``."""
    document = plan_document(skips, created_at=created_at, matrix=matrix)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def matrix_command(argv: Sequence[str]) -> int:
    """Run ``pytest-carbon matrix ARGV`` through a parser holding only the test-plan commands."""
    import argparse

    from pytest_carbon.matrix.tests_cli import register_test_commands

    parser = argparse.ArgumentParser(prog="pytest-carbon matrix")
    register_test_commands(parser.add_subparsers(dest="matrix_command", required=True))
    args = parser.parse_args(list(argv))
    status: int = args.handler(args)
    return status
