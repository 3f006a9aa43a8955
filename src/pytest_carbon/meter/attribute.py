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
from typing import Any, Final

from pytest_carbon.report.model import (
    METHOD_MODEL,
    METHOD_NVML,
    METHOD_RAPL,
    Energy,
    PhaseRecord,
    PowerModel,
    TestRecord,
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
    wall_s, cpu_s, rapl_j, gpu_j = float(delta[0]), float(delta[1]), delta[2], delta[3]
    if rapl_j is not None:
        cpu_j = float(rapl_j) * share
    else:
        cpu_j = rates.cpu_active_w * cpu_s + rates.cpu_base_w * wall_s * share
    ram_j = rates.ram_w * wall_s * share
    gpu = float(gpu_j) * share if gpu_j is not None else 0.0
    scale = rates.pue / J_PER_KWH
    return Energy(cpu_j * scale, ram_j * scale, gpu * scale)


def method_of(delta: Delta) -> str:
    """Which method produced a span's figure: ``rapl`` or the CPU-time model, plus ``nvml``."""
    method = METHOD_RAPL if delta[2] is not None else METHOD_MODEL
    if delta[3] is not None:
        method += "+" + METHOD_NVML
    return method


def build_test(
    raw: Mapping[str, Any], outcome: str, rates: Rates, g_per_kwh: float, share: float
) -> TestRecord:
    """A :class:`TestRecord` from one test's raw phase deltas."""
    phases: dict[str, PhaseRecord] = {}
    methods: set[str] = set()
    for name, delta in raw["phases"].items():
        energy = energy_of(delta, rates, share)
        phases[name] = PhaseRecord(
            wall_s=float(delta[0]),
            cpu_s=float(delta[1]),
            energy=energy,
            emissions_g=energy.total_kwh * g_per_kwh,
        )
        methods.update(method_of(delta).split("+"))
    return TestRecord(
        nodeid=str(raw["nodeid"]),
        path=str(raw.get("path") or str(raw["nodeid"]).split("::")[0]),
        outcome=outcome,
        method="+".join(sorted(methods)) or METHOD_MODEL,
        phases=phases,
        worker=raw.get("worker"),
    )


def unattributed(session: Energy, tests: Iterable[TestRecord]) -> tuple[Energy, float]:
    """Session energy no test used, per component, and the largest shortfall (kWh) clamped to 0.

    A negative remainder means tests were charged more than the session measured (possible
    with per-test hardware counters shared between workers); it is clamped and returned so the
    caller can warn.
    """
    attributed = Energy()
    for test in tests:
        attributed = attributed + test.energy
    rest = session - attributed
    parts = (rest.cpu_kwh, rest.ram_kwh, rest.gpu_kwh)
    overshoot = -min(0.0, *parts)
    return Energy(*(max(part, 0.0) for part in parts)), overshoot


def outcome_of(reports: Iterable[tuple[str, str, bool]]) -> str:
    """The test's outcome from its phase reports ``(when, outcome, was_xfail)``."""
    result = "passed"
    for when, outcome, was_xfail in reports:
        if when == "call":
            if was_xfail:
                result = "xfailed" if outcome == "skipped" else "xpassed"
            elif outcome in ("failed", "skipped"):
                result = outcome
        elif outcome == "failed":
            result = "error"
        elif outcome == "skipped" and when == "setup":
            result = "xfailed" if was_xfail else "skipped"
    return result
