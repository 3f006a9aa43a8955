"""The matrix selector: learns which CI jobs fail together and plans which ones to run.

For every job the selector keeps a two-state (pass/fail) Markov chain of its own outcomes, so
a job that just failed is expected to fail again and a job not seen for a while drifts back to
its long-run failure rate. For every ordered pair it keeps how often ``B`` failed when ``A``
failed (an asymmetric conditional, not a symmetric "equivalence"). Planning picks jobs greedily,
cheapest per unit of risk removed first, until the estimated chance that the run fails only in
skipped jobs falls under a budget derived from ``target_recall``. Allowed-to-fail cells are
recognised and never counted as catching a failure; jobs without enough history always run;
every ``full_run_every``-th run of a project runs the whole matrix to keep the statistics honest.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

import numpy as np

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import FAILING_OUTCOMES, KNOWN_OUTCOMES, JobResult, Run

MODEL_FORMAT: Final = "pytest-carbon-matrix-model"
MODEL_FORMAT_VERSION: Final = 1
COSTS: Final = ("auto", "jobs", "duration", "energy")


# --------------------------------------------------------------------------- shared types


@final
@dataclass(frozen=True, slots=True)
class RunContext:
    """What is known about a run before it starts."""

    project: str = ""
    branch: str | None = None
    event: str | None = None
    run_id: str | None = None
    started_at: str | None = None
    commit: str | None = None


@final
@dataclass(frozen=True, slots=True)
class Skip:
    """One job the plan leaves out, with the reason a person can check."""

    job: str
    reason: str
    risk: float = 0.0


@final
@dataclass(frozen=True, slots=True)
class Plan:
    """Which jobs of one run to run and which to skip."""

    run: tuple[str, ...]
    skip: tuple[Skip, ...]
    reasons: Mapping[str, str] = field(default_factory=dict)
    full: bool = False
    risk: float = 0.0

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the skipped jobs."""
        return tuple(item.job for item in self.skip)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON data."""
        return {
            "run": list(self.run),
            "skip": [{"job": s.job, "reason": s.reason, "risk": s.risk} for s in self.skip],
            "reasons": dict(self.reasons),
            "full": self.full,
            "risk": self.risk,
        }


@final
@dataclass(frozen=True, slots=True)
class Observation:
    """What a run revealed: the outcomes of the jobs that ran, out of the whole matrix.

    ``run_status`` is given only when every job ran (otherwise it would leak skipped outcomes).
    """

    context: RunContext
    jobs: tuple[str, ...]
    outcomes: Mapping[str, str]
    run_status: str | None = None
    durations: Mapping[str, float] = field(default_factory=dict)
    energies: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_run(cls, run: Run, ran: Iterable[str] | None = None) -> Observation:
        """The observation of ``run`` when only the jobs in ``ran`` ran (all when None)."""
        planned = None if ran is None else set(ran)
        shown = [job for job in run.jobs if planned is None or job.job in planned]
        return cls(
            context=context_of(run),
            jobs=run.job_names,
            outcomes={job.job: job.outcome for job in shown},
            run_status=run.status if planned is None or len(shown) == len(run.jobs) else None,
            durations={j.job: j.duration_s for j in shown if j.duration_s is not None},
            energies={j.job: j.energy_kwh for j in shown if j.energy_kwh is not None},
        )


def context_of(run: Run) -> RunContext:
    """The pre-run context of a recorded run."""
    return RunContext(run.project, run.branch, run.event, run.run_id, run.started_at, run.commit)


def as_runs(history: Iterable[Run] | Iterable[JobResult]) -> list[Run]:
    """Runs, oldest first, from runs or job records."""
    from pytest_carbon.matrix.history import group_runs

    items = list(history)
    if all(isinstance(item, Run) for item in items):
        runs = [item for item in items if isinstance(item, Run)]
        return sorted(runs, key=lambda run: (run.started_at, run.project, run.run_id))
    return group_runs(item for item in items if isinstance(item, JobResult))


def package_versions() -> dict[str, str]:
    """Versions written into saved models."""
    from pytest_carbon import __version__

    return {"pytest-carbon": __version__, "python": platform.python_version()}


def write_model(path: str | Path, kind: str, params: Mapping[str, Any], state: Any) -> None:
    """Save a model as versioned JSON."""
    document = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "model": kind,
        "versions": package_versions(),
        "params": dict(params),
        "state": state,
    }
    Path(path).write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")


#: What damaged model state raises when it is used.
DAMAGE_ERRORS = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    OverflowError,
    ZeroDivisionError,
)


def check_usable(path: str | Path, trial: Callable[[], object]) -> None:
    """Run ``trial`` (plans over the stored state); damaged state fails now, as InputError."""
    try:
        trial()
    except DAMAGE_ERRORS as exc:
        raise InputError(
            str(path),
            f"model state is damaged ({type(exc).__name__}: {exc})",
            fix="re-create the model with pytest-carbon matrix fit",
        ) from None


def read_model(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a saved model document, refusing other formats and unknown versions."""
    from pytest_carbon.matrix.history import read_json

    name = str(path)
    data = read_json(Path(path))
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise InputError(
            name, "not a pytest-carbon matrix model", fix="pass a file from `matrix fit`"
        )
    version = data.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise InputError(
            name,
            f"unsupported model format_version {version!r} (this pytest-carbon reads "
            f"{MODEL_FORMAT_VERSION})",
            fix="re-run `pytest-carbon matrix fit` with this version",
        )
    if kind is not None and data.get("model") != kind:
        raise InputError(name, f"model is a {data.get('model')!r}, expected {kind!r}")
    if not isinstance(data.get("params"), dict) or "state" not in data:
        raise InputError(name, "model lacks its params or state")
    return data


