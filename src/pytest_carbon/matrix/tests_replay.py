"""Honest replay of per-test plans on history: time-ordered, learning only what the plan ran.

For each project, the planner learns from the first ``train_share`` of its runs as they
happened (every test in every job), then plans each later run from the past only. The run is
scored, and the planner learns from it with the skipped ``(job, test)`` pairs hidden: a plan
never sees the outcome of a test it did not run. Every ``full_every``-th replayed run is a full
run that the policy schedules and pays for (nothing skipped), so divergences can still surface.

Scores: a failing ``(test, job)`` pair is caught when the test failed in some job that ran it in
that run; executions and energy saved are the skipped pairs' share of all executed pairs.

Real CI history (the canonical CSV) names only the tests that failed. There, each project's
candidate tests are those seen failing so far (in time order), a job is assumed to run a
candidate once that test has failed in it, and a job of known outcome ran its known candidates
with the outcome its ``failed_tests`` gives. Tests never seen failing are invisible, so the
executions saved are a share of the candidates' executions, not of the whole suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, final

from pytest_carbon.matrix.tests_plan import FAILED, PASSED, JobCell, JobTests, RunTests, TestPlanner

#: A failed_tests cell holds at most this many names; beyond it passes are unknown.
CSV_NAME_CAP: Final = 100


@final
@dataclass(frozen=True, slots=True)
class TestsReplayConfig:
    """How the replay splits and paces each project's runs."""

    __test__ = False  # not a pytest test class

    train_share: float = 0.5
    full_every: int = 10
    min_runs: int = 20


@final
@dataclass(slots=True)
class TestsReplayResult:
    """Recall and savings of one replay."""

    __test__ = False  # not a pytest test class

    name: str
    projects: int = 0
    runs: int = 0
    full_runs: int = 0
    failing_runs: int = 0
    caught_runs: int = 0
    failing_pairs: int = 0
    caught_pairs: int = 0
    known_failing_pairs: int = 0
    known_caught_pairs: int = 0
    executions: int = 0
    skipped: int = 0
    energy_kwh: float = 0.0
    energy_kwh_saved: float = 0.0
    wall_s: float = 0.0
    wall_s_saved: float = 0.0
    max_job_wall_s: float = 0.0
    max_job_wall_s_planned: float = 0.0
    plan_ms: list[float] = field(default_factory=list)

    @property
    def pair_recall(self) -> float | None:
        """Caught failing ``(test, job)`` pairs over all failing pairs."""
        return share(self.caught_pairs, self.failing_pairs)

    @property
    def known_pair_recall(self) -> float | None:
        """The same, over failing pairs of tests the planner knew at planning time."""
        return share(self.known_caught_pairs, self.known_failing_pairs)

    @property
    def run_recall(self) -> float | None:
        """Failing runs in which at least one failure was still seen."""
        return share(self.caught_runs, self.failing_runs)

    @property
    def executions_saved_share(self) -> float | None:
        """Skipped test executions over all executions."""
        return share(self.skipped, self.executions)

    @property
    def energy_saved_share(self) -> float | None:
        """Measured energy of skipped executions over the energy of all executions."""
        return share_f(self.energy_kwh_saved, self.energy_kwh)

    @property
    def wall_saved_share(self) -> float | None:
        """Measured wall time of skipped executions over the wall time of all executions."""
        return share_f(self.wall_s_saved, self.wall_s)

    @property
    def mean_plan_ms(self) -> float:
        """Mean time to plan one run."""
        return sum(self.plan_ms) / len(self.plan_ms) if self.plan_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able figures."""
        return {
            "name": self.name,
            "projects": self.projects,
            "runs": self.runs,
            "full_runs": self.full_runs,
            "failing_runs": self.failing_runs,
            "caught_runs": self.caught_runs,
            "run_recall": self.run_recall,
            "failing_pairs": self.failing_pairs,
            "caught_pairs": self.caught_pairs,
            "pair_recall": self.pair_recall,
            "known_failing_pairs": self.known_failing_pairs,
            "known_caught_pairs": self.known_caught_pairs,
            "known_pair_recall": self.known_pair_recall,
            "executions": self.executions,
            "skipped": self.skipped,
            "executions_saved_share": self.executions_saved_share,
            "energy_kwh": self.energy_kwh,
            "energy_kwh_saved": self.energy_kwh_saved,
            "energy_saved_share": self.energy_saved_share,
            "wall_s": self.wall_s,
            "wall_s_saved": self.wall_s_saved,
            "wall_saved_share": self.wall_saved_share,
            "max_job_wall_s": self.max_job_wall_s,
            "max_job_wall_s_planned": self.max_job_wall_s_planned,
            "mean_plan_ms": self.mean_plan_ms,
        }


def share(part: int, whole: int) -> float | None:
    """``part / whole``, None when there is no whole."""
    return part / whole if whole else None


def share_f(part: float, whole: float) -> float | None:
    """``part / whole`` for measured quantities, None when nothing was measured."""
    return part / whole if whole > 0 else None


def replay_tests(
    projects: Iterable[Sequence[RunTests]],
    make_planner: Callable[[], TestPlanner],
    config: TestsReplayConfig,
    name: str = "plan",
) -> TestsReplayResult:
    """Replay every project's runs (oldest first) and add up the scores."""
    result = TestsReplayResult(name)
    for runs in projects:
        if len(runs) < config.min_runs:
            continue
        result.projects += 1
        replay_project(runs, make_planner(), config, result)
    return result


