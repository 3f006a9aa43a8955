"""``pytest --carbon -n 2``: workers measure; the controller aggregates, counts the machine once."""

from __future__ import annotations

import pytest
from plugin_helpers import MIXED_SUITE, assert_conserved, read_report

pytest.importorskip("xdist")

CPU_SUITE = """
import pytest

def burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

@pytest.mark.parametrize("i", range(8))
def test_burn(i):
    assert burn(12_000_000) > 0
"""


def test_workers_measure_and_controller_aggregates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    result = pytester.runpytest_subprocess("--carbon", "-n", "2", "--carbon-json=carbon.json")
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*carbon footprint (pytest-carbon)*", "  6 tests in *"])
    report = read_report(pytester)
    assert sorted(w.id for w in report.workers) == ["gw0", "gw1"]
    assert not any(w.crashed for w in report.workers)
    assert sum(w.tests for w in report.workers) == 6
    assert {t.worker for t in report.tests} <= {"gw0", "gw1"}
    assert {t.outcome for t in report.tests} == {"passed", "failed", "skipped", "xfailed"}
    assert report.warnings == []
    assert_conserved(report)


def test_machine_is_counted_once_and_every_worker_adds_up(pytester: pytest.Pytester) -> None:
    """-n 2 against -n 0 on a CPU-bound suite: each figure is built the same way.

    Machine-level power (RAM, idle CPU) is charged once for the session's wall time, not once per
    worker; the session's CPU time holds every worker's; every test arrives with its CPU time.
    How closely the totals agree (target: 10 %) depends on how busy the machine is, so it is
    measured over repeated paired runs by benchmarks/bench_accuracy.py, not asserted here.
    """
    pytester.makepyfile(test_cpu=CPU_SUITE)
    fixed = ["--carbon", "--carbon-cpu-watts=8", "--carbon-ram-watts=2", "--carbon-intensity=100"]
    pytester.runpytest_subprocess(*fixed, "-p", "no:xdist", "--carbon-json=serial.json")
    pytester.runpytest_subprocess(*fixed, "-n", "2", "--carbon-json=parallel.json")
    serial = read_report(pytester, "serial.json")
    parallel = read_report(pytester, "parallel.json")
    for report in (serial, parallel):
        power = report.power
        ram_once = power.ram_watts * report.wall_s * power.pue / 3.6e6
        assert report.energy.ram_kwh == pytest.approx(ram_once, rel=1e-9)
        assert report.cpu_s >= sum(test.cpu_s for test in report.tests)
        assert len(report.tests) == 8
        assert all(test.cpu_s > 0.05 for test in report.tests)
        assert_conserved(report)
    assert sum(w.cpu_s for w in parallel.workers) >= sum(t.cpu_s for t in parallel.tests)
    # Same work: the tests' CPU seconds agree far better than a lost or doubled worker would.
    work_serial = sum(test.cpu_s for test in serial.tests)
    work_parallel = sum(test.cpu_s for test in parallel.tests)
    assert 0.6 < work_parallel / work_serial < 1.6


def test_crashed_worker_is_reported_and_outcomes_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_crash="""
        import os
        def test_ok_1(): pass
        def test_ok_2(): pass
        def test_kills_its_worker(): os._exit(3)
        def test_ok_3(): pass
        """
    )
    plain = pytester.runpytest_subprocess("-n", "2")
    measured = pytester.runpytest_subprocess("-n", "2", "--carbon", "--carbon-json=carbon.json")
    assert measured.ret == plain.ret
    assert measured.parseoutcomes() == plain.parseoutcomes()
    report = read_report(pytester)
    crashed = [w for w in report.workers if w.crashed]
    assert len(crashed) == 1
    assert any("sent no measurements" in warning for warning in report.warnings)
    killed = next(t for t in report.tests if t.nodeid.endswith("test_kills_its_worker"))
    assert killed.outcome in {"failed", "error"}
    assert killed.worker == crashed[0].id  # read from the report xdist made for the crash
    assert killed.method == "wall-time-model"
    measured.stdout.fnmatch_lines(["*warning: worker gw* sent no measurements*"])
