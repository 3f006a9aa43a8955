"""Per-phase counter readings, stored in flat arrays until the session is priced.

The hot path appends integers to typed arrays and a node id to a list: per test it leaves behind
no object that Python's garbage collector tracks, so a session of 100,000 tests does not make
every later collection slower (a list of tuples would). Readings stay raw, in integer
nanoseconds, µJ and mJ, and are turned into seconds and joules once, when the session ends.

A *span* is one phase of one test: ``(nodeid, phase, start reading, end reading)``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from struct import Struct
from time import perf_counter_ns, process_time_ns
from typing import Any, Final, final

from pytest_carbon.meter.counters import Counters, Reading, children_usage

#: Phase names by their code in :attr:`SpanTable.phases`.
PHASE_NAMES: Final = ("setup", "call", "teardown")
PHASE_CODES: Final = {name: code for code, name in enumerate(PHASE_NAMES)}
SETUP: Final = 0
CALL: Final = 1
TEARDOWN: Final = 2

#: An energy counter that was not readable at one end of a span.
UNKNOWN: Final = -1

#: One span's figures: ``(nodeid, phase, wall s, cpu s, rapl J or None, gpu J or None)``.
SpanDelta = tuple[str, str, float, float, "float | None", "float | None"]


@dataclass(frozen=True)
class SpanTable:
    """The spans of one process, column by column.

    ``clock`` holds four integers per span (wall start, CPU start, wall end, CPU end, in ns);
    ``energy``, present only when an energy counter was read, four more (RAPL start and end in
    µJ, GPU start and end in mJ; :data:`UNKNOWN` where a counter gave no value).
    """

    worker: str | None
    nodeids: list[str]
    phases: bytes
    clock: array[int]
    energy: array[int] | None = None

    def __post_init__(self) -> None:
        spans = len(self.nodeids)
        if len(self.phases) != spans or len(self.clock) != 4 * spans:
            raise ValueError(f"span columns disagree: {spans} node ids, {len(self.clock)} clocks")
        if self.energy is not None and len(self.energy) != 4 * spans:
            raise ValueError(
                f"span columns disagree: {spans} node ids, {len(self.energy)} energies"
            )
        if any(code >= len(PHASE_NAMES) for code in self.phases):
            raise ValueError("unknown phase code in spans")

    def __len__(self) -> int:
        return len(self.nodeids)

    def test_count(self) -> int:
        """How many distinct tests these spans belong to."""
        return len(set(self.nodeids))

    def deltas(self) -> Iterator[SpanDelta]:
        """Each span as seconds and joules, in the order the phases ran."""
        clock, energy, names = self.clock, self.energy, PHASE_NAMES
        for index, nodeid in enumerate(self.nodeids):
            at = 4 * index
            wall = (clock[at + 2] - clock[at]) / 1e9
            cpu = max(clock[at + 3] - clock[at + 1], 0) / 1e9
            rapl = gpu = None
            if energy is not None:
                rapl = _counted(energy[at], energy[at + 1], 1e6)
                gpu = _counted(energy[at + 2], energy[at + 3], 1e3)
            yield nodeid, names[self.phases[index]], wall, cpu, rapl, gpu

    def to_payload(self) -> dict[str, Any]:
        """Plain data for an xdist worker's output: the arrays as little-endian bytes."""
        return {
            "worker": self.worker,
            "nodeids": list(self.nodeids),
            "phases": bytes(self.phases),
            "clock": _to_bytes(self.clock),
            "energy": None if self.energy is None else _to_bytes(self.energy),
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> SpanTable:
        """The table an xdist worker sent; raise ``ValueError`` when it is not one."""
        nodeids = data.get("nodeids")
        phases = data.get("phases")
        if not isinstance(nodeids, list) or not all(isinstance(n, str) for n in nodeids):
            raise ValueError("spans without node ids")
        if not isinstance(phases, bytes):
            raise ValueError("spans without phases")
        worker = data.get("worker")
        energy = data.get("energy")
        return cls(
            worker=str(worker) if worker is not None else None,
            nodeids=nodeids,
            phases=phases,
            clock=_from_bytes(data.get("clock")),
            energy=None if energy is None else _from_bytes(energy),
        )


def _counted(start: int, end: int, per_unit: float) -> float | None:
    if start == UNKNOWN or end == UNKNOWN:
        return None
    return (end - start) / per_unit


def _to_bytes(values: array[int]) -> bytes:
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array("q", values)  # pragma: no cover - big-endian hosts
    swapped.byteswap()  # pragma: no cover
    return swapped.tobytes()  # pragma: no cover


def _from_bytes(raw: Any) -> array[int]:
    if not isinstance(raw, bytes) or len(raw) % 8:
        raise ValueError("span counters are not a sequence of 64-bit integers")
    values = array("q")
    values.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        values.byteswap()
    return values


#: One span's four integers, as the recorder appends them (native byte order, as ``array``).
_SPAN: Final = Struct("=4q")


@final
class PhaseRecorder:
    """Records every phase of every test of this process (the hot path of the plugin).

    Spans are chained: ``begin(nodeid, phase)`` is called when a phase starts and closes the
    span of the phase before it at the same reading; ``end()`` closes the last phase of a test.
    That is one reading per phase boundary, and none between tests. Without energy counters,
    the CPU time of ended child processes is read only where a span closes, and carried to a
    span that opens after a gap: children are reaped inside test code, not between tests.

    A span's four integers are packed into a ``bytearray`` (cheaper than appending Python
    integers to an ``array``) and turned into an array by :meth:`table`.
    """

    def __init__(self, counters: Counters, worker: str | None = None) -> None:
        self.counters = counters
        self.worker = worker
        self.nodeids: list[str] = []
        self.phases = bytearray()
        self._clock = bytearray()
        self._energy: bytearray | None = bytearray() if counters.has_energy else None
        # Bound once: the hot path looks nothing up.
        self._pack = _SPAN.pack
        self._add_clock = self._clock.extend
        self._add_nodeid = self.nodeids.append
        self._add_phase = self.phases.append
        usage = children_usage()
        self._children_s = usage.ru_utime + usage.ru_stime
        self._children_ns = int(self._children_s * 1e9)
        # The open span: its test (None when no span is open), phase and starting reading.
        self._nodeid: str | None = None
        self._phase = 0
        self._wall = 0
        self._cpu = 0
        self._reading: Reading | None = None

    def begin(self, nodeid: str, phase: int) -> None:
        """``phase`` (:data:`SETUP`, :data:`CALL`, :data:`TEARDOWN`) of ``nodeid`` starts now."""
        if self._energy is not None:
            self._close_with_energy(self.counters.read(), nodeid, phase)
            return
        wall = perf_counter_ns()
        cpu = process_time_ns()
        open_nodeid = self._nodeid
        if open_nodeid is not None:
            usage = children_usage()
            children = usage.ru_utime + usage.ru_stime
            if children != self._children_s:  # rare: a child process was reaped
                self._children_s = children
                self._children_ns = int(children * 1e9)
            cpu += self._children_ns
            self._add_clock(self._pack(self._wall, self._cpu, wall, cpu))
            self._add_nodeid(open_nodeid)
            self._add_phase(self._phase)
        else:
            cpu += self._children_ns
        self._nodeid = nodeid
        self._phase = phase
        self._wall = wall
        self._cpu = cpu

    def end(self) -> None:
        """The open span (the last phase of a test) ends now; nothing happens when none is open."""
        open_nodeid = self._nodeid
        if open_nodeid is None:
            return
        if self._energy is not None:
            self._close_with_energy(self.counters.read(), None, 0)
            return
        wall = perf_counter_ns()
        cpu = process_time_ns()
        usage = children_usage()
        children = usage.ru_utime + usage.ru_stime
        if children != self._children_s:
            self._children_s = children
            self._children_ns = int(children * 1e9)
        self._add_clock(self._pack(self._wall, self._cpu, wall, cpu + self._children_ns))
        self._add_nodeid(open_nodeid)
        self._add_phase(self._phase)
        self._nodeid = None

    def _close_with_energy(self, reading: Reading, nodeid: str | None, phase: int) -> None:
        start, energy = self._reading, self._energy
        if self._nodeid is not None and start is not None and energy is not None:
            energy += self._pack(*_energy_span(start, reading))
            self._clock += self._pack(start[0], start[1], reading[0], reading[1])
            self.nodeids.append(self._nodeid)
            self.phases.append(self._phase)
        self._nodeid = nodeid
        self._phase = phase
        self._reading = reading

    def table(self) -> SpanTable:
        """Every span closed so far (a snapshot)."""
        return self._table(0, now=None)

    def phases_of(self, nodeid: str) -> dict[str, list[float | None]]:
        """The phases measured so far of ``nodeid``, the test running now (reruns summed).

        Its open span counts up to now.
        """
        first = len(self.nodeids)
        while first > 0 and self.nodeids[first - 1] == nodeid:
            first -= 1
        now = self.counters.read() if self._nodeid == nodeid else None
        found: dict[str, list[float | None]] = {}
        for _, phase, wall, cpu, rapl, gpu in self._table(first, now).deltas():
            known = found.get(phase)
            measured: list[float | None] = [wall, cpu, rapl, gpu]
            found[phase] = (
                measured
                if known is None
                else [
                    None if a is None or b is None else a + b
                    for a, b in zip(known, measured, strict=True)
                ]
            )
        return found

    def _table(self, first: int, now: Reading | None) -> SpanTable:
        """The spans from the ``first``-th on, and the open span up to ``now`` when given."""
        nodeids = self.nodeids[first:]
        phases = bytearray(self.phases[first:])
        clock = bytearray(self._clock[32 * first :])
        energy = None if self._energy is None else bytearray(self._energy[32 * first :])
        if now is not None and self._nodeid is not None:
            nodeids.append(self._nodeid)
            phases.append(self._phase)
            start = self._reading
            if energy is not None and start is not None:
                energy += _SPAN.pack(*_energy_span(start, now))
                clock += _SPAN.pack(start[0], start[1], now[0], now[1])
            else:
                clock += _SPAN.pack(self._wall, self._cpu, now[0], now[1])
        return SpanTable(
            worker=self.worker,
            nodeids=nodeids,
            phases=bytes(phases),
            clock=_array_of(clock),
            energy=None if energy is None else _array_of(energy),
        )


def _energy_span(start: Reading, end: Reading) -> tuple[int, int, int, int]:
    """RAPL start and end, GPU start and end: :data:`UNKNOWN` where a counter gave no value."""
    return (
        UNKNOWN if start[2] is None else start[2],
        UNKNOWN if end[2] is None else end[2],
        UNKNOWN if start[3] is None else start[3],
        UNKNOWN if end[3] is None else end[3],
    )


def _array_of(packed: bytes | bytearray) -> array[int]:
    values = array("q")
    values.frombytes(packed)
    return values