# --------------------------------------------------------------------------- learned state


@final
@dataclass(slots=True)
class JobStats:
    """Everything the selector remembers about one job of one project."""

    seen: int = 0
    fails: int = 0
    lone_fails: int = 0
    trans: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # pp, pf, fp, ff
    last: int = -1  # 1 failed, 0 passed, -1 never seen
    since: int = 0  # runs of the project with this job since it was last seen
    last_fail_run: int = -1
    solo_in_passed: float = 0.0
    solo_in_failed: float = 0.0
    cost_sum: float = 0.0
    cost_n: int = 0
    energy_sum: float = 0.0
    energy_n: int = 0

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        return [
            self.seen, self.fails, self.lone_fails, self.trans, self.last, self.since,
            self.last_fail_run, self.solo_in_passed, self.solo_in_failed, self.cost_sum,
            self.cost_n, self.energy_sum, self.energy_n,
        ]  # fmt: skip

    @classmethod
    def from_list(cls, raw: Sequence[Any]) -> JobStats:
        """Inverse of :meth:`to_list`."""
        return cls(
            int(raw[0]), int(raw[1]), int(raw[2]), [int(x) for x in raw[3]], int(raw[4]),
            int(raw[5]), int(raw[6]), float(raw[7]), float(raw[8]), float(raw[9]),
            int(raw[10]), float(raw[11]), int(raw[12]),
        )  # fmt: skip


