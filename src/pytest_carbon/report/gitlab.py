"""GitLab's merge-request metrics report: OpenMetrics text (``metrics.txt``).

GitLab shows each metric of the ``artifacts:reports:metrics`` file in the merge request and its
change against the target branch (compared as text). Names are stable; values are numbers with
4 significant digits in the unit their name says.
"""

from __future__ import annotations

from collections.abc import Iterator

from pytest_carbon.report.model import SessionReport


def label(value: str) -> str:
    """An OpenMetrics label value, escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def num(value: float) -> str:
    """A value with 4 significant digits: readable in the widget, stable between runs."""
    return f"{value:.4g}"


def _family(name: str, kind: str, help_text: str, samples: list[str]) -> Iterator[str]:
    yield f"# TYPE {name} {kind}"
    yield f"# HELP {name} {help_text}"
    yield from samples


def render_metrics(report: SessionReport, *, modules: int = 10) -> str:
    """Session totals, tests by outcome and the costliest modules, as OpenMetrics text."""
    lines: list[str] = []
    energy = report.energy
    lines += _family(
        "pytest_carbon_energy_kwh",
        "gauge",
        "Energy of the test session in kWh, by component.",
        [
            f"pytest_carbon_energy_kwh {num(energy.total_kwh)}",
            f'pytest_carbon_energy_kwh{{component="cpu"}} {num(energy.cpu_kwh)}',
            f'pytest_carbon_energy_kwh{{component="ram"}} {num(energy.ram_kwh)}',
            f'pytest_carbon_energy_kwh{{component="gpu"}} {num(energy.gpu_kwh)}',
            f'pytest_carbon_energy_kwh{{part="unattributed"}} {num(report.unattributed.total_kwh)}',
        ],
    )
    lines += _family(
        "pytest_carbon_emissions_grams",
        "gauge",
        "Emissions of the test session in grams CO2e.",
        [f"pytest_carbon_emissions_grams {num(report.emissions_g)}"],
    )
    lines += _family(
        "pytest_carbon_intensity_grams_per_kwh",
        "gauge",
        f"Grid carbon intensity used ({report.intensity.source}).",
        [f"pytest_carbon_intensity_grams_per_kwh {num(report.intensity.g_per_kwh)}"],
    )
    lines += _family(
        "pytest_carbon_duration_seconds",
        "gauge",
        "Wall time of the test session in seconds.",
        [f"pytest_carbon_duration_seconds {num(report.wall_s)}"],
    )
    counts = report.outcome_counts()
    lines += _family(
        "pytest_carbon_tests",
        "gauge",
        "Tests measured, by outcome.",
        [f"pytest_carbon_tests {len(report.tests)}"]
        + [f"pytest_carbon_tests{{outcome={label(k)}}} {counts[k]}" for k in sorted(counts)],
    )
    lines += _family(
        "pytest_carbon_module_emissions_grams",
        "gauge",
        f"Emissions of the {modules} costliest test modules in grams CO2e.",
        [
            f"pytest_carbon_module_emissions_grams{{module={label(m.path)}}} {num(m.emissions_g)}"
            for m in report.by_module()[: max(modules, 0)]
        ],
    )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
