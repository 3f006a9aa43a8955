"""The end of a large session, in-process: pricing the spans, the terminal summary, the JSON report.

Records ``--tests`` tests (three phases each) through the plugin's own recorder, with a pytest
``TestReport`` per phase as pytest's terminal reporter keeps them, then times, with the real code:
reading the outcomes and pricing every phase into the report (``assemble_report``, garbage
collection paused as at a session end), rendering the terminal summary, writing the JSON report
and loading it back (what ``--carbon-baseline``, ``pytest-carbon report`` and ``merge`` do).

Run ``python benchmarks/bench_session_end.py [--tests 26921] [--rounds 3] [--write]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _doc import write_section

from pytest_carbon.engine import LoggedReports, SessionInputs, assemble_report, gc_paused
from pytest_carbon.meter.counters import Counters
from pytest_carbon.meter.power import SidecarResult
from pytest_carbon.meter.spans import PHASE_NAMES, PhaseRecorder
from pytest_carbon.options import Settings
from pytest_carbon.report.model import load_report
from pytest_carbon.report.terminal import render_terminal

HARDWARE = {"cpu_model": "bench CPU", "cpu_tdp_w": 8.0, "ram_watts": 20.0, "gpu_count": 0}


def one_round(tests: int, folder: Path) -> dict[str, float]:
    """Seconds of each stage for one session of ``tests`` tests."""
    recorder, reports = PhaseRecorder(Counters()), []
    for index in range(tests):
        path = f"tests/test_m{index % 40}.py"
        nodeid = f"{path}::test_{index}"
        for code, when in enumerate(PHASE_NAMES):
            recorder.begin(nodeid, code)
            reports.append(
                pytest.TestReport(
                    nodeid, (path, index, f"test_{index}"), {}, "passed", None, when, duration=1e-4
                )
            )
        recorder.end()
    inputs = SessionInputs(
        settings=Settings(enabled=True),
        started_at="2026-01-01T00:00:00+00:00",
        session_delta=[20.0, 18.0, None, None],
        spans=[recorder.table()],
        outcomes=LoggedReports(reports),
        sidecar=SidecarResult(hardware=HARDWARE, estimate={"energy_kwh": 1e-5}),
        energy_methods=(),
    )
    times: dict[str, float] = {}
    started = time.perf_counter()
    with gc_paused():
        report = assemble_report(inputs)
    times["price"] = time.perf_counter() - started
    started = time.perf_counter()
    render_terminal(report, top=10, width=120)
    times["terminal"] = time.perf_counter() - started
    started = time.perf_counter()
    text = report.to_json()
    times["to_json"] = time.perf_counter() - started
    path = folder / "carbon.json"
    path.write_text(text, encoding="utf-8")
    times["json_mb"] = len(text) / 1e6
    started = time.perf_counter()
    loaded = load_report(path)
    times["load"] = time.perf_counter() - started
    assert len(loaded.tests) == tests
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=26921, help="as many as packaging 24.2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(args.tests, Path(tmp)) for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    command = " ".join(["python benchmarks/bench_session_end.py", *sys.argv[1:]])
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `{command}`: {args.tests:,} tests of "
            f"three phases, median of {args.rounds} rounds, in-process.",
            "",
            "| stage | seconds |",
            "|---|---:|",
            f"| read the outcomes, price every phase into the report | {median['price']:.3f} |",
            f"| terminal summary | {median['terminal']:.3f} |",
            f"| write the JSON report ({median['json_mb']:.1f} MB, compact) | "
            f"{median['to_json']:.3f} |",
            f"| load it back (`load_report`) | {median['load']:.3f} |",
        ]
    )
    print(body)
    if args.write:
        write_section("session-end", "The end of a large session", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
