"""Per-test plans across a CI matrix: learn which tests behave alike in every cell; skip them.

A test that passed or failed alike in every job of every past run needs to run in one job of the
next run only; a test that behaved differently across cells is run once per value of the matrix
axes that explain the difference (e.g. once per database); a test whose differences no axis
explains, that flipped within the same commit, that is new, changed or failed recently runs
everywhere. The plan says, for each job, which tests it may skip and which job covers them;
covered tests are spread so that no job becomes the bottleneck. Plans are versioned JSON.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final, final

from pytest_carbon import __version__
from pytest_carbon.errors import InputError

#: Identifies a plan file and its layout; :func:`plan_from_dict` refuses other versions.
PLAN_FORMAT: Final = "pytest-carbon-test-plan"
PLAN_FORMAT_VERSION: Final = 1

#: Outcome categories: what "behaving the same" compares. Skipped tests were not executed.
FAILED: Final = "failed"
PASSED: Final = "passed"
_CATEGORY: Final[Mapping[str, str]] = {
    "passed": PASSED,
    "failed": FAILED,
    "error": FAILED,
    "xfailed": "xfailed",
    "xpassed": "xpassed",
}

GRANULARITIES: Final = ("test", "module")
BALANCES: Final = ("time", "energy")

#: Why a test is never skipped (the plan counts tests by reason).
NEW: Final = "not enough history"
CHANGED: Final = "changed"
FLAKY: Final = "flaky"
UNEXPLAINED: Final = "differs across cells, no axis explains it"
RECENT: Final = "failed recently"
SINGLE: Final = "runs in one job only"

#: Distinct divergence patterns kept per test; a test that diverges in more ways runs everywhere.
MAX_PATTERNS: Final = 64
#: Matrix axes searched for an explanation (subsets of at most this many axes).
MAX_AXES: Final = 10


def category_of(outcome: str) -> str | None:
    """The behaviour category of a report outcome; None when the test was not executed."""
    return _CATEGORY.get(outcome)


# --------------------------------------------------------------------------- observations


@final
class JobCell:
    """One matrix cell: its job name and matrix values (sorted ``(key, value)`` pairs).

    Immutable by convention; its hash is computed once, as planning looks cells up a lot.
    """

    __slots__ = ("_hash", "matrix", "name")

    def __init__(self, name: str, matrix: tuple[tuple[str, str], ...] = ()) -> None:
        self.name = name
        self.matrix = matrix
        self._hash = hash((name, matrix))

    @classmethod
    def of(cls, name: str, matrix: Mapping[str, str] | None = None) -> JobCell:
        """A cell from a name and a matrix mapping."""
        return cls(name, tuple(sorted((matrix or {}).items())))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, JobCell):
            return NotImplemented
        return self._hash == other._hash and (self.name, self.matrix) == (other.name, other.matrix)

    def __lt__(self, other: JobCell) -> bool:
        return (self.name, self.matrix) < (other.name, other.matrix)

    def __repr__(self) -> str:
        return f"JobCell({self.name!r}, {self.matrix!r})"

    @property
    def values(self) -> dict[str, str]:
        """The matrix values as a dict."""
        return dict(self.matrix)

    @property
    def label(self) -> str:
        """``name[key=value,...]``, or the bare name without matrix values."""
        if not self.matrix:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.matrix)}]"


@final
@dataclass(slots=True)
class JobTests:
    """What one job of one run executed: each test's outcome category and what it cost.

    ``deselected`` names the tests a plan deselected there: still part of the job, not run.
    ``complete`` is False when only some outcomes are known (a test missing is not gone).
    """

    cell: JobCell
    outcomes: dict[str, str]
    energy_kwh: dict[str, float] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    deselected: frozenset[str] = frozenset()
    complete: bool = True


@final
@dataclass(slots=True)
class RunTests:
    """One CI run of the matrix, as far as its tests are known."""

    run_id: str
    started_at: str
    jobs: list[JobTests]
    commit: str | None = None
    project: str = ""

    @property
    def cells(self) -> list[JobCell]:
        """The run's matrix cells, sorted."""
        return sorted(job.cell for job in self.jobs)


# --------------------------------------------------------------------------- learned state


