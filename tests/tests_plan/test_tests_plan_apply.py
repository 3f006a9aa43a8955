"""Applying a plan to one job's collection: the pure function behind ``--carbon-plan``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests_plan_helpers import write_plan

from pytest_carbon.matrix.plan_apply import open_plan, select

NOW = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
COLLECTED = ["t.py::a", "t.py::b", "t.py::c"]


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    """Job ``py312`` skips ``a`` and ``c`` (and a test that no longer exists)."""
    return write_plan(tmp_path / "plan.json", {"py312": ["t.py::c", "t.py::a", "t.py::gone"]})


def test_deselects_only_collected_tests_the_plan_names(plan: Path) -> None:
    selection = select(open_plan(str(plan), "py312", now=NOW), COLLECTED)
    assert selection.deselect == ("t.py::a", "t.py::c")
    assert selection.energy_kwh_saved == pytest.approx(2e-4)
    assert selection.reason is None
    assert selection.message() == (
        f"carbon plan: deselected 2 test(s) covered by other jobs ({plan}), saving about "
        "720 J (history mean)."
    )


def test_a_test_the_plan_does_not_name_always_runs(plan: Path) -> None:
    selection = select(open_plan(str(plan), "py312", now=NOW), ["t.py::b", "t.py::new"])
    assert selection.deselect == ()
    assert selection.reason == f"{plan} skips none of the collected tests in py312"


@pytest.mark.parametrize(
    ("job", "max_age", "reason"),
    [
        ("py311", 14.0, "job 'py311' is not in {plan} (it has: py312)"),
        (None, 14.0, "{plan}: no job name; pass --carbon-job NAME"),
        ("py312", 3.0, "{plan} is 4 days old, older than the 3 allowed"),
    ],
)
def test_an_unusable_plan_runs_everything_and_says_why(
    plan: Path, job: str | None, max_age: float, reason: str
) -> None:
    opened = open_plan(str(plan), job, max_age_days=max_age, now=NOW)
    assert not opened.usable
    assert opened.reason is not None
    assert opened.reason.startswith(reason.format(plan=plan))
    selection = select(opened, COLLECTED)
    assert selection.deselect == ()
    assert selection.message().endswith("; running every test.")
    assert "\n" not in selection.message()


def test_missing_and_damaged_plans_run_everything(tmp_path: Path) -> None:
    missing = open_plan(str(tmp_path / "nope.json"), "py312", now=NOW)
    assert missing.reason == (
        f"cannot use the plan: {tmp_path / 'nope.json'}: cannot read file: No such file or "
        "directory."
    )
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"format": "pytest-carbon-test-plan", "format_version": 1}')
    reason = open_plan(str(damaged), "py312", now=NOW).reason
    assert reason is not None
    assert reason.startswith(f"cannot use the plan: {damaged}: damaged test plan")


def test_jobs_sharing_a_name_are_chosen_by_matrix(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, {"test": ["t.py::a"]}, matrix={"test": {"db": "pg"}})
    opened = open_plan(str(path), "test", {"db": "my"}, now=NOW)
    assert opened.usable  # one job of that name: its matrix need not match
    assert opened.job == "test[db=pg]"
