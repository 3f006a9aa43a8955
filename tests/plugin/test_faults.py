"""Measurement breaking never changes outcomes: codecarbon failing at start, midway, at stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import assert_conserved, read_report

FAKE_CODECARBON = """
import os, threading
__version__ = "0.0"

class Hardware:
    pass

class OfflineEmissionsTracker:
    def __init__(self, **kwargs):
        self._hardware = []
        self._conf = {}

    def start(self):
        mode = os.environ["FAKE_CODECARBON_FAILS"]
        if mode == "start":
            raise RuntimeError("no power data")
        if mode == "during":
            threading.Timer(0.05, os._exit, args=(3,)).start()

    def stop(self):
        raise RuntimeError("scheduler died")
"""


@pytest.fixture
def broken_codecarbon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Put a codecarbon that fails first on the path of the sidecar process."""
    package = tmp_path / "fake" / "codecarbon"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_CODECARBON)
    monkeypatch.setenv("PYTHONPATH", str(package.parent))
    return monkeypatch


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("start", "codecarbon failed at start: RuntimeError: no power data"),
        ("during", "codecarbon stopped mid-session (exit status 3)*"),
        ("stop", "codecarbon failed at stop: RuntimeError: scheduler died"),
    ],
)
def test_codecarbon_failure_falls_back_and_keeps_outcomes(
    pytester: pytest.Pytester, broken_codecarbon: pytest.MonkeyPatch, stage: str, message: str
) -> None:
    broken_codecarbon.setenv("FAKE_CODECARBON_FAILS", stage)
    pytester.makepyfile(
        test_a="""
        import time
        def test_pass(): time.sleep(0.2)
        def test_fail(): assert False
        """
    )
    result = pytester.runpytest("--carbon", "--carbon-json=carbon.json")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"warning: {message}"])
    report = read_report(pytester)
    assert any(w.startswith(message.rstrip("*")) for w in report.warnings)
    assert report.energy_kwh > 0
    assert_conserved(report)
    if stage == "start":
        assert (
            "codecarbon was unavailable: fallback figures used (see warnings)."
            in report.power.notes
        )
        assert report.power.sources["ram_watts"].endswith("(codecarbon unavailable)")
