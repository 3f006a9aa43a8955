"""The CSV view, in codecarbon's ``emissions.csv`` layout: one row per test, then the session.

The columns are those of codecarbon's ``EmissionsData`` (3.3), in its order, so dashboards that
read codecarbon's CSV read this one. Units follow codecarbon: energy in kWh, power in W,
emissions in **kg** CO2e, emissions rate in kg/s, duration in seconds. ``experiment_id`` holds the
test's node id (``session`` for the whole-session row); fields the report does not know are empty.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

from pytest_carbon.report.model import Energy, SessionReport, TestRecord

#: codecarbon 3.3 ``EmissionsData`` fields, in order (checked against codecarbon in the tests).
CODECARBON_COLUMNS: Final = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
)
SESSION_ROW_ID: Final = "session"


def number(value: float) -> str:
    """A float as CSV text, round-trippable and stable."""
    return repr(float(value))


def _row(
    report: SessionReport,
    experiment: str,
    wall_s: float,
    cpu_s: float,
    energy: Energy,
    emissions_g: float,
) -> dict[str, Any]:
    """One codecarbon-shaped row for a span of ``wall_s`` seconds."""
    power = report.power
    per_second = 1.0 / wall_s if wall_s > 0 else 0.0
    busy = cpu_s / wall_s / power.vcpus * 100.0 if wall_s > 0 and power.vcpus else 0.0
    kwh_to_w = 3.6e6 * per_second
    return {
        "timestamp": report.finished_at,
        "project_name": report.identity.project or "pytest",
        "run_id": report.identity.run_id or report.started_at,
        "experiment_id": experiment,
        "duration": number(wall_s),
        "emissions": number(emissions_g / 1000.0),
        "emissions_rate": number(emissions_g / 1000.0 * per_second),
        "cpu_power": number(energy.cpu_kwh * kwh_to_w),
        "gpu_power": number(energy.gpu_kwh * kwh_to_w),
        "ram_power": number(energy.ram_kwh * kwh_to_w),
        "cpu_energy": number(energy.cpu_kwh),
        "gpu_energy": number(energy.gpu_kwh),
        "ram_energy": number(energy.ram_kwh),
        "energy_consumed": number(energy.total_kwh),
        "water_consumed": number(0.0),
        "country_name": report.intensity.country_name or "",
        "country_iso_code": report.intensity.country_iso or "",
        "codecarbon_version": report.codecarbon_version or "",
        "cpu_count": number(power.vcpus),
        "cpu_model": power.cpu_model,
        "gpu_count": number(power.gpu_count),
        "gpu_model": power.gpu_model or "",
        "tracking_mode": "process",
        "cpu_utilization_percent": number(round(busy, 3)),
        "gpu_utilization_percent": number(0.0),
        "ram_utilization_percent": number(0.0),
        "ram_used_gb": number(0.0),
        "on_cloud": "N",
        "pue": number(power.pue),
        "wue": number(0.0),
    }


def test_row(report: SessionReport, test: TestRecord) -> dict[str, Any]:
    """The row of one test."""
    return _row(report, test.nodeid, test.wall_s, test.cpu_s, test.energy, test.emissions_g)


test_row.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def render_csv(report: SessionReport) -> str:
    """The whole report as codecarbon-style CSV text (tests in report order, session last)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CODECARBON_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for test in report.tests:
        writer.writerow(test_row(report, test))
    session = _row(
        report, SESSION_ROW_ID, report.wall_s, report.cpu_s, report.energy, report.emissions_g
    )
    session["tracking_mode"] = "machine"
    writer.writerow(session)
    return buffer.getvalue()
