"""``pytest-carbon matrix``: ingest CI history, fit a selector, plan a run, evaluate by replay."""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.history import LoadNotes, Run, group_runs, load_history, read_json
from pytest_carbon.matrix.memory import timestamp
from pytest_carbon.matrix.replay import ReplayConfig, ReplayResult, Split, replay, split_history
from pytest_carbon.matrix.selector import MODELS, MatrixSelector, Plan, RunContext
from pytest_carbon.matrix.store import ingest_sources
from pytest_carbon.matrix.tests_cli import register_test_commands

DEFAULT_CURVE = (0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
DEFAULT_BASELINE = (0.8, 0.9, 0.95, 0.99)


def add_matrix_parser(commands: Any) -> None:
    """Register ``matrix`` and its subcommands on the top-level subparsers object."""
    matrix = commands.add_parser(
        "matrix",
        help="learn which CI matrix jobs fail together and plan which to run",
        description="Learn from CI history which matrix jobs fail together; plan and evaluate.",
    )
    sub = matrix.add_subparsers(dest="matrix_command", required=True, metavar="SUBCOMMAND")
    add_ingest(sub)
    add_fit(sub)
    add_plan(sub)
    add_evaluate(sub)
    register_test_commands(sub)


def add_ingest(sub: Any) -> None:
    """Register ``matrix ingest``."""
    parser = sub.add_parser("ingest", help="store history in a SQLite database (idempotent)")
    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="CSV, report/JUnit folder, GitHub JSON"
    )
    parser.add_argument("--db", required=True, metavar="PATH", help="SQLite database to add to")
    parser.set_defaults(handler=run_ingest)


def add_fit(sub: Any) -> None:
    """Register ``matrix fit``."""
    parser = sub.add_parser("fit", help="train a selector on history and save it")
    parser.add_argument(
        "history", nargs="+", metavar="HISTORY", help="a .sqlite store or any source"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="model JSON to write"
    )
    parser.add_argument("--target-recall", type=float, default=0.99, metavar="R")
    parser.add_argument(
        "--kind", choices=("selector", "baseline"), default="selector", help="model to train"
    )
    add_risk_model_option(parser)
    add_waves_option(parser)
    parser.set_defaults(handler=run_fit)


def add_waves_option(parser: Any) -> None:
    """``--waves N``: plans for a pipeline that runs in waves."""
    parser.add_argument(
        "--waves",
        type=int,
        default=1,
        metavar="N",
        help="plan for a pipeline in N waves (default 1: every planned job at once): the N-1 "
        "jobs likeliest to fail first, one a wave, each wave only when the ones before passed "
        "(a failure there already shows the run fails)",
    )


def add_risk_model_option(parser: Any) -> None:
    """``--risk-model``: the selector's learned model, or counting only."""
    parser.add_argument(
        "--risk-model",
        choices=MODELS,
        default="boosted",
        help="how the selector estimates a job's chance to fail: learned boosted trees "
        "(default), a learned logistic regression, or each job's own pass/fail chain (counting)",
    )


def add_plan(sub: Any) -> None:
    """Register ``matrix plan``."""
    parser = sub.add_parser("plan", help="print which jobs of a run to run and which to skip")
    parser.add_argument("--model", required=True, metavar="MODEL", help="model JSON from fit")
    jobs = parser.add_mutually_exclusive_group(required=True)
    jobs.add_argument("--jobs", metavar="A,B,C", help="comma-separated job names")
    jobs.add_argument("--matrix-json", metavar="FILE", help="GitHub Actions matrix as JSON")
    parser.add_argument("--project", default="", help="project the run belongs to")
    parser.add_argument("--branch", default=None)
    parser.add_argument("--event", default=None, help="push, pull_request, schedule, ...")
    parser.add_argument("--commit", default=None)
    parser.add_argument(
        "--started-at",
        default=None,
        metavar="TIME",
        help="when the run starts, as YYYY-MM-DDTHH:MM:SSZ (default: now); the model weighs "
        "the time since the project's last run and the weekend",
    )
    parser.add_argument("--target-recall", type=float, default=None, metavar="R")
    parser.add_argument(
        "--format",
        choices=("table", "json", "waves", "plan-json"),
        default=None,
        help="table (default on a terminal), json (a matrix for fromJSON), waves (a matrix "
        'per wave, {"waves": [...]}, for a pipeline in waves) or plan-json',
    )
    parser.set_defaults(handler=run_plan)


