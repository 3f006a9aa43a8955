"""Features, the learned failure model, the greedy cover and the calibration table."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_carbon.matrix.memory import ProjectMemory
from pytest_carbon.matrix.risk import (
    FEATURES,
    RAW_WIDTH,
    THRESHOLDS,
    CalibrationSample,
    RiskModel,
    RowBuffer,
    co_failure_matrix,
    cover,
    design,
    lead_jobs,
    ran_in_waves,
    raw_rows,
    risk_matrix,
    start,
)
from pytest_carbon.matrix.selector import RunContext

CONTEXT = RunContext(project="p", branch="main", event="push", started_at="2020-01-01T00:00:00Z")


def memory_of(patterns: list[str], jobs: tuple[str, ...] = ("a", "b", "c")) -> ProjectMemory:
    """A project's memory after runs whose outcomes follow ``patterns`` ("p"/"f" per job)."""
    memory = ProjectMemory()
    for pattern in patterns:
        outcomes = {
            job: "failed" if c == "f" else "passed" for job, c in zip(jobs, pattern, strict=True)
        }
        memory.learn(
            jobs,
            outcomes,
            status="failed" if "f" in pattern else "passed",
            branch="main",
            event="push",
            commit=None,
            moment=None,
            decay=0.8,
        )
    return memory


def test_every_job_gets_one_row_of_every_feature() -> None:
    memory = memory_of(["ppp", "fpp", "ppp"])
    rows = raw_rows(memory, ["a", "b", "c", "new"], CONTEXT)
    assert [len(row) for row in rows] == [RAW_WIDTH] * 4
    X = design(np.asarray(rows))
    assert X.shape == (4, len(FEATURES))
    assert np.isfinite(X).all()
    column = dict(zip(FEATURES, X.T, strict=True))
    assert list(column["last_failed"]) == [0.0, 0.0, 0.0, 0.0]  # a passed last
    assert list(column["last_none"]) == [0.0, 0.0, 0.0, 1.0]
    assert column["rate"][0] > column["rate"][1] == 0.0
    assert list(column["event_push"]) == [1.0] * 4


def test_features_of_stale_knowledge() -> None:
    memory = memory_of(["ppp", "ppf"])
    memory.learn(("a", "b", "c"), {"a": "passed"}, status=None, branch=None, event=None,
                 commit=None, moment=None, decay=0.8)  # fmt: skip
    X = design(np.asarray(raw_rows(memory, ["a", "c"], CONTEXT)))
    column = dict(zip(FEATURES, X.T, strict=True))
    assert column["log_staleness"][0] == 0.0
    assert column["log_staleness"][1] == pytest.approx(np.log(2.0))
    assert column["stale_failure"][1] == pytest.approx(np.log(2.0))  # c failed, then unseen
    assert column["previous_none"][1] == 1.0  # c did not run in the previous run


