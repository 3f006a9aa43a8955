"""``pytest-carbon matrix plan-tests`` and ``matrix evaluate-tests``: per-test plans across jobs."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.tests_plan import (
    BALANCES,
    GRANULARITIES,
    JobCell,
    RunTests,
    TestPlan,
    TestPlanner,
    read_changed_files,
    read_report_runs,
)
from pytest_carbon.matrix.tests_replay import (
    TestsReplayConfig,
    TestsReplayResult,
    csv_projects,
    projects_of_reports,
    replay_tests,
)


def register_test_commands(matrix_commands: Any) -> None:
    """Add ``plan-tests`` and ``evaluate-tests`` to the ``matrix`` subparsers."""
    add_plan_tests(matrix_commands)
    add_evaluate_tests(matrix_commands)


def add_learning_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by planning and evaluation."""
    parser.add_argument(
        "--min-runs",
        type=int,
        default=5,
        metavar="N",
        help="skip a test only after N runs in which two or more jobs ran it (default 5)",
    )
    parser.add_argument(
        "--recent-failures",
        type=int,
        default=3,
        metavar="N",
        help="run a test everywhere while it failed in one of the last N runs (default 3)",
    )
    parser.add_argument(
        "--by", choices=GRANULARITIES, default="test", help="plan single tests or whole modules"
    )
    parser.add_argument(
        "--balance",
        choices=BALANCES,
        default="time",
        help="spread covered tests by measured wall time or energy (default time)",
    )


def add_plan_tests(sub: Any) -> None:
    """Register ``matrix plan-tests``."""
    parser = sub.add_parser(
        "plan-tests",
        help="plan which tests each job may skip because another job covers them",
        description=(
            "Learn from pytest-carbon JSON reports (one per job, grouped into runs by run id) "
            "which tests behave the same in every job, and write a test plan for "
            "`pytest --carbon-plan PLAN --carbon-job NAME`."
        ),
    )
    parser.add_argument(
        "reports", nargs="+", metavar="REPORTS", help="JSON reports or folders of them"
    )
    parser.add_argument("-o", "--output", required=True, metavar="PLAN", help="plan JSON to write")
    parser.add_argument(
        "--jobs",
        metavar="A,B,C",
        help="plan for these jobs only (default: the jobs of the latest run)",
    )
    parser.add_argument(
        "--changed-files",
        metavar="FILE",
        help="file listing changed paths, one a line (e.g. git diff --name-only)",
    )
    parser.add_argument(
        "--changed", nargs="+", default=[], metavar="PATH", help="changed paths or module names"
    )
    add_learning_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run_plan_tests)


