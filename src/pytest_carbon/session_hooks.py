"""The hooks of a ``--carbon`` session: measure every phase, keep every outcome, write reports.

One plugin object per process, by role: :class:`CentralPlugin` without xdist, a
:class:`MeasuringPlugin` on each xdist worker, a :class:`ReportingPlugin` on the xdist controller.
The work happens in :mod:`pytest_carbon.engine`; this module is wiring.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_carbon.engine import Central, Controller, LoggedReports, Worker
from pytest_carbon.errors import CarbonError, CarbonWarning
from pytest_carbon.options import Settings

if TYPE_CHECKING:
    from pytest_carbon.meter.power import HardwareSource
    from pytest_carbon.report.model import SessionReport
    from pytest_carbon.report.outputs import Verdict

PLUGIN_NAME: Final = "carbon-session"


def register_session_hooks(config: pytest.Config, settings: Settings) -> None:
    """Register the plugin of this process's role (and the controller's xdist hooks)."""
    plugin = make_session_plugin(config, settings)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if isinstance(plugin.strategy, Controller):
        config.pluginmanager.register(XdistControllerHooks(plugin.strategy), PLUGIN_NAME + "-xdist")
    if isinstance(plugin, CentralPlugin | ReportingPlugin) and plugin.terminal is None:
        config.pluginmanager.register(LiveOutcomes(plugin), PLUGIN_NAME + "-outcomes")


def make_session_plugin(config: pytest.Config, settings: Settings) -> CarbonSessionPlugin:
    """The plugin object for this process's role: central, xdist worker or xdist controller."""
    from pytest_carbon.meter.counters import Counters

    counters = Counters.detect()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        share = 1.0 / max(int(workerinput.get("workercount", 1)), 1)
        return MeasuringPlugin(
            config, Worker(settings, counters, workerinput["workerid"]), budget_share=share
        )
    source = hardware_source(config, settings, counters)
    if config.pluginmanager.getplugin("dsession") is not None:
        return ReportingPlugin(config, Controller(settings, counters, source))
    return CentralPlugin(config, Central(settings, counters, source))


def hardware_source(config: pytest.Config, settings: Settings, counters: Any) -> HardwareSource:
    """This machine's detection from pytest's cache, else codecarbon in its sidecar process."""
    from pytest_carbon.meter import hardware
    from pytest_carbon.meter.power import Sidecar

    cache = getattr(config, "cache", None)
    current = hardware.fingerprint(counters.gpu_count)
    cached = None if settings.detect else hardware.load(cache, current)
    if cached is not None:
        return hardware.CachedHardware(*cached)
    return Sidecar(settings.country, remember=lambda found: hardware.store(cache, current, found))


def cached_hardware(config: pytest.Config, counters: Any) -> dict[str, Any] | None:
    """This machine's codecarbon detection from pytest's cache, if any (for run-time pricing)."""
    from pytest_carbon.meter import hardware

    current = hardware.fingerprint(counters.gpu_count)
    cached = hardware.load(getattr(config, "cache", None), current)
    return cached[0] if cached else None


