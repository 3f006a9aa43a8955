"""Suites and checks shared by the plugin tests."""

from __future__ import annotations

import pytest

from pytest_carbon.report.model import SessionReport, load_report

MIXED_SUITE = """
import time
import pytest

@pytest.fixture
def heavy():
    sum(i * i for i in range(300_000))
    yield 1

def burn(n):
    return sum(i * i for i in range(n))

def test_burns_cpu():
    burn(400_000)

def test_sleeps():
    time.sleep(0.05)

def test_fixture_cost_is_in_setup(heavy):
    assert heavy == 1

def test_fails():
    assert burn(10) == 0

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(strict=True)
def test_xfails():
    assert False
"""
#: The outcome of each test of :data:`MIXED_SUITE` in the carbon report.
MIXED_OUTCOMES = {
    "test_burns_cpu": "passed",
    "test_sleeps": "passed",
    "test_fixture_cost_is_in_setup": "passed",
    "test_fails": "failed",
    "test_skipped": "skipped",
    "test_xfails": "xfailed",
}


def read_report(pytester: pytest.Pytester, name: str = "carbon.json") -> SessionReport:
    """Load the JSON report a pytester run wrote."""
    return load_report(pytester.path / name)


def assert_conserved(report: SessionReport) -> None:
    """Tests + unattributed = session, within 1 %."""
    parts = report.attributed.total_kwh + report.unattributed.total_kwh
    assert report.energy_kwh > 0
    assert abs(parts - report.energy_kwh) <= 0.01 * report.energy_kwh
