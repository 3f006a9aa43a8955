"""Per-phase counter readings, stored in flat arrays until the session is priced.

The hot path appends integers to a byte array, a node id to a list and a code to another byte
array: per test it leaves behind no object that Python's garbage collector tracks, so a session
of 100,000 tests does not make every later collection slower (a list of tuples would). Readings
stay raw, in integer nanoseconds, µJ and mJ, and are turned into seconds and joules once, when
the session ends.

A *boundary* is one reading, taken when a phase of a test starts or when the test ends. A *span*
is one phase of one test: from its boundary to the next one.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from operator import and_, eq, is_not, mul, not_
from struct import Struct
from time import perf_counter_ns, process_time_ns
from typing import Any, Final, cast, final

from pytest_carbon.meter.counters import Counters, children_usage

#: Phase names by their code in :attr:`SpanTable.codes`.
PHASE_NAMES: Final = ("setup", "call", "teardown")
PHASE_CODES: Final = {name: code for code, name in enumerate(PHASE_NAMES)}
SETUP: Final = 0
CALL: Final = 1
TEARDOWN: Final = 2
#: The code of a boundary that ends a test (its node id is None).
END: Final = 3

#: An energy counter that was not readable at a boundary.
UNKNOWN: Final = -1

#: One span's figures: ``(nodeid, phase, wall s, cpu s, rapl J or None, gpu J or None)``.
SpanDelta = tuple[str, str, float, float, "float | None", "float | None"]


@dataclass(frozen=True)
class SpanTable:
    """The phase boundaries of one process, column by column.

    Boundary ``i`` is a reading taken when phase ``codes[i]`` of ``nodeids[i]`` started, or, with
    the code :data:`END` and the node id None, when a test ended. ``clock`` holds two integers a
    boundary (wall and CPU, in ns); ``energy``, present only when an energy counter was read, two
    more (RAPL µJ and GPU mJ; :data:`UNKNOWN` where a counter gave no value). A phase's span runs
    from its boundary to the next one; a last boundary that is not an END is a phase not ended.

    ``reaped`` holds ``(i, ns)``: the CPU of child processes read at the END boundary ``i``
    (children are read once a test). It is shared among the phases of the test it ends in
    proportion to their wall time: a child works while the phase waiting for it does.
    """

    worker: str | None
    nodeids: list[str | None]
    codes: bytes
    clock: array[int]
    energy: array[int] | None = None
    reaped: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        boundaries = len(self.nodeids)
        if len(self.codes) != boundaries or len(self.clock) != 2 * boundaries:
            raise ValueError(
                f"span columns disagree: {boundaries} node ids, {len(self.clock)} clocks"
            )
        if self.energy is not None and len(self.energy) != 2 * boundaries:
            raise ValueError(
                f"span columns disagree: {boundaries} node ids, {len(self.energy)} energies"
            )
        if self.codes and max(self.codes) > END:
            raise ValueError("unknown phase code in spans")

    def __len__(self) -> int:
        """How many spans (ended phases) the table holds."""
        codes = self.codes
        return len(codes) - codes.count(END) - (1 if codes and codes[-1] != END else 0)

    def test_count(self) -> int:
        """How many distinct tests these spans belong to."""
        return len(set(self.nodeids) - {None})

    def cpu_clock(self) -> array[int]:
        """``clock`` with the children's CPU of :attr:`reaped` added where it belongs.

        A share is added to the CPU reading of every later boundary of its test, so that each
        phase's CPU grows by its own share and the phases after it keep theirs.
        """
        if not self.reaped:
            return self.clock
        clock = array("q", self.clock)
        codes = self.codes
        for end, reaped_ns in self.reaped:
            first = end
            while first > 0 and codes[first - 1] != END:
                first -= 1
                if codes[first] == SETUP:
                    break
            walls = [max(clock[2 * i + 2] - clock[2 * i], 0) for i in range(first, end)]
            if not walls:
                continue
            total = sum(walls)
            shares = [reaped_ns * wall // total for wall in walls] if total else [0] * len(walls)
            longest = max(range(len(walls)), key=walls.__getitem__)
            shares[longest] += reaped_ns - sum(shares)
            added = 0
            for offset, share in enumerate(shares, start=first + 1):
                added += share
                clock[2 * offset + 1] += added
        return clock

    def deltas(self) -> Iterator[SpanDelta]:
        """Each span as seconds and joules, in the order the phases ran."""
        clock, energy, names, codes = self.cpu_clock(), self.energy, PHASE_NAMES, self.codes
        for index, nodeid in enumerate(self.nodeids[:-1]):
            code = codes[index]
            if code == END or nodeid is None:
                continue
            at = 2 * index
            wall = (clock[at + 2] - clock[at]) / 1e9
            cpu = max(clock[at + 3] - clock[at + 1], 0) / 1e9
            rapl = gpu = None
            if energy is not None:
                rapl = _counted(energy[at], energy[at + 2], 1e6)
                gpu = _counted(energy[at + 1], energy[at + 3], 1e3)
            yield nodeid, names[code], wall, cpu, rapl, gpu

    def to_payload(self) -> dict[str, Any]:
        """Plain data for an xdist worker's output: the arrays as little-endian bytes.

        The node ids travel as one string (execnet encodes a string in C, but a list item by
        item in Python): each test's node id once, where its first boundary is (``starts``
        marks those boundaries), its characters counted in ``lengths``. The phases of one
        test share one node id object; an equal one read again (a rerun) is sent again.
        """
        nodeids = self.nodeids
        changes = map(is_not, nodeids, chain((None,), nodeids))  # not the previous one's
        starts = bytes(map(and_, changes, map(is_not, nodeids, repeat(None))))
        names = cast(list[str], list(compress(nodeids, starts)))
        return {
            "worker": self.worker,
            "names": "".join(names),
            "lengths": _to_bytes(array("q", map(len, names))),
            "starts": starts,
            "codes": bytes(self.codes),
            "clock": _to_bytes(self.clock),
            "energy": None if self.energy is None else _to_bytes(self.energy),
            "reaped": [list(pair) for pair in self.reaped],
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> SpanTable:
        """The table an xdist worker sent; raise ``ValueError`` when it is not one."""
        codes, starts, text = data.get("codes"), data.get("starts"), data.get("names")
        if not isinstance(codes, bytes):
            raise ValueError("spans without phases")
        if not isinstance(text, str) or not isinstance(starts, bytes):
            raise ValueError("spans without node ids")
        lengths = _from_bytes(data.get("lengths"))
        if len(starts) != len(codes) or starts.translate(None, b"\x00\x01"):
            raise ValueError(f"span columns disagree: {len(starts)} marks, {len(codes)} codes")
        if (
            starts.count(1) != len(lengths)
            or min(lengths, default=0) < 0
            or sum(lengths) != len(text)
        ):
            raise ValueError("span node ids and their lengths disagree")
        ends = list(map(eq, codes, repeat(END)))
        if any(map(and_, starts, ends)):
            raise ValueError("span node ids and phases disagree")
        offsets = list(accumulate(lengths, initial=0))
        names: list[str | None] = [None, *map(text.__getitem__, map(slice, offsets, offsets[1:]))]
        # Each boundary's test: the last name so far, and none at an END.
        nodeids = list(map(names.__getitem__, map(mul, accumulate(starts), map(not_, ends))))
        if nodeids.count(None) != ends.count(True):
            raise ValueError("span node ids and phases disagree")  # a phase before any name
        reaped = data.get("reaped") or []
        if not isinstance(reaped, list) or not all(
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(type(value) is int for value in pair)
            and 0 <= pair[0] < len(codes)
            and codes[pair[0]] == END
            and pair[1] >= 0
            for pair in reaped
        ):
            raise ValueError("spans with damaged child process times")
        worker = data.get("worker")
        energy = data.get("energy")
        return cls(
            worker=str(worker) if worker is not None else None,
            nodeids=nodeids,
            codes=codes,
            clock=_from_bytes(data.get("clock")),
            energy=None if energy is None else _from_bytes(energy),
            reaped=tuple((int(index), int(ns)) for index, ns in reaped),
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


#: One boundary's two integers: wall and CPU (ns), or RAPL (µJ) and GPU (mJ) energy (native
#: byte order, as ``array``).
_PAIR: Final = Struct("=2q")


@final
class PhaseRecorder:
    """Records every phase boundary of every test of this process (the plugin's hot path).

    ``begin(nodeid, phase)`` marks the start of a phase, which also ends the phase before it
    (``next(phase)`` the same for the test whose phase began last); ``end()`` marks the end of
    the test's last phase. A boundary is one reading of the clocks (and of the energy counters,
    when there are any) packed into a ``bytearray``, a node id and a code: four a test, nothing
    between tests, and no span is built until the session is priced.

    The same four marks, shaped as pytest's hooks, are :attr:`setup_starts` (``item``),
    :attr:`call_starts`, :attr:`teardown_starts` and :attr:`test_ends`: functions made for this
    recorder, so that pytest calls them directly (pluggy passes an implementation only the
    arguments it names) and each boundary costs one Python call.

    The CPU time of ended child processes is read once a test, at its end: it only changes
    when a child is waited for (see :attr:`SpanTable.reaped`). A child reaped between two tests
    counts in the next one.
    """

    def __init__(self, counters: Counters, worker: str | None = None) -> None:
        self.counters = counters
        self.worker = worker
        self._clock = bytearray()
        self._nodeids: list[str | None] = []
        self._codes = bytearray()
        self._energy: bytearray | None = bytearray() if counters.has_energy else None
        self._reaped: list[tuple[int, int]] = []
        usage = children_usage()
        self._children_s = usage.ru_utime + usage.ru_stime
        self._marks()

    def _marks(self) -> None:
        """Make the functions that mark boundaries (closures: the hot path looks nothing up)."""
        pack, add_clock, add_nodeid = _PAIR.pack, self._clock.extend, self._nodeids.append
        codes, add_code, energy = self._codes, self._codes.append, self._energy
        reading = self._energy_reading
        current = ""  # the test whose phase began last

        if energy is None:
            # Each mark written out in full (not through next_phase): one Python call a
            # boundary, which is what the plugin costs a test.

            def setup_starts(item: Any) -> None:
                nonlocal current
                current = item.nodeid
                add_clock(pack(perf_counter_ns(), process_time_ns()))
                add_nodeid(current)
                add_code(SETUP)

            def call_starts() -> None:
                add_clock(pack(perf_counter_ns(), process_time_ns()))
                add_nodeid(current)
                add_code(CALL)

            def teardown_starts() -> None:
                add_clock(pack(perf_counter_ns(), process_time_ns()))
                add_nodeid(current)
                add_code(TEARDOWN)

            def next_phase(phase: int) -> None:
                add_clock(pack(perf_counter_ns(), process_time_ns()))
                add_nodeid(current)
                add_code(phase)

        else:
            add_energy = energy.extend

            def next_phase(phase: int) -> None:
                add_clock(pack(perf_counter_ns(), process_time_ns()))
                add_energy(pack(*reading()))
                add_nodeid(current)
                add_code(phase)

            def setup_starts(item: Any) -> None:
                nonlocal current
                current = item.nodeid
                next_phase(SETUP)

            def call_starts() -> None:
                next_phase(CALL)

            def teardown_starts() -> None:
                next_phase(TEARDOWN)

        def begin(nodeid: str, phase: int) -> None:
            nonlocal current
            current = nodeid
            next_phase(phase)

        def test_ends() -> None:
            if not codes or codes[-1] == END:  # no phase open
                return
            add_clock(pack(perf_counter_ns(), process_time_ns()))
            if energy is not None:
                energy.extend(pack(*reading()))
            add_nodeid(None)
            add_code(END)
            usage = children_usage()
            children = usage.ru_utime + usage.ru_stime
            if children != self._children_s:  # rare: a child process was reaped
                self._reaped.append((len(codes) - 1, round((children - self._children_s) * 1e9)))
                self._children_s = children

        #: ``phase`` (:data:`SETUP`, :data:`CALL`, :data:`TEARDOWN`) of ``nodeid`` starts now.
        self.begin: Callable[[str, int], None] = begin
        #: ``phase`` of the test whose phase began last starts now.
        self.next: Callable[[int], None] = next_phase
        #: The test's last phase ends now; nothing happens when no phase is open.
        self.end: Callable[[], None] = test_ends
        #: The marks shaped as pytest's ``pytest_runtest_setup``, ``_call``, ``_teardown`` and
        #: ``_logfinish`` hooks.
        self.setup_starts: Callable[[Any], None] = setup_starts
        self.call_starts: Callable[[], None] = call_starts
        self.teardown_starts: Callable[[], None] = teardown_starts
        self.test_ends: Callable[[], None] = test_ends

    def _energy_reading(self) -> tuple[int, int]:
        """RAPL µJ and GPU mJ now, :data:`UNKNOWN` where a counter gave no value."""
        rapl, gpu = self.counters.read_energy()
        return UNKNOWN if rapl is None else rapl, UNKNOWN if gpu is None else gpu

    def table(self) -> SpanTable:
        """Every boundary so far (a snapshot)."""
        return self._table(0, until_now=False)

    def phases_of(self, nodeid: str) -> dict[str, list[float | None]]:
        """The phases measured so far of ``nodeid``, the test running now (reruns summed).

        Its open phase counts up to now, with the CPU of the children reaped since it began.
        """
        nodeids, codes = self._nodeids, self._codes
        first = len(codes)
        while first > 0 and (codes[first - 1] == END or nodeids[first - 1] == nodeid):
            first -= 1
        while first < len(codes) and codes[first] == END:
            first += 1
        running = bool(codes) and codes[-1] != END and nodeids[-1] == nodeid
        found: dict[str, list[float | None]] = {}
        for _, phase, wall, cpu, rapl, gpu in self._table(first, running).deltas():
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

    def _table(self, first: int, until_now: bool) -> SpanTable:
        """The boundaries from the ``first``-th on; with ``until_now``, and an END read now."""
        clock = _array_of(self._clock[16 * first :])
        energy = None if self._energy is None else _array_of(self._energy[16 * first :])
        nodeids = self._nodeids[first:]
        codes = bytes(self._codes[first:])
        reaped = [(index - first, ns) for index, ns in self._reaped if index >= first]
        if until_now and codes and codes[-1] != END:
            clock.extend((perf_counter_ns(), process_time_ns()))
            if energy is not None:
                energy.extend(self._energy_reading())
            usage = children_usage()
            children_ns = round((usage.ru_utime + usage.ru_stime - self._children_s) * 1e9)
            if children_ns > 0:
                reaped.append((len(codes), children_ns))
            nodeids.append(None)
            codes += bytes([END])
        return SpanTable(self.worker, nodeids, codes, clock, energy, tuple(reaped))


def _array_of(packed: bytes | bytearray) -> array[int]:
    values = array("q")
    values.frombytes(packed)
    return values
