"""A pytest plugin the benchmarks load with ``-p _probe``: timestamps of the session's stages.

Writes ``{"launch_to_loop": s, "loop": s, "loop_to_exit": s, "tests": n}`` to the file named by
``CARBON_BENCH_PROBE`` (times relative to ``CARBON_BENCH_LAUNCH``, a ``time.time()`` taken by the
benchmark just before it started pytest).
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
    try:
        return (yield)
    finally:
        _marks["loop_end"] = time.time()
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
                "loop_to_exit": end - _marks["loop_end"],
                "total": end - launch,
                "tests": int(_marks["tests"]),
            },
            handle,
        )