class CarbonSessionPlugin:
    """Session-level hooks shared by every role."""

    def __init__(self, config: pytest.Config, strategy: Central | Worker | Controller) -> None:
        self.config = config
        self.strategy = strategy
        self.is_worker = hasattr(config, "workerinput")
        self.report: SessionReport | None = None
        self.output_errors: list[str] = []
        self.budgets: dict[str, dict[str, Any]] = {}
        self.verdict: Verdict | None = None
        self.junit_path: str | None = None
        xmlpath = config.getoption("xmlpath", None)
        if xmlpath:
            from pytest_carbon.report.junit import resolve_xml_path

            self.junit_path = resolve_xml_path(xmlpath)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start codecarbon beside the session (not at configure: ``--help`` never gets here)."""
        self.strategy.begin()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Never leave codecarbon running, whatever way pytest ended."""
        self.strategy.close()

    # trylast: the junitxml plugin writes its file in its own sessionfinish; ours rewrites it.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Hand the worker's data over, or build and write the session report."""
        strategy = self.strategy
        try:
            if self.is_worker:
                payload = strategy.payload()  # type: ignore[union-attr]
                self.config.workeroutput["carbon"] = payload  # type: ignore[attr-defined]
                return
            self.report = self.finish(int(exitstatus))
        except Exception as exc:  # measurement must never break the session
            warn_once(self.config, f"carbon measurement failed at session end: {exc!r}")
            return
        plan = self.config.pluginmanager.get_plugin("carbon-plan")  # plan_hooks.PLAN_PLUGIN_NAME
        if plan is not None:
            self.report.deselection = plan.deselection()
        self.write_outputs(self.report)
        if self.report.exit_status is not None and self.report.exit_status != exitstatus:
            session.exitstatus = self.report.exit_status  # a carbon limit the user set failed

    def finish(self, exitstatus: int) -> SessionReport:
        """The session report (the central process and the xdist controller)."""
        return self.strategy.finish(exitstatus)  # type: ignore[union-attr]

    def write_outputs(self, report: SessionReport) -> None:
        """Write every requested report file; failures are reported, never raised."""
        from pytest_carbon.report import outputs

        settings = self.strategy.settings
        self.verdict = verdict = outputs.judge(report, settings, self.budgets)
        for error in verdict.errors:
            self.record_error(error)
        if settings.json_path:
            self.try_write(settings.json_path, report.to_json)
        for path, render in outputs.planned_files(report, settings, verdict):
            self.try_write(path, render)
        summary = settings.summary_path
        if summary:
            text = outputs.summary_text(report, settings, verdict)
            self.try_output(lambda: outputs.append_text(summary, text))
        junit = self.junit_path
        if junit:
            from pytest_carbon.report.junit import rewrite_junit

            prefix = self.config.getoption("junitprefix", None)
            self.try_output(lambda: rewrite_junit(junit, report, prefix))

    def try_write(self, path: str, render: Any) -> None:
        """Render and write one output atomically, recording a one-line error on failure."""
        from pytest_carbon.report.io import write_atomic

        self.try_output(lambda: write_atomic(path, render()))

    def try_output(self, action: Callable[[], None]) -> None:
        """Run one output action, recording a one-line error on failure."""
        try:
            action()
        except CarbonError as exc:
            self.record_error(str(exc))

    def record_error(self, message: str) -> None:
        """Keep a one-line error for the terminal and warn once."""
        self.output_errors.append(message)
        warn_once(self.config, message)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the carbon section."""
        from pytest_carbon.report import outputs
        from pytest_carbon.report.terminal import render_terminal

        terminalreporter.write_sep("-", "carbon footprint (pytest-carbon)")
        if self.report is None:
            terminalreporter.write_line("no carbon report: measurement failed (see warnings)")
            return
        text = render_terminal(
            self.report,
            top=self.strategy.settings.top,
            width=terminalreporter._tw.fullwidth,
            color=terminalreporter.hasmarkup,
        )
        terminalreporter.write(text)
        for line in outputs.verdict_lines(self.report, self.verdict):
            terminalreporter.write_line(line)
        for failure in self.verdict.failures if self.verdict else ():
            terminalreporter.write_line(failure, red=True, bold=True)
        for error in self.output_errors:
            terminalreporter.write_line(f"error: {error}", red=True)
        if self.strategy.settings.json_path and not self.output_errors:
            terminalreporter.write_line(
                f"carbon report written to {self.strategy.settings.json_path}"
            )


class ReportingPlugin(CarbonSessionPlugin):
    """xdist controller: the workers measure; it gathers their measurements and their reports.

    The outcomes, and the budgets' verdicts the workers set on their reports, are read at the
    session end from the reports pytest's terminal reporter keeps (as :class:`CentralPlugin`
    does), not in a hook called for each of the three reports a test; without a terminal
    reporter, :class:`LiveOutcomes` records them as they arrive.
    """

    strategy: Controller

    def __init__(self, config: pytest.Config, strategy: Controller) -> None:
        super().__init__(config, strategy)
        self.terminal = keeping_terminal(config)

    def finish(self, exitstatus: int) -> SessionReport:
        """The session report, with the outcomes and budgets of the reports pytest kept."""
        if self.terminal is None:  # LiveOutcomes recorded them
            return self.strategy.finish(exitstatus)
        from pytest_carbon.report import budget

        logged = kept_reports(self.terminal)
        self.budgets.update(logged.carried(budget.REPORT_ATTRIBUTE))
        return self.strategy.finish(exitstatus, logged)


class MeasuringPlugin(CarbonSessionPlugin):
    """Adds the per-phase counter reads (central process and xdist workers).

    The hot path: at each phase boundary, four a test, pytest calls the recorder's own mark
    (:class:`~pytest_carbon.meter.spans.PhaseRecorder`), registered here as this plugin's hook,
    which appends one reading of the counters to flat arrays. A phase runs from its own start to
    the start of the next phase of its test; the last one ends when pytest announces the test
    finished (see docs/methodology.md).

    tryfirst, all four: a phase starts before any other plugin's implementation, and the test's
    work ends at ``pytest_runtest_logfinish`` (other plugins' bookkeeping after it is not its
    own). The call and teardown marks take no argument (pluggy then passes none): pytest runs
    the three phases of one item in turn, so theirs is the test whose setup began last.
    """

    strategy: Central | Worker
    pytest_runtest_setup: Callable[[pytest.Item], None]
    pytest_runtest_call: Callable[[], None]
    pytest_runtest_teardown: Callable[[], None]
    pytest_runtest_logfinish: Callable[[], None]

    def __init__(
        self, config: pytest.Config, strategy: Central | Worker, budget_share: float = 1.0
    ) -> None:
        super().__init__(config, strategy)
        self.budget_share = budget_share
        recorder, first = strategy.recorder, pytest.hookimpl(tryfirst=True)
        self.pytest_runtest_setup = first(recorder.setup_starts)
        self.pytest_runtest_call = first(recorder.call_starts)
        self.pytest_runtest_teardown = first(recorder.teardown_starts)
        self.pytest_runtest_logfinish = first(recorder.test_ends)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Judge budgets only when a collected test has one (no cost for suites without)."""
        from pytest_carbon.report import budget

        if carries_marker(session.items, budget.MARKER):
            hooks = BudgetHooks(
                self,
                budget.BudgetGate(
                    budget.RuntimePricer(
                        self.strategy.settings,
                        self.strategy.counters.methods,
                        self.budget_share,
                        hardware=cached_hardware(self.config, self.strategy.counters),
                    )
                ),
            )
            self.config.pluginmanager.register(hooks, PLUGIN_NAME + "-budgets")


