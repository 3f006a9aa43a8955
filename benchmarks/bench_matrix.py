"""Benchmark of the matrix selector on the shared CI history.

Runs the full honest replay (selector curve and Mozilla-style baseline), times ``fit`` on the
whole history and ``plan`` on every replayed run, records the peak memory, prints a markdown
section and writes it into ``docs/performance.md`` under ``## Matrix selector``.

    python benchmarks/bench_matrix.py [HISTORY.csv.gz] [--no-write]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _doc import write_section
from bench_matrix_scale import max_rss_mib, plan_latencies_ms

from pytest_carbon.matrix.cli import DEFAULT_BASELINE, DEFAULT_CURVE, evaluate
from pytest_carbon.matrix.history import LoadNotes, group_runs, load_history
from pytest_carbon.matrix.replay import ReplayConfig, split_history
from pytest_carbon.matrix.selector import MatrixSelector, context_of

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "travis-python-dev.csv.gz"
HEADING = "## Matrix selector"
#: Runs at the end of the history whose plans are timed.
PLANNED = 20_000


def time_largest(runs: list[Any]) -> tuple[int, list[float]]:
    """The largest run's job count and 20 timings of planning it from its project's earlier
    runs (a selector fitted on those alone)."""
    at = max(range(len(runs)), key=lambda index: len(runs[index].jobs))
    largest = runs[at]
    earlier = [run for run in runs[:at] if run.project == largest.project]
    selector = MatrixSelector().fit(earlier)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        selector.plan(largest.job_names, context_of(largest))
        timings.append(1000.0 * (time.perf_counter() - started))
    return len(largest.jobs), sorted(timings)


def measure(path: Path) -> dict[str, Any]:
    """Every figure of the section."""
    started = time.perf_counter()
    notes = LoadNotes()
    runs = group_runs(load_history([path], with_tests=False, notes=notes))
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    selector = MatrixSelector().fit(runs)
    fit_s = time.perf_counter() - started
    del selector
    timings, _ = plan_latencies_ms(MatrixSelector().fit(runs[:-PLANNED]), runs[-PLANNED:])
    plans = sorted(timings)
    largest_jobs, big = time_largest(runs)
    split = split_history(runs, ReplayConfig())
    started = time.perf_counter()
    report = evaluate(split, 0.99, DEFAULT_CURVE, DEFAULT_BASELINE)
    evaluate_s = time.perf_counter() - started
    return {
        "runs": len(runs),
        "jobs": sum(len(run.jobs) for run in runs),
        "left_out_rows": notes.skipped_rows,
        "load_s": load_s,
        "fit_s": fit_s,
        "plan_ms_mean": sum(plans) / len(plans),
        "plan_ms_p99": plans[int(0.99 * (len(plans) - 1))],
        "plan_ms_largest": big[len(big) // 2],
        "largest_jobs": largest_jobs,
        "evaluate_s": evaluate_s,
        "peak_mb": max_rss_mib(),
        "report": report,
    }


def percent(value: float | None) -> str:
    """A share as a percentage."""
    return "n/a" if value is None else f"{100.0 * value:.1f} %"


def render(figures: dict[str, Any], path: Path) -> str:
    """The markdown section."""
    report = figures["report"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with "
        f"`python benchmarks/bench_matrix.py {path.name}` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}.",
        "",
        f"History: {figures['runs']:,} runs, {figures['jobs']:,} jobs "
        f"({figures['left_out_rows']:,} rows without a start time left out). "
        f"Replay: {report['projects']} projects with at least 50 usable runs, "
        f"{report['runs']:,} runs replayed ({report['failing_runs']:,} failing) after training "
        f"on the first 80 % of each project's runs.",
        "",
        "| model | setting | failing-run recall | jobs skipped | job time saved "
        "| calibration expected (recall, skipped) |",
        "|---|---|---|---|---|---|",
    ]
    for entry in report["curve"]:
        lines.append(
            f"| selector | target_recall {entry['target_recall']:g} | "
            f"{percent(entry['failing_run_recall'])} | {percent(entry['jobs_skipped_share'])} | "
            f"{percent(entry['time_saved_share'])} | "
            f"{percent(entry['calibrated_recall'])}, "
            f"{percent(entry['calibrated_skipped_share'])} |"
        )
    for entry in report["baseline"]:
        lines.append(
            f"| Mozilla-style baseline | min_confidence {entry['min_confidence']:g} | "
            f"{percent(entry['failing_run_recall'])} | {percent(entry['jobs_skipped_share'])} | "
            f"{percent(entry['time_saved_share'])} | — |"
        )
    lines += [
        "",
        "Job time saved counts the jobs whose test duration is recorded. The selector's periodic "
        "full runs are part of the replay and count as nothing skipped. The last column is what "
        "`fit` expected of each target from planning a sample of its own training history "
        "(`pytest-carbon matrix fit` prints it). `plan` is timed as in use: a selector fitted "
        f"on all but the last {PLANNED:,} runs plans each of them before it learns it; the "
        "largest matrix is planned by a selector fitted on its project's earlier runs.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| load and group the history | {figures['load_s']:.1f} s |",
        f"| `fit` on the whole history | {figures['fit_s']:.1f} s |",
        f"| `plan`, mean over the last {PLANNED:,} runs | {figures['plan_ms_mean']:.3f} ms |",
        f"| `plan`, 99th percentile | {figures['plan_ms_p99']:.3f} ms |",
        f"| `plan`, largest matrix ({figures['largest_jobs']} jobs) | "
        f"{figures['plan_ms_largest']:.1f} ms |",
        f"| full evaluation (fit, {len(report['curve'])} selector and "
        f"{len(report['baseline'])} baseline replays) | {figures['evaluate_s']:.0f} s |",
        f"| peak memory (whole benchmark) | {figures['peak_mb']:.0f} MiB |",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("history", nargs="?", default=str(DATA))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    path = Path(args.history)
    if not path.is_file():
        print(f"history file {path.name} not found; pass its path", file=sys.stderr)
        return 2
    section = render(measure(path), path)
    print(section)
    if not args.no_write:
        write_section("matrix-selector", HEADING.removeprefix("## "), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
