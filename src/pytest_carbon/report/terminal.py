"""The terminal view: totals, the power model and intensity behind them, top tests, per module.

Drawn here in plain Python, in the layout rich draws (``box.SIMPLE`` tables that fill the width,
the first column folding long node ids, the others cut with ``…``): importing rich would cost a
pytest session more than the rest of its summary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from pytest_carbon.report.model import ModuleTotal, SessionReport
from pytest_carbon.report.units import comparison, format_energy, format_mass, format_seconds

if TYPE_CHECKING:
    from rich.table import Table

#: One run of text and its style (``None``: plain), e.g. ``("2.1 mg CO2e", "bold green")``.
Part = tuple[str, "str | None"]

#: ANSI codes of the styles used (the "standard" colour system).
_SGR: Final = {
    "bold": "1",
    "bold green": "1;32",
    "cyan": "36",
    "dim": "2",
    "italic": "3",
    "yellow": "33",
}
_WORD: Final = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE: Final = re.compile(r"\s+$")
HEAD_RULE: Final = "─"
ELLIPSIS: Final = "…"


def render_terminal(
    report: SessionReport, *, top: int = 10, width: int = 100, color: bool = False
) -> str:
    """The report as terminal text (ANSI colours when ``color``)."""
    width = max(width, 1)
    lines: list[str] = []
    for parts in summary_lines(report):
        lines.extend(wrap_parts(parts, width, color))
    if top and report.tests:
        lines.extend(top_tests_table(report, top, width, color))
    modules = report.by_module()
    if len(modules) > 1 or (top and report.tests):
        lines.extend(modules_table(report, top, modules, width, color))
    for warning in report.warnings:
        lines.extend(wrap_parts([(f"warning: {warning}", "yellow")], width, color))
    return "".join(line + "\n" for line in lines)


def summary_lines(report: SessionReport) -> list[list[Part]]:
    """The headline: totals, split, intensity, power model, comparison (short lines)."""
    energy = report.energy
    lines: list[list[Part]] = [
        [
            ("Session: ", "bold"),
            (f"{format_energy(report.energy_kwh)} = {report.energy_kwh:.3g} kWh", "bold"),
            (" → ", None),
            (f"{format_mass(report.emissions_g)} CO2e", "bold green"),
        ],
        [
            (f"  {len(report.tests)} tests in {format_seconds(report.wall_s)} · method ", None),
            (report.power.method, "cyan"),
        ],
        [
            (
                f"  CPU {format_energy(energy.cpu_kwh)} · RAM {format_energy(energy.ram_kwh)} · "
                f"GPU {format_energy(energy.gpu_kwh)}",
                None,
            )
        ],
        [
            (
                f"  tests {format_energy(report.attributed.total_kwh)} + unattributed "
                f"{format_energy(report.unattributed.total_kwh)}",
                None,
            )
        ],
        [
            (
                "  unattributed: collection, session fixtures, plugin" + codecarbon_share(report),
                "dim",
            )
        ],
        [
            (
                f"  Grid: {report.intensity.g_per_kwh:.4g} gCO2e/kWh, "
                f"{report.intensity.country_name or 'unknown'} ({report.intensity.source})",
                None,
            )
        ],
        [(f"  Power: {describe_power(report)}", None)],
        [("  " + comparison(report.energy_kwh, report.emissions_g), "dim")],
    ]
    lines.extend([(f"  note: {note}", "dim")] for note in report.power.notes)
    if report.deselection is not None:
        lines.append(
            [
                (
                    f"  Plan: {report.deselection.tests} test(s) covered by other jobs "
                    f"deselected, ~{format_energy(report.deselection.energy_kwh_saved)} saved",
                    None,
                )
            ]
        )
    return lines


def codecarbon_share(report: SessionReport) -> str:
    """How much of the session's CPU time codecarbon's own start-up took, when it took any."""
    if report.codecarbon_cpu_s <= 0:
        return ""
    return f"; codecarbon {format_seconds(report.codecarbon_cpu_s)} CPU"


def describe_power(report: SessionReport) -> str:
    """One line on the power model: CPU, watts per vCPU, vCPUs counted, RAM, PUE."""
    power = report.power
    tdp = f" (TDP {power.cpu_tdp_w:g} W)" if power.cpu_tdp_w else ""
    gpu = f" · {power.gpu_count} GPU" if power.gpu_count else ""
    return (
        f"{power.cpu_model}{tdp} · {power.cpu_watts_per_vcpu:.3g} W/vCPU × {power.vcpus:g} vCPUs "
        f"({power.vcpus_source}) = {power.cpu_watts:.3g} W at full load, "
        f"{power.cpu_idle_fraction:.0%} idle · RAM {power.ram_watts:.3g} W{gpu} · PUE {power.pue:g}"
    )


#: A table's contents: its title, its columns (name, justification) and its rows of cells.
Cells = tuple[str, list[tuple[str, str]], list[list[str]]]


def top_tests_table(
    report: SessionReport, top: int, width: int = 100, color: bool = False
) -> list[str]:
    """The ``top`` tests by emissions; narrow terminals get fewer columns, never a crushed name."""
    return draw_table(*top_tests_cells(report, top, width), width, color)


def top_tests_cells(report: SessionReport, top: int, width: int) -> Cells:
    """The cells of :func:`top_tests_table`."""
    wide = width >= 110
    mixed = len(report.methods()) > 1
    columns = [("test", "left"), ("outcome", "left")]
    if wide:
        columns += [("wall", "right"), ("CPU", "right")]
    columns += [("energy", "right"), ("CO2e", "right")]
    if wide or mixed:
        columns.append(("method", "left"))
    rows = []
    for test in report.top_tests(top):
        cells = {
            "test": test.nodeid,
            "outcome": test.outcome,
            "wall": format_seconds(test.wall_s),
            "CPU": format_seconds(test.cpu_s),
            "energy": format_energy(test.energy_kwh),
            "CO2e": format_mass(test.emissions_g),
            "method": test.method,
        }
        rows.append([cells[name] for name, _ in columns])
    return f"Top {top} tests by emissions", columns, rows


def modules_table(
    report: SessionReport,
    top: int,
    modules: list[ModuleTotal] | None = None,
    width: int = 100,
    color: bool = False,
) -> list[str]:
    """Per-module totals (the ``top`` costliest files)."""
    return draw_table(*modules_cells(report, top, modules), width, color)


def modules_cells(
    report: SessionReport, top: int, modules: list[ModuleTotal] | None = None
) -> Cells:
    """The cells of :func:`modules_table`."""
    columns = [
        ("module", "left"),
        ("tests", "right"),
        ("wall", "right"),
        ("energy", "right"),
        ("CO2e", "right"),
        ("share", "right"),
    ]
    total = report.emissions_g or 1.0
    rows = [
        [
            module.path,
            str(module.tests),
            format_seconds(module.wall_s),
            format_energy(module.energy_kwh),
            format_mass(module.emissions_g),
            f"{module.emissions_g / total:.1%}",
        ]
        for module in (report.by_module() if modules is None else modules)[: max(top, 1)]
    ]
    return "Per module", columns, rows


def add_columns(table: Table, columns: list[tuple[str, str]]) -> None:
    """The first column takes the free width and folds; the others never wrap (rich tables)."""
    for index, (name, justify) in enumerate(columns):
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold" if index == 0 else "ellipsis",
            no_wrap=index != 0,
            ratio=1 if index == 0 else None,
        )


def draw_table(
    title: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str]],
    width: int,
    color: bool = False,
) -> list[str]:
    """A table the width of the terminal: title, blank edge, header, rule, rows, blank edge.

    The first column takes the width the others leave and folds what does not fit; the others
    are as wide as their widest cell, one space of padding on each side, and cut with ``…``
    when the terminal is too narrow for them.
    """
    widths = column_widths([name for name, _ in columns], rows, width)
    inner = [max(size - 2, 0) for size in widths]
    table_width = sum(widths) + len(widths) + 1
    lines = [styled(set_cell_size(title, table_width), "italic", color)]
    lines.append(" " * table_width)
    lines.extend(header_lines(columns, inner, color))
    lines.append(" " + HEAD_RULE * (table_width - 2) + " ")
    for row in rows:
        cells = [
            fold(cell, size) if index == 0 else [justified(cell, size, columns[index][1])]
            for index, (cell, size) in enumerate(zip(row, inner, strict=True))
        ]
        for line in range(max(len(cell) for cell in cells)):
            parts = [
                " " + (cell[line] if line < len(cell) else " " * size) + " "
                for cell, size in zip(cells, inner, strict=True)
            ]
            lines.append(" " + " ".join(parts) + " ")
    lines.append(" " * table_width)
    return lines


def header_lines(
    columns: Sequence[tuple[str, str]], inner: Sequence[int], color: bool
) -> list[str]:
    """The bold header row: the first name folds like its column, the others sit at the bottom."""
    first = fold(columns[0][0], inner[0])
    cells = [
        first,
        *(
            [justified(name, size, justify)]
            for (name, justify), size in zip(columns[1:], inner[1:], strict=True)
        ),
    ]
    height = len(first)
    lines = []
    for line in range(height):
        parts = []
        for index, (cell, size) in enumerate(zip(cells, inner, strict=True)):
            at = line if index == 0 else line - (height - len(cell))
            if 0 <= at < len(cell):
                parts.append(
                    styled(" ", "bold", color)
                    + styled(cell[at], "bold", color)
                    + styled(" ", "bold", color)
                )
            else:
                parts.append(styled(" " * (size + 2), "bold", color))
        lines.append(" " + " ".join(parts) + " ")
    return lines


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Each column's width with its padding; the first takes what the others leave."""
    available = width - len(headers) - 1  # the edges and the separators between columns
    widths = [
        max(cell_len(cell) for cell in (header, *(row[index] for row in rows))) + 2
        for index, header in enumerate(headers)
    ]
    widths[0] = max(available - sum(widths[1:]), 3)
    excess = sum(widths) - available
    if excess > 0:  # too narrow even for the fixed columns: shrink them all evenly
        widths = reduce_evenly(widths, excess)
    return widths