def add_evaluate_tests(sub: Any) -> None:
    """Register ``matrix evaluate-tests``."""
    parser = sub.add_parser(
        "evaluate-tests",
        help="replay history in time order and score per-test plans",
        description=(
            "Replay history in time order: plan each run from the past only, reveal only what "
            "the plan ran, and report failing-test recall and executions or energy saved."
        ),
    )
    parser.add_argument(
        "history",
        nargs="+",
        metavar="HISTORY",
        help="JSON reports or folders of them, or a CSV export with failed_tests",
    )
    add_learning_options(parser)
    parser.add_argument(
        "--train-share",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="share of each project's runs learned before the replay starts (default 0.5)",
    )
    parser.add_argument(
        "--full-every",
        type=int,
        default=10,
        metavar="N",
        help="every N-th replayed run skips nothing (0: never; default 10)",
    )
    parser.add_argument(
        "--min-history",
        type=int,
        default=20,
        metavar="N",
        help="replay projects with at least N runs (default 20)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run_evaluate_tests)


def make_planner(args: argparse.Namespace) -> TestPlanner:
    """A planner with the command's settings, checked."""
    for option, value in (
        ("--min-runs", args.min_runs),
        ("--recent-failures", args.recent_failures),
    ):
        if value < 0:
            raise InputError(option, f"{value} is negative", fix="pass 0 or more")
    return TestPlanner(
        min_runs=args.min_runs,
        recent_failures=args.recent_failures,
        granularity=args.by,
        balance=args.balance,
    )


# --------------------------------------------------------------------------- plan-tests


def run_plan_tests(args: argparse.Namespace) -> int:
    """Learn from the reports, write the plan, print what each job skips."""
    planner = make_planner(args)
    runs = read_report_runs(args.reports)
    if not runs:
        raise InputError(", ".join(args.reports), "no reports found")
    projects = {run.project for run in runs if run.project}
    if len(projects) > 1:
        raise InputError(
            ", ".join(args.reports),
            f"reports of {len(projects)} projects ({', '.join(sorted(projects))})",
            fix="plan one project at a time",
        )
    changed = list(args.changed)
    if args.changed_files:
        changed += read_changed_files(args.changed_files)
    planner.fit(runs)
    cells = choose_cells(runs, args.jobs)
    plan = planner.plan(cells, changed=changed)
    plan.save(args.output)
    if args.format == "json":
        print(json.dumps(plan_summary(plan, len(runs)), indent=2))
    else:
        print(render_plan_tests(plan, len(runs), args.output))
    return 0


def choose_cells(runs: Sequence[RunTests], jobs: str | None) -> list[JobCell]:
    """The cells to plan for: the latest run's, or those named by ``--jobs`` (name or label)."""
    if jobs is None:
        return runs[-1].cells
    wanted = [name.strip() for name in jobs.split(",") if name.strip()]
    if not wanted:
        raise InputError("--jobs", "no job names given", fix="pass --jobs a,b,c")
    known = {cell for run in runs for job in run.jobs for cell in (job.cell,)}
    chosen: list[JobCell] = []
    for name in wanted:
        matches = [cell for cell in known if name in (cell.name, cell.label)]
        if not matches:
            names = ", ".join(sorted({cell.label for cell in known}))
            raise InputError("--jobs", f"no report of job {name!r}", fix=f"use one of {names}")
        chosen.extend(matches)
    return sorted(set(chosen))


def plan_summary(plan: TestPlan, runs: int) -> dict[str, Any]:
    """The plan's figures for ``--format json``."""
    return {
        "runs": runs,
        "jobs": [
            {
                "job": job.cell.label,
                "skip": len(job.skip),
                "energy_kwh_saved": job.energy_kwh_saved,
                "wall_s_saved": job.wall_s_saved,
                "load": job.load,
            }
            for job in plan.jobs
        ],
        "kept": plan.kept,
        "sensitive": len(plan.sensitive),
    }


def render_plan_tests(plan: TestPlan, runs: int, output: str) -> str:
    """The plan as a table, with the reasons tests were kept everywhere."""
    rows = [
        (
            job.cell.label,
            str(len(job.skip)),
            format_kwh(job.energy_kwh_saved),
            format_seconds(job.wall_s_saved),
            format_seconds(job.load) if plan.balance == "time" else format_kwh(job.load),
        )
        for job in plan.jobs
    ]
    lines = format_table(("job", "skip", "energy saved", "time saved", "est. load"), rows)
    total = sum(len(job.skip) for job in plan.jobs)
    energy = sum(job.energy_kwh_saved for job in plan.jobs)
    lines.append(
        f"learned from {runs} run(s); {total} test execution(s) skipped across "
        f"{len(plan.jobs)} job(s), about {format_kwh(energy)} saved per run (history mean)"
    )
    if plan.kept:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(plan.kept.items()))
        lines.append(f"run in every job: {reasons}")
    if plan.sensitive:
        lines.append(f"{len(plan.sensitive)} test(s) depend on the matrix (see 'sensitive')")
    lines.append(f"plan written to {output}")
    return "\n".join(lines)


def format_kwh(kwh: float) -> str:
    """Energy in the unit a person reads best."""
    from pytest_carbon.report.units import format_energy

    return format_energy(kwh)


def format_seconds(seconds: float) -> str:
    """A duration in the unit a person reads best."""
    from pytest_carbon.report.units import format_seconds as humane

    return humane(seconds)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain aligned text table."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()
    ]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    return lines


# --------------------------------------------------------------------------- evaluate-tests


