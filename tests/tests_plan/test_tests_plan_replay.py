"""The time-ordered replay of per-test plans, on made-up runs and on a slice of real history."""

from __future__ import annotations

import itertools

import pytest
from tests_plan_helpers import CELLS, DATA_FILE, uniform_run

from pytest_carbon.matrix.history import JobResult, Run, iter_csv
from pytest_carbon.matrix.tests_plan import FAILED, PASSED, JobCell, TestPlanner
from pytest_carbon.matrix.tests_replay import (
    TestsReplayConfig,
    csv_projects,
    csv_runs,
    replay_tests,
)

TESTS = [f"t.py::test_{i}" for i in range(4)]


def job(name: str, outcome: str, failed: tuple[str, ...] = ()) -> JobResult:
    """One CSV job record."""
    return JobResult("p", "1", "2020-01-01T00:00:00Z", name, outcome, failed_tests=failed)


def run(index: int, status: str, *jobs: JobResult) -> Run:
    """One CSV run."""
    return Run("p", str(index), f"2020-01-01T00:00:{index:02d}Z", jobs, run_status=status)


def test_csv_candidates_are_the_tests_seen_failing_so_far() -> None:
    runs = [
        run(1, "passed", job("a", "passed"), job("b", "passed")),
        run(2, "failed", job("a", "failed", ("x", "x", "y")), job("b", "passed")),
        run(3, "failed", job("a", "passed"), job("b", "failed", ("y",))),
        run(4, "passed", job("a", "passed"), job("b", "failed", ("z",))),  # allowed to fail
        run(5, "errored", job("a", "error", ("x",)), job("b", "failed")),
        run(6, "failed", job("a", "failed", tuple(f"n{i}" for i in range(100)))),
    ]
    observed = list(csv_runs(runs))
    outcomes = [{j.cell.name: j.outcomes for j in r.jobs} for r in observed]
    assert outcomes[0] == {}
    assert outcomes[1] == {"a": {"x": FAILED, "y": FAILED}}
    assert outcomes[2] == {"a": {"x": PASSED, "y": PASSED}, "b": {"y": FAILED}}
    assert outcomes[3] == {"a": {"x": PASSED, "y": PASSED}}
    assert outcomes[4] == {"a": {"x": FAILED}}  # errored: failures known, passes are not
    assert outcomes[5]["a"]["n0"] == FAILED
    assert "x" not in outcomes[5]["a"]  # the list was capped: whether x passed is unknown
    assert len(outcomes[5]["a"]) == 100
    assert [j.complete for r in observed for j in r.jobs] == [True, True, True, True, False, False]


def test_csv_projects_without_named_failures_are_left_out() -> None:
    quiet = JobResult("quiet", "1", "2020-01-01T00:00:00Z", "a", "passed")
    loud = JobResult("loud", "1", "2020-01-01T00:00:00Z", "a", "failed", failed_tests=("x",))
    projects = list(csv_projects([quiet, loud]))
    assert [[r.project for r in runs] for runs in projects] == [["loud"]]


def test_a_replay_of_full_runs_skips_nothing_and_catches_everything() -> None:
    runs = [
        uniform_run(i, TESTS, failing={TESTS[0]: [CELLS[1]]} if i % 4 == 0 else {})
        for i in range(1, 21)
    ]
    config = TestsReplayConfig(train_share=0.5, full_every=1, min_runs=10)
    result = replay_tests([runs], lambda: TestPlanner(min_runs=2), config)
    assert (result.runs, result.full_runs, result.skipped) == (10, 10, 0)
    assert result.pair_recall == 1.0
    assert result.failing_pairs == 3
    assert result.executions == 10 * len(TESTS) * len(CELLS)
    assert result.energy_saved_share == 0.0


def test_a_failure_in_a_skipped_cell_is_counted_as_missed_and_never_learned() -> None:
    runs = [uniform_run(i, TESTS) for i in range(1, 12)]
    config = TestsReplayConfig(train_share=0.95, full_every=0, min_runs=2)
    planner = TestPlanner(min_runs=3)
    plan = planner.fit(runs[:10]).plan(CELLS)
    skipped_cell = next(job.cell for job in plan.jobs if TESTS[0] in {s.nodeid for s in job.skip})
    runs[10] = uniform_run(11, TESTS, failing={TESTS[0]: [skipped_cell]})
    result = replay_tests([runs], lambda: planner, config)
    assert (result.runs, result.failing_pairs, result.caught_pairs) == (1, 1, 0)
    assert result.run_recall == 0.0
    assert result.known_pair_recall == 0.0
    assert planner.stats_[TESTS[0]].last_failure is None  # the hidden failure was not seen
    assert result.executions_saved_share == pytest.approx(3 / 4)
    assert result.energy_saved_share == pytest.approx(3 / 4)
    assert result.max_job_wall_s_planned < result.max_job_wall_s


def test_short_projects_are_not_replayed() -> None:
    runs = [uniform_run(i, TESTS) for i in range(1, 5)]
    result = replay_tests([runs], TestPlanner, TestsReplayConfig(min_runs=5))
    assert (result.projects, result.runs) == (0, 0)
    assert result.pair_recall is None
    assert result.mean_plan_ms == 0.0


@pytest.mark.data
@pytest.mark.skipif(
    not DATA_FILE.is_file(),
    reason=f"the shared CI history {DATA_FILE.name} is not next to the repository",
)
def test_a_slice_of_real_history_replays_with_high_recall() -> None:
    records = list(itertools.islice(iter_csv(DATA_FILE), 25000))
    projects = list(csv_projects(records))
    assert len(projects) >= 5
    config = TestsReplayConfig()
    never = replay_tests(projects, lambda: TestPlanner(min_runs=10**9), config)
    assert never.skipped == 0
    assert never.pair_recall == 1.0
    planned = replay_tests(projects, TestPlanner, config)
    assert planned.failing_pairs == never.failing_pairs > 100
    assert planned.pair_recall is not None
    assert planned.pair_recall >= 0.97
    assert planned.executions_saved_share is not None
    assert planned.executions_saved_share > 0.2
    assert planned.mean_plan_ms < 50.0
    assert all(isinstance(cell, JobCell) for runs in projects for cell in runs[-1].cells)
