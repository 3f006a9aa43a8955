"""Mozilla-style baseline: symmetric co-failure confidence, equivalence sets, cheapest cover.

Two jobs are *equivalent* when, among the runs in which both had a known outcome and at least
one of them failed, they failed together in at least ``min_confidence`` of the cases (and
there were at least ``min_support`` such runs). Equivalence is closed transitively into sets;
each set runs its cheapest job and skips the others. Jobs in no set always run. There is no
notion of time, context or allowed-to-fail cells: that is what the selector adds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

from pytest_carbon.matrix.history import FAILING_OUTCOMES, KNOWN_OUTCOMES, JobResult, Run
from pytest_carbon.matrix.selector import (
    DAMAGE_ERRORS,
    Observation,
    Plan,
    RunContext,
    Skip,
    as_runs,
    check_usable,
    damaged,
    full_plan,
    read_model,
    write_model,
)


@final
@dataclass(slots=True)
class PairCounts:
    """Co-failure counts of one project: per unordered pair, [either failed, both failed];
    per job, [known outcomes, failures] (which job a plan in waves runs first)."""

    pairs: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)

    def failure_rate(self, name: str) -> float:
        """Share of a job's known outcomes that failed, smoothed (0 without any)."""
        known, failed = self.failures.get(name, (0, 0))
        return failed / (known + 1.0)

    def counts(self, a: str, b: str) -> list[int] | None:
        """The counts of the pair, in either order."""
        first, second = (a, b) if a < b else (b, a)
        return self.pairs.get(first, {}).get(second)

    def add(self, outcomes: Mapping[str, int]) -> None:
        """Fold one run's known outcomes (1 failed, 0 passed) into the pair counts."""
        for name, bad in outcomes.items():
            total = self.failures.setdefault(name, [0, 0])
            total[0] += 1
            total[1] += bad
        failing = [name for name, bad in outcomes.items() if bad]
        if not failing:
            return
        names = sorted(outcomes)
        for index, a in enumerate(names):
            row = self.pairs.setdefault(a, {}) if outcomes[a] else self.pairs.get(a)
            for b in names[index + 1 :]:
                if not (outcomes[a] or outcomes[b]):
                    continue
                if row is None:
                    row = self.pairs.setdefault(a, {})
                cell = row.setdefault(b, [0, 0])
                cell[0] += 1
                cell[1] += outcomes[a] & outcomes[b]