def add_evaluate(sub: Any) -> None:
    """Register ``matrix evaluate``."""
    parser = sub.add_parser("evaluate", help="replay history in time order and score the plans")
    parser.add_argument("history", nargs="+", metavar="HISTORY")
    parser.add_argument("--target-recall", type=float, default=0.99, metavar="R")
    parser.add_argument("--train-share", type=float, default=0.8, metavar="SHARE")
    parser.add_argument("--min-runs", type=int, default=50, metavar="N")
    parser.add_argument(
        "--errored-as-failing", action="store_true", help="count errored runs as failing"
    )
    parser.add_argument("--curve", default=",".join(map(str, DEFAULT_CURVE)), metavar="R,R,...")
    parser.add_argument(
        "--baseline",
        default=",".join(map(str, DEFAULT_BASELINE)),
        metavar="C,C,...",
        help="confidence thresholds of the Mozilla-style baseline (empty: none)",
    )
    add_risk_model_option(parser)
    add_waves_option(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run_evaluate)


# --------------------------------------------------------------------------- ingest


def run_ingest(args: argparse.Namespace) -> int:
    """Store every source in the database; print what each added."""
    notes = LoadNotes()
    results = ingest_sources(args.db, args.sources, notes)
    for result in results:
        print(f"{result.source}: {result.added} new job row(s) of {result.read} read")
    print_notes(notes)
    return 0


def print_notes(notes: LoadNotes) -> None:
    """Tell the user what the loaders left out."""
    summary = notes.summary()
    if summary:
        print(f"note: {summary}", file=sys.stderr)


# --------------------------------------------------------------------------- fit


def load_runs(sources: Sequence[str]) -> list[Run]:
    """All runs of all history sources, oldest first."""
    notes = LoadNotes()
    runs = group_runs(load_history(sources, with_tests=False, notes=notes))
    print_notes(notes)
    if not runs:
        raise InputError(", ".join(sources), "history holds no runs")
    return runs


def run_fit(args: argparse.Namespace) -> int:
    """Train and save a model."""
    check_share("--target-recall", args.target_recall)
    check_waves(args.waves)
    runs = load_runs(args.history)
    started = time.perf_counter()
    model: MatrixSelector | MozillaBaseline
    if args.kind == "baseline":
        model = MozillaBaseline().fit(runs)
    else:
        model = MatrixSelector(
            target_recall=args.target_recall, model=args.risk_model, waves=args.waves
        ).fit(runs)
    seconds = time.perf_counter() - started
    model.save(args.output)
    projects = len({run.project for run in runs})
    print(
        f"fitted {model.kind} on {len(runs)} run(s) of {projects} project(s) "
        f"in {seconds:.1f} s; saved {args.output}"
    )
    if isinstance(model, MatrixSelector):
        print(risk_model_line(model))
        print(calibration_line(model))
    return 0


def risk_model_line(model: MatrixSelector) -> str:
    """Which risk model ``fit`` learned, and why when it is not the one asked for."""
    learned = model.model_.kind
    line = f"risk model: {learned} ({model.model_.failures} failing job outcome(s) learned from)"
    if learned == model.model:
        return line
    if learned == "chain":
        return f"{line}: too few to learn from, each job's pass/fail chain is used"
    return f"{line}: boosted trees could not be read from this scikit-learn, so logistic"


