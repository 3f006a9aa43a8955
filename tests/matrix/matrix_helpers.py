"""Helpers for the matrix tests: tiny histories written from code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_carbon.matrix.history import JobResult, Run, group_runs

HEADER = (
    "project,run_id,started_at,commit,branch,event,run_status,job,job_index,n_jobs,outcome,"
    "tests_run,tests_failed,test_duration_s,failed_tests"
)
DATA_FILE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "travis-python-dev.csv.gz"
)


def csv_line(
    run: int,
    job: str,
    outcome: str,
    *,
    status: str = "passed",
    project: str = "acme@app",
    duration: str = "10",
    failed: str = "",
    event: str = "push",
) -> str:
    """One CSV row of the canonical export."""
    started = f"2020-01-01 {run // 3600:02d}:{run // 60 % 60:02d}:{run % 60:02d} UTC"
    return (
        f"{project},{run},{started},c{run},master,{event},{status},{job},1,3,{outcome},"
        f"5,0,{duration},{failed}"
    )


def make_runs(
    patterns: Sequence[Sequence[str]],
    jobs: Sequence[str] = ("a", "b", "c"),
    *,
    project: str = "acme@app",
    start: int = 0,
    statuses: Sequence[str] | None = None,
) -> list[Run]:
    """Runs whose job outcomes follow ``patterns`` ("p"/"f"/"u" per job); status derived."""
    records: list[JobResult] = []
    for index, pattern in enumerate(patterns):
        run = start + index
        outcomes = [{"p": "passed", "f": "failed", "u": "unknown"}[c] for c in pattern]
        status = (
            statuses[index]
            if statuses is not None
            else ("failed" if "failed" in outcomes else "passed")
        )
        for job, outcome in zip(jobs, outcomes, strict=True):
            records.append(
                JobResult(
                    project=project,
                    run_id=str(run),
                    started_at=f"2020-01-01T{run // 3600:02d}:{run // 60 % 60:02d}:{run % 60:02d}Z",
                    job=job,
                    outcome=outcome,
                    run_status=status,
                    commit=f"c{run}",
                    duration_s=10.0,
                )
            )
    return group_runs(records)
