"""A report's tests as a table: sums and views read from columns, records built when read."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from pytest_carbon.report.model import (
    Energy,
    PhaseRecord,
    SessionReport,
    TestColumns,
    TestRecord,
    TestTable,
    report_from_dict,
)


class PhasesOf:
    """A figure source giving the phases of known records (as the pricer's source does)."""

    def __init__(self, tests: list[TestRecord]) -> None:
        self.tests = tests

    def figures(self, at: int) -> tuple[Any, ...]:
        return tuple(number for phase in self.tests[at].phase_figures() for number in phase)


def columns_of(tests: list[TestRecord]) -> TestColumns:
    """``tests`` as columns, the way the pricer makes a run of regular tests."""
    totals = [list(column) for column in zip(*(test.totals() for test in tests), strict=True)]
    return TestColumns(
        [test.nodeid for test in tests],
        [test.path for test in tests],
        [test.outcome for test in tests],
        tests[0].method,
        tests[0].worker,
        totals,
        PhasesOf(tests),
    )


def record(nodeid: str, grams: float, wall: float = 1.0) -> TestRecord:
    """A test of one call phase emitting ``grams``."""
    energy = Energy(grams / 1000, grams / 500, 0.0)
    return TestRecord(
        nodeid,
        nodeid.split("::")[0],
        "passed",
        "cpu-time-model",
        {"call": PhaseRecord(wall, wall / 2, energy, grams)},
    )


def views(report: SessionReport) -> dict[str, Any]:
    return {
        "modules": [
            (module.path, module.tests, module.wall_s, module.energy, module.emissions_g)
            for module in report.by_module()
        ],
        "attributed": report.attributed,
        "top": [test.nodeid for test in report.top_tests(3)],
        "outcomes": report.outcome_counts(),
        "methods": report.methods(),
    }


def test_a_table_reads_as_the_list_of_its_records(sample_report: SessionReport) -> None:
    records = list(sample_report.tests)
    table = TestTable([columns_of(records[:3]), records[3:]])
    assert len(table) == 5
    assert table == records
    assert list(table) == records
    assert table[1:4] == records[1:4]
    assert table[-1] is records[-1]
    assert table[0] is table[0]  # built once, then kept
    assert table != records[:4]
    with pytest.raises(IndexError):
        table[5]


def test_a_report_of_columns_has_the_views_of_its_records(sample_report: SessionReport) -> None:
    records = list(sample_report.tests)
    expected = views(sample_report)
    parts = [columns_of(records[:2]), records[2:3], columns_of(records[3:])]
    sample_report.tests = TestTable(parts)
    assert views(sample_report) == expected
    assert report_from_dict(json.loads(sample_report.to_json())) == sample_report


def test_views_build_no_record_but_the_top_ones(
    sample_report: SessionReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    make = TestColumns.record

    def counted(self: TestColumns, index: int) -> Any:
        built.append(index)
        return make(self, index)

    monkeypatch.setattr(TestColumns, "record", counted)
    sample_report.tests = TestTable([columns_of(list(sample_report.tests))])
    sample_report.by_module()
    sample_report.outcome_counts()
    sample_report.methods()
    assert sample_report.attributed.total_kwh > 0
    assert built == []
    sample_report.top_tests(2)
    assert built == [0, 1]


def test_a_change_to_a_record_built_from_columns_stays(sample_report: SessionReport) -> None:
    table = TestTable([columns_of(list(sample_report.tests))])
    table[2].budget = {"energy_kwh": 1e-6}
    assert [test.budget for test in table][2] == {"energy_kwh": 1e-6}


@pytest.mark.parametrize("order", ["as pytest runs them", "one run a worker", "shuffled"])
def test_modules_add_up_in_the_order_their_tests_ran(order: str) -> None:
    rng = random.Random(7)
    tests = [
        record(f"tests/test_m{module}.py::test_{i}", rng.random() * 10 ** rng.randint(-9, 0))
        for module in range(7)
        for i in range(60)
    ]
    if order == "one run a worker":
        tests = tests[0::2] + tests[1::2]
    elif order == "shuffled":
        rng.shuffle(tests)
    expected: dict[str, list[TestRecord]] = {}
    for test in tests:
        expected.setdefault(test.path, []).append(test)
    for table in (tests, TestTable([columns_of(tests)])):
        modules = SessionReport(**{**vars_of_report(), "tests": table}).by_module()
        assert {m.path: (m.tests, m.emissions_g, m.energy) for m in modules} == {
            path: (
                len(group),
                sum((test.emissions_g for test in group), 0.0),  # in order: equal to the digit
                Energy(
                    sum((test.energy.cpu_kwh for test in group), 0.0),
                    sum((test.energy.ram_kwh for test in group), 0.0),
                    0.0,
                ),
            )
            for path, group in expected.items()
        }
        emissions = [module.emissions_g for module in modules]
        assert emissions == sorted(emissions, reverse=True)


def test_modules_of_equal_emissions_keep_the_order_they_first_ran() -> None:
    tests = [record(f"tests/test_{name}.py::test_a", 1.0) for name in "cab"]
    report = SessionReport(**{**vars_of_report(), "tests": TestTable([columns_of(tests)])})
    assert [module.path for module in report.by_module()] == [
        "tests/test_c.py",
        "tests/test_a.py",
        "tests/test_b.py",
    ]


def test_the_top_tests_keep_the_first_run_first_among_equals() -> None:
    tests = [record(f"t.py::test_{i}", grams) for i, grams in enumerate([1.0, 3.0, 3.0, 2.0, 3.0])]
    report = SessionReport(**{**vars_of_report(), "tests": TestTable([columns_of(tests)])})
    assert [test.nodeid for test in report.top_tests(2)] == ["t.py::test_1", "t.py::test_2"]
    assert [t.nodeid[-1] for t in report.top_tests(9)] == ["1", "2", "4", "3", "0"]
    assert report.top_tests(0) == []
    assert SessionReport(**{**vars_of_report(), "tests": []}).top_tests(3) == []


def test_columns_of_different_lengths_are_refused() -> None:
    tests = [record("t.py::test_a", 1.0), record("t.py::test_b", 2.0)]
    columns = columns_of(tests)
    with pytest.raises(ValueError, match="one entry a test"):
        TestColumns(
            columns.nodeids,
            columns.paths[:1],
            columns.outcomes,
            "cpu-time-model",
            None,
            columns.totals,
            PhasesOf(tests),
        )


def vars_of_report() -> dict[str, Any]:
    """The fields of a fixed report, to give other tests."""
    from carbon_factory import make_report

    report = make_report()
    return {name: getattr(report, name) for name in report.__dataclass_fields__}
