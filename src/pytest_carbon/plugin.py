"""pytest hooks and options — wiring only; the work happens in :mod:`pytest_carbon.engine`."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Generator
from typing import Any, Final

import pytest

from pytest_carbon.engine import Central, Controller, Worker
from pytest_carbon.errors import CarbonError, CarbonWarning
from pytest_carbon.meter.counters import Counters
from pytest_carbon.meter.power import Sidecar
from pytest_carbon.options import Settings, add_options, parse_bool, raw_value, read_settings
from pytest_carbon.report.io import check_writable, write_atomic
from pytest_carbon.report.model import SessionReport

PLUGIN_NAME: Final = "carbon-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``carbon`` option group."""
    add_options(parser)


@pytest.hookimpl(trylast=True)  # trylast: xdist registers its dsession in its own configure first
def pytest_configure(config: pytest.Config) -> None:
    """Validate options and register the session plugin when ``--carbon`` is on."""
    enabled = raw_value(config, "carbon")
    if enabled is None or not parse_bool("carbon", enabled):
        return
    settings = read_settings(config)
    if settings.json_path:
        problem = check_writable(settings.json_path)
        if problem:
            raise pytest.UsageError(f"--carbon-json: {problem}")
    plugin = make_session_plugin(config, settings)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if isinstance(plugin.strategy, Controller):
        config.pluginmanager.register(XdistControllerHooks(plugin.strategy), PLUGIN_NAME + "-xdist")


def make_session_plugin(config: pytest.Config, settings: Settings) -> CarbonSessionPlugin:
    """The plugin object for this process's role: central, xdist worker or xdist controller."""
    counters = Counters.detect()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return MeasuringPlugin(config, Worker(settings, counters, workerinput["workerid"]))
    if config.pluginmanager.getplugin("dsession") is not None:
        return CarbonSessionPlugin(
            config, Controller(settings, counters, Sidecar(settings.country))
        )
    return MeasuringPlugin(config, Central(settings, counters, Sidecar(settings.country)))


class CarbonSessionPlugin:
    """Session-level hooks shared by every role; the xdist controller uses it as is."""

    def __init__(self, config: pytest.Config, strategy: Central | Worker | Controller) -> None:
        self.config = config
        self.strategy = strategy
        self.report: SessionReport | None = None
        self.output_errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep every phase's outcome (the controller receives the workers' reports here)."""
        if not isinstance(self.strategy, Worker):
            self.strategy.outcomes.add(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Hand the worker's data over, or build and write the session report."""
        strategy = self.strategy
        try:
            if isinstance(strategy, Worker):
                self.config.workeroutput["carbon"] = strategy.payload()  # type: ignore[attr-defined]
                return
            self.report = strategy.finish(int(exitstatus))
        except Exception as exc:  # measurement must never break the session
            warn_once(self.config, f"carbon measurement failed at session end: {exc!r}")
            return
        self.write_outputs(self.report)

    def write_outputs(self, report: SessionReport) -> None:
        """Write every requested report file; failures are reported, never raised."""
        settings = self.strategy.settings
        if settings.json_path:
            self.try_write(settings.json_path, report.to_json)

    def try_write(self, path: str, render: Any) -> None:
        """Render and write one output atomically, recording a one-line error on failure."""
        try:
            write_atomic(path, render())
        except CarbonError as exc:
            self.output_errors.append(str(exc))
            warn_once(self.config, str(exc))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the carbon section."""
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
        for error in self.output_errors:
            terminalreporter.write_line(f"error: {error}", red=True)
        if self.strategy.settings.json_path and not self.output_errors:
            terminalreporter.write_line(
                f"carbon report written to {self.strategy.settings.json_path}"
            )


class MeasuringPlugin(CarbonSessionPlugin):
    """Adds the per-phase counter reads (central process and xdist workers)."""

    strategy: Central | Worker

    def _measure(self, item: pytest.Item, phase: str) -> Generator[None, Any, Any]:
        start = self.strategy.counters.read()
        try:
            return (yield)
        finally:
            try:
                self.strategy.recorder.record(item.nodeid, item.location[0], phase, start)
            except Exception as exc:  # never let measuring change a test's outcome
                warn_once(self.config, f"carbon measurement of {item.nodeid} failed: {exc!r}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Measure the setup phase."""
        return (yield from self._measure(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Measure the call phase."""
        return (yield from self._measure(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Measure the teardown phase."""
        return (yield from self._measure(item, "teardown"))


class XdistControllerHooks:
    """xdist-only hooks, registered only on a controller (so xdist stays optional)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Collect a worker's measurements; a worker that sent none is reported as crashed."""
        self.controller.node_down(node.gateway.id, getattr(node, "workeroutput", None), error)


def warn_once(config: pytest.Config, message: str) -> None:
    """Emit one :class:`CarbonWarning`; never raises, even under ``-W error``."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    report = getattr(plugin, "report", None)
    if report is not None and message not in report.warnings:
        report.warnings.append(message)
    with contextlib.suppress(Warning):  # ``-W error`` must not fail the session
        warnings.warn(CarbonWarning(message), stacklevel=2)
