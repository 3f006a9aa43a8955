"""What users write by hand: a codecarbon task around every test (the baseline to beat).

Loaded with ``-p _codecarbon_tasks``; one offline tracker for the session, ``start_task`` /
``stop_task`` around each test's call.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
_tracker: Any = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _tracker
    from codecarbon import OfflineEmissionsTracker

    _tracker = OfflineEmissionsTracker(
        country_iso_code="USA", save_to_file=False, log_level="error", allow_multiple_runs=True
    )
    _tracker.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    _tracker.start_task(item.nodeid[-200:])
    try:
        return (yield)
    finally:
        _tracker.stop_task()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _tracker is not None:
        _tracker.stop()
