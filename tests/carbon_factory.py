"""Deterministic session reports built from fixed numbers, for golden files and view tests."""

from __future__ import annotations

from typing import Any

from pytest_carbon.report.compare import Region, RegionFigure
from pytest_carbon.report.model import (
    Energy,
    Intensity,
    JobIdentity,
    PhaseRecord,
    PowerModel,
    SessionReport,
    TestRecord,
)

G_PER_KWH = 400.0

#: nodeid → (outcome, {phase: (wall s, cpu s, cpu kWh, ram kWh)})
TESTS: dict[str, tuple[str, dict[str, tuple[float, float, float, float]]]] = {
    "tests/test_io.py::test_download": (
        "passed",
        {"setup": (0.001, 0.001, 1e-9, 5e-9), "call": (0.5, 0.01, 2e-8, 2.5e-6)},
    ),
    "tests/test_io.py::test_upload[big|file]": (
        "failed",
        {"call": (0.2, 0.15, 3e-7, 1e-6), "teardown": (0.01, 0.01, 1e-8, 5e-8)},
    ),
    "tests/test_math.py::TestPrimes::test_sieve[10::2]": (
        "passed",
        {"call": (0.05, 0.05, 2e-7, 2.5e-7)},
    ),
    "tests/test_math.py::test_add": ("passed", {"call": (0.001, 0.001, 1e-9, 5e-9)}),
    "tests/sub/test_skip.py::test_later": ("skipped", {"setup": (0.0002, 0.0002, 2e-10, 1e-9)}),
}


def make_test(nodeid: str, scale: float = 1.0) -> TestRecord:
    """One fixed test record; ``scale`` multiplies its energy."""
    outcome, phases = TESTS[nodeid]
    records = {
        name: PhaseRecord(
            wall_s=wall,
            cpu_s=cpu,
            energy=Energy(cpu_kwh * scale, ram_kwh * scale, 0.0),
            emissions_g=(cpu_kwh + ram_kwh) * scale * G_PER_KWH,
        )
        for name, (wall, cpu, cpu_kwh, ram_kwh) in phases.items()
    }
    return TestRecord(
        nodeid=nodeid,
        path=nodeid.split("::")[0],
        outcome=outcome,
        method="cpu-time-model",
        phases=records,
    )


def make_report(
    *, nodeids: list[str] | None = None, scale: float = 1.0, **changes: Any
) -> SessionReport:
    """A complete, fixed session report; ``changes`` replace top-level fields."""
    tests = [make_test(nodeid, scale) for nodeid in (nodeids or list(TESTS))]
    rest = Energy(2e-7 * scale, 8e-7 * scale, 0.0)
    attributed = Energy()
    for test in tests:
        attributed = attributed + test.energy
    energy = attributed + rest
    fields: dict[str, Any] = {
        "tool_version": "9.9.9",
        "codecarbon_version": "3.3.2",
        "started_at": "2026-01-02T03:04:05+00:00",
        "finished_at": "2026-01-02T03:04:07+00:00",
        "identity": JobIdentity(
            job="py312-pg",
            matrix={"python": "3.12", "db": "pg"},
            commit="abc123",
            run_id="42",
            project="acme/shop",
            ci="github-actions",
        ),
        "power": PowerModel(
            method="cpu-time-model",
            cpu_model="Test CPU",
            cpu_tdp_w=8.0,
            cpu_watts_per_vcpu=4.0,
            vcpus=2.0,
            vcpus_source="CPU affinity",
            cpu_watts=8.0,
            cpu_idle_fraction=0.1,
            ram_watts=20.0,
            gpu_count=0,
            gpu_model=None,
            pue=1.0,
            sources={"cpu_watts": "test", "ram_watts": "test"},
        ),
        "intensity": Intensity(G_PER_KWH, "codecarbon:XYZ 2023", "XYZ", "Testland"),
        "wall_s": 2.0,
        "cpu_s": 0.5,
        "energy": energy,
        "emissions_g": energy.total_kwh * G_PER_KWH,
        "unattributed": rest,
        "unattributed_emissions_g": rest.total_kwh * G_PER_KWH,
        "tests": tests,
        "warnings": ["RAPL unreadable: model used"],
        "exit_status": 1,
    }
    fields.update(changes)
    return SessionReport(**fields)


def fixed_regions(energy_kwh: float) -> list[RegionFigure]:
    """Two fixed grids (independent of codecarbon's data)."""
    regions = [
        Region("AAA", "Greenland", 20.0, "fixed"),
        Region("cloud:x-1", "cloud x-1 (BBB)", 800.0, "fixed"),
    ]
    return [RegionFigure(region, energy_kwh * region.g_per_kwh) for region in regions]
