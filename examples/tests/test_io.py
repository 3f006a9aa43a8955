"""Waiting tests: wall time without CPU, charged at idle and memory power only."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest


def test_sleep_like_a_network_call() -> None:
    time.sleep(0.3)


def test_subprocess_work_is_counted() -> None:
    code = "sum(i * i for i in range(2_000_000))"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skip(reason="shows that skipped tests cost almost nothing")
def test_skipped() -> None:
    raise AssertionError("never runs")


@pytest.mark.xfail(reason="a known bug, still paid for", strict=True)
def test_known_bug() -> None:
    assert sum(range(10)) == 46
