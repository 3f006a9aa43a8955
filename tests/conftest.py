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
    """A fixed power model: 4 W per vCPU, 2 vCPUs, 10 % idle, 20 W of RAM, PUE 1."""
    return PowerModel(
        method="cpu-time-model",
        cpu_model="Test CPU",
        cpu_tdp_w=8.0,
        cpu_watts_per_vcpu=4.0,
        vcpus=2.0,
        vcpus_source="test",
        cpu_watts=8.0,
        cpu_idle_fraction=0.1,
        ram_watts=20.0,
        gpu_count=0,
        gpu_model=None,
        pue=1.0,
    )


@pytest.fixture
def sample_report() -> SessionReport:
    """A fixed report: five tests in three modules (see carbon_factory.py)."""
    return make_report()