@final
class MozillaBaseline:
    """Equivalence-set baseline with the same interface as :class:`MatrixSelector`."""

    kind: Final = "MozillaBaseline"

    def __init__(self, min_confidence: float = 0.9, *, min_support: int = 5) -> None:
        self.min_confidence = min_confidence
        self.min_support = min_support

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {"min_confidence": self.min_confidence, "min_support": self.min_support}

    def fit(self, history: Iterable[Run] | Iterable[JobResult]) -> MozillaBaseline:
        """Count co-failures over complete history."""
        self.check_params()
        self.projects_: dict[str, PairCounts] = {}
        for run in as_runs(history):
            self.update(Observation.from_run(run))
        return self

    def update(self, observed: Observation) -> MozillaBaseline:
        """Count co-failures among the jobs that ran."""
        counts = self.projects_.setdefault(observed.context.project, PairCounts())
        counts.add(
            {
                name: int(outcome in FAILING_OUTCOMES)
                for name, outcome in observed.outcomes.items()
                if outcome in KNOWN_OUTCOMES
            }
        )
        for name, seconds in observed.durations.items():
            total = counts.durations.setdefault(name, [0.0, 0.0])
            total[0] += seconds
            total[1] += 1.0
        return self

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        """Run the cheapest job of each equivalence set and every job in no set."""
        if not hasattr(self, "projects_"):
            raise RuntimeError("MozillaBaseline is not fitted: call fit() or load() first")
        context = context or RunContext()
        names = list(dict.fromkeys(jobs))
        counts = self.projects_.get(context.project)
        if counts is None and len(self.projects_) == 1:
            counts = next(iter(self.projects_.values()))
        if counts is None:
            return full_plan(names, "no history for this project")
        groups = self.equivalence_sets(counts, names)
        run: list[str] = []
        skip: list[Skip] = []
        reasons: dict[str, str] = {}
        for group in groups:
            keep = min(group, key=lambda name: (self.mean_duration(counts, name), name))
            run.append(keep)
            reasons[keep] = "cheapest job of its equivalence set"
            for name in group:
                if name != keep:
                    skip.append(Skip(name, self.reason(counts, name, keep)))
        order = {name: index for index, name in enumerate(names)}
        run.sort(key=order.__getitem__)
        lead = max(run, key=counts.failure_rate)
        waves: tuple[tuple[str, ...], ...] = ()
        if len(run) > 1 and counts.failure_rate(lead) > 0:
            waves = ((lead,), tuple(name for name in run if name != lead))
        return Plan(tuple(run), tuple(skip), reasons, full=not skip, waves=waves)

    def equivalence_sets(self, counts: PairCounts, names: Sequence[str]) -> list[list[str]]:
        """Jobs joined transitively by confident co-failure (singletons for the rest)."""
        parent = {name: name for name in names}

        def root(name: str) -> str:
            while parent[name] != name:
                parent[name] = parent[parent[name]]
                name = parent[name]
            return name

        for index, a in enumerate(names):
            for b in names[index + 1 :]:
                cell = counts.counts(a, b)
                if cell is None or cell[0] < self.min_support:
                    continue
                if cell[1] / cell[0] >= self.min_confidence:
                    parent[root(a)] = root(b)
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(root(name), []).append(name)
        return list(groups.values())

    @staticmethod
    def mean_duration(counts: PairCounts, name: str) -> float:
        """Mean recorded duration of a job (0 when unknown)."""
        total = counts.durations.get(name)
        return total[0] / total[1] if total and total[1] else 0.0

    @staticmethod
    def reason(counts: PairCounts, name: str, keep: str) -> str:
        """Why ``name`` may be skipped when ``keep`` runs."""
        cell = counts.counts(name, keep)
        if cell is None or not cell[0]:
            return f"equivalent to {keep} through other jobs"
        share = 100.0 * cell[1] / cell[0]
        return f"fails with {keep} in {share:.0f} % of {cell[0]} co-failure(s)"

    def save(self, path: str | Path) -> None:
        """Write the fitted baseline as versioned JSON."""
        state = {
            name: {
                "pairs": counts.pairs,
                "durations": counts.durations,
                "failures": counts.failures,
            }
            for name, counts in self.projects_.items()
        }
        write_model(path, self.kind, self.get_params(), state)

    @classmethod
    def load(cls, path: str | Path) -> MozillaBaseline:
        """Read a baseline written by :meth:`save`."""
        data = read_model(path, cls.kind)
        try:
            model = cls(**data["params"])
            model.check_params()
            model.projects_ = {
                name: PairCounts(
                    {
                        a: {b: [int(x) for x in v] for b, v in row.items()}
                        for a, row in raw["pairs"].items()
                    },
                    {k: [float(x) for x in v] for k, v in raw["durations"].items()},
                    failure_counts(raw.get("failures", {})),
                )
                for name, raw in data["state"].items()
            }
        except DAMAGE_ERRORS as exc:
            raise damaged(path, str(exc)) from None
        check_usable(path, model.plan_every_project)
        return model

    def check_params(self) -> None:
        """Raise ValueError on parameters outside their range."""
        if not isinstance(self.min_confidence, (int, float)) or not 0 < self.min_confidence <= 1:
            raise ValueError("min_confidence must be a number in (0, 1]")
        if not isinstance(self.min_support, int) or self.min_support < 1:
            raise ValueError("min_support must be a whole number >= 1")

    def plan_every_project(self) -> None:
        """Plan once for every stored project and its jobs (used to vet a loaded model)."""
        for name, counts in self.projects_.items():
            jobs = sorted(set(counts.pairs) | set(counts.durations))
            self.plan(jobs, RunContext(project=name))


def failure_counts(raw: Mapping[str, Any]) -> dict[str, list[int]]:
    """Per-job [known outcomes, failures] read back from JSON (absent in older models)."""
    counts = {str(name): [int(x) for x in value] for name, value in raw.items()}
    if any(len(v) != 2 or not 0 <= v[1] <= v[0] for v in counts.values()):
        raise ValueError("a job's failure counts are out of range")
    return counts
