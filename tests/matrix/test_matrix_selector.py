"""The selector and the Mozilla-style baseline on small hand-made histories."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matrix_helpers import make_runs

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.history import Run
from pytest_carbon.matrix.selector import MatrixSelector, Observation, RunContext

CONTEXT = RunContext(project="acme@app")


def paired_history(runs: int = 200) -> list[Run]:
    """a and b always fail together (every 10th run); c never fails."""
    return make_runs(["ffp" if i % 10 == 3 else "ppp" for i in range(runs)])


def quiet_selector(**params: object) -> MatrixSelector:
    """A selector without periodic full runs or forced refreshes."""
    return MatrixSelector(full_run_every=0, max_unseen=0, **params)  # type: ignore[arg-type]


def test_init_only_stores_parameters_and_fit_returns_self() -> None:
    selector = MatrixSelector(target_recall=0.9, cost="jobs")
    assert selector.get_params()["target_recall"] == 0.9
    assert not [name for name in vars(selector) if name.endswith("_")]
    history = paired_history(30)
    assert selector.fit(history) is selector
    assert hasattr(selector, "projects_")


def test_planning_before_fitting_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        MatrixSelector().plan(["a"])


def test_bad_parameters_are_refused_at_fit() -> None:
    with pytest.raises(ValueError, match="target_recall"):
        MatrixSelector(target_recall=1.5).fit(paired_history(5))


def test_one_of_two_jobs_that_always_fail_together_is_skipped() -> None:
    selector = quiet_selector(target_recall=0.9).fit(paired_history())
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert plan.run
    assert set(plan.run) | set(plan.skipped) == {"a", "b", "c"}
    assert len({"a", "b"} & set(plan.run)) == 1
    (pair_skip,) = [s for s in plan.skip if s.job in ("a", "b")]
    assert re.search(
        r"fails with [ab]: co-failure 8\d % over its 20 failure\(s\)", pair_skip.reason
    )


def test_a_job_that_just_failed_runs_next_time() -> None:
    history = paired_history(100) + make_runs(["ppf"], start=100)
    selector = quiet_selector(target_recall=0.9).fit(history)
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert "c" in plan.run


def test_jobs_without_enough_history_always_run() -> None:
    selector = quiet_selector(target_recall=0.5).fit(paired_history())
    plan = selector.plan(["a", "b", "c", "new"], CONTEXT)
    assert "new" in plan.run
    assert "needs 5" in plan.reasons["new"]


def test_unknown_project_runs_everything() -> None:
    history = paired_history() + make_runs(["pp"], jobs=("x", "y"), project="other")
    selector = quiet_selector().fit(history)
    plan = selector.plan(["a", "b"], RunContext(project="nobody"))
    assert plan.full
    assert plan.run == ("a", "b")


def test_allowed_to_fail_cell_is_skipped_with_its_reason() -> None:
    patterns = ["ppf" if i % 4 == 0 else "ppp" for i in range(80)]
    statuses = ["passed"] * 80
    selector = quiet_selector(target_recall=0.9).fit(make_runs(patterns, statuses=statuses))
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    (skip,) = [s for s in plan.skip if s.job == "c"]
    assert skip.reason.startswith("allowed to fail")


def test_a_cell_taken_out_of_allow_failures_is_planned_again() -> None:
    allowed = ["ppf" if i % 4 == 0 else "ppp" for i in range(80)]
    strict = ["ppf" if i % 2 == 0 else "ppp" for i in range(12)]
    statuses = ["passed"] * 80 + ["failed" if p == "ppf" else "passed" for p in strict]
    history = make_runs(allowed + strict, statuses=statuses)
    selector = quiet_selector(target_recall=0.9).fit(history)
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert "c" in plan.run
    assert not plan.reasons["c"].startswith("allowed")


def test_periodic_full_run_comes_every_n_runs() -> None:
    selector = MatrixSelector(target_recall=0.5, full_run_every=3, max_unseen=0)
    selector.fit(paired_history())
    fulls = []
    for index in range(6):
        plan = selector.plan(["a", "b", "c"], CONTEXT)
        fulls.append(plan.full)
        run = make_runs(["ppp"], start=500 + index)[0]
        selector.update(Observation.from_run(run, plan.run))
    assert fulls.count(True) == 2
    assert not all(fulls)


def test_update_learns_from_revealed_failures_only() -> None:
    selector = quiet_selector(target_recall=0.9).fit(paired_history())
    before = selector.plan(["a", "b", "c"], CONTEXT)
    assert "c" in before.skipped
    run = make_runs(["ppf"], start=900)[0]
    selector.update(Observation.from_run(run, ["a", "b", "c"]))
    assert "c" in selector.plan(["a", "b", "c"], CONTEXT).run


def test_save_and_load_give_the_same_plan(tmp_path: Path) -> None:
    selector = quiet_selector(target_recall=0.9).fit(paired_history())
    path = tmp_path / "model.json"
    selector.save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format_version"] == 4
    assert "pytest-carbon" in document["versions"]
    loaded = MatrixSelector.load(path)
    assert loaded.get_params() == selector.get_params()
    assert loaded.plan(["a", "b", "c"], CONTEXT) == selector.plan(["a", "b", "c"], CONTEXT)


def test_loading_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    quiet_selector().fit(paired_history(20)).save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["format_version"] = 5
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputError, match=r"unsupported model format_version 5 .*reads 3 and 4"):
        MatrixSelector.load(path)


def test_boosted_model_saves_and_loads_and_a_version_3_model_still_loads(
    streaky_fitted: MatrixSelector, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    streaky_fitted.save(path)
    loaded = MatrixSelector.load(path)
    assert loaded.model_ == streaky_fitted.model_
    assert loaded.model_.kind == "boosted"
    for names in (["a", "b", "c"], ["c", "a"]):
        assert loaded.plan(names, CONTEXT) == streaky_fitted.plan(names, CONTEXT)
    logistic = quiet_selector(target_recall=0.95, model="logistic").fit(streaky_history())
    logistic.save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["format_version"] = 3  # as the previous version wrote it
    del document["params"]["waves"]
    del document["state"]["model"]["trees"]
    path.write_text(json.dumps(document), encoding="utf-8")
    old = MatrixSelector.load(path)
    assert old.waves == 1
    assert old.model_.kind == "logistic"
    assert old.plan(["a", "b", "c"], CONTEXT) == logistic.plan(["a", "b", "c"], CONTEXT)


def test_loading_a_baseline_as_a_selector_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    MozillaBaseline().fit(paired_history(20)).save(path)
    with pytest.raises(InputError, match="expected 'MatrixSelector'"):
        MatrixSelector.load(path)


def test_damaged_model_state_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    quiet_selector().fit(paired_history(20)).save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["state"]["model"]["intercept"] = "oops"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputError, match="damaged"):
        MatrixSelector.load(path)


def test_model_that_loads_but_cannot_plan_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    quiet_selector().fit(paired_history(20)).save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    project = next(iter(document["state"]["projects"].values()))
    # Well-typed and in range, so it loads, but planning cannot turn it into a float.
    project["jobs"]["a"][1] = 10**400
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputError, match=r"model state is damaged.*Fix: re-create the model"):
        MatrixSelector.load(path)


def test_baseline_with_bad_parameters_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    MozillaBaseline().fit(paired_history(20)).save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["params"]["min_confidence"] = "x"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputError, match="min_confidence must be a number"):
        MozillaBaseline.load(path)


def test_baseline_runs_one_job_per_equivalence_set(tmp_path: Path) -> None:
    baseline = MozillaBaseline(0.9, min_support=5).fit(paired_history())
    plan = baseline.plan(["a", "b", "c"], CONTEXT)
    assert "c" in plan.run
    assert len({"a", "b"} & set(plan.run)) == 1
    path = tmp_path / "baseline.json"
    baseline.save(path)
    assert MozillaBaseline.load(path).plan(["a", "b", "c"], CONTEXT) == plan


def test_baseline_keeps_jobs_that_fail_apart() -> None:
    history = make_runs(["fpp" if i % 2 else "pfp" for i in range(40)])
    plan = MozillaBaseline(0.5).fit(history).plan(["a", "b", "c"], CONTEXT)
    assert {"a", "b"} <= set(plan.run)


@settings(max_examples=40, deadline=None)
@given(
    patterns=st.lists(st.text(alphabet="pfu", min_size=4, max_size=4), min_size=1, max_size=40),
    target=st.floats(min_value=0.5, max_value=1.0),
)
def test_every_plan_partitions_the_matrix_and_runs_something(
    patterns: list[str], target: float
) -> None:
    jobs = ("a", "b", "c", "d")
    selector = MatrixSelector(target_recall=target, min_history=1).fit(make_runs(patterns, jobs))
    plan = selector.plan(list(jobs), CONTEXT)
    assert sorted(plan.run + plan.skipped) == sorted(jobs)
    assert not set(plan.run) & set(plan.skipped)
    assert plan.run
    assert all(skip.reason for skip in plan.skip)


def streaky_history(runs: int = 1500) -> list[Run]:
    """Job a breaks for a few runs at a time; b and c fail together now and then."""
    patterns = []
    for index in range(runs):
        a = "f" if index % 40 in (3, 4, 5, 6) else "p"
        bc = "ff" if index % 25 == 11 else "pp"
        patterns.append(a + bc)
    return make_runs(patterns)


@pytest.fixture(scope="module")
def streaky_fitted() -> MatrixSelector:
    """A selector fitted once on :func:`streaky_history` (copy it before changing it)."""
    return quiet_selector(target_recall=0.95).fit(streaky_history())


@pytest.mark.parametrize("kind", ["boosted", "logistic"])
def test_enough_failures_train_a_model_that_follows_streaks(
    streaky_fitted: MatrixSelector, kind: str
) -> None:
    if kind == "boosted":
        selector = copy.deepcopy(streaky_fitted)  # the default model
    else:
        selector = quiet_selector(target_recall=0.95, model=kind).fit(streaky_history())
    assert selector.model_.kind == kind
    assert selector.model_.failures >= 200
    threshold, recall, skipped = selector.calibrated()
    assert threshold > 0.0
    assert recall is not None
    assert recall >= 0.95
    assert skipped is not None
    assert skipped > 0.3
    follow = make_runs(["fpp"], start=1000)[0]
    selector.update(Observation.from_run(follow, ["a", "b", "c"]))
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert "a" in plan.run  # a broke in the last run: it runs again
    assert len({"b", "c"} & set(plan.run)) <= 1  # b and c fail together: one covers the other


def test_a_history_without_failures_skips_nothing_on_trust() -> None:
    selector = quiet_selector(target_recall=0.9).fit(make_runs(["ppp"] * 100))
    assert selector.model_.kind == "chain"
    assert selector.calibrated() == (0.0, None, None)
    assert selector.plan(["a", "b", "c"], CONTEXT).run == ("a", "b", "c")


def test_target_recall_of_one_leaves_no_risk(streaky_fitted: MatrixSelector) -> None:
    selector = copy.deepcopy(streaky_fitted).set_params(target_recall=1.0)
    assert selector.risk_threshold() == 0.0
    assert selector.plan(["a", "b", "c"], CONTEXT).full
    looser = selector.set_params(target_recall=0.8).risk_threshold()
    assert looser > 0.0


def test_a_job_not_run_for_long_runs_again() -> None:
    selector = MatrixSelector(target_recall=0.9, full_run_every=0, max_unseen=3)
    selector.fit(paired_history())
    for index in range(3):
        selector.update(Observation.from_run(make_runs(["ppp"], start=700 + index)[0], ["a"]))
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert {"b", "c"} <= set(plan.run)
    assert plan.reasons["c"] == "not run for 3 runs"


def test_jobs_whose_outcome_was_never_read_always_run() -> None:
    history = make_runs(["ppu" if i % 10 else "ffu" for i in range(200)])
    plan = quiet_selector(target_recall=0.5).fit(history).plan(["a", "b", "c"], CONTEXT)
    assert "c" in plan.run
    assert plan.reasons["c"] == "only 0 known outcome(s), needs 5 to be skipped"


def test_the_first_wave_is_the_planned_job_likeliest_to_fail(
    streaky_fitted: MatrixSelector,
) -> None:
    selector = copy.deepcopy(streaky_fitted).set_params(target_recall=1.0)  # every job runs
    selector.update(Observation.from_run(make_runs(["fpp"], start=1000)[0], ["a", "b", "c"]))
    assert selector.plan(["a", "b", "c"], CONTEXT).waves == ()  # one wave: none named
    selector.set_params(waves=2)
    plan = selector.plan(["a", "b", "c"], CONTEXT)
    assert plan.waves == (("a",), ("b", "c"))
    assert plan.reasons["a"].startswith("wave 1, the likeliest to fail; ")
    assert plan.to_dict()["waves"] == [["a"], ["b", "c"]]
    p = selector.fail_probabilities(selector.projects_["acme@app"], ["a", "b", "c"], CONTEXT)
    second = "bc"[int(p[1:].argmax())]
    three = selector.set_params(waves=3).plan(["a", "b", "c"], CONTEXT)
    assert three.waves == (("a",), (second,), tuple(n for n in "bc" if n != second))
    assert three.reasons[second].startswith("wave 2, the likeliest to fail; ")


def test_a_selector_in_waves_always_runs_its_likeliest_jobs_first(
    streaky_fitted: MatrixSelector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Risks injected: d has no history, so it must run; at a risk threshold of 0.25, one wave
    # adds nothing to it (a removes 0.2), waves add the likeliest job and run it first; a third
    # wave opens with the next planned job, adding none.
    names = ["a", "b", "c", "d"]
    risks = np.array([0.2, 0.01, 0.02, 0.001])
    plans = {}
    for waves in (1, 2, 3):
        selector = copy.deepcopy(streaky_fitted).set_params(waves=waves)
        monkeypatch.setattr(selector, "fail_probabilities", lambda *args: risks)
        monkeypatch.setattr(selector, "risk_threshold", lambda: 0.25)
        plans[waves] = selector.plan(names, CONTEXT)
    assert (plans[1].run, plans[1].waves) == (("d",), ())
    assert (plans[2].run, plans[2].waves) == (("a", "d"), (("a",), ("d",)))
    assert (plans[3].run, plans[3].waves) == (("a", "d"), (("a",), ("d",)))
    risks[3] = 0.3  # d now likeliest: it opens the first wave, a the second
    monkeypatch.setattr(selector, "risk_threshold", lambda: 0.0)  # every job runs
    assert selector.plan(names, CONTEXT).waves == (("d",), ("a",), ("b", "c"))
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="waves"):
            MatrixSelector(waves=bad).fit(paired_history(5))  # type: ignore[arg-type]


def test_baseline_runs_first_its_job_failing_most(tmp_path: Path) -> None:
    # a fails in every 10th run, b never: one job per set, a first.
    runs = make_runs(["fpp" if i % 10 == 3 else "ppp" for i in range(100)])
    baseline = MozillaBaseline(0.9).fit(runs)
    plan = baseline.plan(["a", "b", "c"], CONTEXT)
    assert plan.run == ("a", "b", "c")
    assert plan.waves == (("a",), ("b", "c"))
    path = tmp_path / "baseline.json"
    baseline.save(path)
    assert MozillaBaseline.load(path).plan(["a", "b", "c"], CONTEXT) == plan
    document = json.loads(path.read_text(encoding="utf-8"))
    for counts in document["state"].values():
        del counts["failures"]  # a model saved before per-job counts: no first wave
    path.write_text(json.dumps(document), encoding="utf-8")
    assert MozillaBaseline.load(path).plan(["a", "b", "c"], CONTEXT).waves == ()
