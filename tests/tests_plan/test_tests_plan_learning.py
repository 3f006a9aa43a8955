"""Learning per-test behaviour across matrix cells, and the plans built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests_plan_helpers import CELLS, make_run, uniform_run

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.tests_plan import (
    CHANGED,
    FLAKY,
    NEW,
    RECENT,
    SINGLE,
    UNEXPLAINED,
    ChangeMatcher,
    JobCell,
    TestPlan,
    TestPlanner,
    explain,
    load_plan,
    plan_from_dict,
    read_changed_files,
)

PURE = [f"tests/test_pure.py::test_{i}" for i in range(6)]
DB = "tests/test_db.py::test_query"
PY = "tests/test_compat.py::test_syntax"


def skipped_where(plan: TestPlan, nodeid: str) -> set[str]:
    """The labels of the jobs that skip ``nodeid``."""
    return {job.cell.label for job in plan.jobs if nodeid in {s.nodeid for s in job.skip}}


def ran_where(plan: TestPlan, nodeid: str, cells: tuple[JobCell, ...] = CELLS) -> set[JobCell]:
    """The cells that still run ``nodeid``."""
    return {cell for cell in cells if cell.label not in skipped_where(plan, nodeid)}


def history(runs: int = 6, **failing: list[JobCell]) -> list:  # type: ignore[type-arg]
    """``runs`` runs of PURE + DB + PY; in run 1, the named tests fail in the named cells."""
    tests = [*PURE, DB, PY]
    names = {"db": DB, "py": PY}
    return [
        uniform_run(i, tests, failing={names[k]: v for k, v in failing.items()} if i == 1 else {})
        for i in range(1, runs + 1)
    ]


def test_a_test_alike_everywhere_runs_in_exactly_one_job() -> None:
    planner = TestPlanner(min_runs=3).fit(history())
    plan = planner.plan(CELLS)
    for nodeid in PURE:
        assert len(ran_where(plan, nodeid)) == 1
    covering = {s.covered_by for job in plan.jobs for s in job.skip if s.nodeid == PURE[0]}
    (keeper,) = ran_where(plan, PURE[0])
    assert covering == {keeper.label}


def test_a_test_that_differs_by_database_runs_once_per_database() -> None:
    mysql = [cell for cell in CELLS if cell.values["db"] == "my"]
    planner = TestPlanner(min_runs=3).fit(history(db=mysql))
    plan = planner.plan(CELLS)
    assert sorted(cell.values["db"] for cell in ran_where(plan, DB)) == ["my", "pg"]
    assert plan.sensitive[DB] == ["db"]
    assert len(ran_where(plan, PURE[0])) == 1


@pytest.mark.parametrize(("inherit", "databases"), [(True, 2), (False, 1)])
def test_a_quiet_test_inherits_the_axes_of_its_module(inherit: bool, databases: int) -> None:
    mysql = [cell for cell in CELLS if cell.values["db"] == "my"]
    sibling = "tests/test_db.py::test_insert"
    runs = [
        uniform_run(i, [*PURE, DB, sibling], failing={DB: mysql} if i == 1 else {})
        for i in range(1, 7)
    ]
    plan = TestPlanner(min_runs=3, inherit_module_axes=inherit).fit(runs).plan(CELLS)
    ran = [cell.values["db"] for cell in ran_where(plan, sibling)]
    assert len(ran) == len(set(ran)) == databases
    assert sibling not in plan.sensitive


def test_a_test_that_differs_by_python_runs_once_per_python() -> None:
    new_python = [cell for cell in CELLS if cell.values["python"] == "3.12"]
    plan = TestPlanner(min_runs=3).fit(history(py=new_python)).plan(CELLS)
    assert sorted(cell.values["python"] for cell in ran_where(plan, PY)) == ["3.11", "3.12"]
    assert plan.sensitive[PY] == ["python"]


def test_a_difference_in_one_cell_of_a_full_matrix_needs_both_axes() -> None:
    plan = TestPlanner(min_runs=3).fit(history(db=[CELLS[3]])).plan(CELLS)
    assert ran_where(plan, DB) == set(CELLS)
    assert plan.sensitive[DB] == ["db", "python"]


def test_differences_no_axis_explains_run_everywhere() -> None:
    bare = (JobCell("a"), JobCell("b"), JobCell("c"))
    runs = [
        uniform_run(i, [*PURE, DB], bare, failing={DB: [bare[0]]} if i == 2 else {})
        for i in range(1, 8)
    ]
    plan = TestPlanner(min_runs=3).fit(runs).plan(bare)
    assert ran_where(plan, DB, bare) == set(bare)
    assert plan.sensitive[DB] is None
    assert plan.kept[UNEXPLAINED] == 1
    assert len(ran_where(plan, PURE[0], bare)) == 1


def test_explain_picks_the_smallest_consistent_axes() -> None:
    def pattern(*cells: tuple[dict[str, str], str]) -> frozenset:  # type: ignore[type-arg]
        return frozenset((tuple(sorted(m.items())), c) for m, c in cells)

    by_db = pattern(({"db": "a", "py": "1"}, "failed"), ({"db": "b", "py": "1"}, "passed"))
    assert explain([by_db]) == frozenset({"db"})
    both = pattern(({"db": "a", "py": "1"}, "failed"), ({"db": "b", "py": "2"}, "passed"))
    assert explain([both]) == frozenset({"db", "py"})  # either axis explains it: keep both
    twins = pattern(({"db": "a"}, "failed"), ({"db": "a", "x": "1"}, "passed"))
    assert explain([twins]) == frozenset({"x"})
    same = frozenset({((("db", "a"),), "failed"), ((("db", "a"),), "passed")})
    assert explain([same]) is None


def test_same_commit_flip_in_one_job_is_flaky() -> None:
    runs = [uniform_run(i, PURE, commit="same" if i in (3, 4) else None) for i in range(1, 8)]
    runs[3] = uniform_run(4, PURE, failing={PURE[0]: list(CELLS)}, commit="same")
    planner = TestPlanner(min_runs=3, recent_failures=0).fit(runs)
    plan = planner.plan(CELLS)
    assert ran_where(plan, PURE[0]) == set(CELLS)
    assert plan.kept[FLAKY] == 1
    assert len(ran_where(plan, PURE[1])) == 1


def test_new_tests_and_single_job_tests_are_never_skipped() -> None:
    runs = [uniform_run(i, PURE) for i in range(1, 7)]
    runs[-1].jobs[0].outcomes["tests/test_new.py::test_new"] = "passed"
    runs[-1].jobs[1].outcomes["tests/test_new.py::test_new"] = "passed"
    runs[-1].jobs[2].outcomes["tests/test_only.py::test_here"] = "passed"
    plan = TestPlanner(min_runs=3).fit(runs).plan(CELLS)
    assert skipped_where(plan, "tests/test_new.py::test_new") == set()
    assert skipped_where(plan, "tests/test_only.py::test_here") == set()
    assert plan.kept == {NEW: 1, SINGLE: 1}


def test_enough_history_is_counted_in_runs_that_ran_a_test_twice() -> None:
    runs = [uniform_run(i, PURE) for i in range(1, 4)]
    assert all(not job.skip for job in TestPlanner(min_runs=4).fit(runs).plan(CELLS).jobs)
    assert any(job.skip for job in TestPlanner(min_runs=3).fit(runs).plan(CELLS).jobs)


def test_a_recent_failure_runs_everywhere_until_it_has_passed_for_a_while() -> None:
    tests = PURE[:2]
    runs = [uniform_run(i, tests) for i in range(1, 6)]
    runs.append(uniform_run(6, tests, failing={PURE[0]: list(CELLS)}))
    planner = TestPlanner(min_runs=3, recent_failures=2).fit(runs)
    assert ran_where(planner.plan(CELLS), PURE[0]) == set(CELLS)
    planner.observe(uniform_run(7, tests))
    assert ran_where(planner.plan(CELLS), PURE[0]) == set(CELLS)
    assert planner.plan(CELLS).kept == {RECENT: 1}
    planner.observe(uniform_run(8, tests))
    assert len(ran_where(planner.plan(CELLS), PURE[0])) == 1


def test_changed_tests_are_never_skipped() -> None:
    planner = TestPlanner(min_runs=3).fit(history())
    plan = planner.plan(CELLS, changed=["src/shop/db.py"])
    assert ran_where(plan, DB) == set(CELLS)
    assert plan.kept[CHANGED] == 1
    assert len(ran_where(plan, PURE[0])) == 1


@pytest.mark.parametrize(
    ("changed", "test_file", "touched"),
    [
        ("tests/test_db.py", "tests/test_db.py", True),
        ("./tests/test_db.py", "tests/test_db.py", True),
        ("repo/tests/test_db.py", "tests/test_db.py", True),
        ("test_db.py", "tests/test_db.py", True),
        ("tests", "tests/test_db.py", True),
        ("tests/unit/", "tests/test_db.py", False),
        ("tests/conftest.py", "tests/sub/test_db.py", True),
        ("conftest.py", "tests/test_db.py", True),
        ("tests/other/conftest.py", "tests/test_db.py", False),
        ("src/shop/db.py", "tests/test_db.py", True),
        ("src/shop/db.py", "tests/db_test.py", True),
        ("shop.db", "tests/test_db.py", True),
        ("src/shop/dbx.py", "tests/test_db.py", False),
        ("src/shop/__init__.py", "tests/test_db.py", False),
        ("", "tests/test_db.py", False),
    ],
)
def test_change_matching(changed: str, test_file: str, touched: bool) -> None:
    assert ChangeMatcher([changed])(f"{test_file}::test_x") is touched


def test_changed_files_are_read_one_a_line(tmp_path: Path) -> None:
    listing = tmp_path / "changed.txt"
    listing.write_text("src/a.py\n\n# comment\n tests/test_b.py \n", encoding="utf-8")
    assert read_changed_files(listing) == ["src/a.py", "tests/test_b.py"]
    with pytest.raises(InputError, match=r"missing\.txt: cannot read the changed-files list"):
        read_changed_files(tmp_path / "missing.txt")


def test_covered_tests_are_spread_so_no_job_is_the_bottleneck() -> None:
    tests = [f"tests/test_m.py::test_{i}" for i in range(12)]
    cost = dict.fromkeys(tests, 1.0) | {tests[0]: 6.0}
    runs = [uniform_run(i, tests, cost=cost) for i in range(1, 5)]
    plan = TestPlanner(min_runs=3).fit(runs).plan(CELLS)
    loads = sorted(job.load for job in plan.jobs)
    assert sum(loads) == pytest.approx(17.0)
    assert loads[-1] == pytest.approx(6.0)  # the heavy test alone; the rest spread evenly
    assert loads[:3] == pytest.approx([3.0, 4.0, 4.0])
    heavy_job = next(job for job in plan.jobs if job.load == pytest.approx(6.0))
    assert len(heavy_job.skip) == len(tests) - 1


def test_balance_by_energy_uses_measured_energy() -> None:
    tests = [f"tests/test_m.py::test_{i}" for i in range(8)]
    runs = [uniform_run(i, tests, cells=CELLS[:2]) for i in range(1, 5)]
    for run in runs:  # job 0 is twice as costly per test
        for nodeid in tests:
            run.jobs[0].energy_kwh[nodeid] = 2e-5
    plan = TestPlanner(min_runs=3, balance="energy").fit(runs).plan(CELLS[:2])
    kept = {job.cell: len(tests) - len(job.skip) for job in plan.jobs}
    assert kept[CELLS[0]] < kept[CELLS[1]]
    saved = {job.cell: job.energy_kwh_saved for job in plan.jobs}
    assert saved[CELLS[0]] == pytest.approx(2e-5 * len(plan.jobs[0].skip))


def test_module_granularity_skips_whole_known_modules() -> None:
    modules = {
        "tests/test_a.py": ["tests/test_a.py::test_1", "tests/test_a.py::test_2"],
        "tests/test_b.py": ["tests/test_b.py::test_1"],
    }
    tests = [nodeid for nodeids in modules.values() for nodeid in nodeids]
    runs = [
        uniform_run(i, tests, failing={tests[0]: [CELLS[0]]} if i == 1 else {}) for i in range(1, 6)
    ]
    plan = TestPlanner(min_runs=3, granularity="module").fit(runs).plan(CELLS)
    assert ran_where(plan, tests[0]) == ran_where(plan, tests[1]) == set(CELLS)
    assert plan.sensitive == {"tests/test_a.py": ["db", "python"]}
    assert len(ran_where(plan, tests[2])) == 1
    entries = [s for job in plan.jobs for s in job.skip]
    assert {s.nodeid for s in entries} == {tests[2]}
    assert all(s.wall_s == pytest.approx(1.0) for s in entries)


def test_a_job_that_stops_running_a_test_no_longer_covers_it() -> None:
    runs = [uniform_run(i, PURE[:2]) for i in range(1, 6)]
    gone = runs[-1].jobs[0]
    del gone.outcomes[PURE[0]]  # removed there, or skipped there now
    planned = runs[-1].jobs[1]
    del planned.outcomes[PURE[1]]
    planned.deselected = frozenset({PURE[1]})  # deselected by a plan: still there
    planner = TestPlanner(min_runs=3).fit(runs)
    assert planner.stats_[PURE[0]].runners == set(CELLS) - {gone.cell}
    assert planner.stats_[PURE[1]].runners == set(CELLS)
    plan = planner.plan(CELLS)
    assert gone.cell.label not in skipped_where(plan, PURE[0])
    assert gone.cell.label not in {
        s.covered_by for job in plan.jobs for s in job.skip if s.nodeid == PURE[0]
    }
    planner.observe(uniform_run(6, PURE[:2]))
    assert planner.stats_[PURE[0]].runners == set(CELLS)


def test_hidden_pairs_are_not_learned() -> None:
    planner = TestPlanner(min_runs=1)
    run = uniform_run(1, PURE[:1], failing={PURE[0]: [CELLS[0]]})
    planner.observe(run, hidden={(CELLS[0], PURE[0])})
    stats = planner.stats_[PURE[0]]
    assert stats.last_failure is None
    assert CELLS[0] not in stats.runners
    assert stats.axes == frozenset()


def test_the_plan_is_versioned_json_that_round_trips(tmp_path: Path) -> None:
    mysql = [cell for cell in CELLS if cell.values["db"] == "my"]
    plan = TestPlanner(min_runs=3).fit(history(db=mysql)).plan(CELLS)
    path = tmp_path / "plan.json"
    plan.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "pytest-carbon-test-plan"
    assert data["format_version"] == 1
    assert data["source_run_ids"] == [str(i) for i in range(1, 7)]
    assert {job["name"] for job in data["jobs"]} == {cell.name for cell in CELLS}
    loaded = load_plan(path)
    assert loaded.to_dict() == plan.to_dict()
    assert loaded.job("pg-3.11") == plan.jobs[[j.name for j in plan.jobs].index("pg-3.11")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, "unsupported test plan format_version 2"),
        ({"format": "other"}, "not a pytest-carbon test plan"),
        ({"created_at": "yesterday"}, "damaged test plan"),
        ({"jobs": [{"skip": []}]}, "damaged test plan"),
        ({"jobs": [{"name": "a", "skip": [{"energy_kwh": 1}]}]}, "damaged test plan"),
    ],
)
def test_loading_refuses_other_versions_and_damaged_plans(
    change: dict[str, object], message: str
) -> None:
    data = TestPlanner().plan([]).to_dict() | change
    with pytest.raises(InputError, match=message) as caught:
        plan_from_dict(data, "plan.json")
    assert str(caught.value).startswith("plan.json: ")
    assert "Fix: create it again with `pytest-carbon matrix plan-tests`." in str(caught.value)


def test_loading_a_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{\n "format": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"plan\.json:3: malformed JSON"):
        load_plan(path)


def test_jobs_sharing_a_name_are_told_apart_by_their_matrix() -> None:
    cells = [JobCell.of("test", {"db": "pg"}), JobCell.of("test", {"db": "my"})]
    runs = [uniform_run(i, PURE, cells) for i in range(1, 5)]
    plan = TestPlanner(min_runs=3).fit(runs).plan(cells)
    assert plan.job("test", {"db": "my"}) is not None
    assert plan.job("test", {"db": "my"}) is not plan.job("test", {"db": "pg"})
    assert plan.job("test", {"db": "sqlite"}) is None
    assert plan.job("test") is None
    assert {job.cell.label for job in plan.jobs} == {"test[db=my]", "test[db=pg]"}


OUTCOME = st.sampled_from(["passed", "failed", "xfailed"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(OUTCOME, min_size=4, max_size=4), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=0, max_value=4),
)
def test_every_skip_is_covered_by_a_job_that_runs_the_test(
    rows: list[tuple[list[str], bool]], min_runs: int
) -> None:
    """Whatever the history, each skipped test still runs in its covering job, in its class."""
    tests = ["t::a", "t::b"]
    runs = []
    for index, (outcomes, second_everywhere) in enumerate(rows, start=1):
        per_cell = {
            cell: {"t::a": outcome} | ({"t::b": "passed"} if second_everywhere else {})
            for cell, outcome in zip(CELLS, outcomes, strict=True)
        }
        runs.append(make_run(index, per_cell))
    planner = TestPlanner(min_runs=min_runs, recent_failures=1).fit(runs)
    plan = planner.plan(CELLS)
    by_label = {job.cell.label: job for job in plan.jobs}
    for job in plan.jobs:
        for item in job.skip:
            keeper = by_label[item.covered_by]
            assert item.nodeid not in {s.nodeid for s in keeper.skip}
            stats = planner.stats_[item.nodeid]
            assert stats.evidence >= min_runs
            assert not stats.flaky
            assert stats.axes is not None
            for axis in stats.axes:
                assert job.matrix[axis] == keeper.matrix[axis]
    for nodeid in tests:
        if nodeid in planner.stats_:
            assert ran_where(plan, nodeid), f"{nodeid} runs nowhere"
