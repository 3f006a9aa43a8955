"""The terminal summary, drawn without rich in the layout rich draws."""

from __future__ import annotations

import io

import pytest
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from carbon_factory import make_report
from pytest_carbon.report.model import Energy, PhaseRecord, SessionReport, TestRecord
from pytest_carbon.report.terminal import (
    add_columns,
    cell_len,
    modules_cells,
    render_terminal,
    summary_lines,
    top_tests_cells,
)


def drawn_by_rich(report: SessionReport, top: int, width: int, color: bool) -> str:
    """The summary as rich draws it: the reference layout (cells as text, never as markup)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
        soft_wrap=False,
    )
    for parts in summary_lines(report):
        console.print(Text.assemble(*((chunk, style or "") for chunk, style in parts)))

    def table(title: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
        drawn = Table(title=title, box=box.SIMPLE, title_justify="left", expand=True)
        add_columns(drawn, columns)
        for row in rows:
            drawn.add_row(*(Text(cell) for cell in row))
        console.print(drawn)

    if top and report.tests:
        table(*top_tests_cells(report, top, width))
    if len(report.by_module()) > 1 or (top and report.tests):
        table(*modules_cells(report, top))
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    return buffer.getvalue()


def varied_report() -> SessionReport:
    """The factory report, with names that fold, wide characters and long notes."""
    report = make_report()
    phases = {"call": PhaseRecord(1.5, 1.2, Energy(3e-6, 1e-6, 0.0), 1.6e-3)}
    for nodeid in (
        "tests/deep/package/test_a_module_with_a_long_name.py::TestGroup::test_" + "x" * 90,
        "tests/test_unicode.py::test_日本語のテスト_µ→·",
        "tests/test_spaces.py::test_ids with spaces in them and more words after",
    ):
        report.tests.append(
            TestRecord(nodeid, nodeid.split("::")[0], "passed", "rapl", dict(phases))
        )
    report.power.notes.append("a note long enough to be wrapped " * 4)
    report.warnings.append("a warning long enough to be wrapped " * 4)
    report.codecarbon_cpu_s = 1.25
    return report


@pytest.mark.parametrize("width", [64, 80, 100, 120, 200])
@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("top", [0, 3, 10])
def test_the_summary_is_drawn_as_rich_draws_it(width: int, color: bool, top: int) -> None:
    report = varied_report()
    assert render_terminal(report, top=top, width=width, color=color) == drawn_by_rich(
        report, top, width, color
    )


def test_node_ids_in_brackets_are_shown_as_they_are() -> None:
    """rich would read ``[big|file]`` as markup and drop it; the summary shows it."""
    text = render_terminal(make_report(), top=5, width=120)
    assert "tests/test_io.py::test_upload[big|file]" in text


@pytest.mark.parametrize("width", [30, 41, 50])
def test_a_narrow_terminal_gets_lines_no_wider_than_itself(width: int) -> None:
    lines = render_terminal(varied_report(), top=10, width=width).splitlines()
    assert max(cell_len(line) for line in lines) == width


def test_a_warning_of_several_lines_keeps_its_lines() -> None:
    report = make_report()
    report.warnings = ["first line\nsecond line"]
    lines = render_terminal(report, top=0, width=100).splitlines()
    assert lines[-2:] == ["warning: first line", "second line"]


def test_cell_len_counts_wide_characters_twice_and_marks_none() -> None:
    assert cell_len("abc") == 3
    assert cell_len("µ→·") == 3
    assert cell_len("日本") == 4
    assert cell_len("e\u0301") == 1  # a combining accent takes no cell
    assert cell_len("\x07") == 0
