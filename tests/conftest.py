from __future__ import annotations

from pathlib import Path

import pytest

from carbon_factory import make_report
from pytest_carbon.report.model import PowerModel, SessionReport

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_ci_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep test sessions from appending to the real CI job summary of the run testing us."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def power() -> PowerModel:
    """The factory's power model: 4 W per vCPU, 2 vCPUs, 10 % idle, 20 W of RAM, PUE 1."""
    return make_report().power


@pytest.fixture
def sample_report() -> SessionReport:
    """A fixed report: five tests in three modules (see carbon_factory.py)."""
    return make_report()
