"""What the selector remembers of a project: counts learned run by run, and their JSON form."""

from __future__ import annotations

import json

import pytest

from pytest_carbon.matrix.memory import (
    RECENT,
    REMEMBERED,
    JobMemory,
    ProjectMemory,
    remember,
    timestamp,
)

JOBS = ("a", "b", "c")


def learn(
    memory: ProjectMemory,
    outcomes: dict[str, str],
    *,
    status: str | None = None,
    jobs: tuple[str, ...] = JOBS,
    branch: str | None = "main",
    commit: str | None = None,
    decay: float = 1.0,
) -> None:
    """One run of ``jobs``, of which only those in ``outcomes`` ran."""
    if status is None and len(outcomes) == len(jobs):
        status = "failed" if "failed" in outcomes.values() else "passed"
    memory.learn(
        jobs,
        outcomes,
        status=status,
        branch=branch,
        event="push",
        commit=commit,
        moment=None,
        decay=decay,
    )


def test_outcomes_are_counted_per_job() -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "passed", "b": "failed", "c": "unknown"})
    learn(memory, {"a": "failed", "b": "failed", "c": "passed"})
    a, b, c = (memory.jobs[name] for name in JOBS)
    assert (a.ran, a.seen, a.fails, a.last, a.streak) == (2, 2, 1, 1, 1)
    assert (b.seen, b.fails, b.streak, b.trans) == (2, 2, 2, [0, 0, 0, 1])
    assert (c.ran, c.seen, c.fails) == (2, 1, 0)
    assert b.lone == 1  # the first run: b failed alone
    assert (a.partial, b.partial) == (1, 2)  # a failed beside c passing; b beside a too
    assert memory.runs == 2
    assert memory.failing_runs == memory.status_runs == 2
    assert memory.last_failing == ["a", "b"]


def test_a_job_that_did_not_run_grows_stale() -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "passed", "b": "passed", "c": "passed"})
    learn(memory, {"a": "passed"})
    learn(memory, {"a": "failed"})
    b = memory.jobs["b"]
    assert (b.ran, b.since, b.last) == (1, 2, 0)
    assert memory.since_full == 2
    learn(memory, {"a": "passed", "b": "passed", "c": "passed"})
    assert memory.since_full == 0
    assert memory.jobs["b"].since == 0


def test_recent_outcomes_keep_only_the_last_ones() -> None:
    memory = ProjectMemory()
    for index in range(RECENT + 15):
        learn(memory, {"a": "failed" if index < 15 else "passed"}, jobs=("a",), status="failed")
    job = memory.jobs["a"]
    assert job.recent_n == RECENT
    assert job.recent == 0  # the 15 failures are older than the last RECENT outcomes
    assert job.recent_rate(10) == pytest.approx(0.1 / 11)
    learn(memory, {"a": "failed"}, jobs=("a",), status="failed")
    assert memory.jobs["a"].recent_rate(3) == pytest.approx(1.1 / 4)


def test_co_failures_are_asymmetric_and_decay() -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "failed", "b": "failed", "c": "passed"}, decay=0.5)
    learn(memory, {"a": "failed", "b": "passed", "c": "passed"}, decay=0.5)
    # a failed twice; b failed with it the first time, which now weighs half
    assert memory.pairs["a"]["b"] == [1.5, 0.5]
    assert memory.pairs["b"]["a"] == [1.0, 1.0]
    assert "c" not in memory.pairs  # c never failed


def test_lone_failures_in_passing_runs_mark_an_allowed_to_fail_cell() -> None:
    memory = ProjectMemory()
    for _ in range(3):
        learn(memory, {"a": "passed", "b": "passed", "c": "failed"}, status="passed")
    assert memory.jobs["c"].is_allowed_to_fail()
    assert not memory.jobs["a"].is_allowed_to_fail()
    assert memory.failing_runs == 0


def test_a_cell_no_longer_allowed_to_fail_is_believed_after_a_few_lone_failures() -> None:
    memory = ProjectMemory()
    for _ in range(60):
        learn(memory, {"a": "passed", "b": "passed", "c": "failed"}, status="passed")
    c = memory.jobs["c"]
    flips = 0
    while c.is_allowed_to_fail():
        learn(memory, {"a": "passed", "b": "passed", "c": "failed"}, status="failed")
        flips += 1
    # Sixty allowed failures before, yet four that fail the run are enough (not sixty-one).
    assert flips == 4
    learn(memory, {"a": "passed", "b": "passed", "c": "passed"})
    assert not c.is_allowed_to_fail()  # passing runs neither restore nor wear out the verdict
    for _ in range(4):
        learn(memory, {"a": "passed", "b": "passed", "c": "failed"}, status="passed")
    assert c.is_allowed_to_fail()  # allowed again once its lone failures pass the run again


def test_commit_and_branch_outcomes_are_remembered() -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "failed", "b": "passed", "c": "passed"}, commit="c1", branch="dev")
    learn(memory, {"a": "passed", "b": "passed"}, commit="c2", branch="dev")
    assert memory.commits["c1"] == {"a": 1, "b": 0, "c": 0}
    assert memory.branches["dev"] == {"a": 0, "b": 0}
    assert memory.branch_runs["dev"] == 2
    assert memory.previous == {"a": 0, "b": 0}
    assert memory.last_commit == "c2"


def test_remember_forgets_the_oldest_entry() -> None:
    table: dict[str, int] = {}
    for index in range(REMEMBERED + 5):
        remember(table, f"k{index}", index)
    assert len(table) == REMEMBERED
    assert "k0" not in table
    remember(table, "k10", -1)  # refreshed: now the newest
    assert list(table)[-1] == "k10"
    assert len(table) == REMEMBERED


def test_chain_probability_follows_the_last_outcome() -> None:
    streaky = JobMemory(trans=[90, 2, 2, 18], last=1)
    assert streaky.chain_probability() > 0.8
    streaky.last = 0
    assert streaky.chain_probability() < 0.05
    streaky.last, streaky.since = 1, 50  # long unseen: back to its long-run rate
    assert streaky.chain_probability() == pytest.approx(
        JobMemory(trans=[90, 2, 2, 18]).chain_probability(), abs=1e-3
    )


def test_memory_round_trips_through_json() -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "failed", "b": "passed", "c": "passed"}, commit="c1", decay=0.8)
    learn(memory, {"a": "passed", "b": "failed"}, commit="c2", decay=0.8)
    memory.learn_costs({"a": 12.0}, {"b": 1e-5})
    text = json.dumps(memory.to_dict())
    assert ProjectMemory.from_dict(json.loads(text)) == memory


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("counts",), [1, 2]),
        (("jobs", "a"), [1, 2, 3]),
        (("pairs", "a", "b"), [1.0, 2.0]),  # both failed more often than a did
        (("previous",), {"a": 2}),
        (("last",), [float("nan"), None, None]),
    ],
)
def test_damaged_memory_is_refused(path: tuple[str, ...], value: object) -> None:
    memory = ProjectMemory()
    learn(memory, {"a": "failed", "b": "passed", "c": "passed"})
    raw = json.loads(json.dumps(memory.to_dict()))
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises((ValueError, TypeError)):
        ProjectMemory.from_dict(raw)


def test_timestamps_are_read_or_left_unknown() -> None:
    assert timestamp("2020-01-01T00:00:10Z") == timestamp("2020-01-01T00:00:00Z") + 10  # type: ignore[operator]
    assert timestamp("yesterday") is None
    assert timestamp(None) is None
