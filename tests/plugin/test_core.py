"""Black-box tests of ``pytest --carbon`` through pytester, central (no xdist)."""

from __future__ import annotations

import json

import pytest
from plugin_helpers import MIXED_OUTCOMES, MIXED_SUITE, assert_conserved, read_report


def test_off_by_default_costs_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "carbon footprint" not in result.stdout.str()
    assert pytester.parseconfig().pluginmanager.get_plugin("carbon-session") is None


def test_collect_only_and_help_measure_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.makeini("[pytest]\ncarbon = true\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.OK
    assert "carbon footprint" not in result.stdout.str()
    assert pytester.runpytest("--help").ret == pytest.ExitCode.OK


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "carbon footprint (pytest-carbon):",
            "*--carbon *measure energy and carbon emissions*",
            "*--carbon-top=N*",
            "*--carbon-json=PATH*",
            "*--carbon-job=NAME*",
            "*--carbon-matrix=KEY=VALUE*",
            "*--carbon-country=ISO3*",
            "*--carbon-intensity=G*",
            "*--carbon-cpu-watts=W*",
            "*--carbon-ram-watts=W*",
            "*--carbon-pue=PUE*",
        ]
    )


def test_measures_every_test_and_keeps_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    result = pytester.runpytest(
        "--carbon",
        "--carbon-json=carbon.json",
        "--carbon-country=FRA",
        "--carbon-job=py312-pg",
        "--carbon-matrix",
        "python=3.12",
        "--carbon-matrix=db=pg",
    )
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*carbon footprint (pytest-carbon)*",
            "Session: * kWh → * CO2e",
            "  6 tests in * · method cpu-time-model",
            "  CPU * · RAM * · GPU 0 J",
            "  tests * + unattributed *",
            "  unattributed: collection, session fixtures, plugin; codecarbon * CPU",
            "  Grid: 56* gCO2e/kWh, France (codecarbon:FRA 20*)",
            "  Power: *vCPUs*",
            "*driving a car*",
            "*Top 10 tests by emissions*",
            "*Per module*",
            "carbon report written to carbon.json",
        ]
    )
    report = read_report(pytester)
    outcomes = {t.nodeid.split("::")[1]: t.outcome for t in report.tests}
    assert outcomes == MIXED_OUTCOMES
    tests = {t.nodeid.split("::")[1]: t for t in report.tests}
    assert set(tests["test_burns_cpu"].phases) == {"setup", "call", "teardown"}
    assert tests["test_burns_cpu"].cpu_s > tests["test_sleeps"].cpu_s
    fixture = tests["test_fixture_cost_is_in_setup"]
    assert fixture.phases["setup"].cpu_s > fixture.phases["call"].cpu_s
    assert all(t.method == "cpu-time-model" for t in report.tests)
    assert report.identity.job == "py312-pg"
    assert report.identity.matrix == {"python": "3.12", "db": "pg"}
    assert report.intensity.country_iso == "FRA"
    assert report.exit_status == 1
    assert report.codecarbon_version is not None
    assert report.codecarbon_estimate is not None
    assert report.codecarbon_cpu_s > 0
    assert_conserved(report)
    for test in report.tests:
        assert test.emissions_g == pytest.approx(test.energy_kwh * report.intensity.g_per_kwh)