#: The terminal reporter's categories whose reports never change a test's outcome (see
#: :func:`kept_reports`).
UNREAD_CATEGORIES: Final = ("", "passed", "subtests passed")


class CentralPlugin(MeasuringPlugin):
    """No xdist: measure every phase and keep every outcome in this process.

    The outcomes are read at the session end from the reports pytest's terminal reporter keeps
    (:func:`kept_reports`), rather than from a hook called for every phase; without a terminal
    reporter (``-p no:terminal``), :class:`LiveOutcomes` records them as they are logged.
    """

    strategy: Central

    def __init__(self, config: pytest.Config, strategy: Central) -> None:
        super().__init__(config, strategy)
        self.terminal = keeping_terminal(config)

    def finish(self, exitstatus: int) -> SessionReport:
        """The session report, with the outcomes of the reports the terminal reporter kept."""
        if self.terminal is None:  # LiveOutcomes recorded them
            return self.strategy.finish(exitstatus)
        return self.strategy.finish(exitstatus, kept_reports(self.terminal))


def keeping_terminal(config: pytest.Config) -> Any:
    """pytest's terminal reporter, if it keeps the session's reports (None otherwise)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    return terminal if isinstance(getattr(terminal, "stats", None), dict) else None


def kept_reports(terminal: Any) -> LoggedReports:
    """The phase reports the terminal reporter kept, to be read once at the session end.

    The "" category holds the passed setups and teardowns, which make no outcome (pytest counts
    no test from them either): two reports a test not to read; "subtests passed" holds passed
    subtests, whose test's own report gives its outcome (a failed subtest is logged as failed).
    The passed ones are read apart, for their node ids.
    """
    stats = terminal.stats
    logged = [
        report
        for category, kept in stats.items()
        if category not in UNREAD_CATEGORIES
        for report in kept
        if isinstance(report, pytest.TestReport)
    ]
    passed = [report for report in stats.get("passed", ()) if isinstance(report, pytest.TestReport)]
    return LoggedReports(logged, passed)


class LiveOutcomes:
    """Records each phase report's outcome as it is logged, when pytest keeps no reports."""

    def __init__(self, plugin: CentralPlugin | ReportingPlugin) -> None:
        self.plugin = plugin

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the phase's outcome, and on a controller the verdict of a worker's budget
        (in one process, :class:`BudgetHooks` keeps it)."""
        plugin = self.plugin
        try:
            plugin.strategy.outcomes.add(report)
        except Exception as exc:  # a report of a shape we do not know must not break pytest
            warn_once(plugin.config, f"carbon: outcome of {report.nodeid} not recorded: {exc!r}")
        limits = report.__dict__.get("carbon_budget")  # budget.REPORT_ATTRIBUTE
        if isinstance(limits, dict) and isinstance(plugin, ReportingPlugin):
            plugin.budgets[report.nodeid] = limits


class BudgetHooks:
    """``carbon_budget`` checks, registered only when a collected test carries the marker."""

    def __init__(self, plugin: MeasuringPlugin, gate: Any) -> None:
        self.plugin = plugin
        self.gate = gate

    # tryfirst: the outermost wrapper sees the report after xfail handling has shaped it.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Judge a ``carbon_budget`` test when its call phase is reported."""
        from pytest_carbon.report import budget

        report = yield
        if call.when == "call":
            try:
                phases = self.plugin.strategy.recorder.phases_of(item.nodeid)
                self.gate.check(item.get_closest_marker(budget.MARKER), report, phases)
            except Exception as exc:  # a pricing failure must not change the test's outcome
                warn_once(
                    self.plugin.config, f"carbon budget of {item.nodeid} not checked: {exc!r}"
                )
            limits = report.__dict__.get(budget.REPORT_ATTRIBUTE)
            if isinstance(limits, dict) and not self.plugin.is_worker:
                self.plugin.budgets[report.nodeid] = limits  # a worker's controller reads reports
        return report


