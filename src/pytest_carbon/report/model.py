"""The one session report: dataclasses, their versioned JSON form, and a validating loader.

Every output (terminal, JSON, markdown, JUnit, CSV, HTML) is a view of a :class:`SessionReport`.
The JSON form carries ``schema_version``; :func:`load_report` refuses versions it does not know.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, groupby, repeat
from operator import attrgetter, eq, ge, itemgetter, methodcaller, ne
from pathlib import Path
from typing import Any, Protocol, Union, final, get_args, get_origin, get_type_hints, overload

from pytest_carbon.errors import InputError

SCHEMA_VERSION = 1
PHASES = ("setup", "call", "teardown")

#: How a figure was produced. A test's ``method`` joins the ones that contributed with ``+``.
METHOD_RAPL = "rapl"
METHOD_NVML = "nvml"
METHOD_MODEL = "cpu-time-model"
#: A test whose worker crashed before sending its counters: priced from its reported durations.
METHOD_WALL = "wall-time-model"


@dataclass(slots=True)
class Energy:
    """Energy by component, in kWh at the meter (PUE applied)."""

    cpu_kwh: float = 0.0
    ram_kwh: float = 0.0
    gpu_kwh: float = 0.0

    @property
    def total_kwh(self) -> float:
        """Sum of the components."""
        return self.cpu_kwh + self.ram_kwh + self.gpu_kwh

    def __add__(self, other: Energy) -> Energy:
        return Energy(
            self.cpu_kwh + other.cpu_kwh,
            self.ram_kwh + other.ram_kwh,
            self.gpu_kwh + other.gpu_kwh,
        )

    def __sub__(self, other: Energy) -> Energy:
        return Energy(
            self.cpu_kwh - other.cpu_kwh,
            self.ram_kwh - other.ram_kwh,
            self.gpu_kwh - other.gpu_kwh,
        )


@dataclass(slots=True)
class PhaseRecord:
    """One phase (setup, call or teardown) of one test."""

    wall_s: float
    cpu_s: float
    energy: Energy
    emissions_g: float

    @property
    def energy_kwh(self) -> float:
        """Total energy of the phase."""
        return self.energy.total_kwh


@dataclass(slots=True)
class TestRecord:
    """One test: its outcome, its phases and what they cost."""

    __test__ = False  # not a pytest test class

    nodeid: str
    path: str
    outcome: str
    method: str
    phases: dict[str, PhaseRecord] = field(default_factory=dict)
    worker: str | None = None
    budget: dict[str, float] | None = None
    budget_exceeded: bool = False

    @property
    def module(self) -> str:
        """The test file the test lives in (its per-module bucket)."""
        return self.path

    @property
    def energy(self) -> Energy:
        """Energy of all phases."""
        total = Energy()
        for phase in self.phases.values():
            total = total + phase.energy
        return total

    @property
    def energy_kwh(self) -> float:
        """Total energy of all phases."""
        return self.energy.total_kwh

    @property
    def emissions_g(self) -> float:
        """Total emissions of all phases."""
        return sum(phase.emissions_g for phase in self.phases.values())

    @property
    def wall_s(self) -> float:
        """Wall time of all phases."""
        return sum(phase.wall_s for phase in self.phases.values())

    @property
    def cpu_s(self) -> float:
        """CPU time of all phases."""
        return sum(phase.cpu_s for phase in self.phases.values())

    def phase_figures(self) -> Sequence[PhaseFigures]:
        """Each phase as plain numbers: name, wall s, CPU s, CPU kWh, RAM kWh, GPU kWh, g CO2e."""
        return [
            (
                name,
                phase.wall_s,
                phase.cpu_s,
                phase.energy.cpu_kwh,
                phase.energy.ram_kwh,
                phase.energy.gpu_kwh,
                phase.emissions_g,
            )
            for name, phase in self.phases.items()
        ]

    def totals(self) -> Totals:
        """Wall s, CPU s, CPU kWh, RAM kWh, GPU kWh and g CO2e of all phases, added phase by
        phase as the properties add them."""
        wall = cpu = cpu_kwh = ram_kwh = gpu_kwh = grams = 0.0
        for phase in self.phases.values():
            energy = phase.energy
            wall += phase.wall_s
            cpu += phase.cpu_s
            cpu_kwh += energy.cpu_kwh
            ram_kwh += energy.ram_kwh
            gpu_kwh += energy.gpu_kwh
            grams += phase.emissions_g
        return wall, cpu, cpu_kwh, ram_kwh, gpu_kwh, grams


#: A phase as plain numbers: name, wall s, CPU s, CPU kWh, RAM kWh, GPU kWh, g CO2e.
PhaseFigures = tuple[str, float, float, float, float, float, float]
#: A test's sums: wall s, CPU s, CPU kWh, RAM kWh, GPU kWh, g CO2e.
Totals = tuple[float, float, float, float, float, float]
#: Numbers per phase in :class:`MeasuredTest`'s flat figures.
FIGURES_PER_PHASE = 7

#: The storage of :attr:`TestRecord.phases` (a slot), which :class:`MeasuredTest` fills lazily.
_PHASES_SLOT: Any = TestRecord.__dict__["phases"]


class FigureSource(Protocol):
    """Computes a test's flat phase figures when they are first read (see :class:`MeasuredTest`)."""

    def figures(self, at: int) -> tuple[Any, ...]:
        """The flat figures of the test at position ``at`` of the source."""


