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

from pytest_carbon.meter.spans import SpanTable
from pytest_carbon.report.model import (
    METHOD_MODEL,
    METHOD_NVML,
    METHOD_RAPL,
    Energy,
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

    Built for the end of a session of 100,000 tests: one pass over the spans, no intermediate
    structures.
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
        records: dict[str, TestRecord] = {}
        methods: dict[str, int] = {}
        phase_of = self.phase
        for table in tables:
            worker = table.worker
            for nodeid, name, wall, cpu, rapl, gpu in table.deltas():
                record = records.get(nodeid)
                if record is None:
                    record = records[nodeid] = TestRecord(
                        nodeid=nodeid,
                        path=nodeid.split("::", 1)[0],
                        outcome=outcomes.get(nodeid, "unknown"),
                        method=METHOD_MODEL,
                        worker=worker,
                    )
                    methods[nodeid] = 0
                phase = phase_of(wall, cpu, rapl, gpu)
                known = record.phases.get(name)
                record.phases[name] = phase if known is None else merge_phases(known, phase)
                methods[nodeid] |= _method_bits(rapl, gpu)
        for nodeid, record in records.items():
            record.method = _METHODS[methods[nodeid]]
        return list(records.values())


def merge_phases(a: PhaseRecord, b: PhaseRecord) -> PhaseRecord:
    """Two runs of the same phase (as with reruns), added up."""
    return PhaseRecord(
        a.wall_s + b.wall_s, a.cpu_s + b.cpu_s, a.energy + b.energy, a.emissions_g + b.emissions_g
    )


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
