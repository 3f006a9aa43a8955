"""How far can job selection go on this history? The selector with hindsight against the honest one.

The honest replay (``pytest-carbon matrix evaluate``) reveals to the selector only the outcomes
of the jobs it ran. Here the same fitted selector is replayed twice at each operating point:
honestly, and with **hindsight**, learning after every run the outcome of every job, skipped or
not, which no selector in a real pipeline can. The gap between the two is what the honest
constraint costs; the hindsight curve is an optimistic bound for this selector's model of job
history. Same loading, definitions, split and scoring as the product.

Run ``python benchmarks/bench_matrix_bounds.py [HISTORY] [--targets 0.95,0.97,0.98,0.99]
[--write]``.
"""

from __future__ import annotations

import copy
import sys
import time
from collections import Counter

from _doc import write_section
from _history import history_parser, load_runs

from pytest_carbon.matrix.history import Run
from pytest_carbon.matrix.replay import ReplayConfig, ReplayResult, Split, replay, split_history
from pytest_carbon.matrix.selector import MatrixSelector


def miss_causes(runs: list[Run], missed: list[str]) -> Counter[str]:
    """Why the replay's missed failing runs were hard: a lone failing job, a new failure."""
    previous: dict[str, frozenset[str]] = {}
    failing_before: dict[str, frozenset[str]] = {}
    for run in runs:
        failing_before[f"{run.project}#{run.run_id}"] = previous.get(run.project, frozenset())
        previous[run.project] = frozenset(job.job for job in run.jobs if job.failed)
    by_key = {f"{run.project}#{run.run_id}": run for run in runs}
    causes: Counter[str] = Counter()
    for key in missed:
        failed = frozenset(job.job for job in by_key[key].jobs if job.failed)
        lone = "one job failed" if len(failed) == 1 else "several jobs failed"
        if failed & failing_before[key]:
            new = "a failure going on (failed in the project's previous run too)"
        else:
            new = "a new failure (none failed in the project's previous run)"
        causes[f"{lone}, {new}"] += 1
    return causes


def render(
    rows: list[tuple[float, ReplayResult, ReplayResult]],
    split: Split,
    seconds: float,
    causes: Counter[str],
    cause_target: float,
) -> str:
    """The markdown section."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench_matrix_bounds.py "
        f"--write` on the shared CI history ({split.projects} projects, {len(split.test):,} "
        f"replayed runs; {seconds:.0f} s).",
        "",
        "| target_recall | honest recall | honest skipped | hindsight recall | hindsight skipped |",
        "|---:|---:|---:|---:|---:|",
    ]
    for target, honest, hindsight in rows:
        lines.append(
            f"| {target:g} | {honest.failing_run_recall:.2%} | {honest.jobs_skipped_share:.2%} "
            f"| {hindsight.failing_run_recall:.2%} | {hindsight.jobs_skipped_share:.2%} |"
        )
    lines += [
        "",
        "Hindsight learns every job's outcome after each run, skipped or not: more than any "
        "selector in a real pipeline can know. Its curve bounds what this model of job history "
        "reaches here; the distance to the honest curve is the price of learning only from the "
        "jobs that ran. The failing runs both still miss are mostly a job failing alone for the "
        "first time in a while: nothing in the job history announces them.",
        "",
        f"The honest replay's missed failing runs at target_recall {cause_target:g}:",
        "",
        "| missed failing run | runs |",
        "|---|---:|",
        *(f"| {cause} | {count} |" for cause, count in causes.most_common()),
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark."""
    parser = history_parser(__doc__)
    parser.add_argument("--targets", default="0.95,0.97,0.98,0.99")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = load_runs(args.history)
    if runs is None:
        return 2
    split = split_history(runs, ReplayConfig())
    fitted = MatrixSelector().fit(split.train)
    rows = []
    for target in (float(x) for x in args.targets.split(",")):
        honest, hindsight = (
            replay(
                copy.deepcopy(fitted).set_params(target_recall=target),
                split,
                label,
                fit=False,
                hindsight=label == "hindsight",
            )
            for label in ("honest", "hindsight")
        )
        rows.append((target, honest, hindsight))
        print(
            f"target {target:g}: honest {honest.failing_run_recall:.4f} @ "
            f"{honest.jobs_skipped_share:.4f}, hindsight {hindsight.failing_run_recall:.4f} @ "
            f"{hindsight.jobs_skipped_share:.4f}",
            flush=True,
        )
    cause_target, honest_at = min(
        ((target, honest) for target, honest, _ in rows), key=lambda row: abs(row[0] - 0.97)
    )
    usable = sorted([*split.train, *split.test], key=lambda r: (r.started_at, r.project, r.run_id))
    causes = miss_causes(usable, honest_at.missed)
    section = render(rows, split, time.perf_counter() - started, causes, cause_target)
    print(section)
    if args.write:
        write_section("matrix-bounds", "Matrix selection: what history allows", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
