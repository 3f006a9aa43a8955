"""Carbon properties in pytest's JUnit XML file (``--junitxml``).

Per-test energy is only final at session end, after pytest's junitxml plugin has built its
testcases, so the written file is post-processed: every ``testcase`` gets ``carbon_energy_kwh``,
``carbon_emissions_g`` and ``carbon_method`` properties and every ``testsuite`` the session's
totals. The file is then replaced atomically.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_carbon.errors import InputError
from pytest_carbon.report.io import write_atomic
from pytest_carbon.report.model import SessionReport, TestRecord

XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'


def resolve_xml_path(option: str) -> str:
    """The file ``--junitxml`` names, resolved the way pytest's junitxml plugin resolves it."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(option))))


def junit_names(nodeid: str, prefix: str | None = None) -> tuple[str, str]:
    """The ``(classname, name)`` pytest's junitxml plugin gives the test ``nodeid``."""
    path, bracket, params = nodeid.partition("[")
    parts = path.split("::")
    parts[0] = re.sub(r"\.py$", "", parts[0].replace("/", "."))
    parts[-1] += bracket + params
    classname = ".".join(parts[:-1])
    if prefix:
        classname = f"{prefix}.{classname}"
    return classname, parts[-1]


def number(value: float) -> str:
    """A property value: 6 significant digits."""
    return f"{value:.6g}"


def test_properties(test: TestRecord) -> list[tuple[str, str]]:
    """The carbon properties of one testcase."""
    return [
        ("carbon_energy_kwh", number(test.energy_kwh)),
        ("carbon_emissions_g", number(test.emissions_g)),
        ("carbon_method", test.method),
    ]


test_properties.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def suite_properties(report: SessionReport) -> list[tuple[str, str]]:
    """The session totals carried by each testsuite."""
    return [
        ("carbon_energy_kwh", number(report.energy_kwh)),
        ("carbon_emissions_g", number(report.emissions_g)),
        ("carbon_method", report.power.method),
        ("carbon_intensity_g_per_kwh", number(report.intensity.g_per_kwh)),
        ("carbon_intensity_source", report.intensity.source),
        ("carbon_unattributed_kwh", number(report.unattributed.total_kwh)),
    ]


def _add_properties(element: ET.Element, properties: list[tuple[str, str]]) -> None:
    """Append to the element's ``properties`` child, creating it as the first child."""
    holder = element.find("properties")
    if holder is None:
        holder = ET.Element("properties")
        element.insert(0, holder)
    for name, value in properties:
        ET.SubElement(holder, "property", {"name": name, "value": value})


def add_carbon_properties(xml_text: str, report: SessionReport, prefix: str | None = None) -> str:
    """``xml_text`` with carbon properties on every known testcase and every testsuite.

    Raises :class:`ValueError` (``ET.ParseError``) when the text is not XML.
    """
    root = ET.fromstring(xml_text)
    by_name = {junit_names(test.nodeid, prefix): test for test in report.tests}
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        _add_properties(suite, suite_properties(report))
        for case in suite.iter("testcase"):
            test = by_name.get((case.get("classname", ""), case.get("name", "")))
            if test is not None:
                _add_properties(case, test_properties(test))
    return XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def rewrite_junit(path: str, report: SessionReport, prefix: str | None = None) -> None:
    """Add carbon properties to the JUnit file at ``path`` and replace it atomically."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            path,
            f"cannot read the JUnit XML file to add carbon properties ({reason})",
            fix="check --junitxml names a readable file",
        ) from None
    try:
        updated = add_carbon_properties(text, report, prefix)
    except ET.ParseError as exc:
        raise InputError(
            path,
            f"not JUnit XML, carbon properties not added ({exc})",
            fix="let pytest's --junitxml write the file",
        ) from None
    write_atomic(path, updated)
