"""``pytest-carbon report``: re-render saved JSON reports, or merge the reports of several jobs."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from pytest_carbon.errors import CarbonError
from pytest_carbon.report.compare import (
    DEFAULT_REGIONS,
    REGION_FIX,
    BaselineDiff,
    RegionFigure,
    UnknownRegionError,
    baseline_lines,
    compare_baseline,
    compare_regions,
    region_keys,
    regions_lines,
)
from pytest_carbon.report.csvfile import render_csv
from pytest_carbon.report.html import render_html
from pytest_carbon.report.io import write_atomic
from pytest_carbon.report.markdown import render_summary
from pytest_carbon.report.merge import merge_reports, render_merged_markdown, render_merged_terminal
from pytest_carbon.report.model import SessionReport, load_report
from pytest_carbon.report.terminal import render_terminal

FORMATS = ("terminal", "markdown", "html", "csv", "json")
MERGE_FORMATS = ("terminal", "markdown")


def add_report_parser(commands: Any) -> None:
    """Register ``report`` on the top-level subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="re-render a saved carbon report, or merge the reports of several jobs",
        description="Re-render a saved report, or merge the reports of several jobs of one run.",
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT.json")
    parser.add_argument("--format", choices=FORMATS, default="terminal")
    parser.add_argument("--top", type=int, default=10, help="tests to list (default 10)")
    parser.add_argument(
        "--merge", action="store_true", help="combine several jobs' reports into one summary"
    )
    parser.add_argument("--baseline", metavar="OLD.json", help="compare with an earlier report")
    parser.add_argument(
        "--compare-regions",
        metavar="REGIONS",
        default=",".join(DEFAULT_REGIONS),
        help="comma-separated grids to compare with (ISO3, provider:region, greenest, none)",
    )
    parser.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")
    parser.set_defaults(handler=run_report)


def checked_regions(text: str) -> tuple[str, ...]:
    """The ``--compare-regions`` list; raise :class:`CarbonError` naming the fix."""
    try:
        return region_keys(text)
    except UnknownRegionError as exc:
        raise CarbonError(f"--compare-regions: {exc}. Fix: {REGION_FIX}") from None


def render_one(
    report: SessionReport,
    fmt: str,
    top: int,
    regions: Sequence[RegionFigure],
    diff: BaselineDiff | None,
) -> str:
    """One report in the chosen format."""
    if fmt == "json":
        return report.to_json()
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report, top=top, regions=regions, diff=diff)
    if fmt == "markdown":
        return render_summary(report, top=top, regions=regions, diff=diff)
    width = shutil.get_terminal_size((100, 20)).columns
    lines = regions_lines(report, regions) + (baseline_lines(diff) if diff else [])
    return render_terminal(report, top=top, width=width) + "".join(f"{x}\n" for x in lines)


def run_report(args: argparse.Namespace) -> int:
    """Render the reports (or their merge) to stdout or ``--output``."""
    if args.merge:
        if args.format not in MERGE_FORMATS:
            raise CarbonError(
                f"--merge renders terminal or markdown, not {args.format}. Fix: add "
                "--format markdown or --format terminal."
            )
        merged = merge_reports([(path, load_report(path)) for path in args.reports])
        if args.format == "markdown":
            text = render_merged_markdown(merged, top=args.top)
        else:
            width = shutil.get_terminal_size((100, 20)).columns
            text = render_merged_terminal(merged, top=args.top, width=width)
    else:
        if len(args.reports) > 1 and args.format not in MERGE_FORMATS:
            raise CarbonError(
                f"--format {args.format} renders one report at a time. Fix: pass one "
                "REPORT.json, or --merge them with --format markdown."
            )
        keys = checked_regions(args.compare_regions)
        baseline = load_report(args.baseline) if args.baseline else None
        parts = []
        for path in args.reports:
            report = load_report(path)
            regions = compare_regions(report.energy_kwh, keys)
            diff = compare_baseline(report, baseline, args.baseline) if baseline else None
            parts.append(render_one(report, args.format, args.top, regions, diff))
        text = "\n".join(parts)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
