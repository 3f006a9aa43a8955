"""The pytest entry point: options, markers, and the session hooks once ``--carbon`` is on.

This module is imported by every pytest run that has pytest-carbon installed, so it imports
nothing beyond the options until measurement is asked for: a run without ``--carbon`` pays
nothing. The hooks themselves live in :mod:`pytest_carbon.session_hooks` (measurement and
reports) and :mod:`pytest_carbon.plan_hooks` (``--carbon-plan``).
"""

from __future__ import annotations

from typing import Final

import pytest

from pytest_carbon.options import add_options, parse_bool, raw_value

#: Registered on every run, so kept here: importing the budget module is for --carbon runs only.
BUDGET_MARKER_HELP: Final = (
    "carbon_budget(energy_kwh=None, emissions_g=None): fail the test when its setup and call "
    "use more energy (kWh) or emit more (gCO2e) than this (pytest-carbon, needs --carbon)."
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Declare the ``carbon`` option group."""
    add_options(parser)
    import_without_rewriting(pluginmanager)


def import_without_rewriting(pluginmanager: pytest.PytestPluginManager) -> None:
    """Let Python import the rest of this package, not pytest's assertion rewriter.

    pytest rewrites the asserts of every module of a plugin's distribution when it is imported.
    This package has no test asserts to rewrite, and a rewritten module is compiled from source
    on every run where bytecode is not written (``PYTHONDONTWRITEBYTECODE``, usual in CI
    images): half a second of start-up and shutdown for ``--carbon``. Imported normally, its
    modules load from the bytecode compiled when the package was installed.
    """
    marked = getattr(getattr(pluginmanager, "rewrite_hook", None), "_must_rewrite", None)
    if isinstance(marked, set):
        marked.discard(__name__.partition(".")[0])


@pytest.hookimpl(trylast=True)  # trylast: xdist registers its dsession in its own configure first
def pytest_configure(config: pytest.Config) -> None:
    """Validate options and register the session hooks when ``--carbon`` is on."""
    config.addinivalue_line("markers", BUDGET_MARKER_HELP)
    if raw_value(config, "carbon_plan") is not None:  # --carbon-plan works without --carbon
        from pytest_carbon.plan_hooks import register_plan_hooks

        register_plan_hooks(config)
    enabled = raw_value(config, "carbon")
    if enabled is None or not parse_bool("carbon", enabled) or config.option.collectonly:
        return
    from pytest_carbon.options import read_settings
    from pytest_carbon.report.io import check_writable
    from pytest_carbon.session_hooks import register_session_hooks

    settings = read_settings(config)
    if settings.json_path:
        problem = check_writable(settings.json_path)
        if problem:
            raise pytest.UsageError(f"--carbon-json: {problem}")
    register_session_hooks(config, settings)
