"""The job selector's honest replay when the pipeline runs its plan in two waves.

A two-wave pipeline runs the plan's first wave (the job likeliest to fail) and the rest of the
plan only when it passed, as a GitHub Actions job with ``needs:`` does. A failure in the first
wave catches the run, so recall is the single-wave plan's; what changes is the jobs left out
after a first-wave failure, and the time: a run whose first wave passes waits for a second one.
Same loading, definitions, split and scoring as ``pytest-carbon matrix evaluate --staged``
(which this calls); the selector is fitted with ``staged=True`` (its plans and calibration
weigh a job's cost by the chance it runs), the baseline runs first its job with the highest
failure rate.

Run ``python benchmarks/bench_matrix_staged.py [HISTORY] [--write]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _doc import write_section
from _history import history_parser, load_runs

from pytest_carbon.matrix.cli import evaluate
from pytest_carbon.matrix.replay import ReplayConfig, split_history

TARGETS = (0.95, 0.97, 0.98, 0.99, 0.992, 0.995)
BASELINES = (0.9, 0.99)


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal."""
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def row(model: str, setting: str, entry: dict[str, Any]) -> str:
    """One table row."""
    waves = entry["second_waves"] / entry["runs"] if entry["runs"] else 0.0
    return (
        f"| {model} | {setting} | {100.0 * entry['failing_run_recall']:.2f}% | "
        f"{percent(entry['jobs_skipped_share'])} | {percent(entry['time_saved_share'])} | "
        f"{percent(waves)} |"
    )


def render(report: dict[str, Any], seconds: float) -> str:
    """The markdown section."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench_matrix_staged.py "
        f"--write` ({report['projects']} projects, {report['runs']:,} replayed runs, "
        f"{report['failing_runs']:,} failing; {seconds:.0f} s). The same as `pytest-carbon "
        "matrix evaluate --staged`.",
        "",
        "| model | setting | failing-run recall | jobs skipped | job time saved "
        "| runs waiting for a second wave |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        row("selector, two waves", f"target_recall {entry['target_recall']:g}", entry)
        for entry in report["curve"]
    ]
    lines += [
        row(
            "Mozilla-style baseline, two waves",
            f"min_confidence {entry['min_confidence']:g}",
            entry,
        )
        for entry in report["baseline"]
    ]
    lines += [
        "",
        "Recall is counted as in one wave: a failing run is caught when a job that ran failed. "
        "Jobs left out after a first-wave failure count as skipped; the jobs of a run's second "
        "wave wait for its first, so most runs (all whose first wave passes) take the time of "
        "two jobs one after the other instead of one. Compare with the single-wave table above "
        "at the same target.",
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark."""
    args = history_parser(__doc__).parse_args()
    started = time.perf_counter()
    runs = load_runs(args.history)
    if runs is None:
        return 2
    split = split_history(runs, ReplayConfig(staged=True))
    report = evaluate(split, 0.99, TARGETS, BASELINES)
    section = render(report, time.perf_counter() - started)
    print(section)
    if args.write:
        write_section("matrix-staged", "Matrix selector, plans in two waves", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
