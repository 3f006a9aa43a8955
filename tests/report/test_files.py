"""JUnit post-processing, the codecarbon-shaped CSV, GitLab metrics and markdown helpers."""

from __future__ import annotations

import csv
import dataclasses
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from carbon_factory import make_report
from pytest_carbon.errors import InputError
from pytest_carbon.report.csvfile import CODECARBON_COLUMNS, render_csv
from pytest_carbon.report.gitlab import label, render_metrics
from pytest_carbon.report.junit import add_carbon_properties, junit_names, rewrite_junit
from pytest_carbon.report.markdown import cell, chart_number, code, mass_unit, mermaid_top_tests
from pytest_carbon.report.model import SessionReport


@pytest.mark.parametrize(
    ("nodeid", "prefix", "expected"),
    [
        ("tests/test_a.py::test_x", None, ("tests.test_a", "test_x")),
        ("test_a.py::TestK::test_y[1-a/b::c]", None, ("test_a.TestK", "test_y[1-a/b::c]")),
        ("pkg/test_b.py::test_z", "job1", ("job1.pkg.test_b", "test_z")),
    ],
)
def test_junit_names_follow_pytest(nodeid: str, prefix: str | None, expected: object) -> None:
    assert junit_names(nodeid, prefix) == expected


def test_junit_names_agree_with_a_real_junit_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_names="import pytest\n\nclass TestK:\n"
        "    @pytest.mark.parametrize('v', ['a::b', 'c/d'])\n"
        "    def test_p(self, v):\n        pass\n"
    )
    pytester.runpytest("--junitxml=j.xml", "--junitprefix=pre").assert_outcomes(passed=2)
    cases = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    written = {(c.get("classname"), c.get("name")) for c in cases}
    assert written == {
        junit_names("test_names.py::TestK::test_p[a::b]", "pre"),
        junit_names("test_names.py::TestK::test_p[c/d]", "pre"),
    }


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" tests="3"><properties><property name="mine" value="1"/></properties>
<testcase classname="tests.test_io" name="test_download" time="0.5"/>
<testcase classname="tests.test_io" name="test_upload[big|file]" time="0.2"><failure message="x">
boom</failure></testcase>
<testcase classname="tests.test_unknown" name="test_other" time="0.1"/>
</testsuite></testsuites>"""


def props(element: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in element.findall("properties/property")}


def test_properties_are_added_to_known_testcases_and_every_suite(report: SessionReport) -> None:
    root = ET.fromstring(add_carbon_properties(JUNIT, report))
    suite = root.find("testsuite")
    assert suite is not None
    suite_props = props(suite)
    assert suite_props["mine"] == "1"
    assert float(suite_props["carbon_energy_kwh"]) == pytest.approx(report.energy_kwh, rel=1e-5)
    assert suite_props["carbon_intensity_source"] == report.intensity.source
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    download = next(t for t in report.tests if t.nodeid.endswith("test_download"))
    assert float(props(cases["test_download"])["carbon_energy_kwh"]) == pytest.approx(
        download.energy_kwh, rel=1e-5
    )
    failing = cases["test_upload[big|file]"]
    assert failing[0].tag == "properties"  # properties come first, then the failure
    assert failing.find("failure") is not None
    assert props(cases["test_other"]) == {}


def test_rewrite_junit_replaces_the_file(tmp_path: Path, report: SessionReport) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    rewrite_junit(str(path), report)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert text.count('name="carbon_method"') == 3  # suite and the two known tests


def test_rewrite_junit_reports_bad_files_in_one_line(tmp_path: Path, report: SessionReport) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("<testsuites><testsuite>", encoding="utf-8")
    with pytest.raises(InputError, match=r"junit.xml: not JUnit XML.*Fix: ") as info:
        rewrite_junit(str(path), report)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="cannot read the JUnit XML file"):
        rewrite_junit(str(tmp_path / "absent.xml"), report)


def test_csv_columns_are_codecarbons() -> None:
    from codecarbon.output_methods.emissions_data import EmissionsData

    assert tuple(f.name for f in dataclasses.fields(EmissionsData)) == CODECARBON_COLUMNS


def test_csv_rows_carry_each_test_then_the_session_in_codecarbon_units(
    report: SessionReport,
) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [row["experiment_id"] for row in rows] == [t.nodeid for t in report.tests] + ["session"]
    for row, test in zip(rows, report.tests, strict=False):
        assert float(row["energy_consumed"]) == test.energy_kwh
        assert float(row["emissions"]) == pytest.approx(test.emissions_g / 1000)  # kg
        assert float(row["duration"]) == pytest.approx(test.wall_s)
        assert float(row["cpu_power"]) == pytest.approx(test.energy.cpu_kwh * 3.6e6 / test.wall_s)
        assert row["tracking_mode"] == "process"
    session = rows[-1]
    assert float(session["energy_consumed"]) == report.energy_kwh
    assert session["tracking_mode"] == "machine"
    assert session["project_name"] == report.identity.project
    assert session["country_iso_code"] == report.intensity.country_iso


def test_csv_of_a_zero_length_span_has_no_division_by_zero() -> None:
    report = make_report(wall_s=0.0)
    session = list(csv.DictReader(io.StringIO(render_csv(report))))[-1]
    assert float(session["cpu_power"]) == 0.0


def test_metrics_are_openmetrics_lines(report: SessionReport) -> None:
    text = render_metrics(report, modules=2)
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    samples = [line for line in lines if not line.startswith("#")]
    for sample in samples:
        name, value = sample.rsplit(" ", 1)
        float(value)
        assert name.startswith("pytest_carbon_")
    assert sum("pytest_carbon_module_emissions_grams{" in s for s in samples) == 2
    assert label('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_markdown_cells_and_chart_numbers() -> None:
    assert cell("a|b\nc") == "a\\|b c"
    assert code("x`y") == "`` x`y ``"
    assert mass_unit(0.5e-3) == ("µg", 1e-6)
    assert mass_unit(2.0) == ("g", 1.0)
    assert mass_unit(5e9) == ("t", 1e6)
    assert chart_number(1.23456) == "1.235"
    assert chart_number(1e-9) == "0"
    assert chart_number(12.0) == "12"


def test_mermaid_chart_numbers_the_tests(report: SessionReport) -> None:
    tests = report.top_tests(2)
    chart = mermaid_top_tests(tests)
    assert chart.startswith("```mermaid\nxychart-beta\n")
    assert '"1. test_download"' in chart
    unit, grams = mass_unit(tests[0].emissions_g)
    assert f"bar [{chart_number(tests[0].emissions_g / grams)}, " in chart
    assert f'y-axis "{unit} CO2e"' in chart
