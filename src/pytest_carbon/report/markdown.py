"""Markdown views: the GitHub Actions job summary (with a Mermaid chart) and the PR comment.

Both are GitHub-flavoured markdown; the chart is a Mermaid ``xychart-beta`` bar chart, which
GitHub renders in job summaries, issues and pull requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pytest_carbon.report.compare import BaselineDiff, RegionFigure, format_pct, percent
from pytest_carbon.report.model import JobIdentity, SessionReport, TestRecord
from pytest_carbon.report.terminal import describe_power
from pytest_carbon.report.units import comparison, format_energy, format_mass, format_seconds

#: A hidden line that lets a bot find and update its earlier comment.
COMMENT_MARKER: Final = "<!-- pytest-carbon -->"
#: Mass units for chart axes: name and grams per unit.
MASS_UNITS: Final = (("µg", 1e-6), ("mg", 1e-3), ("g", 1.0), ("kg", 1e3), ("t", 1e6))
CHART_LABEL_CHARS: Final = 28


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    """Text as an inline code span safe inside a table cell."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{cell(text)}{pad}{fence}"


def job_title(identity: JobIdentity) -> str:
    """``job (python=3.12, db=pg)``, or ``pytest session`` without an identity."""
    name = identity.job or "pytest session"
    if identity.matrix:
        values = ", ".join(f"{k}={v}" for k, v in sorted(identity.matrix.items()))
        if values != name:
            name += f" ({values})"
    return name


def outcome_text(report: SessionReport) -> str:
    """``58 passed, 1 skipped``: outcome counts in a stable order."""
    counts = report.outcome_counts()
    return ", ".join(f"{counts[name]} {name}" for name in sorted(counts)) or "no tests"


def mass_unit(largest_g: float) -> tuple[str, float]:
    """The unit in which ``largest_g`` grams reads as a number below 1000."""
    for name, grams in MASS_UNITS:
        if abs(largest_g) < grams * 1000:
            return name, grams
    return MASS_UNITS[-1]


def chart_number(value: float) -> str:
    """A plain decimal (no exponent) with at most 3 decimals, as Mermaid expects."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def short_name(nodeid: str, limit: int = CHART_LABEL_CHARS) -> str:
    """The test's own name (without its file), cut to ``limit`` characters."""
    name = nodeid.split("::", 1)[-1]
    return name if len(name) <= limit else name[: limit - 1] + "…"


def mermaid_top_tests(tests: Sequence[TestRecord]) -> str:
    """A Mermaid bar chart of the tests' emissions, numbered like the table beside it."""
    unit, grams = mass_unit(max((t.emissions_g for t in tests), default=0.0))
    labels = ", ".join(
        '"{}. {}"'.format(i, short_name(t.nodeid).replace('"', "'")) for i, t in enumerate(tests, 1)
    )
    values = ", ".join(chart_number(t.emissions_g / grams) for t in tests)
    top = max((t.emissions_g / grams for t in tests), default=0.0)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "Top {len(tests)} tests by emissions ({unit} CO2e)"',
            f"    x-axis [{labels}]",
            f'    y-axis "{unit} CO2e" 0 --> {chart_number(top * 1.1) if top else "1"}',
            f"    bar [{values}]",
            "```",
        ]
    )


def headline(report: SessionReport) -> str:
    """The bold totals line."""
    return (
        f"**{format_energy(report.energy_kwh)} · {format_mass(report.emissions_g)} CO2e** in "
        f"{format_seconds(report.wall_s)}, {len(report.tests)} tests ({outcome_text(report)})"
    )


def facts_table(report: SessionReport) -> list[str]:
    """Method, grid intensity, power model, split and everyday comparison."""
    energy = report.energy
    intensity = report.intensity
    rows = [
        ("Method", f"`{report.power.method}`"),
        (
            "Grid intensity",
            f"{intensity.g_per_kwh:.4g} gCO2e/kWh, {intensity.country_name or 'unknown'} "
            f"(source: {intensity.source})",
        ),
        ("Power model", describe_power(report)),
        (
            "Energy split",
            f"CPU {format_energy(energy.cpu_kwh)} · RAM {format_energy(energy.ram_kwh)} · "
            f"GPU {format_energy(energy.gpu_kwh)}; tests "
            f"{format_energy(report.attributed.total_kwh)} + unattributed "
            f"{format_energy(report.unattributed.total_kwh)}",
        ),
        ("Equivalent", comparison(report.energy_kwh, report.emissions_g)),
    ]
    return ["| | |", "|---|---|", *(f"| {name} | {cell(value)} |" for name, value in rows)]


def top_tests_table(report: SessionReport, top: int) -> list[str]:
    """The costliest tests, numbered like the chart."""
    lines = [
        "| # | test | outcome | wall | energy | CO2e | method |",
        "|--:|---|---|--:|--:|--:|---|",
    ]
    for index, test in enumerate(report.top_tests(top), 1):
        budget = " (over budget)" if test.budget_exceeded else ""
        lines.append(
            f"| {index} | {code(test.nodeid)} | {test.outcome}{budget} | "
            f"{format_seconds(test.wall_s)} | {format_energy(test.energy_kwh)} | "
            f"{format_mass(test.emissions_g)} | {test.method} |"
        )
    return lines


