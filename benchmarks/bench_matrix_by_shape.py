"""The job selector's replay with history split per (project, matrix shape) instead of per project.

Job names such as ``cell03of12`` change whenever a matrix grows or shrinks, so a per-project
split replays runs whose jobs were never seen in training. Splitting per matrix shape (the number
of jobs) trains each shape on its own first 80 % and replays only shapes with enough runs, which
is closer to how a matrix is used between two changes. Both splits use the same honest replay.

Run ``python benchmarks/bench_matrix_by_shape.py [HISTORY] [--write]``.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from collections.abc import Callable

from _doc import write_section
from _history import history_parser, load_runs

from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.replay import (
    ReplayConfig,
    ReplayResult,
    Selector,
    replay,
    split_history,
)
from pytest_carbon.matrix.selector import MatrixSelector

TARGETS = (0.95, 0.97, 0.98, 0.99)
BASELINES: list[tuple[str, Callable[[], Selector]]] = [
    ("min_confidence 0.9", lambda: MozillaBaseline(min_confidence=0.9)),
    ("min_confidence 0.99", lambda: MozillaBaseline(min_confidence=0.99)),
]


def row(model: str, setting: str, result: ReplayResult) -> str:
    """One table row."""
    return (
        f"| {model} | {setting} | {result.failing_run_recall:.1%} | "
        f"{result.jobs_skipped_share:.1%} |"
    )


def main() -> int:
    args = history_parser(__doc__).parse_args()
    started = time.perf_counter()
    runs = load_runs(args.history)
    if runs is None:
        return 2
    shaped = [dataclasses.replace(run, project=f"{run.project}#{len(run.jobs)}") for run in runs]
    split = split_history(shaped, ReplayConfig())
    rows = ["| model | setting | failing-run recall | jobs skipped |", "|---|---|---:|---:|"]
    fitted = MatrixSelector().fit(split.train)
    for target in TARGETS:
        selector = copy.deepcopy(fitted).set_params(target_recall=target)
        setting = f"target_recall {target:g}"
        rows.append(row("selector", setting, replay(selector, split, setting, fit=False)))
        print(rows[-1], file=sys.stderr)
    for setting, factory in BASELINES:
        rows.append(row("Mozilla-style baseline", setting, replay(factory(), split, setting)))
        print(rows[-1], file=sys.stderr)
    command = "python benchmarks/bench_matrix_by_shape.py" + (" --write" if args.write else "")
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `{command}`: {split.projects} "
            f"(project, shape) groups with at least 50 usable runs, {len(split.test):,} runs "
            f"replayed ({time.perf_counter() - started:.0f} s).",
            "",
            *rows,
        ]
    )
    print(body)
    if args.write:
        write_section("matrix-by-shape", "Matrix selector, history split by matrix shape", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
