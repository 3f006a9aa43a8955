"""The terminal view: totals, the power model and intensity behind them, top tests, per module."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pytest_carbon.report.model import ModuleTotal, SessionReport
from pytest_carbon.report.units import comparison, format_energy, format_mass, format_seconds


def render_terminal(
    report: SessionReport, *, top: int = 10, width: int = 100, color: bool = False
) -> str:
    """The report as terminal text (ANSI colours when ``color``)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
        soft_wrap=False,
    )
    for renderable in summary_lines(report):
        console.print(renderable)
    if top and report.tests:
        console.print(top_tests_table(report, top, width))
    modules = report.by_module()
    if len(modules) > 1 or (top and report.tests):
        console.print(modules_table(report, top, modules))
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    return buffer.getvalue()


def summary_lines(report: SessionReport) -> list[Text]:
    """The headline: totals, split, intensity, power model, comparison (short lines)."""
    energy = report.energy
    lines = [
        Text.assemble(
            ("Session: ", "bold"),
            (f"{format_energy(report.energy_kwh)} = {report.energy_kwh:.3g} kWh", "bold"),
            " → ",
            (f"{format_mass(report.emissions_g)} CO2e", "bold green"),
        ),
        Text.assemble(
            f"  {len(report.tests)} tests in {format_seconds(report.wall_s)} · method ",
            (report.power.method, "cyan"),
        ),
        Text(
            f"  CPU {format_energy(energy.cpu_kwh)} · RAM {format_energy(energy.ram_kwh)} · "
            f"GPU {format_energy(energy.gpu_kwh)}"
        ),
        Text(
            f"  tests {format_energy(report.attributed.total_kwh)} + unattributed "
            f"{format_energy(report.unattributed.total_kwh)}"
        ),
        Text(
            "  unattributed: collection, session fixtures, plugin" + codecarbon_share(report),
            style="dim",
        ),
        Text(
            f"  Grid: {report.intensity.g_per_kwh:.4g} gCO2e/kWh, "
            f"{report.intensity.country_name or 'unknown'} ({report.intensity.source})"
        ),
        Text(f"  Power: {describe_power(report)}"),
        Text("  " + comparison(report.energy_kwh, report.emissions_g), style="dim"),
    ]
    lines.extend(Text(f"  note: {note}", style="dim") for note in report.power.notes)
    if report.deselection is not None:
        lines.append(
            Text(
                f"  Plan: {report.deselection.tests} test(s) covered by other jobs deselected, "
                f"~{format_energy(report.deselection.energy_kwh_saved)} saved"
            )
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


def top_tests_table(report: SessionReport, top: int, width: int = 100) -> Table:
    """The ``top`` tests by emissions; narrow terminals get fewer columns, never a crushed name."""
    wide = width >= 110
    mixed = len({test.method for test in report.tests}) > 1
    columns = [("test", "left"), ("outcome", "left")]
    if wide:
        columns += [("wall", "right"), ("CPU", "right")]
    columns += [("energy", "right"), ("CO2e", "right")]
    if wide or mixed:
        columns.append(("method", "left"))
    table = Table(
        title=f"Top {top} tests by emissions", box=box.SIMPLE, title_justify="left", expand=True
    )
    add_columns(table, columns)
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
        table.add_row(*(cells[name] for name, _ in columns))
    return table


def modules_table(
    report: SessionReport, top: int, modules: list[ModuleTotal] | None = None
) -> Table:
    """Per-module totals (the ``top`` costliest files)."""
    table = Table(title="Per module", box=box.SIMPLE, title_justify="left", expand=True)
    add_columns(
        table,
        [
            ("module", "left"),
            ("tests", "right"),
            ("wall", "right"),
            ("energy", "right"),
            ("CO2e", "right"),
            ("share", "right"),
        ],
    )
    total = report.emissions_g or 1.0
    for module in (report.by_module() if modules is None else modules)[: max(top, 1)]:
        table.add_row(
            module.path,
            str(module.tests),
            format_seconds(module.wall_s),
            format_energy(module.energy_kwh),
            format_mass(module.emissions_g),
            f"{module.emissions_g / total:.1%}",
        )
    return table


def add_columns(table: Table, columns: list[tuple[str, str]]) -> None:
    """The first column takes the free width and folds; the others never wrap."""
    for index, (name, justify) in enumerate(columns):
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold" if index == 0 else "ellipsis",
            no_wrap=index != 0,
            ratio=1 if index == 0 else None,
        )
