"""The matrix selector: learns which CI jobs fail, and with which, and plans which ones to run.

For every job of every project the selector keeps counts of its outcomes (see
:mod:`pytest_carbon.matrix.memory`); boosted trees learned from history turn them, and the
run's context, into P(the job fails now) (see :mod:`pytest_carbon.matrix.risk`). Planning
adds jobs greedily, the most risk removed per unit of cost first, while one more job removes more
than a risk threshold; what a job leaves uncovered of another follows their history of failing
together, recent co-failures weighing more. The threshold comes from ``target_recall``: ``fit``
plans a sample of its own history at every threshold and keeps the table of recall and skipped
share, so the threshold is the largest that kept the target there. Allowed-to-fail cells are
recognised and never counted as catching a failure; jobs without enough readable history always
run; a job not run for ``max_unseen`` runs runs again; every ``full_run_every``-th run of a
project runs the whole matrix to keep the statistics honest. For pipelines that run in waves,
a plan orders its jobs in waves, the likeliest to fail first.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

import numpy as np

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import JobResult, Run
from pytest_carbon.matrix.memory import JobMemory, ProjectMemory, timestamp
from pytest_carbon.matrix.risk import (
    EMPTY,
    CalibrationSample,
    RiskModel,
    RowBuffer,
    co_failure_matrix,
    cover,
    design,
    lead_jobs,
    raw_rows,
    risk_matrix,
    start,
)

MODEL_FORMAT: Final = "pytest-carbon-matrix-model"
MODEL_FORMAT_VERSION: Final = 4
#: Versions this package reads: 3 has no boosted trees, no waves and no ``waves`` parameter.
READABLE_FORMAT_VERSIONS: Final = (3, 4)
COSTS: Final = ("auto", "jobs", "duration", "energy")
MODELS: Final = ("boosted", "logistic", "chain")
#: Fewer failing job outcomes than this in the history: the pass/fail chain, not a regression.
MIN_FAILURES: Final = 200
#: Runs of a project before its runs are sampled for the calibration table; runs sampled at most,
#: and job rows (wide matrices reach the row cap first).
CALIBRATION_WARMUP: Final = 10
MAX_CALIBRATION_RUNS: Final = 10_000
MAX_CALIBRATION_ROWS: Final = 200_000
#: Job rows the regression learns from at most (runs are sampled beyond that).
MAX_TRAIN_ROWS: Final = 200_000


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
    """Which jobs of one run to run and which to skip.

    ``waves`` orders the jobs of ``run`` for a pipeline that runs in waves, each wave only when
    every job of the waves before it passed: the jobs likeliest to fail come first, one a wave,
    and the last wave holds the others. A failure in a wave already shows the run fails, so the
    later waves may be left out. Empty when the plan runs in one wave (a selector planning one
    wave, a full run kept for the statistics, a run with one job).
    """

    run: tuple[str, ...]
    skip: tuple[Skip, ...]
    reasons: Mapping[str, str] = field(default_factory=dict)
    full: bool = False
    risk: float = 0.0
    waves: tuple[tuple[str, ...], ...] = ()

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the skipped jobs."""
        return tuple(item.job for item in self.skip)

    @property
    def in_waves(self) -> tuple[tuple[str, ...], ...]:
        """The waves the planned jobs run in: ``waves``, or all of ``run`` as one."""
        return self.waves or ((self.run,) if self.run else ())

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON data."""
        return {
            "run": list(self.run),
            "waves": [list(wave) for wave in self.in_waves],
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


def damaged(path: str | Path, detail: str) -> InputError:
    """The error of a saved model whose state cannot be used."""
    return InputError(
        str(path),
        f"model state is damaged ({detail})",
        fix="re-create the model with pytest-carbon matrix fit",
    )


def check_usable(path: str | Path, trial: Callable[[], object]) -> None:
    """Run ``trial`` (plans over the stored state); damaged state fails now, as InputError."""
    try:
        trial()
    except DAMAGE_ERRORS as exc:
        raise damaged(path, f"{type(exc).__name__}: {exc}") from None


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
    if version not in READABLE_FORMAT_VERSIONS:
        raise InputError(
            name,
            f"unsupported model format_version {version!r} (this pytest-carbon reads "
            f"{' and '.join(map(str, READABLE_FORMAT_VERSIONS))})",
            fix="re-run `pytest-carbon matrix fit` with this version",
        )
    if kind is not None and data.get("model") != kind:
        raise InputError(name, f"model is a {data.get('model')!r}, expected {kind!r}")
    if not isinstance(data.get("params"), dict) or "state" not in data:
        raise InputError(name, "model lacks its params or state")
    return data


# --------------------------------------------------------------------------- the selector


@final
class MatrixSelector:
    """Plan which CI matrix jobs to run so that failing runs are still caught.

    Parameters follow scikit-learn conventions: ``__init__`` only stores them, ``fit`` learns
    attributes ending in ``_``. ``target_recall`` is the share of failing runs a plan should
    still catch; ``cost`` weighs jobs by ``"duration"``, ``"energy"``, ``"jobs"`` (all equal)
    or ``"auto"`` (energy, else duration, else equal); ``min_history`` readable outcomes are
    needed before a job may be skipped; ``full_run_every`` runs the whole matrix of a project
    every so many runs (0 never); ``max_unseen`` forces a job that has not run for that many
    runs (0 never); ``co_failure_prior`` shrinks co-failure shares toward zero and
    ``co_failure_decay`` weighs each older co-failure by that factor; ``model`` is
    ``"boosted"`` (learned boosted trees over the job's history and the run's context),
    ``"logistic"`` (a learned logistic regression over the same features) or ``"chain"`` (each
    job's own pass/fail chain: counting only); ``train_mask`` is the share of
    job outcomes hidden while the model learns, so that it learns what stale knowledge of a
    skipped job is worth; ``C`` is the logistic regression's inverse regularisation strength;
    ``waves`` is the number of waves a pipeline runs the plan in (see :class:`Plan`; 1: all
    planned jobs at once): from two waves on, the job likeliest to fail always runs, first, and
    the other jobs are weighed at their cost times the chance that it passes, so that the risk
    threshold and the calibration table are those of a pipeline in waves; the planned jobs
    next likeliest to fail open the later waves.
    """

    kind: Final = "MatrixSelector"

    def __init__(
        self,
        target_recall: float = 0.99,
        *,
        cost: str = "auto",
        min_history: int = 5,
        full_run_every: int = 50,
        max_unseen: int = 5,
        co_failure_prior: float = 1.0,
        co_failure_decay: float = 0.8,
        model: str = "boosted",
        train_mask: float = 0.3,
        C: float = 1.0,
        waves: int = 1,
    ) -> None:
        self.target_recall = target_recall
        self.cost = cost
        self.min_history = min_history
        self.full_run_every = full_run_every
        self.max_unseen = max_unseen
        self.co_failure_prior = co_failure_prior
        self.co_failure_decay = co_failure_decay
        self.model = model
        self.train_mask = train_mask
        self.C = C
        self.waves = waves

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {
            "target_recall": self.target_recall,
            "cost": self.cost,
            "min_history": self.min_history,
            "full_run_every": self.full_run_every,
            "max_unseen": self.max_unseen,
            "co_failure_prior": self.co_failure_prior,
            "co_failure_decay": self.co_failure_decay,
            "model": self.model,
            "train_mask": self.train_mask,
            "C": self.C,
            "waves": self.waves,
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
        numbers = (
            self.target_recall, self.co_failure_prior, self.co_failure_decay, self.train_mask,
            self.C,
        )  # fmt: skip
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers):
            raise ValueError("target_recall, co_failure_*, train_mask and C must be numbers")
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError("target_recall must be in (0, 1]")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}")
        counts = (self.min_history, self.full_run_every, self.max_unseen)
        if not all(isinstance(x, int) for x in counts):
            raise ValueError("min_history, full_run_every and max_unseen must be whole numbers")
        if self.min_history < 1 or self.full_run_every < 0 or self.max_unseen < 0:
            raise ValueError("min_history must be >= 1; full_run_every, max_unseen >= 0")
        if self.co_failure_prior < 0 or not 0 < self.co_failure_decay <= 1 or self.C <= 0:
            raise ValueError("co_failure_prior >= 0, co_failure_decay in (0, 1], C > 0")
        if not 0.0 <= self.train_mask < 1.0:
            raise ValueError("train_mask must be in [0, 1)")
        if isinstance(self.waves, bool) or not isinstance(self.waves, int) or self.waves < 1:
            raise ValueError("waves must be a whole number >= 1")

    # ------------------------------------------------------------------ learning

    def fit(self, history: Iterable[Run] | Iterable[JobResult]) -> MatrixSelector:
        """Learn from complete history (every job's outcome and the run status known).

        One pass in time order keeps two memories per project: the whole truth (what the
        fitted selector plans from) and one with ``train_mask`` of the outcomes hidden, whose
        features the model learns from, so that it sees stale knowledge as planning will.
        Features are drawn for a random sample of runs (enough for a stable regression). A
        smaller sample of runs is planned afterwards for the calibration table, from the whole
        truth: planning in use skips only the jobs it trusts and reruns the stale ones, so its
        memory stays far closer to the truth than to the masked memory (on a wide matrix
        nearly every run of the masked memory hides some job, which no plan in use does).
        """
        self.check_params()
        runs = as_runs(history)
        rng = np.random.default_rng(0)
        total_jobs = sum(len(run.jobs) for run in runs)
        train_share = min(1.0, MAX_TRAIN_ROWS / max(total_jobs, 1))
        calibration_share = min(
            1.0,
            MAX_CALIBRATION_RUNS / max(len(runs), 1),
            MAX_CALIBRATION_ROWS / max(total_jobs, 1),
        )
        projects: dict[str, ProjectMemory] = {}
        masked: dict[str, ProjectMemory] = {}
        matrix = RowBuffer()
        calibration_rows = RowBuffer()
        sample = CalibrationSample()
        coins: list[list[float]] = rng.random((len(runs), 2)).tolist()
        hide = rng.random(total_jobs) < self.train_mask  # one byte per job record
        offset = 0
        for (calibration_coin, train_coin), run in zip(coins, runs, strict=True):
            names = run.job_names
            truth = projects.setdefault(run.project, ProjectMemory())
            shown = masked.setdefault(run.project, ProjectMemory()) if self.train_mask else truth
            if train_coin < train_share:
                labels = [int(job.failed and run.status != "passed") for job in run.jobs]
                matrix.add(raw_rows(shown, names, context_of(run)), labels)
            if truth.runs >= CALIBRATION_WARMUP and calibration_coin < calibration_share:
                first_row = calibration_rows.add(raw_rows(truth, names, context_of(run)), ())
                self.sample_run(sample, first_row, truth, run)
            outcomes = {job.job: job.outcome for job in run.jobs}
            moment = timestamp(run.started_at)
            self.learn_run(truth, run, names, outcomes, run.status, moment)
            if self.train_mask:
                hidden: list[bool] = hide[offset : offset + len(names)].tolist()
                offset += len(names)
                if all(hidden):
                    hidden[int(train_coin * len(names))] = False
                shown_outcomes = {
                    name: outcome
                    for (name, outcome), masked_out in zip(outcomes.items(), hidden, strict=True)
                    if not masked_out
                }
                status = None if any(hidden) else run.status
                self.learn_run(shown, run, names, shown_outcomes, status, moment)
        X, y = matrix.arrays()
        least = MIN_FAILURES if self.model != "chain" else len(y) + 1
        self.model_ = RiskModel.fit(X, y, C=self.C, min_failures=least, kind=self.model)
        del X, y
        self.calibration_ = sample.table(
            self.model_.predict(calibration_rows.arrays()[0]), waves=self.waves
        )
        self.projects_ = projects
        return self

    def learn_run(
        self,
        project: ProjectMemory,
        run: Run,
        names: Sequence[str],
        outcomes: Mapping[str, str],
        status: str | None,
        moment: float | None,
    ) -> None:
        """Fold a recorded run into a project's memory, as far as ``outcomes`` shows it."""
        project.learn(
            names,
            outcomes,
            status=status,
            branch=run.branch,
            event=run.event,
            commit=run.commit,
            moment=moment,
            decay=self.co_failure_decay,
        )
        durations = {}
        energies = {}
        for job in run.jobs:
            if job.job in outcomes:
                if job.duration_s is not None:
                    durations[job.job] = job.duration_s
                if job.energy_kwh is not None:
                    energies[job.job] = job.energy_kwh
        project.learn_costs(durations, energies)

    def sample_run(
        self, sample: CalibrationSample, first_row: int, project: ProjectMemory, run: Run
    ) -> None:
        """Keep what planning ``run`` needs for the calibration table."""
        names = list(run.job_names)
        jobs = [project.jobs.get(name, EMPTY) for name in names]
        failed = np.array([job.failed for job in run.jobs], dtype=bool)
        sample.add(
            first_row,
            co_failure_matrix(project, names, self.co_failure_prior),
            np.array([self.forced_reason(job) is not None for job in jobs], dtype=bool),
            np.array([job.is_allowed_to_fail() for job in jobs], dtype=bool),
            self.job_costs(jobs),
            failed,
            failing=run.status == "failed" and bool(failed.any()),
        )

    def update(self, observed: Observation) -> MatrixSelector:
        """Learn from the jobs that ran in one more run; return self."""
        self.check_fitted()
        self.learn(self.projects_.setdefault(observed.context.project, ProjectMemory()), observed)
        return self

    def check_fitted(self) -> None:
        """Raise when neither ``fit`` nor ``load`` has run."""
        if not hasattr(self, "projects_"):
            raise RuntimeError("MatrixSelector is not fitted: call fit() or load() first")

    def learn(self, project: ProjectMemory, observed: Observation) -> None:
        """Fold one observation into a project's memory."""
        context = observed.context
        project.learn(
            observed.jobs,
            observed.outcomes,
            status=observed.run_status,
            branch=context.branch,
            event=context.event,
            commit=context.commit,
            moment=timestamp(context.started_at),
            decay=self.co_failure_decay,
        )
        project.learn_costs(observed.durations, observed.energies)

    # ------------------------------------------------------------------ planning

    def plan(self, jobs: Sequence[str], context: RunContext | None = None) -> Plan:
        """Choose which of ``jobs`` to run; the rest are skipped, each with its reason.

        Give the run's ``context`` with its start time where it is known: the model weighs the
        time since the project's last run, which it saw unknown only on a project's first run.
        """
        self.check_fitted()
        context = context or RunContext()
        names = list(dict.fromkeys(jobs))
        project = self.find_project(context.project)
        if project is None or not names:
            return full_plan(names, "no history for this project")
        if self.full_run_every and project.since_full + 1 >= self.full_run_every:
            return full_plan(names, f"periodic full run (every {self.full_run_every} runs)")
        return self.plan_project(project, names, context)

    def find_project(self, name: str) -> ProjectMemory | None:
        """The memory of project ``name`` (the only project when the model has just one)."""
        project = self.projects_.get(name)
        if project is None and len(self.projects_) == 1:
            project = next(iter(self.projects_.values()))
        return project

    def fail_probabilities(
        self, project: ProjectMemory, names: Sequence[str], context: RunContext
    ) -> np.ndarray:
        """P(each job fails now, in a failing run), from the learned model."""
        return self.model_.predict(design(np.asarray(raw_rows(project, names, context))))

    def plan_project(self, project: ProjectMemory, names: list[str], context: RunContext) -> Plan:
        """Greedy cover: add the job removing most risk per cost while it beats the threshold."""
        jobs = [project.jobs.get(name, EMPTY) for name in names]
        allowed = np.array([job.is_allowed_to_fail() for job in jobs], dtype=bool)
        forced = [self.forced_reason(job) for job in jobs]
        reasons = {name: why for name, why in zip(names, forced, strict=True) if why}
        fail_p = np.where(allowed, 0.0, self.fail_probabilities(project, names, context))
        co = co_failure_matrix(project, names, self.co_failure_prior)
        must = np.array([why is not None for why in forced])
        chosen, weighed, _ = start(must, allowed, fail_p, self.job_costs(jobs), self.waves)
        if not reasons:
            reasons[names[int(np.argmax(chosen))]] = "at least one job runs"
        threshold = self.risk_threshold()
        risk = cover(risk_matrix(fail_p, co), fail_p, weighed, chosen, threshold)
        run: list[str] = []
        skip: list[Skip] = []
        for index, name in enumerate(names):
            if chosen[index]:
                run.append(name)
                reasons.setdefault(name, self.run_reason(float(fail_p[index])))
            else:
                skip.append(self.skip_for(names, index, jobs, allowed, chosen, fail_p, co))
        waves = self.waves_of(names, run, chosen, allowed, fail_p, reasons)
        return Plan(tuple(run), tuple(skip), reasons, full=not skip, risk=risk, waves=waves)

    def waves_of(
        self,
        names: Sequence[str],
        run: Sequence[str],
        chosen: np.ndarray,
        allowed: np.ndarray,
        fail_p: np.ndarray,
        reasons: dict[str, str],
    ) -> tuple[tuple[str, ...], ...]:
        """The waves of a plan running ``run``: its leads one a wave, then the others (none
        in one wave). Each lead's reason says which wave it is."""
        if len(run) < 2:
            return ()
        leads = [names[i] for i in lead_jobs(chosen, allowed, fail_p, self.waves - 1)]
        for number, name in enumerate(leads, 1):
            reasons[name] = f"wave {number}, the likeliest to fail; {reasons[name]}"
        rest = tuple(name for name in run if name not in leads)
        return tuple((name,) for name in leads) + ((rest,) if rest and leads else ())

    def risk_threshold(self) -> float:
        """The risk threshold planning uses for ``target_recall`` (see :meth:`calibrated`)."""
        return self.calibrated()[0]

    def calibrated(self) -> tuple[float, float | None, float | None]:
        """The threshold for ``target_recall``, and the recall and skipped share it had.

        The threshold is the largest that kept ``target_recall`` when ``fit`` planned a sample
        of its own history (later runs of each project, with the memory of that time). It
        qualifies when its plans caught the target share of the sampled failing runs counted
        with one more failing run, missed: with little evidence nothing is skipped on trust.
        With none that qualifies (or a target of 1) the threshold is 0: only jobs without any
        estimated risk (allowed-to-fail cells) are left out, and no figures are given.
        """
        table = self.calibration_
        failing = table["failing_runs"]
        found: tuple[float, float | None, float | None] = (0.0, None, None)
        for threshold, recall, skipped in zip(
            table["thresholds"], table["recall"], table["skipped"], strict=True
        ):
            if recall * failing / (failing + 1.0) >= self.target_recall and threshold > found[0]:
                found = (threshold, recall, skipped)
        return found

    def job_costs(self, jobs: Sequence[JobMemory]) -> np.ndarray:
        """Relative cost of each job (mean 1) under the ``cost`` parameter."""
        mode = self.cost
        if not jobs:
            return np.ones(0)
        if mode == "auto":
            mode = "energy" if all(job.energy_n for job in jobs) else "duration"
        if mode == "energy" and all(job.energy_n for job in jobs):
            values = np.array([job.energy_sum / job.energy_n for job in jobs])
        elif mode == "duration" and all(job.cost_n for job in jobs):
            values = np.array([job.cost_sum / job.cost_n for job in jobs])
        else:
            return np.ones(len(jobs))
        values = np.maximum(values, 1e-9)
        return np.asarray(values / values.mean(), dtype=float)

    def forced_reason(self, job: JobMemory) -> str | None:
        """Why a job must run whatever the risk, or None."""
        if job.seen < self.min_history:
            return f"only {job.seen} known outcome(s), needs {self.min_history} to be skipped"
        if self.max_unseen and job.since >= self.max_unseen:
            return f"not run for {job.since} runs"
        return None

    @staticmethod
    def run_reason(probability: float) -> str:
        """Why a job was chosen by the cover."""
        return f"covers failure risk (fails now with p={probability:.3f})"

    @staticmethod
    def skip_for(
        names: Sequence[str],
        index: int,
        jobs: Sequence[JobMemory],
        allowed: np.ndarray,
        chosen: np.ndarray,
        fail_p: np.ndarray,
        co: np.ndarray,
    ) -> Skip:
        """The skip entry of job ``index`` with its human reason."""
        name = names[index]
        own = jobs[index]
        if allowed[index]:
            return Skip(
                name,
                f"allowed to fail: its lone failures left the run passing "
                f"({own.solo_in_passed:.1f} against {own.solo_in_failed:.1f} failing it, "
                f"recent ones weighing more)",
            )
        p_now = float(fail_p[index])
        shares = np.where(chosen, co[index], -1.0)
        best = int(np.argmax(shares))
        if shares[best] >= 0.5:
            reason = (
                f"fails with {names[best]}: co-failure {shares[best] * 100:.0f} % over its "
                f"{own.fails} failure(s), recent ones weighing more; fails now with p={p_now:.3f}"
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
            "model": self.model_.to_dict(),
            "calibration": self.calibration_,
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
            model.model_ = RiskModel.from_dict(state["model"])
            model.calibration_ = read_calibration(state["calibration"])
            model.projects_ = {
                str(k): ProjectMemory.from_dict(v) for k, v in state["projects"].items()
            }
        except DAMAGE_ERRORS as exc:
            raise damaged(path, str(exc)) from None
        check_usable(path, model.plan_every_project)
        return model

    def plan_every_project(self) -> None:
        """Plan once for every stored project and its jobs (used to vet a loaded model)."""
        for name, project in self.projects_.items():
            self.plan_project(project, list(project.jobs), RunContext(project=name))


def read_calibration(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A calibration table read back from JSON; ValueError when damaged."""
    table = {key: [float(x) for x in raw[key]] for key in ("thresholds", "recall", "skipped")}
    if not len(table["thresholds"]) == len(table["recall"]) == len(table["skipped"]):
        raise ValueError("the calibration table's columns differ in length")
    values = [x for column in table.values() for x in column]
    if not all(math.isfinite(x) for x in values):
        raise ValueError("the calibration table holds a number that is not finite")
    return {**table, "failing_runs": int(raw["failing_runs"]), "runs": int(raw["runs"])}


def full_plan(names: Sequence[str], reason: str) -> Plan:
    """A plan that runs every job for one reason."""
    return Plan(tuple(names), (), dict.fromkeys(names, reason), full=True)