def reduce_evenly(widths: list[int], excess: int) -> list[int]:
    """``widths`` less ``excess`` cells in all, one at a time round the columns, none made
    narrower than its padding."""
    reduced = list(widths)
    while excess > 0 and any(size > 2 for size in reduced):
        for index, size in enumerate(reduced):
            if excess > 0 and size > 2:
                reduced[index] = size - 1
                excess -= 1
    return reduced


def justified(text: str, size: int, justify: str) -> str:
    """One line of a column that never wraps: cut with ``…`` when too long, padded to ``size``."""
    if justify == "right":
        text = text.rstrip()
    if cell_len(text) > size:
        text = set_cell_size(text, size - 1) + ELLIPSIS if size > 0 else ""
    padding = " " * (size - cell_len(text))
    return padding + text if justify == "right" else text + padding


def fold(text: str, size: int) -> list[str]:
    """A cell of the first column: wrapped at spaces, long words folded, lines padded."""
    if size < 1:
        return [""]
    return [set_cell_size(line[: kept(line, size)], size) for line in divide(text, size, True)]


def wrap_parts(parts: Sequence[Part], width: int, color: bool) -> list[str]:
    """Styled text wrapped to ``width`` at spaces (and at its newlines), styles kept."""
    text = "".join(chunk for chunk, _ in parts)
    lines = []
    start = 0
    for paragraph in text.split("\n"):
        for line in divide(paragraph, width, True):
            lines.append(styled_slice(parts, start, start + kept(line, width), color))
            start += len(line)
        start += 1  # the newline
    return lines