@final
class MeasuredTest(TestRecord):
    """A test record made at the end of a session: its phases are built when first read.

    A session of 100,000 tests would otherwise build 600,000 phase and energy objects that the
    terminal summary never reads. The phases are kept as one flat tuple of plain numbers (seven
    per phase, as in :data:`PhaseFigures`), or computed into one on first use by a shared
    :class:`FigureSource` (the pricer, from the session's readings). The totals are given by the
    pricer or added up from the figures in the order the built phases would be.
    """

    __slots__ = ("_figures", "_totals", "_source", "_at")

    def __init__(
        self,
        nodeid: str,
        path: str,
        outcome: str,
        method: str,
        phases: dict[str, PhaseRecord] | None = None,
        worker: str | None = None,
        budget: dict[str, float] | None = None,
        budget_exceeded: bool = False,
        *,
        figures: tuple[Any, ...] | None = (),
        totals: Totals | None = None,
        source: FigureSource | None = None,
        at: int = 0,
    ) -> None:
        self.nodeid = nodeid
        self.path = path
        self.outcome = outcome
        self.method = method
        self.worker = worker
        self.budget = budget
        self.budget_exceeded = budget_exceeded
        self._figures: tuple[Any, ...] | None = None if source is not None else figures
        self._totals = totals  # given by the pricer, or added up as totals() does
        self._source = source
        self._at = at
        if phases is not None:
            self.phases = phases

    def _flat(self) -> tuple[Any, ...] | None:
        """The flat figures (computed now if they come from a source); None once phases were set."""
        figures = self._figures
        if figures is None:
            source = self._source
            if source is None:
                return None
            figures = self._figures = source.figures(self._at)
            self._source = None
        return figures

    @property
    def phases(self) -> dict[str, PhaseRecord]:
        """The phases, built from the figures on first use (then kept, and may be changed)."""
        figures = self._flat()
        if figures is None:
            built: dict[str, PhaseRecord] = _PHASES_SLOT.__get__(self)
            return built
        built = {
            name: PhaseRecord(wall, cpu, Energy(cpu_kwh, ram_kwh, gpu_kwh), grams)
            for name, wall, cpu, cpu_kwh, ram_kwh, gpu_kwh, grams in self.phase_figures()
        }
        self.phases = built
        return built

    @phases.setter
    def phases(self, value: dict[str, PhaseRecord]) -> None:
        _PHASES_SLOT.__set__(self, value)
        self._figures = self._totals = self._source = None

    def phase_figures(self) -> Sequence[PhaseFigures]:
        """Each phase as plain numbers (no phase object is built)."""
        figures = self._flat()
        if figures is None:
            return TestRecord.phase_figures(self)
        step = FIGURES_PER_PHASE
        return [figures[at : at + step] for at in range(0, len(figures), step)]

    def totals(self) -> Totals:
        """The sums of all phases (computed once, while the phases are not built)."""
        totals = self._totals
        if totals is not None:
            return totals
        figures = self._flat()
        if figures is None:
            return TestRecord.totals(self)
        wall = cpu = cpu_kwh = ram_kwh = gpu_kwh = grams = 0.0
        for at in range(0, len(figures), FIGURES_PER_PHASE):
            wall += figures[at + 1]
            cpu += figures[at + 2]
            cpu_kwh += figures[at + 3]
            ram_kwh += figures[at + 4]
            gpu_kwh += figures[at + 5]
            grams += figures[at + 6]
        totals = self._totals = (wall, cpu, cpu_kwh, ram_kwh, gpu_kwh, grams)
        return totals

    @property
    def energy(self) -> Energy:
        """Energy of all phases."""
        totals = self.totals()
        return Energy(totals[2], totals[3], totals[4])

    @property
    def emissions_g(self) -> float:
        """Total emissions of all phases."""
        return self.totals()[5]

    @property
    def wall_s(self) -> float:
        """Wall time of all phases."""
        return self.totals()[0]

    @property
    def cpu_s(self) -> float:
        """CPU time of all phases."""
        return self.totals()[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TestRecord):
            return NotImplemented
        return _fields_of(self) == _fields_of(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like its base class


def _fields_of(test: TestRecord) -> tuple[Any, ...]:
    return (
        test.nodeid,
        test.path,
        test.outcome,
        test.method,
        test.phases,
        test.worker,
        test.budget,
        test.budget_exceeded,
    )


#: Positions in :data:`Totals`.
WALL, CPU, CPU_KWH, RAM_KWH, GPU_KWH, GRAMS = range(6)


@final
class TestColumns:
    """Tests priced column by column: each figure a list with one entry a test.

    A session of 100,000 tests needs their sums, the top few and the per-module totals, which
    are added up over these lists in C; a test's record (a :class:`MeasuredTest`, its phases
    computed by ``source``) is built only when something reads it, and then kept. The columns
    hold the figures and outcomes as priced.
    """

    __test__ = False  # not a pytest test class
    __slots__ = ("nodeids", "paths", "outcomes", "method", "worker", "totals", "source", "_built")

    def __init__(
        self,
        nodeids: list[str],
        paths: list[str],
        outcomes: list[str],
        method: str,
        worker: str | None,
        totals: Sequence[list[float]],
        source: FigureSource,
    ) -> None:
        columns: list[Sequence[Any]] = [paths, outcomes, *totals]
        if len(totals) != GRAMS + 1 or any(len(column) != len(nodeids) for column in columns):
            raise ValueError("every column needs one entry a test, and six figures")
        self.nodeids = nodeids
        self.paths = paths
        self.outcomes = outcomes
        self.method = method
        self.worker = worker
        self.totals = tuple(totals)
        self.source = source
        self._built: list[MeasuredTest | None] | None = None

    def __len__(self) -> int:
        return len(self.nodeids)

    def record(self, index: int) -> MeasuredTest:
        """The record of the ``index``-th test (built on first use, then the same object)."""
        built = self._built
        if built is None:
            built = self._built = [None] * len(self.nodeids)
        record = built[index]
        if record is None:
            record = built[index] = MeasuredTest(
                self.nodeids[index],
                self.paths[index],
                self.outcomes[index],
                self.method,
                None,
                self.worker,
                totals=tuple(column[index] for column in self.totals),  # type: ignore[arg-type]
                source=self.source,
                at=index,
            )
        return record

    def column(self, name: str) -> Iterable[Any]:
        """One field of every test: ``nodeid``, ``path``, ``outcome``, ``method`` or ``worker``."""
        if name in ("method", "worker"):
            return repeat(getattr(self, name), len(self.nodeids))
        columns = {"nodeid": self.nodeids, "path": self.paths, "outcome": self.outcomes}
        return columns[name]


@final
class TestTable(Sequence[TestRecord]):
    """A report's tests, in the order they ran: parts of records and of :class:`TestColumns`.

    It reads as a sequence of records (those of columns are built when first read, then kept,
    so a change to one stays); :meth:`column` and :meth:`figures` read every test's field or
    sums without building any. Any sequence of records can be wrapped (:meth:`of`).
    """

    __test__ = False  # not a pytest test class
    __slots__ = ("parts", "_starts")

    def __init__(self, parts: Iterable[TestColumns | Sequence[TestRecord]] = ()) -> None:
        self.parts: list[TestColumns | Sequence[TestRecord]] = [part for part in parts if len(part)]
        self._starts = list(accumulate(map(len, self.parts), initial=0))

    @classmethod
    def of(cls, tests: Iterable[TestRecord]) -> TestTable:
        """``tests`` as a table (itself if it is one)."""
        if isinstance(tests, TestTable):
            return tests
        return cls([tests if isinstance(tests, Sequence) else list(tests)])

    def plus(self, records: Sequence[TestRecord]) -> TestTable:
        """A table of these tests followed by ``records``."""
        return TestTable([*self.parts, records])

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> TestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[TestRecord]: ...

    def __getitem__(self, index: int | slice) -> TestRecord | list[TestRecord]:
        if isinstance(index, slice):
            return [self[at] for at in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("test index out of range")
        number = bisect_right(self._starts, index) - 1
        part, at = self.parts[number], index - self._starts[number]
        return part.record(at) if isinstance(part, TestColumns) else part[at]

    def __iter__(self) -> Iterator[TestRecord]:
        for part in self.parts:
            if isinstance(part, TestColumns):
                yield from map(part.record, range(len(part)))
            else:
                yield from part

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(map(eq, self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable records, like a list's

    def __repr__(self) -> str:
        return f"TestTable({len(self)} tests in {len(self.parts)} part(s))"

    def column(self, name: str) -> Iterator[Any]:
        """One field of every test, in order: ``nodeid``, ``path``, ``outcome``, ``method``,
        ``worker`` (columns as priced, records as they are now)."""
        return chain.from_iterable(
            part.column(name) if isinstance(part, TestColumns) else map(attrgetter(name), part)
            for part in self.parts
        )

    def figures(self) -> tuple[list[float], ...]:
        """Every test's :data:`Totals`, as six lists (indexed by :data:`WALL` … :data:`GRAMS`)."""
        columns: list[Sequence[list[float]]] = []
        for part in self.parts:
            if isinstance(part, TestColumns):
                columns.append(part.totals)
            else:
                totals = list(map(methodcaller("totals"), part))
                columns.append([list(map(itemgetter(at), totals)) for at in range(GRAMS + 1)])
        if len(columns) == 1:
            return tuple(columns[0])
        return tuple(
            list(chain.from_iterable(part[at] for part in columns)) for at in range(GRAMS + 1)
        )


def _modules(paths: list[str]) -> list[tuple[str, tuple[slice, ...] | list[int]]]:
    """Each module's tests, in the order modules first ran: the runs of consecutive tests it
    ran in (as pytest runs them; one a worker under xdist), or, when modules are interleaved
    (tests run in a random order), their positions in order."""
    # Where a run of one module's tests starts: found in C, whatever the number of runs.
    starts = list(compress(range(len(paths)), map(ne, paths, chain((None,), paths))))
    if len(starts) > 64 + len(paths) // 8:  # interleaved: positions grouped by a stable sort
        order = sorted(range(len(paths)), key=paths.__getitem__)
        grouped = {path: list(group) for path, group in groupby(order, key=paths.__getitem__)}
        return [(path, grouped[path]) for path in dict.fromkeys(paths)]
    runs: dict[str, list[slice]] = {}
    for start, end in zip(starts, [*starts[1:], len(paths)], strict=True):
        known = runs.get(paths[start])
        if known is None:
            runs[paths[start]] = [slice(start, end)]
        else:
            known.append(slice(start, end))
    return [(path, tuple(slices)) for path, slices in runs.items()]


def energy_of_tests(tests: Iterable[TestRecord]) -> Energy:
    """The energy of ``tests``, added up test by test (in C: cheap for 100k tests)."""
    figures = TestTable.of(tests).figures()
    return Energy(
        sum(figures[CPU_KWH], 0.0), sum(figures[RAM_KWH], 0.0), sum(figures[GPU_KWH], 0.0)
    )


@dataclass
class ModuleTotal:
    """The tests of one file added up (a view; not stored in the JSON report)."""

    path: str
    tests: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    energy: Energy = field(default_factory=Energy)
    emissions_g: float = 0.0

    @property
    def energy_kwh(self) -> float:
        """Total energy of the module's tests."""
        return self.energy.total_kwh


@dataclass
class JobIdentity:
    """Which CI job produced the report; the key the matrix learner joins reports on."""

    job: str | None = None
    matrix: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    run_id: str | None = None
    branch: str | None = None
    event: str | None = None
    project: str | None = None
    ci: str | None = None


@dataclass
class PowerModel:
    """The power model the session used, with the source of every number."""

    method: str
    cpu_model: str
    cpu_tdp_w: float | None
    cpu_watts_per_vcpu: float
    vcpus: float
    vcpus_source: str
    cpu_watts: float
    cpu_idle_fraction: float
    ram_watts: float
    gpu_count: int
    gpu_model: str | None
    pue: float
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Intensity:
    """Grid carbon intensity and where it came from."""

    g_per_kwh: float
    source: str
    country_iso: str | None = None
    country_name: str | None = None


@dataclass
class WorkerRecord:
    """One xdist worker as the controller saw it."""

    id: str
    tests: int
    wall_s: float
    cpu_s: float
    crashed: bool = False
    note: str | None = None


@dataclass
class Deselection:
    """Tests a test plan deselected in this job."""

    plan: str
    tests: int
    energy_kwh_saved: float
    nodeids: list[str] = field(default_factory=list)


@dataclass
class SessionReport:
    """The whole session: totals, tests, the model and identity behind them."""

    tool_version: str
    codecarbon_version: str | None
    started_at: str
    finished_at: str
    identity: JobIdentity
    power: PowerModel
    intensity: Intensity
    wall_s: float
    cpu_s: float
    energy: Energy
    emissions_g: float
    unattributed: Energy
    unattributed_emissions_g: float
    tests: Sequence[TestRecord] = field(default_factory=list)
    workers: list[WorkerRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    codecarbon_estimate: dict[str, float] | None = None
    #: CPU seconds codecarbon's side process used (counted in the session, and so in unattributed).
    codecarbon_cpu_s: float = 0.0
    exit_status: int | None = None
    deselection: Deselection | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def energy_kwh(self) -> float:
        """Total session energy."""
        return self.energy.total_kwh

    @property
    def attributed(self) -> Energy:
        """Energy attributed to tests."""
        return energy_of_tests(self.tests)

    def outcome_counts(self) -> dict[str, int]:
        """How many tests ended in each outcome (in the order outcomes first occur)."""
        return dict(Counter(TestTable.of(self.tests).column("outcome")))

    def methods(self) -> set[str]:
        """The methods that produced the tests' figures."""
        return set(TestTable.of(self.tests).column("method"))

    def by_module(self) -> list[ModuleTotal]:
        """Per-module totals, highest emissions first (added up in C: cheap for 100k tests).

        A module's figures are added in the order its tests ran, whether they ran one after the
        other or not; among equal emissions, the module that ran first comes first.
        """
        table = TestTable.of(self.tests)
        figures = table.figures()
        modules = []
        for path, tests in _modules(list(table.column("path"))):
            if isinstance(tests, list):  # positions
                count = len(tests)
                sums = [sum(map(column.__getitem__, tests), 0.0) for column in figures]
            else:  # runs
                count = sum(run.stop - run.start for run in tests)
                sums = [
                    sum(chain.from_iterable(column[run] for run in tests), 0.0)
                    for column in figures
                ]
            wall, cpu, cpu_kwh, ram_kwh, gpu_kwh, grams = sums
            modules.append(
                ModuleTotal(path, count, wall, cpu, Energy(cpu_kwh, ram_kwh, gpu_kwh), grams)
            )
        return sorted(modules, key=lambda module: -module.emissions_g)

    def top_tests(self, n: int) -> list[TestRecord]:
        """The ``n`` tests with the highest emissions (the first run first among equals).

        Found in C: the ``n``-th highest figure is the cut, and only the tests at or above it
        are ordered (a stable sort keeps the first run first among equals).
        """
        table = TestTable.of(self.tests)
        grams = table.figures()[GRAMS]
        if n <= 0 or not grams:
            return []
        chosen: Iterable[int] = range(len(grams))
        if n < len(grams):
            cut = sorted(grams, reverse=True)[n - 1]
            chosen = compress(chosen, map(ge, grams, repeat(cut)))
        best = sorted(chosen, key=grams.__getitem__, reverse=True)[:n]
        return list(map(table.__getitem__, best))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (with derived totals added for readers)."""
        tests, self.tests = self.tests, []
        try:
            data = dataclasses.asdict(self)  # everything but the tests: small
        finally:
            self.tests = tests
        data["energy_kwh"] = self.energy_kwh
        data["outcomes"] = self.outcome_counts()
        data["tests"] = [json_of_test(test) for test in tests]
        return data

    def to_json(self) -> str:
        """The report as JSON text: indented, except for reports of many tests (compact, fast)."""
        indent = 2 if len(self.tests) <= INDENTED_TESTS else None
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True) + "\n"


#: Reports with more tests than this are written without indentation (it triples writing time).
INDENTED_TESTS = 2000


def json_of_test(test: TestRecord) -> dict[str, Any]:
    """One test's JSON form, built directly (``dataclasses.asdict`` is slow for 100,000 tests)."""
    phases = {}
    for name, wall, cpu, cpu_kwh, ram_kwh, gpu_kwh, grams in test.phase_figures():
        phases[name] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "energy": {"cpu_kwh": cpu_kwh, "ram_kwh": ram_kwh, "gpu_kwh": gpu_kwh},
            "emissions_g": grams,
        }
    return {
        "nodeid": test.nodeid,
        "path": test.path,
        "outcome": test.outcome,
        "method": test.method,
        "phases": phases,
        "worker": test.worker,
        "budget": dict(test.budget) if test.budget is not None else None,
        "budget_exceeded": test.budget_exceeded,
        "energy_kwh": test.energy_kwh,
        "emissions_g": test.emissions_g,
        "wall_s": test.wall_s,
        "cpu_s": test.cpu_s,
    }


#: Keys ``to_dict`` adds, per type, that the loader ignores.
_DERIVED_BY_TYPE: dict[type[Any], set[str]] = {
    SessionReport: {"energy_kwh", "outcomes"},
    TestRecord: {"energy_kwh", "emissions_g", "wall_s", "cpu_s"},
}


def report_from_dict(data: Any, source: str = "<report>") -> SessionReport:
    """Build a report from its JSON form; raise :class:`InputError` naming the bad field."""
    if not isinstance(data, Mapping):
        raise InputError(source, "not a pytest-carbon report (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            source,
            f"unsupported report schema_version {version!r} (this pytest-carbon reads "
            f"{SCHEMA_VERSION})",
            fix="re-create the report with this version of pytest-carbon",
        )
    return _build_report(data, source)


def load_report(path: str | Path) -> SessionReport:
    """Read a JSON report written by ``--carbon-json``."""
    name = str(path)
    try:
        # Decoded without newline translation: lines as JSON counts them (a "\r" is none).
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(name, f"cannot read report: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(name, "report is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            name,
            f"malformed JSON: {exc.msg}",
            line=exc.lineno,
            fix="pass a report from --carbon-json",
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer too long, nesting too deep
        raise InputError(name, f"unreadable JSON: {exc}") from None
    return report_from_dict(data, name)


class _Refused(Exception):
    """A value of the wrong shape; the containers above it add their keys on the way out."""

    def __init__(self, message: str, *, whole: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.whole = whole  # the message names the path itself (``missing field 'a.b'``)
        self.path: list[str] = []

    def where(self) -> str:
        return "".join(reversed(self.path)).lstrip(".")


def _refused(expected: str, value: Any) -> _Refused:
    return _Refused(f"expected {expected}, got {type(value).__name__}")


def _build_report(data: Any, source: str) -> SessionReport:
    """The report of ``data``, or :class:`InputError` naming the first field of the wrong shape."""
    try:
        report = _build(SessionReport, data)
    except _Refused as refused:
        where = refused.where()
        if refused.whole:
            raise InputError(source, refused.message.format(where=where)) from None
        raise InputError(source, f"{where or 'report'}: {refused.message}") from None
    assert isinstance(report, SessionReport)
    return report


def _build(kind: Any, value: Any) -> Any:
    """Convert ``value`` to the annotated type ``kind``, or raise :class:`_Refused`."""
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refused("a number", value)
        try:
            return float(value)
        except OverflowError:
            raise _Refused("number out of range") from None
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refused("an integer", value)
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise _refused("true or false", value)
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _refused("a string", value)
        return value
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            return _build(option, value)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _build_dataclass(kind, value)
    if origin in (list, collections.abc.Sequence):
        if not isinstance(value, list):
            raise _refused("a list", value)
        (item,) = get_args(kind)
        items = []
        for index, element in enumerate(value):
            try:
                items.append(_build(item, element))
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise
        return items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _refused("an object", value)
        _, item = get_args(kind)
        built = {}
        for key, element in value.items():
            try:
                built[str(key)] = _build(item, element)
            except _Refused as refused:
                refused.path.append(f".{key}")
                raise
        return built
    raise AssertionError(f"unsupported annotation {kind!r}")  # pragma: no cover


def _build_dataclass(kind: type[Any], value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _refused("an object", value)
    fields, allowed = _layout(kind)
    unknown = value.keys() - allowed
    if unknown:
        raise _Refused(f"unknown field {sorted(unknown)[0]!r}")
    args: dict[str, Any] = {}
    for name, hint, required in fields:
        if name not in value:
            if required:
                refused = _Refused("missing field '{where}'", whole=True)
                refused.path.append(f".{name}")
                raise refused
            continue
        try:
            args[name] = _build(hint, value[name])
        except _Refused as refused:
            refused.path.append(f".{name}")
            raise
    return kind(**args)


_Layout = tuple[tuple[tuple[str, Any, bool], ...], frozenset[str]]
_LAYOUTS: dict[type[Any], _Layout] = {}


def _layout(kind: type[Any]) -> _Layout:
    """A dataclass's loadable fields ``(name, type, required)`` and every key its JSON may have.

    Computed once per class: resolving type hints is far slower than building a record.
    """
    known_layout = _LAYOUTS.get(kind)
    if known_layout is not None:
        return known_layout
    hints = get_type_hints(kind)
    fields = tuple(
        (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(kind)
        if f.init and not f.name.startswith("_")
    )
    known = {f.name for f in dataclasses.fields(kind) if f.init}
    layout = _LAYOUTS[kind] = (fields, frozenset(known | _DERIVED_BY_TYPE.get(kind, set())))
    return layout


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the report, generated from the dataclasses."""
    definitions: dict[str, Any] = {}
    root = _schema_of(SessionReport, definitions)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"pytest-carbon session report, schema_version {SCHEMA_VERSION}",
        **definitions[SessionReport.__name__],
        "$defs": {k: v for k, v in definitions.items() if k != SessionReport.__name__},
    }
    assert root == {"$ref": "#/$defs/SessionReport"}
    schema["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    return schema


def _schema_of(kind: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema_of(option, definitions) for option in get_args(kind)]}
    if kind is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        name = kind.__name__
        if name not in definitions:
            definitions[name] = {}  # placeholder against recursion
            hints = get_type_hints(kind)
            fields = [f for f in dataclasses.fields(kind) if f.init]
            definitions[name] = {
                "type": "object",
                "description": (kind.__doc__ or "").strip().splitlines()[0],
                "properties": {f.name: _schema_of(hints[f.name], definitions) for f in fields},
                "required": [
                    f.name
                    for f in fields
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                ],
            }
        return {"$ref": f"#/$defs/{name}"}
    if origin in (list, collections.abc.Sequence):
        return {"type": "array", "items": _schema_of(get_args(kind)[0], definitions)}
    if origin is dict:
        values = _schema_of(get_args(kind)[1], definitions)
        return {"type": "object", "additionalProperties": values}
    simple = {float: "number", int: "integer", bool: "boolean", str: "string"}
    return {"type": simple[kind]}