def synthetic_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of many jobs: a job that failed last time fails again far more often."""
    X = np.zeros((n, len(FEATURES)))
    last_failed = rng.random(n) < 0.1
    X[:, FEATURES.index("last_failed")] = last_failed
    X[:, FEATURES.index("last_passed")] = ~last_failed
    X[:, FEATURES.index("chain")] = np.where(last_failed, 0.6, 0.03)
    y = (rng.random(n) < np.where(last_failed, 0.6, 0.03)).astype(int)
    return X, y


def test_the_model_learns_from_enough_failures_and_counts_otherwise() -> None:
    rng = np.random.default_rng(1)
    X, y = synthetic_rows(rng, 20_000)
    model = RiskModel.fit(X, y, C=1.0, min_failures=200)
    assert model.kind == "logistic"
    predicted = model.predict(X)
    last_failed = X[:, FEATURES.index("last_failed")] == 1.0
    assert predicted[last_failed].mean() == pytest.approx(0.6, abs=0.05)
    assert predicted[~last_failed].mean() == pytest.approx(0.03, abs=0.01)
    few = RiskModel.fit(X[:500], y[:500], C=1.0, min_failures=200)
    assert few.kind == "chain"
    assert list(few.predict(X[:3])) == list(X[:3, 0])


def test_the_model_round_trips_and_refuses_other_features() -> None:
    rng = np.random.default_rng(2)
    model = RiskModel.fit(*synthetic_rows(rng, 5000), C=1.0, min_failures=50)
    assert RiskModel.from_dict(model.to_dict()) == model
    other = model.to_dict()
    other["features"] = other["features"][:-1]
    with pytest.raises(ValueError, match="features differ"):
        RiskModel.from_dict(other)
    other = model.to_dict()
    other["weights"][0] = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        RiskModel.from_dict(other)


def test_the_model_never_extrapolates() -> None:
    rng = np.random.default_rng(3)
    X, y = synthetic_rows(rng, 20_000)
    rate = FEATURES.index("log_project_failing_rate")
    X[:, rate] = np.log(0.25)  # constant in training: a wide matrix's masked memory
    staleness = FEATURES.index("log_staleness")
    X[:, staleness] = rng.random(len(y))  # seen in 0..1 only
    model = RiskModel.fit(X, y, C=1.0, min_failures=200)
    assert model.weights[rate] == 0.0
    assert model.low[staleness] >= 0.0
    assert model.high[staleness] <= 1.0
    inside = model.predict(X[:50])
    shifted = X[:50].copy()
    shifted[:, rate] = np.log(0.06)
    assert np.array_equal(model.predict(shifted), inside)
    shifted[:, staleness] = 5.0  # beyond training: weighed as its largest value there
    at_edge = X[:50].copy()
    at_edge[:, staleness] = model.high[staleness]
    assert np.allclose(model.predict(shifted), model.predict(at_edge))
    assert ((model.predict(shifted) > 1e-4) & (model.predict(shifted) < 0.99)).all()


def test_the_model_refuses_damaged_feature_ranges() -> None:
    model = RiskModel.fit(*synthetic_rows(np.random.default_rng(4), 5000), C=1.0, min_failures=50)
    other = model.to_dict()
    other["low"] = other["low"][:-1]
    with pytest.raises(ValueError, match="differ in length"):
        RiskModel.from_dict(other)
    other = model.to_dict()
    other["low"][0] = other["high"][0] + 1.0
    with pytest.raises(ValueError, match="range is empty"):
        RiskModel.from_dict(other)


def test_cover_adds_jobs_while_they_remove_enough_risk() -> None:
    fail_p = np.array([0.3, 0.3, 0.01])
    co = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # a and b fail together
    risk = risk_matrix(fail_p, co)
    assert risk[1, 0] == 0.0  # a running leaves nothing of b
    assert risk[2, 0] == pytest.approx(0.01)
    chosen = np.array([True, False, False])
    left = cover(risk, fail_p, np.ones(3), chosen, threshold=0.05)
    assert list(chosen) == [True, False, False]
    assert left == pytest.approx(0.01)
    steps: list[tuple[float, int]] = []
    cover(risk, fail_p, np.ones(3), chosen, threshold=-1.0, steps=steps)
    assert chosen.all()
    assert [index for _, index in steps] == [2, 1]
    assert steps[0][0] == pytest.approx(0.01)


def test_costly_jobs_need_more_risk_to_run() -> None:
    fail_p = np.array([0.5, 0.04, 0.04])
    risk = risk_matrix(fail_p, np.zeros((3, 3)))
    chosen = np.array([True, False, False])
    cover(risk, fail_p, np.array([1.0, 0.5, 2.0]), chosen, threshold=0.05)
    assert list(chosen) == [True, True, False]  # same risk, b costs a quarter of c


def test_co_failure_matrix_reads_the_weighted_pairs() -> None:
    memory = memory_of(["ffp"] * 5 + ["fpp"])
    co = co_failure_matrix(memory, ["a", "b", "c", "x"], prior=1.0)
    n, both = memory.pairs["b"]["a"]
    assert co[1, 0] == pytest.approx(both / (n + 1.0))
    assert co[0, 1] < co[1, 0]  # a also failed without b
    assert co[3].sum() == co[:, 3].sum() == 0.0


def test_calibration_trades_recall_for_skips_as_the_threshold_grows() -> None:
    sample = CalibrationSample()
    rng = np.random.default_rng(3)
    rows = []
    for run in range(300):
        p = 0.01 + rng.random(4) * 0.2
        failed = rng.random(4) < p
        rows.extend(p)
        sample.add(4 * run, np.zeros((4, 4)), np.zeros(4, bool), np.zeros(4, bool),
                   np.ones(4), failed)  # fmt: skip
    table = sample.table(np.asarray(rows))
    recall = np.asarray(table["recall"])
    skipped = np.asarray(table["skipped"])
    assert len(recall) == len(skipped) == len(THRESHOLDS)
    assert (np.diff(recall) <= 1e-12).all()
    assert (np.diff(skipped) >= -1e-12).all()
    assert recall[0] == 1.0
    assert skipped[0] == 0.0  # every job removes more than the smallest threshold
    assert skipped[-1] == pytest.approx(0.75)  # only the first job runs
    assert 0 < table["failing_runs"] <= 300


def test_row_buffer_keeps_rows_in_order() -> None:
    buffer = RowBuffer()
    buffer.CHUNK = 3  # type: ignore[misc]
    memory = memory_of(["ppp"])
    rows = raw_rows(memory, ["a", "b"], CONTEXT)
    first = [buffer.add(rows, [0, 1]) for _ in range(4)]
    assert first == [0, 2, 4, 6]
    X, y = buffer.arrays()
    assert X.shape == (8, len(FEATURES))
    assert np.array_equal(X, design(np.asarray(rows * 4)))
    assert list(y) == [0, 1] * 4
    X, y = buffer.arrays()  # handed over: the buffer keeps no copy
    assert X.shape == (0, len(FEATURES))
    assert len(y) == 0


def test_waves_start_from_the_likeliest_jobs_and_weigh_the_others_by_their_passing() -> None:
    p = np.array([0.1, 0.4, 0.2])
    forced = np.array([True, False, False])
    allowed = np.zeros(3, bool)
    chosen, costs, leads = start(forced, allowed, p, np.ones(3), waves=1)
    assert (chosen.tolist(), costs.tolist(), leads) == ([True, False, False], [1.0] * 3, [])
    chosen, costs, leads = start(forced, allowed, p, np.ones(3), waves=2)
    assert (chosen.tolist(), leads) == ([True, True, False], [1])
    assert costs == pytest.approx([0.6, 0.6, 0.6])
    chosen, costs, leads = start(forced, allowed, p, np.ones(3), waves=3)
    assert (chosen.tolist(), leads) == ([True, True, False], [1])  # later leads: not added
    assert costs == pytest.approx([0.6, 0.6, 0.6])
    everyone = np.ones(3, bool)
    assert lead_jobs(everyone, np.array([False, True, False]), p, 2) == [2, 0]  # allowed: never
    assert lead_jobs(everyone, allowed, np.zeros(3), 2) == []


def test_calibration_in_waves_counts_a_lead_failure_as_caught_with_the_rest_left_out() -> None:
    sample = CalibrationSample()
    # Run 1: the likeliest job (index 1) fails. Run 2: only the least likely job fails.
    for failed in ([False, True, False], [False, False, True]):
        sample.add(0, np.zeros((3, 3)), np.zeros(3, bool), np.zeros(3, bool), np.ones(3),
                   np.array(failed))  # fmt: skip
    p = np.array([0.05, 0.4, 0.1])
    two = sample.table(p, waves=2)
    single = sample.table(p)
    assert sample.table(p, waves=3)["recall"] == two["recall"]
    assert two["failing_runs"] == single["failing_runs"] == 2
    assert two["recall"][-1] == single["recall"][-1] == 0.5  # only the lead runs
    assert two["skipped"][0] == pytest.approx(2 / 6)  # lead failure: 2 of its 3 left out
    assert single["skipped"][0] == 0.0


def test_calibration_in_three_waves_leaves_out_what_follows_a_failing_second_lead() -> None:
    sample = CalibrationSample()
    # The second likeliest job (index 2) fails alone; no co-failures, so every job is its own.
    sample.add(0, np.zeros((4, 4)), np.zeros(4, bool), np.zeros(4, bool), np.ones(4),
               np.array([False, False, True, False]))  # fmt: skip
    p = np.array([0.05, 0.4, 0.12, 0.1])
    two, three = sample.table(p, waves=2), sample.table(p, waves=3)
    assert two["recall"] == three["recall"]  # waves change what is left out, never what is caught
    assert two["skipped"][0] == 0.0  # everything planned: wave 1 passes, the rest all run
    assert three["skipped"][0] == 0.5  # wave 2 (job 2) fails: jobs 0 and 3 never start
    # With job 2 left out of the plan (the largest threshold), three waves run as two.
    assert three["skipped"][-1] == two["skipped"][-1] == 0.75
    assert (three["recall"][0], three["recall"][-1]) == (1.0, 0.0)


def test_jobs_run_in_waves_for_each_prefix_of_a_cover() -> None:
    p = np.array([0.5, 0.3, 0.2, 0.4, 0.1])
    allowed = np.array([False, False, False, False, True])
    failed = np.array([False, True, False, False, True])
    # Prefixes: {0} | +1 | +2 | +3 | +4; job 1 is a lead until job 3 outranks it (3 waves).
    ran = ran_in_waves([0], [1, 2, 3, 4], p, allowed, failed, 3)
    assert ran.tolist() == [1, 2, 2, 4, 5]
    assert ran_in_waves([0], [1, 2, 3, 4], p, allowed, failed, 4).tolist() == [1, 2, 2, 3, 3]


def test_a_failed_lead_ends_a_run_that_passed_anyway_without_counting_it_as_failing() -> None:
    sample = CalibrationSample()
    # The likeliest job (index 1) failed, but the run passed (its failure was allowed that time).
    sample.add(0, np.zeros((3, 3)), np.zeros(3, bool), np.zeros(3, bool), np.ones(3),
               np.array([False, True, False]), failing=False)  # fmt: skip
    p = np.array([0.05, 0.4, 0.1])
    two, single = sample.table(p, waves=2), sample.table(p)
    assert two["failing_runs"] == single["failing_runs"] == 0
    assert two["skipped"][0] == pytest.approx(2 / 3)  # wave 2 never starts
    assert single["skipped"][0] == 0.0