def kept(line: str, width: int) -> int:
    """How many characters of a wrapped line stay: spaces past the width go, then any excess."""
    if len(line) > width:
        spaces = len(line) - len(line.rstrip())
        line = line[: len(line) - min(spaces, len(line) - width)]
    if cell_len(line) <= width:
        return len(line)
    used = 0
    for index, character in enumerate(line):
        used += char_cells(character)
        if used > width:
            return index
    return len(line)  # pragma: no cover - the loop always returns


def styled_slice(parts: Sequence[Part], start: int, end: int, color: bool) -> str:
    """The characters ``start:end`` of the joined ``parts``, each run in its own style."""
    out = []
    offset = 0
    for chunk, style in parts:
        left, right = max(start, offset), min(end, offset + len(chunk))
        if left < right:
            out.append(styled(chunk[left - offset : right - offset], style, color))
        offset += len(chunk)
    return "".join(out)


def styled(text: str, style: str | None, color: bool) -> str:
    """``text`` in ``style`` as ANSI codes when ``color``, else as is."""
    if not color or style is None or not text:
        return text
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def divide(text: str, width: int, fold: bool) -> Iterator[str]:
    """``text`` cut into lines of at most ``width`` cells at word ends (rich's ``divide_line``).

    A word keeps the spaces after it; a word longer than a line is folded when ``fold``.
    """
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        length = cell_len(word.rstrip())
        if width - offset >= length:
            offset += cell_len(word)
        elif length > width:
            if fold:
                pieces = chop_cells(word, width)
                for last, piece in enumerate(pieces, 1 - len(pieces)):
                    if start:
                        breaks.append(start)
                    if last == 0:
                        offset = cell_len(piece)
                    else:
                        start += len(piece)
            else:
                if start:
                    breaks.append(start)
                offset = cell_len(word)
        elif offset and start:
            breaks.append(start)
            offset = cell_len(word)
    bounds = [0, *breaks, len(text)]
    for begin, end in zip(bounds, bounds[1:], strict=False):
        yield text[begin:end]


def chop_cells(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width`` cells."""
    if text.isascii() and text.isprintable():
        return [text[index : index + width] for index in range(0, len(text), width)]
    pieces = []
    size = begin = 0
    for index, character in enumerate(text):
        cells = char_cells(character)
        if size + cells > width:
            pieces.append(text[begin:index])
            begin, size = index, 0
        size += cells
    if size:
        pieces.append(text[begin:])
    return pieces


def set_cell_size(text: str, total: int) -> str:
    """``text`` cut or padded with spaces to exactly ``total`` cells."""
    if total <= 0:
        return ""
    size = cell_len(text)
    if size <= total:
        return text + " " * (total - size)
    out = []
    used = 0
    for character in text:
        cells = char_cells(character)
        if used + cells > total:
            break
        out.append(character)
        used += cells
    return "".join(out) + " " * (total - used)


def cell_len(text: str) -> int:
    """How many terminal cells ``text`` takes (wide East Asian characters take two)."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(char_cells(character) for character in text)


def char_cells(character: str) -> int:
    """Terminal cells of one character: 0 for controls and combining marks, 2 for wide ones."""
    code = ord(character)
    if code < 32 or 0x7F <= code < 0xA0:
        return 0
    if unicodedata.combining(character) or unicodedata.category(character) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
