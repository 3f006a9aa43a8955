"""A pytest plugin the benchmarks load with ``-p _interleave`` beside ``--carbon``.

It switches the carbon plugin's per-test hooks on and off in blocks of consecutive tests, inside
one session, and times every block (wall and process CPU, from the start of its first test to
the start of the next block). A block's tests then run in the same process, with the same
imports, caches and hash seed, and within seconds of the blocks they are compared with: the
slow drift of a shared machine, which makes whole runs differ by ±10 %, cancels out.

Blocks follow the pattern on, off, off, on (then again), so a drift that is linear within four
blocks cancels too; ``CARBON_BENCH_PATTERN=offfirst`` mirrors it (off, on, on, off), so that two
sessions of a suite together run every block once each way. The timings go as JSON to the file
named by ``CARBON_BENCH_INTERLEAVE``; ``CARBON_BENCH_BLOCK`` sets the block size (default 50).
Only the in-process hooks of a test are switched: the session's start and end are measured by
``bench_overhead.py``.
"""

from __future__ import annotations

import json
import os
from time import perf_counter_ns, process_time_ns
from typing import Any

import pytest

#: The carbon plugin's hooks that run for every test (``session_hooks.MeasuringPlugin``).
PER_TEST_HOOKS = (
    "pytest_runtest_setup",
    "pytest_runtest_call",
    "pytest_runtest_teardown",
    "pytest_runtest_logfinish",
)
ON_FIRST = (True, False, False, True)


class Interleaver:
    """Switches the carbon plugin's per-test hooks and times each block of tests."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.block = int(os.environ.get("CARBON_BENCH_BLOCK", "50"))
        mirrored = os.environ.get("CARBON_BENCH_PATTERN") == "offfirst"
        self.pattern = tuple(not on for on in ON_FIRST) if mirrored else ON_FIRST
        self.count = 0
        self.blocks: list[dict[str, Any]] = []
        self.on = True
        self.start = (0, 0)
        self.callers: list[tuple[Any, list[Any], list[Any]]] = []

    def find_hooks(self) -> None:
        """The hook callers the carbon plugin implements, with and without its implementation."""
        plugin = self.config.pluginmanager.get_plugin("carbon-session")
        if plugin is None:
            raise pytest.UsageError("-p _interleave needs --carbon")
        for name in PER_TEST_HOOKS:
            caller = getattr(self.config.hook, name)
            with_ours = list(caller._hookimpls)
            without = [impl for impl in with_ours if impl.plugin is not plugin]
            self.callers.append((caller, with_ours, without))

    def switch(self, on: bool) -> None:
        """Put the carbon plugin's per-test implementations in or out of their hook callers."""
        for caller, with_ours, without in self.callers:
            caller._hookimpls[:] = with_ours if on else without
        self.on = on

    def close_block(self, now: tuple[int, int]) -> None:
        """Keep the timing of the block that ends at ``now``."""
        self.blocks.append(
            {
                "on": self.on,
                "tests": self.count - len(self.blocks) * self.block,
                "wall_ns": now[0] - self.start[0],
                "cpu_ns": now[1] - self.start[1],
            }
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        """Every ``block`` tests: end the block, switch, start the next one."""
        if self.count % self.block == 0:
            now = (perf_counter_ns(), process_time_ns())
            if not self.callers:
                self.find_hooks()
            else:
                self.close_block(now)
            index = self.count // self.block
            self.switch(self.pattern[index % len(self.pattern)])
            self.start = (perf_counter_ns(), process_time_ns())
        self.count += 1

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """At the end of the loop, keep the last block if it is whole, then switch back on."""
        try:
            return (yield)
        finally:
            now = (perf_counter_ns(), process_time_ns())
            if self.callers and self.count % self.block == 0:
                self.close_block(now)
            if self.callers:
                self.switch(True)
            path = os.environ.get("CARBON_BENCH_INTERLEAVE")
            if path:
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump({"block": self.block, "blocks": self.blocks}, handle)


def pytest_configure(config: pytest.Config) -> None:
    """Register the interleaver (xdist workers and controllers are not interleaved)."""
    if hasattr(config, "workerinput") or config.getoption("numprocesses", None):
        return
    config.pluginmanager.register(Interleaver(config), "carbon-bench-interleave")
