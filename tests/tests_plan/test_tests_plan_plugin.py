"""``pytest --carbon-plan PLAN --carbon-job NAME``: black-box runs with pytester."""

from __future__ import annotations

import datetime as dt

import pytest
from tests_plan_helpers import write_plan

from pytest_carbon.report.model import load_report

SUITE = """
import os

def test_a():
    pass

def test_b():
    assert os.environ.get("BREAK_B") != "1"

def test_c():
    pass
"""
SKIPS = {"py312": ["test_suite.py::test_a", "test_suite.py::test_c"], "py311": []}


def fresh() -> str:
    """A creation time inside any sensible age limit."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """The three-test suite and a fresh plan in which py312 skips a and c."""
    pytester.makepyfile(test_suite=SUITE)
    write_plan(pytester.path / "plan.json", SKIPS, created_at=fresh())
    return pytester


def test_help_lists_the_plan_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--carbon-plan=PLAN.json*", "*--carbon-plan-max-age-days=DAYS*"])


def test_plan_deselects_covered_tests_without_carbon(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--carbon-plan=plan.json", "--carbon-job=py312")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "carbon plan: plan.json, job py312: 2 test(s) are covered by other jobs",
            "*collected 3 items / 2 deselected / 1 selected*",
            "carbon plan: deselected 2 test(s) covered by other jobs (plan.json), saving about "
            "720 J (history mean).",
        ]
    )


def test_failures_of_the_tests_that_run_still_fail_the_session(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAK_B", "1")
    result = suite.runpytest("--carbon-plan=plan.json", "--carbon-job=py312")
    result.assert_outcomes(failed=1, deselected=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_job_whose_every_test_is_covered_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    nodeids = [f"test_suite.py::test_{name}" for name in "abc"]
    write_plan(pytester.path / "plan.json", {"py312": nodeids}, created_at=fresh())
    result = pytester.runpytest("--carbon-plan=plan.json", "--carbon-job=py312")
    result.assert_outcomes(deselected=3)
    assert result.ret == pytest.ExitCode.OK


def test_an_empty_collection_without_the_plan_keeps_its_exit_status(
    suite: pytest.Pytester,
) -> None:
    result = suite.runpytest("--carbon-plan=plan.json", "--carbon-job=py312", "-k", "nothing")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--carbon-plan=missing.json", "--carbon-job=py312"],
            "carbon plan: cannot use the plan: missing.json: cannot read file: No such file or "
            "directory.; running every test.",
        ),
        (
            ["--carbon-plan=plan.json", "--carbon-job=py310"],
            "carbon plan: job 'py310' is not in plan.json (it has: py311, py312); running every "
            "test.",
        ),
        (
            ["--carbon-plan=plan.json"],
            "carbon plan: plan.json: no job name; pass --carbon-job NAME; running every test.",
        ),
        (
            ["--carbon-plan=old.json", "--carbon-job=py312", "--carbon-plan-max-age-days=7"],
            "carbon plan: old.json is * days old, older than the 7 allowed "
            "(--carbon-plan-max-age-days); create a fresh one with `pytest-carbon matrix "
            "plan-tests`; running every test.",
        ),
        (
            ["--carbon-plan=damaged.json", "--carbon-job=py312"],
            "carbon plan: cannot use the plan: damaged.json:1: malformed JSON: *; running every "
            "test.",
        ),
    ],
)
def test_an_unusable_plan_runs_everything_and_says_why(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], line: str
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    write_plan(suite.path / "old.json", SKIPS, created_at="2020-01-01T00:00:00Z")
    (suite.path / "damaged.json").write_text("{not json", encoding="utf-8")
    result = suite.runpytest(*args)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "deselected" not in result.stdout.str()


def test_plan_options_come_from_ini_and_environment(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makeini("[pytest]\ncarbon_plan = plan.json\n")
    monkeypatch.setenv("PYTEST_CARBON_JOB", "py312")
    result = suite.runpytest()
    result.assert_outcomes(passed=1, deselected=2)
    monkeypatch.setenv("PYTEST_CARBON_PLAN_MAX_AGE_DAYS", "soon")
    result = suite.runpytest()
    result.stderr.fnmatch_lines(["*--carbon-plan-max-age-days: expected a number, got 'soon'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_the_report_records_the_deselection(suite: pytest.Pytester) -> None:
    result = suite.runpytest(
        "--carbon", "--carbon-json=carbon.json", "--carbon-plan=plan.json", "--carbon-job=py312"
    )
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["  Plan: 2 test(s) covered by other jobs deselected, ~720 J saved"]
    )
    report = load_report(suite.path / "carbon.json")
    assert [test.nodeid for test in report.tests] == ["test_suite.py::test_b"]
    assert report.deselection is not None
    assert report.deselection.plan == "plan.json"
    assert report.deselection.tests == 2
    assert report.deselection.nodeids == ["test_suite.py::test_a", "test_suite.py::test_c"]
    assert report.deselection.energy_kwh_saved == pytest.approx(2e-4)


class TestXdist:
    """Workers collect the same items and deselect identically; the controller reports it."""

    @pytest.fixture(autouse=True)
    def _needs_xdist(self) -> None:
        pytest.importorskip("xdist")

    def test_deselection_is_consistent_across_workers(self, suite: pytest.Pytester) -> None:
        suite.makepyfile(test_more="\n".join(f"def test_{i}():\n    pass\n" for i in range(6)))
        skips = ["test_suite.py::test_a", "test_suite.py::test_c", "test_more.py::test_3"]
        write_plan(suite.path / "plan.json", {"py312": skips}, created_at=fresh())
        result = suite.runpytest_subprocess(
            "-n",
            "2",
            "--carbon",
            "--carbon-json=carbon.json",
            "--carbon-plan=plan.json",
            "--carbon-job=py312",
        )
        result.assert_outcomes(passed=6)
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(
            [
                "carbon plan: plan.json, job py312: 3 test(s) are covered by other jobs",
                "*2 workers [[]6 items[]]*",
                "carbon plan: deselected 3 test(s) covered by other jobs (plan.json)*",
            ]
        )
        assert "Different tests were collected" not in result.stdout.str()
        report = load_report(suite.path / "carbon.json")
        assert report.deselection is not None
        assert sorted(report.deselection.nodeids) == sorted(skips)
        assert len(report.tests) == 6

    def test_a_job_whose_every_test_is_covered_passes(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(test_suite=SUITE)
        nodeids = [f"test_suite.py::test_{name}" for name in "abc"]
        write_plan(pytester.path / "plan.json", {"py312": nodeids}, created_at=fresh())
        result = pytester.runpytest_subprocess(
            "-n", "2", "--carbon-plan=plan.json", "--carbon-job=py312"
        )
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["carbon plan: deselected 3 test(s)*"])
