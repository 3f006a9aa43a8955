"""Turn counter deltas and the session power model into per-test and session energy.

Model (no hardware counter): CPU power = idle share × full power of the counted vCPUs, plus the
rest of a vCPU's power for every CPU-second used. A test pays its CPU-seconds at the active rate
and its wall time at the idle and RAM rates, divided among the workers running at the same time.
With RAPL or NVML, the measured joules replace the model for that component. Whatever no test
used (collection, session fixtures, plugin work) is *unattributed*, so tests + unattributed =
session, exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, final

from pytest_carbon.meter.spans import PHASE_CODES, PHASE_NAMES, SpanTable
from pytest_carbon.report.model import (
    METHOD_MODEL,
    METHOD_NVML,
    METHOD_RAPL,
    Energy,
    MeasuredTest,
    PhaseFigures,
    PhaseRecord,
    PowerModel,
    TestRecord,
    energy_of_tests,
)

J_PER_KWH: Final = 3.6e6

#: ``[wall s, cpu s, rapl J or None, gpu J or None]`` — one phase, as measured.
Delta = Sequence[Any]


@dataclass(frozen=True)
class Rates:
    """The powers attribution charges, derived once from the power model."""

    cpu_active_w: float
    cpu_base_w: float
    ram_w: float
    pue: float

    @classmethod
    def from_model(cls, power: PowerModel) -> Rates:
        """Rates of a power model: active W per busy vCPU, idle W of all counted vCPUs, RAM W."""
        return cls(
            cpu_active_w=(1.0 - power.cpu_idle_fraction) * power.cpu_watts_per_vcpu,
            cpu_base_w=power.cpu_idle_fraction * power.cpu_watts,
            ram_w=power.ram_watts,
            pue=power.pue,
        )


def energy_of(delta: Delta, rates: Rates, share: float = 1.0) -> Energy:
    """Energy of one measured span; ``share`` is this process's part of machine-level power."""
    return span_energy(float(delta[0]), float(delta[1]), delta[2], delta[3], rates, share)


def span_energy(
    wall_s: float,
    cpu_s: float,
    rapl_j: float | None,
    gpu_j: float | None,
    rates: Rates,
    share: float = 1.0,
) -> Energy:
    """Energy of a span from its wall and CPU seconds and the joules counted by RAPL and NVML."""
    if rapl_j is not None:
        cpu_j = float(rapl_j) * share
    else:
        cpu_j = rates.cpu_active_w * cpu_s + rates.cpu_base_w * wall_s * share
    ram_j = rates.ram_w * wall_s * share
    gpu = float(gpu_j) * share if gpu_j is not None else 0.0
    scale = rates.pue / J_PER_KWH
    return Energy(cpu_j * scale, ram_j * scale, gpu * scale)


#: A test's methods as bits: the CPU-time model, RAPL, NVML; named CPU methods first.
_MODEL, _RAPL, _NVML = 1, 2, 4
_METHODS: Final = {
    bits: "+".join(
        name
        for bit, name in ((_MODEL, METHOD_MODEL), (_RAPL, METHOD_RAPL), (_NVML, METHOD_NVML))
        if bits & bit
    )
    for bits in range(8)
}


def _method_bits(rapl_j: float | None, gpu_j: float | None) -> int:
    return (_RAPL if rapl_j is not None else _MODEL) | (_NVML if gpu_j is not None else 0)


def method_of(delta: Delta) -> str:
    """Which method produced a span's figure: ``rapl`` or the CPU-time model, plus ``nvml``."""
    return _METHODS[_method_bits(delta[2], delta[3])]


