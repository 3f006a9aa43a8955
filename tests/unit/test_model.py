from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_carbon.errors import InputError
from pytest_carbon.report.model import (
    INDENTED_TESTS,
    SCHEMA_VERSION,
    MeasuredTest,
    SessionReport,
    TestRecord,
    json_of_test,
    load_report,
    report_from_dict,
)


def test_json_round_trip(sample_report: SessionReport, tmp_path: Path) -> None:
    report = sample_report
    path = tmp_path / "r.json"
    path.write_text(report.to_json())
    loaded = load_report(path)
    assert loaded == report
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["outcomes"] == {"failed": 1, "passed": 3, "skipped": 1}
    assert data["tests"][0]["energy_kwh"] == pytest.approx(report.tests[0].energy_kwh)


def test_each_test_is_written_with_every_field_of_its_record(
    sample_report: SessionReport,
) -> None:
    """The hand-built JSON of a test must not drift from the dataclass it serialises."""
    for test in sample_report.tests:
        test.budget = {"energy_kwh": 1e-6}
        written = json_of_test(test)
        expected = dataclasses.asdict(test)
        assert {k: written[k] for k in expected} == expected
        assert set(written) - set(expected) == {"energy_kwh", "emissions_g", "wall_s", "cpu_s"}


def test_a_report_of_many_tests_is_compact_and_loads_back(sample_report: SessionReport) -> None:
    template = sample_report.tests[0]
    sample_report.tests = [
        dataclasses.replace(template, nodeid=f"t.py::test_{i}") for i in range(INDENTED_TESTS + 1)
    ]
    text = sample_report.to_json()
    assert text.count("\n") == 1  # one line: no indentation
    assert report_from_dict(json.loads(text)) == sample_report


def test_views(sample_report: SessionReport) -> None:
    report = sample_report
    assert [t.nodeid for t in report.top_tests(2)] == [
        "tests/test_io.py::test_download",
        "tests/test_io.py::test_upload[big|file]",
    ]
    modules = report.by_module()
    assert [(m.path, m.tests) for m in modules] == [
        ("tests/test_io.py", 2),
        ("tests/test_math.py", 2),
        ("tests/sub/test_skip.py", 1),
    ]
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


@pytest.mark.parametrize("newline", [b"\r", b"\r\n", b"\n"])
def test_a_syntax_error_names_a_line_the_file_has(tmp_path: Path, newline: bytes) -> None:
    """Lines are counted as JSON counts them: a lone carriage return breaks no line."""
    from pytest_carbon.matrix.history import read_json

    path = tmp_path / "bad.json"
    path.write_bytes(newline * 2)
    for load in (load_report, read_json):
        with pytest.raises(InputError, match="malformed JSON") as info:
            load(path)
        assert info.value.line == 1 + 2 * newline.count(b"\n")


def test_wrong_field_types_are_located(sample_report: SessionReport) -> None:
    data = sample_report.to_dict()
    data["tests"][1]["phases"]["call"]["wall_s"] = "fast"
    with pytest.raises(InputError, match=r"tests\[1\]\.phases\.call\.wall_s: expected a number"):
        report_from_dict(data, "r.json")
    data = sample_report.to_dict()
    del data["power"]
    with pytest.raises(InputError, match="missing field 'power'"):
        report_from_dict(data, "r.json")
    data = sample_report.to_dict()
    data["surprise"] = 1
    with pytest.raises(InputError, match="unknown field 'surprise'"):
        report_from_dict(data, "r.json")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read report"):
        load_report(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("kwh", "text"),
    [
        (0.0, "0 J"),
        (1 / 3.6e6, "1 J"),
        (0.9999 / 3.6e6, "1 J"),
        (0.5 / 3.6e6, "500 mJ"),
        (2e-10, "720 µJ"),
        (0.002, "2 Wh"),
        (3.5, "3.5 kWh"),
    ],
)
def test_format_energy_picks_the_unit_after_rounding(kwh: float, text: str) -> None:
    from pytest_carbon.report.units import format_energy

    assert format_energy(kwh) == text


def measured_twin(test: TestRecord) -> MeasuredTest:
    """The same test as the pricer makes it: phases as plain numbers, built on first read."""
    return MeasuredTest(
        test.nodeid,
        test.path,
        test.outcome,
        test.method,
        worker=test.worker,
        figures=tuple(number for phase in test.phase_figures() for number in phase),
    )


def test_a_measured_test_gives_the_figures_of_its_built_phases(
    sample_report: SessionReport,
) -> None:
    for test in sample_report.tests:
        twin = measured_twin(test)
        assert twin.emissions_g == test.emissions_g  # same additions, same order: equal
        assert twin.wall_s == test.wall_s
        assert twin.cpu_s == test.cpu_s
        assert twin.energy == test.energy
        assert twin.energy_kwh == test.energy_kwh
        assert json_of_test(twin) == json_of_test(test)
        assert twin == test
        assert test == twin
        assert twin.phases == test.phases  # built on first read
        assert twin == test
        assert dataclasses.asdict(twin) == dataclasses.asdict(test)


def test_a_report_of_measured_tests_has_the_views_of_built_ones(
    sample_report: SessionReport,
) -> None:
    built = [module.emissions_g for module in sample_report.by_module()]
    attributed = sample_report.attributed
    top = [test.nodeid for test in sample_report.top_tests(3)]
    sample_report.tests = [measured_twin(test) for test in sample_report.tests]
    assert [module.emissions_g for module in sample_report.by_module()] == built
    assert sample_report.attributed == attributed
    assert [test.nodeid for test in sample_report.top_tests(3)] == top
    assert report_from_dict(json.loads(sample_report.to_json())) == sample_report


def test_the_phases_of_a_measured_test_can_be_changed_and_replaced(
    sample_report: SessionReport,
) -> None:
    test = sample_report.tests[0]
    twin = measured_twin(test)
    twin.phases["call"].wall_s += 1.0
    assert twin.wall_s == pytest.approx(test.wall_s + 1.0)
    twin.phases = {}
    assert twin.wall_s == 0
    assert twin.phase_figures() == []
    copy = dataclasses.replace(measured_twin(test), outcome="failed")
    assert copy.outcome == "failed"
    assert copy.phases == test.phases
