"""The honest replay: time order, only planned outcomes revealed, failing runs counted right."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from matrix_helpers import make_runs, wide_history

from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.history import Run
from pytest_carbon.matrix.replay import ReplayConfig, is_failing, replay, split_history
from pytest_carbon.matrix.selector import MatrixSelector, Observation, Plan, RunContext, Skip


class SpySelector:
    """Runs only job ``a`` and records what the replay shows it."""

    def __init__(self) -> None:
        self.fitted: list[Run] = []
        self.seen: list[Observation] = []
        self.plans: list[Plan] = []

    def fit(self, history: Iterable[Run]) -> SpySelector:
        self.fitted = list(history)
        return self

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        plan = Plan(("a",), tuple(Skip(job, "spy") for job in jobs if job != "a"))
        self.plans.append(plan)
        return plan

    def update(self, observed: Observation) -> SpySelector:
        self.seen.append(observed)
        return self


def history() -> list[Run]:
    """Two projects; b fails in every 5th run of acme."""
    acme = make_runs(["pfp" if i % 5 == 4 else "ppp" for i in range(20)])
    other = make_runs(["ppp"] * 4, project="tiny", start=100)
    return acme + other


def test_replay_reveals_only_the_outcomes_of_planned_jobs() -> None:
    split = split_history(history(), ReplayConfig(min_runs=10))
    spy = SpySelector()
    result = replay(spy, split, "spy")
    assert len(spy.fitted) == 16
    assert len(spy.seen) == 4
    assert all(set(seen.outcomes) == {"a"} for seen in spy.seen)
    assert all(seen.run_status is None for seen in spy.seen)
    assert [seen.context.started_at for seen in spy.seen] == sorted(
        seen.context.started_at or "" for seen in spy.seen
    )
    assert (result.failing_runs, result.caught_runs) == (1, 0)
    assert result.jobs_skipped_share == 2 / 3


def test_projects_with_too_few_usable_runs_are_left_out() -> None:
    split = split_history(history(), ReplayConfig(min_runs=10))
    assert split.projects == 1
    assert {run.project for run in split.train + split.test} == {"acme@app"}


def test_passed_run_with_a_failed_job_is_not_failing() -> None:
    (allowed,) = make_runs(["pfp"], statuses=["passed"])
    (errored,) = make_runs(["pfp"], statuses=["errored"])
    (hidden,) = make_runs(["pup"], statuses=["failed"])
    config = ReplayConfig()
    assert not is_failing(allowed, config)
    assert not is_failing(errored, config)
    assert is_failing(errored, ReplayConfig(errored_as_failing=True))
    assert not is_failing(hidden, config)  # no visible failed job: cannot be caught


def test_runs_with_fewer_than_two_known_jobs_are_not_usable() -> None:
    runs = make_runs(["puu"] * 12 + ["ppp"] * 12)
    split = split_history(runs, ReplayConfig(min_runs=10))
    assert len(split.train) + len(split.test) == 12


def test_full_runs_every_run_catch_every_failing_run() -> None:
    split = split_history(history(), ReplayConfig(min_runs=10, train_share=0.5))
    result = replay(MatrixSelector(full_run_every=1), split, "full")
    assert result.failing_runs == 2
    assert result.failing_run_recall == 1.0
    assert result.jobs_skipped_share == 0.0
    assert result.full_runs == result.runs


def test_baseline_and_selector_replay_on_the_same_split() -> None:
    runs = make_runs(["ffp" if i % 7 == 3 else "ppp" for i in range(200)])
    split = split_history(runs, ReplayConfig(min_runs=50))
    quiet = MatrixSelector(0.9, full_run_every=0, max_unseen=0)
    selector = replay(quiet, split, "selector")
    baseline = replay(MozillaBaseline(0.9), split, "baseline")
    assert selector.failing_runs == baseline.failing_runs == 6
    assert selector.failing_run_recall == baseline.failing_run_recall == 1.0
    assert selector.jobs_skipped_share > 0.3
    assert baseline.jobs_skipped_share > 0.3


@pytest.mark.parametrize("target", [0.9, 0.97])
def test_calibration_foretells_the_replay_of_a_wide_matrix(target: float) -> None:
    # One project, 24 jobs in four groups failing together in streaks, and lone flakes: the
    # recall and skipped share that fit's calibration promises must be what the honest replay
    # (only planned outcomes revealed) then keeps. Failing runs: 64, so a run is 1.6 points.
    split = split_history(wide_history(2500, 24, seed=3), ReplayConfig())
    selector = MatrixSelector(target)
    result = replay(selector, split, "selector")
    _, promised_recall, promised_skipped = selector.calibrated()
    assert result.failing_runs == 64
    assert promised_recall is not None
    assert promised_skipped is not None
    assert result.failing_run_recall >= target - 0.05
    assert abs(result.jobs_skipped_share - promised_skipped) < 0.1
    assert result.jobs_skipped_share > 0.03  # it does skip


class WaveSpy(SpySelector):
    """Plans every job in waves: ``a``, then (with three waves) ``b``, then the others."""

    def __init__(self, waves: int = 2) -> None:
        super().__init__()
        self.waves = waves

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        leads = ("a", "b")[: self.waves - 1]
        rest = tuple(job for job in jobs if job not in leads)
        plan = Plan(tuple(jobs), (), waves=(*((lead,) for lead in leads), rest))
        self.plans.append(plan)
        return plan


def test_a_replay_in_waves_leaves_out_the_second_wave_after_a_first_wave_failure() -> None:
    # Replayed (last 4 of 20): a fails alone, b fails alone, all pass, a and c fail.
    runs = make_runs(["ppp"] * 16 + ["fpp", "pfp", "ppp", "fpf"])
    split = split_history(runs, ReplayConfig(min_runs=10, waves=2))
    spy = WaveSpy()
    result = replay(spy, split, "waves")
    assert [set(seen.outcomes) for seen in spy.seen] == [
        {"a"},
        {"a", "b", "c"},
        {"a", "b", "c"},
        {"a"},
    ]
    assert [seen.run_status for seen in spy.seen] == [None, "failed", "passed", None]
    assert (result.failing_runs, result.caught_runs) == (3, 3)
    assert result.skipped_jobs == 4
    assert result.second_waves == 2
    assert result.waves_run == 6
    one_wave = replay(WaveSpy(), split_history(runs, ReplayConfig(min_runs=10)), "one")
    assert (one_wave.caught_runs, one_wave.skipped_jobs, one_wave.second_waves) == (3, 0, 0)
    assert one_wave.waves_run == 4


def test_three_waves_stop_at_the_first_wave_holding_a_failure() -> None:
    # Replayed: a fails; b fails; all pass; b and c fail.
    runs = make_runs(["ppp"] * 16 + ["fpp", "pfp", "ppp", "pff"])
    spy = WaveSpy(waves=3)
    result = replay(spy, split_history(runs, ReplayConfig(min_runs=10, waves=3)), "three")
    assert [sorted(seen.outcomes) for seen in spy.seen] == [
        ["a"],
        ["a", "b"],
        ["a", "b", "c"],
        ["a", "b"],
    ]
    assert (result.failing_runs, result.caught_runs) == (3, 3)
    assert result.skipped_jobs == 2 + 1 + 0 + 1
    assert (result.second_waves, result.waves_run) == (3, 1 + 2 + 3 + 2)


def test_a_selector_in_waves_keeps_its_recall_and_skips_more_in_two_waves() -> None:
    # The wide matrix of the calibration test: planned for two waves and replayed in two, the
    # selector keeps about the recall it keeps in one wave, and the first-wave failures of the
    # failing runs leave out more jobs. Its calibration foretells the two-wave skipped share.
    history = wide_history(2500, 24, seed=3)
    one = replay(MatrixSelector(0.9), split_history(history, ReplayConfig()), "one")
    selector = MatrixSelector(0.9, waves=2)
    two = replay(selector, split_history(history, ReplayConfig(waves=2)), "two")
    _, promised_recall, promised_skipped = selector.calibrated()
    assert two.failing_runs == one.failing_runs == 64
    assert two.failing_run_recall >= 0.85
    assert two.jobs_skipped_share > one.jobs_skipped_share
    assert promised_skipped is not None
    assert abs(two.jobs_skipped_share - promised_skipped) < 0.1
    assert 0 < two.second_waves < two.runs