def is_report_source(source: str) -> bool:
    """Whether a history source is JSON reports (a folder or a .json file), not a CSV export."""
    path = Path(source)
    return path.is_dir() or path.suffix.lower() == ".json"


def load_projects(sources: Sequence[str]) -> list[list[RunTests]]:
    """Each project's runs from reports and CSV exports, oldest first."""
    from pytest_carbon.matrix.history import LoadNotes, load_history

    reports = [source for source in sources if is_report_source(source)]
    others = [source for source in sources if not is_report_source(source)]
    projects: list[list[RunTests]] = []
    if reports:
        projects.extend(projects_of_reports(read_report_runs(reports)))
    if others:
        projects.extend(csv_projects(load_history(others, with_tests=True, notes=LoadNotes())))
    return projects


def run_evaluate_tests(args: argparse.Namespace) -> int:
    """Replay the history and print recall and savings."""
    if not 0.0 <= args.train_share < 1.0:
        raise InputError(
            "--train-share", f"{args.train_share} is not in [0, 1)", fix="pass e.g. 0.5"
        )
    make_planner(args)
    config = TestsReplayConfig(
        train_share=args.train_share, full_every=args.full_every, min_runs=args.min_history
    )
    started = time.perf_counter()
    projects = load_projects(args.history)
    loaded = time.perf_counter() - started
    result = replay_tests(projects, lambda: make_planner(args), config, "plan")
    if not result.runs:
        raise InputError(
            ", ".join(args.history),
            f"no project has {args.min_history} runs with test outcomes to replay",
            fix="lower --min-history or add history",
        )
    report = evaluation(result, config, args, loaded)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_evaluation(report))
    return 0


def evaluation(
    result: TestsReplayResult,
    config: TestsReplayConfig,
    args: argparse.Namespace,
    load_seconds: float,
) -> dict[str, Any]:
    """The figures and the settings that produced them."""
    report = result.to_dict()
    report["settings"] = {
        "min_runs": args.min_runs,
        "recent_failures": args.recent_failures,
        "by": args.by,
        "balance": args.balance,
        "train_share": config.train_share,
        "full_every": config.full_every,
        "min_history": config.min_runs,
    }
    report["load_seconds"] = load_seconds
    return report


def render_evaluation(report: Mapping[str, Any]) -> str:
    """The replay's figures as a table."""
    rows = [
        ("projects replayed", str(report["projects"])),
        ("runs replayed (full runs)", f"{report['runs']} ({report['full_runs']})"),
        ("failing runs still red", ratio(report["caught_runs"], report["failing_runs"])),
        (
            "failing (test, job) pairs caught",
            ratio(report["caught_pairs"], report["failing_pairs"]),
        ),
        (
            "  of tests known when planned",
            ratio(report["known_caught_pairs"], report["known_failing_pairs"]),
        ),
        ("test executions skipped", ratio(report["skipped"], report["executions"])),
        ("energy saved", measured(report["energy_kwh_saved"], report["energy_kwh"], " kWh")),
        ("test time saved", measured(report["wall_s_saved"], report["wall_s"], " s")),
        ("mean plan time", f"{report['mean_plan_ms']:.2f} ms"),
    ]
    if report["max_job_wall_s"] > 0:
        rows.insert(
            -1,
            (
                "slowest job's test time",
                f"{report['max_job_wall_s_planned']:.3g} s of {report['max_job_wall_s']:.3g} s",
            ),
        )
    return "\n".join(format_table(("measure", "value"), rows))


def ratio(part: int, whole: int) -> str:
    """``part of whole (share)``."""
    if not whole:
        return "n/a"
    return f"{part} of {whole} ({part / whole:.1%})"


def measured(part: float, whole: float, unit: str) -> str:
    """A measured quantity's saving, or n/a when the history has no measurements."""
    if whole <= 0:
        return "n/a (not in this history)"
    return f"{part:.3g}{unit} of {whole:.3g}{unit} ({part / whole:.1%})"


__all__ = ["register_test_commands", "run_evaluate_tests", "run_plan_tests"]
