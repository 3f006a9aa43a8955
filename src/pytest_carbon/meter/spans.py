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
from time import perf_counter_ns, process_time_ns
from typing import Any, Final, final

from pytest_carbon.meter.counters import Counters, Reading, children_cpu_ns

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


@final
class PhaseRecorder:
    """Records every phase of every test of this process (the hot path of the plugin).

    ``start()`` is called when a phase begins and ``stop(nodeid, phase, start)`` when it ends.
    Without energy counters, the CPU time of ended child processes is read when a phase ends
    and carried to the start of the next one: children are reaped inside test code, not in
    pytest's bookkeeping between phases, and this saves a system call per phase.
    """

    def __init__(self, counters: Counters, worker: str | None = None) -> None:
        self.counters = counters
        self.worker = worker
        self.nodeids: list[str] = []
        self.phases = bytearray()
        self.clock: array[int] = array("q")
        self.energy: array[int] | None = array("q") if counters.has_energy else None
        self._children_ns = children_cpu_ns()

    def start(self) -> Reading:
        """The reading at the start of a phase."""
        if self.energy is not None:
            return self.counters.read()
        return perf_counter_ns(), process_time_ns() + self._children_ns, None, None

    def stop(self, nodeid: str, phase: int, start: Reading) -> None:
        """Close the span of ``phase`` (a code: :data:`SETUP`, :data:`CALL`, :data:`TEARDOWN`)."""
        if self.energy is not None:
            end = self.counters.read()
            self.energy.extend(
                (
                    UNKNOWN if start[2] is None else start[2],
                    UNKNOWN if end[2] is None else end[2],
                    UNKNOWN if start[3] is None else start[3],
                    UNKNOWN if end[3] is None else end[3],
                )
            )
            self.clock.extend((start[0], start[1], end[0], end[1]))
        else:
            wall, cpu = perf_counter_ns(), process_time_ns()
            self._children_ns = children = children_cpu_ns()
            self.clock.extend((start[0], start[1], wall, cpu + children))
        self.nodeids.append(nodeid)
        self.phases.append(phase)

    def table(self) -> SpanTable:
        """Everything recorded so far (a snapshot)."""
        return SpanTable(
            worker=self.worker,
            nodeids=list(self.nodeids),
            phases=bytes(self.phases),
            clock=array("q", self.clock),
            energy=None if self.energy is None else array("q", self.energy),
        )

    def phases_of(self, nodeid: str) -> dict[str, list[float | None]]:
        """The phases measured so far of ``nodeid``, the test running now (reruns summed)."""
        first = len(self.nodeids)
        while first > 0 and self.nodeids[first - 1] == nodeid:
            first -= 1
        recent = SpanTable(
            worker=self.worker,
            nodeids=self.nodeids[first:],
            phases=bytes(self.phases[first:]),
            clock=self.clock[4 * first :],
            energy=None if self.energy is None else self.energy[4 * first :],
        )
        phases: dict[str, list[float | None]] = {}
        for _, phase, wall, cpu, rapl, gpu in recent.deltas():
            known = phases.get(phase)
            measured: list[float | None] = [wall, cpu, rapl, gpu]
            phases[phase] = (
                measured
                if known is None
                else [
                    None if a is None or b is None else a + b
                    for a, b in zip(known, measured, strict=True)
                ]
            )
        return phases