class XdistControllerHooks:
    """xdist-only hooks, registered only on a controller (so xdist stays optional)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Collect a worker's measurements; a worker that sent none is reported as crashed."""
        self.controller.node_down(node.gateway.id, getattr(node, "workeroutput", None), error)


def carries_marker(items: Sequence[pytest.Item], name: str) -> bool:
    """Whether any of ``items`` or of the nodes above them carries the marker ``name``.

    Each node's own markers are read once: ``name in item.keywords`` (or
    ``get_closest_marker``) would walk every node above every item.
    """
    nodes: dict[int, pytest.Item | pytest.Collector] = {}
    for item in items:
        if item.own_markers:
            nodes[id(item)] = item
    parents = {id(item.parent): item.parent for item in items if item.parent is not None}
    while parents:
        nodes.update(parents)
        parents = {
            id(node.parent): node.parent
            for node in parents.values()
            if node.parent is not None and id(node.parent) not in nodes
        }
    return any(mark.name == name for node in nodes.values() for mark in node.own_markers)


def warn_once(config: pytest.Config, message: str) -> None:
    """Emit one :class:`CarbonWarning`; never raises, even under ``-W error``."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    report = getattr(plugin, "report", None)
    if report is not None and message not in report.warnings:
        report.warnings.append(message)
    with contextlib.suppress(Warning):  # ``-W error`` must not fail the session
        warnings.warn(CarbonWarning(message), stacklevel=2)
