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


def wide_history(n_runs: int, n_jobs: int, seed: int, project: str = "wide@matrix") -> list[Run]:
    """A single project's wide matrix: groups of jobs failing together in streaks, and flakes.

    Four groups share a cause each (it appears in 1 % of runs and stays for the next with
    probability 0.5); any job flakes alone in 0.1 % of runs.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = np.array_split(rng.permutation(n_jobs), 4)
    failed = rng.random((n_runs, n_jobs)) < 0.001
    for group in groups:
        active = False
        for run in range(n_runs):
            active = bool(rng.random() < (0.5 if active else 0.01))
            if active:
                failed[run, group] |= rng.random(len(group)) < 0.9
    names = [f"job-{index:02d}" for index in range(n_jobs)]
    records = []
    for run in range(n_runs):
        month, day, hour, minute = 1 + run // 2000, 1 + run // 80 % 25, run % 80 // 4, run % 4
        started = f"2020-{month:02d}-{day:02d}T{hour:02d}:{minute * 15:02d}:00Z"
        status = "failed" if failed[run].any() else "passed"
        for job, name in enumerate(names):
            records.append(
                JobResult(
                    project=project,
                    run_id=str(run),
                    started_at=started,
                    job=name,
                    outcome="failed" if failed[run, job] else "passed",
                    run_status=status,
                    duration_s=60.0,
                )
            )
    return group_runs(records)