def calibration_line(model: MatrixSelector) -> str:
    """What the calibration says of the model's target, in one line."""
    threshold, recall, skipped = model.calibrated()
    sample = model.calibration_
    if recall is None or skipped is None:
        return (
            f"target_recall {model.target_recall:g}: not enough failing runs in the history to "
            f"skip on trust ({sample['failing_runs']} sampled); only jobs without any risk skip"
        )
    return (
        f"target_recall {model.target_recall:g}: risk threshold {threshold:.4f}; on "
        f"{sample['runs']} sampled run(s) of its own history ({sample['failing_runs']} failing) "
        f"its plans kept {percent(recall)} of failing runs and skipped {percent(skipped)} of jobs"
    )


def check_waves(value: int) -> None:
    """Refuse a number of waves below 1."""
    if value < 1:
        raise InputError("--waves", f"{value} is not a number of waves", fix="pass 1, 2 or 3")


def check_share(option: str, value: float) -> None:
    """Refuse a share outside (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise InputError(option, f"{value} is not in (0, 1]", fix="pass a number such as 0.99")


# --------------------------------------------------------------------------- plan


def run_plan(args: argparse.Namespace) -> int:
    """Plan one run and print it."""
    model = load_model(args.model)
    if args.target_recall is not None:
        check_share("--target-recall", args.target_recall)
        if isinstance(model, MatrixSelector):
            model.set_params(target_recall=args.target_recall)
    if args.jobs is not None:
        entries = [{"job": name.strip()} for name in args.jobs.split(",") if name.strip()]
        if not entries:
            raise InputError("--jobs", "no job names given", fix="pass --jobs a,b,c")
        names = [entry["job"] for entry in entries]
    else:
        entries = expand_matrix(read_json(Path(args.matrix_json)), args.matrix_json)
        names = [job_name(entry) for entry in entries]
    context = RunContext(
        args.project,
        args.branch,
        args.event,
        started_at=run_start(args.started_at),
        commit=args.commit,
    )
    plan = model.plan(names, context)
    output = args.format or ("table" if sys.stdout.isatty() else "json")
    print(render_plan(plan, entries, names, output))
    return 0


def run_start(text: str | None) -> str:
    """The run's start time for planning: ``text`` checked, or now (UTC)."""
    if text is None:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if timestamp(text) is None:
        raise InputError(
            "--started-at", f"{text!r} is not a time", fix="pass it as 2026-01-31T12:00:00Z"
        )
    return text


def load_model(path: str) -> MatrixSelector | MozillaBaseline:
    """Load a selector or a baseline, whichever the file holds."""
    data = read_json(Path(path))
    if isinstance(data, dict) and data.get("model") == MozillaBaseline.kind:
        return MozillaBaseline.load(path)
    return MatrixSelector.load(path)


def expand_matrix(data: Any, source: str) -> list[dict[str, str]]:
    """The jobs of a GitHub Actions matrix: the product of its axes, plus include, less exclude."""
    if not isinstance(data, Mapping):
        raise InputError(source, 'matrix JSON must be an object such as {"python": ["3.12"]}')
    axes = {key: value for key, value in data.items() if key not in ("include", "exclude")}
    for key, value in axes.items():
        if not isinstance(value, list) or not value:
            raise InputError(source, f"matrix axis {key!r} must be a non-empty list")
    combos: list[dict[str, str]] = []
    if axes:
        keys = list(axes)
        for values in itertools.product(*(axes[key] for key in keys)):
            combos.append(
                {key: scalar(value, source) for key, value in zip(keys, values, strict=True)}
            )
    for rule in as_entries(data.get("exclude", []), source, "exclude"):
        combos = [c for c in combos if any(c.get(k) != v for k, v in rule.items())]
    combos.extend(as_entries(data.get("include", []), source, "include"))
    if not combos:
        raise InputError(source, "matrix has no jobs")
    return combos


def as_entries(value: Any, source: str, key: str) -> list[dict[str, str]]:
    """The objects of an ``include`` or ``exclude`` list."""
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise InputError(source, f"matrix {key!r} must be a list of objects")
    return [{str(k): scalar(v, source) for k, v in item.items()} for item in value]