@final
class Pricer:
    """Prices measured spans into test records, with the rates and grid intensity of a session.

    Built for the end of a session of 100,000 tests: one pass over the spans, plain numbers per
    phase, one record per test whose phase objects are only built if something reads them
    (:class:`~pytest_carbon.report.model.MeasuredTest`). Every figure is the same, to the last
    digit, as :meth:`phase` gives for the same span.
    """

    def __init__(self, rates: Rates, g_per_kwh: float, share: float = 1.0) -> None:
        self.rates = rates
        self.g_per_kwh = g_per_kwh
        self.share = share

    def phase(
        self, wall_s: float, cpu_s: float, rapl_j: float | None, gpu_j: float | None
    ) -> PhaseRecord:
        """One priced phase."""
        energy = span_energy(wall_s, cpu_s, rapl_j, gpu_j, self.rates, self.share)
        return PhaseRecord(wall_s, cpu_s, energy, energy.total_kwh * self.g_per_kwh)

    def tests(self, tables: Iterable[SpanTable], outcomes: Mapping[str, str]) -> list[TestRecord]:
        """One record per test, in the order tests first ran; a phase run twice is summed."""
        tables = list(tables)
        if all(is_regular(table) for table in tables) and _disjoint(tables):
            return [record for table in tables for record in self._price_regular(table, outcomes)]
        return self._price_any(tables, outcomes)

    def _price_regular(self, table: SpanTable, outcomes: Mapping[str, str]) -> list[TestRecord]:
        """The tests of a :func:`is_regular` table, a test (three spans) at a time.

        The model is inlined, operation by operation as :func:`span_energy` and
        :meth:`MeasuredTest.totals` compute it, so the figures are the same, to the last digit,
        as the general path gives.
        """
        rates, share, g = self.rates, self.share, self.g_per_kwh
        active, base, ram, scale = rates.cpu_active_w, rates.cpu_base_w, rates.ram_w, rates.pue
        scale = scale / J_PER_KWH
        gpu = 0.0 * scale
        gpu_sum = 0.0 + gpu + gpu + gpu
        worker, get_outcome, clock = table.worker, outcomes.get, table.clock
        columns = [table.nodeids[0::3], *(clock[at::12] for at in range(12))]
        records: list[TestRecord] = []
        add_record = records.append
        for nodeid, *ends in zip(*columns, strict=True):
            (ws0, cs0, we0, ce0, ws1, cs1, we1, ce1, ws2, cs2, we2, ce2) = ends
            wall0, wall1, wall2 = (we0 - ws0) / 1e9, (we1 - ws1) / 1e9, (we2 - ws2) / 1e9
            cpu0 = (ce0 - cs0) / 1e9 if ce0 > cs0 else 0.0
            cpu1 = (ce1 - cs1) / 1e9 if ce1 > cs1 else 0.0
            cpu2 = (ce2 - cs2) / 1e9 if ce2 > cs2 else 0.0
            cpu_kwh0 = (active * cpu0 + base * wall0 * share) * scale
            cpu_kwh1 = (active * cpu1 + base * wall1 * share) * scale
            cpu_kwh2 = (active * cpu2 + base * wall2 * share) * scale
            ram_kwh0 = ram * wall0 * share * scale
            ram_kwh1 = ram * wall1 * share * scale
            ram_kwh2 = ram * wall2 * share * scale
            grams0 = (cpu_kwh0 + ram_kwh0 + gpu) * g
            grams1 = (cpu_kwh1 + ram_kwh1 + gpu) * g
            grams2 = (cpu_kwh2 + ram_kwh2 + gpu) * g
            add_record(
                MeasuredTest(
                    nodeid,
                    nodeid.partition("::")[0],
                    get_outcome(nodeid, "unknown"),
                    METHOD_MODEL,
                    worker=worker,
                    figures=(
                        "setup",
                        wall0,
                        cpu0,
                        cpu_kwh0,
                        ram_kwh0,
                        gpu,
                        grams0,
                        "call",
                        wall1,
                        cpu1,
                        cpu_kwh1,
                        ram_kwh1,
                        gpu,
                        grams1,
                        "teardown",
                        wall2,
                        cpu2,
                        cpu_kwh2,
                        ram_kwh2,
                        gpu,
                        grams2,
                    ),  # fmt: skip
                    totals=(
                        0.0 + wall0 + wall1 + wall2,
                        0.0 + cpu0 + cpu1 + cpu2,
                        0.0 + cpu_kwh0 + cpu_kwh1 + cpu_kwh2,
                        0.0 + ram_kwh0 + ram_kwh1 + ram_kwh2,
                        gpu_sum,
                        0.0 + grams0 + grams1 + grams2,
                    ),
                )
            )
        return records

    def _price_any(self, tables: list[SpanTable], outcomes: Mapping[str, str]) -> list[TestRecord]:
        """The tests of any tables: reruns, missing phases, energy counters, one span at a time."""
        # Per test: [worker, method bits, setup, call, teardown], each phase as PhaseFigures.
        found: dict[str, list[Any]] = {}
        for table in tables:
            if table.energy is None:
                self._price_clocks(table, found)
            else:
                self._price_measured(table, found)
        records: list[TestRecord] = []
        for nodeid, (worker, bits, setup, call, teardown) in found.items():
            if setup is not None and call is not None and teardown is not None:
                figures: tuple[Any, ...] = setup + call + teardown
            else:
                figures = sum((phase for phase in (setup, call, teardown) if phase), ())
            cut = nodeid.find("::")
            records.append(
                MeasuredTest(
                    nodeid,
                    nodeid if cut < 0 else nodeid[:cut],
                    outcomes.get(nodeid, "unknown"),
                    _METHODS[bits],
                    worker=worker,
                    figures=figures,
                )
            )
        return records

    def _price_clocks(self, table: SpanTable, found: dict[str, list[Any]]) -> None:
        """The spans of a table without energy counters: the CPU-time model, inlined."""
        rates, share, g = self.rates, self.share, self.g_per_kwh
        active, base, ram, scale = rates.cpu_active_w, rates.cpu_base_w, rates.ram_w, rates.pue
        scale = scale / J_PER_KWH
        worker, names, clock = table.worker, PHASE_NAMES, table.clock
        columns = (table.nodeids, table.phases, clock[0::4], clock[1::4], clock[2::4], clock[3::4])
        for nodeid, code, wall_start, cpu_start, wall_end, cpu_end in zip(*columns, strict=True):
            wall = (wall_end - wall_start) / 1e9
            cpu = (cpu_end - cpu_start) / 1e9 if cpu_end > cpu_start else 0.0
            # As span_energy computes it, operation by operation.
            cpu_kwh = (active * cpu + base * wall * share) * scale
            ram_kwh = ram * wall * share * scale
            gpu_kwh = 0.0 * scale
            figures = (
                names[code],
                wall,
                cpu,
                cpu_kwh,
                ram_kwh,
                gpu_kwh,
                (cpu_kwh + ram_kwh + gpu_kwh) * g,
            )
            entry = found.get(nodeid)
            if entry is None:
                entry = [worker, _MODEL, None, None, None]
                entry[2 + code] = figures
                found[nodeid] = entry
            else:
                known = entry[2 + code]
                entry[2 + code] = figures if known is None else _added(known, figures)

    def _price_measured(self, table: SpanTable, found: dict[str, list[Any]]) -> None:
        """The spans of a table with RAPL or NVML readings (slower, rarer)."""
        worker = table.worker
        for nodeid, name, wall, cpu, rapl, gpu in table.deltas():
            phase = self.phase(wall, cpu, rapl, gpu)
            energy = phase.energy
            figures = (
                name,
                phase.wall_s,
                phase.cpu_s,
                energy.cpu_kwh,
                energy.ram_kwh,
                energy.gpu_kwh,
                phase.emissions_g,
            )
            entry = found.get(nodeid)
            if entry is None:
                entry = found[nodeid] = [worker, 0, None, None, None]
            code = 2 + PHASE_CODES[name]
            known = entry[code]
            entry[code] = figures if known is None else _added(known, figures)
            entry[1] |= _method_bits(rapl, gpu)


