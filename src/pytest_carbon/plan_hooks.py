"""``--carbon-plan``: the pytest hooks that deselect the tests another matrix job covers.

Wiring only; the decision is :func:`pytest_carbon.matrix.plan_apply.select`. Works without
``--carbon``. Under xdist every worker collects the same items and applies the same pure function,
so the collections stay identical; each worker ships its selection to the controller, which
prints it and records it in the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_carbon.matrix.plan_apply import OpenedPlan, Selection, open_plan, select

if TYPE_CHECKING:
    from pytest_carbon.report.model import Deselection

PLAN_PLUGIN_NAME: Final = "carbon-plan"
#: Key of the selection in ``config.workeroutput``.
WORKER_KEY: Final = "carbon_plan"


def register_plan_hooks(config: pytest.Config) -> None:
    """Read the plan options, open the plan once, register the hooks for this process's role."""
    from pytest_carbon.identity import detect_identity
    from pytest_carbon.options import read_plan_settings

    settings = read_plan_settings(config)
    if settings.plan_path is None:
        return
    identity = detect_identity(settings.job, settings.matrix)
    opened = open_plan(
        settings.plan_path,
        identity.job,
        identity.matrix,
        max_age_days=settings.plan_max_age_days,
    )
    hooks = PlanHooks(opened)
    config.pluginmanager.register(hooks, PLAN_PLUGIN_NAME)
    if getattr(config, "workerinput", None) is None and config.pluginmanager.has_plugin("dsession"):
        config.pluginmanager.register(XdistPlanHooks(hooks), PLAN_PLUGIN_NAME + "-xdist")


class PlanHooks:
    """Deselect the planned tests at collection; say what was saved, or why nothing was."""

    def __init__(self, opened: OpenedPlan) -> None:
        self.opened = opened
        self.selection: Selection | None = None

    # trylast: deselect after -k, -m and other plugins filtered, so the count is what it saves.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Remove the tests the plan says another job covers (identically on every worker)."""
        try:
            selection = select(self.opened, [item.nodeid for item in items])
        except Exception as exc:  # a plan must never break the session
            selection = Selection(self.opened.path, reason=f"plan not applied: {exc!r}")
        self.selection = selection
        if not selection.deselect:
            return
        chosen = set(selection.deselect)
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid in chosen])
        items[:] = [item for item in items if item.nodeid not in chosen]

    def pytest_report_header(self, config: pytest.Config) -> str:
        """Say up front which plan applies, or why none does."""
        opened = self.opened
        if opened.reason is not None:
            return f"carbon plan: {opened.reason}; running every test."
        return (
            f"carbon plan: {opened.path}, job {opened.job}: {len(opened.skip)} test(s) are "
            "covered by other jobs"
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Ship the selection to the controller; a job whose every test is covered passes."""
        workeroutput = getattr(session.config, "workeroutput", None)
        selection = self.selection
        if workeroutput is not None and selection is not None:
            workeroutput[WORKER_KEY] = {
                "deselect": list(selection.deselect),
                "energy_kwh_saved": selection.energy_kwh_saved,
                "reason": selection.reason,
            }
        if (
            exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and selection is not None
            and selection.deselect
            and session.testscollected in (0, len(selection.deselect))
        ):
            session.exitstatus = pytest.ExitCode.OK  # nothing left to run is not a failure here

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One line: how many tests were deselected and the energy that saves."""
        if self.selection is not None and self.opened.reason is None:
            terminalreporter.write_line(self.selection.message())

    def deselection(self) -> Deselection | None:
        """The report's record of what this job deselected (None when nothing was)."""
        from pytest_carbon.report.model import Deselection

        selection = self.selection
        if selection is None or not selection.deselect:
            return None
        return Deselection(
            plan=selection.plan,
            tests=len(selection.deselect),
            energy_kwh_saved=selection.energy_kwh_saved,
            nodeids=list(selection.deselect),
        )


class XdistPlanHooks:
    """xdist controller only: take the workers' selection (they are identical by construction)."""

    def __init__(self, hooks: PlanHooks) -> None:
        self.hooks = hooks

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Keep the first worker's selection; a worker that sent none changes nothing."""
        data = (getattr(node, "workeroutput", None) or {}).get(WORKER_KEY)
        if self.hooks.selection is not None or not isinstance(data, dict):
            return
        self.hooks.selection = Selection(
            self.hooks.opened.path,
            deselect=tuple(str(nodeid) for nodeid in data.get("deselect", [])),
            energy_kwh_saved=float(data.get("energy_kwh_saved") or 0.0),
            reason=data.get("reason"),
        )