def scalar(value: Any, source: str) -> str:
    """A matrix value as text."""
    if isinstance(value, (dict, list)):
        raise InputError(source, "nested matrix values are not supported")
    return str(value).lower() if isinstance(value, bool) else str(value)


def job_name(entry: Mapping[str, str]) -> str:
    """A job's name from its matrix values: ``job`` when set, else the values joined by key."""
    if "job" in entry:
        return entry["job"]
    return "-".join(value for _, value in sorted(entry.items()))


def render_plan(
    plan: Plan, entries: Sequence[Mapping[str, str]], names: Sequence[str], output: str
) -> str:
    """The plan as a fromJSON matrix, as one per wave, as full plan JSON or as a table."""

    def matrix(jobs: Sequence[str]) -> list[dict[str, str]]:
        chosen = set(jobs)
        return [dict(entry) for entry, name in zip(entries, names, strict=True) if name in chosen]

    include = matrix(plan.run)
    if output == "json":
        return json.dumps({"include": include})
    if output == "waves":
        return json.dumps({"waves": [{"include": matrix(wave)} for wave in plan.in_waves]})
    if output == "plan-json":
        document = plan.to_dict()
        document["include"] = include
        return json.dumps(document, indent=2)
    leads = {wave[0]: number for number, wave in enumerate(plan.waves[:-1], 1)}
    rows = [
        (name, f"run, wave {leads[name]}" if name in leads else "run", plan.reasons.get(name, ""))
        for name in plan.run
    ]
    rows += [(item.job, "skip", item.reason) for item in plan.skip]
    order = {name: index for index, name in enumerate(names)}
    rows.sort(key=lambda row: order.get(row[0], 0))
    lines = format_table(("job", "decision", "reason"), rows)
    lines.append(f"{len(plan.run)} of {len(names)} job(s) run, {len(plan.skip)} skipped")
    if plan.waves:
        order_text = ", then ".join(wave[0] for wave in plan.waves[:-1])
        lines.append(
            f"in {len(plan.waves)} waves: {order_text}, then the other {len(plan.waves[-1])}, "
            "each wave only when the ones before it passed"
        )
    return "\n".join(lines)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain aligned text table."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)
        ).rstrip()
    ]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    return lines


# --------------------------------------------------------------------------- evaluate


def parse_points(text: str, option: str) -> list[float]:
    """Comma-separated shares in (0, 1]."""
    points: list[float] = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise InputError(option, f"{part!r} is not a number") from None
        check_share(option, value)
        points.append(value)
    return points


def run_evaluate(args: argparse.Namespace) -> int:
    """Replay the history and print recall and savings for each operating point."""
    check_share("--target-recall", args.target_recall)
    check_share("--train-share", args.train_share)
    check_waves(args.waves)
    curve_points = sorted(set(parse_points(args.curve, "--curve")) | {args.target_recall})
    baseline_points = parse_points(args.baseline, "--baseline")
    config = ReplayConfig(
        train_share=args.train_share,
        min_runs=args.min_runs,
        errored_as_failing=args.errored_as_failing,
        waves=args.waves,
    )
    split = split_history(load_runs(args.history), config)
    if not split.test:
        raise InputError(
            ", ".join(args.history),
            f"no project has {args.min_runs} usable runs to replay",
            fix="lower --min-runs or add history",
        )
    report = evaluate(
        split, args.target_recall, curve_points, baseline_points, risk_model=args.risk_model
    )
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_evaluation(report))
    return 0


