"""Several jobs of one CI run combined: per-job totals, the run's total, the costliest tests.

Each job keeps its own power model and grid; the merged view only adds up their figures. Reports
from different runs or commits are merged all the same, with a note saying so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.table import Table

from pytest_carbon.report.markdown import code, job_title, outcome_text
from pytest_carbon.report.model import SessionReport, TestRecord
from pytest_carbon.report.terminal import add_columns
from pytest_carbon.report.units import comparison, format_energy, format_mass, format_seconds


@dataclass
class MergedReport:
    """The jobs of one run, each a full session report, named by job."""

    jobs: list[tuple[str, SessionReport]] = field(default_factory=list)

    @property
    def energy_kwh(self) -> float:
        """Energy of every job."""
        return sum(report.energy_kwh for _, report in self.jobs)

    @property
    def emissions_g(self) -> float:
        """Emissions of every job."""
        return sum(report.emissions_g for _, report in self.jobs)

    @property
    def wall_s(self) -> float:
        """Machine time: the jobs' wall times added up."""
        return sum(report.wall_s for _, report in self.jobs)

    @property
    def test_count(self) -> int:
        """Tests run in all jobs (a test run by two jobs counts twice)."""
        return sum(len(report.tests) for _, report in self.jobs)

    def top_tests(self, n: int) -> list[tuple[str, TestRecord]]:
        """The ``n`` costliest test runs across jobs, with their job."""
        runs = [(job, test) for job, report in self.jobs for test in report.tests]
        return sorted(runs, key=lambda run: -run[1].emissions_g)[: max(n, 0)]

    def notes(self) -> list[str]:
        """What a reader should know: reports from several runs or commits."""
        notes = []
        for name in ("run_id", "commit"):
            values = sorted({str(getattr(r.identity, name)) for _, r in self.jobs} - {"None"})
            if len(values) > 1:
                label = "runs" if name == "run_id" else "commits"
                notes.append(f"these reports come from {len(values)} {label}: {', '.join(values)}")
        return notes


def merge_reports(reports: Sequence[tuple[str, SessionReport]]) -> MergedReport:
    """Name each ``(file, report)`` by its job (the file when it has none), made unique."""
    merged = MergedReport()
    seen: dict[str, int] = {}
    for source, report in reports:
        name = job_title(report.identity) if report.identity.job else source
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        merged.jobs.append((name, report))
    return merged


def render_merged_markdown(merged: MergedReport, *, top: int = 10) -> str:
    """The merged run as a markdown summary."""
    lines = [
        f"## Carbon footprint of {len(merged.jobs)} jobs",
        "",
        f"**{format_energy(merged.energy_kwh)} · {format_mass(merged.emissions_g)} CO2e** in "
        f"{format_seconds(merged.wall_s)} of machine time, {merged.test_count} test runs",
        "",
        comparison(merged.energy_kwh, merged.emissions_g),
        "",
        "| job | tests | outcomes | wall | energy | CO2e | gCO2e/kWh | method |",
        "|---|--:|---|--:|--:|--:|--:|---|",
    ]
    for name, report in merged.jobs:
        lines.append(
            f"| {code(name)} | {len(report.tests)} | {outcome_text(report)} | "
            f"{format_seconds(report.wall_s)} | {format_energy(report.energy_kwh)} | "
            f"{format_mass(report.emissions_g)} | {report.intensity.g_per_kwh:.4g} | "
            f"{report.power.method} |"
        )
    runs = merged.top_tests(top)
    if runs:
        lines += ["", f"### Top {len(runs)} test runs by emissions", ""]
        lines += ["| test | job | energy | CO2e |", "|---|---|--:|--:|"]
        lines += [
            f"| {code(t.nodeid)} | {code(job)} | {format_energy(t.energy_kwh)} | "
            f"{format_mass(t.emissions_g)} |"
            for job, t in runs
        ]
    notes = merged.notes()
    if notes:
        lines += [""] + [f"> note: {note}" for note in notes]
    return "\n".join(lines) + "\n"


def render_merged_terminal(merged: MergedReport, *, top: int = 10, width: int = 100) -> str:
    """The merged run as terminal text."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(
        f"{len(merged.jobs)} jobs: {format_energy(merged.energy_kwh)} → "
        f"{format_mass(merged.emissions_g)} CO2e in {format_seconds(merged.wall_s)} of machine "
        f"time, {merged.test_count} test runs"
    )
    jobs = Table(title="Per job", box=box.SIMPLE, title_justify="left", expand=True)
    add_columns(
        jobs,
        [
            ("job", "left"),
            ("tests", "right"),
            ("wall", "right"),
            ("energy", "right"),
            ("CO2e", "right"),
            ("g/kWh", "right"),
        ],
    )
    for name, report in merged.jobs:
        jobs.add_row(
            name,
            str(len(report.tests)),
            format_seconds(report.wall_s),
            format_energy(report.energy_kwh),
            format_mass(report.emissions_g),
            f"{report.intensity.g_per_kwh:.4g}",
        )
    console.print(jobs)
    runs = merged.top_tests(top)
    if runs:
        table = Table(
            title=f"Top {len(runs)} test runs by emissions",
            box=box.SIMPLE,
            title_justify="left",
            expand=True,
        )
        add_columns(
            table, [("test", "left"), ("job", "left"), ("energy", "right"), ("CO2e", "right")]
        )
        for job, test in runs:
            table.add_row(
                test.nodeid, job, format_energy(test.energy_kwh), format_mass(test.emissions_g)
            )
        console.print(table)
    for note in merged.notes():
        console.print(f"note: {note}")
    return buffer.getvalue()