#: The phases of a test that ran once each, in order: the layout of nearly every table.
_ONE_RUN: Final = bytes(range(len(PHASE_NAMES)))


def is_regular(table: SpanTable) -> bool:
    """A table without energy counters where every test has setup, call and teardown, once each,
    one after the other (the common case, priced column by column)."""
    spans = len(table)
    if table.energy is not None or spans % 3 or table.phases != _ONE_RUN * (spans // 3):
        return False
    nodeids = table.nodeids
    return nodeids[0::3] == nodeids[1::3] == nodeids[2::3]


def _disjoint(tables: list[SpanTable]) -> bool:
    """No test appears twice among the regular ``tables``."""
    firsts = [table.nodeids[0::3] for table in tables]
    return len(set().union(*firsts)) == sum(map(len, firsts))


def _added(a: PhaseFigures, b: PhaseFigures) -> PhaseFigures:
    """Two runs of the same phase (as with reruns), added up."""
    return (a[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + b[6])


def unattributed(session: Energy, tests: Iterable[TestRecord]) -> tuple[Energy, float]:
    """Session energy no test used, per component, and the largest shortfall (kWh) clamped to 0.

    A negative remainder means tests were charged more than the session measured (possible
    with per-test hardware counters shared between workers); it is clamped and returned so the
    caller can warn.
    """
    rest = session - energy_of_tests(tests)
    parts = (rest.cpu_kwh, rest.ram_kwh, rest.gpu_kwh)
    overshoot = -min(0.0, *parts)
    return Energy(*(max(part, 0.0) for part in parts)), overshoot


def outcome_of(reports: Iterable[tuple[str, str, bool]]) -> str:
    """The test's outcome from its phase reports ``(when, outcome, was_xfail)``."""
    result = "passed"
    for when, outcome, was_xfail in reports:
        result = next_outcome(result, when, outcome, was_xfail)
    return result


def next_outcome(result: str, when: str, outcome: str, was_xfail: bool) -> str:
    """The outcome of a test so far, after one more phase report."""
    if when == "call":
        if was_xfail:
            return "xfailed" if outcome == "skipped" else "xpassed"
        if outcome in ("failed", "skipped"):
            return outcome
    elif outcome == "failed":
        return "error"
    elif outcome == "skipped" and when == "setup":
        return "xfailed" if was_xfail else "skipped"
    return result
