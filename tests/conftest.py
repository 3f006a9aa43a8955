from __future__ import annotations

from pathlib import Path

import pytest

from pytest_carbon.report.model import (
    Energy,
    Intensity,
    JobIdentity,
    PhaseRecord,
    PowerModel,
    SessionReport,
    TestRecord,
)

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
def sample_report(power: PowerModel) -> SessionReport:
    """A small report with fixed numbers: 2 modules x 3 tests."""
    return make_report(power)


def make_report(power: PowerModel) -> SessionReport:
    tests = [
        TestRecord(
            nodeid=f"tests/test_{m}.py::test_{i}",
            path=f"tests/test_{m}.py",
            outcome="passed" if i else "failed",
            method="cpu-time-model",
            phases={
                "call": PhaseRecord(
                    0.1 * (i + 1), 0.05, Energy(1e-7 * (i + 1), 2e-8, 0.0), 0.01 * (i + 1)
                )
            },
        )
        for m in ("a", "b")
        for i in range(3)
    ]
    return SessionReport(
        tool_version="0.1.0",
        codecarbon_version="3.3.2",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:10+00:00",
        identity=JobIdentity(job="py312", matrix={"python": "3.12"}, run_id="7"),
        power=power,
        intensity=Intensity(100.0, "user override"),
        wall_s=10.0,
        cpu_s=3.0,
        energy=Energy(2e-6, 1e-6, 0.0),
        emissions_g=0.3,
        unattributed=Energy(1e-6, 5e-7, 0.0),
        unattributed_emissions_g=0.15,
        tests=tests,
        exit_status=1,
    )
