"""The job selector's honest replay when the pipeline runs its plans in waves.

A pipeline in waves runs the plan's job likeliest to fail first (and, with three waves, the next
likeliest second), each wave only when the ones before it passed, as GitHub Actions jobs chained
with ``needs:`` do. A failure in a wave catches the run, so recall is what the whole plan run at
once keeps; what changes is the jobs left out after a failure, and the time: a run waits for
each of its waves in turn. Same loading, definitions, split and scoring as ``pytest-carbon
matrix evaluate --waves N`` (which this calls); the selector is fitted for the same number of
waves (its plans and calibration weigh a job's cost by the chance it runs), the baseline runs
first its job with the highest failure rate (two waves). The default target is replayed again on
a second split (the first 70 % of each project's runs trained), to show whether a result holds
beyond one replayed period.

Run ``python benchmarks/bench_matrix_waves.py [HISTORY] [--write]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from _doc import write_section
from _history import history_parser, load_runs

from pytest_carbon.matrix.cli import evaluate
from pytest_carbon.matrix.replay import ReplayConfig, split_history

TARGETS = (0.95, 0.97, 0.98, 0.99, 0.991, 0.992, 0.995)
BASELINES = (0.9, 0.99)
WAVES = (2, 3)
#: A second split, for the default target only: training on the first 70 % of each project's
#: runs moves the replayed period, so a setting that only suits the first split shows.
SECOND_SPLIT = 0.7


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal."""
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def row(model: str, setting: str, entry: dict[str, Any]) -> str:
    """One table row."""
    runs = entry["runs"] or 1
    return (
        f"| {model} | {setting} | {100.0 * entry['failing_run_recall']:.2f}% | "
        f"{percent(entry['jobs_skipped_share'])} | {percent(entry['time_saved_share'])} | "
        f"{percent(entry['second_waves'] / runs)} | {entry['waves_run'] / runs:.2f} |"
    )


def table(reports: list[dict[str, Any]]) -> list[str]:
    """The rows of a table: the selector's curve in each number of waves, then the baseline."""
    lines = [
        "| model | setting | failing-run recall | jobs skipped | job time saved "
        "| runs waiting for a second wave | waves a run |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        waves = report["waves"]
        lines += [
            row(f"selector, {waves} waves", f"target_recall {entry['target_recall']:g}", entry)
            for entry in report["curve"]
        ]
    lines += [
        row("Mozilla-style baseline, 2 waves", f"min_confidence {entry['min_confidence']:g}", entry)
        for report in reports
        for entry in report["baseline"]
    ]
    return lines


def render(reports: list[dict[str, Any]], second: list[dict[str, Any]], seconds: float) -> str:
    """The markdown section."""
    first = reports[0]
    other = second[0]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench_matrix_waves.py "
        f"--write` ({first['projects']} projects, {first['runs']:,} replayed runs, "
        f"{first['failing_runs']:,} failing; {seconds:.0f} s). The same as `pytest-carbon "
        "matrix evaluate --waves N`.",
        "",
        *table(reports),
        "",
        "Recall is counted as for a plan run at once: a failing run is caught when a job that "
        "ran failed. Jobs left out after a failure count as skipped. A run takes the time of "
        "its waves one after the other: most runs (all whose first waves pass) wait for every "
        'wave. Compare with the one-wave table of section "Matrix selector" at the same '
        "target.",
        "",
        f"A second split, training on the first {SECOND_SPLIT:.0%} of each project's runs "
        f"({other['projects']} projects, {other['runs']:,} replayed runs, "
        f"{other['failing_runs']:,} failing), at the default target only (`pytest-carbon matrix "
        f"evaluate --train-share {SECOND_SPLIT:g} --waves N`):",
        "",
        *table(second),
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark."""
    args = history_parser(__doc__).parse_args()
    started = time.perf_counter()
    runs = load_runs(args.history)
    if runs is None:
        return 2
    reports = []
    second = []
    for waves in WAVES:
        split = split_history(runs, ReplayConfig(waves=waves))
        baselines = BASELINES if waves == WAVES[0] else ()
        reports.append(evaluate(split, 0.99, TARGETS, baselines))
        split = split_history(runs, ReplayConfig(waves=waves, train_share=SECOND_SPLIT))
        second.append(evaluate(split, 0.99, (0.99,), BASELINES[-1:] if baselines else ()))
    section = render(reports, second, time.perf_counter() - started)
    print(section)
    if args.write:
        write_section("matrix-waves", "Matrix selector, plans in waves", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
