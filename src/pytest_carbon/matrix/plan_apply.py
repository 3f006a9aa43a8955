"""Apply a test plan to one job's collected tests: which to deselect, and what that saves.

Pure functions, no pytest: the plugin calls :func:`open_plan` once per process and
:func:`select` on the collected node ids. Anything wrong with the plan (missing, corrupt,
stale, unknown job) means "run everything" with one line saying why; never an exception.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, final

from pytest_carbon.errors import CarbonError
from pytest_carbon.matrix.tests_plan import TestPlan, load_plan, parse_time
from pytest_carbon.report.units import format_energy

DEFAULT_MAX_AGE_DAYS: Final = 14.0
PREFIX: Final = "carbon plan"


@final
@dataclass(frozen=True, slots=True)
class OpenedPlan:
    """A plan usable for this job, or the one-line reason it is not (then run everything)."""

    path: str
    skip: Mapping[str, float] = field(default_factory=dict)
    job: str | None = None
    reason: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the plan may deselect anything."""
        return self.reason is None


@final
@dataclass(frozen=True, slots=True)
class Selection:
    """What the plan deselects from one collection, or why it deselects nothing."""

    plan: str
    deselect: tuple[str, ...] = ()
    energy_kwh_saved: float = 0.0
    reason: str | None = None

    def message(self) -> str:
        """One line for the terminal."""
        if self.reason is not None:
            return f"{PREFIX}: {self.reason}; running every test."
        return (
            f"{PREFIX}: deselected {len(self.deselect)} test(s) covered by other jobs "
            f"({self.plan}), saving about {format_energy(self.energy_kwh_saved)} "
            "(history mean)."
        )


def open_plan(
    path: str,
    job: str | None,
    matrix: Mapping[str, str] | None = None,
    *,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: dt.datetime | None = None,
) -> OpenedPlan:
    """Load ``path`` and pick this job's entry; the reason when it cannot be used."""
    try:
        plan = load_plan(path)
    except CarbonError as exc:
        return OpenedPlan(path, reason=f"cannot use the plan: {exc}")
    except Exception as exc:  # a plan must never break the session
        return OpenedPlan(path, reason=f"cannot use the plan {path}: {exc!r}")
    return choose_job(plan, path, job, matrix, max_age_days=max_age_days, now=now)


def choose_job(
    plan: TestPlan,
    path: str,
    job: str | None,
    matrix: Mapping[str, str] | None = None,
    *,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    now: dt.datetime | None = None,
) -> OpenedPlan:
    """This job's skips from a loaded plan, unless the plan is stale or does not know the job."""
    created = parse_time(plan.created_at)
    age_days = ((now or dt.datetime.now(dt.timezone.utc)) - created).total_seconds() / 86400
    if age_days > max_age_days:
        return OpenedPlan(
            path,
            reason=(
                f"{path} is {age_days:.0f} days old, older than the {max_age_days:g} allowed "
                "(--carbon-plan-max-age-days); create a fresh one with "
                "`pytest-carbon matrix plan-tests`"
            ),
        )
    if not job:
        return OpenedPlan(path, reason=f"{path}: no job name; pass --carbon-job NAME")
    entry = plan.job(job, matrix)
    if entry is None:
        known = ", ".join(sorted({planned.name for planned in plan.jobs})) or "none"
        return OpenedPlan(path, job=job, reason=f"job {job!r} is not in {path} (it has: {known})")
    return OpenedPlan(
        path, skip={item.nodeid: item.energy_kwh for item in entry.skip}, job=entry.cell.label
    )


def select(opened: OpenedPlan, nodeids: Sequence[str]) -> Selection:
    """The collected tests the plan deselects (in collection order) and the energy they save.

    Only node ids the plan names are deselected: a test the plan does not know always runs.
    """
    if opened.reason is not None:
        return Selection(opened.path, reason=opened.reason)
    skip = opened.skip
    chosen = tuple(nodeid for nodeid in nodeids if nodeid in skip)
    if not chosen:
        return Selection(
            opened.path, reason=f"{opened.path} skips none of the collected tests in {opened.job}"
        )
    return Selection(
        opened.path, deselect=chosen, energy_kwh_saved=sum(skip[nodeid] for nodeid in chosen)
    )


__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "OpenedPlan",
    "Selection",
    "choose_job",
    "open_plan",
    "select",
]