@final
class UnitStats:
    """What history says about one test (or module) across the cells of the matrix."""

    __slots__ = (
        "axes",
        "cost",
        "evidence",
        "first_run",
        "flaky",
        "last_by_job",
        "last_failure",
        "members",
        "patterns",
        "runners",
    )

    def __init__(self, first_run: int) -> None:
        self.first_run = first_run
        self.evidence = 0
        self.last_failure: int | None = None
        self.runners: set[JobCell] = set()
        self.patterns: set[frozenset[tuple[tuple[tuple[str, str], ...], str]]] = set()
        #: Matrix axes that explain every divergence seen: empty when none was seen, None when
        #: no axis explains them.
        self.axes: frozenset[str] | None = frozenset()
        self.flaky = False
        self.last_by_job: dict[JobCell, tuple[str, str]] = {}
        self.cost: dict[JobCell, list[float]] = {}
        self.members: dict[JobCell, frozenset[str]] | None = None

    def observe(
        self,
        index: int,
        seen: Sequence[tuple[JobCell, str, float | None, float | None]],
        commit: str | None,
    ) -> None:
        """Learn one run: the unit's category, energy and wall time in each job that ran it."""
        categories = set()
        for cell, category, energy, wall in seen:
            categories.add(category)
            self.runners.add(cell)
            if commit is not None:
                last = self.last_by_job.get(cell)
                if last is not None and last[0] == commit and last[1] != category:
                    self.flaky = True
                self.last_by_job[cell] = (commit, category)
            if energy is not None or wall is not None:
                slot = self.cost.setdefault(cell, [0.0, 0.0, 0.0, 0.0])
                if energy is not None:
                    slot[0] += 1
                    slot[1] += energy
                if wall is not None:
                    slot[2] += 1
                    slot[3] += wall
        if FAILED in categories:
            self.last_failure = index
        if len(seen) >= 2:
            self.evidence += 1
        if len(categories) > 1 and self.axes is not None:
            pattern = frozenset((cell.matrix, category) for cell, category, _, _ in seen)
            if pattern not in self.patterns:
                self.patterns.add(pattern)
                self.axes = None if len(self.patterns) > MAX_PATTERNS else explain(self.patterns)

    def mean_cost(self, cell: JobCell, balance: str) -> float | None:
        """Mean measured energy (kWh) or wall time (s) in ``cell``; None when unmeasured."""
        slot = self.cost.get(cell)
        if slot is None:
            return None
        count, total = (slot[0], slot[1]) if balance == "energy" else (slot[2], slot[3])
        return total / count if count else None


def explain(
    patterns: Iterable[frozenset[tuple[tuple[tuple[str, str], ...], str]]],
) -> frozenset[str] | None:
    """The matrix axes that explain every divergence: the union of the smallest consistent sets.

    A set of axes is consistent when, in every divergent run, jobs that agree on those axes
    behaved the same. None when no set is (identical cells differed, or no matrix values).
    """
    observed = list(patterns)
    universe = sorted({key for pattern in observed for matrix, _ in pattern for key, _ in matrix})
    if len(universe) > MAX_AXES:
        return None
    for size in range(len(universe) + 1):
        found = [
            frozenset(axes)
            for axes in itertools.combinations(universe, size)
            if all(consistent(pattern, axes) for pattern in observed)
        ]
        if found:
            return frozenset().union(*found)
    return None


def consistent(
    pattern: frozenset[tuple[tuple[tuple[str, str], ...], str]], axes: Sequence[str]
) -> bool:
    """Whether jobs of ``pattern`` that share the values of ``axes`` share one category."""
    seen: dict[tuple[str | None, ...], str] = {}
    for matrix, category in pattern:
        values = dict(matrix)
        key = tuple(values.get(axis) for axis in axes)
        if None in key:
            continue  # a job lacking the axis is its own class, which is always consistent
        if seen.setdefault(key, category) != category:
            return False
    return True


# --------------------------------------------------------------------------- the plan


@final
@dataclass(slots=True)
class SkippedTest:
    """One test a job may skip, the job that covers it, and what skipping it saves there."""

    nodeid: str
    covered_by: str
    energy_kwh: float = 0.0
    wall_s: float = 0.0


