"""Honest, time-ordered replay of a selector over recorded CI history.

Per project, the usable runs are ordered by start time; the first ``train_share`` of them train
the selector, and every later run is replayed in time order: the selector plans, only the
outcomes of the jobs it chose to run are revealed to it, and it learns from those. A failing
run is *caught* when at least one planned job failed.

Definitions:

* a *usable* run has at least ``min_known_jobs`` jobs with a readable outcome (passed, failed or
  error) and a status of passed, failed or errored (canceled runs are left out);
* a *failing* run has status ``failed`` and at least one job that visibly failed; ``errored``
  runs (the run broke outside its tests, e.g. while installing) are replayed and count for the
  skipped share but not as failing runs, unless ``errored_as_failing`` is set;
* a run with status ``passed`` never counts as failing, even when an allowed-to-fail job failed.

A replay with ``waves`` above 1 runs each plan in its waves (:attr:`Plan.waves`), as a
pipeline whose later jobs wait for its earlier ones: a wave runs only when no job of the waves
before it failed. A failure in a wave already catches the run, so recall is what the whole plan
run at once keeps; the jobs left out after it count as skipped, and only the jobs that ran are
revealed. The price is time: a run waits for each of its waves in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from pytest_carbon.matrix.history import Run
from pytest_carbon.matrix.selector import Observation, Plan, RunContext, context_of

USABLE_STATUSES = frozenset({"passed", "failed", "errored"})


class Selector(Protocol):
    """What the replay needs from a selector."""

    def fit(self, history: Iterable[Run]) -> Any:
        """Learn from complete history."""

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        """Choose the jobs to run."""

    def update(self, observed: Observation) -> Any:
        """Learn from what the planned jobs revealed."""


@final
@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """How history is split and scored."""

    train_share: float = 0.8
    min_runs: int = 50
    min_known_jobs: int = 2
    errored_as_failing: bool = False
    waves: int = 1


@final
@dataclass(slots=True)
class ReplayResult:
    """Pooled figures of one replay."""

    label: str
    runs: int = 0
    jobs: int = 0
    skipped_jobs: int = 0
    full_runs: int = 0
    second_waves: int = 0
    waves_run: int = 0
    failing_runs: int = 0
    caught_runs: int = 0
    time_s: float = 0.0
    time_saved_s: float = 0.0
    energy_kwh: float = 0.0
    energy_saved_kwh: float = 0.0
    projects: int = 0
    plan_seconds: float = 0.0
    missed: list[str] = field(default_factory=list)

    @property
    def failing_run_recall(self) -> float:
        """Share of failing runs in which a planned job failed."""
        return self.caught_runs / self.failing_runs if self.failing_runs else 1.0

    @property
    def jobs_skipped_share(self) -> float:
        """Share of all jobs of the replayed runs that were skipped."""
        return self.skipped_jobs / self.jobs if self.jobs else 0.0

    @property
    def time_saved_share(self) -> float | None:
        """Share of the recorded job time that skipping saved (None without durations)."""
        return self.time_saved_s / self.time_s if self.time_s else None

    @property
    def energy_saved_share(self) -> float | None:
        """Share of the recorded job energy that skipping saved (None without energies)."""
        return self.energy_saved_kwh / self.energy_kwh if self.energy_kwh else None

    @property
    def mean_plan_ms(self) -> float:
        """Mean time of one ``plan`` call in milliseconds."""
        return 1000.0 * self.plan_seconds / self.runs if self.runs else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "label": self.label,
            "failing_run_recall": self.failing_run_recall,
            "jobs_skipped_share": self.jobs_skipped_share,
            "time_saved_share": self.time_saved_share,
            "energy_saved_share": self.energy_saved_share,
            "failing_runs": self.failing_runs,
            "caught_runs": self.caught_runs,
            "runs": self.runs,
            "jobs": self.jobs,
            "skipped_jobs": self.skipped_jobs,
            "full_runs": self.full_runs,
            "second_waves": self.second_waves,
            "waves_run": self.waves_run,
            "projects": self.projects,
            "mean_plan_ms": self.mean_plan_ms,
        }


@final
@dataclass(frozen=True, slots=True)
class Split:
    """Training runs and the runs to replay, both oldest first."""

    train: list[Run]
    test: list[Run]
    projects: int
    config: ReplayConfig = ReplayConfig()


def is_usable(run: Run, config: ReplayConfig) -> bool:
    """Whether a run can be scored: enough known outcomes and a usable status."""
    return run.status in USABLE_STATUSES and run.known_jobs >= config.min_known_jobs


def is_failing(run: Run, config: ReplayConfig) -> bool:
    """Whether a run failed in a way a planned job could have shown."""
    bad = ("failed", "errored") if config.errored_as_failing else ("failed",)
    return run.status in bad and any(job.failed for job in run.jobs)


def split_history(runs: Iterable[Run], config: ReplayConfig) -> Split:
    """Per project: the first ``train_share`` of usable runs train, the rest are replayed."""
    by_project: dict[str, list[Run]] = {}
    for run in runs:
        if is_usable(run, config):
            by_project.setdefault(run.project, []).append(run)
    train: list[Run] = []
    test: list[Run] = []
    projects = 0
    for project_runs in by_project.values():
        if len(project_runs) < config.min_runs:
            continue
        projects += 1
        project_runs.sort(key=lambda run: (run.started_at, run.run_id))
        cut = int(round(len(project_runs) * config.train_share))
        train.extend(project_runs[:cut])
        test.extend(project_runs[cut:])
    order = _time_order
    return Split(sorted(train, key=order), sorted(test, key=order), projects, config)


def _time_order(run: Run) -> tuple[str, str, str]:
    return (run.started_at, run.project, run.run_id)


def replay(
    selector: Selector, split: Split, label: str, *, fit: bool = True, hindsight: bool = False
) -> ReplayResult:
    """Fit on the training runs, then plan, reveal and update run by run; pooled figures.

    With ``hindsight`` every job's outcome is revealed after each run, skipped or not: more
    than a real pipeline knows, for bounding what the honest replay loses.
    """
    if fit:
        selector.fit(split.train)
    result = ReplayResult(label=label, projects=split.projects)
    config = split.config
    clock = time.perf_counter
    for run in split.test:
        started = clock()
        plan = selector.plan(run.job_names, context_of(run))
        result.plan_seconds += clock() - started
        ran = score_run(result, run, plan, config)
        selector.update(Observation.from_run(run, None if hindsight else ran))
    return result


def jobs_run(run: Run, plan: Plan, in_waves: bool) -> tuple[set[str], int]:
    """The jobs of ``run`` that ``plan`` ran, and in how many waves.

    In one wave, every planned job runs at once. In waves, the plan's waves run in turn until
    one holds a failed job.
    """
    if not in_waves:
        return set(plan.run), 1
    failed = {job.job for job in run.jobs if job.failed}
    ran: set[str] = set()
    waves = 0
    for wave in plan.in_waves:
        ran.update(wave)
        waves += 1
        if failed.intersection(wave):
            break
    return ran, waves


def score_run(result: ReplayResult, run: Run, plan: Plan, config: ReplayConfig) -> set[str]:
    """Add one replayed run to the pooled figures; return the jobs that ran."""
    ran, waves = jobs_run(run, plan, config.waves > 1)
    result.runs += 1
    result.jobs += len(run.jobs)
    result.second_waves += int(waves > 1)
    result.waves_run += waves
    result.full_runs += int(len(ran) >= len(run.jobs))
    for job in run.jobs:
        skipped = job.job not in ran
        result.skipped_jobs += int(skipped)
        if job.duration_s is not None:
            result.time_s += job.duration_s
            result.time_saved_s += job.duration_s if skipped else 0.0
        if job.energy_kwh is not None:
            result.energy_kwh += job.energy_kwh
            result.energy_saved_kwh += job.energy_kwh if skipped else 0.0
    if is_failing(run, config):
        result.failing_runs += 1
        if any(job.failed for job in run.jobs if job.job in ran):
            result.caught_runs += 1
        elif len(result.missed) < 1000:
            result.missed.append(f"{run.project}#{run.run_id}")
    return ran


def replay_many(
    factories: Sequence[tuple[str, Callable[[], Selector]]], split: Split
) -> list[ReplayResult]:
    """Replay several selectors on the same split, one after another."""
    return [replay(factory(), split, label) for label, factory in factories]
