"""The per-test CPU cost of the plugin's hooks, measured in-process through pytest's hook machinery.

A fresh pytest ``Config`` is created twice, once with ``--carbon``, once with the plugin blocked;
the hooks of a test (``pytest_runtest_logstart``, the three phases, a ``pytest_runtest_logreport``
per phase, ``pytest_runtest_logfinish``) are then called through pluggy's hook executor exactly as
pytest calls them, for ``--tests`` fake tests, with only the carbon plugin's implementations
(other plugins' are left out so that only ours are timed). The difference of the two CPU times
per test is the plugin's own cost, free of collection and of the machine's noise between
processes. The outcomes are read from pytest's kept reports at the session end: that cost is
in ``bench_session_end.py``.

Run ``python benchmarks/bench_hooks.py [--tests 20000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import pytest
from _doc import write_section


class FakeItem:
    """Just what the hooks read from an item."""

    def __init__(self, index: int) -> None:
        self.nodeid = f"tests/test_mod.py::test_{index}"
        self.location = ("tests/test_mod.py", index, f"test_{index}")
        self.keywords: dict[str, Any] = {}

    def get_closest_marker(self, name: str) -> None:
        return None


class FakeReport:
    """Just what ``pytest_runtest_logreport`` reads."""

    def __init__(self, item: FakeItem, when: str) -> None:
        self.nodeid = item.nodeid
        self.when = when
        self.outcome = "passed"
        self.duration = 1e-5
        self.location = item.location


HOOKS = (
    "pytest_runtest_logstart",
    "pytest_runtest_setup",
    "pytest_runtest_call",
    "pytest_runtest_teardown",
    "pytest_runtest_logreport",
    "pytest_runtest_logfinish",
)


def time_hooks(args: list[str], tests: int) -> float:
    """CPU seconds to drive ``tests`` fake tests through the carbon plugin's hook implementations.

    Only the carbon session plugin's implementations are executed (none with the plugin
    blocked), through pluggy's own hook executor, so the difference is exactly its cost.
    """
    config = pytest.Config.fromdictargs({}, ["-p", "no:cacheprovider", *args])
    config._do_configure()
    plugin = config.pluginmanager.get_plugin("carbon-session")
    ours = {
        id(candidate)
        for name, candidate in config.pluginmanager.list_name_plugin()
        if name.startswith("carbon-session")
    }
    try:
        impls = {
            name: [i for i in getattr(config.hook, name).get_hookimpls() if id(i.plugin) in ours]
            for name in HOOKS
        }
        execute = config.pluginmanager._hookexec
        items = [FakeItem(i) for i in range(tests)]
        started = time.process_time()
        for item in items:
            where = {"nodeid": item.nodeid, "location": item.location}
            execute("pytest_runtest_logstart", impls["pytest_runtest_logstart"], where, False)
            for phase in ("setup", "call", "teardown"):
                execute(
                    f"pytest_runtest_{phase}",
                    impls[f"pytest_runtest_{phase}"],
                    {"item": item},
                    False,
                )
                execute(
                    "pytest_runtest_logreport",
                    impls["pytest_runtest_logreport"],
                    {"report": FakeReport(item, phase)},
                    False,
                )
            execute("pytest_runtest_logfinish", impls["pytest_runtest_logfinish"], where, False)
        elapsed = time.process_time() - started
        # The reports are built in both configurations, so their cost cancels out.
        return elapsed
    finally:
        if plugin is not None:
            plugin.strategy.sidecar.finish()
        config._ensure_unconfigure()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    costs = []
    for _ in range(args.rounds):
        off = time_hooks(["-p", "no:carbon"], args.tests)
        on = time_hooks(["--carbon"], args.tests)
        costs.append((on - off) / args.tests * 1e6)
    command = " ".join(["python benchmarks/bench_hooks.py", *sys.argv[1:]])
    body = (
        f"Measured {time.strftime('%Y-%m-%d')} with `{command}`: the carbon plugin's hooks cost "
        f"**{statistics.median(costs):.1f} µs of CPU per test** (median of {args.rounds} rounds "
        f"of {args.tests:,} tests; range {min(costs):.1f}–{max(costs):.1f} µs), counted through "
        "pytest's own hook executor: four plain hooks reading the counters, at the start of "
        "each phase and at the end of the test (the outcomes are read from pytest's kept "
        "reports at the session end). Target: at most 20 µs."
    )
    print(body)
    if args.write:
        write_section("hooks", "Per-test cost inside pytest", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
