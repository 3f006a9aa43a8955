from __future__ import annotations

from collections.abc import Callable

import pytest

from carbon_factory import make_report
from pytest_carbon.report.model import SessionReport


@pytest.fixture(autouse=True)
def no_github_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs under GitHub Actions must not append test sessions to the real job summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def report_factory() -> Callable[..., SessionReport]:
    """Build a fixed report; keyword arguments replace its fields (see ``carbon_factory``)."""
    return make_report


@pytest.fixture
def report() -> SessionReport:
    """The fixed report."""
    return make_report()
