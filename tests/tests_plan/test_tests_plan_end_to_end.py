"""The real plugin end to end: reports per cell, a plan, planned runs that still catch failures."""

from __future__ import annotations

import pytest
from tests_plan_helpers import matrix_command

from pytest_carbon.report.model import load_report

PURE = """
import os

def test_add():
    assert 1 + 1 == (3 if os.environ.get("BUG") == "pure" else 2)

def test_mul():
    assert 2 * 3 == 6

def test_sub():
    assert 3 - 1 == 2
"""
DB = """
import os

def test_quote():
    broken = os.environ.get("BUG") == "mysql" and os.environ["CONFIG_DB"] == "mysql"
    assert not broken
"""
DATABASES = ("sqlite", "mysql")


@pytest.mark.slow
def test_reports_plan_and_planned_runs_catch_failures_and_save_energy(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_pure=PURE, test_db=DB)
    (pytester.path / "reports").mkdir()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)

    def run_job(run: int, db: str, bug: str = "", *plan: str) -> pytest.RunResult:
        monkeypatch.setenv("GITHUB_RUN_ID", str(run))
        monkeypatch.setenv("CONFIG_DB", db)
        monkeypatch.setenv("BUG", bug)
        (pytester.path / "reports" / str(run)).mkdir(exist_ok=True)
        return pytester.runpytest_subprocess(
            "-p",
            "no:randomly",
            "--carbon",
            f"--carbon-json=reports/{run}/{db}.json",
            f"--carbon-job={db}",
            f"--carbon-matrix=db={db}",
            "--carbon-top=0",
            "--carbon-compare-regions=none",
            *plan,
        )

    for run in (1, 2, 3):
        for db in DATABASES:
            run_job(run, db, "mysql" if run == 1 else "")
    plan = str(pytester.path / "test-plan.json")
    reports = str(pytester.path / "reports")
    argv = ["plan-tests", reports, "-o", plan, "--min-runs", "2", "--recent-failures", "1"]
    assert matrix_command(argv) == 0

    results = {db: run_job(4, db, "pure", f"--carbon-plan={plan}") for db in DATABASES}
    deselections = {
        db: load_report(pytester.path / "reports" / "4" / f"{db}.json").deselection
        for db in DATABASES
    }
    assert sum(d.tests for d in deselections.values() if d is not None) == 3  # pure: once each
    assert all(d is None or d.energy_kwh_saved > 0 for d in deselections.values())
    for db in DATABASES:  # the database test depends on the database: it runs in both jobs
        report = load_report(pytester.path / "reports" / "4" / f"{db}.json")
        assert "test_db.py::test_quote" in {test.nodeid for test in report.tests}
    failed = [db for db, result in results.items() if result.ret == pytest.ExitCode.TESTS_FAILED]
    assert len(failed) == 1  # the pure bug is caught by the one job that ran test_add
    results[failed[0]].stdout.fnmatch_lines(["*_ test_add _*"])
