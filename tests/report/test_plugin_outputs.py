"""Every report option through pytest itself (pytester), without xdist and with ``-n 2``.

Runs with ``--carbon`` cost about two seconds each, so each run combines several options.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from carbon_factory import make_report
from pytest_carbon.report.csvfile import CODECARBON_COLUMNS
from pytest_carbon.report.markdown import COMMENT_MARKER
from pytest_carbon.report.model import SessionReport, load_report

BUDGET_SUITE = """
import pytest

def burn(n):
    return sum(i * i for i in range(n))

def test_burns():
    burn(200_000)

@pytest.mark.carbon_budget(energy_kwh=1e-15)
def test_over_budget():
    burn(50_000)

@pytest.mark.carbon_budget(energy_kwh=1.0, emissions_g=1000.0)
def test_within_budget():
    burn(1_000)

@pytest.mark.carbon_budget(emissions_g=1e-15)
def test_fails_anyway():
    assert burn(10) == 0
"""


def junit_properties(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The testsuite's properties and each testcase's (keyed by name)."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    own = {p.get("name", ""): p.get("value", "") for p in suite.findall("properties/property")}
    cases = {
        case.get("name", ""): {
            p.get("name", ""): p.get("value", "") for p in case.findall("properties/property")
        }
        for case in suite.iter("testcase")
    }
    return own, cases


def by_name(report: SessionReport) -> dict[str, float]:
    return {test.nodeid.split("::")[-1]: test.energy_kwh for test in report.tests}


def assert_budget_verdicts(report: SessionReport) -> None:
    tests = {test.nodeid.split("::")[-1]: test for test in report.tests}
    assert tests["test_over_budget"].outcome == "failed"
    assert tests["test_over_budget"].budget == {"energy_kwh": 1e-15}
    assert tests["test_over_budget"].budget_exceeded
    assert tests["test_within_budget"].outcome == "passed"
    assert tests["test_within_budget"].budget == {"energy_kwh": 1.0, "emissions_g": 1000.0}
    assert not tests["test_within_budget"].budget_exceeded
    assert tests["test_fails_anyway"].budget_exceeded
    assert tests["test_burns"].budget is None


def assert_junit_matches(path: Path, report: SessionReport) -> None:
    suite, cases = junit_properties(path)
    assert float(suite["carbon_energy_kwh"]) == pytest.approx(report.energy_kwh, rel=1e-5)
    assert float(suite["carbon_emissions_g"]) == pytest.approx(report.emissions_g, rel=1e-5)
    assert suite["carbon_method"] == report.power.method
    energies = by_name(report)
    assert set(cases) == set(energies)
    for name, props in cases.items():
        assert float(props["carbon_energy_kwh"]) == pytest.approx(energies[name], rel=1e-5)
        assert float(props["carbon_emissions_g"]) > 0
        assert props["carbon_method"]


def test_every_output_without_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_inner_budgets=BUDGET_SUITE)
    summary = pytester.path / "step-summary.md"
    summary.write_text("## an earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    (pytester.path / "out").mkdir()
    result = pytester.runpytest(
        "--carbon",
        "--carbon-json=carbon.json",
        "--carbon-csv=out/carbon.csv",
        "--carbon-gitlab-metrics=metrics.txt",
        "--carbon-html=carbon.html",
        "--carbon-pr-comment=comment.md",
        "--carbon-compare-regions=FRA,gcp:europe-west9",
        "--junitxml=junit.xml",
        "--strict-markers",
    )
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*carbon budget exceeded: * > * (energy_kwh=1e-15)*",
            "What if elsewhere (same *",
            "*gcp europe-west9 (FRA)*34 g/kWh*",
            "*France*56* g/kWh*",
        ]
    )
    report = load_report(pytester.path / "carbon.json")
    assert_budget_verdicts(report)
    assert report.exit_status == pytest.ExitCode.TESTS_FAILED

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## an earlier step\n## Carbon footprint")
    assert "```mermaid\nxychart-beta" in text
    assert "| France | 56" in text

    comment = (pytester.path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(COMMENT_MARKER)

    with (pytester.path / "out" / "carbon.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CODECARBON_COLUMNS
    assert [row["experiment_id"] for row in rows] == [t.nodeid for t in report.tests] + ["session"]
    for row, test in zip(rows, report.tests, strict=False):
        assert float(row["energy_consumed"]) == pytest.approx(test.energy_kwh, rel=1e-12)
        assert float(row["emissions"]) == pytest.approx(test.emissions_g / 1000, rel=1e-12)
    assert float(rows[-1]["energy_consumed"]) == pytest.approx(report.energy_kwh, rel=1e-12)

    metrics = (pytester.path / "metrics.txt").read_text(encoding="utf-8")
    total = next(
        line for line in metrics.splitlines() if line.startswith("pytest_carbon_energy_kwh ")
    )
    assert float(total.split()[1]) == pytest.approx(report.energy_kwh, rel=1e-3)
    assert metrics.endswith("# EOF\n")

    page = (pytester.path / "carbon.html").read_text(encoding="utf-8")
    assert all(test.nodeid in page for test in report.tests)
    assert_junit_matches(pytester.path / "junit.xml", report)


def test_every_output_with_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_inner_budgets=BUDGET_SUITE)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--carbon",
        "--carbon-json=carbon.json",
        "--carbon-csv=carbon.csv",
        "--carbon-summary=summary.md",
        "--carbon-html=carbon.html",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*carbon budget exceeded: * > * (energy_kwh=1e-15)*"])
    report = load_report(pytester.path / "carbon.json")
    assert {test.worker for test in report.tests} <= {"gw0", "gw1"}
    assert_budget_verdicts(report)
    assert_junit_matches(pytester.path / "junit.xml", report)
    assert "## Carbon footprint" in (pytester.path / "summary.md").read_text(encoding="utf-8")
    assert (pytester.path / "carbon.csv").read_text(encoding="utf-8").count("\n") == 1 + 4 + 1
    assert (pytester.path / "carbon.html").is_file()


def test_budget_verdicts_with_xdist_without_the_terminal_reporter(
    pytester: pytest.Pytester,
) -> None:
    """Without a terminal reporter keeping the reports, the controller records the outcomes and
    the workers' budget verdicts as the reports arrive."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_inner_budgets=BUDGET_SUITE)
    args = ["-n", "2", "--carbon", "--carbon-json=carbon.json", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*args, "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = load_report(pytester.path / "carbon.json")
    assert {test.worker for test in report.tests} <= {"gw0", "gw1"}
    assert_budget_verdicts(report)


def test_bad_inputs_and_unwritable_outputs_change_no_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    assert sum(range(1000)) > 0\n")
    (pytester.path / "bad.json").write_text("{not json", encoding="utf-8")
    (pytester.path / "a-folder").mkdir()
    result = pytester.runpytest(
        "--carbon",
        "--carbon-json=carbon.json",
        "--carbon-baseline=bad.json",
        "--carbon-fail-on-regression=5",
        "--carbon-html=missing/carbon.html",
        "--carbon-pr-comment=a-folder",
        "--carbon-summary=missing/summary.md",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random(
        [
            "error: baseline not compared: bad.json:1: malformed JSON*Fix: pass a report*",
            "error: missing*carbon.html: cannot write report (*). Fix: *",
            "error: a-folder: cannot write report (*). Fix: *",
            "error: missing*summary.md: cannot append the job summary (*). Fix: *",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert load_report(pytester.path / "carbon.json").exit_status == 0


def baseline_for(nodeid: str) -> SessionReport:
    """A baseline in which ``nodeid`` used almost nothing."""
    report = make_report(scale=1e-9)
    report.tests = report.tests[:1]
    report.tests[0].nodeid = nodeid
    report.tests[0].path = nodeid.split("::")[0]
    return report


def test_session_limits_fail_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_limits="def test_one():\n    assert sum(range(100_000)) > 0\n")
    (pytester.path / "old.json").write_text(
        baseline_for("test_limits.py::test_one").to_json(), encoding="utf-8"
    )
    result = pytester.runpytest(
        "--carbon",
        "--carbon-json=carbon.json",
        "--carbon-max-emissions=0",
        "--carbon-baseline=old.json",
        "--carbon-fail-on-regression=10",
        "--carbon-compare-regions=none",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "carbon limit exceeded: the session emitted * CO2e, over the 0 µg limit of "
            "--carbon-max-emissions",
            "carbon regression: the 1 tests in both runs used +*% energy (* → *) against "
            "old.json, over the 10% limit of --carbon-fail-on-regression",
            "Against baseline old.json: *",
        ]
    )
    assert "What if elsewhere" not in result.stdout.str()
    assert load_report(pytester.path / "carbon.json").exit_status == 1


def test_budget_marker_is_registered_and_inert_without_carbon(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m="import pytest\n\n@pytest.mark.carbon_budget(energy_kwh=1e-15)\n"
        "def test_m():\n    pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    assert pytester.runpytest("--markers").stdout.str().count("carbon_budget(") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--carbon-compare-regions=FRA,ZZZ"], "*--carbon-compare-regions: unknown region 'ZZZ'*"),
        (["--carbon-compare-regions=aws:nowhere"], "*unknown cloud region 'aws:nowhere'*"),
        (["--carbon-fail-on-regression=5"], "*no baseline to compare with. Fix: add*"),
        (["--carbon-max-emissions=-1"], "*--carbon-max-emissions: must be at least 0*"),
    ],
)
def test_bad_options_name_the_fix(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest("--carbon", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_help_lists_the_report_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines_random(
        [
            "*--carbon-summary=PATH*",
            "*--carbon-pr-comment=PATH*",
            "*--carbon-csv=PATH*",
            "*--carbon-gitlab-metrics=PATH*",
            "*--carbon-html=PATH*",
            "*--carbon-compare-regions=REGION*",
            "*--carbon-baseline=OLD.json*",
            "*--carbon-fail-on-regression=PCT*",
            "*--carbon-max-emissions=G*",
        ]
    )


def test_budgets_on_modules_and_classes_are_found(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_module_budget="""
        import pytest

        pytestmark = pytest.mark.carbon_budget(energy_kwh=1e-15)

        def test_over():
            sum(range(10_000))
        """,
        test_class_budget="""
        import pytest

        @pytest.mark.carbon_budget(energy_kwh=1e-15)
        class TestOver:
            def test_over(self):
                sum(range(10_000))

        def test_free():
            sum(range(10_000))
        """,
    )
    result = pytester.runpytest("--carbon", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*carbon budget exceeded*"])


def test_budgets_from_parameters_and_other_plugins_are_found(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_marked_late":
                    item.add_marker(pytest.mark.carbon_budget(energy_kwh=1e-15))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize(
            "n", [1, pytest.param(2, marks=pytest.mark.carbon_budget(energy_kwh=1e-15))]
        )
        def test_param(n):
            sum(range(10_000))

        def test_marked_late():
            sum(range(10_000))
        """
    )
    result = pytester.runpytest("--carbon", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*carbon budget exceeded*"])