@final
@dataclass(slots=True)
class ProjectStats:
    """The selector's memory of one project."""

    jobs: dict[str, JobStats] = field(default_factory=dict)
    pairs: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # A -> B -> [n, both]
    runs: int = 0
    status_runs: int = 0
    failing_runs: int = 0
    since_full: int = 0
    last_share: float = 0.0
    trans: list[int] = field(default_factory=lambda: [0, 0, 0, 0])

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON form."""
        return {
            "jobs": {name: stats.to_list() for name, stats in self.jobs.items()},
            "pairs": self.pairs,
            "runs": self.runs,
            "status_runs": self.status_runs,
            "failing_runs": self.failing_runs,
            "since_full": self.since_full,
            "last_share": self.last_share,
            "trans": self.trans,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ProjectStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            jobs={name: JobStats.from_list(v) for name, v in raw["jobs"].items()},
            pairs={
                a: {b: [int(x) for x in v] for b, v in row.items()}
                for a, row in raw["pairs"].items()
            },
            runs=int(raw["runs"]),
            status_runs=int(raw["status_runs"]),
            failing_runs=int(raw["failing_runs"]),
            since_full=int(raw["since_full"]),
            last_share=float(raw["last_share"]),
            trans=[int(x) for x in raw["trans"]],
        )


# --------------------------------------------------------------------------- the selector


@final
class MatrixSelector:
    """Plan which CI matrix jobs to run so that failing runs are still caught.

    Parameters follow scikit-learn conventions: ``__init__`` only stores them, ``fit`` learns
    attributes ending in ``_``. ``target_recall`` is the share of failing runs a plan should
    still catch; ``cost`` weighs jobs by ``"duration"``, ``"energy"``, ``"jobs"`` (all equal)
    or ``"auto"`` (energy, else duration, else equal); ``min_history`` known outcomes are
    needed before a job may be skipped; ``full_run_every`` runs the whole matrix of a project
    every so many runs (0 never); ``max_unseen`` forces a job that has not run for that many
    runs (0 never); ``prior_strength`` is how many observations the project's pooled rates
    weigh against a job's own; ``co_failure_prior`` shrinks co-failure shares toward zero.
    """

    kind: Final = "MatrixSelector"

    def __init__(
        self,
        target_recall: float = 0.99,
        *,
        cost: str = "auto",
        min_history: int = 5,
        full_run_every: int = 25,
        max_unseen: int = 10,
        prior_strength: float = 4.0,
        co_failure_prior: float = 1.0,
    ) -> None:
        self.target_recall = target_recall
        self.cost = cost
        self.min_history = min_history
        self.full_run_every = full_run_every
        self.max_unseen = max_unseen
        self.prior_strength = prior_strength
        self.co_failure_prior = co_failure_prior

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {
            "target_recall": self.target_recall,
            "cost": self.cost,
            "min_history": self.min_history,
            "full_run_every": self.full_run_every,
            "max_unseen": self.max_unseen,
            "prior_strength": self.prior_strength,
            "co_failure_prior": self.co_failure_prior,
        }

    def set_params(self, **params: Any) -> MatrixSelector:
        """Change parameters; return self."""
        known = self.get_params()
        for key, value in params.items():
            if key not in known:
                raise ValueError(f"unknown parameter {key!r}")
            setattr(self, key, value)
        return self

    def check_params(self) -> None:
        """Raise ValueError on parameters outside their range."""
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError("target_recall must be in (0, 1]")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}")
        if self.min_history < 1 or self.full_run_every < 0 or self.max_unseen < 0:
            raise ValueError("min_history must be >= 1; full_run_every, max_unseen >= 0")

    # ------------------------------------------------------------------ learning

    def fit(self, history: Iterable[Run] | Iterable[JobResult]) -> MatrixSelector:
        """Learn from complete history (every job's outcome and the run status known)."""
        self.check_params()
        self.projects_: dict[str, ProjectStats] = {}
        self.prior_: list[float] = [0.05, 0.5, 0.2]
        for run in as_runs(history):
            self.learn(Observation.from_run(run), full=True)
        self.prior_ = self.pooled_prior()
        return self

    def update(self, observed: Observation) -> MatrixSelector:
        """Learn from the jobs that ran in one more run; return self."""
        self.check_fitted()
        full = set(observed.outcomes) >= set(observed.jobs)
        self.learn(observed, full=full)
        return self

    def check_fitted(self) -> None:
        """Raise when neither ``fit`` nor ``load`` has run."""
        if not hasattr(self, "projects_"):
            raise RuntimeError("MatrixSelector is not fitted: call fit() or load() first")

    def learn(self, observed: Observation, *, full: bool) -> None:
        """Fold one observation into the project's statistics."""
        project = self.projects_.setdefault(observed.context.project, ProjectStats())
        project.runs += 1
        project.since_full = 0 if full else project.since_full + 1
        known = {
            job: 1 if outcome in FAILING_OUTCOMES else 0
            for job, outcome in observed.outcomes.items()
            if outcome in KNOWN_OUTCOMES
        }
        status = observed.run_status
        failing = [job for job, bad in known.items() if bad]
        if status in ("passed", "failed") and known:
            project.status_runs += 1
            if status == "failed" and failing:
                project.failing_runs += 1
        partial = 0 < len(failing) < len(known)
        for name in observed.jobs:
            stats = project.jobs.setdefault(name, JobStats())
            if name in known:
                self.learn_job(project, stats, known[name], status, len(failing), partial)
            else:
                stats.since += 1
        if known:
            project.last_share = len(failing) / len(known)
        self.learn_pairs(project, known, failing)
        self.learn_costs(project, observed)

    @staticmethod
    def learn_job(
        project: ProjectStats,
        stats: JobStats,
        bad: int,
        status: str | None,
        n_failing: int,
        partial: bool,
    ) -> None:
        """Fold one known outcome into a job's statistics."""
        if stats.last >= 0:
            index = stats.last * 2 + bad
            stats.trans[index] += 1
            project.trans[index] += 1
        stats.seen += 1
        stats.fails += bad
        stats.lone_fails += int(bad and partial)
        stats.last = bad
        stats.since = 0
        if bad:
            stats.last_fail_run = project.runs
            if n_failing == 1 and status == "passed":
                stats.solo_in_passed += 1
            elif n_failing == 1 and status == "failed":
                stats.solo_in_failed += 1

    @staticmethod
    def learn_costs(project: ProjectStats, observed: Observation) -> None:
        """Fold durations and energies of the jobs that ran into their mean costs."""
        for name, seconds in observed.durations.items():
            stats = project.jobs[name]
            stats.cost_sum += seconds
            stats.cost_n += 1
        for name, kwh in observed.energies.items():
            stats = project.jobs[name]
            stats.energy_sum += kwh
            stats.energy_n += 1

    @staticmethod
    def learn_pairs(
        project: ProjectStats, known: Mapping[str, int], failing: Sequence[str]
    ) -> None:
        """Count, for each failing job A and each other known job B, whether B failed too."""
        for a in failing:
            row = project.pairs.setdefault(a, {})
            for b, bad in known.items():
                if b == a:
                    continue
                cell = row.get(b)
                if cell is None:
                    row[b] = [1, bad]
                else:
                    cell[0] += 1
                    cell[1] += bad

    def pooled_prior(self) -> list[float]:
        """Pooled rates over every project: [P(f|p), P(f|f), failing-run rate]."""
        trans = [0, 0, 0, 0]
        status_runs = failing = 0
        for project in self.projects_.values():
            for index in range(4):
                trans[index] += project.trans[index]
            status_runs += project.status_runs
            failing += project.failing_runs
        a = (trans[1] + 1.0) / (trans[0] + trans[1] + 20.0)
        b = (trans[3] + 1.0) / (trans[2] + trans[3] + 2.0)
        rate = (failing + 1.0) / (status_runs + 5.0)
        return [a, b, rate]

    # ------------------------------------------------------------------ probabilities

    def project_rates(self, project: ProjectStats) -> tuple[float, float, float]:
        """Project-level [P(f|p), P(f|f), failing-run rate], shrunk toward the pooled prior."""
        prior = self.prior_
        weight = 20.0
        pp, pf, fp, ff = project.trans
        a = (pf + weight * prior[0]) / (pp + pf + weight)
        b = (ff + weight * prior[1]) / (fp + ff + weight)
        rate = (project.failing_runs + weight * prior[2]) / (project.status_runs + weight)
        return a, b, rate

    def job_rates(self, job: JobStats, rates: tuple[float, float, float]) -> tuple[float, float]:
        """A job's P(fail | passed last) and P(fail | failed last), shrunk toward its project's."""
        strength = self.prior_strength
        pp, pf, fp, ff = job.trans
        a = (pf + strength * rates[0]) / (pp + pf + strength)
        b = (ff + strength * rates[1]) / (fp + ff + strength)
        return a, b

    def fail_probabilities(self, project: ProjectStats, stats: Sequence[JobStats]) -> np.ndarray:
        """P(each job fails now): its pass/fail chain ``since + 1`` steps after its last outcome."""
        rates = self.project_rates(project)
        out = np.empty(len(stats))
        for index, job in enumerate(stats):
            a, b = self.job_rates(job, rates)
            if job.last < 0:
                out[index] = max(a, rates[2])
                continue
            lam = b - a
            stationary = a / (1.0 - lam) if lam < 1.0 else b
            out[index] = stationary + (job.last - stationary) * lam ** (job.since + 1)
        return out

    def persist_probabilities(
        self, project: ProjectStats, stats: Sequence[JobStats], fail_p: np.ndarray
    ) -> np.ndarray:
        """The part of each job's risk that is its last failure going on (0 after a pass)."""
        rates = self.project_rates(project)
        out = np.zeros(len(stats))
        for index, job in enumerate(stats):
            if job.last == 1:
                _, b = self.job_rates(job, rates)
                out[index] = min(float(fail_p[index]), b ** (job.since + 1))
        return out

    # ------------------------------------------------------------------ planning

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        """Choose which of ``jobs`` to run; the rest are skipped, each with its reason."""
        self.check_fitted()
        context = context or RunContext()
        names = list(dict.fromkeys(jobs))
        project = self.find_project(context.project)
        if project is None or not names:
            return full_plan(names, "no history for this project")
        if self.full_run_every and project.since_full + 1 >= self.full_run_every:
            return full_plan(names, f"periodic full run (every {self.full_run_every} runs)")
        return self.plan_project(project, names, context)

    def find_project(self, name: str) -> ProjectStats | None:
        """The statistics of project ``name`` (the only project when the model has just one)."""
        project = self.projects_.get(name)
        if project is None and len(self.projects_) == 1:
            project = next(iter(self.projects_.values()))
        return project

    def plan_project(self, project: ProjectStats, names: list[str], context: RunContext) -> Plan:
        """Greedy cover: add the job removing most risk per cost until the risk is in budget."""
        stats = [project.jobs.get(name) or JobStats() for name in names]
        allowed = [self.is_allowed_to_fail(s) for s in stats]
        forced = [self.forced_reason(s) for s in stats]
        reasons = {name: why for name, why in zip(names, forced, strict=True) if why}
        counted = np.array([not a for a in allowed], dtype=bool)
        fail_p = np.where(counted, self.fail_probabilities(project, stats), 0.0)
        persist = self.persist_probabilities(project, stats, fail_p)
        risk_matrix = self.risk_matrix(project, names, stats, fail_p, persist)
        chosen = np.array([why is not None for why in forced], dtype=bool)
        if not chosen.any():
            first = int(np.argmax(np.where(counted, fail_p, -1.0)))
            chosen[first] = True
            reasons[names[first]] = "at least one job runs"
        budget = (1.0 - self.target_recall) * self.project_rates(project)[2]
        risk = self.cover(risk_matrix, fail_p, self.job_costs(stats), chosen, counted, budget)
        run: list[str] = []
        skip: list[Skip] = []
        for index, name in enumerate(names):
            if chosen[index]:
                run.append(name)
                reasons.setdefault(name, self.run_reason(float(fail_p[index])))
            else:
                skip.append(self.skip_for(project, names, index, stats, allowed, chosen, fail_p))
        return Plan(tuple(run), tuple(skip), reasons, full=not skip, risk=risk)

    def risk_matrix(
        self,
        project: ProjectStats,
        names: Sequence[str],
        stats: Sequence[JobStats],
        fail_p: np.ndarray,
        persist: np.ndarray,
    ) -> np.ndarray:
        """``R[j, i]`` bounds P(j fails and i passes): the risk job ``i`` leaves of job ``j``."""
        n = len(names)
        co = np.zeros((n, n))
        together = np.zeros((n, n))
        prior = self.co_failure_prior
        for j, a in enumerate(names):
            if fail_p[j] == 0.0:
                continue
            row = project.pairs.get(a)
            if row is not None:
                for i, b in enumerate(names):
                    cell = row.get(b)
                    if cell is not None:
                        co[j, i] = cell[1] / (cell[0] + prior)
            if stats[j].last == 1:
                last = stats[j].last_fail_run
                for i, other in enumerate(stats):
                    if other.last == 1 and other.last_fail_run == last:
                        together[j, i] = persist[i]
        new = np.maximum(fail_p - persist, 0.0)
        risk = persist[:, None] * (1.0 - together) + new[:, None] * (1.0 - co)
        risk = np.minimum(risk, fail_p[:, None])
        risk = np.minimum(risk, (1.0 - fail_p)[None, :])
        np.fill_diagonal(risk, 0.0)
        return np.asarray(risk, dtype=float)

    def job_costs(self, stats: Sequence[JobStats]) -> np.ndarray:
        """Relative cost of each job (mean 1) under the ``cost`` parameter."""
        mode = self.cost
        if mode == "auto":
            mode = "energy" if all(s.energy_n for s in stats) else "duration"
        if mode == "energy" and all(s.energy_n for s in stats):
            values = np.array([s.energy_sum / s.energy_n for s in stats])
        elif mode == "duration" and all(s.cost_n for s in stats):
            values = np.array([s.cost_sum / s.cost_n for s in stats])
        else:
            return np.ones(len(stats))
        values = np.maximum(values, 1e-9)
        return np.asarray(values / values.mean(), dtype=float)

    @staticmethod
    def cover(
        risk: np.ndarray,
        fail_p: np.ndarray,
        costs: np.ndarray,
        chosen: np.ndarray,
        counted: np.ndarray,
        budget: float,
    ) -> float:
        """Greedily add jobs to ``chosen`` (in place) until the uncovered risk is in budget."""
        left = np.where(counted, fail_p, 0.0)
        for i in np.flatnonzero(chosen):
            left = np.minimum(left, risk[:, i])
        left[chosen] = 0.0
        total = float(left.sum())
        candidates = counted & ~chosen
        while total > budget and candidates.any():
            after = np.minimum(left[:, None], risk)
            gains = (left[:, None] - after).sum(axis=0) + left
            gains = np.where(candidates, gains / costs, -1.0)
            best = int(np.argmax(gains))
            if gains[best] <= 0.0:
                break
            left = after[:, best]
            left[chosen] = 0.0
            left[best] = 0.0
            chosen[best] = True
            candidates[best] = False
            total = float(left.sum())
        return total

    def forced_reason(self, stats: JobStats) -> str | None:
        """Why a job must run whatever the risk, or None."""
        if stats.seen < self.min_history:
            return f"only {stats.seen} known outcome(s), needs {self.min_history} to be skipped"
        if self.max_unseen and stats.since >= self.max_unseen:
            return f"not run for {stats.since} runs"
        return None

    @staticmethod
    def is_allowed_to_fail(stats: JobStats) -> bool:
        """Whether the job's lone failures mostly left the run passing (``allow_failures``)."""
        return stats.solo_in_passed >= 2 and stats.solo_in_passed > stats.solo_in_failed

    @staticmethod
    def run_reason(probability: float) -> str:
        """Why a job was chosen by the cover."""
        return f"covers failure risk (fails now with p={probability:.3f})"

    def skip_for(
        self,
        project: ProjectStats,
        names: Sequence[str],
        index: int,
        stats: Sequence[JobStats],
        allowed: Sequence[bool],
        chosen: np.ndarray,
        fail_p: np.ndarray,
    ) -> Skip:
        """The skip entry of job ``index`` with its human reason."""
        name = names[index]
        own = stats[index]
        if allowed[index]:
            return Skip(
                name,
                f"allowed to fail: {own.solo_in_passed:.0f} lone failure(s) left the run passing",
            )
        best_name, best_share, best_n = "", -1.0, 0
        row = project.pairs.get(name, {})
        for other, flag in zip(names, chosen, strict=True):
            cell = row.get(other)
            if flag and cell is not None and cell[0] and cell[1] / cell[0] > best_share:
                best_name, best_share, best_n = other, cell[1] / cell[0], cell[0]
        p_now = float(fail_p[index])
        if best_name:
            reason = (
                f"fails with {best_name} in {best_share * 100:.0f} % of {best_n} "
                f"co-failure(s); fails now with p={p_now:.3f}"
            )
        else:
            rate = own.fails / own.seen if own.seen else 0.0
            reason = (
                f"failed in {own.fails} of {own.seen} runs ({rate * 100:.1f} %); "
                f"fails now with p={p_now:.3f}"
            )
        return Skip(name, reason, p_now)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the fitted model as versioned JSON."""
        self.check_fitted()
        state = {
            "prior": self.prior_,
            "projects": {name: p.to_dict() for name, p in self.projects_.items()},
        }
        write_model(path, self.kind, self.get_params(), state)

    @classmethod
    def load(cls, path: str | Path) -> MatrixSelector:
        """Read a model written by :meth:`save`; InputError on unknown versions."""
        data = read_model(path, cls.kind)
        try:
            model = cls(**data["params"])
            model.check_params()
            state = data["state"]
            model.projects_ = {k: ProjectStats.from_dict(v) for k, v in state["projects"].items()}
            model.prior_ = [float(x) for x in state["prior"]]
        except DAMAGE_ERRORS as exc:
            raise InputError(str(path), f"model state is damaged ({exc})") from None
        check_usable(path, model.plan_every_project)
        return model

    def plan_every_project(self) -> None:
        """Plan once for every stored project and its jobs (used to vet a loaded model)."""
        for name, project in self.projects_.items():
            self.plan_project(project, list(project.jobs), RunContext(project=name))


def full_plan(names: Sequence[str], reason: str) -> Plan:
    """A plan that runs every job for one reason."""
    return Plan(tuple(names), (), dict.fromkeys(names, reason), full=True)