def modules_table(report: SessionReport, top: int) -> list[str]:
    """Per-module totals with each module's share of the session's emissions."""
    total = report.emissions_g or 1.0
    modules = report.by_module()
    lines = ["| module | tests | wall | energy | CO2e | share |", "|---|--:|--:|--:|--:|--:|"]
    for module in modules[: max(top, 1)]:
        lines.append(
            f"| {code(module.path)} | {module.tests} | {format_seconds(module.wall_s)} | "
            f"{format_energy(module.energy_kwh)} | {format_mass(module.emissions_g)} | "
            f"{module.emissions_g / total:.1%} |"
        )
    if len(modules) > max(top, 1):
        lines.append(f"| … {len(modules) - max(top, 1)} more | | | | | |")
    return lines


def regions_table(report: SessionReport, figures: Sequence[RegionFigure]) -> list[str]:
    """The same energy's emissions on other grids."""
    lines = [
        "| grid | gCO2e/kWh | CO2e of this run | vs this run |",
        "|---|--:|--:|--:|",
        f"| **this run: {cell(report.intensity.country_name or 'unknown')}** | "
        f"{report.intensity.g_per_kwh:.4g} | {format_mass(report.emissions_g)} | ×1 |",
    ]
    for figure in figures:
        ratio = figure.ratio_to(report.emissions_g)
        lines.append(
            f"| {cell(figure.region.label)} | {figure.region.g_per_kwh:.4g} | "
            f"{format_mass(figure.emissions_g)} | {'n/a' if ratio is None else f'×{ratio:.2g}'} |"
        )
    return lines


def baseline_table(diff: BaselineDiff, top: int) -> list[str]:
    """Totals against the baseline, then the tests whose energy changed most."""
    lines = [
        "| | baseline | this run | change |",
        "|---|--:|--:|--:|",
        f"| session energy | {format_energy(diff.before_kwh)} | {format_energy(diff.after_kwh)} "
        f"| {format_pct(diff.total_change_pct)} |",
        f"| session CO2e | {format_mass(diff.before_g)} | {format_mass(diff.after_g)} | "
        f"{format_pct(percent(diff.before_g, diff.after_g))} |",
        f"| {len(diff.changes)} tests in both runs | {format_energy(diff.common_before_kwh)} | "
        f"{format_energy(diff.common_after_kwh)} | {format_pct(diff.common_change_pct)} |",
    ]
    biggest = diff.biggest(top)
    if biggest:
        lines += ["", "| test | baseline | this run | change |", "|---|--:|--:|--:|"]
        lines += [
            f"| {code(c.nodeid)} | {format_energy(c.before_kwh)} | {format_energy(c.after_kwh)} "
            f"| {format_pct(c.change_pct)} |"
            for c in biggest
        ]
    if diff.added or diff.removed:
        lines += ["", f"Tests new in this run: {len(diff.added)}; gone: {len(diff.removed)}."]
    return lines


def render_summary(
    report: SessionReport,
    *,
    top: int = 10,
    regions: Sequence[RegionFigure] = (),
    diff: BaselineDiff | None = None,
    failures: Sequence[str] = (),
) -> str:
    """The GitHub Actions job summary: totals, facts, chart, top tests, modules, comparisons."""
    lines = [f"## Carbon footprint: {cell(job_title(report.identity))}", "", headline(report), ""]
    lines += [f"> **{cell(failure)}**" for failure in failures]
    if failures:
        lines.append("")
    lines += facts_table(report)
    tests = report.top_tests(top)
    if tests:
        lines += ["", f"### Top {len(tests)} tests by emissions", "", mermaid_top_tests(tests), ""]
        lines += top_tests_table(report, top)
    if report.tests:
        lines += ["", "### Per module", ""] + modules_table(report, top)
    if regions:
        lines += ["", "### What if elsewhere", ""] + regions_table(report, regions)
    if diff is not None:
        lines += ["", f"### Against baseline `{cell(diff.baseline)}`", ""]
        lines += baseline_table(diff, min(top, 10))
    if report.warnings:
        lines += ["", "### Warnings", ""] + [f"- {cell(w)}" for w in report.warnings]
    lines += ["", footer(report), ""]
    return "\n".join(lines)


def footer(report: SessionReport) -> str:
    """Tool and data versions, small."""
    codecarbon = f", codecarbon {report.codecarbon_version}" if report.codecarbon_version else ""
    return f"<sub>pytest-carbon {report.tool_version}{codecarbon}; {report.finished_at}</sub>"


def render_pr_comment(
    report: SessionReport,
    *,
    diff: BaselineDiff | None = None,
    top: int = 5,
    failures: Sequence[str] = (),
) -> str:
    """A compact PR comment: totals, the change against the baseline, the biggest movers."""
    change = ""
    if diff is not None:
        change = f" ({format_pct(diff.total_change_pct)} energy vs `{cell(diff.baseline)}`)"
    lines = [
        COMMENT_MARKER,
        f"### Carbon footprint of {cell(job_title(report.identity))}: "
        f"{format_energy(report.energy_kwh)} · {format_mass(report.emissions_g)} CO2e{change}",
        "",
    ]
    lines += [f"> **{cell(failure)}**" for failure in failures]
    if failures:
        lines.append("")
    if diff is not None:
        lines += baseline_table(diff, top)
    else:
        lines += [headline(report), "", "| test | energy | CO2e |", "|---|--:|--:|"]
        lines += [
            f"| {code(t.nodeid)} | {format_energy(t.energy_kwh)} | {format_mass(t.emissions_g)} |"
            for t in report.top_tests(top)
        ]
    lines += [
        "",
        f"<sub>{report.power.method} · {report.intensity.g_per_kwh:.4g} gCO2e/kWh "
        f"({cell(report.intensity.source)}) · pytest-carbon {report.tool_version}</sub>",
        "",
    ]
    return "\n".join(lines)
