"""Turn counter deltas and the session power model into per-test and session energy.

Model (no hardware counter): CPU power = idle share × full power of the counted vCPUs, plus the
rest of a vCPU's power for every CPU-second used. A test pays its CPU-seconds at the active rate
and its wall time at the idle and RAM rates, divided among the workers running at the same time.
With RAPL or NVML, the measured joules replace the model for that component. Whatever no test
used (collection, session fixtures, plugin work) is *unattributed*, so tests + unattributed =
session, exactly.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add, itemgetter, mul, sub, truediv
from typing import Any, Final, cast, final

from pytest_carbon.meter.spans import (
    CALL,
    END,
    PHASE_CODES,
    PHASE_NAMES,
    SETUP,
    TEARDOWN,
    SpanTable,
)
from pytest_carbon.report.model import (
    METHOD_MODEL,
    METHOD_NVML,
    METHOD_RAPL,
    Energy,
    MeasuredTest,
    PhaseFigures,
    PhaseRecord,
    PowerModel,
    TestColumns,
    TestRecord,
    TestTable,
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

    def tests(self, tables: Iterable[SpanTable], outcomes: Mapping[str, str]) -> TestTable:
        """Every test, in the order tests first ran; a phase run twice is summed.

        Without energy counters and with every test in one place (no reruns), the tests that ran
        their three phases once each are priced column by column, run by run of consecutive
        such tests (:class:`~pytest_carbon.report.model.TestColumns`), and the others (skipped
        in setup, interrupted) one span at a time.
        """
        tables = list(tables)
        if any(table.energy is not None for table in tables):
            return TestTable([self._price_any(tables, outcomes)])
        regular = [is_regular(table) for table in tables]
        if all(regular):
            if not _disjoint(tables):  # a test in two places: add its runs up
                return TestTable([self._price_any(tables, outcomes)])
            return TestTable(self._price_regular(table, outcomes) for table in tables)
        layouts = [
            None if simple else _Layout(table)
            for table, simple in zip(tables, regular, strict=True)
        ]
        firsts = [
            nodeid
            for table, layout in zip(tables, layouts, strict=True)
            for nodeid in (table.nodeids[0::4] if layout is None else layout.first_nodeids)
        ]
        if len(set(firsts)) != len(firsts):  # a test in two places: add its runs up
            return TestTable([self._price_any(tables, outcomes)])
        parts: list[TestColumns | list[TestRecord]] = []
        for table, layout in zip(tables, layouts, strict=True):
            if layout is None:
                parts.append(self._price_regular(table, outcomes))
                continue
            clock = table.cpu_clock()
            odd = {
                record.nodeid: record
                for record in self._price_any([layout.part(table, clock, layout.odd)], outcomes)
            }
            for regular_run, first, last in layout.pieces:
                if regular_run:
                    parts.append(
                        self._price_regular(layout.part(table, clock, [(first, last)]), outcomes)
                    )
                    continue
                record = odd.get(table.nodeids[first] or "")
                if record is None:  # a test with no span ended (only an open phase): no record
                    continue
                if parts and isinstance(parts[-1], list):
                    parts[-1].append(record)
                else:
                    parts.append([record])
        return TestTable(parts)

    def _price_regular(self, table: SpanTable, outcomes: Mapping[str, str]) -> TestColumns:
        """The tests of a :func:`is_regular` table, a test (four boundaries) at a time.

        A test's totals are the model applied to its whole span, from its setup's boundary to
        its end, with the model's constants folded together (the model is linear in wall and CPU
        time, so they are the sums of its phases up to rounding). Its phases are priced only if
        something reads them (:class:`RegularFigures`).
        """
        rates, share, g = self.rates, self.share, self.g_per_kwh
        scale = rates.pue / J_PER_KWH / 1e9  # kWh of a watt for a nanosecond
        per_cpu_ns = rates.cpu_active_w * scale
        per_wall_ns = rates.cpu_base_w * share * scale
        ram_per_wall_ns = rates.ram_w * share * scale
        clock = table.cpu_clock()
        nodeids = cast(list[str], table.nodeids[0::4])  # a regular table's setups: never END
        # Column by column, in C: map with operators runs no Python code per test.
        wall_ns = list(map(sub, clock[6::8], clock[0::8]))
        cpu_ns = list(map(max, map(sub, clock[7::8], clock[1::8]), repeat(0)))
        wall = list(map(truediv, wall_ns, repeat(1e9)))
        cpu = list(map(truediv, cpu_ns, repeat(1e9)))
        cpu_kwh = list(
            map(add, map(mul, repeat(per_cpu_ns), cpu_ns), map(mul, repeat(per_wall_ns), wall_ns))
        )
        ram_kwh = list(map(mul, repeat(ram_per_wall_ns), wall_ns))
        grams = list(map(mul, map(add, cpu_kwh, ram_kwh), repeat(g)))
        return TestColumns(
            nodeids,
            list(map(itemgetter(0), map(str.partition, nodeids, repeat("::")))),
            list(map(outcomes.get, nodeids, repeat("unknown"))),
            METHOD_MODEL,
            table.worker,
            (wall, cpu, cpu_kwh, ram_kwh, [0.0] * len(nodeids), grams),
            RegularFigures(self, clock),
        )

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
        worker, names, clock = table.worker, PHASE_NAMES, table.cpu_clock()
        # A boundary with the next one's readings (the last boundary has none: zip stops).
        columns = (table.nodeids, table.codes, clock[0::2], clock[1::2], clock[2::2], clock[3::2])
        for nodeid, code, wall_start, cpu_start, wall_end, cpu_end in zip(*columns, strict=False):
            if nodeid is None:  # END: no phase starts here
                continue
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


@final
class RegularFigures:
    """The phases of the tests of a regular table, priced when a test's phases are first read.

    The CPU-time model is inlined, operation by operation as :func:`span_energy` computes it,
    so each phase has the same figures, to the last digit, as the general path gives.
    """

    def __init__(self, pricer: Pricer, clock: array[int]) -> None:
        self.pricer = pricer
        self.clock = clock

    def figures(self, at: int) -> tuple[Any, ...]:
        """The flat figures (:data:`PhaseFigures` of setup, call, teardown) of the table's
        ``at``-th test."""
        rates, share, g = self.pricer.rates, self.pricer.share, self.pricer.g_per_kwh
        active, base, ram = rates.cpu_active_w, rates.cpu_base_w, rates.ram_w
        scale = rates.pue / J_PER_KWH
        gpu = 0.0 * scale
        readings = self.clock[8 * at : 8 * at + 8]
        figures: list[Any] = []
        for name, index in (("setup", 0), ("call", 2), ("teardown", 4)):
            wall_start, cpu_start, wall_end, cpu_end = readings[index : index + 4]
            wall = (wall_end - wall_start) / 1e9
            cpu = (cpu_end - cpu_start) / 1e9 if cpu_end > cpu_start else 0.0
            cpu_kwh = (active * cpu + base * wall * share) * scale
            ram_kwh = ram * wall * share * scale
            figures += (name, wall, cpu, cpu_kwh, ram_kwh, gpu, (cpu_kwh + ram_kwh + gpu) * g)
        return tuple(figures)


#: The boundaries of a test whose phases ran once each, in order: the layout of nearly every
#: table.
_ONE_RUN: Final = bytes((SETUP, CALL, TEARDOWN, END))


def is_regular(table: SpanTable) -> bool:
    """A table without energy counters where every test has setup, call and teardown, once each,
    one after the other (the common case, priced column by column)."""
    codes = table.codes
    if table.energy is not None or len(codes) % 4 or codes != _ONE_RUN * (len(codes) // 4):
        return False
    nodeids = table.nodeids
    return nodeids[0::4] == nodeids[1::4] == nodeids[2::4]


@final
class _Layout:
    """A table's tests, cut at their END boundaries into runs of regular tests (setup, call and
    teardown once each, as :func:`is_regular`) and single other tests."""

    def __init__(self, table: SpanTable) -> None:
        codes, nodeids = table.codes, table.nodeids
        segments = codes.split(bytes((END,)))
        if codes.endswith(bytes((END,))):
            segments.pop()  # nothing after the last END
        starts = [0, *accumulate(len(segment) + 1 for segment in segments[:-1])]
        #: The node id of each test, where it began (a stray END begins none).
        self.first_nodeids = [
            nodeids[start] for start, segment in zip(starts, segments, strict=True) if segment
        ]
        #: ``(regular, first boundary, boundary after the last)`` in the order tests ran.
        self.pieces: list[tuple[bool, int, int]] = []
        #: The boundary ranges of the tests that are not regular.
        self.odd: list[tuple[int, int]] = []
        one_run = _ONE_RUN[:3]
        for start, segment in zip(starts, segments, strict=True):
            if not segment:
                continue  # a stray END: no test
            end = start + len(segment) + 1
            regular = (
                segment == one_run
                and end <= len(codes)
                and nodeids[start] == nodeids[start + 1] == nodeids[start + 2]
            )
            if regular and self.pieces and self.pieces[-1][0]:
                self.pieces[-1] = (True, self.pieces[-1][1], end)
            else:
                self.pieces.append((regular, start, end))
            if not regular:
                self.odd.append((start, min(end, len(codes))))

    @staticmethod
    def part(table: SpanTable, clock: array[int], ranges: list[tuple[int, int]]) -> SpanTable:
        """The boundaries of ``ranges`` of ``table``, with ``clock`` (children's CPU added)."""
        codes = b"".join(table.codes[first:last] for first, last in ranges)
        nodeids = [nodeid for first, last in ranges for nodeid in table.nodeids[first:last]]
        readings = array("q")
        for first, last in ranges:
            readings += clock[2 * first : 2 * last]
        return SpanTable(table.worker, nodeids, codes, readings)


def _disjoint(tables: list[SpanTable]) -> bool:
    """No test appears twice among the regular ``tables``."""
    firsts = [table.nodeids[0::4] for table in tables]
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