def replay_project(
    runs: Sequence[RunTests],
    planner: TestPlanner,
    config: TestsReplayConfig,
    result: TestsReplayResult,
) -> None:
    """Train on the first share of ``runs``, then plan, score and learn each later run."""
    train = int(len(runs) * config.train_share)
    planner.reset()
    for run in runs[:train]:
        planner.observe(run)
    for offset, run in enumerate(runs[train:], start=1):
        full = config.full_every > 0 and offset % config.full_every == 0
        known = set(planner.stats_)
        skip: set[tuple[JobCell, str]] = set()
        if full:
            result.full_runs += 1
        else:
            started = time.perf_counter()
            skip = planner.plan(run.cells).skip_pairs()
            result.plan_ms.append((time.perf_counter() - started) * 1000)
        score(run, skip, known, planner.unit_of, result)
        planner.observe(run, hidden=skip)


def score(
    run: RunTests,
    skip: set[tuple[JobCell, str]],
    known: set[str],
    unit_of: Callable[[str], str],
    result: TestsReplayResult,
) -> None:
    """Add one run's failures, catches, executions and savings to ``result``."""
    result.runs += 1
    failing: list[str] = []
    seen_failing: set[str] = set()
    heaviest = heaviest_planned = 0.0
    for job in run.jobs:
        cell = job.cell
        job_wall = job_wall_planned = 0.0
        for nodeid, category in job.outcomes.items():
            skipped = (cell, nodeid) in skip
            energy = job.energy_kwh.get(nodeid, 0.0)
            wall = job.wall_s.get(nodeid, 0.0)
            result.executions += 1
            result.energy_kwh += energy
            result.wall_s += wall
            job_wall += wall
            if skipped:
                result.skipped += 1
                result.energy_kwh_saved += energy
                result.wall_s_saved += wall
            else:
                job_wall_planned += wall
            if category == FAILED:
                failing.append(nodeid)
                if not skipped:
                    seen_failing.add(nodeid)
        heaviest = max(heaviest, job_wall)
        heaviest_planned = max(heaviest_planned, job_wall_planned)
    result.max_job_wall_s += heaviest
    result.max_job_wall_s_planned += heaviest_planned
    if not failing:
        return
    result.failing_runs += 1
    result.caught_runs += bool(seen_failing)
    for nodeid in failing:
        caught = nodeid in seen_failing
        result.failing_pairs += 1
        result.caught_pairs += caught
        if unit_of(nodeid) in known:
            result.known_failing_pairs += 1
            result.known_caught_pairs += caught


# --------------------------------------------------------------------------- history CSV


def projects_of_reports(runs: Sequence[RunTests]) -> list[list[RunTests]]:
    """Report runs grouped by project, each oldest first."""
    grouped: dict[str, list[RunTests]] = {}
    for run in runs:
        grouped.setdefault(run.project, []).append(run)
    return [
        sorted(group, key=lambda run: (run.started_at, run.run_id)) for group in grouped.values()
    ]


def csv_projects(records: Iterable[Any]) -> Iterator[list[RunTests]]:
    """Per project, its CSV runs as test observations (see the module docstring), oldest first.

    ``records`` are :class:`~pytest_carbon.matrix.history.JobResult` loaded with their
    ``failed_tests``. Projects whose history names no failed test are left out. Jobs that
    failed in a run whose status is ``passed`` (allowed to fail) are left out.
    """
    from pytest_carbon.matrix.history import group_runs

    by_project: dict[str, list[Any]] = {}
    for record in records:
        by_project.setdefault(record.project, []).append(record)
    for project in sorted(by_project):
        project_records = by_project.pop(project)
        if not any(record.failed_tests for record in project_records):
            continue
        yield list(csv_runs(group_runs(project_records)))


def csv_runs(runs: Iterable[Any]) -> Iterator[RunTests]:
    """Test observations of one project's runs, built from the past and the run itself only."""
    runners: dict[str, set[str]] = {}
    cells: dict[str, JobCell] = {}
    for run in runs:
        jobs: list[JobTests] = []
        allowed_to_fail = run.run_status == "passed"
        for job in run.jobs:
            if job.failed and allowed_to_fail:
                continue
            failed = set(job.failed_tests)
            known = runners.setdefault(job.job, set())
            known |= failed
            cell = cells.setdefault(job.job, JobCell(job.job))
            complete = True
            if job.outcome == PASSED:
                outcomes = dict.fromkeys(known, PASSED)
            elif job.failed and failed:
                complete = job.outcome == FAILED and len(job.failed_tests) < CSV_NAME_CAP
                outcomes = dict.fromkeys(known, PASSED) if complete else {}
                outcomes.update(dict.fromkeys(failed, FAILED))
            else:
                continue  # errored, cancelled or unreadable: which tests ran is unknown
            if outcomes:
                jobs.append(JobTests(cell, outcomes, complete=complete))
        yield RunTests(
            run_id=run.run_id,
            started_at=run.started_at,
            jobs=jobs,
            commit=run.commit,
            project=run.project,
        )


__all__ = [
    "TestsReplayConfig",
    "TestsReplayResult",
    "csv_projects",
    "csv_runs",
    "projects_of_reports",
    "replay_tests",
]
