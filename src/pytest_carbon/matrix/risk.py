"""How likely each job is to fail now, and which jobs to run to keep the risk low.

Three parts:

* **Features** (:func:`raw_rows`, :func:`design`): what a project's memory says about each job of
  the coming run: its long-run and recent failure rates, its pass/fail chain, how its failures
  fall (alone, beside passing jobs, in runs allowed to pass), how stale our knowledge of it is,
  what it did in the previous run, on the same commit and on the same branch, and the run's
  context (event, time since the last run, the project's recent failures).
* **The model** (:class:`RiskModel`): scikit-learn's boosted trees (or a logistic regression)
  over those features, learned from history, predicting P(the job fails in a run that fails).
  With too few failures to learn from, the job's own pass/fail chain is used (counting).
* **The cover** (:func:`cover`): jobs are added to the plan greedily, most risk removed per unit
  of cost first, while one more job removes more than the risk threshold. The risk a skipped job
  ``j`` leaves when job ``i`` runs is ``min(P(j fails) × (1 − P(i fails | j fails)), P(i passes))``.
  One threshold for every run spends skips where they are cheapest in risk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, final

import numpy as np

from pytest_carbon.matrix.memory import EVENTS, JobMemory, ProjectMemory, event_index, timestamp
from pytest_carbon.matrix.trees import Trees, fit_boosted

#: The model's inputs, in order (saved with a model; a model with other names is refused).
FEATURES: Final = (
    "chain", "log_chain", "rate", "log_rate", "rate10", "log_rate10", "rate3", "log_rate3",
    "rate30", "log_rate30", "log_streak", "log_runs_since_failure", "position", "lone_share",
    "log_lone_share", "partial_rate", "log_partial_rate", "unknown_share", "log_unknown_share",
    "allowed_share", "log_seen", "event_rate", "log_event_rate", "in_last_failing_run",
    "log_staleness", "stale_failure", "last_none", "last_passed", "last_failed",
    "previous_none", "previous_passed", "previous_failed", "commit_none", "commit_passed",
    "commit_failed", "branch_none", "branch_passed", "branch_failed", "previous_failing_share",
    "project_failing_rate", "log_project_failing_rate", "recent_failing_rate",
    "log_recent_failing_rate", "event_push", "event_pull_request", "event_cron", "log_jobs",
    "gap_known", "log_gap_hours", "same_branch", "same_commit", "weekend", "log_branch_runs",
    "log_runs_since_failing_run", "commit_had_failures",
)  # fmt: skip

#: How many raw values :func:`raw_rows` gives per job.
RAW_WIDTH: Final = 32
#: Runs since something that never happened count as this many on the log scale.
NEVER: Final = 10.0
EMPTY: Final = JobMemory()


def raw_rows(project: ProjectMemory, names: Sequence[str], context: Any) -> list[list[float]]:
    """Per job of the coming run, the raw numbers :func:`design` turns into features.

    ``context`` is a :class:`~pytest_carbon.matrix.selector.RunContext`.
    """
    n = len(names)
    commit = context.commit
    branch = context.branch
    seen_commit = project.commits.get(commit) if commit else None
    seen_branch = project.branches.get(branch) if branch else None
    previous = project.previous
    failing_share = sum(previous.values()) / len(previous) if previous else 0.0
    moment = timestamp(context.started_at)
    gap = project.gap_hours(moment)
    weekend = (
        datetime.fromtimestamp(moment, timezone.utc).weekday() >= 5 if moment is not None else False
    )
    runs = project.runs
    event_at = event_index(context.event)
    common = [
        failing_share,
        project.failing_rate(),
        project.recent_failing_rate(),
        float(event_at),
        float(n),
        -1.0 if gap is None else gap,
        float(branch is not None and branch == project.last_branch),
        float(commit is not None and commit == project.last_commit),
        float(weekend),
        float(project.branch_runs.get(branch, 0)) if branch else 0.0,
        float(runs - project.last_failing_run) if project.last_failing_run >= 0 else -1.0,
        float(seen_commit is not None and any(seen_commit.values())),
    ]
    last_failing = set(project.last_failing)
    jobs = project.jobs
    rows = []
    span = max(1, n - 1)
    for index, name in enumerate(names):
        job = jobs.get(name, EMPTY)
        fails = job.fails
        if event_at >= 0:
            event_n = job.events[2 * event_at]
            event_fails = job.events[2 * event_at + 1]
        else:
            event_n = event_fails = 0
        row = [
            job.chain_probability(),
            fails / (job.seen + 1.0),
            job.recent_rate(10),
            job.recent_rate(3),
            job.recent_rate(30),
            float(job.streak),
            float(runs - job.last_fail) if job.last_fail >= 0 else -1.0,
            index / span,
            job.lone / (fails + 1.0),
            job.partial / (job.seen + 1.0),
            (job.ran - job.seen) / (job.ran + 1.0),
            float(job.seen),
            (event_fails + 0.1) / (event_n + 1.0),
            float(name in last_failing),
            float(job.since),
            float(job.last),
            float(previous.get(name, -1)),
            float(seen_commit.get(name, -1)) if seen_commit is not None else -1.0,
            float(seen_branch.get(name, -1)) if seen_branch is not None else -1.0,
            job.solo_in_passed / (fails + 1.0),
        ]
        row.extend(common)
        rows.append(row)
    return rows


def _log(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(np.clip(values, 1e-3, 1.0)))


def _since(values: np.ndarray) -> np.ndarray:
    """log1p of a count of runs, :data:`NEVER` where it never happened (-1)."""
    return np.asarray(np.where(values >= 0, np.log1p(np.maximum(values, 0.0)), NEVER))


def _tri(values: np.ndarray) -> list[np.ndarray]:
    return [values == -1.0, values == 0.0, values == 1.0]


def design(raw: np.ndarray) -> np.ndarray:
    """The feature matrix (columns as :data:`FEATURES`) of raw rows from :func:`raw_rows`."""
    r = np.asarray(raw, dtype=float).reshape(-1, RAW_WIDTH)
    staleness = np.log1p(r[:, 14])
    event = r[:, 23]
    gap = r[:, 25]
    columns = [
        r[:, 0], _log(r[:, 0]), r[:, 1], _log(r[:, 1]), r[:, 2], _log(r[:, 2]),
        r[:, 3], _log(r[:, 3]), r[:, 4], _log(r[:, 4]), np.log1p(r[:, 5]), _since(r[:, 6]),
        r[:, 7], r[:, 8], _log(r[:, 8]), r[:, 9], _log(r[:, 9]), r[:, 10], _log(r[:, 10]),
        r[:, 19], np.log1p(r[:, 11]), r[:, 12], _log(r[:, 12]), r[:, 13], staleness,
        (r[:, 15] == 1.0) * staleness, *_tri(r[:, 15]), *_tri(r[:, 16]), *_tri(r[:, 17]),
        *_tri(r[:, 18]), r[:, 20], r[:, 21], _log(r[:, 21]), r[:, 22], _log(r[:, 22]),
        event == 0.0, event == 1.0, event == 2.0, np.log(np.maximum(r[:, 24], 1.0)),
        gap >= 0, np.log1p(np.maximum(gap, 0.0)), r[:, 26], r[:, 27], r[:, 28],
        np.log1p(r[:, 29]), _since(r[:, 30]), r[:, 31],
    ]  # fmt: skip
    return np.column_stack(columns).astype(float)


assert len(EVENTS) == 3  # the event columns above name them one by one


@final
class RowBuffer:
    """Raw rows and labels gathered run by run, kept as compact arrays in chunks."""

    CHUNK: Final = 65_536

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.pending: list[list[float]] = []
        self.labels: list[int] = []
        self.count = 0

    def add(self, rows: list[list[float]], labels: Sequence[int]) -> int:
        """Append one run's rows and labels; return the index of its first row."""
        first = self.count
        self.pending.extend(rows)
        self.labels.extend(labels)
        self.count += len(rows)
        if len(self.pending) >= self.CHUNK:
            self.flush()
        return first

    def flush(self) -> None:
        """Turn the pending rows into an array chunk."""
        if self.pending:
            self.chunks.append(np.asarray(self.pending, dtype=np.float64))
            self.pending = []

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The feature matrix (see :func:`design`) and the labels; the buffer is left empty."""
        self.flush()
        labels = np.asarray(self.labels, dtype=int)
        X = np.zeros((self.count, len(FEATURES)))
        at = 0
        while self.chunks:
            chunk = self.chunks.pop(0)
            X[at : at + len(chunk)] = design(chunk)
            at += len(chunk)
        self.labels = []
        self.count = 0
        return X, labels


# --------------------------------------------------------------------------- the model


@final
@dataclass(frozen=True, slots=True)
class RiskModel:
    """P(a job fails in a failing run), from the features of :func:`design`.

    ``kind`` is ``"boosted"`` (scikit-learn's ``HistGradientBoostingClassifier``, its trees kept
    as arrays: sigmoid(sum of the leaves a row reaches + intercept)), ``"logistic"``
    (sigmoid(features · weights + intercept), weights learned by scikit-learn's
    ``LogisticRegression`` on standardised features, folded back to raw feature scale) or
    ``"chain"`` (too few failures to learn from: the job's pass/fail chain probability is used
    as it is).

    A logistic model never extrapolates: each feature is clipped to the range ``low``–``high``
    it had in training before it is weighed, and a feature that did not vary in training gets
    no weight. Planning from only the jobs a plan ran moves features (how stale a job's
    outcome is, the project's failing rate) beyond what training showed; a weight learned on a
    narrow range must not turn that into a certainty. Trees never extrapolate: beyond the
    training range a row lands in the leaf of the range's edge.
    """

    kind: str
    weights: tuple[float, ...]
    intercept: float
    rows: int = 0
    failures: int = 0
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    trees: Trees | None = None

    @classmethod
    def fit(
        cls, X: np.ndarray, y: np.ndarray, *, C: float, min_failures: int, kind: str = "logistic"
    ) -> RiskModel:
        """Learn a ``kind`` model; the chain model when ``y`` holds fewer than ``min_failures``.

        A boosted model that cannot be read back from this scikit-learn is learned as logistic
        instead (``kind`` tells which was learned).
        """
        failures = int(y.sum())
        rows = len(y)
        if failures < min_failures or rows - failures < min_failures:
            return cls("chain", (), 0.0, rows, failures)
        if kind == "boosted":
            boosted = fit_boosted(X, y)
            if boosted is not None:
                trees, baseline = boosted
                return cls("boosted", (), baseline, rows, failures, trees=trees)
        from sklearn.linear_model import LogisticRegression

        low = X.min(axis=0)
        high = X.max(axis=0)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        # Constant up to rounding: standardising would blow rounding noise up to unit scale.
        constant = (high - low) <= 1e-9 * np.maximum(1.0, np.abs(mean))
        scale[constant] = 1.0
        standard = X - mean
        standard /= scale
        standard[:, constant] = 0.0
        model = LogisticRegression(C=C, max_iter=1000)
        model.fit(standard, y)
        coef = np.where(constant, 0.0, model.coef_[0] / scale)
        intercept = float(model.intercept_[0] - (mean * coef).sum())
        return cls(
            "logistic",
            tuple(float(w) for w in coef),
            intercept,
            rows,
            failures,
            tuple(float(x) for x in low),
            tuple(float(x) for x in high),
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(fail) of each row."""
        if self.kind == "chain":
            return np.asarray(np.clip(X[:, 0], 0.0, 1.0))
        if self.trees is not None:
            z = self.trees.score(X) + self.intercept
        else:
            inside = np.clip(X, np.asarray(self.low), np.asarray(self.high))
            z = inside @ np.asarray(self.weights) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with the feature names it expects."""
        return {
            "kind": self.kind,
            "features": list(FEATURES) if self.kind != "chain" else [],
            "weights": list(self.weights),
            "intercept": self.intercept,
            "rows": self.rows,
            "failures": self.failures,
            "low": list(self.low),
            "high": list(self.high),
            "trees": None if self.trees is None else self.trees.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RiskModel:
        """Inverse of :meth:`to_dict`; ValueError when it does not fit this version's features."""
        kind = raw["kind"]
        weights = tuple(float(w) for w in raw["weights"])
        if kind not in ("logistic", "boosted", "chain"):
            raise ValueError(f"unknown risk model {kind!r}")
        if kind != "chain" and list(raw["features"]) != list(FEATURES):
            raise ValueError("the risk model's features differ from this version's")
        if kind == "logistic" and len(weights) != len(FEATURES):
            raise ValueError("the risk model's weights differ in number from its features")
        trees = None
        if kind == "boosted":
            trees = Trees.from_dict(raw["trees"], len(FEATURES))
        intercept = float(raw["intercept"])
        low = tuple(float(x) for x in raw["low"])
        high = tuple(float(x) for x in raw["high"])
        if not all(math.isfinite(w) for w in (*weights, intercept, *low, *high)):
            raise ValueError("a risk model weight or feature range is not finite")
        if len(low) != len(weights) or len(high) != len(weights):
            raise ValueError("the risk model's feature ranges differ in length from its weights")
        if any(a > b for a, b in zip(low, high, strict=True)):
            raise ValueError("a risk model feature range is empty (low above high)")
        rows, failures = int(raw["rows"]), int(raw["failures"])
        return cls(kind, weights, intercept, rows, failures, low, high, trees)


# --------------------------------------------------------------------------- the cover


def co_failure_matrix(project: ProjectMemory, names: Sequence[str], prior: float) -> np.ndarray:
    """``C[j, i]``: weighted share of ``j``'s failures in which ``i`` failed too."""
    n = len(names)
    co = np.zeros((n, n))
    pairs = project.pairs
    index = {name: i for i, name in enumerate(names)}
    for j, a in enumerate(names):
        row = pairs.get(a)
        if not row:
            continue
        for b, cell in row.items():
            i = index.get(b)
            if i is not None:
                co[j, i] = cell[1] / (cell[0] + prior)
    return co


def risk_matrix(fail_p: np.ndarray, co: np.ndarray) -> np.ndarray:
    """``R[j, i]`` bounds P(j fails and i passes): the risk job ``i`` leaves of job ``j``."""
    risk = np.minimum(fail_p[:, None] * (1.0 - co), (1.0 - fail_p)[None, :])
    np.fill_diagonal(risk, 0.0)
    return np.asarray(risk)


def first_chosen(forced: np.ndarray, allowed: np.ndarray, fail_p: np.ndarray) -> np.ndarray:
    """The jobs a plan starts from: the forced ones, or else the one likeliest to fail (an
    allowed-to-fail job only when every job is)."""
    chosen: np.ndarray = forced.copy()
    if not chosen.any():
        chosen[int(np.argmax(np.where(allowed, -1.0, fail_p)))] = True
    return chosen


def lead_jobs(chosen: np.ndarray, allowed: np.ndarray, fail_p: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` jobs of ``chosen`` likeliest to fail, likeliest first, allowed-to-fail
    cells and jobs without any risk aside."""
    risk = np.where(chosen & ~allowed, fail_p, -1.0)
    order = np.argsort(-risk, kind="stable")[: max(count, 0)]
    return [int(i) for i in order if risk[i] > 0.0]


def start(
    forced: np.ndarray, allowed: np.ndarray, fail_p: np.ndarray, costs: np.ndarray, waves: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The jobs a plan starts from, the costs its cover weighs, and its first wave's job.

    In two waves or more (see :class:`~pytest_carbon.matrix.selector.Plan`), the job likeliest
    to fail always runs, first, and every other job runs only when it passed: its cost is scaled
    by ``P(it passes)``, so that runs likely to fail early afford more jobs. Later leads (three
    waves or more) are taken from the jobs the cover chose, not added to them: a job run only to
    open a wave would cost more than the wave saves. In one wave costs are as given.
    """
    chosen = first_chosen(forced, allowed, fail_p)
    leads = lead_jobs(np.ones_like(chosen), allowed, fail_p, min(waves - 1, 1))
    if not leads:
        return chosen, costs, leads
    chosen[leads] = True
    return chosen, costs * (1.0 - fail_p[leads[0]]), leads


def cover(
    risk: np.ndarray,
    fail_p: np.ndarray,
    costs: np.ndarray,
    chosen: np.ndarray,
    threshold: float,
    steps: list[tuple[float, int]] | None = None,
) -> float:
    """Add jobs to ``chosen`` (in place) while one removes more risk per cost than ``threshold``.

    Returns the risk left. With ``steps`` given, each job added is appended to it with its gain
    (pass ``threshold=-1`` to order every job).
    """
    left = fail_p.copy()
    for i in np.flatnonzero(chosen):
        left = np.minimum(left, risk[:, i])
    left[chosen] = 0.0
    while not chosen.all():
        after = np.minimum(left[:, None], risk)
        gains = (left[:, None] - after).sum(axis=0) / costs  # risk[i, i] = 0: i's own risk too
        gains[chosen] = -np.inf
        best = int(np.argmax(gains))
        gain = float(gains[best])
        if gain <= threshold:
            break
        if steps is not None:
            steps.append((gain, best))
        left = after[:, best]
        left[chosen] = 0.0
        left[best] = 0.0
        chosen[best] = True
    return float(left.sum())


# --------------------------------------------------------------------------- calibration

#: Risk thresholds the calibration table is computed at, each 2.2 % above the last: planning
#: takes the largest that kept the target, so on a coarser grid it runs more jobs than the
#: target needs (the grid was 9 % apart). The largest bounds what one skipped job may carry:
#: a job that would remove a quarter of a missed failure always runs.
THRESHOLDS: Final = tuple(float(x) for x in np.geomspace(1e-4, 0.25, 361))


@final
class CalibrationSample:
    """Runs of the training history, planned afterwards at every threshold of :data:`THRESHOLDS`.

    For each sampled run it keeps what planning needs besides the model's probabilities (those
    exist only once the model is fitted): its rows in the feature matrix, the co-failure matrix
    at that time, the forced and allowed-to-fail jobs, the costs and which jobs failed.
    """

    def __init__(self, budget: int = 20_000_000) -> None:
        self.budget = budget
        self.cells = 0
        self.runs: list[
            tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]
        ] = []

    def add(
        self,
        first_row: int,
        co: np.ndarray,
        forced: np.ndarray,
        allowed: np.ndarray,
        costs: np.ndarray,
        failed: np.ndarray,
        failing: bool | None = None,
    ) -> None:
        """Keep one run: ``failed`` says which jobs failed, ``failing`` whether the run counts as
        failing (by default, when a job failed; a run that passed anyway does not)."""
        if self.cells + co.size > self.budget:
            return
        self.cells += co.size
        failing = bool(failed.any()) if failing is None else failing
        self.runs.append(
            (first_row, co.astype(np.float32), forced, allowed, costs, failed, failing)
        )

    def table(self, fail_p: np.ndarray, *, waves: int = 1) -> dict[str, Any]:
        """Recall and skipped share at each threshold, planning every kept run with ``fail_p``.

        The cover adds jobs in the same order whatever the threshold, so one full ordering per
        run gives its plan at every threshold: a prefix, up to the first gain not above it.
        In waves, a run stops at its first wave holding a failed job, whether or not the run
        counts as failing: the jobs of its later waves count as skipped (see
        :func:`ran_in_waves`).
        """
        grid = np.asarray(THRESHOLDS)
        caught = np.zeros(len(grid))
        skipped = np.zeros(len(grid))
        failing_runs = jobs = 0
        for first_row, co, forced, allowed, costs, failed, failing in self.runs:
            n = len(forced)
            p = np.where(allowed, 0.0, fail_p[first_row : first_row + n])
            chosen, weighed, leads = start(forced, allowed, p, costs, waves)
            jobs += n
            if leads and failed[leads[0]]:
                skipped += n - 1
                failing_runs += failing
                caught += failing
                continue
            caught_first = bool(failed[chosen].any())
            steps: list[tuple[float, int]] = []
            started = np.flatnonzero(chosen).tolist()
            cover(risk_matrix(p, co.astype(float)), p, weighed, chosen, -1.0, steps)
            gains = np.minimum.accumulate(np.asarray([gain for gain, _ in steps]))
            added = (gains[None, :] > grid[:, None]).sum(axis=1)  # each threshold's prefix
            ran = np.arange(len(steps) + 1) + len(started)
            if waves > 2 and failed.any():
                ran = ran_in_waves(started, [i for _, i in steps], p, allowed, failed, waves)
            skipped += n - ran[added]
            if failing:
                failing_runs += 1
                if caught_first:
                    caught += 1
                else:
                    position = next(k for k, (_, i) in enumerate(steps) if failed[i])
                    caught += gains[position] > grid
        return {
            "thresholds": list(THRESHOLDS),
            "recall": (caught / failing_runs if failing_runs else np.ones(len(grid))).tolist(),
            "skipped": (skipped / jobs if jobs else np.zeros(len(grid))).tolist(),
            "failing_runs": failing_runs,
            "runs": len(self.runs),
        }


def ran_in_waves(
    started: list[int],
    added: list[int],
    fail_p: np.ndarray,
    allowed: np.ndarray,
    failed: np.ndarray,
    waves: int,
) -> np.ndarray:
    """How many jobs a run in ``waves`` runs, for each prefix of the jobs a cover ``added``.

    The plan of prefix ``m`` runs ``started`` and ``added[:m]``; its leads (:func:`lead_jobs`)
    run one a wave, likeliest first. The run stops after the first lead that ``failed``; else
    every planned job runs.
    """
    chosen = np.zeros(len(fail_p), dtype=bool)
    chosen[started] = True
    ran = np.empty(len(added) + 1, dtype=int)
    for m in range(len(added) + 1):
        if m:
            chosen[added[m - 1]] = True
        leads = lead_jobs(chosen, allowed, fail_p, waves - 1)
        ran[m] = next((k + 1 for k, lead in enumerate(leads) if failed[lead]), len(started) + m)
    return ran
