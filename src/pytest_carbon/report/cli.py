"""``pytest-carbon report``: re-render saved JSON reports."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from pytest_carbon.report.model import load_report
from pytest_carbon.report.terminal import render_terminal

FORMATS = ("terminal", "json")


def add_report_parser(commands: Any) -> None:
    """Register ``report`` on the top-level subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report", help="re-render a saved carbon report", description="Re-render a saved report."
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT.json")
    parser.add_argument("--format", choices=FORMATS, default="terminal")
    parser.add_argument("--top", type=int, default=10, help="tests to list (default 10)")
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Print each report in the chosen format."""
    for path in args.reports:
        report = load_report(path)
        if args.format == "json":
            sys.stdout.write(report.to_json())
        else:
            width = shutil.get_terminal_size((100, 20)).columns
            sys.stdout.write(render_terminal(report, top=args.top, width=width))
    return 0
