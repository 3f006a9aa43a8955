from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_carbon.errors import InputError
from pytest_carbon.report.model import (
    SCHEMA_VERSION,
    Energy,
    Intensity,
    JobIdentity,
    PhaseRecord,
    PowerModel,
    SessionReport,
    TestRecord,
    load_report,
    report_from_dict,
)


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


def test_json_round_trip(power: PowerModel, tmp_path: Path) -> None:
    report = make_report(power)
    path = tmp_path / "r.json"
    path.write_text(report.to_json())
    loaded = load_report(path)
    assert loaded == report
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["outcomes"] == {"failed": 2, "passed": 4}
    assert data["tests"][0]["energy_kwh"] == pytest.approx(report.tests[0].energy_kwh)


def test_views(power: PowerModel) -> None:
    report = make_report(power)
    assert [t.nodeid for t in report.top_tests(2)] == [
        "tests/test_a.py::test_2",
        "tests/test_b.py::test_2",
    ]
    modules = report.by_module()
    assert [m.tests for m in modules] == [3, 3]
    assert sum(m.emissions_g for m in modules) == pytest.approx(
        sum(t.emissions_g for t in report.tests)
    )
    assert report.attributed.total_kwh == pytest.approx(sum(t.energy_kwh for t in report.tests))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "malformed JSON"),
        ("[]", "expected a JSON object"),
        ('{"schema_version": 99}', "unsupported report schema_version 99"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_report(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_field_types_are_located(power: PowerModel) -> None:
    data = make_report(power).to_dict()
    data["tests"][1]["phases"]["call"]["wall_s"] = "fast"
    with pytest.raises(InputError, match=r"tests\[1\]\.phases\.call\.wall_s: expected a number"):
        report_from_dict(data, "r.json")
    data = make_report(power).to_dict()
    del data["power"]
    with pytest.raises(InputError, match="missing field 'power'"):
        report_from_dict(data, "r.json")
    data = make_report(power).to_dict()
    data["surprise"] = 1
    with pytest.raises(InputError, match="unknown field 'surprise'"):
        report_from_dict(data, "r.json")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read report"):
        load_report(tmp_path / "absent.json")
