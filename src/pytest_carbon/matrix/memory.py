"""What the matrix selector remembers of each project, learned one run at a time.

Everything here is counting: per job, its readable outcomes, its recent outcomes as a bit
string, its pass/fail transitions, how its failures fell (alone, beside passing jobs, in runs
that passed anyway), its cost; per project, the last run's outcomes, the outcomes last seen for
each commit and branch, the recent failing runs, and, per ordered pair of jobs, how often ``B``
failed when ``A`` failed, with older co-failures weighing less. A run's observation may hold only
some of its jobs (those a plan ran): a job that did not run is simply not seen that time.

The state is plain data, saved as compact JSON lists by :meth:`ProjectMemory.to_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, final

from pytest_carbon.matrix.history import FAILING_OUTCOMES, KNOWN_OUTCOMES

#: How many recent readable outcomes a job keeps (as bits of one integer).
RECENT: Final = 30
RECENT_MASK: Final = (1 << RECENT) - 1
#: How many recent runs of a project are kept as failing or not.
RECENT_RUNS: Final = 10
RECENT_RUNS_MASK: Final = (1 << RECENT_RUNS) - 1
#: How many commits and branches a project remembers the outcomes of.
REMEMBERED: Final = 100
#: Weight a job's older lone failures keep at each new one, when judging whether it may fail
#: without failing the run (at most 1 / (1 - 0.8) = 5 in all).
ALLOWED_DECAY: Final = 0.8
#: Event classes with a failure rate of their own; any other event counts in none.
EVENTS: Final = ("push", "pull_request", "cron")


def event_index(event: str | None) -> int:
    """Index of ``event`` in :data:`EVENTS`, or -1."""
    try:
        return EVENTS.index(event or "")
    except ValueError:
        return -1


def timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of a ``YYYY-MM-DDTHH:MM:SSZ`` time, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        return None


@final
@dataclass(slots=True)
class JobMemory:
    """Counts of one job of one project."""

    ran: int = 0  # runs in which the job ran, whatever its outcome
    seen: int = 0  # runs with a readable outcome
    fails: int = 0
    recent: int = 0  # bit k: the outcome k readable outcomes ago failed
    recent_n: int = 0
    trans: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # pp, pf, fp, ff
    last: int = -1  # last readable outcome: 1 failed, 0 passed, -1 none yet
    streak: int = 0  # readable outcomes in a row equal to ``last``
    last_fail: int = -1  # project run number of the last failure
    since: int = 0  # project runs since the job last ran
    lone: int = 0  # failures with no other job failing
    partial: int = 0  # failures while another job passed
    solo_in_passed: float = 0.0  # lone failures in runs that passed (allowed to fail), decayed
    solo_in_failed: float = 0.0  # lone failures in runs that failed, decayed
    events: list[int] = field(default_factory=lambda: [0] * (2 * len(EVENTS)))
    cost_sum: float = 0.0
    cost_n: int = 0
    energy_sum: float = 0.0
    energy_n: int = 0

    def recent_rate(self, count: int) -> float:
        """Share of failures among the last ``count`` readable outcomes, smoothed."""
        n = min(count, self.recent_n)
        failed = (self.recent & ((1 << n) - 1)).bit_count()
        return (failed + 0.1) / (n + 1.0)

    def chain_probability(self) -> float:
        """P(fails now) from its pass/fail chain, ``since + 1`` steps after its last outcome."""
        pp, pf, fp, ff = self.trans
        a = (pf + 0.2) / (pp + pf + 4.0)
        b = (ff + 1.0) / (fp + ff + 2.0)
        lam = b - a
        stationary = a / (1.0 - lam) if lam < 1.0 else b
        if self.last < 0:
            return stationary
        return stationary + (self.last - stationary) * lam ** (self.since + 1)

    def learn_lone_failure(self, *, passed: bool) -> None:
        """Count a failure of this job alone, in a run that ``passed`` anyway or failed.

        Both counts first shrink by :data:`ALLOWED_DECAY`: a project that stops allowing a job
        to fail (takes it out of ``allow_failures``) must be believed after a few lone failures
        that fail the run, however many it had allowed before.
        """
        self.solo_in_passed *= ALLOWED_DECAY
        self.solo_in_failed *= ALLOWED_DECAY
        if passed:
            self.solo_in_passed += 1.0
        else:
            self.solo_in_failed += 1.0

    def is_allowed_to_fail(self) -> bool:
        """Whether its recent lone failures mostly left the run passing (``allow_failures``)."""
        return self.solo_in_passed >= 2 and self.solo_in_passed > self.solo_in_failed

    def to_list(self) -> list[Any]:
        """Compact JSON form."""
        return [
            self.ran, self.seen, self.fails, self.recent, self.recent_n, self.trans, self.last,
            self.streak, self.last_fail, self.since, self.lone, self.partial,
            self.solo_in_passed, self.solo_in_failed, self.events, self.cost_sum, self.cost_n,
            self.energy_sum, self.energy_n,
        ]  # fmt: skip

    @classmethod
    def from_list(cls, raw: Sequence[Any]) -> JobMemory:
        """Inverse of :meth:`to_list`."""
        if len(raw) != 19:
            raise ValueError(f"a job's memory has 19 fields, not {len(raw)}")
        trans = [int(x) for x in raw[5]]
        events = [int(x) for x in raw[14]]
        if len(trans) != 4 or len(events) != 2 * len(EVENTS):
            raise ValueError("a job's transitions or event counts have the wrong length")
        counts = [int(raw[i]) for i in (0, 1, 2, 4, 7, 9, 10, 11, 16, 18)]
        if min(counts + trans + events) < 0 or int(raw[6]) not in (-1, 0, 1):
            raise ValueError("a job's counts are negative or its last outcome is unknown")
        if int(raw[8]) < -1 or min(float(raw[12]), float(raw[13])) < 0:
            raise ValueError("a job's last failure or lone failure counts are out of range")
        return cls(
            int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]) & RECENT_MASK,
            min(int(raw[4]), RECENT), trans, int(raw[6]), int(raw[7]), int(raw[8]),
            int(raw[9]), int(raw[10]), int(raw[11]), float(raw[12]), float(raw[13]), events,
            float(raw[15]), int(raw[16]), float(raw[17]), int(raw[18]),
        )  # fmt: skip


@final
@dataclass(slots=True)
class ProjectMemory:
    """Counts of one project."""

    jobs: dict[str, JobMemory] = field(default_factory=dict)
    pairs: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # A -> B -> [n, both]
    runs: int = 0
    since_full: int = 0
    failing_recent: int = 0  # bit k: the run k runs ago failed
    failing_recent_n: int = 0
    status_runs: int = 0
    failing_runs: int = 0
    previous: dict[str, int] = field(default_factory=dict)  # the last run's readable outcomes
    commits: dict[str, dict[str, int]] = field(default_factory=dict)
    branches: dict[str, dict[str, int]] = field(default_factory=dict)
    branch_runs: dict[str, int] = field(default_factory=dict)
    last_failing: list[str] = field(default_factory=list)  # jobs failing in the last failing run
    last_failing_run: int = -1
    last_time: float | None = None
    last_branch: str | None = None
    last_commit: str | None = None

    def failing_rate(self) -> float:
        """Share of this project's runs that failed, smoothed."""
        return (self.failing_runs + 0.5) / (self.status_runs + 2.0)

    def recent_failing_rate(self) -> float:
        """Share of the last :data:`RECENT_RUNS` runs that failed, smoothed."""
        n = self.failing_recent_n
        return ((self.failing_recent & ((1 << n) - 1)).bit_count() + 0.5) / (n + 2.0)

    def learn(
        self,
        jobs: Sequence[str],
        outcomes: Mapping[str, str],
        *,
        status: str | None,
        branch: str | None,
        event: str | None,
        commit: str | None,
        moment: float | None,
        decay: float,
    ) -> None:
        """Fold one run into the counts; ``outcomes`` holds only the jobs that ran.

        ``moment`` is the run's start in seconds since the epoch (see :func:`timestamp`).
        """
        self.runs += 1
        run_number = self.runs
        known = {
            name: int(outcome in FAILING_OUTCOMES)
            for name, outcome in outcomes.items()
            if outcome in KNOWN_OUTCOMES
        }
        failing = [name for name, bad in known.items() if bad]
        n_failing = len(failing)
        partial = int(0 < n_failing < len(known))
        lone = int(n_failing == 1)
        event_at = 2 * event_index(event)
        table = self.jobs
        missing = 0
        for name in jobs:
            job = table.get(name)
            if job is None:
                job = table[name] = JobMemory()
            if name not in outcomes:
                job.since += 1
                missing += 1
                continue
            job.ran += 1
            job.since = 0
            bad = known.get(name)
            if bad is None:
                continue
            last = job.last
            if last >= 0:
                job.trans[last * 2 + bad] += 1
                job.streak = job.streak + 1 if bad == last else 1
            else:
                job.streak = 1
            job.last = bad
            job.seen += 1
            job.recent = ((job.recent << 1) | bad) & RECENT_MASK
            if job.recent_n < RECENT:
                job.recent_n += 1
            if event_at >= 0:
                events = job.events
                events[event_at] += 1
                events[event_at + 1] += bad
            if bad:
                job.fails += 1
                job.last_fail = run_number
                job.lone += lone
                job.partial += partial
                if lone and status in ("passed", "failed"):
                    job.learn_lone_failure(passed=status == "passed")
        self.since_full = self.since_full + 1 if missing else 0
        if failing:
            self.learn_pairs(known, failing, decay)
            self.last_failing = failing
            self.last_failing_run = run_number
        if status in ("passed", "failed") and known:
            self.status_runs += 1
            self.failing_runs += int(status == "failed" and bool(failing))
        run_failed = int(bool(failing) and status != "passed")
        self.failing_recent = ((self.failing_recent << 1) | run_failed) & RECENT_RUNS_MASK
        if self.failing_recent_n < RECENT_RUNS:
            self.failing_recent_n += 1
        self.previous = known
        if commit:
            remember(self.commits, commit, known)
        if branch:
            remember(self.branches, branch, known)
            remember(self.branch_runs, branch, self.branch_runs.get(branch, 0) + 1)
        if moment is not None:
            self.last_time = moment
        self.last_branch = branch
        self.last_commit = commit

    def learn_pairs(self, known: Mapping[str, int], failing: Sequence[str], decay: float) -> None:
        """For each failing job A and other known job B: count B's outcome, older ones decayed."""
        pairs = self.pairs
        for a in failing:
            row = pairs.get(a)
            if row is None:
                row = pairs[a] = {}
            for b, bad in known.items():
                if b == a:
                    continue
                cell = row.get(b)
                if cell is None:
                    row[b] = [1.0, float(bad)]
                else:
                    cell[0] = cell[0] * decay + 1.0
                    cell[1] = cell[1] * decay + bad

    def learn_costs(self, durations: Mapping[str, float], energies: Mapping[str, float]) -> None:
        """Fold the durations and energies of the jobs that ran into their mean costs."""
        for name, seconds in durations.items():
            job = self.jobs[name]
            job.cost_sum += seconds
            job.cost_n += 1
        for name, kwh in energies.items():
            job = self.jobs[name]
            job.energy_sum += kwh
            job.energy_n += 1

    def gap_hours(self, moment: float | None) -> float | None:
        """Hours since the project's previous run started, or None when unknown."""
        if moment is None or self.last_time is None:
            return None
        return max(0.0, (moment - self.last_time) / 3600.0)

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON form."""
        return {
            "jobs": {name: job.to_list() for name, job in self.jobs.items()},
            "pairs": self.pairs,
            "counts": [
                self.runs,
                self.since_full,
                self.failing_recent,
                self.failing_recent_n,
                self.status_runs,
                self.failing_runs,
                self.last_failing_run,
            ],  # fmt: skip
            "previous": self.previous,
            "commits": self.commits,
            "branches": self.branches,
            "branch_runs": self.branch_runs,
            "last_failing": self.last_failing,
            "last": [self.last_time, self.last_branch, self.last_commit],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ProjectMemory:
        """Inverse of :meth:`to_dict`; raises on damaged data."""
        counts = [int(x) for x in raw["counts"]]
        if len(counts) != 7:
            raise ValueError("a project's counts have the wrong length")
        last_time, last_branch, last_commit = raw["last"]
        return cls(
            jobs={str(name): JobMemory.from_list(v) for name, v in raw["jobs"].items()},
            pairs={
                str(a): {str(b): pair_cell(v) for b, v in row.items()}
                for a, row in raw["pairs"].items()
            },
            runs=counts[0],
            since_full=counts[1],
            failing_recent=counts[2] & RECENT_RUNS_MASK,
            failing_recent_n=min(counts[3], RECENT_RUNS),
            status_runs=counts[4],
            failing_runs=counts[5],
            last_failing_run=counts[6],
            previous=outcome_map(raw["previous"]),
            commits={str(k): outcome_map(v) for k, v in raw["commits"].items()},
            branches={str(k): outcome_map(v) for k, v in raw["branches"].items()},
            branch_runs={str(k): int(v) for k, v in raw["branch_runs"].items()},
            last_failing=[str(name) for name in raw["last_failing"]],
            last_time=None if last_time is None else finite(last_time),
            last_branch=None if last_branch is None else str(last_branch),
            last_commit=None if last_commit is None else str(last_commit),
        )


def remember(table: dict[str, Any], key: str, value: Any) -> None:
    """Set ``table[key]`` as its newest entry, forgetting the oldest beyond :data:`REMEMBERED`."""
    if key in table:
        del table[key]
    elif len(table) >= REMEMBERED:
        del table[next(iter(table))]
    table[key] = value


def pair_cell(raw: Any) -> list[float]:
    """A co-failure cell ``[n, both]`` read back from JSON."""
    n, both = (finite(x) for x in raw)
    if not 0.0 <= both <= n:
        raise ValueError("a co-failure count is out of range")
    return [n, both]


def outcome_map(raw: Mapping[str, Any]) -> dict[str, int]:
    """Job outcomes (0 passed, 1 failed) read back from JSON."""
    result = {str(name): int(bad) for name, bad in raw.items()}
    if any(bad not in (0, 1) for bad in result.values()):
        raise ValueError("an outcome is neither 0 nor 1")
    return result


def finite(value: Any) -> float:
    """A finite float, or ValueError."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("a number is not finite")
    return number
