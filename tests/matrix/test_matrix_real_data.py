"""A slice of real CI history: the loaders and the replay hold up on it."""

from __future__ import annotations

import itertools

import pytest
from matrix_helpers import DATA_FILE

from pytest_carbon.matrix.history import OUTCOMES, LoadNotes, group_runs, iter_csv
from pytest_carbon.matrix.replay import ReplayConfig, replay, split_history
from pytest_carbon.matrix.selector import MatrixSelector

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(
        not DATA_FILE.is_file(),
        reason=f"the shared CI history {DATA_FILE.name} is not next to the repository",
    ),
]


def test_first_rows_of_the_real_history_load_and_replay() -> None:
    notes = LoadNotes()
    records = list(itertools.islice(iter_csv(DATA_FILE, notes=notes), 20000))
    assert len(records) == 20000
    assert {record.outcome for record in records} <= set(OUTCOMES)
    runs = group_runs(records)
    assert all(run.jobs for run in runs)
    assert [run.started_at for run in runs] == sorted(run.started_at for run in runs)
    split = split_history(runs, ReplayConfig(min_runs=50))
    assert split.projects >= 3
    assert split.test
    everything = replay(MatrixSelector(full_run_every=1), split, "full")
    assert everything.failing_run_recall == 1.0
    assert everything.jobs_skipped_share == 0.0
    result = replay(MatrixSelector(target_recall=0.9), split, "selector")
    assert result.failing_runs == everything.failing_runs > 0
    assert 0.0 < result.jobs_skipped_share < 1.0
    assert result.mean_plan_ms < 50.0


def test_a_slice_of_real_history_replays_in_two_waves() -> None:
    records = list(itertools.islice(iter_csv(DATA_FILE), 20000))
    runs = group_runs(records)
    one = replay(MatrixSelector(target_recall=0.95), split_history(runs, ReplayConfig()), "one")
    selector = MatrixSelector(target_recall=0.95, waves=2)
    two = replay(selector, split_history(runs, ReplayConfig(waves=2)), "two")
    assert two.failing_runs == one.failing_runs > 0
    assert 0 < two.second_waves < two.runs
    assert two.jobs_skipped_share > one.jobs_skipped_share
    assert two.failing_run_recall >= one.failing_run_recall - 0.05


def test_a_real_cell_taken_out_of_allow_failures_is_run_again() -> None:
    # In this project cell 5 failed alone in 63 runs that passed anyway, then it stopped being
    # allowed to fail: 9 lone failures failed the run before the split, 14 after it.
    project = "erikrose@blessings"
    rows = itertools.takewhile(
        lambda record: record.project == project,
        itertools.dropwhile(lambda record: record.project != project, iter_csv(DATA_FILE)),
    )
    split = split_history(group_runs(rows), ReplayConfig())
    assert split.projects == 1
    fitted = MatrixSelector().fit(split.train)
    assert not fitted.projects_[project].jobs["cell05of05"].is_allowed_to_fail()
    result = replay(MatrixSelector(), split, "selector")
    assert result.failing_runs == 25
    assert result.failing_run_recall >= 0.9  # 0.56 while the cell was still judged allowed
