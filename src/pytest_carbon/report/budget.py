"""Carbon budgets of tests (``@pytest.mark.carbon_budget``) and limits on the whole session.

A budget covers a test's setup and call phases: what is known when the test's outcome is decided.
The test is priced then, with the power model known at run time (the user's ``--carbon-cpu-watts``
and ``--carbon-ram-watts``; else codecarbon's detection from pytest's cache when this machine has
one; else codecarbon's per-vCPU default and 3 W per 8 GB of RAM), and its
call report turns failed when it is over. At session end the budget is checked again with the
report's final figures: a test over budget only by the final figures fails the session, so the
report and the exit status never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

from pytest_carbon.meter.attribute import Delta, Rates, energy_of
from pytest_carbon.meter.counters import usable_vcpus
from pytest_carbon.meter.intensity import resolve_intensity
from pytest_carbon.meter.power import Overrides, build_power_model, runs_in_vm
from pytest_carbon.options import Settings
from pytest_carbon.report.model import Energy, SessionReport, TestRecord, TestTable
from pytest_carbon.report.units import format_energy, format_mass

MARKER: Final = "carbon_budget"
MARKER_HELP: Final = (
    "carbon_budget(energy_kwh=None, emissions_g=None): fail the test when its setup and call "
    "use more energy (kWh) or emit more (gCO2e) than this (pytest-carbon, needs --carbon)."
)
LIMITS: Final = ("energy_kwh", "emissions_g")
#: The phases a budget covers: those finished when the test's outcome is decided.
BUDGET_PHASES: Final = ("setup", "call")
#: Name of the attribute carrying the budget on a test report (it crosses from xdist workers).
REPORT_ATTRIBUTE: Final = "carbon_budget"


@final
class BudgetError(ValueError):
    """A ``carbon_budget`` marker with arguments that are not a budget."""


def budget_from_marker(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, float]:
    """The limits of a ``carbon_budget`` marker; raise :class:`BudgetError` naming the fix."""
    usage = "use e.g. @pytest.mark.carbon_budget(energy_kwh=1e-6, emissions_g=0.5)"
    if args:
        raise BudgetError(f"carbon_budget takes keyword arguments only; {usage}")
    unknown = sorted(set(kwargs) - set(LIMITS))
    if unknown:
        raise BudgetError(f"carbon_budget: unknown limit {unknown[0]!r}; {usage}")
    budget: dict[str, float] = {}
    for name, value in kwargs.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BudgetError(f"carbon_budget: {name} must be a number ≥ 0, got {value!r}")
        budget[name] = float(value)
    if not budget:
        raise BudgetError(f"carbon_budget: no limit given; {usage}")
    return budget


def over_budget(budget: Mapping[str, float], energy_kwh: float, emissions_g: float) -> str | None:
    """``carbon budget exceeded: 3.2 J > 1 J (energy_kwh=2.78e-07)``, or None when within."""
    problems: list[str] = []
    limit = budget.get("energy_kwh")
    if limit is not None and energy_kwh > limit:
        spent, allowed = format_energy(energy_kwh), format_energy(limit)
        if spent == allowed:
            spent, allowed = f"{energy_kwh:.6g} kWh", f"{limit:.6g} kWh"
        problems.append(f"{spent} > {allowed} (energy_kwh={limit:g})")
    limit = budget.get("emissions_g")
    if limit is not None and emissions_g > limit:
        spent, allowed = format_mass(emissions_g), format_mass(limit)
        if spent == allowed:
            spent, allowed = f"{emissions_g:.6g} g", f"{limit:.6g} g"
        problems.append(f"{spent} CO2e > {allowed} CO2e (emissions_g={limit:g})")
    if not problems:
        return None
    return "carbon budget exceeded: " + "; ".join(problems)


@final
class RuntimePricer:
    """Prices a test's setup and call as soon as they end, with the power model known then."""

    def __init__(
        self,
        settings: Settings,
        methods: tuple[str, ...],
        share: float = 1.0,
        hardware: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.methods = methods
        self.share = share
        self.hardware = hardware
        self._rates: Rates | None = None
        self._g_per_kwh: float | None = None

    def _prepare(self) -> tuple[Rates, float]:
        if self._rates is None or self._g_per_kwh is None:
            vcpus, source = usable_vcpus()
            settings = self.settings
            power = build_power_model(
                self.hardware,
                vcpus=vcpus,
                vcpus_source=source,
                overrides=Overrides(settings.cpu_watts, settings.ram_watts, settings.pue),
                energy_methods=self.methods,
                in_vm=runs_in_vm(),
            )
            self._rates = Rates.from_model(power)
            self._g_per_kwh = resolve_intensity(settings.country, settings.intensity).g_per_kwh
        return self._rates, self._g_per_kwh

    def price(self, phases: Mapping[str, Delta]) -> tuple[float, float]:
        """Energy (kWh) and emissions (g) of the budgeted phases among ``phases``."""
        rates, g_per_kwh = self._prepare()
        total = Energy()
        for name in BUDGET_PHASES:
            delta = phases.get(name)
            if delta is not None:
                total = total + energy_of(delta, rates, self.share)
        return total.total_kwh, total.total_kwh * g_per_kwh


@final
class BudgetGate:
    """Judges a budgeted test when its call phase is reported, failing it when over budget."""

    def __init__(self, pricer: RuntimePricer) -> None:
        self.pricer = pricer

    def check(self, marker: Any, report: Any, phases: Mapping[str, Delta]) -> None:
        """Judge the call ``report`` of a test marked ``marker`` (None: no budget).

        Only a passing test is turned failed; the limits and the run-time verdict ride on the
        report (attribute ``carbon_budget``) to the session end, xdist workers included.
        """
        if marker is None:
            return
        try:
            limits = budget_from_marker(tuple(marker.args), dict(marker.kwargs))
        except BudgetError as exc:
            if report.passed:
                report.outcome = "failed"
                report.longrepr = f"invalid carbon budget: {exc}"
            return
        message = over_budget(limits, *self.pricer.price(phases))
        if message is not None and report.passed and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = (
                f"{message}\n(setup and call priced when the test ended, with the run-time power "
                "model; see the carbon report for the final figures)"
            )
        setattr(report, REPORT_ATTRIBUTE, {"limits": limits, "exceeded": message is not None})


def spent_by(test: TestRecord) -> tuple[float, float]:
    """Energy (kWh) and emissions (g) of a test's budgeted phases, by the report's figures."""
    phases = [test.phases[name] for name in BUDGET_PHASES if name in test.phases]
    return sum(p.energy_kwh for p in phases), sum(p.emissions_g for p in phases)


@dataclass
class BudgetResults:
    """Budgets checked with the final figures."""

    exceeded: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


def apply_budgets(report: SessionReport, budgets: Mapping[str, Mapping[str, Any]]) -> BudgetResults:
    """Record each budgeted test's limits and verdict by the final figures.

    ``budgets`` maps a node id to ``{"limits": {...}, "exceeded": bool}`` (the run-time verdict).
    ``late`` lists tests over budget only by the final figures (they fail the session);
    ``cleared`` lists tests over budget at run time that the final figures put within it.
    """
    results = BudgetResults()
    if not budgets:
        return results
    tests = TestTable.of(report.tests)
    budgeted = [at for at, nodeid in enumerate(tests.column("nodeid")) if budgets.get(nodeid)]
    for test in map(tests.__getitem__, budgeted):  # no record built for the others
        entry = budgets[test.nodeid]
        limits = {str(k): float(v) for k, v in dict(entry.get("limits") or {}).items()}
        test.budget = limits
        message = over_budget(limits, *spent_by(test))
        test.budget_exceeded = message is not None
        if message is not None:
            results.exceeded.append(f"{test.nodeid}: {message}")
            if not entry.get("exceeded"):
                results.late.append(f"{test.nodeid}: {message} (by the report's final figures)")
        elif entry.get("exceeded"):
            results.cleared.append(
                f"{test.nodeid}: over its carbon budget at run time, within it by the report's "
                "final figures (set --carbon-cpu-watts and --carbon-ram-watts to price both alike)"
            )
    return results


def emissions_failure(report: SessionReport, max_g: float) -> str | None:
    """The failure line when the session emitted more than ``max_g`` grams CO2e."""
    if report.emissions_g <= max_g:
        return None
    return (
        f"carbon limit exceeded: the session emitted {format_mass(report.emissions_g)} CO2e, over "
        f"the {format_mass(max_g)} limit of --carbon-max-emissions"
    )