def test_ini_and_environment_switch_it_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.makeini("[pytest]\ncarbon = true\ncarbon_json = from-ini.json\ncarbon_pue = 1.5\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    report = read_report(pytester, "from-ini.json")
    assert report.power.pue == 1.5
    monkeypatch.setenv("PYTEST_CARBON_PUE", "1.2")
    monkeypatch.setenv("PYTEST_CARBON_INTENSITY", "250")
    result = pytester.runpytest("--carbon-pue=1.1")
    report = read_report(pytester, "from-ini.json")
    assert report.power.pue == 1.1  # command line beats ini beats environment
    assert report.intensity.g_per_kwh == 250
    assert report.intensity.source == "user override"


def test_environment_alone(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    monkeypatch.setenv("PYTEST_CARBON", "1")
    monkeypatch.setenv("PYTEST_CARBON_CPU_WATTS", "50")
    result = pytester.runpytest("--carbon-json=c.json")
    result.assert_outcomes(passed=1)
    assert read_report(pytester, "c.json").power.cpu_watts == 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--carbon-country=FR"],
            "*--carbon-country: unknown country code 'FR' (that looks like an alpha-2 code)*",
        ),
        (
            ["--carbon-country=XYZ"],
            "*--carbon-country: unknown country code 'XYZ'*FRA, USA or DEU*",
        ),
        (["--carbon-pue=0.5"], "*--carbon-pue: must be at least 1, got '0.5'*"),
        (["--carbon-intensity=lots"], "*--carbon-intensity: expected a number, got 'lots'*"),
        (["--carbon-cpu-watts=0"], "*--carbon-cpu-watts: must be greater than 0*"),
        (["--carbon-top=-3"], "*--carbon-top: expected a whole number of tests*"),
        (["--carbon-matrix=python"], "*--carbon-matrix: expected KEY=VALUE, got 'python'*"),
        (
            ["--carbon-json=missing/dir/r.json"],
            "*--carbon-json: missing/dir/r.json: folder missing/dir does not exist. Fix:*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--carbon", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_options_are_ignored_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--carbon-country=XYZ").assert_outcomes(passed=1)


def test_report_written_when_interrupted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        def test_first(): pass
        def test_second(): raise KeyboardInterrupt
        def test_never(): pass
        """
    )
    result = pytester.runpytest_subprocess("--carbon", "--carbon-json=carbon.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = read_report(pytester)
    assert report.exit_status == int(pytest.ExitCode.INTERRUPTED)
    assert [t.nodeid.split("::")[1] for t in report.tests][:1] == ["test_first"]
    assert "test_a.py::test_never" not in {t.nodeid for t in report.tests}
    outcomes = {t.nodeid.split("::")[1]: t.outcome for t in report.tests}
    assert outcomes == {"test_first": "passed", "test_second": "unknown"}  # its call never ended
    assert_conserved(report)


def test_a_phase_runs_until_the_next_begins_and_a_test_until_it_is_finished(
    pytester: pytest.Pytester,
) -> None:
    """Each phase holds pytest's reporting of it; what pytest does between tests is in none."""
    pytester.makeconftest(
        """
        import time
        import pytest

        def pytest_runtest_logreport(report):
            if report.when == "call":
                time.sleep(0.2)  # logging the call's report: part of the call phase

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logstart(nodeid, location):
            time.sleep(0.2)  # announcing the test: before its setup, in no phase

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logfinish(nodeid, location):
            time.sleep(0.2)  # after the test has finished: in no phase
        """
    )
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--carbon", "--carbon-json=carbon.json").assert_outcomes(passed=1)
    (test,) = read_report(pytester).tests
    assert test.phases["call"].wall_s >= 0.19
    assert test.phases["setup"].wall_s < 0.1
    assert test.phases["teardown"].wall_s < 0.1
    assert test.wall_s < 0.35


def test_other_plugins_phase_hooks_run_inside_the_phase(pytester: pytest.Pytester) -> None:
    """The marks run first (tryfirst): a conftest's setup, call and teardown hooks, which pytest
    would otherwise call before a plugin registered earlier, are in their phase."""
    pytester.makeconftest(
        """
        import time

        def pytest_runtest_setup(item):
            time.sleep(0.2)

        def pytest_runtest_call(item):
            time.sleep(0.3)

        def pytest_runtest_teardown(item, nextitem):
            time.sleep(0.4)
        """
    )
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--carbon", "--carbon-json=carbon.json").assert_outcomes(passed=1)
    (test,) = read_report(pytester).tests
    setup, call, teardown = (test.phases[name].wall_s for name in ("setup", "call", "teardown"))
    assert setup >= 0.19  # else the conftest's setup ran before the setup began
    assert 0.29 <= call < 0.69  # else the conftest's teardown ran before the teardown began
    assert teardown >= 0.39


def test_outcomes_are_kept_without_the_terminal_reporter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    result = pytester.runpytest("--carbon", "--carbon-json=carbon.json", "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = {t.nodeid.split("::")[1]: t.outcome for t in read_report(pytester).tests}
    assert outcomes == MIXED_OUTCOMES


SUBTESTS = """
import unittest

class TestCases(unittest.TestCase):
    def test_all_pass(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertGreaterEqual(i, 0)

    def test_one_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2)

def test_fixture_all_pass(subtests):
    for i in range(3):
        with subtests.test(i=i):
            assert i >= 0

def test_fixture_one_fails(subtests):
    for i in range(3):
        with subtests.test(i=i):
            assert i < 2
"""


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-q"]])
def test_subtests_leave_the_outcome_to_their_test(
    pytester: pytest.Pytester, verbosity: list[str]
) -> None:
    """Passed subtests (the ``subtests passed`` category unless the verbosity is the default)
    are not read; a failed one fails its test."""
    if not hasattr(pytest, "Subtests"):  # pytest < 9: no built-in subtests
        pytest.skip("this pytest has no built-in subtests")
    pytester.makepyfile(test_sub=SUBTESTS)
    result = pytester.runpytest("--carbon", "--carbon-json=carbon.json", *verbosity)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = {t.nodeid.split("::")[-1]: t.outcome for t in read_report(pytester).tests}
    assert outcomes == {
        "test_all_pass": "passed",
        "test_one_fails": "failed",
        "test_fixture_all_pass": "passed",
        "test_fixture_one_fails": "failed",
    }


def test_unwritable_report_path_does_not_change_the_outcome(pytester: pytest.Pytester) -> None:
    pytester.mkdir("out")
    pytester.makepyfile(
        test_a="""
        import shutil
        def test_removes_the_report_folder(): shutil.rmtree("out")
        """
    )
    result = pytester.runpytest("--carbon", "--carbon-json=out/carbon.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["error: out/carbon.json: cannot write report (*). Fix: *"])
    assert not (pytester.path / "out").exists()


def test_failing_write_leaves_no_partial_file(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os
        real_fsync = os.fsync
        def pytest_configure():
            def full_disk(fd):
                raise OSError(28, "No space left on device")
            os.fsync = full_disk
        def pytest_unconfigure():
            os.fsync = real_fsync
        """
    )
    pytester.makepyfile(test_a="def test_a(): pass")
    (pytester.path / "carbon.json").write_text("previous report")
    result = pytester.runpytest("--carbon", "--carbon-json=carbon.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["error: carbon.json: cannot write report (No space left on device)*"]
    )
    assert (pytester.path / "carbon.json").read_text() == "previous report"
    assert [p.name for p in pytester.path.iterdir() if p.name.startswith(".carbon.json")] == []


def test_warnings_as_errors_do_not_break_measurement(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_a="def test_a(): pass\ndef test_b(): assert False")
    result = pytester.runpytest("--carbon", "--carbon-json=carbon.json")
    result.assert_outcomes(passed=1, failed=1)
    assert read_report(pytester).exit_status == 1


def test_json_report_is_plain_json_with_schema(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--carbon", "--carbon-json=carbon.json")
    data = json.loads((pytester.path / "carbon.json").read_text())
    assert data["schema_version"] == 1
    assert {"identity", "power", "intensity", "energy", "unattributed", "tests"} <= set(data)
    assert data["tests"][0]["phases"]["call"]["energy"]["cpu_kwh"] >= 0


def test_hardware_detection_is_reused_from_the_cache(pytester: pytest.Pytester) -> None:
    """The real codecarbon runs once; later runs reuse its detection until asked again."""
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    args = ("--carbon", "--carbon-json=carbon.json", "-p", "no:randomly")
    pytester.runpytest(*args).assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1)
    first = read_report(pytester)
    assert first.codecarbon_estimate is not None
    assert first.codecarbon_cpu_s > 0

    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*note: Hardware as codecarbon detected it on *"])
    cached = read_report(pytester)
    assert cached.codecarbon_estimate is None
    assert cached.codecarbon_cpu_s == 0.0
    assert cached.warnings == []
    assert cached.codecarbon_version == first.codecarbon_version
    assert cached.power.cpu_watts == first.power.cpu_watts
    assert cached.power.ram_watts == first.power.ram_watts
    assert cached.power.cpu_model == first.power.cpu_model
    assert any("pytest cache" in note for note in cached.power.notes)
    assert_conserved(cached)

    pytester.runpytest(*args, "--carbon-detect").assert_outcomes(
        passed=3, failed=1, skipped=1, xfailed=1
    )
    detected = read_report(pytester)
    assert detected.codecarbon_estimate is not None
    assert not any("pytest cache" in note for note in detected.power.notes)


def test_without_the_cache_codecarbon_runs_every_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    args = ("--carbon", "--carbon-json=carbon.json", "-p", "no:cacheprovider")
    for _ in range(2):
        pytester.runpytest(*args).assert_outcomes(passed=1)
        assert read_report(pytester).codecarbon_estimate is not None


def test_the_package_is_imported_without_assertion_rewriting(pytester: pytest.Pytester) -> None:
    """pytest's rewriter would compile our modules from source when bytecode is not written."""
    pytester.makepyfile(
        test_loader="""
        import sys

        def test_loaded_by_python():
            module = sys.modules["pytest_carbon.session_hooks"]
            assert type(module.__loader__).__name__ != "AssertionRewritingHook"
        """
    )
    pytester.runpytest_subprocess("--carbon").assert_outcomes(passed=1)
