"""A pytest plugin the benchmarks load with ``-p _probe``: timestamps of the session's stages.

Writes the start-up, test-loop (wall and CPU) and shutdown times and the test count as JSON to
the file named by ``CARBON_BENCH_PROBE``; times are relative to ``CARBON_BENCH_LAUNCH``, a
``time.time()`` taken by the benchmark just before it started pytest.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from typing import Any

import pytest

_marks: dict[str, float] = {}


@pytest.hookimpl(wrapper=True, tryfirst=True)  # tryfirst: outermost, so it times every plugin
def pytest_runtestloop(session: pytest.Session) -> Generator[None, Any, Any]:
    _marks["loop_start"] = time.time()
    _marks["loop_cpu_start"] = time.process_time()
    try:
        return (yield)
    finally:
        _marks["loop_end"] = time.time()
        _marks["loop_cpu"] = time.process_time() - _marks["loop_cpu_start"]
        _marks["tests"] = session.testscollected


@pytest.hookimpl(trylast=True)  # trylast: after every other plugin has finished its work
def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get("CARBON_BENCH_PROBE")
    if not path or "loop_start" not in _marks:
        return
    launch = float(os.environ["CARBON_BENCH_LAUNCH"])
    end = time.time()
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "launch_to_loop": _marks["loop_start"] - launch,
                "loop": _marks["loop_end"] - _marks["loop_start"],
                "loop_cpu": _marks["loop_cpu"],
                "loop_to_exit": end - _marks["loop_end"],
                "total": end - launch,
                "tests": int(_marks["tests"]),
            },
            handle,
        )