@final
@dataclass(slots=True)
class PlannedJob:
    """One job of the plan: its cell, the tests it may skip and its estimated remaining load."""

    name: str
    matrix: dict[str, str] = field(default_factory=dict)
    skip: list[SkippedTest] = field(default_factory=list)
    load: float = 0.0

    @property
    def cell(self) -> JobCell:
        """The job's matrix cell."""
        return JobCell.of(self.name, self.matrix)

    @property
    def energy_kwh_saved(self) -> float:
        """Measured energy of the skipped tests in this job (history mean)."""
        return sum(item.energy_kwh for item in self.skip)

    @property
    def wall_s_saved(self) -> float:
        """Measured wall time of the skipped tests in this job (history mean)."""
        return sum(item.wall_s for item in self.skip)


@final
@dataclass(slots=True)
class TestPlan:
    """Which tests each job of a matrix may skip, with the history it was learned from."""

    __test__ = False  # not a pytest test class

    created_at: str
    jobs: list[PlannedJob]
    source_run_ids: list[str] = field(default_factory=list)
    tool_version: str = __version__
    granularity: str = "test"
    balance: str = "time"
    min_runs: int = 5
    kept: dict[str, int] = field(default_factory=dict)
    sensitive: dict[str, list[str] | None] = field(default_factory=dict)
    format_version: int = PLAN_FORMAT_VERSION

    def job(self, name: str, matrix: Mapping[str, str] | None = None) -> PlannedJob | None:
        """The job named ``name`` (its matrix values decide between jobs sharing a name)."""
        named = [job for job in self.jobs if job.name == name]
        if len(named) == 1:
            return named[0]
        wanted = dict(matrix or {})
        return next((job for job in named if job.matrix == wanted), None)

    def skip_pairs(self) -> set[tuple[JobCell, str]]:
        """Every ``(cell, nodeid)`` the plan skips."""
        return {(job.cell, item.nodeid) for job in self.jobs for item in job.skip}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form."""
        return {
            "format": PLAN_FORMAT,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "granularity": self.granularity,
            "balance": self.balance,
            "min_runs": self.min_runs,
            "source_run_ids": list(self.source_run_ids),
            "kept": dict(sorted(self.kept.items())),
            "sensitive": dict(sorted(self.sensitive.items())),
            "jobs": [
                {
                    "name": job.name,
                    "matrix": dict(sorted(job.matrix.items())),
                    "load": job.load,
                    "energy_kwh_saved": job.energy_kwh_saved,
                    "wall_s_saved": job.wall_s_saved,
                    "skip": [
                        {
                            "nodeid": item.nodeid,
                            "covered_by": item.covered_by,
                            "energy_kwh": item.energy_kwh,
                            "wall_s": item.wall_s,
                        }
                        for item in job.skip
                    ],
                }
                for job in self.jobs
            ],
        }

    def to_json(self) -> str:
        """The plan as JSON text."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the plan to ``path`` atomically."""
        from pytest_carbon.report.io import write_atomic

        write_atomic(str(path), self.to_json())


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def plan_from_dict(data: Any, source: str = "<plan>") -> TestPlan:
    """A plan from its JSON form; :class:`InputError` on another format, version or bad field."""
    fix = "create it again with `pytest-carbon matrix plan-tests`"
    if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
        raise InputError(source, "not a pytest-carbon test plan", fix=fix)
    version = data.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise InputError(
            source,
            f"unsupported test plan format_version {version!r} (this pytest-carbon reads "
            f"{PLAN_FORMAT_VERSION})",
            fix=fix,
        )
    try:
        created = str(data["created_at"])
        parse_time(created)
        jobs = [
            PlannedJob(
                name=str(job["name"]),
                matrix={str(k): str(v) for k, v in dict(job.get("matrix") or {}).items()},
                load=float(job.get("load", 0.0)),
                skip=[
                    SkippedTest(
                        nodeid=str(item["nodeid"]),
                        covered_by=str(item.get("covered_by", "")),
                        energy_kwh=float(item.get("energy_kwh", 0.0)),
                        wall_s=float(item.get("wall_s", 0.0)),
                    )
                    for item in job["skip"]
                ],
            )
            for job in data["jobs"]
        ]
        return TestPlan(
            created_at=created,
            jobs=jobs,
            source_run_ids=[str(run) for run in data.get("source_run_ids", [])],
            tool_version=str(data.get("tool_version", "")),
            granularity=str(data.get("granularity", "test")),
            balance=str(data.get("balance", "time")),
            min_runs=int(data.get("min_runs", 0)),
            kept={str(k): int(v) for k, v in dict(data.get("kept") or {}).items()},
            sensitive={
                str(k): None if v is None else [str(a) for a in v]
                for k, v in dict(data.get("sensitive") or {}).items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise InputError(
            source, f"damaged test plan ({type(exc).__name__}: {exc})", fix=fix
        ) from None


def load_plan(path: str | Path) -> TestPlan:
    """Read a plan written by ``pytest-carbon matrix plan-tests``."""
    from pytest_carbon.matrix.history import read_json

    return plan_from_dict(read_json(Path(path)), str(path))


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time as an aware datetime (UTC when it has no zone); ValueError otherwise."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------- the learner


@final
class TestPlanner:
    """Learn per-test behaviour across matrix cells from past runs; plan the next run.

    Parameters are stored by ``__init__`` and nothing else; :meth:`fit` and :meth:`observe`
    learn; learned state lives in attributes ending in ``_``. With ``inherit_module_axes``, a
    test is planned with the axes its file's other tests were found to depend on as well as its
    own (a database test that never failed yet still runs once per database).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        min_runs: int = 5,
        recent_failures: int = 3,
        granularity: str = "test",
        balance: str = "time",
        inherit_module_axes: bool = True,
    ) -> None:
        self.min_runs = min_runs
        self.recent_failures = recent_failures
        self.granularity = granularity
        self.balance = balance
        self.inherit_module_axes = inherit_module_axes

    def fit(self, runs: Iterable[RunTests]) -> TestPlanner:
        """Learn from ``runs`` (oldest first), forgetting anything learned before."""
        self.reset()
        for run in runs:
            self.observe(run)
        return self

    def reset(self) -> None:
        """Forget everything learned."""
        self.stats_: dict[str, UnitStats] = {}
        self.runs_seen_ = 0
        self.source_run_ids_: list[str] = []
        self.runner_units_: dict[JobCell, set[str]] = {}

    def unit_of(self, nodeid: str) -> str:
        """The unit a test is planned as: itself, or its file in module granularity."""
        return nodeid.split("::", 1)[0] if self.granularity == "module" else nodeid

    def observe(self, run: RunTests, hidden: set[tuple[JobCell, str]] | None = None) -> None:
        """Learn one run; ``hidden`` ``(cell, nodeid)`` pairs (skipped by a plan) are not seen."""
        if not hasattr(self, "stats_"):
            self.reset()
        self.runs_seen_ += 1
        self.source_run_ids_.append(run.run_id)
        index = self.runs_seen_
        self.forget_departed(run)
        seen: dict[str, list[tuple[JobCell, str, float | None, float | None]]] = {}
        members: dict[str, dict[JobCell, set[str]]] = {}
        module = self.granularity == "module"
        for job in run.jobs:
            cell = job.cell
            if module:
                self._observe_modules(job, hidden, seen, members)
                continue
            energy, wall = job.energy_kwh, job.wall_s
            for nodeid, category in job.outcomes.items():
                if hidden and (cell, nodeid) in hidden:
                    continue
                seen.setdefault(nodeid, []).append(
                    (cell, category, energy.get(nodeid), wall.get(nodeid))
                )
        for unit, observed in seen.items():
            stats = self.stats_.get(unit)
            if stats is None:
                stats = self.stats_[unit] = UnitStats(index)
            stats.observe(index, observed, run.commit)
            for cell, *_ in observed:
                self.runner_units_.setdefault(cell, set()).add(unit)
            if module:
                known = stats.members or {}
                for cell, names in members[unit].items():
                    known[cell] = frozenset(names)
                stats.members = known

    def forget_departed(self, run: RunTests) -> None:
        """A job that neither ran nor deselected a test it used to run no longer covers it.

        (The test was removed there, or is skipped there now.) A test hidden from the learner
        stays in ``outcomes`` and so stays covered.
        """
        for job in run.jobs:
            known = self.runner_units_.get(job.cell)
            if not known or not job.complete:
                continue
            names = job.outcomes.keys() | job.deselected
            present = names if self.granularity == "test" else {self.unit_of(n) for n in names}
            gone = known - present
            for unit in gone:
                self.stats_[unit].runners.discard(job.cell)
            known -= gone

    def _observe_modules(
        self,
        job: JobTests,
        hidden: set[tuple[JobCell, str]] | None,
        seen: dict[str, list[tuple[JobCell, str, float | None, float | None]]],
        members: dict[str, dict[JobCell, set[str]]],
    ) -> None:
        """Fold one job's tests into per-module observations."""
        cell = job.cell
        folded: dict[str, list[Any]] = {}
        for nodeid, category in job.outcomes.items():
            if hidden and (cell, nodeid) in hidden:
                continue
            unit = self.unit_of(nodeid)
            slot = folded.setdefault(unit, [set(), None, None])
            slot[0].add(category)
            energy, wall = job.energy_kwh.get(nodeid), job.wall_s.get(nodeid)
            if energy is not None:
                slot[1] = (slot[1] or 0.0) + energy
            if wall is not None:
                slot[2] = (slot[2] or 0.0) + wall
            members.setdefault(unit, {}).setdefault(cell, set()).add(nodeid)
        for unit, (categories, energy, wall) in folded.items():
            category = FAILED if FAILED in categories else "+".join(sorted(categories))
            seen.setdefault(unit, []).append((cell, category, energy, wall))

    # ----------------------------------------------------------------------- planning

    def reason_to_keep(self, stats: UnitStats, changed: bool) -> str | None:
        """Why a unit must run in every job, or None when it may be covered by another job."""
        if changed:
            return CHANGED
        if stats.flaky:
            return FLAKY
        if stats.axes is None:
            return UNEXPLAINED
        if stats.evidence < self.min_runs:
            return NEW
        if stats.last_failure is not None and (
            self.runs_seen_ - stats.last_failure < self.recent_failures
        ):
            return RECENT
        return None

    def plan(
        self,
        cells: Sequence[JobCell] | None = None,
        *,
        changed: Sequence[str] = (),
        created_at: str | None = None,
    ) -> TestPlan:
        """The plan for a run of ``cells`` (default: every cell seen in history).

        ``changed`` lists changed file paths or module names: matching tests are never skipped.
        """
        stats_by_unit: dict[str, UnitStats] = getattr(self, "stats_", {})
        if cells is None:
            cells = sorted({cell for stats in stats_by_unit.values() for cell in stats.runners})
        cells = sorted(set(cells))
        changes = ChangeMatcher(changed)
        fallback = self.fallback_cost()
        order = {cell: index for index, cell in enumerate(cells)}
        inherited = self.module_axes() if self.inherit_module_axes else {}
        loads = [0.0] * len(cells)
        kept: dict[str, int] = {}
        sensitive: dict[str, list[str] | None] = {}
        coverable: list[tuple[float, str, UnitStats, list[int], list[float], frozenset[str]]] = []
        for unit, stats in stats_by_unit.items():
            runners = sorted(order[cell] for cell in stats.runners if cell in order)
            if not runners:
                continue
            if stats.axes is None or stats.axes:
                sensitive[unit] = None if stats.axes is None else sorted(stats.axes)
            costs = [self.cost(stats, cells[index], fallback) for index in runners]
            reason = SINGLE if len(runners) < 2 else None
            reason = reason or self.reason_to_keep(stats, bool(changed) and changes(unit))
            if reason is not None:
                kept[reason] = kept.get(reason, 0) + 1
                for index, cost in zip(runners, costs, strict=True):
                    loads[index] += cost
                continue
            axes = (stats.axes or frozenset()) | inherited.get(file_of(unit), frozenset())
            coverable.append((max(costs), unit, stats, runners, costs, axes))
        coverable.sort(key=lambda entry: (-entry[0], entry[1]))
        skips: list[list[SkippedTest]] = [[] for _ in cells]
        for _, unit, stats, runners, costs, axes in coverable:
            cost_of = dict(zip(runners, costs, strict=True))
            groups = [runners] if not axes else classes(cells, runners, axes)
            for group in groups:
                keeper = min(group, key=lambda index: (loads[index] + cost_of[index], index))
                loads[keeper] += cost_of[keeper]
                for index in group:
                    if index != keeper:
                        skips[index].extend(self.skipped(unit, stats, cells[index], cells[keeper]))
        jobs = [
            PlannedJob(
                name=cell.name,
                matrix=cell.values,
                skip=sorted(skips[index], key=lambda item: item.nodeid),
                load=loads[index],
            )
            for index, cell in enumerate(cells)
        ]
        return TestPlan(
            created_at=created_at or now_iso(),
            jobs=jobs,
            source_run_ids=list(getattr(self, "source_run_ids_", [])),
            granularity=self.granularity,
            balance=self.balance,
            min_runs=self.min_runs,
            kept=kept,
            sensitive=sensitive,
        )

    def module_axes(self) -> dict[str, frozenset[str]]:
        """Per test file, the axes its tests were found to depend on (explained ones only)."""
        axes: dict[str, frozenset[str]] = {}
        for unit, stats in getattr(self, "stats_", {}).items():
            if stats.axes:
                path = file_of(unit)
                axes[path] = axes.get(path, frozenset()) | stats.axes
        return axes

    def cost(self, stats: UnitStats, cell: JobCell, fallback: float) -> float:
        """The unit's balancing cost in ``cell``: measured there, else its mean elsewhere."""
        measured = stats.mean_cost(cell, self.balance)
        if measured is not None:
            return measured
        costs = (stats.mean_cost(other, self.balance) for other in stats.cost)
        others = [cost for cost in costs if cost is not None]
        return sum(others) / len(others) if others else fallback

    def fallback_cost(self) -> float:
        """The cost of a unit never measured: the median measured cost, else 1 (count tests)."""
        measured = [
            cost
            for stats in getattr(self, "stats_", {}).values()
            for cost in (stats.mean_cost(cell, self.balance) for cell in stats.cost)
            if cost is not None
        ]
        return statistics.median(measured) if measured else 1.0

    def skipped(
        self, unit: str, stats: UnitStats, cell: JobCell, keeper: JobCell
    ) -> list[SkippedTest]:
        """The plan entries of skipping ``unit`` in ``cell`` (one per test of a module)."""
        energy = stats.mean_cost(cell, "energy") or 0.0
        wall = stats.mean_cost(cell, "time") or 0.0
        if stats.members is None:
            return [SkippedTest(unit, keeper.label, energy, wall)]
        names = sorted(stats.members.get(cell, ()))
        share = 1.0 / max(len(names), 1)
        return [SkippedTest(name, keeper.label, energy * share, wall * share) for name in names]


def file_of(unit: str) -> str:
    """The test file of a node id (a module unit is its own file)."""
    return unit.split("::", 1)[0]


def classes(
    cells: Sequence[JobCell], indices: Sequence[int], axes: frozenset[str]
) -> list[list[int]]:
    """The ``cells`` at ``indices`` grouped by their values of ``axes``.

    A cell lacking one of the axes is a class of its own.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    alone: list[list[int]] = []
    ordered = sorted(axes)
    for index in indices:
        values = cells[index].values
        if any(axis not in values for axis in ordered):
            alone.append([index])
            continue
        groups.setdefault(tuple(values[axis] for axis in ordered), []).append(index)
    return [*groups.values(), *alone]


# --------------------------------------------------------------------------- changed files


@final
class ChangeMatcher:
    """Whether a test file is touched by a change list of paths or dotted module names.

    A test matches a changed path when it is that file, lies under that folder, lies under the
    folder of a changed ``conftest.py``, or shares its module name with a changed source file
    (``src/pkg/db.py`` matches ``tests/test_db.py`` and ``tests/db_test.py``).
    """

    def __init__(self, changed: Iterable[str]) -> None:
        self.paths: list[str] = []
        self.folders: list[str] = []
        self.stems: set[str] = set()
        for raw in changed:
            path = normalize_path(raw)
            if not path:
                continue
            self.paths.append(path)
            name = PurePosixPath(path)
            if name.name == "conftest.py":
                self.folders.append(str(name.parent) if str(name.parent) != "." else "")
            elif name.suffix:
                stem = module_stem(name.stem)
                if stem not in ("__init__", "__main__", ""):
                    self.stems.add(stem)
            else:
                self.folders.append(path)
        self.cache: dict[str, bool] = {}

    def __call__(self, unit: str) -> bool:
        test_file = normalize_path(unit.split("::", 1)[0])
        known = self.cache.get(test_file)
        if known is None:
            known = self.cache[test_file] = self.matches(test_file)
        return known

    def matches(self, test_file: str) -> bool:
        """Whether ``test_file`` is touched by the change list."""
        for path in self.paths:
            if test_file == path or test_file.endswith("/" + path):
                return True
            if path.endswith("/" + test_file):
                return True
        for folder in self.folders:
            if not folder or test_file.startswith(folder + "/") or f"/{folder}/" in test_file:
                return True
        return module_stem(PurePosixPath(test_file).stem) in self.stems


def normalize_path(raw: str) -> str:
    """A path in POSIX form without ``./`` or a trailing slash; a dotted module as a path."""
    text = raw.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    text = text.rstrip("/")
    if text and "/" not in text and not text.endswith(".py") and "." in text:
        text = text.replace(".", "/") + ".py"  # a dotted module name
    return text


def module_stem(stem: str) -> str:
    """A file stem without a ``test_`` prefix or ``_test`` suffix."""
    if stem.startswith("test_"):
        stem = stem[5:]
    if stem.endswith("_test"):
        stem = stem[:-5]
    return stem


def read_changed_files(path: str | Path) -> list[str]:
    """The paths listed in a changed-files file, one a line (blank lines and ``#`` ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            str(path),
            f"cannot read the changed-files list: {exc.strerror or exc}",
            fix="pass a file with one changed path a line, e.g. from `git diff --name-only`",
        ) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "the changed-files list is not UTF-8 text") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


# --------------------------------------------------------------------------- reading reports


def job_name_of(job: str | None, matrix: Mapping[str, str], fallback: str) -> str:
    """A report's job name: its job, else its matrix values joined, else ``fallback``."""
    return job or "-".join(value for _, value in sorted(matrix.items())) or fallback


def report_paths(sources: Iterable[str | Path]) -> list[Path]:
    """The JSON report files of files and folders (searched deeply, sorted)."""
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not files:
                raise InputError(
                    str(path),
                    "folder holds no .json reports",
                    fix="pass reports written by --carbon-json",
                )
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(str(path), "no such file or folder", fix="check the path")
    return found


def read_report_runs(sources: Iterable[str | Path]) -> list[RunTests]:
    """Runs of pytest-carbon JSON reports, oldest first; one report per job.

    Reports are grouped by ``identity.run_id``; a report without one belongs to the run named
    by its folder. Test plans found among the files are passed over.
    """
    from pytest_carbon.matrix.history import read_json
    from pytest_carbon.report.model import report_from_dict

    runs: dict[tuple[str, str], dict[JobCell, tuple[str, JobTests]]] = {}
    info: dict[tuple[str, str], tuple[str, str | None]] = {}
    for path in report_paths(sources):
        data = read_json(path)
        if isinstance(data, Mapping) and data.get("format") == PLAN_FORMAT:
            continue
        report = report_from_dict(data, str(path))
        identity = report.identity
        cell = JobCell.of(job_name_of(identity.job, identity.matrix, path.stem), identity.matrix)
        deselected = frozenset(report.deselection.nodeids if report.deselection else ())
        job = JobTests(cell, {}, deselected=deselected)
        for test in report.tests:
            category = category_of(test.outcome)
            if category is None:
                continue
            job.outcomes[test.nodeid] = category
            job.energy_kwh[test.nodeid] = test.energy_kwh
            job.wall_s[test.nodeid] = test.wall_s
        key = (identity.project or "", identity.run_id or path.parent.name)
        jobs = runs.setdefault(key, {})
        earlier = jobs.get(cell)
        if earlier is None or earlier[0] <= report.finished_at:
            jobs[cell] = (report.finished_at, job)  # a re-run of the job replaces the first
        started, commit = info.get(key, (report.started_at, identity.commit))
        info[key] = (min(started, report.started_at), commit or identity.commit)
    result = [
        RunTests(
            run_id=run_id,
            started_at=info[(project, run_id)][0],
            jobs=[job for _, job in jobs.values()],
            commit=info[(project, run_id)][1],
            project=project,
        )
        for (project, run_id), jobs in runs.items()
    ]
    result.sort(key=lambda run: (run.started_at, run.run_id))
    return result


__all__ = [
    "PLAN_FORMAT",
    "PLAN_FORMAT_VERSION",
    "ChangeMatcher",
    "JobCell",
    "JobTests",
    "PlannedJob",
    "RunTests",
    "SkippedTest",
    "TestPlan",
    "TestPlanner",
    "load_plan",
    "plan_from_dict",
    "read_changed_files",
    "read_report_runs",
]