def evaluate(
    split: Split,
    target: float,
    curve_points: Sequence[float],
    baseline_points: Sequence[float],
    *,
    risk_model: str = "boosted",
) -> dict[str, Any]:
    """Replay the selector at every operating point and the baseline at each threshold."""
    started = time.perf_counter()
    fitted = MatrixSelector(target_recall=target, model=risk_model, waves=split.config.waves).fit(
        split.train
    )
    fit_seconds = time.perf_counter() - started
    curve: list[ReplayResult] = []
    expected: list[tuple[float | None, float | None]] = []
    for point in curve_points:
        selector = copy.deepcopy(fitted).set_params(target_recall=point)
        expected.append(selector.calibrated()[1:])
        curve.append(replay(selector, split, f"selector@{point:g}", fit=False))
    baseline = [
        replay(MozillaBaseline(point), split, f"baseline@{point:g}") for point in baseline_points
    ]
    own = next(result for point, result in zip(curve_points, curve, strict=True) if point == target)
    report = own.to_dict()
    report.update(
        {
            "target_recall": target,
            "risk_model": fitted.model_.kind,
            "waves": split.config.waves,
            "train_runs": len(split.train),
            "fit_seconds": fit_seconds,
            "definitions": definitions(split.config),
            "curve": [
                dict(
                    r.to_dict(),
                    target_recall=p,
                    calibrated_recall=e[0],
                    calibrated_skipped_share=e[1],
                )
                for p, r, e in zip(curve_points, curve, expected, strict=True)
            ],
            "baseline": [
                dict(r.to_dict(), min_confidence=p)
                for p, r in zip(baseline_points, baseline, strict=True)
            ],
        }
    )
    return report


def definitions(config: ReplayConfig) -> dict[str, str]:
    """How runs were counted, for the report."""
    failing = "failed or errored" if config.errored_as_failing else "failed"
    return {
        "usable_run": (
            f"status passed, failed or errored, with at least {config.min_known_jobs} jobs "
            "of known outcome"
        ),
        "failing_run": f"status {failing} with at least one visibly failed job",
        "caught": "at least one planned job failed",
        "waves": (
            f"{config.waves}: the plan's jobs likeliest to fail first, one a wave, the others "
            "last; a wave runs only when no job of the waves before it failed (jobs left out "
            "after a failure count as skipped)"
            if config.waves > 1
            else "1: every planned job runs at once"
        ),
        "split": (
            f"per project with at least {config.min_runs} usable runs: first "
            f"{config.train_share:.0%} train, the rest replayed in time order"
        ),
    }


def render_evaluation(report: Mapping[str, Any]) -> str:
    """The evaluation as readable tables."""
    lines = [
        f"replayed {report['runs']} run(s) of {report['projects']} project(s) "
        f"({report['failing_runs']} failing), trained on {report['train_runs']} run(s)",
        "",
    ]
    rows = [result_row("selector", entry, entry["target_recall"]) for entry in report["curve"]]
    rows += [result_row("baseline", entry, entry["min_confidence"]) for entry in report["baseline"]]
    header: tuple[str, ...] = (
        "model", "setting", "recall", "jobs skipped", "time saved", "energy saved", "plan ms",
    )  # fmt: skip
    if report["waves"] > 1:
        header += ("second waves", "waves a run")
    lines += format_table(header, [row[: len(header)] for row in rows])
    lines.append("")
    lines.append(
        f"at target_recall {report['target_recall']:g}: failing-run recall "
        f"{percent(report['failing_run_recall'])}, "
        f"jobs skipped {percent(report['jobs_skipped_share'])}"
    )
    return "\n".join(lines)


def result_row(model: str, entry: Mapping[str, Any], setting: float) -> tuple[str, ...]:
    """One table row of a replay result."""
    return (
        model,
        f"{setting:g}",
        percent(entry["failing_run_recall"]),
        percent(entry["jobs_skipped_share"]),
        percent(entry["time_saved_share"]),
        percent(entry["energy_saved_share"]),
        f"{entry['mean_plan_ms']:.2f}",
        percent(entry["second_waves"] / entry["runs"] if entry["runs"] else 0.0),
        f"{entry['waves_run'] / entry['runs'] if entry['runs'] else 0.0:.2f}",
    )


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, or n/a."""
    return "n/a" if value is None else f"{value * 100:.1f} %"
